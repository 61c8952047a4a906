//! The fair-time ledger: for each attempt, how much of it the student lost — offline (the app
//! reported a `network.outage`, in any state: no network, or the server out of reach) and with
//! the app not running (an `app.not_running`: a crash, a power cut, a restart) — so a proctor
//! can grant time fairly.
//!
//! Invariants:
//! - Only the app's own records count. The server never infers lost time from its side (say,
//!   a long gap without a request from the student's session): an app working offline on
//!   purpose sends nothing and loses nothing, and the server cannot tell the two apart.
//! - A record counts only within the attempt, `[started_at, submitted_at or now]`; what lies
//!   outside is clipped off. A record that cannot be placed (no start, an end before its
//!   start, nothing left after clipping) counts for nothing; its event is still in the
//!   timeline, as sent.
//! - A moment counts once: `offline_ms` and `not_running_ms` are each the length of the union
//!   of their records (two reports of one outage are one outage), and `total_ms` the length of
//!   the union of both (an outage while the app was not running is lost once). So `total_ms`
//!   is at most `offline_ms + not_running_ms`.
//!
//! The arithmetic is [`ledger`], pure and table-tested here; [`exam_ledgers`] reads the records
//! of a whole exam, for the time-lost endpoint and the exam report alike.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use super::outage::{human_duration, Span};
use crate::problem::{ApiError, Reply};
use crate::routes::Ctx;

/// The event types that are records of lost time.
pub const EVENT_TYPES: [&str; 2] = ["network.outage", "app.not_running"];

/// What a record says was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Offline,
    NotRunning,
}

impl Kind {
    /// The kind an event of type `event_type` records, if it is a record of lost time.
    pub fn of_event(event_type: &str) -> Option<Self> {
        match event_type {
            "network.outage" => Some(Self::Offline),
            "app.not_running" => Some(Self::NotRunning),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::NotRunning => "not_running",
        }
    }
}

/// One record as it counts: within the attempt, of positive length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    pub kind: Kind,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
}

impl Lost {
    pub fn ms(&self) -> i64 {
        (self.ended - self.started).num_milliseconds()
    }
}

/// An attempt's lost time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    pub offline_ms: i64,
    pub not_running_ms: i64,
    pub total_ms: i64,
    /// Every record that counts, clipped, by start.
    pub items: Vec<Lost>,
}

/// The ledger of an attempt that ran over `window` (`[start, end]`), from the app's records:
/// see the module's invariants.
pub fn ledger(window: (DateTime<Utc>, DateTime<Utc>), records: &[(Kind, Span)]) -> Ledger {
    // In whole milliseconds, as the API shows times: an item's `duration_ms` is exactly the
    // time between its `started_at` and `ended_at`.
    let (from, to) = (window.0.trunc_subsecs(3), window.1.trunc_subsecs(3));
    let mut items: Vec<Lost> = records
        .iter()
        .filter_map(|(kind, span)| {
            let started = span.started?;
            // The end the app gave, or its start plus the duration it measured.
            let ended = span.ended.or_else(|| {
                let ms = i64::try_from(span.duration_ms?).ok()?;
                started.checked_add_signed(Duration::try_milliseconds(ms)?)
            })?;
            let (started, ended) = (
                started.trunc_subsecs(3).max(from),
                ended.trunc_subsecs(3).min(to),
            );
            (started < ended).then_some(Lost {
                kind: *kind,
                started,
                ended,
            })
        })
        .collect();
    items.sort_by_key(|l| (l.started, l.ended, l.kind));
    let union = |kind: Option<Kind>| {
        union_ms(
            items
                .iter()
                .filter(|l| kind.is_none_or(|k| l.kind == k))
                .map(|l| (l.started, l.ended)),
        )
    };
    Ledger {
        offline_ms: union(Some(Kind::Offline)),
        not_running_ms: union(Some(Kind::NotRunning)),
        total_ms: union(None),
        items,
    }
}

/// The length of the union of intervals given in order of their starts.
fn union_ms(sorted: impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)>) -> i64 {
    let mut total = 0;
    let mut run: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    for (start, end) in sorted {
        run = match run {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += (e - s).num_milliseconds();
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + run.map_or(0, |(s, e)| (e - s).num_milliseconds())
}

impl Ledger {
    /// What a proctor reads: "Time lost: 3 min 20 s — offline 2 min, app not running 1 min
    /// 20 s", "No time lost". The words are the server's, like the timeline's.
    pub fn summary(&self) -> String {
        if self.total_ms == 0 {
            return "No time lost".into();
        }
        let ms = |ms: i64| human_duration(u64::try_from(ms).unwrap_or(0));
        let mut parts = Vec::new();
        if self.offline_ms > 0 {
            parts.push(format!("offline {}", ms(self.offline_ms)));
        }
        if self.not_running_ms > 0 {
            parts.push(format!("app not running {}", ms(self.not_running_ms)));
        }
        let mut text = format!("Time lost: {} — {}", ms(self.total_ms), parts.join(", "));
        let both = self.offline_ms + self.not_running_ms - self.total_ms;
        if both > 0 {
            text.push_str(&format!(" ({} of it both at once, counted once)", ms(both)));
        }
        text
    }

    /// The timeline's `time_lost`: `{offline_ms, not_running_ms, total_ms, summary, items:
    /// [{kind, started_at, ended_at, duration_ms}]}`.
    pub fn to_json(&self) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|l| {
                json!({"kind": l.kind.as_str(), "started_at": crate::rfc3339(l.started),
                       "ended_at": crate::rfc3339(l.ended), "duration_ms": l.ms()})
            })
            .collect();
        json!({
            "offline_ms": self.offline_ms,
            "not_running_ms": self.not_running_ms,
            "total_ms": self.total_ms,
            "summary": self.summary(),
            "items": items,
        })
    }
}

/// An attempt's window from its stored times: `[started_at, submitted_at or now]`. `None`
/// when a stored time does not read (never written so by this server).
pub fn window(
    started_at: &str,
    submitted_at: Option<&str>,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let time = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let end = match submitted_at {
        Some(t) => time(t)?,
        None => now,
    };
    Some((time(started_at)?, end))
}

/// A record from an event's type and `attrs` (of any shape).
pub fn record(event_type: &str, attrs: &Value) -> Option<(Kind, Span)> {
    let kind = Kind::of_event(event_type)?;
    let empty = Map::new();
    Some((kind, Span::from_attrs(attrs.as_object().unwrap_or(&empty))))
}

/// One attempt of an exam with its lost time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLost {
    pub attempt_id: String,
    pub username: String,
    pub status: String,
    pub ledger: Ledger,
}

/// The ledger of every attempt of `exam` as of `now` (an attempt in progress runs until now),
/// most time lost first, then by student and attempt: what the time-lost endpoint and the
/// exam report both show, so the two never disagree.
pub fn exam_ledgers(
    tx: &Connection,
    exam: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<Vec<AttemptLost>> {
    struct Row {
        id: String,
        username: String,
        status: String,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
        records: Vec<(Kind, Span)>,
    }
    let mut stmt = tx.prepare_cached(
        "SELECT a.id, u.username, a.status, a.started_at, a.submitted_at
         FROM attempts a JOIN users u ON u.id = a.user_id WHERE a.exam_id = ?1",
    )?;
    let mut rows = stmt
        .query_map([exam], |r| {
            Ok(Row {
                id: r.get(0)?,
                username: r.get(1)?,
                status: r.get(2)?,
                window: window(
                    &r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?.as_deref(),
                    now,
                ),
                records: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    // The records of all of them at once (the events are keyed by student).
    let mut stmt = tx.prepare_cached(
        "SELECT a.id, e.type, e.attrs FROM attempts a
           JOIN events e ON e.user_id = a.user_id AND e.type IN (?2, ?3) AND json_valid(e.attrs)
                        AND json_extract(e.attrs, '$.attempt_id') = a.id
         WHERE a.exam_id = ?1",
    )?;
    let events = stmt.query_map(params![exam, EVENT_TYPES[0], EVENT_TYPES[1]], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for event in events {
        let (attempt, kind, attrs) = event?;
        let attrs: Value = serde_json::from_str(&attrs).unwrap_or(Value::Null);
        if let (Ok(i), Some(record)) = (
            rows.binary_search_by(|row| row.id.as_str().cmp(&attempt)),
            record(&kind, &attrs),
        ) {
            rows[i].records.push(record);
        }
    }
    let mut attempts: Vec<AttemptLost> = rows
        .into_iter()
        .map(|row| AttemptLost {
            ledger: row
                .window
                .map(|w| ledger(w, &row.records))
                .unwrap_or_default(),
            attempt_id: row.id,
            username: row.username,
            status: row.status,
        })
        .collect();
    attempts.sort_by(|a, b| {
        b.ledger
            .total_ms
            .cmp(&a.ledger.total_ms)
            .then_with(|| a.username.cmp(&b.username))
            .then_with(|| a.attempt_id.cmp(&b.attempt_id))
    });
    Ok(attempts)
}

/// `GET /v1/admin/exams/{exam_id}/time-lost`: every attempt of the exam with its lost time,
/// most first: `{exam_id, attempts: [{attempt_id, username, status, offline_ms,
/// not_running_ms, total_ms}]}`. 404 for an unknown exam.
pub fn exam_time_lost(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let exam = ctx.param("exam_id");
    let known: Option<i64> = tx
        .query_row("SELECT 1 FROM exams WHERE id = ?1", [exam], |r| r.get(0))
        .optional()?;
    if known.is_none() {
        return Err(ApiError::not_found(format!("there is no exam `{exam}`")));
    }
    let attempts: Vec<Value> = exam_ledgers(tx, exam, ctx.now)?
        .into_iter()
        .map(|a| {
            json!({"attempt_id": a.attempt_id, "username": a.username, "status": a.status,
                   "offline_ms": a.ledger.offline_ms, "not_running_ms": a.ledger.not_running_ms,
                   "total_ms": a.ledger.total_ms})
        })
        .collect();
    Ok(Reply::ok(json!({"exam_id": exam, "attempts": attempts})))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `hh:mm:ss` on the day of the tests, UTC.
    fn t(hms: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-11-28T{hms}Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A record from `from` to `to`, with its duration, as the app sends it.
    fn span(from: &str, to: &str) -> Span {
        let (started, ended) = (t(from), t(to));
        Span {
            started: Some(started),
            ended: Some(ended),
            duration_ms: u64::try_from((ended - started).num_milliseconds()).ok(),
        }
    }

    fn attrs(value: Value) -> Span {
        Span::from_attrs(value.as_object().unwrap())
    }

    use Kind::{NotRunning as N, Offline as O};

    #[test]
    fn lost_time_is_the_union_of_the_records_within_the_attempt() {
        let window = (t("09:00:00"), t("10:00:00"));
        /// (case, records, (offline_ms, not_running_ms, total_ms), items that count)
        type Case = (&'static str, Vec<(Kind, Span)>, (i64, i64, i64), usize);
        let table: Vec<Case> = vec![
            ("nothing reported", vec![], (0, 0, 0), 0),
            (
                "apart",
                vec![
                    (O, span("09:10:00", "09:12:00")),
                    (N, span("09:20:00", "09:21:20")),
                ],
                (120_000, 80_000, 200_000),
                2,
            ),
            (
                "overlapping across kinds: the overlap is lost once",
                vec![
                    (O, span("09:10:00", "09:12:00")),
                    (N, span("09:11:00", "09:13:00")),
                ],
                (120_000, 120_000, 180_000),
                2,
            ),
            (
                "nested: an outage while the app was not running",
                vec![
                    (N, span("09:10:00", "09:15:00")),
                    (O, span("09:11:00", "09:12:00")),
                ],
                (60_000, 300_000, 300_000),
                2,
            ),
            (
                "one outage reported twice, and one touching it",
                vec![
                    (O, span("09:10:00", "09:12:00")),
                    (O, span("09:10:00", "09:12:00")),
                    (O, span("09:12:00", "09:12:30")),
                ],
                (150_000, 0, 150_000),
                3,
            ),
            (
                "overlapping within a kind, given out of order",
                vec![
                    (N, span("09:40:00", "09:45:00")),
                    (N, span("09:30:00", "09:42:00")),
                ],
                (0, 900_000, 900_000),
                2,
            ),
            (
                "straddling the start and the end: only the parts within",
                vec![
                    (N, span("08:59:00", "09:00:30")),
                    (O, span("09:59:30", "10:00:30")),
                ],
                (30_000, 30_000, 60_000),
                2,
            ),
            (
                "longer than the attempt: the whole attempt",
                vec![(O, span("08:50:00", "10:10:00"))],
                (3_600_000, 0, 3_600_000),
                1,
            ),
            (
                "wholly outside the attempt",
                vec![
                    (O, span("08:00:00", "08:10:00")),
                    (N, span("10:00:00", "10:10:00")),
                ],
                (0, 0, 0),
                0,
            ),
            (
                "an end before its start, and a zero length: nothing",
                vec![
                    (O, span("09:12:00", "09:10:00")),
                    (N, span("09:05:00", "09:05:00")),
                ],
                (0, 0, 0),
                0,
            ),
            (
                "malformed: no start, unreadable times, a negative duration, no end",
                vec![
                    (
                        O,
                        attrs(json!({"ended_at": "2026-11-28T09:10:00Z", "duration_ms": 60_000})),
                    ),
                    (O, attrs(json!({"started_at": "soon", "ended_at": "later"}))),
                    (
                        N,
                        attrs(
                            json!({"started_at": "2026-11-28T09:10:00Z", "duration_ms": -60_000}),
                        ),
                    ),
                    (N, attrs(json!({"started_at": "2026-11-28T09:10:00Z"}))),
                    (N, attrs(json!({"started_at": null, "ended_at": ["09:12"]}))),
                    (N, attrs(json!({}))),
                ],
                (0, 0, 0),
                0,
            ),
            (
                "under a millisecond: nothing; times in whole milliseconds",
                vec![
                    (
                        O,
                        attrs(json!({"started_at": "2026-11-28T09:10:00.0001Z",
                                     "ended_at": "2026-11-28T09:10:00.0009Z"})),
                    ),
                    (
                        N,
                        attrs(json!({"started_at": "2026-11-28T09:20:00.0009Z",
                                     "ended_at": "2026-11-28T09:20:00.0019Z"})),
                    ),
                ],
                (0, 1, 1),
                1,
            ),
            (
                "no end: its start plus the duration it measured (any offset)",
                vec![(
                    N,
                    attrs(
                        json!({"started_at": "2026-11-28T10:20:00+01:00", "duration_ms": 80_000}),
                    ),
                )],
                (0, 80_000, 80_000),
                1,
            ),
        ];
        for (case, records, (offline, not_running, total), counted) in table {
            let ledger = ledger(window, &records);
            assert_eq!(
                (ledger.offline_ms, ledger.not_running_ms, ledger.total_ms),
                (offline, not_running, total),
                "{case}"
            );
            assert_eq!(ledger.items.len(), counted, "{case}: {ledger:?}");
            assert!(
                ledger
                    .items
                    .iter()
                    .all(|l| l.started >= window.0 && l.ended <= window.1 && l.ms() > 0),
                "{case}: {ledger:?}"
            );
            assert!(
                ledger
                    .items
                    .windows(2)
                    .all(|w| w[0].started <= w[1].started),
                "{case}: by start"
            );
        }
    }

    #[test]
    fn an_attempt_that_has_not_started_yet_has_lost_nothing() {
        // (An attempt may start up to a minute ahead of the server's clock.)
        let ledger = ledger(
            (t("09:10:00"), t("09:09:30")),
            &[(O, span("09:09:00", "09:11:00"))],
        );
        assert_eq!(ledger, Ledger::default());
    }

    #[test]
    fn the_summary_says_what_was_lost_and_counts_a_moment_once() {
        let summary = |offline_ms, not_running_ms, total_ms| {
            Ledger {
                offline_ms,
                not_running_ms,
                total_ms,
                items: vec![],
            }
            .summary()
        };
        // ((offline, not running, total), words)
        let table: &[((i64, i64, i64), &str)] = &[
            ((0, 0, 0), "No time lost"),
            (
                (120_000, 80_000, 200_000),
                "Time lost: 3 min 20 s — offline 2 min, app not running 1 min 20 s",
            ),
            (
                (125_000, 0, 125_000),
                "Time lost: 2 min 5 s — offline 2 min 5 s",
            ),
            (
                (0, 3_600_000, 3_600_000),
                "Time lost: 1 h — app not running 1 h",
            ),
            (
                (120_000, 120_000, 180_000),
                "Time lost: 3 min — offline 2 min, app not running 2 min \
                 (1 min of it both at once, counted once)",
            ),
        ];
        for ((offline, not_running, total), words) in table {
            assert_eq!(summary(*offline, *not_running, *total), *words);
        }
    }

    #[test]
    fn the_window_ends_at_the_submission_or_now() {
        let now = t("09:30:00");
        assert_eq!(
            window("2026-11-28T09:00:00.000Z", None, now),
            Some((t("09:00:00"), now))
        );
        assert_eq!(
            window(
                "2026-11-28T09:00:00.000Z",
                Some("2026-11-28T09:20:00.000Z"),
                now
            ),
            Some((t("09:00:00"), t("09:20:00")))
        );
        assert_eq!(window("not a time", None, now), None);
    }
}
