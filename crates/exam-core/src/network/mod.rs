//! The network monitor: on its own thread, probes the server's `/healthz` (more often while
//! in doubt), reacts at once to the OS's network-interface changes, detects captive portals
//! (`/generate_204`, redirects not followed), measures round-trip time, and uses hysteresis
//! so one lost probe does not flip the state. Every outage is recorded in the client
//! database; every change is published on the bus.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{watch, Notify};
use url::Url;

use crate::bus::{CoreEvent, EventBus};
use crate::http::HttpClient;
use crate::queue::{Clock, SystemClock};
use crate::store::Store;

/// What the student can rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum NetState {
    /// Not probed yet.
    Unknown,
    Online,
    /// Reachable, but slow or losing probes.
    Degraded,
    /// The server cannot be reached at all (no network, or the link times out).
    Offline,
    /// A network login page intercepts requests.
    CaptivePortal,
    /// The network works but the server refuses or fails (connection refused, 5xx).
    ServerDown,
}

impl NetState {
    /// Whether requests may be sent.
    pub fn is_usable(self) -> bool {
        matches!(self, Self::Online | Self::Degraded)
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Online => "online",
            Self::Degraded => "degraded",
            Self::Offline => "offline",
            Self::CaptivePortal => "captive_portal",
            Self::ServerDown => "server_down",
        }
    }
}

/// Link quality from the smoothed round-trip time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum LinkQuality {
    Good,
    Fair,
    Poor,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct NetStatus {
    pub state: NetState,
    pub quality: LinkQuality,
    /// Smoothed round-trip time of the probes (ms).
    pub rtt_ms: Option<f64>,
    /// When the state last changed (ms since the epoch).
    pub since_ms: f64,
    /// Why, in words, when not online.
    pub reason: Option<String>,
    /// Probes sent since start (diagnostics).
    pub probes: u32,
}

/// Timings of the monitor. The defaults meet the budget: offline and online both noticed
/// within about a second.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    pub server: Url,
    /// Between probes while online.
    pub interval: Duration,
    /// Between probes while offline (how soon a return is noticed).
    pub offline_interval: Duration,
    /// Before the confirming probe after a failure or a first success.
    pub doubt_interval: Duration,
    /// Probe timeout floor; the timeout is max(this, 4 × smoothed RTT), capped at `max_timeout`.
    pub timeout: Duration,
    pub max_timeout: Duration,
    /// Consecutive failures before going offline / successes before coming back.
    pub failures_to_flip: u32,
    pub successes_to_flip: u32,
    /// Smoothed RTT above this is degraded.
    pub degraded_rtt: Duration,
}

impl MonitorConfig {
    pub fn new(server: Url) -> Self {
        Self {
            server,
            interval: Duration::from_millis(400),
            offline_interval: Duration::from_millis(400),
            doubt_interval: Duration::from_millis(40),
            timeout: Duration::from_millis(250),
            max_timeout: Duration::from_secs(3),
            failures_to_flip: 2,
            successes_to_flip: 2,
            degraded_rtt: Duration::from_millis(800),
        }
    }
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Ok {
        rtt: Duration,
    },
    /// Timed out or no route: nothing answered.
    Unreachable(String),
    /// Something answered, but not the server's health: refused, 5xx…
    ServerFailed(String),
    /// A redirect or a page instead of 204.
    Portal(String),
}

/// The state machine, separate from the I/O so it can be tested step by step.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub status: NetStatus,
    failures: u32,
    successes: u32,
    srtt: Option<f64>,
    /// When the current outage began (ms), if any.
    outage_start: Option<i64>,
    failures_to_flip: u32,
    successes_to_flip: u32,
    degraded_rtt_ms: f64,
}

/// A state change worth telling: the new status, and an outage that just ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub status: NetStatus,
    pub outage_started: Option<(NetState, i64)>,
    pub outage_ended: Option<(i64, i64)>,
}

impl Tracker {
    pub fn new(config: &MonitorConfig, now_ms: i64) -> Self {
        Self {
            status: NetStatus {
                state: NetState::Unknown,
                quality: LinkQuality::None,
                rtt_ms: None,
                since_ms: now_ms as f64,
                reason: None,
                probes: 0,
            },
            failures: 0,
            successes: 0,
            srtt: None,
            outage_start: None,
            failures_to_flip: config.failures_to_flip.max(1),
            successes_to_flip: config.successes_to_flip.max(1),
            degraded_rtt_ms: config.degraded_rtt.as_secs_f64() * 1000.0,
        }
    }

    /// Whether the next probe should come soon (a flip is pending).
    pub fn in_doubt(&self) -> bool {
        let up = self.status.state.is_usable();
        (up && self.failures > 0) || (!up && self.successes > 0)
    }

    pub fn smoothed_rtt(&self) -> Option<Duration> {
        self.srtt.map(|ms| Duration::from_secs_f64(ms / 1000.0))
    }

    fn quality(&self) -> LinkQuality {
        match self.srtt {
            None => LinkQuality::None,
            Some(ms) if ms < 150.0 && self.failures == 0 => LinkQuality::Good,
            Some(ms) if ms < self.degraded_rtt_ms => LinkQuality::Fair,
            Some(_) => LinkQuality::Poor,
        }
    }

    /// Feeds one probe result; returns the change if the visible status changed.
    pub fn observe(&mut self, probe: Probe, now_ms: i64) -> Option<Change> {
        self.status.probes = self.status.probes.saturating_add(1);
        let before = self.status.clone();
        let was_up = before.state.is_usable();
        let mut outage_started = None;
        let mut outage_ended = None;
        match probe {
            Probe::Ok { rtt } => {
                let ms = rtt.as_secs_f64() * 1000.0;
                self.srtt = Some(match self.srtt {
                    Some(s) => 0.8 * s + 0.2 * ms,
                    None => ms,
                });
                self.failures = 0;
                self.successes += 1;
                let come_back = before.state == NetState::Unknown
                    || was_up
                    || self.successes >= self.successes_to_flip;
                if come_back {
                    let degraded = self.srtt.unwrap_or(0.0) > self.degraded_rtt_ms;
                    self.set(
                        if degraded {
                            NetState::Degraded
                        } else {
                            NetState::Online
                        },
                        if degraded {
                            Some("the connection to the server is slow".into())
                        } else {
                            None
                        },
                        now_ms,
                    );
                    if let Some(start) = self.outage_start.take() {
                        outage_ended = Some((start, now_ms));
                    }
                }
            }
            failure => {
                let (state, reason) = match failure {
                    Probe::Unreachable(r) => (NetState::Offline, r),
                    Probe::ServerFailed(r) => (NetState::ServerDown, r),
                    Probe::Portal(r) => (NetState::CaptivePortal, r),
                    Probe::Ok { .. } => (NetState::Online, String::new()),
                };
                self.successes = 0;
                self.failures += 1;
                // A captive portal is certain at once; anything else needs confirming.
                let flip = !was_up
                    || state == NetState::CaptivePortal
                    || self.failures >= self.failures_to_flip;
                if flip {
                    if was_up || before.state == NetState::Unknown {
                        outage_started = Some((state, now_ms));
                        self.outage_start = Some(now_ms);
                    }
                    self.set(state, Some(reason), now_ms);
                } else {
                    // One lost probe: still up, but degraded quality shows it.
                    self.status.quality = self.quality();
                }
            }
        }
        self.status.rtt_ms = self.srtt;
        if self.status.state.is_usable() {
            self.status.quality = self.quality();
        } else {
            self.status.quality = LinkQuality::None;
        }
        let changed = self.status.state != before.state
            || self.status.quality != before.quality
            || self.status.reason != before.reason;
        changed.then(|| Change {
            status: self.status.clone(),
            outage_started,
            outage_ended,
        })
    }

    fn set(&mut self, state: NetState, reason: Option<String>, now_ms: i64) {
        if self.status.state != state {
            self.status.since_ms = now_ms as f64;
        }
        self.status.state = state;
        self.status.reason = reason;
    }
}

/// Probes once: `/healthz`, and `/generate_204` when the answer looks intercepted.
pub async fn probe(http: &HttpClient, server: &Url, timeout: Duration) -> Probe {
    let Ok(health) = server.join("healthz") else {
        return Probe::ServerFailed("the server address is not usable".into());
    };
    let started = Instant::now();
    let response = http.send(http.client().get(health).timeout(timeout)).await;
    let rtt = started.elapsed();
    let response = match response {
        Ok(r) => r,
        Err(e) => return classify_error(&e),
    };
    let status = response.status();
    if status == reqwest::StatusCode::NO_CONTENT {
        return Probe::Ok { rtt };
    }
    if status.is_server_error() {
        return Probe::ServerFailed(format!("the server answers {status}"));
    }
    // Anything else may be a portal: confirm with the dedicated probe.
    let Ok(portal) = server.join("generate_204") else {
        return Probe::ServerFailed(format!("the server answers {status}"));
    };
    match http.send(http.client().get(portal).timeout(timeout)).await {
        Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => {
            Probe::ServerFailed(format!("the server's health check answers {status}"))
        }
        Ok(r) if r.status().is_redirection() => Probe::Portal(format!(
            "this network wants you to sign in to it first (redirect to {})",
            r.headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("another page")
        )),
        Ok(r) => Probe::Portal(format!(
            "this network answers in the server's place ({}); it may want you to sign in to it",
            r.status()
        )),
        Err(e) => classify_error(&e),
    }
}

fn classify_error(e: &reqwest::Error) -> Probe {
    if e.is_timeout() {
        return Probe::Unreachable("the server does not answer (timed out)".into());
    }
    let chain = {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text.to_lowercase()
    };
    if chain.contains("refused") {
        Probe::ServerFailed(
            "the server computer refuses connections (Exam Bank is not running)".into(),
        )
    } else if chain.contains("reset") || chain.contains("closed") || chain.contains("broken pipe") {
        Probe::ServerFailed("the connection to the server was cut".into())
    } else if chain.contains("dns") || chain.contains("resolve") || chain.contains("lookup") {
        Probe::Unreachable("the server's name cannot be looked up (no network?)".into())
    } else {
        Probe::Unreachable("the server cannot be reached (no network?)".into())
    }
}

struct Shared {
    wake: Notify,
    stop: std::sync::atomic::AtomicBool,
}

/// The running monitor. Dropping it (or [`NetworkMonitor::stop`]) stops the thread.
pub struct NetworkMonitor {
    status: watch::Receiver<NetStatus>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl NetworkMonitor {
    /// Starts probing on a thread of its own. `store` receives the outage log.
    pub fn spawn(
        config: MonitorConfig,
        http: HttpClient,
        bus: EventBus,
        store: Option<Arc<Store>>,
    ) -> std::io::Result<Self> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let tracker = Tracker::new(&config, clock.now_ms());
        let (tx, rx) = watch::channel(tracker.status.clone());
        let shared = Arc::new(Shared {
            wake: Notify::new(),
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        let runner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("exam-netmon".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(error) => {
                        tracing::error!(%error, "the network monitor cannot start");
                        return;
                    }
                };
                runtime.block_on(run(config, http, bus, store, clock, tracker, tx, runner));
            })?;
        Ok(Self {
            status: rx,
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn status(&self) -> NetStatus {
        self.status.borrow().clone()
    }

    /// Follows every change.
    pub fn subscribe(&self) -> watch::Receiver<NetStatus> {
        self.status.clone()
    }

    /// Probes now (a request failed, the student pressed "retry", the OS said something).
    pub fn probe_now(&self) {
        self.shared.wake.notify_one();
    }

    pub fn stop(&self) {
        self.shared
            .stop
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for NetworkMonitor {
    fn drop(&mut self) {
        self.stop();
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    config: MonitorConfig,
    http: HttpClient,
    bus: EventBus,
    store: Option<Arc<Store>>,
    clock: Arc<dyn Clock>,
    mut tracker: Tracker,
    tx: watch::Sender<NetStatus>,
    shared: Arc<Shared>,
) {
    let mut interfaces = interface_changes();
    loop {
        if shared.stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let timeout = tracker
            .smoothed_rtt()
            .map(|rtt| rtt * 4)
            .unwrap_or_default()
            .max(config.timeout)
            .min(config.max_timeout);
        let result = probe(&http, &config.server, timeout).await;
        let now = clock.now_ms();
        if let Some(change) = tracker.observe(result, now) {
            record_outage(store.as_deref(), &change);
            tracing::info!(
                state = change.status.state.as_str(),
                reason = change.status.reason.as_deref().unwrap_or(""),
                "network state"
            );
            let _ = tx.send(change.status.clone());
            bus.publish(CoreEvent::NetworkChanged {
                status: change.status,
            });
        }
        let wait = if tracker.in_doubt() || tracker.status.state == NetState::Unknown {
            config.doubt_interval
        } else if tracker.status.state.is_usable() {
            config.interval
        } else {
            config.offline_interval
        };
        // A little jitter so a lab of clients does not probe in step.
        let wait = wait.mul_f64(0.9 + 0.2 * rand::random::<f64>());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.wake.notified() => {}
            changed = next_interface_change(&mut interfaces) => {
                if changed {
                    tracing::debug!("a network interface changed; probing now");
                }
            }
        }
    }
}

fn record_outage(store: Option<&Store>, change: &Change) {
    let Some(store) = store else { return };
    let conn = store.lock();
    let result = if let Some((state, start)) = change.outage_started {
        conn.execute(
            "INSERT INTO outages (state, started_at) VALUES (?1, ?2)",
            rusqlite::params![state.as_str(), start],
        )
        .map(|_| ())
    } else if let Some((start, end)) = change.outage_ended {
        conn.execute(
            "UPDATE outages SET ended_at = ?2, duration_ms = ?2 - started_at
             WHERE started_at = ?1 AND ended_at IS NULL",
            rusqlite::params![start, end],
        )
        .map(|_| ())
    } else {
        Ok(())
    };
    if let Err(error) = result {
        tracing::warn!(%error, "could not record an outage");
    }
}

/// An outage as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Outage {
    pub state: String,
    pub started_at_ms: f64,
    pub ended_at_ms: Option<f64>,
    pub duration_ms: Option<f64>,
}

/// The newest outages first.
pub fn outages(store: &Store, limit: u32) -> rusqlite::Result<Vec<Outage>> {
    let conn = store.lock();
    let mut stmt = conn.prepare_cached(
        "SELECT state, started_at, ended_at, duration_ms FROM outages
         ORDER BY started_at DESC, id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(Outage {
            state: r.get(0)?,
            started_at_ms: r.get::<_, i64>(1)? as f64,
            ended_at_ms: r.get::<_, Option<i64>>(2)?.map(|v| v as f64),
            duration_ms: r.get::<_, Option<i64>>(3)?.map(|v| v as f64),
        })
    })?;
    rows.collect()
}

type Interfaces = Option<if_watch::tokio::IfWatcher>;

fn interface_changes() -> Interfaces {
    match if_watch::tokio::IfWatcher::new() {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!(%error, "cannot watch network interfaces; probing only");
            None
        }
    }
}

/// Waits for the next interface change; never returns when there is no watcher.
async fn next_interface_change(interfaces: &mut Interfaces) -> bool {
    match interfaces {
        Some(watcher) => {
            let event = std::future::poll_fn(|cx| watcher.poll_if_event(cx)).await;
            event.is_ok()
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> Tracker {
        Tracker::new(
            &MonitorConfig::new(Url::parse("http://127.0.0.1:1/").unwrap()),
            0,
        )
    }

    fn ok(ms: u64) -> Probe {
        Probe::Ok {
            rtt: Duration::from_millis(ms),
        }
    }

    #[test]
    fn one_lost_probe_does_not_flip_two_do_and_the_outage_is_timed() {
        let mut t = tracker();
        let first = t.observe(ok(2), 0).unwrap();
        assert_eq!(first.status.state, NetState::Online);
        assert_eq!(first.status.quality, LinkQuality::Good);
        let lost = t.observe(Probe::Unreachable("timed out".into()), 100);
        assert_eq!(t.status.state, NetState::Online, "{lost:?}");
        assert!(t.in_doubt());
        let down = t
            .observe(Probe::Unreachable("timed out".into()), 150)
            .unwrap();
        assert_eq!(down.status.state, NetState::Offline);
        assert_eq!(down.outage_started, Some((NetState::Offline, 150)));
        assert_eq!(down.status.since_ms, 150.0);
        // One success while offline is not enough either.
        assert!(t.observe(ok(2), 900).is_none());
        assert_eq!(t.status.state, NetState::Offline);
        let back = t.observe(ok(2), 950).unwrap();
        assert_eq!(back.status.state, NetState::Online);
        assert_eq!(back.outage_ended, Some((150, 950)));
    }

    #[test]
    fn refused_is_server_down_and_a_portal_is_believed_at_once() {
        let mut t = tracker();
        t.observe(ok(1), 0);
        let portal = t
            .observe(Probe::Portal("redirect to http://login".into()), 10)
            .unwrap();
        assert_eq!(portal.status.state, NetState::CaptivePortal);
        assert!(portal.status.reason.unwrap().contains("login"));
        let mut t = tracker();
        t.observe(ok(1), 0);
        t.observe(Probe::ServerFailed("refused".into()), 10);
        let down = t
            .observe(Probe::ServerFailed("refused".into()), 20)
            .unwrap();
        assert_eq!(down.status.state, NetState::ServerDown);
    }

    #[test]
    fn a_slow_link_is_degraded_and_quality_follows_rtt() {
        let mut t = tracker();
        t.observe(ok(200), 0);
        assert_eq!(t.status.quality, LinkQuality::Fair);
        for i in 0..20 {
            t.observe(ok(2000), i * 10);
        }
        assert_eq!(t.status.state, NetState::Degraded);
        assert_eq!(t.status.quality, LinkQuality::Poor);
        assert!(t.status.reason.as_deref().unwrap().contains("slow"));
    }

    #[test]
    fn the_first_probe_decides_at_once() {
        let mut t = tracker();
        let first = t.observe(Probe::Unreachable("x".into()), 5).unwrap();
        assert_eq!(first.status.state, NetState::Offline);
        assert_eq!(first.outage_started, Some((NetState::Offline, 5)));
    }
}
