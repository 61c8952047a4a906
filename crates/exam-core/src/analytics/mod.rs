//! Analytics on this computer: what the app measured, kept as history ([`history`]) —
//! answer saves, deliveries and batches, the queue's depth, the network's state and round
//! trip, sign-in and token latencies, requests and connections.
//!
//! Observations come two ways: the parts that time something record it as it happens
//! ([`Recorder`]: the answer save, sign-in, a token from the cache, a refresh), and a
//! sampler reads, once a second, the counters and states the other parts already keep
//! (deliveries, the queue, the network, requests). A worker writes the finished seconds
//! every few seconds and rolls the history up every minute, off the answer-save path.

pub mod history;
pub mod insights;
pub use exam_contract::predict;
pub mod recorder;

use std::time::Duration;

use serde::Serialize;

pub use history::{History, Point, Series};
pub use recorder::{Aggregate, Metric, Recorder};

use crate::auth::TokenManager;
use crate::lifecycle::Workers;
use crate::network::{NetState, NetworkView};
use crate::queue::Queue;
use crate::sync::SyncEngine;

/// How often the finished seconds are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// How often the history is rolled up.
pub const ROLL_UP_EVERY: Duration = Duration::from_secs(60);

/// What the sampler reads each second, and where the minute summaries go.
pub struct Sources {
    pub auth: TokenManager,
    pub engine: SyncEngine,
    pub network: NetworkView,
    pub queue: Queue,
    /// The school's name for this computer's lab (none: the server uses its subnet).
    pub lab: Option<String>,
    /// Where each second's figures go to open windows (live charts).
    pub bus: crate::bus::EventBus,
    /// The data folder, whose disk's free space is sampled once a minute.
    pub data_dir: std::path::PathBuf,
}

/// Free space (MiB) on the disk that holds `path`: the mounted file system with the longest
/// mount point above it. None when none is found (the sample is left out, never guessed).
pub fn free_space_mb(path: &std::path::Path) -> Option<f64> {
    let path = std::fs::canonicalize(path).ok()?;
    let disks = sysinfo::Disks::new_with_refreshed_list().ok()?;
    (&disks)
        .into_iter()
        .filter(|d| path.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space() as f64 / 1_048_576.0)
}

/// One metric's figures for one second, for live charts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TickValue {
    pub metric: Metric,
    pub count: u32,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// The series a dashboard charts.
pub const CHARTED: [Metric; 5] = [
    Metric::SaveMs,
    Metric::Delivered,
    Metric::QueueDepth,
    Metric::RttMs,
    Metric::Offline,
];

/// What the app knows besides the history, for the insights.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Context {
    pub clock_offset_s: f64,
    pub access_lifetime_s: Option<f64>,
    pub keychain_errors: f64,
    /// When the insights speak up (the managed configuration's `[analytics.insights]`).
    pub thresholds: insights::Thresholds,
}

/// This computer's dashboard: the charted series over a range, the insights, and when the
/// waiting work will have been sent (with the error that method made on this history).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Overview {
    pub from_ms: f64,
    pub to_ms: f64,
    pub series: Vec<Series>,
    pub insights: Vec<insights::Insight>,
    pub queue_depth: f64,
    /// Seconds until the waiting work is sent at the current rate (none: nothing moves).
    pub queue_drained_in_s: Option<f64>,
    /// How far off the queue-depth trend was a minute ahead over the last hour.
    pub depth_backtest: Option<predict::Backtest>,
    /// Rows the history holds, and its bound.
    pub rows: f64,
    pub max_rows: f64,
}

/// Points a dashboard chart gets at most: about one per pixel of its width.
pub const MAX_POINTS: usize = 1000;

/// `series` with at most `max` points: runs of neighbouring buckets merged (count, sum, min
/// and max merge exactly; the mean follows), so a week of minutes is charted from 1,000
/// points, not 10,080 — a chart cannot show more, and the window need not be sent them.
pub fn thin(mut series: Series, max: usize) -> Series {
    let per = series.points.len().div_ceil(max.max(1));
    if per <= 1 {
        return series;
    }
    series.points = series
        .points
        .chunks(per)
        .filter_map(|run| {
            let first = run.first()?;
            let count: u32 = run.iter().map(|p| p.count).sum();
            let sum: f64 = run.iter().map(|p| p.sum).sum();
            Some(Point {
                at_ms: first.at_ms,
                count,
                sum,
                mean: if count > 0 {
                    sum / f64::from(count)
                } else {
                    0.0
                },
                min: run.iter().map(|p| p.min).fold(f64::INFINITY, f64::min),
                max: run.iter().map(|p| p.max).fold(f64::NEG_INFINITY, f64::max),
            })
        })
        .collect();
    series.resolution_s = series
        .resolution_s
        .saturating_mul(u32::try_from(per).unwrap_or(u32::MAX));
    series
}

/// The dashboard over the last `range_ms` as of `now_ms`.
pub fn overview(
    history: &History,
    context: Context,
    range_ms: i64,
    now_ms: i64,
) -> Result<Overview, history::HistoryError> {
    let from = now_ms - range_ms.max(60_000);
    let series = CHARTED
        .iter()
        .map(|m| {
            history
                .series(*m, from, now_ms, now_ms)
                .map(|s| thin(s, MAX_POINTS))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut inputs = insights::Inputs::from_history(history, now_ms)?;
    inputs.clock_offset_s = context.clock_offset_s;
    inputs.access_lifetime_s = context.access_lifetime_s;
    inputs.keychain_errors = context.keychain_errors;
    let found = insights::evaluate(&inputs, &context.thresholds);
    let depth_by_minute: Vec<f64> = history
        .series(Metric::QueueDepth, now_ms - 3_600_000, now_ms, now_ms)?
        .points
        .chunks(60)
        .map(|c| c.iter().map(|p| p.max).fold(0.0, f64::max))
        .collect();
    Ok(Overview {
        from_ms: from as f64,
        to_ms: now_ms as f64,
        series,
        insights: found,
        queue_depth: inputs.queue_depth,
        queue_drained_in_s: predict::queue_drained_in_s(
            inputs.queue_depth,
            &inputs.delivered_per_s,
            300,
        ),
        depth_backtest: predict::backtest_holt(&depth_by_minute, 0.6, 0.3, 5, 1),
        rows: history.rows()? as f64,
        max_rows: history::max_rows() as f64,
    })
}

/// Queues the summary of the minute beginning at `minute_ms` as a `metrics.minute` event
/// of the signed-in student (telemetry: low priority, evicted first, never before answers;
/// nobody signed in, or offline: not sent — the history keeps it here). The id is made of this
/// computer's fingerprint and the minute, so a summary queued twice is one on the server.
pub fn send_minute(history: &History, sources: &Sources, device: &str, minute_ms: i64) {
    let Some(owner) = sources.auth.signed_in_owner() else {
        return;
    };
    // Offline, the history keeps the minute here: summaries never pile up in the queue.
    if !sources.network.status.borrow().usable {
        return;
    }
    let metrics = match history.minute(minute_ms) {
        Ok(metrics) if !metrics.is_empty() => metrics,
        Ok(_) => return,
        Err(error) => {
            tracing::warn!(%error, "the minute's summary could not be read");
            return;
        }
    };
    let attempt = crate::exam::attempt_in_progress(&sources.queue.store().lock(), &owner);
    let minute = crate::clock::rfc3339(minute_ms);
    let event = serde_json::json!([{
        "id": format!("metrics-{device}-{minute_ms}"),
        "type": "metrics.minute",
        "at": minute,
        "attrs": {
            "minute": minute,
            "device": device,
            "lab": sources.lab,
            "app_version": env!("CARGO_PKG_VERSION"),
            "attempt_id": attempt.as_ref().map(|a| &a.0),
            "exam_id": attempt.as_ref().map(|a| &a.1),
            "metrics": metrics,
        },
    }]);
    if let Err(error) = sources
        .queue
        .enqueue(crate::queue::NewEntry::telemetry(event).owned_by(&owner))
    {
        tracing::debug!(%error, "the minute's summary was not queued");
    }
}

/// Running totals seen at the last sample (deltas make the per-second counts).
#[derive(Default)]
struct Last {
    delivered: u64,
    requests_to_server: u64,
    requests: u64,
    connections: u64,
    failures: std::collections::BTreeMap<String, u32>,
    usable: bool,
}

fn sample(recorder: &Recorder, sources: &Sources, last: &mut Option<Last>) {
    let now = crate::clock::now_ms();
    let stats = sources.engine.stats();
    let reuse = sources.auth.http().reuse();
    let auth = sources.auth.metrics();
    let status = sources.network.status.borrow().clone();
    let totals = Last {
        delivered: u64::from(stats.successes),
        requests_to_server: u64::from(stats.requests),
        requests: reuse.requests_sent,
        connections: reuse.connections_opened,
        failures: auth.errors.clone(),
        usable: status.usable || status.state == NetState::Unknown,
    };
    if let Some(before) = last.as_ref() {
        let delivered = totals.delivered.saturating_sub(before.delivered);
        let sends = totals
            .requests_to_server
            .saturating_sub(before.requests_to_server);
        recorder.record_at(Metric::Delivered, now, delivered as f64);
        if sends > 0 {
            recorder.record_at(Metric::BatchSize, now, delivered as f64 / sends as f64);
        }
        recorder.record_at(
            Metric::Requests,
            now,
            totals.requests.saturating_sub(before.requests) as f64,
        );
        recorder.record_at(
            Metric::Connections,
            now,
            totals.connections.saturating_sub(before.connections) as f64,
        );
        let mut failed_total = 0;
        for (category, n) in &totals.failures {
            let failed = n.saturating_sub(before.failures.get(category).copied().unwrap_or(0));
            if failed == 0 {
                continue;
            }
            failed_total += failed;
            let metric = match category.as_str() {
                "network" => Metric::FailuresNetwork,
                "invalid_grant" => Metric::FailuresRejected,
                "rate_limited" => Metric::FailuresRateLimited,
                // Only in the total.
                _ => continue,
            };
            recorder.record_at(metric, now, f64::from(failed));
        }
        if failed_total > 0 {
            recorder.record_at(Metric::RefreshFailures, now, f64::from(failed_total));
        }
        if before.usable && !totals.usable {
            recorder.record_at(Metric::Outages, now, 1.0);
        }
    }
    *last = Some(totals);
    let progress = sources.engine.progress();
    recorder.record_at(
        Metric::QueueDepth,
        now,
        f64::from(progress.remaining.saturating_add(progress.others_waiting)),
    );
    let state = match status.state {
        NetState::Online => Some(Metric::Online),
        NetState::Degraded => Some(Metric::Degraded),
        NetState::Unknown => None,
        _ => Some(Metric::Offline),
    };
    if let Some(state) = state {
        recorder.record_at(state, now, 1.0);
    }
    if let Some(rtt) = status.rtt_ms.filter(|_| status.usable) {
        recorder.record_at(Metric::RttMs, now, rtt);
    }
}

/// Samples every second, writes every [`FLUSH_EVERY`], rolls up every [`ROLL_UP_EVERY`],
/// until the workers stop (and writes what is left then).
pub fn spawn(workers: &Workers, history: History, sources: Sources) {
    workers.spawn("history", move |stop| async move {
        let device =
            tokio::task::spawn_blocking(|| crate::security::device::machine_facts().fingerprint)
                .await
                .unwrap_or_default();
        let sources = std::sync::Arc::new(sources);
        // Counters start at zero with the app: what happened before the first sample counts.
        let mut last = Some(Last::default());
        let mut sent_minute = crate::clock::now_ms().div_euclid(60_000) * 60_000;
        let mut seconds: u64 = 0;
        loop {
            // Just after each second ends, so the second is whole and a live chart has it
            // within a second of what happened in it.
            let into_second = crate::clock::now_ms().rem_euclid(1000);
            let wait =
                Duration::from_millis(u64::try_from(1000 - into_second).unwrap_or(1000) + 20);
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
            sample(history.recorder(), &sources, &mut last);
            // The second just finished, to the windows that chart it live.
            let finished = crate::clock::now_ms().div_euclid(1000) * 1000 - 1000;
            let values: Vec<TickValue> = history
                .recorder()
                .peek(finished)
                .into_iter()
                .filter(|(metric, _)| CHARTED.contains(metric))
                .map(|(metric, a)| TickValue {
                    metric,
                    count: u32::try_from(a.count).unwrap_or(u32::MAX),
                    sum: a.sum,
                    min: a.min,
                    max: a.max,
                })
                .collect();
            if !values.is_empty() {
                sources.bus.publish(crate::bus::CoreEvent::HistoryTick {
                    at_ms: finished as f64,
                    values,
                });
            }
            seconds += 1;
            let flush = seconds.is_multiple_of(FLUSH_EVERY.as_secs());
            let roll_up = seconds.is_multiple_of(ROLL_UP_EVERY.as_secs());
            let this_minute = crate::clock::now_ms().div_euclid(60_000) * 60_000;
            let new_minute = this_minute > sent_minute;
            if flush || roll_up || new_minute || seconds == 1 {
                let (history, sources, device) = (history.clone(), sources.clone(), device.clone());
                let finished = sent_minute;
                let _ = tokio::task::spawn_blocking(move || {
                    let now = crate::clock::now_ms();
                    if new_minute || seconds == 1 {
                        if let Some(free) = free_space_mb(&sources.data_dir) {
                            history.recorder().record_at(Metric::DiskFreeMb, now, free);
                        }
                    }
                    if let Err(error) = history.flush(now) {
                        tracing::warn!(%error, "the history could not be written");
                    }
                    if new_minute {
                        send_minute(&history, &sources, &device, finished);
                    }
                    if roll_up {
                        if let Err(error) = history.roll_up(now) {
                            tracing::warn!(%error, "the history could not be rolled up");
                        }
                    }
                })
                .await;
                sent_minute = this_minute;
            }
        }
        let _ = tokio::task::spawn_blocking(move || history.flush(i64::MAX)).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_merges_neighbours_exactly_and_keeps_the_extremes() {
        let points: Vec<Point> = (0..10_080)
            .map(|i| Point {
                at_ms: f64::from(i) * 60_000.0,
                count: 2,
                sum: 4.0,
                mean: 2.0,
                min: if i == 5_000 { -7.0 } else { 1.0 },
                max: if i == 7_777 { 99.0 } else { 3.0 },
            })
            .collect();
        let series = Series {
            metric: Metric::SaveMs,
            resolution_s: 60,
            points,
        };
        let thin = thin(series.clone(), 1000);
        assert_eq!(thin.points.len(), 917, "runs of 11 minutes");
        assert_eq!(thin.resolution_s, 660);
        let total = |s: &Series| -> (u32, f64) {
            (
                s.points.iter().map(|p| p.count).sum(),
                s.points.iter().map(|p| p.sum).sum(),
            )
        };
        assert_eq!(total(&thin), total(&series));
        assert_eq!(
            thin.points
                .iter()
                .map(|p| p.min)
                .fold(f64::INFINITY, f64::min),
            -7.0
        );
        assert_eq!(
            thin.points
                .iter()
                .map(|p| p.max)
                .fold(f64::NEG_INFINITY, f64::max),
            99.0
        );
        assert_eq!(
            super::thin(series.clone(), 20_000),
            series,
            "short enough: as it was"
        );
    }
}
