//! How fast core events reach the windows, measured from the core: a `Ping` goes out on the
//! bus like any other event, every window answers it with `ack_event`, and the core times
//! each answer. What is measured is the round trip (core → window → core), so the one-way
//! delivery time is below it.
//!
//! Each measurement also logs where the time went on the shell's side (taken off the bus, on
//! the main thread, every `eval` handed to WebKit) and each window's one-way time: what the
//! shell does takes a fraction of a millisecond; the rest is WebKit running one `eval` per
//! window, one after another, in the web process the windows share.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use exam_core::bus::{CoreEvent, EventBus};
use exam_core::metrics::LatencySummary;
use serde::Serialize;
use tokio::sync::oneshot;

/// The labels of the windows open now.
pub type WindowList = Box<dyn Fn() -> Vec<String> + Send + Sync>;

/// What a measurement found.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct DeliveryReport {
    /// Windows open when the measurement started.
    pub windows: u32,
    pub rounds: u32,
    /// Answers received in time (at most windows × rounds).
    pub delivered: u32,
    /// Answers that did not arrive within the timeout (a window still loading, or stuck).
    pub missed: u32,
    /// Per window and round: from the core publishing the event to the window's answer.
    pub round_trip: LatencySummary,
    /// Per window and round: from the core publishing the event to the window's script
    /// receiving it, by the wall clock both share (the webview's clock may be coarse: see
    /// `clock_step_ms`).
    pub one_way: LatencySummary,
    /// The smallest step seen in the windows' clock readings (WebKit may round them).
    pub clock_step_ms: f64,
}

/// Where a ping is on its way to the windows (see [`crate::events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The forwarding worker took it off the bus.
    Forwarded = 0,
    /// The main thread started handing it to the windows.
    OnMainThread = 1,
    /// Every window has been handed its `eval`.
    Handed = 2,
}

struct Round {
    sent: Instant,
    /// When the ping reached each [`Stage`].
    stages: [Option<Instant>; 3],
    /// Per window: label and one-way time (ns).
    per_window: Vec<(String, u64)>,
    sent_ms: f64,
    one_way: Vec<u64>,
    received: Vec<f64>,
    waiting: HashSet<String>,
    nanos: Vec<u64>,
    done: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
pub struct EventProbe {
    next: AtomicU32,
    rounds: Mutex<HashMap<u32, Round>>,
    windows: OnceLock<WindowList>,
}

impl EventProbe {
    /// Tells the probe how to list the open windows (set once, when the app starts).
    pub fn set_windows(&self, list: WindowList) {
        let _ = self.windows.set(list);
    }

    fn open_windows(&self) -> Vec<String> {
        self.windows.get().map(|list| list()).unwrap_or_default()
    }

    /// Notes when a ping reached `stage` (other events are not timed).
    pub fn mark(&self, event: &CoreEvent, stage: Stage) {
        let CoreEvent::Ping { id, .. } = event else {
            return;
        };
        let now = Instant::now();
        let mut rounds = self.rounds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(round) = rounds.get_mut(id) {
            round.stages[stage as usize].get_or_insert(now);
        }
    }

    /// A window answered ping `id`, having received it at `received_ms` (ms since the
    /// epoch). Unknown or late answers are ignored.
    pub fn ack(&self, id: u32, window: &str, received_ms: f64) {
        let mut rounds = self.rounds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(round) = rounds.get_mut(&id) {
            if round.waiting.remove(window) {
                let took = round.sent.elapsed();
                round
                    .nanos
                    .push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                let one_way_ms = (received_ms - round.sent_ms).max(0.0);
                round.one_way.push((one_way_ms * 1e6) as u64);
                round
                    .per_window
                    .push((window.to_string(), (one_way_ms * 1e6) as u64));
                round.received.push(received_ms);
            }
            if round.waiting.is_empty() {
                if let Some(done) = round.done.take() {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Sends `rounds` pings one after another, each to every open window, waiting up to
    /// `timeout` for all answers before the next.
    pub async fn measure(
        &self,
        bus: &EventBus,
        rounds: u32,
        answer_after_ms: u32,
        timeout: Duration,
    ) -> DeliveryReport {
        let windows = self.open_windows();
        let mut nanos = Vec::with_capacity(windows.len() * rounds as usize);
        let mut one_way = Vec::with_capacity(nanos.capacity());
        let mut received = Vec::with_capacity(nanos.capacity());
        let mut missed = 0u32;
        let mut stages: [Vec<u64>; 3] = Default::default();
        let mut per_window: HashMap<String, Vec<u64>> = HashMap::new();
        for _ in 0..rounds {
            if windows.is_empty() {
                break;
            }
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            let (done, finished) = oneshot::channel();
            let sent_ms = epoch_ms();
            self.rounds
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    id,
                    Round {
                        sent: Instant::now(),
                        stages: [None; 3],
                        per_window: Vec::new(),
                        sent_ms,
                        one_way: Vec::new(),
                        received: Vec::new(),
                        waiting: windows.iter().cloned().collect(),
                        nanos: Vec::with_capacity(windows.len()),
                        done: Some(done),
                    },
                );
            bus.publish(CoreEvent::Ping {
                id,
                sent_ms,
                answer_after_ms,
            });
            let _ = tokio::time::timeout(timeout, finished).await;
            let round = self
                .rounds
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            if let Some(round) = round {
                missed += u32::try_from(round.waiting.len()).unwrap_or(u32::MAX);
                nanos.extend(round.nanos);
                one_way.extend(round.one_way);
                received.extend(round.received);
                for (stage, at) in stages.iter_mut().zip(round.stages) {
                    if let Some(at) = at {
                        let took = at.saturating_duration_since(round.sent).as_nanos();
                        stage.push(u64::try_from(took).unwrap_or(u64::MAX));
                    }
                }
                for (window, ns) in round.per_window {
                    per_window.entry(window).or_default().push(ns);
                }
            }
            // Let the windows settle so rounds do not overlap.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        log_stages(windows.len(), &mut stages, per_window);
        let delivered = u32::try_from(nanos.len()).unwrap_or(u32::MAX);
        DeliveryReport {
            windows: u32::try_from(windows.len()).unwrap_or(u32::MAX),
            rounds,
            delivered,
            missed,
            round_trip: LatencySummary::of_nanos(&mut nanos),
            one_way: LatencySummary::of_nanos(&mut one_way),
            clock_step_ms: clock_step(&received),
        }
    }
}

/// Where the time went, for the log: from publishing to each [`Stage`], and each window's
/// one-way time.
fn log_stages(windows: usize, stages: &mut [Vec<u64>; 3], per_window: HashMap<String, Vec<u64>>) {
    let [forwarded, on_main, handed] = stages.each_mut().map(|s| LatencySummary::of_nanos(s));
    let mut per_window: Vec<(String, LatencySummary)> = per_window
        .into_iter()
        .map(|(w, mut ns)| (w, LatencySummary::of_nanos(&mut ns)))
        .collect();
    per_window.sort_by(|a, b| a.1.p50_us.total_cmp(&b.1.p50_us));
    let per_window: Vec<String> = per_window
        .iter()
        .map(|(w, s)| format!("{w} {:.0}/{:.0}", s.p50_us, s.p99_us))
        .collect();
    tracing::info!(
        windows,
        forwarded = format!(
            "{:.0}/{:.0}/{:.0}",
            forwarded.p50_us, forwarded.p99_us, forwarded.max_us
        ),
        on_main_thread = format!(
            "{:.0}/{:.0}/{:.0}",
            on_main.p50_us, on_main.p99_us, on_main.max_us
        ),
        handed = format!(
            "{:.0}/{:.0}/{:.0}",
            handed.p50_us, handed.p99_us, handed.max_us
        ),
        per_window = per_window.join(", "),
        "event delivery stages (µs since published, p50/p99/max; per window one-way p50/p99)"
    );
}

fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// The finest resolution the readings show: 1.0 if they are all whole milliseconds, less if
/// not (0 when there are none).
fn clock_step(readings: &[f64]) -> f64 {
    let mut step: f64 = 0.0;
    for r in readings {
        let frac = r.fract();
        if frac > 1e-6 {
            step = if step == 0.0 { frac } else { step.min(frac) };
        }
    }
    if step == 0.0 && !readings.is_empty() {
        1.0
    } else {
        step
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Three "windows" that answer pings from the bus, one of which never answers.
    #[tokio::test]
    async fn every_answer_is_timed_and_a_silent_window_is_counted_as_missed() {
        let bus = EventBus::default();
        let probe = Arc::new(EventProbe::default());
        probe.set_windows(Box::new(|| {
            vec!["main".into(), "a".into(), "silent".into()]
        }));
        for label in ["main", "a"] {
            let mut rx = bus.subscribe();
            let probe = probe.clone();
            tokio::spawn(async move {
                while let Ok(event) = rx.recv().await {
                    if let CoreEvent::Ping { id, sent_ms, .. } = event {
                        probe.ack(id, label, sent_ms + 0.25);
                        // A duplicate answer counts once.
                        probe.ack(id, label, sent_ms + 0.25);
                    }
                }
            });
        }
        let report = probe.measure(&bus, 5, 0, Duration::from_millis(50)).await;
        assert_eq!(report.windows, 3);
        assert_eq!(report.rounds, 5);
        assert_eq!(report.delivered, 10);
        assert_eq!(report.missed, 5);
        assert_eq!(report.round_trip.count, 10);
        assert!(report.round_trip.p99_us > 0.0);
        assert_eq!(report.one_way.count, 10);
        assert!(
            (report.one_way.p50_us - 250.0).abs() < 1.0,
            "{:?}",
            report.one_way
        );
        // A late answer to a finished round changes nothing.
        probe.ack(0, "silent", 0.0);
        assert!(probe.rounds.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn no_window_no_ping() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        let probe = EventProbe::default();
        let report = probe.measure(&bus, 3, 0, Duration::from_millis(10)).await;
        assert_eq!((report.windows, report.delivered, report.missed), (0, 0, 0));
        assert!(rx.try_recv().is_err());
    }
}
