//! Rule `request_burst`: a signed-in student (or an address) hit the server's rate limit.
//!
//! The rate-limit path is the hot one under abuse — a flood is thousands of 429s a second —
//! so the rule must cost next to nothing there. An in-memory gate ([`BurstGate`]) lets the
//! first refusal of a subject in each [`WINDOW_S`] through, and only that one touches SQLite
//! (one alert row, deduplicated again by [`super::raise`] across restarts). The 429 is the
//! response; the alert only tells proctors and IT who is hammering the server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{raise, NewAlert, WINDOW_S};
use crate::{AppState, RateSpec};

/// Subjects remembered at most; beyond, the ones alerted longest ago are forgotten first, and
/// a flood from more subjects than this within one window alerts about the first ones only.
const MAX_SUBJECTS: usize = 100_000;

/// The longest request path kept in an alert's evidence (a path is the client's text).
const MAX_PATH_CHARS: usize = 200;

fn window() -> Duration {
    Duration::from_secs(WINDOW_S.unsigned_abs())
}

/// When each subject (`user:ID`, `ip:ADDRESS`) was last let through to an alert.
#[derive(Default)]
pub struct BurstGate {
    alerted: Mutex<HashMap<String, Instant>>,
}

impl BurstGate {
    /// Whether `subject` may be alerted about now: true at most once per window per subject
    /// (and then remembered as alerted at `now`).
    pub fn first_in_window(&self, subject: &str, now: Instant) -> bool {
        let mut alerted = self.alerted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = alerted.get(subject) {
            if now.saturating_duration_since(*at) < window() {
                return false;
            }
        } else if alerted.len() >= MAX_SUBJECTS {
            alerted.retain(|_, at| now.saturating_duration_since(*at) < window());
            if alerted.len() >= MAX_SUBJECTS {
                return false;
            }
        }
        alerted.insert(subject.to_string(), now);
        true
    }
}

/// Who hit a limit.
#[derive(Debug, Clone, Copy)]
pub enum Burst<'a> {
    /// A signed-in student's requests (the per-user limit), from `ip`.
    Student {
        user_id: i64,
        username: &'a str,
        ip: IpAddr,
    },
    /// An address's requests, whoever sent them (the per-address limit).
    Address { ip: IpAddr },
}

impl Burst<'_> {
    /// The gate's key of this subject.
    pub fn subject(&self) -> String {
        match self {
            Burst::Student { user_id, .. } => format!("user:{user_id}"),
            Burst::Address { ip } => format!("ip:{ip}"),
        }
    }
}

/// A request of `who` to `method path` was refused with 429 under `limit`. Cheap unless this
/// is the subject's first refusal in the window: then the alert is written. Blocking
/// (SQLite): call it off the async workers, or check [`BurstGate::first_in_window`] there and
/// call [`record`] off them.
pub fn on_rate_limited(
    state: &AppState,
    who: Burst<'_>,
    method: &str,
    path: &str,
    limit: RateSpec,
    retry_after_s: u64,
) {
    if state.bursts.first_in_window(&who.subject(), Instant::now()) {
        record(state, who, method, path, limit, retry_after_s);
    }
}

/// Writes the alert, in a short transaction of its own. A failure is logged: the 429 stands
/// either way, and the request that hit the limit must not fail differently because of it.
pub fn record(
    state: &AppState,
    who: Burst<'_>,
    method: &str,
    path: &str,
    limit: RateSpec,
    retry_after_s: u64,
) {
    if let Err(error) = write(state, who, method, path, limit, retry_after_s) {
        tracing::error!(%error, subject = %who.subject(), "cannot record a request_burst alert");
    }
}

fn write(
    state: &AppState,
    who: Burst<'_>,
    method: &str,
    path: &str,
    limit: RateSpec,
    retry_after_s: u64,
) -> rusqlite::Result<()> {
    let now = crate::now();
    let path: String = path.chars().take(MAX_PATH_CHARS).collect();
    let (username, ip, scope, summary) = match who {
        Burst::Student { username, ip, .. } => (
            Some(username),
            ip,
            "student",
            format!(
                "{username}: too many requests ({} a second, bursts of {}); refused with 429",
                limit.per_second, limit.burst
            ),
        ),
        Burst::Address { ip } => (
            None,
            ip,
            "address",
            format!(
                "too many requests from {ip} ({} a second, bursts of {}); refused with 429",
                limit.per_second, limit.burst
            ),
        ),
    };
    let ip = ip.to_string();
    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    raise(
        &tx,
        now,
        NewAlert {
            rule: "request_burst",
            severity: "warning",
            username,
            ip: Some(&ip),
            device: None,
            attempt_id: None,
            subject: Some(scope),
            summary,
            evidence: json!({
                "scope": scope,
                "limit": {"per_second": limit.per_second, "burst": limit.burst},
                "method": method,
                "path": path,
                "retry_after_s": retry_after_s,
                "window_s": WINDOW_S,
            }),
            response: None,
        },
    )?;
    tx.commit()?;
    drop(conn);
    state.alerts_changed.notify_waiters();
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_subject_is_let_through_once_per_window() {
        let gate = BurstGate::default();
        let t0 = Instant::now();
        let w = window();
        // (subject, seconds after t0, let through)
        let table: &[(&str, u64, bool)] = &[
            ("user:1", 0, true),
            ("user:1", 0, false),
            ("user:1", 1, false),
            ("ip:10.0.0.1", 1, true),
            ("user:2", 2, true),
            ("user:1", w.as_secs() - 1, false),
            ("user:1", w.as_secs(), true),
            ("user:1", w.as_secs() + 1, false),
            ("ip:10.0.0.1", w.as_secs() + 2, true),
        ];
        for (i, (subject, after, expected)) in table.iter().enumerate() {
            let now = t0 + Duration::from_secs(*after);
            assert_eq!(
                gate.first_in_window(subject, now),
                *expected,
                "row {i}: {subject} at +{after} s"
            );
        }
    }
}
