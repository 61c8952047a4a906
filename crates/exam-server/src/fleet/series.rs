//! Metrics over time, for charts: `GET /v1/admin/fleet/series` (one or several metrics of the
//! whole fleet or one group, per step), and what arrived since a cursor ([`arrived_since`]),
//! which the console's live stream sends so that a chart fetches only its newest steps.
//!
//! Invariants:
//! - A step's figures are exact over its machine-minutes: `count` and `sum` add up, `min` and
//!   `max` are the extremes, `mean` is `sum / count`, and `p99` is the nearest-rank 99th
//!   percentile of the machine-minutes' maxima (a minute summary has no finer distribution:
//!   with fewer than 101 machine-minutes in a step it is their `max`).
//! - Steps are aligned on UTC (a step starts at a multiple of its length since the epoch), so
//!   the newest steps fetched again line up with the ones a chart already has.
//! - Steps without data are left out, per metric.
//! - A period never has more than [`MAX_POINTS`] steps that can hold data: a longer one is
//!   refused for an explicit step, and `step=auto` picks the finest step with at most `points`
//!   of them.
//!
//! The minutes are read once, in time order, and added up here rather than by SQLite's
//! `GROUP BY`: no sorter, and each step's maxima are at hand for its percentile (in a release
//! build this is as fast as SQLite's aggregates, which would need a second, ranking query for
//! the percentile). The cost is one row per machine-minute of the period — a week of six
//! machines, 60,480 rows, about 0.15 s in a release build — so a large fleet's long periods
//! would want rollups kept as minutes arrive.

use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, Connection};
use serde_json::{json, Value};

use super::{
    bad_query, by, ms_time, shown, By, Period, DAY_MS, MAX_POINTS, METRICS, RETENTION_DAYS,
};
use crate::problem::{ApiError, Reply};
use crate::routes::Ctx;

/// The steps a series may have, in seconds: a minute to a day, each dividing a day.
pub const STEPS: [i64; 6] = [60, 300, 900, 3600, 21_600, 86_400];
/// With `step=auto` and no `points`: a day by the minute.
pub const DEFAULT_POINTS: i64 = 1440;
/// The fewest points `points` may ask for.
pub const MIN_POINTS: i64 = 10;

/// One step of one metric.
struct Step {
    at: i64,
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    /// Set from the step's maxima once it is complete.
    p99: Option<f64>,
}

impl Step {
    fn to_json(&self) -> Value {
        json!({
            "at": ms_time(self.at),
            "count": self.count, "sum": self.sum, "min": self.min, "max": self.max,
            "mean": if self.count > 0 { self.sum / self.count as f64 } else { 0.0 },
            "p99": self.p99.unwrap_or(self.max),
        })
    }
}

/// The metrics asked for: one name or several, comma-separated (repeats ignored).
fn metrics(ctx: &Ctx<'_>) -> Result<Vec<&'static str>, ApiError> {
    let Some(given) = ctx.query.get("metric") else {
        return Err(bad_query(format!(
            "metric is required: one of {} (or several, comma-separated)",
            METRICS.join(", ")
        )));
    };
    let mut names = Vec::new();
    for name in given.split(',') {
        let known = METRICS.into_iter().find(|m| *m == name).ok_or_else(|| {
            bad_query(format!(
                "metric `{}` is not one of {}",
                shown(name),
                METRICS.join(", ")
            ))
        })?;
        if !names.contains(&known) {
            names.push(known);
        }
    }
    Ok(names)
}

/// The step in seconds: one of [`STEPS`] (60 by default), or with `auto` the finest with at
/// most `points` (default [`DEFAULT_POINTS`]; checked even without `auto`) steps in `span_ms`.
fn step(ctx: &Ctx<'_>, span_ms: i64) -> Result<i64, ApiError> {
    let words = || {
        let steps: Vec<String> = STEPS.iter().map(i64::to_string).collect();
        steps.join(", ")
    };
    let points = match ctx.query.get("points") {
        None => DEFAULT_POINTS,
        Some(value) => value
            .parse::<i64>()
            .ok()
            .filter(|p| (MIN_POINTS..=MAX_POINTS).contains(p))
            .ok_or_else(|| {
                bad_query(format!(
                    "points `{}` is not a whole number from {MIN_POINTS} to {MAX_POINTS}",
                    shown(value)
                ))
            })?,
    };
    match ctx.query.get("step").map(String::as_str) {
        None => Ok(STEPS[0]),
        Some("auto") => Ok(STEPS
            .into_iter()
            .find(|s| span_ms / (s * 1000) <= points)
            .unwrap_or(STEPS[STEPS.len() - 1])),
        Some(other) => other
            .parse::<i64>()
            .ok()
            .filter(|s| STEPS.contains(s))
            .ok_or_else(|| {
                bad_query(format!(
                    "step `{}` is not one of {} (seconds) or auto",
                    shown(other),
                    words()
                ))
            }),
    }
}

/// `GET /v1/admin/fleet/series?metric=a[,b…]&by=&key=&from=&to=&step=60…86400|auto&points=`:
/// metrics over time, per step (UTC-aligned), for the whole fleet or one group (`by`, default
/// `lab`, and its `key`). One metric: `metric` and its `points`; several: `metrics` and a
/// `series` of each one's points.
pub fn series(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let metrics = metrics(ctx)?;
    let by = by(ctx)?;
    let key = ctx.query.get("key");
    let period = Period::from_query(ctx)?;
    let (from_ms, to_ms) = period.ms();
    // Only the part of the period that can hold data counts towards the limit.
    let now_ms = ctx.now.timestamp_millis();
    let span = (to_ms.min(now_ms + DAY_MS) - from_ms.max(now_ms - RETENTION_DAYS * DAY_MS)).max(0);
    let step_s = step(ctx, span)?;
    let step_ms = step_s * 1000;
    let steps = span / step_ms;
    if steps > MAX_POINTS {
        return Err(bad_query(format!(
            "the period has {steps} steps of {step_s} s; at most {MAX_POINTS}: choose a longer \
             step (step=3600, or step=auto) or a shorter period"
        )));
    }
    let folded = fold(tx, &metrics, by, key.map(String::as_str), period, step_ms)?;
    let mut reply = json!({
        "by": by.name(),
        "key": key,
        "step_s": step_s,
        "from": crate::rfc3339(period.from),
        "to": crate::rfc3339(period.to),
    });
    let points = |steps: &Vec<Step>| Value::Array(steps.iter().map(Step::to_json).collect());
    if let ([metric], [steps]) = (metrics.as_slice(), folded.as_slice()) {
        reply["metric"] = json!(metric);
        reply["points"] = points(steps);
    } else {
        reply["metrics"] = json!(metrics);
        reply["series"] = metrics
            .iter()
            .zip(folded.iter())
            .map(|(metric, steps)| json!({"metric": metric, "points": points(steps)}))
            .collect();
    }
    Ok(Reply::ok(reply))
}

/// The machine-minutes of the period (and group), read in time order and added up per step,
/// per metric; the 99th percentile from each step's maxima.
fn fold(
    tx: &Connection,
    metrics: &[&'static str],
    by: By,
    key: Option<&str>,
    period: Period,
    step_ms: i64,
) -> Result<Vec<Vec<Step>>, ApiError> {
    // The names are METRICS' own, never the caller's text.
    let columns: Vec<String> = metrics
        .iter()
        .map(|m| format!("{m}_count, {m}_sum, {m}_min, {m}_max"))
        .collect();
    let (filter, params) = scope(by, key, period, step_ms);
    let sql = format!(
        "SELECT minute_ms - minute_ms % ?4, {columns}
         FROM metric_minutes
         WHERE minute_ms >= ?1 AND minute_ms < ?2{filter}
         ORDER BY minute_ms",
        columns = columns.join(", "),
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut folded: Vec<Vec<Step>> = metrics.iter().map(|_| Vec::new()).collect();
    let mut maxima: Vec<Vec<f64>> = metrics.iter().map(|_| Vec::new()).collect();
    while let Some(row) = rows.next()? {
        let at: i64 = row.get(0)?;
        for (i, (steps, maxima)) in folded.iter_mut().zip(maxima.iter_mut()).enumerate() {
            let first = 1 + 4 * i;
            let Some(count) = row.get::<_, Option<i64>>(first)? else {
                continue;
            };
            let (sum, min, max): (f64, f64, f64) = (
                row.get(first + 1)?,
                row.get(first + 2)?,
                row.get(first + 3)?,
            );
            match steps.last_mut() {
                Some(step) if step.at == at => {
                    step.count += count;
                    step.sum += sum;
                    step.min = step.min.min(min);
                    step.max = step.max.max(max);
                }
                last => {
                    if let Some(done) = last {
                        done.p99 = p99(maxima);
                    }
                    maxima.clear();
                    steps.push(Step {
                        at,
                        count,
                        sum,
                        min,
                        max,
                        p99: None,
                    });
                }
            }
            maxima.push(max);
        }
    }
    for (steps, maxima) in folded.iter_mut().zip(maxima.iter_mut()) {
        if let Some(last) = steps.last_mut() {
            last.p99 = p99(maxima);
        }
    }
    Ok(folded)
}

/// The nearest-rank 99th percentile (the smallest value at least 99 % of them are at most).
fn p99(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    // The rank ⌈0.99 n⌉, 1-based, in integers so that 100 values give the 99th.
    let rank = (values.len() * 99).div_ceil(100);
    let (_, value, _) = values.select_nth_unstable_by(rank - 1, f64::total_cmp);
    Some(*value)
}

/// The condition on the group (if any) and the query's parameters: ?1 from, ?2 to, ?3 the
/// group's key, ?4 the step.
fn scope(by: By, key: Option<&str>, period: Period, step_ms: i64) -> (String, Vec<Sql>) {
    let filter = if key.is_some() {
        format!(" AND {}", by.filter_sql())
    } else {
        String::new()
    };
    // Minutes outside an exam are the group with the key "".
    let key_value = match (by, key) {
        (By::Exam, Some("")) | (_, None) => Sql::Null,
        (_, Some(k)) => Sql::Text(k.to_string()),
    };
    let (from_ms, to_ms) = period.ms();
    let params = vec![
        Sql::Integer(from_ms),
        Sql::Integer(to_ms),
        key_value,
        Sql::Integer(step_ms),
    ];
    (filter, params)
}

// ---- what a chart can be of ---------------------------------------------------------------

/// The distinct values of `expr` in `metric_minutes`, in order: one index seek each (a loose
/// index scan), however many minutes there are.
fn distinct(tx: &Connection, expr: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(&format!(
        "WITH RECURSIVE d(k) AS (
           SELECT MIN({expr}) FROM metric_minutes
           UNION ALL
           SELECT (SELECT MIN({expr}) FROM metric_minutes WHERE {expr} > d.k) FROM d
           WHERE d.k IS NOT NULL)
         SELECT k FROM d WHERE k IS NOT NULL"
    ))?;
    let keys = stmt.query_map([], |r| r.get(0))?;
    keys.collect()
}

/// `GET /v1/admin/fleet/scopes`: what a chart can be of — every lab, exam (`""`: outside one)
/// and machine with minutes kept, each labelled as `GET /v1/admin/fleet` labels it (as its
/// latest minute says: a lab's name or subnet, a machine's lab) — and the first and last
/// minute kept (`null`: no machine has reported). Index seeks only: cheap beside the figures.
pub fn scopes(_ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let (first, last): (Option<i64>, Option<i64>) = tx.query_row(
        "SELECT MIN(minute_ms), MAX(minute_ms) FROM metric_minutes",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let group = |by: By, key: &str, labs: &str, unnamed: bool| -> Result<Value, ApiError> {
        Ok(json!({"key": key, "label": super::label(tx, by, key, unnamed, labs)?}))
    };
    let mut labs = Vec::new();
    for key in distinct(tx, By::Lab.key_sql())? {
        // Named or a subnet, as its latest minute says (one seek).
        let unnamed: bool = tx.query_row(
            "SELECT lab IS NULL FROM metric_minutes WHERE COALESCE(lab, subnet) = ?1
             ORDER BY minute_ms DESC LIMIT 1",
            [&key],
            |r| r.get(0),
        )?;
        labs.push(group(By::Lab, &key, "", unnamed)?);
    }
    let mut exams = Vec::new();
    let outside: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM metric_minutes WHERE exam_id IS NULL)",
        [],
        |r| r.get(0),
    )?;
    if outside {
        exams.push(group(By::Exam, "", "", false)?);
    }
    for key in distinct(tx, "exam_id")? {
        exams.push(group(By::Exam, &key, "", false)?);
    }
    let mut machines = Vec::new();
    let mut lab_of = tx.prepare_cached(
        "SELECT COALESCE(lab, subnet) FROM metric_minutes WHERE device = ?1
         ORDER BY minute_ms DESC LIMIT 1",
    )?;
    for key in distinct(tx, By::Machine.key_sql())? {
        let lab: String = lab_of.query_row([&key], |r| r.get(0))?;
        machines.push(group(By::Machine, &key, &lab, false)?);
    }
    Ok(Reply::ok(json!({
        "first": first.and_then(ms_time),
        "last": last.and_then(|ms| ms_time(ms + 60_000)),
        "labs": labs,
        "exams": exams,
        "machines": machines,
    })))
}

// ---- what arrived -------------------------------------------------------------------------

/// The most labs, exams or machines an arrival names; beyond, `more` says there were others.
const NAMED: usize = 200;

/// The cursor of the newest machine-minute stored (0 for none): [`arrived_since`] it.
pub fn cursor(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE(MAX(rowid), 0) FROM metric_minutes",
        [],
        |r| r.get(0),
    )
}

/// The machine-minutes stored after `cursor`: the new cursor, how many, the minutes they cover
/// and the labs, exams (`""`: outside one) and machines they are of — or `None` for none. A
/// cursor past the newest minute (the table was emptied) starts again from the beginning.
pub fn arrived_since(conn: &Connection, cursor: i64) -> rusqlite::Result<Option<Value>> {
    let newest = self::cursor(conn)?;
    let after = if newest < cursor { 0 } else { cursor };
    let (count, first, last): (i64, Option<i64>, Option<i64>) = conn.query_row(
        "SELECT COUNT(*), MIN(minute_ms), MAX(minute_ms) FROM metric_minutes WHERE rowid > ?1",
        [after],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    let mut more = false;
    let mut names = |key_sql: &str| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT DISTINCT {key_sql} FROM metric_minutes WHERE rowid > ?1 LIMIT ?2"
        ))?;
        let mut names: Vec<String> = stmt
            .query_map((after, NAMED as i64 + 1), |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if names.len() > NAMED {
            names.truncate(NAMED);
            more = true;
        }
        names.sort();
        Ok(names)
    };
    let labs = names(By::Lab.key_sql())?;
    let exams = names(By::Exam.key_sql())?;
    let machines = names(By::Machine.key_sql())?;
    Ok(Some(json!({
        "cursor": newest,
        "minutes": count,
        "from": ms_time(first),
        "to": ms_time(last + 60_000),
        "labs": labs,
        "exams": exams,
        "machines": machines,
        "more": more,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_99th_percentile_is_the_nearest_rank() {
        let table: [(Vec<f64>, Option<f64>); 6] = [
            (vec![], None),
            (vec![7.0], Some(7.0)),
            (vec![3.0, 1.0, 2.0], Some(3.0)),
            // 100 values: the 99th smallest.
            ((1..=100).map(f64::from).collect(), Some(99.0)),
            // 101 values: the ⌈99.99⌉ = 100th.
            ((1..=101).map(f64::from).rev().collect(), Some(100.0)),
            ((1..=1000).map(f64::from).collect(), Some(990.0)),
        ];
        for (mut values, want) in table {
            let n = values.len();
            assert_eq!(p99(&mut values), want, "{n} values");
        }
    }
}
