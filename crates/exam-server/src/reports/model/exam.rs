//! The exam report: its attempts (what each student delivered and what the server applied),
//! the delivery timeline, the late submissions, the outages and the fair-time ledger.
//!
//! Which attempts: with `range=exam`, every attempt of the exam; otherwise those that began
//! in the period. Everything about an attempt counts once it is in (its whole lost time, all
//! its answers), so an attempt is never cut in two by a period's edge.
//!
//! The figures, and where they come from:
//! - `answers`: questions with an answer held; `applied_writes`: answer saves that changed
//!   what the server holds (a stale or repeated save does not) — the server's own counts.
//! - `delivered_reported`: entries the student's app saw the server confirm during the
//!   attempt (every kind: the attempt, answers, events), from its minute summaries
//!   ([`crate::fleet`]); none when the app sent no summaries. Well below `applied_writes`, it
//!   points at a machine that stopped reporting, not at lost answers.
//! - The timeline, per minute when the period is at most [`MINUTE_STEPS_UP_TO_H`] hours
//!   (else per hour), UTC, steps without anything left out: attempts started, latest saves
//!   (each held answer at its last save, on the app's clock: the server keeps no earlier
//!   saves), submissions, and the entries the exam's apps reported delivered.
//! - Lost time, outages included, is [`crate::security::time_lost`]'s ledger, the same figures
//!   as `GET /v1/admin/exams/{id}/time-lost`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{columns, Cell, Fact, Table, Time};
use crate::reports::{Period, Range};
use crate::security::time_lost::AttemptLost;

/// Per minute up to this many hours, per hour beyond.
pub const MINUTE_STEPS_UP_TO_H: i64 = 6;

/// The exam, as the report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExamInfo {
    pub id: String,
    pub title: String,
    pub version: i64,
    pub opens_at: Time,
    pub closes_at: Time,
    pub duration_s: i64,
    pub question_count: i64,
}

/// An attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptFacts {
    pub attempt_id: String,
    pub student: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub late: Option<bool>,
    pub answers: i64,
    pub applied_writes: i64,
}

/// Everything the exam report is made of, as read from the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExamFacts {
    pub attempts: Vec<AttemptFacts>,
    /// Every attempt's ledger ([`crate::security::time_lost::exam_ledgers`]).
    pub ledgers: Vec<AttemptLost>,
    /// (attempt, the last save of one of its answers).
    pub saves: Vec<(String, DateTime<Utc>)>,
    /// The exam's minute summaries: (minute start ms, attempt, entries delivered).
    pub delivered: Vec<(i64, Option<String>, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub attempts: usize,
    pub submitted: usize,
    pub in_progress: usize,
    pub late: usize,
    pub answers: i64,
    pub applied_writes: i64,
    pub attempts_with_time_lost: usize,
    pub time_lost_ms: i64,
    pub outages: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRow {
    pub attempt_id: String,
    pub student: String,
    pub status: String,
    pub started_at: Time,
    pub deadline_at: Time,
    pub submitted_at: Option<Time>,
    pub late: Option<bool>,
    pub answers: i64,
    pub applied_writes: i64,
    pub delivered_reported: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    pub at: Time,
    pub started: i64,
    pub latest_saves: i64,
    pub submitted: i64,
    pub delivered_reported: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeline {
    pub step_s: i64,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LateRow {
    pub attempt_id: String,
    pub student: String,
    pub deadline_at: Time,
    pub submitted_at: Time,
    pub late_by_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutageRow {
    pub attempt_id: String,
    pub student: String,
    /// `offline` or `not_running`.
    pub kind: &'static str,
    pub started_at: Time,
    pub ended_at: Time,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerRow {
    pub attempt_id: String,
    pub student: String,
    pub status: String,
    pub offline_ms: i64,
    pub not_running_ms: i64,
    pub total_ms: i64,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExamReport {
    pub exam: ExamInfo,
    pub totals: Totals,
    pub attempts: Vec<AttemptRow>,
    pub timeline: Timeline,
    pub late: Vec<LateRow>,
    pub outages: Vec<OutageRow>,
    pub ledger: Vec<LedgerRow>,
}

/// The exam report of `exam` over `period` from its facts.
pub fn build(exam: ExamInfo, facts: ExamFacts, period: &Period) -> ExamReport {
    let in_period = |t: DateTime<Utc>| t >= period.from && t < period.to;
    let mut attempts: Vec<AttemptFacts> = facts
        .attempts
        .into_iter()
        .filter(|a| period.range == Range::Exam || in_period(a.started_at))
        .collect();
    attempts.sort_by(|a, b| {
        (&a.student, a.started_at, &a.attempt_id).cmp(&(&b.student, b.started_at, &b.attempt_id))
    });
    let ids: HashSet<&str> = attempts.iter().map(|a| a.attempt_id.as_str()).collect();

    let mut delivered: HashMap<&str, i64> = HashMap::new();
    for (_, attempt, n) in &facts.delivered {
        if let Some(a) = attempt.as_deref().filter(|a| ids.contains(a)) {
            *delivered.entry(a).or_default() += n;
        }
    }

    // The timeline.
    let step_s = if period.to - period.from <= Duration::hours(MINUTE_STEPS_UP_TO_H) {
        60
    } else {
        3600
    };
    let mut points: BTreeMap<i64, Point> = BTreeMap::new();
    // Adds [started, latest saves, submitted, delivered] to the step `t` falls in.
    let mut add = |t: DateTime<Utc>, counts: [i64; 4]| {
        if !in_period(t) {
            return;
        }
        let ms = t.timestamp_millis();
        let start = ms - ms.rem_euclid(step_s * 1000);
        let point = points.entry(start).or_insert_with(|| Point {
            at: Time(DateTime::from_timestamp_millis(start).unwrap_or(t)),
            started: 0,
            latest_saves: 0,
            submitted: 0,
            delivered_reported: 0,
        });
        point.started += counts[0];
        point.latest_saves += counts[1];
        point.submitted += counts[2];
        point.delivered_reported += counts[3];
    };
    for a in &attempts {
        add(a.started_at, [1, 0, 0, 0]);
        if let Some(submitted) = a.submitted_at {
            add(submitted, [0, 0, 1, 0]);
        }
    }
    for (attempt, saved) in &facts.saves {
        if ids.contains(attempt.as_str()) {
            add(*saved, [0, 1, 0, 0]);
        }
    }
    for (minute_ms, _, n) in &facts.delivered {
        if let Some(minute) = DateTime::from_timestamp_millis(*minute_ms) {
            add(minute, [0, 0, 0, *n]);
        }
    }

    let ledger: Vec<&AttemptLost> = facts
        .ledgers
        .iter()
        .filter(|l| ids.contains(l.attempt_id.as_str()))
        .collect();
    let student = |l: &AttemptLost| l.username.clone();
    let mut outages: Vec<OutageRow> = ledger
        .iter()
        .flat_map(|l| {
            l.ledger.items.iter().map(|item| OutageRow {
                attempt_id: l.attempt_id.clone(),
                student: student(l),
                kind: item.kind.as_str(),
                started_at: Time(item.started),
                ended_at: Time(item.ended),
                duration_ms: item.ms(),
            })
        })
        .collect();
    outages.sort_by(|a, b| {
        (a.started_at, &a.student, &a.attempt_id, a.kind).cmp(&(
            b.started_at,
            &b.student,
            &b.attempt_id,
            b.kind,
        ))
    });

    let late: Vec<LateRow> = attempts
        .iter()
        .filter(|a| a.late == Some(true))
        .filter_map(|a| {
            let submitted = a.submitted_at?;
            Some(LateRow {
                attempt_id: a.attempt_id.clone(),
                student: a.student.clone(),
                deadline_at: Time(a.deadline_at),
                submitted_at: Time(submitted),
                late_by_ms: (submitted - a.deadline_at).num_milliseconds(),
            })
        })
        .collect();

    let totals = Totals {
        attempts: attempts.len(),
        submitted: attempts.iter().filter(|a| a.status == "submitted").count(),
        in_progress: attempts.iter().filter(|a| a.status == "open").count(),
        late: late.len(),
        answers: attempts.iter().map(|a| a.answers).sum(),
        applied_writes: attempts.iter().map(|a| a.applied_writes).sum(),
        attempts_with_time_lost: ledger.iter().filter(|l| l.ledger.total_ms > 0).count(),
        time_lost_ms: ledger.iter().map(|l| l.ledger.total_ms).sum(),
        outages: outages.len(),
    };
    let ledger = ledger
        .into_iter()
        .map(|l| LedgerRow {
            attempt_id: l.attempt_id.clone(),
            student: l.username.clone(),
            status: l.status.clone(),
            offline_ms: l.ledger.offline_ms,
            not_running_ms: l.ledger.not_running_ms,
            total_ms: l.ledger.total_ms,
            summary: l.ledger.summary(),
        })
        .collect();
    let attempts = attempts
        .into_iter()
        .map(|a| AttemptRow {
            delivered_reported: delivered.get(a.attempt_id.as_str()).copied(),
            attempt_id: a.attempt_id,
            student: a.student,
            status: a.status,
            started_at: Time(a.started_at),
            deadline_at: Time(a.deadline_at),
            submitted_at: a.submitted_at.map(Time),
            late: a.late,
            answers: a.answers,
            applied_writes: a.applied_writes,
        })
        .collect();
    ExamReport {
        exam,
        totals,
        attempts,
        timeline: Timeline {
            step_s,
            points: points.into_values().collect(),
        },
        late,
        outages,
        ledger,
    }
}

impl ExamReport {
    /// Adds the totals to `facts`; the tables.
    pub fn sheet(&self, facts: &mut Vec<Fact>) -> Vec<Table> {
        let t = &self.totals;
        let count = |n: usize| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX));
        facts.extend([
            Fact::new("exam_title", "Exam", Cell::text(&self.exam.title)),
            Fact::new(
                "exam_window",
                "Exam window",
                Cell::text(format!(
                    "{} to {}",
                    self.exam.opens_at.0.format("%Y-%m-%d %H:%M"),
                    self.exam.closes_at.0.format("%Y-%m-%d %H:%M")
                )),
            ),
            Fact::new("attempts", "Attempts", count(t.attempts)),
            Fact::new("submitted", "Submitted", count(t.submitted)),
            Fact::new("in_progress", "In progress", count(t.in_progress)),
            Fact::new("late", "Late submissions", count(t.late)),
            Fact::new("answers", "Answers held", Cell::Int(t.answers)),
            Fact::new(
                "applied_writes",
                "Applied writes",
                Cell::Int(t.applied_writes),
            ),
            Fact::new(
                "attempts_with_time_lost",
                "Attempts that lost time",
                count(t.attempts_with_time_lost),
            ),
            Fact::new(
                "time_lost_ms",
                "Time lost, all attempts",
                Cell::Ms(t.time_lost_ms),
            ),
            Fact::new("outages", "Outages reported", count(t.outages)),
        ]);
        let student = |s: &str| Cell::text(s);
        vec![
            Table {
                name: "attempts",
                title: "Attempts",
                columns: columns(&[
                    ("student", "Student"),
                    ("status", "Status"),
                    ("started_at", "Started"),
                    ("submitted_at", "Submitted"),
                    ("late", "Late"),
                    ("answers", "Answers"),
                    ("applied_writes", "Applied writes"),
                    ("delivered_reported", "Delivered (app)"),
                    ("attempt_id", "Attempt"),
                ]),
                rows: self
                    .attempts
                    .iter()
                    .map(|a| {
                        vec![
                            student(&a.student),
                            Cell::text(&a.status),
                            Cell::Time(a.started_at.0),
                            Cell::opt(a.submitted_at, |t| Cell::Time(t.0)),
                            Cell::opt(a.late, Cell::Bool),
                            Cell::Int(a.answers),
                            Cell::Int(a.applied_writes),
                            Cell::opt(a.delivered_reported, Cell::Int),
                            Cell::text(&a.attempt_id),
                        ]
                    })
                    .collect(),
                empty: "No attempt in this period.",
            },
            Table {
                name: "timeline",
                title: if self.timeline.step_s == 60 {
                    "Delivery timeline (per minute)"
                } else {
                    "Delivery timeline (per hour)"
                },
                columns: columns(&[
                    ("at", "From"),
                    ("started", "Attempts started"),
                    ("latest_saves", "Latest saves"),
                    ("submitted", "Submitted"),
                    ("delivered_reported", "Delivered (apps)"),
                ]),
                rows: self
                    .timeline
                    .points
                    .iter()
                    .map(|p| {
                        vec![
                            Cell::Time(p.at.0),
                            Cell::Int(p.started),
                            Cell::Int(p.latest_saves),
                            Cell::Int(p.submitted),
                            Cell::Int(p.delivered_reported),
                        ]
                    })
                    .collect(),
                empty: "Nothing was delivered in this period.",
            },
            Table {
                name: "late",
                title: "Late submissions",
                columns: columns(&[
                    ("student", "Student"),
                    ("deadline_at", "Deadline"),
                    ("submitted_at", "Submitted"),
                    ("late_by_ms", "Late by"),
                    ("attempt_id", "Attempt"),
                ]),
                rows: self
                    .late
                    .iter()
                    .map(|l| {
                        vec![
                            student(&l.student),
                            Cell::Time(l.deadline_at.0),
                            Cell::Time(l.submitted_at.0),
                            Cell::Ms(l.late_by_ms),
                            Cell::text(&l.attempt_id),
                        ]
                    })
                    .collect(),
                empty: "No late submission.",
            },
            Table {
                name: "outages",
                title: "Outages (reported by the apps)",
                columns: columns(&[
                    ("student", "Student"),
                    ("kind", "What"),
                    ("started_at", "From"),
                    ("ended_at", "Until"),
                    ("duration_ms", "For"),
                    ("attempt_id", "Attempt"),
                ]),
                rows: self
                    .outages
                    .iter()
                    .map(|o| {
                        vec![
                            student(&o.student),
                            Cell::Term {
                                key: o.kind,
                                words: if o.kind == "offline" {
                                    "offline"
                                } else {
                                    "app not running"
                                },
                            },
                            Cell::Time(o.started_at.0),
                            Cell::Time(o.ended_at.0),
                            Cell::Ms(o.duration_ms),
                            Cell::text(&o.attempt_id),
                        ]
                    })
                    .collect(),
                empty: "No outage was reported.",
            },
            Table {
                name: "ledger",
                title: "Fair-time ledger",
                columns: columns(&[
                    ("student", "Student"),
                    ("status", "Status"),
                    ("offline_ms", "Offline"),
                    ("not_running_ms", "App not running"),
                    ("total_ms", "Time lost"),
                    ("summary", "Summary"),
                    ("attempt_id", "Attempt"),
                ]),
                rows: self
                    .ledger
                    .iter()
                    .map(|l| {
                        vec![
                            student(&l.student),
                            Cell::text(&l.status),
                            Cell::Ms(l.offline_ms),
                            Cell::Ms(l.not_running_ms),
                            Cell::Ms(l.total_ms),
                            Cell::text(&l.summary),
                            Cell::text(&l.attempt_id),
                        ]
                    })
                    .collect(),
                empty: "No attempt in this period.",
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::security::time_lost::{Kind as LostKind, Ledger, Lost};

    fn t(hms: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-12-01T{hms}Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn exam() -> ExamInfo {
        ExamInfo {
            id: "e".into(),
            title: "E".into(),
            version: 1,
            opens_at: Time(t("09:00:00")),
            closes_at: Time(t("11:00:00")),
            duration_s: 3600,
            question_count: 3,
        }
    }

    fn attempt(id: &str, student: &str, started: &str, submitted: Option<&str>) -> AttemptFacts {
        let started_at = t(started);
        let deadline_at = started_at + Duration::hours(1);
        let submitted_at = submitted.map(t);
        AttemptFacts {
            attempt_id: id.into(),
            student: student.into(),
            status: if submitted.is_some() {
                "submitted"
            } else {
                "open"
            }
            .into(),
            started_at,
            deadline_at,
            submitted_at,
            late: submitted_at.map(|s| s > deadline_at),
            answers: 2,
            applied_writes: 3,
        }
    }

    fn lost(id: &str, student: &str, items: &[(LostKind, &str, &str)]) -> AttemptLost {
        let items: Vec<Lost> = items
            .iter()
            .map(|(kind, from, to)| Lost {
                kind: *kind,
                started: t(from),
                ended: t(to),
            })
            .collect();
        let total: i64 = items.iter().map(Lost::ms).sum();
        AttemptLost {
            attempt_id: id.into(),
            username: student.into(),
            status: "submitted".into(),
            ledger: Ledger {
                offline_ms: total,
                not_running_ms: 0,
                total_ms: total,
                items,
            },
        }
    }

    fn facts() -> ExamFacts {
        ExamFacts {
            attempts: vec![
                attempt("a2", "Trần Văn Đức", "09:01:30", Some("10:02:00")),
                attempt("a1", "Nguyễn Thị Hương", "09:00:10", Some("09:50:00")),
                attempt("a3", "Lê Minh", "09:40:00", None),
            ],
            ledgers: vec![
                lost(
                    "a2",
                    "Trần Văn Đức",
                    &[(LostKind::Offline, "09:10:00", "09:12:00")],
                ),
                lost("a1", "Nguyễn Thị Hương", &[]),
                lost("a3", "Lê Minh", &[]),
            ],
            saves: vec![
                ("a1".into(), t("09:05:00")),
                ("a1".into(), t("09:05:59")),
                ("a2".into(), t("09:20:00")),
                ("a3".into(), t("09:41:00")),
            ],
            delivered: vec![
                (t("09:05:00").timestamp_millis(), Some("a1".into()), 4),
                (t("09:20:00").timestamp_millis(), Some("a2".into()), 2),
                (t("09:21:00").timestamp_millis(), Some("a2".into()), 1),
                // Another machine's minute in the exam, not tied to an attempt.
                (t("09:21:00").timestamp_millis(), None, 5),
            ],
        }
    }

    fn period(range: Range, from: &str, to: &str) -> Period {
        Period {
            range,
            from: t(from),
            to: t(to),
        }
    }

    #[test]
    fn the_whole_exam_counts_every_attempt_once() {
        let r = build(
            exam(),
            facts(),
            &period(Range::Exam, "09:00:00", "11:00:00"),
        );
        let students: Vec<&str> = r.attempts.iter().map(|a| a.student.as_str()).collect();
        assert_eq!(students, ["Lê Minh", "Nguyễn Thị Hương", "Trần Văn Đức"]);
        assert_eq!(
            r.attempts
                .iter()
                .map(|a| a.delivered_reported)
                .collect::<Vec<_>>(),
            [None, Some(4), Some(3)]
        );
        assert_eq!(
            r.totals,
            Totals {
                attempts: 3,
                submitted: 2,
                in_progress: 1,
                late: 1,
                answers: 6,
                applied_writes: 9,
                attempts_with_time_lost: 1,
                time_lost_ms: 120_000,
                outages: 1,
            }
        );
        assert_eq!(r.late.len(), 1);
        assert_eq!(r.late[0].student, "Trần Văn Đức");
        assert_eq!(r.late[0].late_by_ms, 30_000);
        assert_eq!(r.outages[0].duration_ms, 120_000);
        // The ledger keeps the time-lost endpoint's order: most lost first.
        assert_eq!(r.ledger[0].attempt_id, "a2");
        assert_eq!(r.ledger[0].summary, "Time lost: 2 min — offline 2 min");
    }

    #[test]
    fn the_timeline_counts_per_step_and_leaves_out_empty_steps() {
        let r = build(
            exam(),
            facts(),
            &period(Range::Exam, "09:00:00", "11:00:00"),
        );
        assert_eq!(r.timeline.step_s, 60);
        let points: Vec<(String, i64, i64, i64, i64)> = r
            .timeline
            .points
            .iter()
            .map(|p| {
                (
                    p.at.0.format("%H:%M").to_string(),
                    p.started,
                    p.latest_saves,
                    p.submitted,
                    p.delivered_reported,
                )
            })
            .collect();
        let want: Vec<(String, i64, i64, i64, i64)> = [
            ("09:00", 1, 0, 0, 0),
            ("09:01", 1, 0, 0, 0),
            ("09:05", 0, 2, 0, 4),
            ("09:20", 0, 1, 0, 2),
            ("09:21", 0, 0, 0, 6),
            ("09:40", 1, 0, 0, 0),
            ("09:41", 0, 1, 0, 0),
            ("09:50", 0, 0, 1, 0),
            ("10:02", 0, 0, 1, 0),
        ]
        .into_iter()
        .map(|(at, a, b, c, d)| (at.to_string(), a, b, c, d))
        .collect();
        assert_eq!(points, want);

        // Seven hours: per hour.
        let long = build(
            exam(),
            facts(),
            &period(Range::Custom, "08:00:00", "15:00:00"),
        );
        assert_eq!(long.timeline.step_s, 3600);
        let hours: Vec<(String, i64)> = long
            .timeline
            .points
            .iter()
            .map(|p| (p.at.0.format("%H:%M").to_string(), p.started))
            .collect();
        assert_eq!(hours, [("09:00".to_string(), 3), ("10:00".to_string(), 0)]);
    }

    #[test]
    fn a_shorter_period_takes_the_attempts_that_began_in_it() {
        let r = build(
            exam(),
            facts(),
            &period(Range::Custom, "09:01:00", "09:45:00"),
        );
        let ids: Vec<&str> = r.attempts.iter().map(|a| a.attempt_id.as_str()).collect();
        assert_eq!(ids, ["a3", "a2"]);
        assert_eq!(r.ledger.len(), 2);
        // a1's saves are not a2's or a3's.
        let saves: i64 = r.timeline.points.iter().map(|p| p.latest_saves).sum();
        assert_eq!(saves, 2);
        // a2 was submitted after the period: it is in, but its submission is off the timeline.
        assert_eq!(r.totals.submitted, 1);
        assert_eq!(
            r.timeline.points.iter().map(|p| p.submitted).sum::<i64>(),
            0
        );
    }
}
