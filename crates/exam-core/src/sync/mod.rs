//! The sync engine: a worker of the core ([`crate::lifecycle`]), drains the queue while the network monitor says
//! the server is reachable and a student is signed in. Bounded concurrency (default 3);
//! small ready requests grouped into `/v1/batch`, each item's result handed back to its
//! entry; retries with exponential backoff and jitter, honouring `Retry-After`; a 401 goes
//! through the token manager once; pause, resume and "sync now"; progress events and
//! statistics. The queue is never cleared: signed out, it waits.

mod couriers;
pub mod progress;
mod send;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::auth::TokenManager;
use crate::bus::{CoreEvent, EventBus};
use crate::lifecycle::{Stop, Workers};
pub use crate::network::NetworkView;
use crate::queue::{Outcome, Queue};
pub use progress::{SyncProgress, SyncState, SyncStats};
use send::send;
pub use send::{classify, server_reply, NotAReply};

/// A batch stays under this many bytes of entries (the server refuses bodies over 1 MiB).
pub const BATCH_BYTES: u64 = 512 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct SyncConfig {
    /// Requests (single or batch) in flight at once.
    pub concurrency: usize,
    /// How long to wait for more work before sending what is ready.
    pub batch_window: Duration,
    /// Items per `/v1/batch` (1 turns batching off; the server takes at most 50).
    pub batch_max: usize,
    pub request_timeout: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            concurrency: 3,
            batch_window: Duration::from_millis(25),
            // The contract's maximum: one server commit for up to 50 saves.
            batch_max: 50,
            request_timeout: Duration::from_secs(20),
        }
    }
}

#[derive(Default)]
struct StatsInner {
    syncs: u64,
    successes: u64,
    failures: u64,
    dead: u64,
    requests: u64,
    batches: u64,
    request_time: Duration,
    sync_count: u64,
    sync_time: Duration,
}

struct Shared {
    wake: Notify,
    paused: AtomicBool,
    progress: Mutex<SyncProgress>,
    stats: Mutex<StatsInner>,
    /// (when, how many) deliveries, for items/s over the last seconds.
    rate: Mutex<VecDeque<(Instant, u32)>>,
    last_emit: Mutex<Option<Instant>>,
}

/// The running engine: a worker of [`Workers`], stopped when they shut down (after the
/// requests in flight are answered and recorded; what was not sent stays queued).
#[derive(Clone)]
pub struct SyncEngine {
    shared: Arc<Shared>,
    queue: Queue,
}

struct Ctx {
    config: SyncConfig,
    queue: Queue,
    auth: TokenManager,
    network: NetworkView,
    bus: EventBus,
    shared: Arc<Shared>,
    /// Batching is switched off for a while if the server refuses batches.
    unbatched_until: Mutex<Option<Instant>>,
    /// Delivery credentials of students who left work here.
    couriers: couriers::Couriers,
}

impl SyncEngine {
    pub fn spawn(
        workers: &Workers,
        config: SyncConfig,
        queue: Queue,
        auth: TokenManager,
        network: NetworkView,
        bus: EventBus,
    ) -> Self {
        let shared = Arc::new(Shared {
            wake: Notify::new(),
            paused: AtomicBool::new(false),
            progress: Mutex::new(SyncProgress {
                state: SyncState::Idle,
                done: 0,
                remaining: 0,
                refused: 0,
                others_waiting: 0,
                items_per_s: 0.0,
                current: None,
                last_error: None,
            }),
            stats: Mutex::new(StatsInner::default()),
            rate: Mutex::new(VecDeque::new()),
            last_emit: Mutex::new(None),
        });
        let ctx = Arc::new(Ctx {
            config,
            queue: queue.clone(),
            auth,
            network,
            bus,
            shared: shared.clone(),
            unbatched_until: Mutex::new(None),
            couriers: couriers::Couriers::default(),
        });
        workers.spawn("sync engine", move |stop| run(ctx, stop));
        Self { shared, queue }
    }

    /// New work was queued.
    pub fn notify(&self) {
        self.shared.wake.notify_one();
    }

    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }

    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }

    pub fn is_paused(&self) -> bool {
        self.shared.paused.load(Ordering::SeqCst)
    }

    /// Sends everything now: waiting retries become due, a pause ends.
    pub fn sync_now(&self) {
        if let Err(error) = self.queue.make_due_now() {
            tracing::warn!(%error, "could not make queued work due");
        }
        self.resume();
    }

    pub fn progress(&self) -> SyncProgress {
        self.shared
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn stats(&self) -> SyncStats {
        let s = self.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let avg = |total: Duration, n: u64| {
            if n == 0 {
                0.0
            } else {
                total.as_secs_f64() * 1000.0 / n as f64
            }
        };
        SyncStats {
            syncs: clamp(s.syncs),
            successes: clamp(s.successes),
            failures: clamp(s.failures),
            dead: clamp(s.dead),
            requests: clamp(s.requests),
            batches: clamp(s.batches),
            avg_request_ms: avg(s.request_time, s.requests),
            avg_sync_ms: avg(s.sync_time, s.sync_count),
        }
    }
}

impl Ctx {
    fn set_state(&self, state: SyncState) {
        let changed = {
            let mut p = self
                .shared
                .progress
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if p.state == state {
                false
            } else {
                if state == SyncState::Syncing {
                    p.done = 0;
                }
                p.state = state;
                if state != SyncState::Syncing {
                    p.current = None;
                }
                true
            }
        };
        if changed {
            self.emit(true);
        }
    }

    /// Publishes progress, at most ten times a second unless `force`.
    fn emit(&self, force: bool) {
        {
            let mut last = self
                .shared
                .last_emit
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !force && last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
                return;
            }
            *last = Some(Instant::now());
        }
        let all = self.queue.remaining().unwrap_or(0);
        let (remaining, refused) = match self.auth.signed_in_owner() {
            Some(owner) => (
                self.queue.remaining_for(&owner).unwrap_or(0),
                self.queue.dead_count_for(&owner).unwrap_or(0),
            ),
            None => (0, 0),
        };
        let progress = {
            let mut p = self
                .shared
                .progress
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            p.remaining = u32::try_from(remaining).unwrap_or(u32::MAX);
            p.refused = u32::try_from(refused).unwrap_or(u32::MAX);
            p.others_waiting = u32::try_from(all.saturating_sub(remaining)).unwrap_or(u32::MAX);
            p.items_per_s = self.rate();
            p.clone()
        };
        self.bus.publish(CoreEvent::SyncProgress { progress });
    }

    fn rate(&self) -> f64 {
        let mut rate = self.shared.rate.lock().unwrap_or_else(|p| p.into_inner());
        let window = Duration::from_secs(3);
        while rate.front().is_some_and(|(t, _)| t.elapsed() > window) {
            rate.pop_front();
        }
        let (Some(first), Some(_)) = (rate.front(), rate.back()) else {
            return 0.0;
        };
        let span = first.0.elapsed().as_secs_f64().max(0.25);
        rate.iter().map(|(_, n)| f64::from(*n)).sum::<f64>() / span
    }

    fn signed_in(&self) -> bool {
        self.auth.snapshot().status.has_session()
    }

    /// The configured timeout, or eight round trips on a slow link (a connection, TLS and the
    /// request take three or four; the rest is slack for the server's work), so a 3 s link
    /// is not timed out while it delivers.
    fn request_timeout(&self) -> Duration {
        let rtt = self.network.status.borrow().rtt_ms.unwrap_or(0.0);
        self.config
            .request_timeout
            .max(Duration::from_secs_f64(rtt.max(0.0) * 8.0 / 1000.0))
    }

    fn batching(&self) -> bool {
        let until = *self
            .unbatched_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.config.batch_max > 1 && until.is_none_or(|t| Instant::now() >= t)
    }
}

async fn run(ctx: Arc<Ctx>, stop: Stop) {
    // What waits and what was refused, before anything happens (a restart with work kept).
    ctx.emit(true);
    let semaphore = Arc::new(Semaphore::new(ctx.config.concurrency.max(1)));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut network = ctx.network.status.clone();
    let mut bus = ctx.bus.subscribe();
    // Nothing was ready last time we looked (so a batch window is worth waiting).
    let mut idle = true;
    let mut sync_started: Option<Instant> = None;
    // A monitor that stopped sends no more changes (and must not wake us in a loop).
    let mut network_alive = true;
    loop {
        if stop.is_cancelled() {
            break;
        }
        while tasks.try_join_next().is_some() {}

        let gate = if ctx.shared.paused.load(Ordering::SeqCst) {
            Some(SyncState::Paused)
        } else if !network.borrow().state.is_usable() {
            Some(SyncState::WaitingForNetwork)
        } else {
            None
        };
        if let Some(state) = gate {
            if tasks.is_empty() {
                finish_sync(&ctx, &mut sync_started);
                ctx.set_state(state);
            }
            let added = ctx.queue.added();
            tokio::select! {
                () = stop.cancelled() => {}
                _ = ctx.shared.wake.notified() => {}
                // New work while waiting: windows see what waits grow.
                _ = added.notified() => ctx.emit(true),
                changed = network.changed(), if network_alive => network_alive = changed.is_ok(),
                event = bus.recv() => {
                    if matches!(event, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
            continue;
        }

        let permit = tokio::select! {
            permit = semaphore.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stop.cancelled() => break,
        };
        if idle {
            // Work arrived after a quiet spell: let saves typed in quick succession travel
            // together.
            tokio::time::sleep(ctx.config.batch_window).await;
            if ctx.shared.paused.load(Ordering::SeqCst) || stop.is_cancelled() {
                drop(permit);
                continue;
            }
        }
        let max = if ctx.batching() {
            ctx.config.batch_max.min(50)
        } else {
            1
        };
        // One student's work at a time, with that student's own credentials: the
        // signed-in student's, then the work of students who left it here (couriers).
        let next = match couriers::claim_next(&ctx, max).await {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%error, "cannot read the queue");
                drop(permit);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let next = match next {
            Ok(next) => next,
            Err(nothing) => {
                drop(permit);
                idle = tasks.is_empty();
                let next_due = nothing.next_due;
                if tasks.is_empty() {
                    finish_sync(&ctx, &mut sync_started);
                    ctx.set_state(if next_due.is_some() {
                        SyncState::Retrying
                    } else if nothing.waits_for_sign_in && !ctx.signed_in() {
                        SyncState::WaitingForSignIn
                    } else {
                        SyncState::Idle
                    });
                }
                let wait = next_due
                    .map(|due| {
                        Duration::from_millis(
                            u64::try_from(due - ctx.queue.now_ms()).unwrap_or(0).max(5),
                        )
                    })
                    .unwrap_or(Duration::from_secs(30))
                    .min(Duration::from_secs(30));
                let added = ctx.queue.added();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => {}
                    _ = ctx.shared.wake.notified() => {}
                    _ = added.notified() => {}
                    changed = network.changed(), if network_alive => network_alive = changed.is_ok(),
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                    // Another student signed in: their work waiting here is due now.
                    () = session_changed(&mut bus) => {}
                }
                continue;
            }
        };
        let claimed = &next.claimed;
        idle = false;
        if sync_started.is_none() {
            sync_started = Some(Instant::now());
            ctx.shared
                .stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .syncs += 1;
        }
        ctx.set_state(SyncState::Syncing);
        {
            let mut p = ctx
                .shared
                .progress
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            p.current = claimed.first().map(|c| format!("{} {}", c.method, c.path));
        }
        let task_ctx = ctx.clone();
        tasks.spawn(async move {
            let results = send(&task_ctx, &next.sender, &next.owner, &next.claimed).await;
            record(&task_ctx, &results);
            if let Err(error) = task_ctx.queue.complete(&results) {
                tracing::error!(%error, "cannot record what the server answered");
            }
            if next.courier {
                task_ctx
                    .couriers
                    .retire_if_done(&task_ctx, &next.owner)
                    .await;
            }
            task_ctx.emit(false);
            drop(permit);
            task_ctx.shared.wake.notify_one();
        });
    }
    // Let the requests in flight finish and be recorded.
    while tasks.join_next().await.is_some() {}
}

/// Until the session changes hands (a sign-in, a sign-out, a session ended); never, once
/// the bus is closed.
async fn session_changed(bus: &mut tokio::sync::broadcast::Receiver<CoreEvent>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match bus.recv().await {
            Ok(CoreEvent::AuthChanged { .. } | CoreEvent::SessionEnded { .. }) => return,
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

fn finish_sync(ctx: &Ctx, started: &mut Option<Instant>) {
    if let Some(start) = started.take() {
        let mut s = ctx.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.sync_count += 1;
        s.sync_time += start.elapsed();
    }
}

fn record(ctx: &Ctx, results: &[(i64, Outcome)]) {
    let (mut ok, mut failed, mut dead) = (0u32, 0u32, 0u32);
    let mut last_error = None;
    for (_, outcome) in results {
        match outcome {
            Outcome::Done { .. } => ok += 1,
            Outcome::Retry { error, .. } => {
                failed += 1;
                last_error = Some(error.clone());
            }
            Outcome::Dead { error, .. } => {
                dead += 1;
                last_error = Some(error.clone());
            }
            Outcome::Release => {}
        }
    }
    {
        let mut s = ctx.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.successes += u64::from(ok);
        s.failures += u64::from(failed);
        s.dead += u64::from(dead);
    }
    if ok > 0 {
        ctx.shared
            .rate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((Instant::now(), ok));
    }
    let mut p = ctx
        .shared
        .progress
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    p.done = p.done.saturating_add(ok);
    if last_error.is_some() {
        p.last_error = last_error;
    }
}
