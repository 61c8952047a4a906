//! The fair-time ledger of an attempt: when the student could not work or could not reach
//! the server — the network down (the monitor's outages) and the app not running (a crash,
//! a power cut, a restart) — and for how long, so a proctor can grant time fairly.
//!
//! While an attempt is in progress the app notes every [`ALIVE_EVERY`] that it is alive;
//! at its next start, a gap longer than [`GAP_AT_LEAST`] since the last note is time lost
//! with the app not running ([`note_downtime`]), kept and reported to the server as an
//! `app.not_running` event of the attempt's student (offline, delivered later). Outages are
//! reported by the device checks (`network.outage`). Times are this computer's clock.

use std::time::Duration;

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{ExamError, ExamService};
use crate::lifecycle::Workers;
use crate::owner::Owner;
use crate::queue::reported::{send_noted, Noted};
use crate::queue::Queue;

/// How often an attempt in progress is noted alive.
pub const ALIVE_EVERY: Duration = Duration::from_secs(5);
/// A gap longer than this between two signs of life is time lost (a busy computer may
/// delay a note by seconds; a restart takes longer).
pub const GAP_AT_LEAST: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum LostKind {
    /// The server could not be reached (the app kept every answer meanwhile).
    Offline,
    /// The app was not running.
    NotRunning,
}

/// One stretch of lost time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TimeLost {
    pub kind: LostKind,
    /// RFC 3339, this computer's clock.
    pub from: String,
    pub to: String,
    pub duration_ms: f64,
}

/// An attempt's ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct FairTime {
    pub attempt_id: String,
    pub items: Vec<TimeLost>,
    pub offline_ms: f64,
    pub not_running_ms: f64,
    /// The union of every stretch (offline while not running counts once).
    pub total_ms: f64,
}

/// The length of the union of `intervals` (ms; empty or reversed ones count nothing).
pub fn union_ms(intervals: &[(i64, i64)]) -> i64 {
    let mut sorted: Vec<(i64, i64)> = intervals.iter().copied().filter(|(a, b)| b > a).collect();
    sorted.sort_unstable();
    let mut total = 0;
    let mut current: Option<(i64, i64)> = None;
    for (a, b) in sorted {
        match current {
            Some((start, end)) if a <= end => current = Some((start, end.max(b))),
            Some((start, end)) => {
                total += end - start;
                current = Some((a, b));
            }
            None => current = Some((a, b)),
        }
    }
    if let Some((start, end)) = current {
        total += end - start;
    }
    total
}

/// Notes every attempt in progress alive at `now_ms`.
pub fn note_alive(conn: &Connection, now_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE attempts SET alive_at_ms = ?1 WHERE status = 'in_progress'",
        [now_ms],
    )
}

/// At start: the attempts in progress whose last sign of life is older than
/// [`GAP_AT_LEAST`] lost the time since — up to their deadline: an attempt left behind on a
/// shared computer loses nothing overnight. It is kept (and their sign of life renewed).
/// Returns the stretches noted: (attempt, from, to).
pub fn note_downtime(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<(String, i64, i64)>> {
    let gap = i64::try_from(GAP_AT_LEAST.as_millis()).unwrap_or(i64::MAX);
    let stale: Vec<(String, i64, String)> = {
        let mut stmt = conn.prepare(
            "SELECT attempt_id, alive_at_ms, deadline_at FROM attempts
             WHERE status = 'in_progress' AND alive_at_ms IS NOT NULL AND alive_at_ms < ?1",
        )?;
        let rows = stmt.query_map([now_ms - gap], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut noted = Vec::new();
    for (attempt, from, deadline) in stale {
        let to = crate::clock::parse_ms(&deadline).map_or(now_ms, |d| d.min(now_ms));
        if to - from < gap {
            continue;
        }
        conn.execute(
            "INSERT INTO app_downtime (attempt_id, started_ms, ended_ms) VALUES (?1, ?2, ?3)",
            params![attempt, from, to],
        )?;
        noted.push((attempt, from, to));
    }
    note_alive(conn, now_ms)?;
    Ok(noted)
}

/// Queues every stretch not reported yet as an `app.not_running` event of its attempt's
/// student (never evicted; the server deduplicates by the event's id).
pub fn report_downtime(queue: &Queue) -> rusqlite::Result<usize> {
    let rows: Vec<(i64, String, i64, i64, String, String)> = {
        let conn = queue.store().lock();
        let mut stmt = conn.prepare(
            "SELECT d.id, d.attempt_id, d.started_ms, d.ended_ms, a.origin, a.username
             FROM app_downtime d JOIN attempts a ON a.attempt_id = d.attempt_id
             WHERE d.reported = 0 AND a.origin IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut reported = 0;
    for (id, attempt, from, to, origin, student) in rows {
        let owner = Owner::new(origin, student);
        let at = crate::clock::rfc3339(to);
        let event = serde_json::json!([{
            "id": format!("not-running-{attempt}-{from}"),
            "type": "app.not_running",
            "at": at,
            "attrs": {
                "attempt_id": attempt,
                "started_at": crate::clock::rfc3339(from),
                "ended_at": at,
                "duration_ms": to - from,
            },
        }]);
        if !send_noted(queue, &owner, event, Noted::AppDowntime, &[id])? {
            continue;
        }
        reported += 1;
    }
    Ok(reported)
}

/// The ledger of `attempt_id` of `owner`, begun at `started_ms` and ended at `ended_ms`
/// (submitted, or now): its downtime and the outages noted while its student was signed
/// in, clipped to the attempt.
pub fn ledger(
    conn: &Connection,
    owner: &Owner,
    attempt_id: &str,
    started_ms: i64,
    ended_ms: i64,
) -> rusqlite::Result<FairTime> {
    let mut stretches: Vec<(LostKind, i64, i64)> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT started_ms, ended_ms FROM app_downtime WHERE attempt_id = ?1",
        )?;
        let rows = stmt.query_map([attempt_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (a, b) = row?;
            stretches.push((LostKind::NotRunning, a, b));
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT CAST(started_at AS INTEGER), CAST(COALESCE(ended_at, ?4) AS INTEGER)
             FROM outages
             WHERE origin = ?1 AND student = ?2 AND started_at < ?4
               AND COALESCE(ended_at, ?4) > ?3",
        )?;
        let rows = stmt.query_map(
            params![owner.origin, owner.student, started_ms, ended_ms],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )?;
        for row in rows {
            let (a, b) = row?;
            stretches.push((LostKind::Offline, a, b));
        }
    }
    let clipped: Vec<(LostKind, i64, i64)> = stretches
        .into_iter()
        .map(|(kind, a, b)| (kind, a.max(started_ms), b.min(ended_ms)))
        .filter(|(_, a, b)| b > a)
        .collect();
    let of = |kind: LostKind| -> f64 {
        let intervals: Vec<(i64, i64)> = clipped
            .iter()
            .filter(|(k, ..)| *k == kind)
            .map(|(_, a, b)| (*a, *b))
            .collect();
        union_ms(&intervals) as f64
    };
    let all: Vec<(i64, i64)> = clipped.iter().map(|(_, a, b)| (*a, *b)).collect();
    let mut items: Vec<TimeLost> = clipped
        .iter()
        .map(|(kind, a, b)| TimeLost {
            kind: *kind,
            from: crate::clock::rfc3339(*a),
            to: crate::clock::rfc3339(*b),
            duration_ms: (b - a) as f64,
        })
        .collect();
    items.sort_by(|x, y| x.from.cmp(&y.from));
    Ok(FairTime {
        attempt_id: attempt_id.to_string(),
        offline_ms: of(LostKind::Offline),
        not_running_ms: of(LostKind::NotRunning),
        total_ms: union_ms(&all) as f64,
        items,
    })
}

impl ExamService {
    /// The fair-time ledger of one of the signed-in student's attempts.
    pub fn fair_time(&self, attempt_id: &str) -> Result<FairTime, ExamError> {
        let attempt = self.attempt(attempt_id)?;
        let now = crate::clock::now_ms();
        let started = crate::clock::parse_ms(&attempt.started_at).unwrap_or(now);
        let ended = attempt
            .submitted_at
            .as_deref()
            .and_then(crate::clock::parse_ms)
            .unwrap_or(now)
            .max(started);
        let conn = self.inner.store.lock();
        ledger(&conn, &attempt.owner, attempt_id, started, ended).map_err(|e| self.err(e))
    }

    /// At start, notes the time attempts in progress lost to the app not running and
    /// reports it; then notes them alive every [`ALIVE_EVERY`] until the workers stop.
    pub fn spawn_ledger(&self, workers: &Workers) {
        let service = self.clone();
        workers.spawn("fair-time ledger", move |stop| async move {
            let mut beats: u64 = 0;
            loop {
                let working = service.clone();
                let first = beats == 0;
                let _ = tokio::task::spawn_blocking(move || {
                    let now = crate::clock::now_ms();
                    let conn = working.inner.store.lock();
                    let noted = if first {
                        note_downtime(&conn, now).map(|n| n.len())
                    } else {
                        note_alive(&conn, now).map(|_| 0)
                    };
                    drop(conn);
                    match noted {
                        Ok(n) if n > 0 => tracing::info!(attempts = n, "time lost to the app not running was noted"),
                        Ok(_) => {}
                        Err(error) => tracing::warn!(error = %working.err(error), "the fair-time ledger could not be written"),
                    }
                    // Reported at start, and again each minute while any is left.
                    if first || beats.is_multiple_of(12) {
                        if let Err(error) = report_downtime(&working.inner.queue) {
                            tracing::warn!(%error, "time lost could not be reported");
                        }
                    }
                })
                .await;
                beats += 1;
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(ALIVE_EVERY) => {}
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_union_counts_overlaps_once() {
        // (intervals, union)
        let table: &[(&[(i64, i64)], i64)] = &[
            (&[], 0),
            (&[(0, 10)], 10),
            (&[(0, 10), (20, 25)], 15),
            (&[(0, 10), (5, 15)], 15),              // overlapping
            (&[(0, 100), (10, 20), (30, 40)], 100), // nested
            (&[(10, 20), (0, 5)], 15),              // out of order
            (&[(0, 10), (10, 20)], 20),             // touching
            (&[(10, 0), (5, 5)], 0),                // reversed, empty
        ];
        for (intervals, expected) in table {
            assert_eq!(union_ms(intervals), *expected, "{intervals:?}");
        }
    }

    #[test]
    fn a_restart_and_an_outage_make_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("db")).unwrap();
        let conn = store.lock();
        let owner = Owner::new("http://exam.test", "student1");
        conn.execute(
            "INSERT INTO attempts (attempt_id, exam_id, username, exam_version, started_at,
                                   deadline_at, origin)
             VALUES ('a1', 'e', 'student1', 1, 'x', '2099-01-01T00:00:00Z', 'http://exam.test')",
            [],
        )
        .unwrap();
        let t0 = 1_000_000;
        note_alive(&conn, t0 + 5_000).unwrap();
        // A quick restart (within the gap) is no time lost…
        assert!(note_downtime(&conn, t0 + 12_000).unwrap().is_empty());
        // …a crash that lasted 80 s is.
        let noted = note_downtime(&conn, t0 + 92_000).unwrap();
        assert_eq!(noted, vec![("a1".to_string(), t0 + 12_000, t0 + 92_000)]);
        // An outage from 60 s to 150 s (partly while the app was down), one before the
        // attempt, and one of another student.
        for (from, to, student) in [
            (t0 + 60_000, t0 + 150_000, "student1"),
            (t0 - 50_000, t0 - 40_000, "student1"),
            (t0 + 1_000, t0 + 9_000, "student2"),
        ] {
            conn.execute(
                "INSERT INTO outages (state, started_at, ended_at, duration_ms, origin, student)
                 VALUES ('offline', ?1, ?2, ?2 - ?1, 'http://exam.test', ?3)",
                params![from, to, student],
            )
            .unwrap();
        }
        let ledger = ledger(&conn, &owner, "a1", t0, t0 + 200_000).unwrap();
        assert_eq!(ledger.not_running_ms, 80_000.0);
        assert_eq!(ledger.offline_ms, 90_000.0);
        // 12 s → 150 s: the stretches overlap from 60 s to 92 s.
        assert_eq!(ledger.total_ms, 138_000.0);
        assert_eq!(
            ledger.items.iter().map(|i| i.kind).collect::<Vec<_>>(),
            vec![LostKind::NotRunning, LostKind::Offline]
        );
        // An attempt left behind, past its deadline: nothing more is lost to it.
        conn.execute(
            "INSERT INTO attempts (attempt_id, exam_id, username, exam_version, started_at,
                                   deadline_at, origin, alive_at_ms)
             VALUES ('old', 'e', 'student3', 1, 'x', '1970-01-01T00:16:50Z', 'http://exam.test', ?1)",
            [t0],
        )
        .unwrap();
        assert!(note_downtime(&conn, t0 + 10_000_000)
            .unwrap()
            .iter()
            .all(|(a, ..)| a != "old"));
    }
}
