//! What the reports read from the database: rows, as plainly as SQL gives them, for the pure
//! builders of [`super::model`]. Stored times are RFC 3339 text written by this server; a row
//! whose time does not read is left out (it cannot be placed in a period).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::model::exam::{AttemptFacts, ExamFacts, ExamInfo};
use super::model::lab::LabMinute;
use super::model::security::AlertFacts;
use super::model::Time;
use super::Period;

fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The exam `id`, if there is one.
pub fn exam(conn: &Connection, id: &str) -> rusqlite::Result<Option<ExamInfo>> {
    let row = conn
        .query_row(
            "SELECT id, title, version, opens_at, closes_at, duration_s,
                    COALESCE(json_array_length(questions), 0)
             FROM exams WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            },
        )
        .optional()?;
    Ok(row.and_then(
        |(id, title, version, opens, closes, duration_s, question_count)| {
            Some(ExamInfo {
                id,
                title,
                version,
                opens_at: Time(time(&opens)?),
                closes_at: Time(time(&closes)?),
                duration_s,
                question_count,
            })
        },
    ))
}

/// Everything about the exam's attempts; lost time as of `now`.
pub fn exam_facts(
    conn: &Connection,
    exam: &ExamInfo,
    now: DateTime<Utc>,
) -> rusqlite::Result<ExamFacts> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, u.username, a.status, a.started_at, a.deadline_at, a.submitted_at, a.late,
                (SELECT COUNT(*) FROM answers an WHERE an.attempt_id = a.id), a.applied_writes
         FROM attempts a JOIN users u ON u.id = a.user_id WHERE a.exam_id = ?1",
    )?;
    let attempts = stmt
        .query_map([&exam.id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<bool>>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, i64>(8)?,
            ))
        })?
        .filter_map(|row| match row {
            Ok((id, student, status, started, deadline, submitted, late, answers, writes)) => {
                let submitted_at = match submitted {
                    Some(s) => Some(time(&s)?),
                    None => None,
                };
                Some(Ok(AttemptFacts {
                    attempt_id: id,
                    student,
                    status,
                    started_at: time(&started)?,
                    deadline_at: time(&deadline)?,
                    submitted_at,
                    late,
                    answers,
                    applied_writes: writes,
                }))
            }
            Err(e) => Some(Err(e)),
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;

    let mut stmt = conn.prepare_cached(
        "SELECT an.attempt_id, an.saved_at FROM answers an
           JOIN attempts a ON a.id = an.attempt_id WHERE a.exam_id = ?1",
    )?;
    let saves = stmt
        .query_map([&exam.id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .filter_map(|row| match row {
            Ok((attempt, saved)) => Some(Ok((attempt, time(&saved)?))),
            Err(e) => Some(Err(e)),
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;

    // The minutes of the whole exam, not just the period's: an attempt in the report counts
    // everything its app delivered, even after the period.
    let mut stmt = conn.prepare_cached(
        "SELECT minute_ms, attempt_id, CAST(ROUND(delivered_sum) AS INTEGER) FROM metric_minutes
         WHERE exam_id = ?1 AND delivered_count IS NOT NULL",
    )?;
    let delivered = stmt
        .query_map([&exam.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;

    Ok(ExamFacts {
        attempts,
        ledgers: crate::security::time_lost::exam_ledgers(conn, &exam.id, now)?,
        saves,
        delivered,
    })
}

/// The minutes of the lab `key` (its name, or the subnet of machines without one) in `period`.
pub fn lab_minutes(
    conn: &Connection,
    key: &str,
    period: &Period,
) -> rusqlite::Result<Vec<LabMinute>> {
    let mut stmt = conn.prepare_cached(
        "SELECT device, minute_ms, user_id, lab IS NOT NULL, app_version,
                COALESCE(offline_s_sum, 0), COALESCE(outages_sum, 0), queue_depth_max
         FROM metric_minutes
         WHERE COALESCE(lab, subnet) = ?1 AND minute_ms >= ?2 AND minute_ms < ?3
         ORDER BY device, minute_ms",
    )?;
    let rows = stmt.query_map(
        (
            key,
            period.from.timestamp_millis(),
            period.to.timestamp_millis(),
        ),
        |r| {
            Ok(LabMinute {
                device: r.get(0)?,
                minute_ms: r.get(1)?,
                user_id: r.get(2)?,
                named: r.get(3)?,
                app_version: r.get(4)?,
                offline_s: r.get(5)?,
                outages: r.get(6)?,
                queue_depth: r.get(7)?,
            })
        },
    )?;
    rows.collect()
}

/// The alerts raised in `period`.
pub fn alerts(conn: &Connection, period: &Period) -> rusqlite::Result<Vec<AlertFacts>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, created_at, rule, severity, username, ip, summary, acked_at, cleared_at
         FROM alerts WHERE created_at >= ?1 AND created_at < ?2 ORDER BY created_at, id",
    )?;
    let rows = stmt
        .query_map(
            (crate::rfc3339(period.from), crate::rfc3339(period.to)),
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            },
        )?
        .filter_map(|row| match row {
            Ok((id, created, rule, severity, username, ip, summary, acked, cleared)) => {
                Some(Ok(AlertFacts {
                    id,
                    created_at: time(&created)?,
                    rule,
                    severity,
                    username,
                    ip,
                    summary,
                    acked_at: acked.as_deref().and_then(time),
                    cleared_at: cleared.as_deref().and_then(time),
                }))
            }
            Err(e) => Some(Err(e)),
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
