//! What the update gate needs to know, read from this computer's database: whether anybody's
//! attempt is open here, how much work (any student's) still waits to be delivered, and how
//! soon an exam the server announced opens — so an update never lands mid-exam, never with
//! answers still on the disk only, and never just before an exam.

use std::time::Duration;

use rusqlite::Connection;

use crate::clock::parse_ms;

/// An open exam window this long or longer (a take-home week) is not treated as an exam
/// window for updates: only the attempts themselves hold an update back then, otherwise a
/// week-long window would keep every computer of the school on the old version all week.
pub const LONG_WINDOW: Duration = Duration::from_secs(12 * 3600);

/// The gate's inputs that come from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    pub attempt_open: bool,
    /// Attempts, answers and submissions not yet delivered (telemetry does not count: it is
    /// evictable and survives the update anyway).
    pub work_waiting: u32,
    /// The soonest exam window from now, any student's list: `Some(ZERO)` while one is open.
    pub next_exam_in: Option<Duration>,
    /// A student is signed in (filled in by the caller, which knows the session).
    pub signed_in: bool,
}

/// Reads the facts at `now_ms` (ms since the epoch). A query that fails counts as "busy"
/// (an attempt open): when in doubt, an update waits.
pub fn gather(conn: &Connection, now_ms: i64) -> Facts {
    let attempt_open = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM attempts WHERE status = 'in_progress')",
            [],
            |r| r.get::<_, bool>(0),
        )
        .unwrap_or(true);
    let queued: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM queue WHERE status IN ('pending', 'in_flight')
             AND kind NOT IN ('telemetry', 'event')",
            [],
            |r| r.get(0),
        )
        .unwrap_or(i64::from(u32::MAX));
    // Saves not yet moved from the inbox into the queue are answers too.
    let inbox: i64 = conn
        .query_row("SELECT COUNT(*) FROM inbox", [], |r| r.get(0))
        .unwrap_or(0);
    let work_waiting = u32::try_from(queued.saturating_add(inbox)).unwrap_or(u32::MAX);
    Facts {
        attempt_open,
        work_waiting,
        next_exam_in: next_exam_in(conn, now_ms),
        signed_in: false,
    }
}

fn next_exam_in(conn: &Connection, now_ms: i64) -> Option<Duration> {
    let Ok(mut stmt) = conn.prepare("SELECT summary FROM exam_list") else {
        return Some(Duration::ZERO);
    };
    let Ok(rows) = stmt.query_map([], |r| r.get::<_, String>(0)) else {
        return Some(Duration::ZERO);
    };
    let mut soonest: Option<Duration> = None;
    for summary in rows.flatten() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&summary) else {
            continue;
        };
        let at = |key: &str| value.get(key).and_then(|v| v.as_str()).and_then(parse_ms);
        let (Some(opens), Some(closes)) = (at("opens_at"), at("closes_at")) else {
            continue;
        };
        if closes <= now_ms {
            continue;
        }
        let long = u64::try_from(closes - opens).unwrap_or(0) >= LONG_WINDOW.as_millis() as u64;
        let until = if opens <= now_ms {
            if long {
                continue;
            }
            Duration::ZERO
        } else {
            Duration::from_millis(u64::try_from(opens - now_ms).unwrap_or(0))
        };
        soonest = Some(soonest.map_or(until, |s| s.min(until)));
    }
    soonest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, crate::store::Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open_in(dir.path()).unwrap();
        (dir, store)
    }

    fn list(conn: &Connection, user: &str, id: &str, opens: &str, closes: &str) {
        let summary = serde_json::json!({"id": id, "opens_at": opens, "closes_at": closes});
        conn.execute(
            "INSERT INTO exam_list (username, exam_id, position, summary, fetched_at)
             VALUES (?1, ?2, 0, ?3, 0)",
            rusqlite::params![user, id, summary.to_string()],
        )
        .unwrap();
    }

    #[test]
    fn an_empty_computer_is_free_and_exams_of_any_student_count() {
        let (_dir, store) = store();
        let conn = store.lock();
        let now = parse_ms("2026-12-01T08:00:00Z").unwrap();
        assert_eq!(gather(&conn, now), Facts::default());

        list(
            &conn,
            "an",
            "e1",
            "2026-12-01T11:00:00Z",
            "2026-12-01T12:00:00Z",
        );
        list(
            &conn,
            "binh",
            "e2",
            "2026-12-01T09:00:00Z",
            "2026-12-01T10:00:00Z",
        );
        // Past windows do not count.
        list(
            &conn,
            "binh",
            "e0",
            "2026-11-30T09:00:00Z",
            "2026-11-30T10:00:00Z",
        );
        assert_eq!(
            gather(&conn, now).next_exam_in,
            Some(Duration::from_secs(3600))
        );
        let during = parse_ms("2026-12-01T09:30:00Z").unwrap();
        assert_eq!(gather(&conn, during).next_exam_in, Some(Duration::ZERO));
    }

    #[test]
    fn a_week_long_window_does_not_hold_updates_while_open() {
        let (_dir, store) = store();
        let conn = store.lock();
        list(
            &conn,
            "an",
            "week",
            "2026-11-30T00:00:00Z",
            "2026-12-06T00:00:00Z",
        );
        let now = parse_ms("2026-12-01T08:00:00Z").unwrap();
        assert_eq!(gather(&conn, now).next_exam_in, None);
        // …but its opening is still a window to keep quiet before.
        let before = parse_ms("2026-11-29T23:00:00Z").unwrap();
        assert_eq!(
            gather(&conn, before).next_exam_in,
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn an_open_attempt_and_waiting_answers_but_not_telemetry() {
        let (_dir, store) = store();
        let conn = store.lock();
        let now = parse_ms("2026-12-01T08:00:00Z").unwrap();
        let queue = |kind: &str, status: &str, key: &str| {
            conn.execute(
                "INSERT INTO queue (method, path, idempotency_key, stream, seq, priority, kind,
                 bytes, created_at, next_attempt_at, status)
                 VALUES ('PUT', '/x', ?1, 's', 0, 1, ?2, 10, 0, 0, ?3)",
                rusqlite::params![key, kind, status],
            )
            .unwrap();
        };
        queue("telemetry", "pending", "k1");
        queue("answer", "done", "k2");
        assert_eq!(gather(&conn, now).work_waiting, 0);
        queue("answer", "pending", "k3");
        queue("submission", "in_flight", "k4");
        queue("attempt", "dead", "k5");
        assert_eq!(gather(&conn, now).work_waiting, 2);

        conn.execute(
            "INSERT INTO attempts (attempt_id, exam_id, username, exam_version, started_at,
             deadline_at, status) VALUES ('a1', 'e1', 'an', 1, '2026-12-01T07:00:00Z',
             '2026-12-01T09:00:00Z', 'submitted')",
            [],
        )
        .unwrap();
        assert!(!gather(&conn, now).attempt_open);
        conn.execute(
            "INSERT INTO attempts (attempt_id, exam_id, username, exam_version, started_at,
             deadline_at) VALUES ('a2', 'e1', 'binh', 1, '2026-12-01T07:00:00Z',
             '2026-12-01T09:00:00Z')",
            [],
        )
        .unwrap();
        assert!(gather(&conn, now).attempt_open);
    }
}
