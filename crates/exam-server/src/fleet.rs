//! Fleet analytics: the minute summaries the apps send as `metrics.minute` events (low-priority
//! telemetry), aggregated per machine, per lab and per exam, beside the server's own request
//! figures — so IT can see which lab's network or machines are struggling during an exam.
//!
//! Invariants:
//! - A summary is kept once per machine and minute (`metric_minutes`, keyed by device and
//!   minute): a retried event, or the same minute sent again while another student is signed
//!   in on the machine, is not counted twice. The event itself is kept in `events` as always.
//! - A malformed summary never fails the request that carried it: it is kept as an event and
//!   left out of the figures ([`summary::Summary::from_attrs`] says why, in the debug log).
//! - A machine's lab is the name its app is configured with, or else the subnet it sent from
//!   ([`summary::subnet`]), so an unconfigured lab still shows up as one group.
//! - Retention is bounded: minutes older than [`RETENTION_DAYS`] days are deleted, a few at a
//!   time with each summary received (and all at once when the server starts), and minutes
//!   that old or more than a day ahead of the server's clock are not stored at all.
//! - Figures are exact sums: a group's `count`/`sum` add up its minutes', `min`/`max` are the
//!   extremes, `mean` is `sum / count`. The periods are of minute starts, on the apps' clocks.

pub mod insights;
pub mod series;
pub mod summary;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::problem::{ApiError, Reply};
use crate::routes::Ctx;
pub use series::{scopes, series};
pub use summary::{subnet, Aggregate, Summary, METRICS};

/// The event type of a minute summary.
pub const EVENT_TYPE: &str = "metrics.minute";
pub const RETENTION_DAYS: i64 = 90;
const DAY_MS: i64 = 24 * 3600 * 1000;
/// Old minutes deleted per summary received: enough to keep up, cheap enough not to notice.
const PRUNE_BATCH: i64 = 500;
/// The most points a series may have (a week of minutes).
pub const MAX_POINTS: i64 = 7 * 24 * 60;

/// How the figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Machine,
    Lab,
    Exam,
}

impl By {
    pub const ALL: [By; 3] = [By::Machine, By::Lab, By::Exam];

    pub fn name(self) -> &'static str {
        match self {
            By::Machine => "machine",
            By::Lab => "lab",
            By::Exam => "exam",
        }
    }

    /// The group key, as SQL over `metric_minutes` (minutes outside an exam: `''`).
    fn key_sql(self) -> &'static str {
        match self {
            By::Machine => "device",
            By::Lab => "COALESCE(lab, subnet)",
            By::Exam => "COALESCE(exam_id, '')",
        }
    }

    /// A condition on one group, `?3` its key, written so an index serves it.
    fn filter_sql(self) -> &'static str {
        match self {
            By::Machine => "device = ?3",
            By::Lab => "COALESCE(lab, subnet) = ?3",
            By::Exam => "exam_id IS ?3",
        }
    }
}

/// A machine's minute as stored.
pub struct Row<'a> {
    pub summary: &'a Summary,
    pub subnet: String,
    pub user_id: i64,
    pub received_ms: i64,
}

/// The columns of `metric_minutes` after the fixed ones: four per metric.
fn metric_columns() -> impl Iterator<Item = String> {
    METRICS.iter().flat_map(|m| {
        ["count", "sum", "min", "max"]
            .into_iter()
            .map(move |part| format!("{m}_{part}"))
    })
}

static INSERT: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<String> = [
        "device",
        "minute_ms",
        "lab",
        "subnet",
        "exam_id",
        "attempt_id",
        "user_id",
        "app_version",
        "received_ms",
    ]
    .into_iter()
    .map(str::to_string)
    .chain(metric_columns())
    .collect();
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT OR IGNORE INTO metric_minutes ({}) VALUES ({})",
        columns.join(", "),
        marks.join(", ")
    )
});

/// Stores a machine's minute; `false` when that machine's minute was already there.
pub fn record(conn: &Connection, row: &Row<'_>) -> rusqlite::Result<bool> {
    let s = row.summary;
    let text = |t: &Option<String>| t.clone().map_or(Sql::Null, Sql::Text);
    let mut values = vec![
        Sql::Text(s.device.clone()),
        Sql::Integer(s.minute_ms),
        text(&s.lab),
        Sql::Text(row.subnet.clone()),
        text(&s.exam_id),
        text(&s.attempt_id),
        Sql::Integer(row.user_id),
        text(&s.app_version),
        Sql::Integer(row.received_ms),
    ];
    for metric in &s.metrics {
        match metric {
            Some(a) => values.extend([
                Sql::Integer(a.count),
                Sql::Real(a.sum),
                Sql::Real(a.min),
                Sql::Real(a.max),
            ]),
            None => values.extend([Sql::Null, Sql::Null, Sql::Null, Sql::Null]),
        }
    }
    let mut stmt = conn.prepare_cached(&INSERT)?;
    Ok(stmt.execute(params_from_iter(values))? > 0)
}

/// Deletes up to `limit` minutes older than the retention (`None`: all of them).
pub fn prune(conn: &Connection, now_ms: i64, limit: Option<i64>) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM metric_minutes WHERE rowid IN
           (SELECT rowid FROM metric_minutes WHERE minute_ms < ?1 LIMIT ?2)",
        (now_ms - RETENTION_DAYS * DAY_MS, limit.unwrap_or(-1)),
    )
}

/// A `metrics.minute` event a student's app sent from `ctx.ip`, received for the first time:
/// its summary stored for aggregation, unless it is malformed or out of range.
pub fn on_minute(
    ctx: &Ctx<'_>,
    tx: &Connection,
    user_id: i64,
    attrs: &Map<String, Value>,
) -> Result<(), ApiError> {
    let summary = match Summary::from_attrs(attrs) {
        Ok(summary) => summary,
        Err(why) => {
            tracing::debug!(%why, user_id, "a minute summary left out of the fleet figures");
            return Ok(());
        }
    };
    let now_ms = ctx.now.timestamp_millis();
    if summary.minute_ms < now_ms - RETENTION_DAYS * DAY_MS || summary.minute_ms > now_ms + DAY_MS {
        tracing::debug!(
            minute_ms = summary.minute_ms,
            "a minute summary out of range left out of the fleet figures"
        );
        return Ok(());
    }
    let stored = record(
        tx,
        &Row {
            summary: &summary,
            subnet: subnet(ctx.ip),
            user_id,
            received_ms: now_ms,
        },
    )?;
    // The console's fleet streams are told once the transaction has committed.
    if stored {
        ctx.state
            .minutes_stored
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    prune(tx, now_ms, Some(PRUNE_BATCH))?;
    Ok(())
}

// ---- queries --------------------------------------------------------------------------------

/// The period asked for: `from` and `to` (RFC 3339), by default the 24 hours before now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

fn bad_query(detail: String) -> ApiError {
    ApiError::bad_request("invalid_query", detail)
}

fn shown(value: &str) -> String {
    value.chars().take(100).collect()
}

fn time(ctx: &Ctx<'_>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    ctx.query
        .get(name)
        .map(|value| {
            DateTime::parse_from_rfc3339(value)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    bad_query(format!(
                        "{name} `{}` is not an RFC 3339 time ({e}), e.g. 2026-12-01T09:00:00Z",
                        shown(value)
                    ))
                })
        })
        .transpose()
}

impl Period {
    pub fn from_query(ctx: &Ctx<'_>) -> Result<Self, ApiError> {
        let from = time(ctx, "from")?;
        let to = time(ctx, "to")?;
        let day = chrono::Duration::days(1);
        let (from, to) = match (from, to) {
            (Some(from), Some(to)) => (from, to),
            (Some(from), None) => (from, ctx.now),
            (None, Some(to)) => (to - day, to),
            (None, None) => (ctx.now - day, ctx.now),
        };
        if from >= to {
            return Err(bad_query(format!(
                "from ({}) must be before to ({})",
                crate::rfc3339(from),
                crate::rfc3339(to)
            )));
        }
        Ok(Self { from, to })
    }

    fn ms(&self) -> (i64, i64) {
        (self.from.timestamp_millis(), self.to.timestamp_millis())
    }
}

fn by(ctx: &Ctx<'_>) -> Result<By, ApiError> {
    match ctx.query.get("by") {
        None => Ok(By::Lab),
        Some(value) => By::ALL
            .into_iter()
            .find(|b| b.name() == value)
            .ok_or_else(|| {
                bad_query(format!(
                    "by `{}` is not one of machine, lab, exam",
                    shown(value)
                ))
            }),
    }
}

/// A group's metrics from `count, sum, min, max` columns starting at `first`.
fn metrics_json(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Value> {
    let mut metrics = Map::new();
    for (i, name) in METRICS.iter().enumerate() {
        let at = first + 4 * i;
        let Some(count) = r.get::<_, Option<i64>>(at)? else {
            continue;
        };
        let sum: f64 = r.get(at + 1)?;
        metrics.insert(
            (*name).to_string(),
            json!({
                "count": count, "sum": sum,
                "min": r.get::<_, f64>(at + 2)?, "max": r.get::<_, f64>(at + 3)?,
                "mean": if count > 0 { sum / count as f64 } else { 0.0 },
            }),
        );
    }
    Ok(Value::Object(metrics))
}

/// The aggregates of every metric, in [`METRICS`] order.
fn aggregates_sql() -> String {
    METRICS
        .iter()
        .map(|m| format!("SUM({m}_count), SUM({m}_sum), MIN({m}_min), MAX({m}_max)"))
        .collect::<Vec<_>>()
        .join(", ")
}

static GROUPS: LazyLock<BTreeMap<&'static str, String>> = LazyLock::new(|| {
    By::ALL
        .into_iter()
        .map(|by| {
            let sql = format!(
                "SELECT {key}, COUNT(DISTINCT device), COUNT(DISTINCT user_id), COUNT(*),
                        MAX(received_ms), MIN(lab IS NULL),
                        GROUP_CONCAT(DISTINCT COALESCE(lab, subnet)), {aggregates}
                 FROM metric_minutes WHERE minute_ms >= ?1 AND minute_ms < ?2
                 GROUP BY 1 ORDER BY 1",
                key = by.key_sql(),
                aggregates = aggregates_sql()
            );
            (by.name(), sql)
        })
        .collect()
});

/// What a proctor reads for a group: the lab's name (or "Subnet …"), the exam's title, the
/// machine's lab(s).
fn label(
    tx: &Connection,
    by: By,
    key: &str,
    unnamed: bool,
    labs: &str,
) -> rusqlite::Result<String> {
    Ok(match by {
        By::Lab if unnamed => format!("Subnet {key}"),
        By::Lab => key.to_string(),
        By::Machine => format!("in {}", labs.replace(',', ", ")),
        By::Exam if key.is_empty() => "Not in an exam".to_string(),
        By::Exam => tx
            .query_row("SELECT title FROM exams WHERE id = ?1", [key], |r| r.get(0))
            .optional()?
            .unwrap_or_else(|| key.to_string()),
    })
}

fn ms_time(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(crate::rfc3339)
}

/// `GET /v1/admin/fleet?by=machine|lab|exam&from=&to=`: the apps' minute summaries of the
/// period aggregated per group (`by`, default `lab`; period default the last 24 h), and the
/// server's own request figures for the same period (from its per-minute window: the last
/// day since it started, `server.from`/`server.to` saying which part that covers).
pub fn fleet(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let by = by(ctx)?;
    let period = Period::from_query(ctx)?;
    let (from_ms, to_ms) = period.ms();
    let first_metric = 7;
    let mut stmt = tx.prepare_cached(&GROUPS[by.name()])?;
    let rows = stmt
        .query_map((from_ms, to_ms), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, bool>(5)?,
                r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                metrics_json(r, first_metric)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut groups = Vec::with_capacity(rows.len());
    for (key, machines, students, minutes, last_ms, unnamed, labs, metrics) in rows {
        groups.push(json!({
            "key": key,
            "label": label(tx, by, &key, unnamed, &labs)?,
            "machines": machines, "students": students, "minutes": minutes,
            "metrics": metrics,
            "last_seen": ms_time(last_ms),
        }));
    }
    Ok(Reply::ok(json!({
        "by": by.name(),
        "from": crate::rfc3339(period.from),
        "to": crate::rfc3339(period.to),
        "groups": groups,
        "server": ctx.state.stats.figures(from_ms, to_ms).to_json(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `METRICS` and the migration's columns agree.
    #[test]
    fn every_metric_has_its_columns() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = crate::Db::open(&dir.path().join("t.db")).unwrap_or_else(|e| panic!("{e}"));
        let conn = db.lock();
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info('metric_minutes') WHERE cid >= 9")
            .unwrap_or_else(|e| panic!("{e}"));
        let columns: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(Iterator::collect)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(columns, metric_columns().collect::<Vec<_>>());
    }
}
