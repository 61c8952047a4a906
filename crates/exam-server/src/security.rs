//! Security alerts for proctors and IT: what the clients report (`security.*` events, see
//! the contract's "Events") and what only the server can see by correlating students,
//! machines and addresses. Every rule's response is audited and can be undone by an admin
//! (an address block is lifted with `DELETE /v1/admin/ip-blocks/{id}`; a demand for the
//! password again is withdrawn with `DELETE /v1/admin/users/{username}/step-up`; an ended
//! session is a new sign-in away). An alert is raised once: the same rule about the same
//! student, address and subject stays one open alert for [`WINDOW_S`] ([`raise`]).
//!
//! The rules (table-tested in `tests/it/security.rs`):
//! - `client_finding`: a client reports a warning (a prohibited program, an extra display,
//!   a remote session…); cleared when the client reports it stopped.
//! - `session_two_devices`: one session used from two device fingerprints — a token was
//!   copied: the session is ended (critical).
//! - `two_devices`: one student signed in on two machines within [`WINDOW_S`] (warning).
//!   Unless the server runs with `--step-up-on-two-devices false`, the student is also asked
//!   for the password again (step-up, RFC 9470): the sessions they began before the alert are
//!   refused with 401 `step_up_required`, so whoever holds the other machine needs the
//!   password too. Only a new alert does this (not each event the rule sees again), so a
//!   student who signed in again is not asked again and again.
//! - `shared_device`: one machine used by two students with attempts in progress within
//!   [`WINDOW_S`] (warning).
//! - `network_changed`: an attempt's events come from a new address (information).
//! - `password_spraying`: [`SPRAY_USERNAMES`] usernames failing from one address within
//!   [`WINDOW_S`] (critical); at [`SPRAY_BLOCK_USERNAMES`] with no successful sign-in from
//!   it, the address is blocked for [`SPRAY_BLOCK_S`].
//! - `brute_force`: one username's sign-in locked for one address after its failures (the
//!   per-(username, address) lockout of `auth`; warning). The lockout is the response and
//!   lifts by itself when the window passes; there is nothing for an admin to undo.
//! - `request_burst`: a signed-in student, or an address, hit the server's rate limit
//!   (warning; the 429 is the response). See [`burst`]: cheap on the hot path.
//! - `refresh_reuse`: a refresh token was used after its successor (a copy of it exists):
//!   the session is ended (critical; `auth`). The student signs in again to undo it; their
//!   app reports `security.session_reused` when it learns why its session ended.
//!
//! Not rules, but the same evidence seen another way: an attempt's timeline
//! ([`attempt_timeline`]: started, answers, findings, alerts, the outages the app reports as
//! `network.outage` events — see [`outage`] —, the times it was not running, reported as
//! `app.not_running` — see [`not_running`] —, and submitted) with the time the student lost
//! ([`time_lost`], also per exam), and a machine's history ([`history`]: its findings and
//! alerts, whoever was signed in).

pub mod burst;
pub mod history;
pub mod not_running;
pub mod outage;
pub mod time_lost;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::audit;
use crate::problem::{ApiError, Reply};
use crate::routes::Ctx;

/// The correlation window, in seconds.
pub const WINDOW_S: i64 = 600;
/// Usernames failing from one address within the window that make an alert.
pub const SPRAY_USERNAMES: i64 = 5;
/// …and that block the address (with no successful sign-in from it meanwhile).
pub const SPRAY_BLOCK_USERNAMES: i64 = 10;
/// How long such a block lasts.
pub const SPRAY_BLOCK_S: i64 = 1800;

/// Every rule an alert may come from (the `rule` filter of the alert list accepts these).
pub const RULES: &[&str] = &[
    "client_finding",
    "session_two_devices",
    "two_devices",
    "shared_device",
    "network_changed",
    "password_spraying",
    "brute_force",
    "request_burst",
    "refresh_reuse",
];
/// Every severity, least severe first.
pub const SEVERITIES: &[&str] = &["info", "warning", "critical"];

/// An alert as the admin API shows it.
fn alert_json(conn: &Connection, id: i64) -> rusqlite::Result<Value> {
    conn.query_row(
        "SELECT id, rule, severity, username, ip, device, attempt_id, summary, evidence, response,
                created_at, cleared_at, acked_at, ack_note, version
         FROM alerts WHERE id = ?1",
        [id],
        alert_row,
    )
}

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let parse = |text: Option<String>| {
        text.and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .unwrap_or(Value::Null)
    };
    Ok(json!({
        "id": r.get::<_, i64>(0)?.to_string(),
        "rule": r.get::<_, String>(1)?,
        "severity": r.get::<_, String>(2)?,
        "username": r.get::<_, Option<String>>(3)?,
        "ip": r.get::<_, Option<String>>(4)?,
        "device": r.get::<_, Option<String>>(5)?,
        "attempt_id": r.get::<_, Option<String>>(6)?,
        "summary": r.get::<_, String>(7)?,
        "evidence": parse(r.get(8)?),
        "response": parse(r.get(9)?),
        "created_at": r.get::<_, String>(10)?,
        "cleared_at": r.get::<_, Option<String>>(11)?,
        "acked_at": r.get::<_, Option<String>>(12)?,
        "ack_note": r.get::<_, Option<String>>(13)?,
        "version": r.get::<_, i64>(14)?,
    }))
}

/// The next version of the alerts (the console's stream sends changes by version).
const NEXT_VERSION: &str = "(SELECT COALESCE(MAX(version), 0) + 1 FROM alerts)";

/// Alerts changed after `version`, oldest change first (the console's stream).
pub fn changed_since(conn: &Connection, version: i64, limit: u32) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = conn.prepare(
        "SELECT id, rule, severity, username, ip, device, attempt_id, summary, evidence, response,
                created_at, cleared_at, acked_at, ack_note, version
         FROM alerts WHERE version > ?1 ORDER BY version LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![version, limit], alert_row)?;
    rows.collect()
}

/// What a new alert says.
pub struct NewAlert<'a> {
    pub rule: &'static str,
    pub severity: &'static str,
    pub username: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub device: Option<&'a str>,
    pub attempt_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub summary: String,
    pub evidence: Value,
    pub response: Option<Value>,
}

/// Raises an alert (audited), unless the same rule already has an open one about the same
/// student, address and subject in the window.
pub fn raise(
    tx: &Connection,
    now: chrono::DateTime<chrono::Utc>,
    alert: NewAlert<'_>,
) -> rusqlite::Result<Option<i64>> {
    let since = crate::rfc3339(now - chrono::Duration::seconds(WINDOW_S));
    let open: Option<i64> = tx
        .query_row(
            "SELECT id FROM alerts WHERE rule = ?1 AND username IS ?2 AND ip IS ?3
               AND subject IS ?4 AND cleared_at IS NULL AND created_at > ?5 LIMIT 1",
            params![alert.rule, alert.username, alert.ip, alert.subject, since],
            |r| r.get(0),
        )
        .optional()?;
    if open.is_some() {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO alerts (rule, severity, username, ip, device, attempt_id, subject, summary,
                             evidence, response, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            alert.rule,
            alert.severity,
            alert.username,
            alert.ip,
            alert.device,
            alert.attempt_id,
            alert.subject,
            alert.summary,
            alert.evidence.to_string(),
            alert.response.as_ref().map(Value::to_string),
            crate::rfc3339(now),
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute(
        &format!("UPDATE alerts SET version = {NEXT_VERSION} WHERE id = ?1"),
        [id],
    )?;
    audit::record(
        tx,
        now,
        "security_alert",
        alert.username,
        alert.ip.and_then(|ip| ip.parse().ok()),
        None,
        json!({"alert": id.to_string(), "rule": alert.rule, "severity": alert.severity,
               "summary": alert.summary, "response": alert.response}),
    )?;
    Ok(Some(id))
}

/// A `security.*` event of `username`, from `ctx`'s address and session: raises or clears
/// the client's alert, and runs the correlation rules on where it came from.
pub fn on_event(
    ctx: &Ctx<'_>,
    tx: &Connection,
    user_id: i64,
    kind: &str,
    attrs: &serde_json::Map<String, Value>,
) -> Result<(), ApiError> {
    let crate::routes::Principal::User {
        username,
        session_id,
        ..
    } = ctx.principal
    else {
        return Ok(());
    };
    let ip = ctx.ip.to_string();
    let text = |key: &str| attrs.get(key).and_then(Value::as_str);
    let device = text("device").filter(|d| !d.is_empty());
    let attempt = text("attempt_id");
    let code = text("code").unwrap_or("unknown");
    let subject = format!("{code}:{}", text("subject").unwrap_or(""));
    if kind == "security.cleared" {
        tx.execute(
            &format!(
                "UPDATE alerts SET cleared_at = ?3, version = {NEXT_VERSION}
                 WHERE rule = 'client_finding' AND username = ?1 AND subject = ?2
                   AND cleared_at IS NULL"
            ),
            params![username, subject, crate::rfc3339(ctx.now)],
        )?;
    } else if text("severity") == Some("warning") {
        raise(
            tx,
            ctx.now,
            NewAlert {
                rule: "client_finding",
                severity: "warning",
                username: Some(username),
                ip: Some(&ip),
                device,
                attempt_id: attempt,
                subject: Some(&subject),
                summary: format!(
                    "{username}: {}",
                    text("evidence").unwrap_or("a finding of the app's device checks")
                ),
                evidence: Value::Object(attrs.clone()),
                response: None,
            },
        )?;
    }
    if let Some(device) = device {
        correlate(ctx, tx, user_id, username, session_id, device, &ip, attempt)?;
    }
    Ok(())
}

/// Where this event came from against where the student, the machine and the session were
/// seen before.
#[allow(clippy::too_many_arguments)]
fn correlate(
    ctx: &Ctx<'_>,
    tx: &Connection,
    user_id: i64,
    username: &str,
    session_id: &str,
    device: &str,
    ip: &str,
    attempt: Option<&str>,
) -> Result<(), ApiError> {
    let now = crate::rfc3339(ctx.now);
    let since = crate::rfc3339(ctx.now - chrono::Duration::seconds(WINDOW_S));
    // One session, two machines: its tokens were copied. The session ends.
    let other_device: Option<String> = tx
        .query_row(
            "SELECT device FROM device_sightings
             WHERE session_id = ?1 AND device <> ?2 AND seen_at > ?3 LIMIT 1",
            params![session_id, device, since],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = other_device {
        crate::auth::revoke_session(tx, session_id, "used_from_two_devices")?;
        raise(
            tx,
            ctx.now,
            NewAlert {
                rule: "session_two_devices",
                severity: "critical",
                username: Some(username),
                ip: Some(ip),
                device: Some(device),
                attempt_id: attempt,
                subject: Some(session_id),
                summary: format!(
                    "{username}: one session used from two machines; the session was ended"
                ),
                evidence: json!({"devices": [other, device], "session": session_id}),
                response: Some(json!({"action": "session_ended", "session": session_id,
                                      "undo": "the student signs in again"})),
            },
        )?;
    } else {
        // The same student on another machine, with another session.
        let other: Option<String> = tx
            .query_row(
                "SELECT device FROM device_sightings
                 WHERE user_id = ?1 AND device <> ?2 AND seen_at > ?3 LIMIT 1",
                params![user_id, device, since],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = other {
            let step_up = ctx.state.config.step_up_on_two_devices;
            let response = step_up.then(|| {
                json!({"action": "step_up_required", "required_at": now,
                       "undo": format!("DELETE /v1/admin/users/{username}/step-up")})
            });
            let raised = raise(
                tx,
                ctx.now,
                NewAlert {
                    rule: "two_devices",
                    severity: "warning",
                    username: Some(username),
                    ip: Some(ip),
                    device: Some(device),
                    attempt_id: attempt,
                    subject: None,
                    summary: format!(
                        "{username}: signed in on two machines at once{}",
                        if step_up {
                            "; the password is asked again"
                        } else {
                            ""
                        }
                    ),
                    evidence: json!({"devices": [other, device]}),
                    response,
                },
            )?;
            // Only with a new alert: a student who signed in again on one machine, while
            // the rule still sees the other in the window, is not asked again.
            if let (Some(alert), true) = (raised, step_up) {
                demand_step_up(
                    tx,
                    ctx.now,
                    user_id,
                    username,
                    &format!("signed in on two machines at once (alert {alert})"),
                    None,
                    json!({"rule": "two_devices", "alert": alert.to_string()}),
                )?;
            }
        }
    }
    // The same machine, another student with an attempt in progress.
    if attempt.is_some() {
        let other: Option<(String, String)> = tx
            .query_row(
                "SELECT u.username, s.attempt_id FROM device_sightings s
                   JOIN users u ON u.id = s.user_id
                   JOIN attempts a ON a.id = s.attempt_id
                 WHERE s.device = ?1 AND s.user_id <> ?2 AND s.seen_at > ?3
                   AND a.status = 'open' LIMIT 1",
                params![device, user_id, since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((other_user, other_attempt)) = other {
            raise(
                tx,
                ctx.now,
                NewAlert {
                    rule: "shared_device",
                    severity: "warning",
                    username: Some(username),
                    ip: Some(ip),
                    device: Some(device),
                    attempt_id: attempt,
                    subject: Some(device),
                    summary: format!(
                        "one machine used by {other_user} and {username} with attempts in progress"
                    ),
                    evidence: json!({"device": device, "attempts": [other_attempt, attempt]}),
                    response: None,
                },
            )?;
        }
        // The attempt's events come from a new address.
        let before: Option<String> = tx
            .query_row(
                "SELECT ip FROM device_sightings
                 WHERE user_id = ?1 AND attempt_id = ?2 AND ip <> ?3 LIMIT 1",
                params![user_id, attempt, ip],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(before) = before {
            raise(
                tx,
                ctx.now,
                NewAlert {
                    rule: "network_changed",
                    severity: "info",
                    username: Some(username),
                    ip: Some(ip),
                    device: Some(device),
                    attempt_id: attempt,
                    subject: attempt,
                    summary: format!("{username}: the network changed during the attempt"),
                    evidence: json!({"from": before, "to": ip}),
                    response: None,
                },
            )?;
        }
    }
    tx.execute(
        "INSERT INTO device_sightings (user_id, device, session_id, ip, attempt_id, seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (user_id, device, session_id, ip)
         DO UPDATE SET seen_at = ?6, attempt_id = COALESCE(?5, attempt_id)",
        params![user_id, device, session_id, ip, attempt, now],
    )?;
    Ok(())
}

/// After a failed sign-in from `ip`: many usernames failing from one address is password
/// spraying. Alerted at [`SPRAY_USERNAMES`]; blocked for [`SPRAY_BLOCK_S`] at
/// [`SPRAY_BLOCK_USERNAMES`] unless someone signed in from there meanwhile (a lab behind one
/// address, where students mistype, is never blocked for that).
/// Whether an address was blocked (the caller reloads the block cache).
pub fn on_sign_in_failure(
    conn: &Connection,
    now: chrono::DateTime<chrono::Utc>,
    ip: &str,
) -> rusqlite::Result<bool> {
    let since_ms = (now - chrono::Duration::seconds(WINDOW_S)).timestamp_millis();
    let usernames: i64 = conn.query_row(
        "SELECT COUNT(DISTINCT username) FROM login_failures WHERE ip = ?1 AND at_ms > ?2",
        params![ip, since_ms],
        |r| r.get(0),
    )?;
    if usernames < SPRAY_USERNAMES {
        return Ok(false);
    }
    let since = crate::rfc3339(now - chrono::Duration::seconds(WINDOW_S));
    let signed_in_here: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM audit WHERE type = 'login' AND ip = ?1 AND at > ?2)",
        params![ip, since],
        |r| r.get(0),
    )?;
    let response = if usernames >= SPRAY_BLOCK_USERNAMES && !signed_in_here {
        let until = crate::rfc3339(now + chrono::Duration::seconds(SPRAY_BLOCK_S));
        let cidr = ip
            .parse::<std::net::IpAddr>()
            .map(|a| ipnet::IpNet::from(a).to_string())
            .unwrap_or_else(|_| ip.to_string());
        let already: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM ip_blocks WHERE cidr = ?1 AND removed_at IS NULL
                              AND (until IS NULL OR until > ?2))",
            params![cidr, crate::rfc3339(now)],
            |r| r.get(0),
        )?;
        if already {
            None
        } else {
            conn.execute(
                "INSERT INTO ip_blocks (cidr, reason, until, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    cidr,
                    "password spraying: many usernames failing from this address",
                    until,
                    crate::rfc3339(now)
                ],
            )?;
            let id = conn.last_insert_rowid().to_string();
            Some(json!({"action": "ip_blocked", "block": id, "until": until,
                        "undo": format!("DELETE /v1/admin/ip-blocks/{id}")}))
        }
    } else {
        None
    };
    let blocked = response.is_some();
    raise(
        conn,
        now,
        NewAlert {
            rule: "password_spraying",
            severity: "critical",
            username: None,
            ip: Some(ip),
            device: None,
            attempt_id: None,
            // The block is news even after the first alert.
            subject: blocked.then_some("blocked"),
            summary: format!(
                "{usernames} usernames failing to sign in from {ip} within {} minutes{}",
                WINDOW_S / 60,
                if blocked {
                    "; the address was blocked"
                } else {
                    ""
                }
            ),
            evidence: json!({"usernames": usernames, "window_s": WINDOW_S,
                             "signed_in_from_here": signed_in_here}),
            response,
        },
    )?;
    Ok(blocked)
}

/// A sign-in lockout for one username from one address, as the `brute_force` rule sees it.
#[derive(Debug, Clone)]
pub struct PairLockout<'a> {
    pub username: &'a str,
    pub ip: &'a str,
    /// The failures that locked it, within `window_s`.
    pub failures: u32,
    pub window_s: u64,
    /// When sign-in unlocks by itself.
    pub until: chrono::DateTime<chrono::Utc>,
    /// Whether the username is a student's (guessing at a real account, or at names).
    pub known_student: bool,
}

/// After a failed sign-in locked `lockout.username` for `lockout.ip`: a `brute_force`
/// warning (raised once per window, see [`raise`]). No response is recorded: the lockout is
/// the response, and it lifts by itself at `until` (no admin action undoes it).
pub fn on_pair_lockout(
    conn: &Connection,
    now: chrono::DateTime<chrono::Utc>,
    lockout: &PairLockout<'_>,
) -> rusqlite::Result<Option<i64>> {
    let until = crate::rfc3339(lockout.until);
    raise(
        conn,
        now,
        NewAlert {
            rule: "brute_force",
            severity: "warning",
            username: Some(lockout.username),
            ip: Some(lockout.ip),
            device: None,
            attempt_id: None,
            subject: None,
            summary: format!(
                "{}: {} failed sign-ins from {} within {}; sign-in locked until {} UTC",
                lockout.username,
                lockout.failures,
                lockout.ip,
                outage::human_duration(lockout.window_s.saturating_mul(1000)),
                lockout.until.format("%H:%M:%S"),
            ),
            evidence: json!({
                "failures": lockout.failures,
                "window_s": lockout.window_s,
                "locked_until": until,
                "locked": "sign-in for this username from this address",
                "known_student": lockout.known_student,
            }),
            response: None,
        },
    )
}

/// `GET /v1/admin/alerts?status=open|all&since_id=&user=&rule=&severity=&limit=`: newest
/// first. An unknown `rule` or `severity` is 400 `invalid_query` naming the ones there are.
pub fn list_alerts(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let limit = ctx.limit(200)?;
    let open_only = match ctx.query.get("status").map(String::as_str) {
        None | Some("all") => false,
        Some("open") => true,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "status `{other}` is not open or all"
            )))
        }
    };
    let since_id = match ctx.query.get("since_id") {
        Some(s) => Some(s)
            .filter(|s| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| ApiError::validation("since_id must be an alert id"))?,
        None => 0,
    };
    let user = ctx.query.get("user");
    let rule = one_of(ctx, "rule", RULES)?;
    let severity = one_of(ctx, "severity", SEVERITIES)?;
    let mut stmt = tx.prepare(
        "SELECT id, rule, severity, username, ip, device, attempt_id, summary, evidence, response,
                created_at, cleared_at, acked_at, ack_note, version
         FROM alerts
         WHERE id > ?1 AND (?2 = 0 OR acked_at IS NULL) AND (?3 IS NULL OR username = ?3)
           AND (?5 IS NULL OR rule = ?5) AND (?6 IS NULL OR severity = ?6)
         ORDER BY id DESC LIMIT ?4",
    )?;
    let alerts = stmt
        .query_map(
            params![since_id, open_only, user, limit, rule, severity],
            alert_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Reply::ok(json!({ "alerts": alerts })))
}

/// The query parameter `name`, if given, when it is one of `allowed`.
fn one_of<'a>(ctx: &'a Ctx<'_>, name: &str, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
    match ctx.query.get(name).map(String::as_str) {
        None => Ok(None),
        Some(value) if allowed.contains(&value) => Ok(Some(value)),
        Some(value) => Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "{name} `{}` is not one of {}",
                value.chars().take(100).collect::<String>(),
                allowed.join(", ")
            ),
        )),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Ack {
    #[serde(default)]
    note: String,
}

/// `POST /v1/admin/alerts/{alert_id}/ack` `{note}`: acknowledged, with a note (audited).
pub fn ack_alert(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let body: Ack = crate::api::parse_json(ctx.body)?;
    if body.note.chars().count() > 2000 {
        return Err(ApiError::validation("a note has at most 2000 characters"));
    }
    let raw = ctx.param("alert_id");
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::not_found(format!("there is no alert `{raw}`")))?;
    let changed = tx.execute(
        &format!(
            "UPDATE alerts SET acked_at = COALESCE(acked_at, ?2), ack_note = ?3,
                               version = {NEXT_VERSION}
             WHERE id = ?1"
        ),
        params![id, crate::rfc3339(ctx.now), body.note],
    )?;
    if changed == 0 {
        return Err(ApiError::not_found(format!("there is no alert {id}")));
    }
    audit::record(
        tx,
        ctx.now,
        "alert_acknowledged",
        None,
        Some(ctx.ip),
        None,
        json!({"alert": id.to_string(), "note": body.note}),
    )?;
    Ok(Reply::ok(alert_json(tx, id)?))
}

/// `GET /v1/admin/events?user=&type=&limit=`: the students' events, newest first (the
/// console's Events view; `type` may end with `*` for a prefix, e.g. `security.*`).
pub fn list_events(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let limit = ctx.limit(200)?;
    let kind = ctx.query.get("type").map(|t| match t.strip_suffix('*') {
        Some(prefix) => format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_")),
        None => t.replace('%', "\\%").replace('_', "\\_"),
    });
    let user = ctx.query.get("user");
    let mut stmt = tx.prepare(
        "SELECT u.username, e.id, e.type, e.at, e.attrs, e.received_at
         FROM events e JOIN users u ON u.id = e.user_id
         WHERE (?1 IS NULL OR u.username = ?1) AND (?2 IS NULL OR e.type LIKE ?2 ESCAPE '\\')
         ORDER BY e.rowid DESC LIMIT ?3",
    )?;
    let events = stmt
        .query_map(params![user, kind, limit], |r| {
            Ok(json!({
                "username": r.get::<_, String>(0)?,
                "id": r.get::<_, String>(1)?,
                "type": r.get::<_, String>(2)?,
                "at": r.get::<_, String>(3)?,
                "attrs": serde_json::from_str::<Value>(&r.get::<_, String>(4)?).unwrap_or(Value::Null),
                "received_at": r.get::<_, String>(5)?,
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Reply::ok(json!({ "events": events })))
}

/// `GET /v1/admin/machines`: every machine (device fingerprint) seen, with its last student,
/// address and contact, and its integrity state (the worst open alert about it).
pub fn list_machines(_ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let mut stmt = tx.prepare(
        "SELECT s.device, u.username, s.ip, s.seen_at,
                (SELECT COUNT(*) FROM alerts a WHERE a.device = s.device
                   AND a.acked_at IS NULL AND a.cleared_at IS NULL),
                (SELECT MAX(CASE a.severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END)
                   FROM alerts a WHERE a.device = s.device
                   AND a.acked_at IS NULL AND a.cleared_at IS NULL),
                (SELECT COUNT(DISTINCT user_id) FROM device_sightings d WHERE d.device = s.device)
         FROM device_sightings s JOIN users u ON u.id = s.user_id
         WHERE s.seen_at = (SELECT MAX(seen_at) FROM device_sightings d WHERE d.device = s.device)
         GROUP BY s.device ORDER BY s.seen_at DESC LIMIT 1000",
    )?;
    let machines = stmt
        .query_map([], |r| {
            let state = match r.get::<_, Option<i64>>(5)? {
                Some(3) => "critical",
                Some(2) => "warning",
                Some(_) => "info",
                None => "ok",
            };
            Ok(json!({
                "device": r.get::<_, String>(0)?,
                "last_student": r.get::<_, String>(1)?,
                "last_ip": r.get::<_, String>(2)?,
                "last_contact": r.get::<_, String>(3)?,
                "open_alerts": r.get::<_, i64>(4)?,
                "integrity": state,
                "students": r.get::<_, i64>(6)?,
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Reply::ok(json!({ "machines": machines })))
}

/// `GET /v1/admin/attempts/{attempt_id}/timeline`: what happened in an attempt, in order —
/// started, answers saved (first and last), the client's findings and their clearing, the
/// outages the client reported (`network.outage`, at their start: "offline for 2 min 5 s
/// (until 09:14:03 UTC)"), the times the app was not running (`app.not_running`, likewise),
/// the server's alerts, submitted — and `time_lost`, the attempt's [`time_lost::Ledger`].
pub fn attempt_timeline(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let attempt = ctx.param("attempt_id");
    struct Head {
        exam: String,
        username: String,
        started: String,
        deadline: String,
        submitted: Option<String>,
        late: Option<bool>,
        user_id: i64,
        status: String,
    }
    let head = tx
        .query_row(
            "SELECT a.exam_id, u.username, a.started_at, a.deadline_at, a.submitted_at, a.late,
                    a.user_id, a.status
             FROM attempts a JOIN users u ON u.id = a.user_id WHERE a.id = ?1",
            [attempt],
            |r| {
                Ok(Head {
                    exam: r.get(0)?,
                    username: r.get(1)?,
                    started: r.get(2)?,
                    deadline: r.get(3)?,
                    submitted: r.get(4)?,
                    late: r.get::<_, Option<i64>>(5)?.map(|l| l != 0),
                    user_id: r.get(6)?,
                    status: r.get(7)?,
                })
            },
        )
        .optional()?;
    let Some(Head {
        exam,
        username,
        started,
        deadline,
        submitted,
        late,
        user_id,
        status,
    }) = head
    else {
        return Err(ApiError::not_found(format!(
            "there is no attempt `{attempt}`"
        )));
    };
    let mut items: Vec<Value> = vec![json!({
        "at": started, "kind": "started",
        "text": format!("{username} started {exam} (deadline {deadline})"),
    })];
    let (count, first, last): (i64, Option<String>, Option<String>) = tx.query_row(
        "SELECT COUNT(*), MIN(saved_at), MAX(saved_at) FROM answers WHERE attempt_id = ?1",
        [attempt],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if let Some(first) = first {
        items.push(json!({"at": first, "kind": "answers",
                          "text": "first answer saved on the server"}));
    }
    if let Some(last) = last {
        items.push(json!({"at": last, "kind": "answers",
                          "text": format!("last answer saved on the server ({count} questions answered)")}));
    }
    let mut stmt = tx.prepare(
        "SELECT at, type, attrs FROM events
         WHERE user_id = ?1
           AND (type LIKE 'security.%' OR type = 'network.outage' OR type = 'app.not_running')
           AND json_valid(attrs) AND json_extract(attrs, '$.attempt_id') = ?2",
    )?;
    let mut lost = Vec::new();
    let events = stmt
        .query_map(params![user_id, attempt], |r| {
            let attrs: Value = serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or(Value::Null);
            let kind: String = r.get(1)?;
            let at: String = r.get(0)?;
            let empty = serde_json::Map::new();
            let fields = attrs.as_object().unwrap_or(&empty);
            if let Some(record) = time_lost::record(&kind, &attrs) {
                lost.push(record);
            }
            if kind == "network.outage" {
                return Ok(outage::timeline_item(&at, fields));
            }
            if kind == "app.not_running" {
                return Ok(not_running::timeline_item(&at, fields));
            }
            let evidence = attrs["evidence"].as_str().unwrap_or("").to_string();
            Ok(json!({
                "at": at,
                "kind": if kind == "security.cleared" { "finding_cleared" } else { "finding" },
                "text": if kind == "security.cleared" {
                    format!("stopped: {evidence}")
                } else {
                    evidence
                },
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    items.extend(events);
    let mut stmt = tx.prepare(
        "SELECT created_at, severity, summary FROM alerts
         WHERE attempt_id = ?1 AND rule <> 'client_finding'",
    )?;
    let alerts = stmt
        .query_map([attempt], |r| {
            Ok(json!({
                "at": r.get::<_, String>(0)?,
                "kind": "alert",
                "text": format!("{}: {}", r.get::<_, String>(1)?, r.get::<_, String>(2)?),
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    items.extend(alerts);
    let ledger = time_lost::window(&started, submitted.as_deref(), ctx.now)
        .map(|window| time_lost::ledger(window, &lost))
        .unwrap_or_default();
    if let Some(at) = submitted {
        items.push(json!({"at": at, "kind": "submitted",
                          "text": if late == Some(true) { "submitted (late)" } else { "submitted" }}));
    }
    items.sort_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
    Ok(Reply::ok(json!({
        "attempt_id": attempt, "exam_id": exam, "username": username, "status": status,
        "time_lost": ledger.to_json(), "items": items,
    })))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StepUp {
    reason: String,
}

/// `POST /v1/admin/users/{username}/step-up` `{reason}`: the student must enter their
/// password again — their sessions begun before now are refused (`step_up_required`, RFC
/// 9470) and end at their next refresh; a new sign-in is not affected. Audited; undone with
/// `DELETE`.
pub fn require_step_up(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let body: StepUp = crate::api::parse_json(ctx.body)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::validation(
            "a reason of 1 to 500 characters is required",
        ));
    }
    let username = ctx.param("username");
    let user = user_of(tx, username)?;
    let at = demand_step_up(tx, ctx.now, user, username, reason, Some(ctx.ip), json!({}))?;
    Ok(Reply::ok(
        json!({"username": username, "required_at": at, "reason": reason}),
    ))
}

/// Asks `username` for the password again from `now` (their sessions begun before are
/// refused), audited as `step_up_required` with `reason`, the admin's address (`by`; none
/// when a rule asks) and `detail`'s members. Returns the time it applies from.
fn demand_step_up(
    tx: &Connection,
    now: chrono::DateTime<chrono::Utc>,
    user_id: i64,
    username: &str,
    reason: &str,
    by: Option<std::net::IpAddr>,
    detail: Value,
) -> rusqlite::Result<String> {
    let at = crate::rfc3339(now);
    tx.execute(
        "INSERT INTO step_up (user_id, required_at, reason) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO UPDATE SET required_at = ?2, reason = ?3",
        params![user_id, at, reason],
    )?;
    let mut detail = match detail {
        Value::Object(members) => members,
        _ => serde_json::Map::new(),
    };
    detail.insert("reason".into(), Value::String(reason.to_string()));
    audit::record(
        tx,
        now,
        "step_up_required",
        Some(username),
        by,
        None,
        Value::Object(detail),
    )?;
    Ok(at)
}

/// `DELETE /v1/admin/users/{username}/step-up`: the demand is withdrawn (audited).
pub fn clear_step_up(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let username = ctx.param("username");
    let user = user_of(tx, username)?;
    if tx.execute("DELETE FROM step_up WHERE user_id = ?1", [user])? == 0 {
        return Err(ApiError::not_found(format!(
            "no password is asked again of `{username}`"
        )));
    }
    audit::record(
        tx,
        ctx.now,
        "step_up_cleared",
        Some(username),
        Some(ctx.ip),
        None,
        json!({}),
    )?;
    Ok(Reply::new(axum::http::StatusCode::NO_CONTENT, Value::Null))
}

fn user_of(tx: &Connection, username: &str) -> Result<i64, ApiError> {
    tx.query_row(
        "SELECT id FROM users WHERE username = ?1",
        [username],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found(format!("there is no student `{username}`")))
}
