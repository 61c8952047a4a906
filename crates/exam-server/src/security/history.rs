//! One machine's history, for IT looking into a machine the console shows as suspect: what the
//! apps on it reported (`security.*` events carrying its device fingerprint) and the alerts
//! about it, newest first, whichever student was signed in.
//!
//! The events are found through the students seen on the machine (`device_sightings`), so the
//! search reads only their events (the events table is keyed by student) rather than every
//! student's.

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::problem::{ApiError, Reply};
use crate::routes::Ctx;

/// `GET /v1/admin/machines/{device}/history?limit=`: `{device, students, items}` where each
/// item is `{at, kind: "event" | "alert", id, username, code, severity, summary, evidence,
/// attempt_id}` — `code` is a finding's code (an event) or a rule (an alert); `at` is when
/// the server received the event or raised the alert. 404 for a machine never seen.
pub fn machine_history(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let limit = ctx.limit(200)?;
    let device = ctx.param("device");
    let students: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT u.username FROM device_sightings s JOIN users u ON u.id = s.user_id
             WHERE s.device = ?1 GROUP BY u.username ORDER BY MAX(s.seen_at) DESC",
        )?;
        let rows = stmt.query_map([device], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let alerted: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM alerts WHERE device = ?1)",
        [device],
        |r| r.get(0),
    )?;
    if students.is_empty() && !alerted {
        return Err(ApiError::not_found(format!(
            "there is no machine `{device}`: no student's app has reported from it"
        )));
    }
    let mut items = events(tx, device, limit)?;
    items.extend(alerts(tx, device, limit)?);
    // Newest first; an alert before the event that raised it at the same instant.
    items.sort_by(|a, b| {
        b["at"]
            .as_str()
            .cmp(&a["at"].as_str())
            .then_with(|| (a["kind"] != "alert").cmp(&(b["kind"] != "alert")))
    });
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(Reply::ok(json!({
        "device": device,
        "students": students,
        "items": items,
    })))
}

fn events(tx: &Connection, device: &str, limit: u32) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = tx.prepare(
        "SELECT e.received_at, e.id, u.username, e.type, e.attrs
         FROM events e JOIN users u ON u.id = e.user_id
         WHERE e.user_id IN (SELECT user_id FROM device_sightings WHERE device = ?1)
           AND e.type LIKE 'security.%' AND json_valid(e.attrs)
           AND json_extract(e.attrs, '$.device') = ?1
         ORDER BY e.received_at DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![device, limit], |r| {
        let kind: String = r.get(3)?;
        let attrs: Value = serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or(Value::Null);
        let text = |key: &str| attrs[key].as_str().map(str::to_string);
        let code = text("code")
            .unwrap_or_else(|| kind.strip_prefix("security.").unwrap_or(&kind).to_string());
        let severity = text("severity")
            .filter(|s| super::SEVERITIES.contains(&s.as_str()))
            .map_or(Value::Null, Value::String);
        let summary = if kind == "security.cleared" {
            format!(
                "stopped: {}",
                text("evidence").unwrap_or_else(|| code.clone())
            )
        } else {
            text("evidence").unwrap_or_else(|| kind.clone())
        };
        Ok(json!({
            "at": r.get::<_, String>(0)?,
            "kind": "event",
            "id": r.get::<_, String>(1)?,
            "username": r.get::<_, String>(2)?,
            "code": code,
            "severity": severity,
            "summary": summary,
            "evidence": if attrs.is_object() { attrs.clone() } else { Value::Null },
            "attempt_id": text("attempt_id"),
        }))
    })?;
    rows.collect()
}

fn alerts(tx: &Connection, device: &str, limit: u32) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = tx.prepare(
        "SELECT created_at, id, username, rule, severity, summary, evidence, attempt_id
         FROM alerts WHERE device = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![device, limit], |r| {
        let evidence = r
            .get::<_, String>(6)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .filter(Value::is_object)
            .unwrap_or(Value::Null);
        Ok(json!({
            "at": r.get::<_, String>(0)?,
            "kind": "alert",
            "id": r.get::<_, i64>(1)?.to_string(),
            "username": r.get::<_, Option<String>>(2)?,
            "code": r.get::<_, String>(3)?,
            "severity": r.get::<_, String>(4)?,
            "summary": r.get::<_, String>(5)?,
            "evidence": evidence,
            "attempt_id": r.get::<_, Option<String>>(7)?,
        }))
    })?;
    rows.collect()
}
