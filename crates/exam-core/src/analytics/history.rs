//! The history of this computer's measurements, in a database file of its own
//! (`exam-desktop-history.db`, beside the app's): the answer-save path never waits on it
//! (another file, another lock, another fsync), and it is kept with `synchronous=NORMAL` —
//! a power cut may lose its last seconds, which is fine for figures and never fine for
//! answers.
//!
//! Rolled up as it ages, so its size is bounded whatever the app does:
//! - 1-second buckets for [`KEEP_SECONDS`] (an hour),
//! - then 1-minute buckets for [`KEEP_MINUTES`] (7 days),
//! - then 1-hour buckets for [`KEEP_HOURS`] (90 days), then nothing.
//!
//! A bucket holds count, sum, min and max ([`Aggregate`]), so a rolled-up bucket is exactly
//! the aggregate of the buckets it replaced. At most one row per metric and bucket: the
//! history holds at most `metrics × (3,600 + 10,080 + 2,160)` rows ([`max_rows`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection};
use serde::Serialize;

use super::recorder::{Aggregate, Metric, Recorder};

pub const FILE_NAME: &str = "exam-desktop-history.db";

/// How long each resolution is kept, in ms.
pub const KEEP_SECONDS: i64 = 3_600_000;
pub const KEEP_MINUTES: i64 = 7 * 86_400_000;
pub const KEEP_HOURS: i64 = 90 * 86_400_000;

/// The resolutions, finest first: (bucket size in ms, kept for ms).
pub const RESOLUTIONS: [(i64, i64); 3] = [
    (1_000, KEEP_SECONDS),
    (60_000, KEEP_MINUTES),
    (3_600_000, KEEP_HOURS),
];

/// The most rows the history can hold.
pub fn max_rows() -> u64 {
    let per_metric: i64 = RESOLUTIONS.iter().map(|(size, keep)| keep / size).sum();
    Metric::ALL.len() as u64 * u64::try_from(per_metric).unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("the history file {path} cannot be used: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the history could not be read or written: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// One point of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Point {
    /// The bucket's start, ms since the epoch.
    pub at_ms: f64,
    pub count: u32,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
}

/// A series over a time range, at the finest resolution that still holds all of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Series {
    pub metric: Metric,
    /// Bucket size in seconds.
    pub resolution_s: u32,
    pub points: Vec<Point>,
}

/// What one roll-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolledUp {
    /// Rows folded into the next resolution, and rows deleted past the last one.
    pub folded: usize,
    pub expired: usize,
}

/// The history. Cheap to clone.
#[derive(Clone)]
pub struct History {
    conn: Arc<Mutex<Connection>>,
    recorder: Recorder,
}

impl History {
    /// Opens (or starts) the history in `data_dir`. A damaged file is set aside and a new
    /// one started: figures are worth less than an app that starts.
    pub fn open(data_dir: &Path, recorder: Recorder) -> Result<Self, HistoryError> {
        let path = data_dir.join(FILE_NAME);
        let conn = match Self::connect(&path) {
            Ok(conn) => conn,
            Err(error) => {
                let aside = path.with_extension(format!("db.damaged-{}", crate::clock::now_ms()));
                tracing::warn!(%error, aside = %aside.display(), "the history file was damaged; set aside, a new one is started");
                let _ = std::fs::rename(&path, &aside);
                let _ = std::fs::remove_file(path.with_extension("db-wal"));
                let _ = std::fs::remove_file(path.with_extension("db-shm"));
                Self::connect(&path).map_err(|source| HistoryError::Open {
                    path: path.clone(),
                    source,
                })?
            }
        };
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            recorder,
        })
    }

    fn connect(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        let _ = crate::files::private_file(path);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let ok: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if ok != "ok" {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(ok),
            ));
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS points (
                 metric       TEXT    NOT NULL,
                 resolution   INTEGER NOT NULL,   -- bucket size, ms
                 bucket       INTEGER NOT NULL,   -- bucket start, ms since the epoch
                 count        INTEGER NOT NULL,
                 sum          REAL    NOT NULL,
                 min          REAL    NOT NULL,
                 max          REAL    NOT NULL,
                 PRIMARY KEY (metric, resolution, bucket)
             ) WITHOUT ROWID;",
        )?;
        Ok(conn)
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the finished seconds the recorder holds (as of `now_ms`); how many buckets.
    pub fn flush(&self, now_ms: i64) -> Result<usize, HistoryError> {
        let taken = self.recorder.take(now_ms);
        if taken.is_empty() {
            return Ok(0);
        }
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for (metric, second, aggregate) in &taken {
            merge(&tx, metric.name(), 1_000, *second, aggregate)?;
        }
        tx.commit()?;
        Ok(taken.len())
    }

    /// Folds what is older than each resolution keeps into the next, and deletes what is
    /// older than the last keeps.
    pub fn roll_up(&self, now_ms: i64) -> Result<RolledUp, HistoryError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut done = RolledUp::default();
        for pair in RESOLUTIONS.windows(2) {
            let ((size, keep), (next, _)) = (pair[0], pair[1]);
            let cutoff = now_ms - keep;
            let old: Vec<(String, i64, Aggregate)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT metric, bucket, count, sum, min, max FROM points
                     WHERE resolution = ?1 AND bucket < ?2",
                )?;
                let rows = stmt.query_map(params![size, cutoff], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        aggregate_at(r, 2)?,
                    ))
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for (metric, bucket, aggregate) in &old {
                merge(&tx, metric, next, bucket.div_euclid(next) * next, aggregate)?;
            }
            tx.execute(
                "DELETE FROM points WHERE resolution = ?1 AND bucket < ?2",
                params![size, cutoff],
            )?;
            done.folded += old.len();
        }
        let (last, keep) = RESOLUTIONS[RESOLUTIONS.len() - 1];
        done.expired = tx.execute(
            "DELETE FROM points WHERE resolution = ?1 AND bucket < ?2",
            params![last, now_ms - keep],
        )?;
        tx.commit()?;
        Ok(done)
    }

    /// Every metric's aggregate over the minute beginning at `minute_ms` (from its seconds).
    pub fn minute(
        &self,
        minute_ms: i64,
    ) -> Result<std::collections::BTreeMap<String, Aggregate>, HistoryError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT metric, SUM(count), SUM(sum), MIN(min), MAX(max) FROM points
             WHERE resolution = 1000 AND bucket >= ?1 AND bucket < ?2 GROUP BY metric",
        )?;
        let rows = stmt.query_map(params![minute_ms, minute_ms + 60_000], |r| {
            Ok((r.get::<_, String>(0)?, aggregate_at(r, 1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Rows held now (for the size bound and diagnostics).
    pub fn rows(&self) -> Result<u64, HistoryError> {
        let n: i64 = self
            .lock()
            .query_row("SELECT COUNT(*) FROM points", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// `metric` from `from_ms` to `to_ms`, at the finest resolution that still covers
    /// `from_ms` (seconds for the last hour, minutes for the last week, hours beyond).
    pub fn series(
        &self,
        metric: Metric,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<Series, HistoryError> {
        let resolution = RESOLUTIONS
            .iter()
            .find(|(_, keep)| from_ms >= now_ms - keep)
            .map_or(RESOLUTIONS[RESOLUTIONS.len() - 1].0, |(size, _)| *size);
        let conn = self.lock();
        // Every resolution holds part of the range (seconds not rolled up yet, minutes and
        // hours that were): read them all and fold them into buckets of the chosen size
        // (a coarser row falls in the bucket of its start).
        let mut stmt = conn.prepare_cached(
            "SELECT bucket, count, sum, min, max FROM points
             WHERE metric = ?1 AND bucket >= ?2 AND bucket <= ?3
             ORDER BY bucket",
        )?;
        let start = from_ms.div_euclid(resolution) * resolution;
        let rows = stmt.query_map(params![metric.name(), start, to_ms], |r| {
            Ok((r.get::<_, i64>(0)?, aggregate_at(r, 1)?))
        })?;
        let mut buckets: std::collections::BTreeMap<i64, Aggregate> = Default::default();
        for row in rows {
            let (bucket, aggregate) = row?;
            let at = bucket.div_euclid(resolution) * resolution;
            if at < start {
                continue;
            }
            buckets
                .entry(at)
                .and_modify(|a| a.merge(&aggregate))
                .or_insert(aggregate);
        }
        Ok(Series {
            metric,
            resolution_s: u32::try_from(resolution / 1000).unwrap_or(1),
            points: buckets
                .into_iter()
                .map(|(at, a)| Point {
                    at_ms: at as f64,
                    count: u32::try_from(a.count).unwrap_or(u32::MAX),
                    mean: a.mean(),
                    min: a.min,
                    max: a.max,
                    sum: a.sum,
                })
                .collect(),
        })
    }
}

/// The count, sum, min and max columns of `row`, from column `first` on.
fn aggregate_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Aggregate> {
    Ok(Aggregate {
        count: u64::try_from(row.get::<_, i64>(first)?).unwrap_or(0),
        sum: row.get(first + 1)?,
        min: row.get(first + 2)?,
        max: row.get(first + 3)?,
    })
}

/// Adds `aggregate` to the bucket's row (made when missing).
fn merge(
    conn: &Connection,
    metric: &str,
    resolution: i64,
    bucket: i64,
    aggregate: &Aggregate,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO points (metric, resolution, bucket, count, sum, min, max)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (metric, resolution, bucket) DO UPDATE SET
             count = count + excluded.count, sum = sum + excluded.sum,
             min = MIN(min, excluded.min), max = MAX(max, excluded.max)",
    )?
    .execute(params![
        metric,
        resolution,
        bucket,
        i64::try_from(aggregate.count).unwrap_or(i64::MAX),
        aggregate.sum,
        aggregate.min,
        aggregate.max
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;

    fn history() -> (tempfile::TempDir, History) {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open(dir.path(), Recorder::default()).unwrap();
        (dir, history)
    }

    #[test]
    fn seconds_become_minutes_then_hours_then_nothing_and_the_sums_are_kept() {
        let (_dir, history) = history();
        let t0 = 100 * DAY;
        // Two hours of one save a second, each taking (second % 10) ms.
        for s in 0..7_200 {
            history
                .recorder()
                .record_at(Metric::SaveMs, t0 + s * 1000, (s % 10) as f64);
        }
        history.flush(t0 + 7_200_000).unwrap();
        assert_eq!(history.rows().unwrap(), 7_200);
        let total = |h: &History, from: i64, now: i64| -> (u64, f64) {
            let series = h.series(Metric::SaveMs, from, now, now).unwrap();
            (
                series.points.iter().map(|p| u64::from(p.count)).sum(),
                series.points.iter().map(|p| p.sum).sum(),
            )
        };
        let before = total(&history, t0, t0 + 7_200_000);
        assert_eq!(before, (7_200, 720.0 * 45.0));

        // An hour later: the first hour is minutes; nothing is lost.
        let now = t0 + 7_200_000;
        let rolled = history.roll_up(now).unwrap();
        assert_eq!(
            rolled,
            RolledUp {
                folded: 3_600,
                expired: 0
            }
        );
        assert_eq!(history.rows().unwrap(), 3_600 + 60);
        assert_eq!(total(&history, t0, now), before);
        let minutes = history
            .series(Metric::SaveMs, t0, t0 + HOUR - 1, now)
            .unwrap();
        assert_eq!(minutes.resolution_s, 60);
        assert_eq!(minutes.points.len(), 60);
        assert_eq!(
            (
                minutes.points[0].count,
                minutes.points[0].min,
                minutes.points[0].max
            ),
            (60, 0.0, 9.0)
        );
        assert!((minutes.points[0].mean - 4.5).abs() < 1e-9);

        // Eight days on: hours. Ninety-one days on: gone.
        let now = t0 + 8 * DAY;
        history.roll_up(now).unwrap();
        assert_eq!(
            history.rows().unwrap(),
            2,
            "two hours of data, one row each"
        );
        let hours = history.series(Metric::SaveMs, t0, now, now).unwrap();
        assert_eq!(hours.resolution_s, 3_600);
        assert_eq!(total(&history, t0, now), before);
        let rolled = history.roll_up(t0 + 91 * DAY).unwrap();
        assert_eq!(rolled.expired, 2);
        assert_eq!(history.rows().unwrap(), 0);
    }

    #[test]
    fn the_size_is_bounded_whatever_is_recorded() {
        let (_dir, history) = history();
        // Every metric, several times a second, for three hours, rolled up as the worker
        // does (each minute): the rows never exceed the bound of what the window holds.
        let t0 = 200 * DAY;
        let mut most = 0;
        for minute in 0..180 {
            for s in 0..60 {
                let at = t0 + (minute * 60 + s) * 1000;
                for metric in Metric::ALL {
                    for k in 0..3 {
                        history.recorder().record_at(metric, at + k * 300, k as f64);
                    }
                }
            }
            let now = t0 + (minute + 1) * 60_000;
            history.flush(now).unwrap();
            history.roll_up(now).unwrap();
            most = most.max(history.rows().unwrap());
        }
        let metrics = Metric::ALL.len() as u64;
        // An hour of seconds, plus the minutes rolled up so far.
        assert!(most <= metrics * (3_600 + 180), "{most}");
        assert!(most <= max_rows());
        assert_eq!(max_rows(), metrics * (3_600 + 10_080 + 2_160));
    }

    #[test]
    fn a_damaged_history_is_set_aside_and_a_new_one_started() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"this is not a database at all").unwrap();
        let history = History::open(dir.path(), Recorder::default()).unwrap();
        history.recorder().record_at(Metric::RttMs, 5_000, 12.0);
        assert_eq!(history.flush(10_000).unwrap(), 1);
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("damaged"))
            .count();
        assert_eq!(aside, 1);
    }
}
