//! The network monitor: a worker of the core ([`crate::lifecycle`]), probes the server's `/healthz`, reacts at once to
//! the OS's network-interface changes and to what the app's own requests meet (a portal's
//! page, a proxy's error: [`crate::http::judge`]), detects captive portals (`/generate_204`,
//! redirects not followed), and tells slow from gone the way TCP does: the time a probe may
//! take follows the measured round trip (RFC 6298), so a 300 ms or 3 s link is "degraded"
//! and used, and only a link that does not answer within the ceiling is offline
//! ([`tracker`], [`schedule`]). Hysteresis keeps one lost probe from flipping the state.
//! Every outage is recorded in the client database; every change is published on the bus.

mod probe;
pub mod schedule;
pub mod status;
pub mod tracker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::{AbortHandle, JoinSet};
use url::Url;

use crate::bus::{CoreEvent, EventBus};
use crate::clock::{Clock, SystemClock};
use crate::http::HttpClient;
use crate::lifecycle::{Stop, Workers};
use crate::store::Store;

pub use probe::probe;
pub use schedule::{Action, Scheduler};
pub use status::{LinkQuality, NetState, NetStatus};
pub use tracker::{Change, Probe, Rto, Tracker};

/// Timings of the monitor. The defaults keep a fast link's changes noticed within about a
/// second, and let links up to the ceiling's round trip be used.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    pub server: Url,
    /// Between probes while online.
    pub interval: Duration,
    /// Between probes while offline (how soon a return is noticed).
    pub offline_interval: Duration,
    /// Before the confirming probe after a first success, or after a report.
    pub doubt_interval: Duration,
    /// The least round-trip timeout (a fast link's): a probe without a reply after
    /// max(this, smoothed RTT + 4 × its variation) is suspected lost.
    pub timeout: Duration,
    /// The timeout before the first reply, when nothing is known of the link. Longer than
    /// RFC 6298's 1 s so a start on a 3 s link is never called offline on the way.
    pub initial_timeout: Duration,
    /// The ceiling: no probe waits longer, and a link slower than this is offline.
    pub max_timeout: Duration,
    /// Probes waiting for a reply at once while searching for the server.
    pub max_in_flight: usize,
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
            interval: Duration::from_millis(300),
            offline_interval: Duration::from_millis(400),
            doubt_interval: Duration::from_millis(40),
            timeout: Duration::from_millis(200),
            initial_timeout: Duration::from_millis(1500),
            max_timeout: Duration::from_secs(8),
            max_in_flight: 16,
            failures_to_flip: 2,
            successes_to_flip: 2,
            degraded_rtt: Duration::from_millis(250),
        }
    }

    /// The defaults, with the server and the ceiling of the settings.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            max_timeout: Duration::from_millis(u64::from(settings.network.probe_timeout_max_ms)),
            ..Self::new(settings.server_url.clone())
        }
    }
}

struct Shared {
    wake: Notify,
    /// Who is signed in, asked when an outage begins: the note is theirs.
    signed_in: std::sync::RwLock<Option<SignedIn>>,
}

/// Who is signed in now (`None`: nobody).
pub type SignedIn = Arc<dyn Fn() -> Option<crate::owner::Owner> + Send + Sync>;

/// The running monitor: a worker of [`Workers`], stopped when they shut down.
pub struct NetworkMonitor {
    status: watch::Receiver<NetStatus>,
    shared: Arc<Shared>,
    reports: mpsc::UnboundedSender<Probe>,
}

/// The network as the sync engine needs it: the current state, and a way to ask for a
/// probe when a request failed.
#[derive(Clone)]
pub struct NetworkView {
    pub status: watch::Receiver<NetStatus>,
    pub probe_now: Arc<dyn Fn() + Send + Sync>,
}

impl NetworkView {
    /// A network that is always up (tests, tools).
    pub fn always_online() -> Self {
        let (tx, rx) = watch::channel(NetStatus {
            state: NetState::Online,
            quality: LinkQuality::Good,
            rtt_ms: None,
            since_ms: 0.0,
            reason: None,
            usable: true,
            probes: 0,
        });
        // Keep the sender alive for as long as any view exists.
        let tx = Arc::new(tx);
        Self {
            status: rx,
            probe_now: Arc::new(move || {
                let _ = &tx;
            }),
        }
    }
}

impl NetworkMonitor {
    /// Starts probing as one of `workers`. `store` receives the outage log. The monitor
    /// hears of every reply of `http` that was not the server's.
    pub fn spawn(
        workers: &Workers,
        config: MonitorConfig,
        http: HttpClient,
        bus: EventBus,
        store: Option<Arc<Store>>,
    ) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let started = Instant::now();
        let scheduler = Scheduler::new(&config, 0, clock.now_ms());
        let (tx, rx) = watch::channel(scheduler.tracker.status.clone());
        let (reports, incoming) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            wake: Notify::new(),
            signed_in: std::sync::RwLock::new(None),
        });
        {
            let reports = reports.clone();
            http.on_interception(move |interception| {
                let probe = if interception.is_portal() {
                    Probe::Portal(interception.reason())
                } else {
                    Probe::ServerFailed(interception.reason())
                };
                let _ = reports.send(probe);
            });
        }
        let driver = Driver {
            server: config.server,
            http,
            bus,
            store,
            clock,
            started,
            tx,
            shared: shared.clone(),
        };
        workers.spawn("network monitor", move |stop| {
            driver.run(scheduler, incoming, stop)
        });
        Self {
            status: rx,
            shared,
            reports,
        }
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

    /// What a request of the app's found, taken as a probe result at once.
    pub fn report(&self, probe: Probe) {
        let _ = self.reports.send(probe);
    }

    /// The view the sync engine works with.
    /// Tells the monitor how to learn who is signed in, so each outage note is theirs.
    pub fn note_outages_for(&self, signed_in: SignedIn) {
        *self
            .shared
            .signed_in
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(signed_in);
    }

    pub fn view(self: &Arc<Self>) -> NetworkView {
        let monitor = self.clone();
        NetworkView {
            status: self.subscribe(),
            probe_now: Arc::new(move || monitor.probe_now()),
        }
    }
}

/// The monitor's I/O around the [`Scheduler`]: sends the probes it asks for, feeds it their
/// results, reports and wake-ups, and tells the world of each change.
struct Driver {
    server: Url,
    http: HttpClient,
    bus: EventBus,
    store: Option<Arc<Store>>,
    clock: Arc<dyn Clock>,
    started: Instant,
    tx: watch::Sender<NetStatus>,
    shared: Arc<Shared>,
}

impl Driver {
    fn mono(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn publish(&self, change: Option<Change>) {
        let Some(change) = change else { return };
        let signed_in = self
            .shared
            .signed_in
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let owner = signed_in.and_then(|f| f());
        record_outage(self.store.as_deref(), &change, owner.as_ref());
        tracing::info!(
            state = change.status.state.as_str(),
            reason = change
                .status
                .reason
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default(),
            rtt_ms = change.status.rtt_ms.unwrap_or(0.0),
            "network state"
        );
        let _ = self.tx.send(change.status.clone());
        self.bus.publish(CoreEvent::NetworkChanged {
            status: change.status,
        });
    }

    async fn run(
        self,
        mut scheduler: Scheduler,
        mut reports: mpsc::UnboundedReceiver<Probe>,
        stop: Stop,
    ) {
        let mut interfaces = interface_changes();
        let mut probes: JoinSet<(u64, Probe)> = JoinSet::new();
        let mut handles: HashMap<u64, AbortHandle> = HashMap::new();
        let mut reports_open = true;
        loop {
            if stop.is_cancelled() {
                break;
            }
            let (actions, change) =
                scheduler.poll(self.mono(), self.clock.now_ms(), rand::random::<f64>());
            self.publish(change);
            for action in actions {
                match action {
                    Action::Launch { id, timeout } => {
                        let http = self.http.clone();
                        let server = self.server.clone();
                        let handle =
                            probes.spawn(async move { (id, probe(&http, &server, timeout).await) });
                        handles.insert(id, handle);
                    }
                    Action::Abort { id } => {
                        if let Some(handle) = handles.remove(&id) {
                            handle.abort();
                        }
                    }
                }
            }
            let wake_in = scheduler
                .next_wake()
                .map(|at| Duration::from_millis(at.saturating_sub(self.mono())))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                Some(done) = probes.join_next(), if !probes.is_empty() => {
                    if let Ok((id, result)) = done {
                        handles.remove(&id);
                        let change = scheduler.on_result(
                            id,
                            result,
                            self.mono(),
                            self.clock.now_ms(),
                            rand::random::<f64>(),
                        );
                        self.publish(change);
                    }
                }
                report = reports.recv(), if reports_open => match report {
                    Some(report) => {
                        let change = scheduler.on_report(report, self.mono(), self.clock.now_ms());
                        self.publish(change);
                    }
                    None => reports_open = false,
                },
                _ = tokio::time::sleep(wake_in) => {}
                () = stop.cancelled() => break,
                _ = self.shared.wake.notified() => scheduler.probe_soon(self.mono()),
                changed = next_interface_change(&mut interfaces) => {
                    if changed {
                        tracing::debug!("a network interface changed; probing now");
                    }
                    scheduler.probe_soon(self.mono());
                }
            }
        }
        probes.abort_all();
    }
}

fn record_outage(store: Option<&Store>, change: &Change, owner: Option<&crate::owner::Owner>) {
    let Some(store) = store else { return };
    let conn = store.lock();
    let result = if let Some((state, start)) = change.outage_started {
        conn.execute(
            "INSERT INTO outages (state, started_at, origin, student) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                state.as_str(),
                start,
                owner.map(|o| o.origin.as_str()),
                owner.map(|o| o.student.as_str())
            ],
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

/// The newest outages first: every one (tools, tests; see [`outages_for`]).
pub fn outages(store: &Store, limit: u32) -> rusqlite::Result<Vec<Outage>> {
    outages_of(store, None, limit)
}

/// The newest outages first that `owner` may see: those noted while they were signed in,
/// and those while nobody was (shared lab computers: another student's are not shown).
pub fn outages_for(
    store: &Store,
    owner: Option<&crate::owner::Owner>,
    limit: u32,
) -> rusqlite::Result<Vec<Outage>> {
    outages_of(store, Some(owner), limit)
}

fn outages_of(
    store: &Store,
    owner: Option<Option<&crate::owner::Owner>>,
    limit: u32,
) -> rusqlite::Result<Vec<Outage>> {
    let conn = store.lock();
    let mut stmt = conn.prepare_cached(
        "SELECT state, started_at, ended_at, duration_ms FROM outages
         WHERE ?2 = 0 OR student IS NULL OR (origin = ?3 AND student = ?4)
         ORDER BY started_at DESC, id DESC LIMIT ?1",
    )?;
    let (filtered, whose) = match owner {
        None => (false, None),
        Some(owner) => (true, owner),
    };
    let params = rusqlite::params![
        limit,
        filtered,
        whose.map(|o| o.origin.as_str()),
        whose.map(|o| o.student.as_str())
    ];
    let rows = stmt.query_map(params, |r| {
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
