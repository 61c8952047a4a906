//! The machine's readiness, reported to the server for IT: a `device.readiness` telemetry
//! event at the app's start (once a student is signed in: events travel with a student's
//! credentials), then daily, and sooner when a verdict changes (looked at every
//! [`LOOK_EVERY`]: an exam downloaded, a program started, a version required).
//!
//! Telemetry like the minute summaries: low priority, evicted first when the queue is full,
//! never sent before answers — and coalesced, so a report not yet sent is replaced by the next
//! one instead of piling up offline. It names no student: the machine's fingerprint, its lab
//! and version, its lines, the exams kept and the work waiting as counts.

use std::time::{Duration, Instant};

use exam_contract::readiness::{DeviceReadiness, EVENT_TYPE};

use super::gather::Sources;
use crate::lifecycle::Workers;
use crate::queue::NewEntry;

/// How often the verdicts are looked at for a change.
pub const LOOK_EVERY: Duration = Duration::from_secs(10 * 60);
/// A report goes at least this often.
pub const EVERY: Duration = Duration::from_secs(24 * 3600);
/// How often, before the first report, a signed-in student is looked for.
const WAIT_FOR_STUDENT: Duration = Duration::from_secs(2);
/// A report not yet sent is replaced by a newer one.
pub const COALESCE_KEY: &str = "device.readiness";

/// What makes a report news: its verdicts, without figures that move all the time (free
/// space, the clock's exact offset, the time).
pub fn verdicts(report: &DeviceReadiness) -> String {
    let checks: Vec<String> = report
        .checks
        .iter()
        .map(|c| format!("{}:{:?}", c.code, c.state))
        .collect();
    let exams: Vec<String> = report
        .exams
        .iter()
        .map(|e| {
            format!(
                "{}@{:?}:{}:{}",
                e.exam_id,
                e.version,
                e.ready,
                e.reasons.join("+")
            )
        })
        .collect();
    format!(
        "{}|{:?}|{}|{}|{}{}",
        report.app_version,
        report.lab,
        checks.join(","),
        exams.join(","),
        report.waiting.items > 0,
        report.waiting.refused > 0
    )
}

/// The event of `report`. Its id names the machine and the moment, so one queued twice is
/// one on the server.
pub fn event(report: &DeviceReadiness) -> serde_json::Value {
    let at_ms = crate::clock::parse_ms(&report.checked_at).unwrap_or_else(crate::clock::now_ms);
    serde_json::json!([{
        "id": format!("readiness-{}-{at_ms}", report.device),
        "type": EVENT_TYPE,
        "at": report.checked_at,
        "attrs": report,
    }])
}

/// Judges the machine now and queues its report as the signed-in student's telemetry —
/// unless its verdicts are `unless` (nothing changed); the verdicts sent, or none when
/// nothing was sent (nobody signed in, nothing changed, or it could not be made).
pub fn send(sources: &Sources, device: &str, unless: Option<&str>) -> Option<String> {
    let owner = sources.auth.signed_in_owner()?;
    let report = match sources.report(device) {
        Ok(report) => report,
        Err(error) => {
            tracing::warn!(%error, "this computer's readiness could not be judged");
            return None;
        }
    };
    let judged = verdicts(&report);
    if unless == Some(judged.as_str()) {
        return None;
    }
    let mut entry = NewEntry::telemetry(event(&report)).owned_by(&owner);
    entry.coalesce_key = Some(COALESCE_KEY.to_string());
    match sources.queue.enqueue(entry) {
        Ok(_) => {
            tracing::info!(
                exams = report.exams.len(),
                not_ready = report.exams.iter().filter(|e| !e.ready).count(),
                "this computer's readiness was reported"
            );
            Some(judged)
        }
        Err(error) => {
            tracing::debug!(%error, "this computer's readiness was not queued");
            None
        }
    }
}

/// Reports at the start (once someone is signed in), then every [`EVERY`] and when the
/// verdicts change, until the workers stop.
pub fn spawn(workers: &Workers, sources: Sources) {
    workers.spawn("readiness reports", move |stop| async move {
        let device =
            tokio::task::spawn_blocking(|| crate::security::device::machine_facts().fingerprint)
                .await
                .unwrap_or_default();
        let mut last: Option<(Instant, String)> = None;
        loop {
            if sources.auth.signed_in_owner().is_some() {
                let (looking, device) = (sources.clone(), device.clone());
                // Between the daily reports, only when a verdict changed.
                let unless = last
                    .as_ref()
                    .filter(|(at, _)| at.elapsed() < EVERY)
                    .map(|(_, verdicts)| verdicts.clone());
                let sent =
                    tokio::task::spawn_blocking(move || send(&looking, &device, unless.as_deref()))
                        .await
                        .ok()
                        .flatten();
                if let Some(verdicts) = sent {
                    last = Some((Instant::now(), verdicts));
                }
            }
            let wait = if last.is_none() {
                WAIT_FOR_STUDENT
            } else {
                LOOK_EVERY
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
}
