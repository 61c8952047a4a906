//! The administration API: what an examiner and an operator need, behind the admin token.

use std::net::IpAddr;

use axum::http::StatusCode;
use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::api::{parse_json, parse_time, receipt, stored_answers};
use crate::audit;
use crate::problem::{ApiError, Reply};
use crate::routes::Ctx;
use crate::Db;

/// An active IP block, cached in memory and checked on every request.
#[derive(Debug, Clone)]
pub struct Block {
    pub id: i64,
    pub net: IpNet,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

impl Block {
    pub fn applies(&self, ip: IpAddr, now: chrono::DateTime<chrono::Utc>) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.net.contains(&ip) && self.until.is_none_or(|u| now < u)
    }
}

pub fn load_blocks(db: &Db) -> rusqlite::Result<Vec<Block>> {
    read_blocks(&db.lock())
}

fn read_blocks(conn: &Connection) -> rusqlite::Result<Vec<Block>> {
    let mut stmt =
        conn.prepare("SELECT id, cidr, until FROM ip_blocks WHERE removed_at IS NULL")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut blocks = Vec::new();
    for row in rows {
        let (id, cidr, until) = row?;
        if let Ok(net) = parse_net(&cidr) {
            let until = until.and_then(|u| parse_time(&u, "until").ok());
            blocks.push(Block { id, net, until });
        }
    }
    Ok(blocks)
}

fn parse_net(cidr: &str) -> Result<IpNet, ApiError> {
    cidr.parse::<IpNet>()
        .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| ApiError::validation(format!("`{cidr}` is not an IP address or CIDR range")))
}

fn reload_blocks(ctx: &Ctx<'_>, _tx: &Connection) -> Result<(), ApiError> {
    // The cache is reloaded once the transaction has committed (see
    // `AppState::after_commit`): a change rolled back never reaches it.
    ctx.state
        .blocks_changed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// After a write committed: reloads the IP-block cache from committed data if a block
/// changed, and tells the console's alert streams to look for changes (and its fleet streams,
/// if machine-minutes were stored).
pub fn reload_blocks_if_changed(state: &crate::AppState, conn: &Connection) {
    state.alerts_changed.notify_waiters();
    if state
        .minutes_stored
        .swap(false, std::sync::atomic::Ordering::SeqCst)
    {
        state.fleet_changed.notify_waiters();
    }
    if state
        .blocks_changed
        .swap(false, std::sync::atomic::Ordering::SeqCst)
    {
        match read_blocks(conn) {
            Ok(blocks) => *state.blocks.write().unwrap_or_else(|p| p.into_inner()) = blocks,
            Err(error) => {
                tracing::error!(%error, "cannot reload the IP blocks");
                state
                    .blocks_changed
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
}

fn attempt_json(conn: &Connection, attempt_id: &str) -> Result<Option<Value>, ApiError> {
    let row: Option<(String, String, String, String, String, i64)> = conn
        .query_row(
            "SELECT a.exam_id, u.username, a.status, a.started_at, a.deadline_at, a.applied_writes
             FROM attempts a JOIN users u ON u.id = a.user_id WHERE a.id = ?1",
            [attempt_id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()?;
    let Some((exam_id, username, status, started_at, deadline_at, applied_writes)) = row else {
        return Ok(None);
    };
    let answers: Map<String, Value> = stored_answers(conn, attempt_id)?
        .into_iter()
        .map(|(q, value, seq, saved_at)| {
            (q, json!({"value": value, "seq": seq, "saved_at": saved_at}))
        })
        .collect();
    let mut body = json!({
        "attempt_id": attempt_id,
        "exam_id": exam_id,
        "username": username,
        "status": status,
        "started_at": started_at,
        "deadline_at": deadline_at,
        "answers": answers,
        "applied_writes": applied_writes,
    });
    if let (Some(receipt), Some(object)) = (receipt(conn, attempt_id)?, body.as_object_mut()) {
        object.insert("receipt".into(), receipt);
    }
    Ok(Some(body))
}

/// `GET /v1/admin/attempts/{attempt_id}`.
pub fn attempt(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let id = ctx.param("attempt_id");
    attempt_json(tx, id)?
        .map(Reply::ok)
        .ok_or_else(|| ApiError::not_found(format!("there is no attempt `{id}`")))
}

fn user_id(conn: &Connection, username: &str) -> Result<i64, ApiError> {
    conn.query_row(
        "SELECT id FROM users WHERE username = ?1",
        [username],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found(format!("there is no user `{username}`")))
}

/// `GET /v1/admin/users/{username}/attempts`.
pub fn user_attempts(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let user = user_id(tx, ctx.param("username"))?;
    let ids: Vec<String> = {
        let mut stmt =
            tx.prepare("SELECT id FROM attempts WHERE user_id = ?1 ORDER BY started_at, id")?;
        let rows = stmt.query_map([user], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut attempts = Vec::with_capacity(ids.len());
    for id in ids {
        attempts.extend(attempt_json(tx, &id)?);
    }
    Ok(Reply::ok(Value::Array(attempts)))
}

/// `GET /v1/admin/exams`: every exam, soonest to open first, with its attempts begun and
/// submitted — what a proctor picks a report or a start code from.
pub fn exams(_ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let mut stmt = tx.prepare_cached(
        "SELECT e.id, e.title, e.opens_at, e.closes_at, e.duration_s,
                (SELECT COUNT(*) FROM attempts a WHERE a.exam_id = e.id),
                (SELECT COUNT(*) FROM attempts a WHERE a.exam_id = e.id AND a.status = 'submitted'),
                e.min_client_version
         FROM exams e ORDER BY e.opens_at, e.id",
    )?;
    let exams = stmt
        .query_map([], |r| {
            Ok(json!({
                "id": r.get::<_, String>(0)?,
                "title": r.get::<_, String>(1)?,
                "opens_at": r.get::<_, String>(2)?,
                "closes_at": r.get::<_, String>(3)?,
                "duration_s": r.get::<_, i64>(4)?,
                "attempts": r.get::<_, i64>(5)?,
                "submitted": r.get::<_, i64>(6)?,
                "min_client_version": r.get::<_, Option<String>>(7)?,
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Reply::ok(Value::Array(exams)))
}

/// `POST /v1/admin/users/{username}/sessions/revoke`: ends every session of the user.
pub fn revoke_sessions(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let username = ctx.param("username");
    let user = user_id(tx, username)?;
    let revoked = tx.execute(
        "UPDATE sessions SET revoked_at = ?2, revoked_reason = 'revoked_by_admin' WHERE user_id = ?1 AND revoked_at IS NULL",
        (user, crate::rfc3339(ctx.now)),
    )?;
    audit::record(
        tx,
        ctx.now,
        "admin_revoke_sessions",
        Some(username),
        Some(ctx.ip),
        None,
        json!({"sessions": revoked}),
    )?;
    Ok(Reply::ok(json!({"revoked_sessions": revoked})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockCreate {
    cidr: String,
    reason: String,
    until: Option<String>,
}

/// `POST /v1/admin/ip-blocks`.
pub fn create_ip_block(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let body: BlockCreate = parse_json(ctx.body)?;
    let net = parse_net(body.cidr.trim())?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::validation("a block needs a reason"));
    }
    let until = match &body.until {
        Some(u) => {
            let t = parse_time(u, "until")?;
            if t <= ctx.now {
                return Err(ApiError::validation("`until` is in the past"));
            }
            Some(crate::rfc3339(t))
        }
        None => None,
    };
    let created_at = crate::rfc3339(ctx.now);
    tx.execute(
        "INSERT INTO ip_blocks (cidr, reason, until, created_at) VALUES (?1, ?2, ?3, ?4)",
        (net.to_string(), &body.reason, &until, &created_at),
    )?;
    let id = tx.last_insert_rowid();
    audit::record(
        tx,
        ctx.now,
        "ip_block",
        None,
        Some(ctx.ip),
        None,
        json!({"id": id, "cidr": net.to_string(), "reason": body.reason, "until": until}),
    )?;
    reload_blocks(ctx, tx)?;
    // IDs are opaque strings in the contract (shared/API.md), whatever the table keys them by.
    Ok(Reply::new(
        StatusCode::CREATED,
        json!({"id": id.to_string(), "cidr": net.to_string(), "reason": body.reason, "until": until, "created_at": created_at}),
    ))
}

/// `DELETE /v1/admin/ip-blocks/{id}`.
pub fn delete_ip_block(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let raw = ctx.param("id");
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::not_found(format!("there is no IP block `{raw}`")))?;
    let changed = tx.execute(
        "UPDATE ip_blocks SET removed_at = ?2 WHERE id = ?1 AND removed_at IS NULL",
        (id, crate::rfc3339(ctx.now)),
    )?;
    if changed == 0 {
        return Err(ApiError::not_found(format!(
            "there is no active IP block {id}"
        )));
    }
    audit::record(
        tx,
        ctx.now,
        "ip_unblock",
        None,
        Some(ctx.ip),
        None,
        json!({"id": id}),
    )?;
    reload_blocks(ctx, tx)?;
    Ok(Reply::new(StatusCode::NO_CONTENT, Value::Null))
}

/// `GET /v1/admin/audit?user=&type=&since=&limit=`, newest first.
pub fn audit(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let limit = ctx.limit(100)?;
    let since = match ctx.query.get("since") {
        Some(s) => Some(crate::rfc3339(parse_time(s, "since")?)),
        None => None,
    };
    let filter = audit::Filter {
        user: ctx.query.get("user").cloned(),
        kind: ctx.query.get("type").cloned(),
        since,
        limit,
    };
    Ok(Reply::ok(Value::Array(audit::search(tx, &filter)?)))
}

/// `GET /v1/admin/stats`.
pub fn stats(ctx: &Ctx<'_>, _tx: &Connection) -> Result<Reply, ApiError> {
    Ok(Reply::ok(ctx.state.stats.snapshot()))
}

/// Failed uses of the admin API, per address: each one is audited, and an address with
/// `limit` failures ([`ADMIN_FAILURE_LIMIT`] unless configured) inside
/// [`ADMIN_FAILURE_WINDOW`] is refused (429) without its token even being compared, until
/// the oldest failure ages out.
pub struct AdminFailures {
    limit: usize,
    by_ip: std::sync::Mutex<
        std::collections::HashMap<IpAddr, std::collections::VecDeque<std::time::Instant>>,
    >,
}

/// Failed uses of the admin API from one address that lock it out (the default of
/// `Config::admin_lockout_failures`).
pub const ADMIN_FAILURE_LIMIT: usize = 10;
pub const ADMIN_FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);
/// Addresses remembered at most (the oldest are forgotten first).
const ADMIN_FAILURE_ADDRESSES: usize = 4096;

impl Default for AdminFailures {
    fn default() -> Self {
        Self::new(ADMIN_FAILURE_LIMIT)
    }
}

impl AdminFailures {
    /// Locks an address out after `limit` failures (at least 1).
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            by_ip: std::sync::Mutex::default(),
        }
    }

    /// Failures that lock an address out.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Seconds until `ip` may try the admin API again, if it is locked out.
    pub fn locked(&self, ip: IpAddr, now: std::time::Instant) -> Option<u64> {
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        let failures = by_ip.get_mut(&ip)?;
        while failures
            .front()
            .is_some_and(|at| now.duration_since(*at) >= ADMIN_FAILURE_WINDOW)
        {
            failures.pop_front();
        }
        if failures.len() < self.limit {
            return None;
        }
        let oldest = *failures.front()?;
        let left = ADMIN_FAILURE_WINDOW.saturating_sub(now.duration_since(oldest));
        Some(left.as_secs().max(1))
    }

    /// Records a failure from `ip`; true when it locks the address out.
    pub fn record(&self, ip: IpAddr, now: std::time::Instant) -> bool {
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if by_ip.len() >= ADMIN_FAILURE_ADDRESSES && !by_ip.contains_key(&ip) {
            by_ip.retain(|_, f| {
                f.back()
                    .is_some_and(|at| now.duration_since(*at) < ADMIN_FAILURE_WINDOW)
            });
            if by_ip.len() >= ADMIN_FAILURE_ADDRESSES {
                if let Some(oldest) = by_ip
                    .iter()
                    .min_by_key(|(_, f)| f.back().copied())
                    .map(|(ip, _)| *ip)
                {
                    by_ip.remove(&oldest);
                }
            }
        }
        let failures = by_ip.entry(ip).or_default();
        failures.push_back(now);
        while failures.len() > self.limit {
            failures.pop_front();
        }
        failures.len() == self.limit
    }
}

/// Audits a failed use of the admin API (a missing or wrong token, or a student's token).
pub fn record_failure(state: &crate::AppState, ip: IpAddr, path: &str, why: &str) {
    let locks = state.admin_failures.record(ip, std::time::Instant::now());
    let conn = state.db.lock();
    let now = crate::now();
    let detail = json!({"path": path, "why": why});
    if let Err(error) = audit::record(
        &conn,
        now,
        "admin_auth_failure",
        None,
        Some(ip),
        None,
        detail,
    ) {
        tracing::error!(%error, "cannot audit a failed use of the admin API");
    }
    if locks {
        let detail = json!({"failures": state.admin_failures.limit(), "window_s": ADMIN_FAILURE_WINDOW.as_secs()});
        if let Err(error) = audit::record(&conn, now, "admin_lockout", None, Some(ip), None, detail)
        {
            tracing::error!(%error, "cannot audit an admin lockout");
        }
    }
}

/// The shortest admin token the server accepts.
pub const MIN_ADMIN_TOKEN_LEN: usize = 20;
