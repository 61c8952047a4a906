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
pub mod recorder;

use std::time::Duration;

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
}

/// Queues the summary of the minute beginning at `minute_ms` as a `metrics.minute` event
/// of the signed-in student (telemetry: low priority, evicted first, never before answers;
/// nobody signed in: not sent — the history keeps it here). The id is made of this
/// computer's fingerprint and the minute, so a summary queued twice is one on the server.
pub fn send_minute(history: &History, sources: &Sources, device: &str, minute_ms: i64) {
    let Some(owner) = sources.auth.signed_in_owner() else {
        return;
    };
    let metrics = match history.minute(minute_ms) {
        Ok(metrics) if !metrics.is_empty() => metrics,
        Ok(_) => return,
        Err(error) => {
            tracing::warn!(%error, "the minute's summary could not be read");
            return;
        }
    };
    let attempt: Option<(String, String)> = sources
        .queue
        .store()
        .lock()
        .query_row(
            "SELECT attempt_id, exam_id FROM attempts
             WHERE origin = ?1 AND username = ?2 AND status = 'in_progress'
             ORDER BY rowid DESC LIMIT 1",
            rusqlite::params![owner.origin, owner.student],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok();
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
        let mut last = None;
        let mut sent_minute = crate::clock::now_ms().div_euclid(60_000) * 60_000;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut seconds: u64 = 0;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            sample(history.recorder(), &sources, &mut last);
            seconds += 1;
            let flush = seconds.is_multiple_of(FLUSH_EVERY.as_secs());
            let roll_up = seconds.is_multiple_of(ROLL_UP_EVERY.as_secs());
            let this_minute = crate::clock::now_ms().div_euclid(60_000) * 60_000;
            let new_minute = this_minute > sent_minute;
            if flush || roll_up || new_minute {
                let (history, sources, device) = (history.clone(), sources.clone(), device.clone());
                let finished = sent_minute;
                let _ = tokio::task::spawn_blocking(move || {
                    let now = crate::clock::now_ms();
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
