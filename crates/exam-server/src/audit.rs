//! The append-only audit log of security-relevant events (the table refuses updates and
//! deletes by trigger).

use std::net::IpAddr;

use rusqlite::Connection;
use serde_json::{json, Value};

pub fn record(
    conn: &Connection,
    at: chrono::DateTime<chrono::Utc>,
    kind: &str,
    username: Option<&str>,
    ip: Option<IpAddr>,
    session_id: Option<&str>,
    detail: Value,
) -> rusqlite::Result<()> {
    tracing::info!(target: "audit", kind, username, ip = ?ip, session_id, %detail);
    conn.execute(
        "INSERT INTO audit (at, type, username, ip, session_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (
            crate::rfc3339(at),
            kind,
            username,
            ip.map(|i| i.to_string()),
            session_id,
            detail.to_string(),
        ),
    )?;
    Ok(())
}

#[derive(Debug, Default)]
pub struct Filter {
    pub user: Option<String>,
    pub kind: Option<String>,
    pub since: Option<String>,
    pub limit: u32,
}

/// Newest first.
pub fn search(conn: &Connection, filter: &Filter) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = conn.prepare(
        "SELECT id, at, type, username, ip, session_id, detail FROM audit
         WHERE (?1 IS NULL OR username = ?1) AND (?2 IS NULL OR type = ?2) AND (?3 IS NULL OR at >= ?3)
         ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        (&filter.user, &filter.kind, &filter.since, filter.limit),
        |r| {
            let detail: String = r.get(6)?;
            Ok(json!({
                // IDs are opaque strings in the contract (shared/API.md).
                "id": r.get::<_, i64>(0)?.to_string(),
                "at": r.get::<_, String>(1)?,
                "type": r.get::<_, String>(2)?,
                "username": r.get::<_, Option<String>>(3)?,
                "ip": r.get::<_, Option<String>>(4)?,
                "session_id": r.get::<_, Option<String>>(5)?,
                "detail": serde_json::from_str::<Value>(&detail).unwrap_or(Value::Null),
            }))
        },
    )?;
    rows.collect()
}
