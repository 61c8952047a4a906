//! The sync engine: on a thread of its own, drains the queue while the network monitor says
//! the server is reachable and a student is signed in. Bounded concurrency (default 3);
//! small ready requests grouped into `/v1/batch`, each item's result handed back to its
//! entry; retries with exponential backoff and jitter, honouring `Retry-After`; a 401 goes
//! through the token manager once; pause, resume and "sync now"; progress events and
//! statistics. The queue is never cleared: signed out, it waits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::auth::{AuthError, AuthStatus, TokenManager};
use crate::bus::{CoreEvent, EventBus};
use crate::http::{describe, judge};
pub use crate::network::NetworkView;
use crate::queue::{Claimed, Outcome, Queue};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum SyncState {
    /// Nothing to send.
    Idle,
    Syncing,
    /// Paused by the student.
    Paused,
    /// The server cannot be reached; work waits on this computer.
    WaitingForNetwork,
    /// Nobody is signed in; work waits on this computer.
    WaitingForSignIn,
    /// Work waits for its next retry.
    Retrying,
}

/// What the student sees while syncing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SyncProgress {
    pub state: SyncState,
    /// Delivered since this sync began.
    pub done: u32,
    /// Not delivered yet (waiting or being sent).
    pub remaining: u32,
    /// Refused by the server and kept here (dead letters): never "everything is sent" while
    /// any is left.
    pub refused: u32,
    pub items_per_s: f64,
    /// What is being sent now.
    pub current: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SyncStats {
    /// Syncs begun (idle → syncing).
    pub syncs: u32,
    /// Entries delivered, retried later, dead-lettered.
    pub successes: u32,
    pub failures: u32,
    pub dead: u32,
    /// HTTP requests sent and how many were batches.
    pub requests: u32,
    pub batches: u32,
    pub avg_request_ms: f64,
    pub avg_sync_ms: f64,
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
    stop: AtomicBool,
    progress: Mutex<SyncProgress>,
    stats: Mutex<StatsInner>,
    /// (when, how many) deliveries, for items/s over the last seconds.
    rate: Mutex<VecDeque<(Instant, u32)>>,
    last_emit: Mutex<Option<Instant>>,
}

/// The running engine; stops when dropped.
pub struct SyncEngine {
    shared: Arc<Shared>,
    queue: Queue,
    thread: Mutex<Option<JoinHandle<()>>>,
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
}

impl SyncEngine {
    pub fn spawn(
        config: SyncConfig,
        queue: Queue,
        auth: TokenManager,
        network: NetworkView,
        bus: EventBus,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            wake: Notify::new(),
            paused: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            progress: Mutex::new(SyncProgress {
                state: SyncState::Idle,
                done: 0,
                remaining: 0,
                refused: 0,
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
        });
        let thread = std::thread::Builder::new()
            .name("exam-sync".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("exam-sync-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(error) => {
                        tracing::error!(%error, "the sync engine cannot start");
                        return;
                    }
                };
                runtime.block_on(run(ctx));
            })?;
        Ok(Self {
            shared,
            queue,
            thread: Mutex::new(Some(thread)),
        })
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

    /// Stops after the requests in flight finish; what was not sent stays queued.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SyncEngine {
    fn drop(&mut self) {
        self.stop();
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
        let remaining = self.queue.remaining().unwrap_or(0);
        let refused = self.queue.dead_count().unwrap_or(0);
        let progress = {
            let mut p = self
                .shared
                .progress
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            p.remaining = u32::try_from(remaining).unwrap_or(u32::MAX);
            p.refused = u32::try_from(refused).unwrap_or(u32::MAX);
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
        matches!(
            self.auth.snapshot().status,
            AuthStatus::SignedIn | AuthStatus::Offline
        )
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

async fn run(ctx: Arc<Ctx>) {
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
        if ctx.shared.stop.load(Ordering::SeqCst) {
            break;
        }
        while tasks.try_join_next().is_some() {}

        let gate = if ctx.shared.paused.load(Ordering::SeqCst) {
            Some(SyncState::Paused)
        } else if !network.borrow().state.is_usable() {
            Some(SyncState::WaitingForNetwork)
        } else if !ctx.signed_in() {
            Some(SyncState::WaitingForSignIn)
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

        let Ok(permit) = semaphore.clone().acquire_owned().await else {
            break;
        };
        if idle {
            // Work arrived after a quiet spell: let saves typed in quick succession travel
            // together.
            tokio::time::sleep(ctx.config.batch_window).await;
            if ctx.shared.paused.load(Ordering::SeqCst) || ctx.shared.stop.load(Ordering::SeqCst) {
                drop(permit);
                continue;
            }
        }
        let max = if ctx.batching() {
            ctx.config.batch_max.min(50)
        } else {
            1
        };
        let claimed = match ctx.queue.claim_up_to(max, BATCH_BYTES) {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::error!(%error, "cannot read the queue");
                drop(permit);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if claimed.is_empty() {
            drop(permit);
            idle = tasks.is_empty();
            let next_due = ctx.queue.next_due_ms().ok().flatten();
            if tasks.is_empty() {
                finish_sync(&ctx, &mut sync_started);
                ctx.set_state(if next_due.is_some() {
                    SyncState::Retrying
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
                _ = ctx.shared.wake.notified() => {}
                _ = added.notified() => {}
                changed = network.changed(), if network_alive => network_alive = changed.is_ok(),
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
            continue;
        }
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
            let results = send(&task_ctx, &claimed).await;
            record(&task_ctx, &results);
            if let Err(error) = task_ctx.queue.complete(&results) {
                tracing::error!(%error, "cannot record what the server answered");
            }
            task_ctx.emit(false);
            drop(permit);
            task_ctx.shared.wake.notify_one();
        });
    }
    // Let the requests in flight finish and be recorded.
    while tasks.join_next().await.is_some() {}
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

/// Sends claimed entries (one alone, several as a batch) and says what became of each.
async fn send(ctx: &Ctx, claimed: &[Claimed]) -> Vec<(i64, Outcome)> {
    let started = Instant::now();
    let results = if claimed.len() == 1 {
        vec![(claimed[0].id, send_one(ctx, &claimed[0]).await)]
    } else {
        send_batch(ctx, claimed).await
    };
    let mut s = ctx.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
    s.requests += 1;
    s.batches += u64::from(claimed.len() > 1);
    s.request_time += started.elapsed();
    results
}

async fn send_one(ctx: &Ctx, entry: &Claimed) -> Outcome {
    let Ok(url) = ctx.auth.server().join(entry.path.trim_start_matches('/')) else {
        return Outcome::Dead {
            status: 0,
            body: String::new(),
            error: format!("{} is not a valid path", entry.path),
        };
    };
    let Ok(method) = reqwest::Method::from_bytes(entry.method.as_bytes()) else {
        return Outcome::Dead {
            status: 0,
            body: String::new(),
            error: format!("{} is not an HTTP method", entry.method),
        };
    };
    let timeout = ctx.request_timeout();
    let result = ctx
        .auth
        .send_authorized(|client| {
            let mut request = client
                .request(method.clone(), url.clone())
                .timeout(timeout)
                .header("Idempotency-Key", &entry.idempotency_key);
            if let Some(body) = &entry.body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            request
        })
        .await;
    let response = match result {
        Ok(response) => response,
        Err(error) => return auth_failure(ctx, error),
    };
    match read_reply(ctx, response).await {
        Ok((status, body, retry_after)) => classify(status, &body, retry_after),
        Err(outcome) => outcome,
    }
}

/// The server's reply, whole: its status, body and `Retry-After`. A reply cut short, or one
/// that was not the server's (a portal's page with `200`, a proxy's error page), is no
/// verdict on the request: the entry is tried again (its idempotency key makes that safe),
/// and the network monitor hears of it.
async fn read_reply(
    ctx: &Ctx,
    response: reqwest::Response,
) -> Result<(u16, String, Option<Duration>), Outcome> {
    match server_reply(response).await {
        Ok(reply) => Ok(reply),
        Err(NotAReply::CutShort(error)) => {
            (ctx.network.probe_now)();
            Err(Outcome::Retry {
                error,
                retry_after: None,
            })
        }
        Err(NotAReply::Intercepted(interception)) => {
            ctx.auth.http().report_interception(&interception);
            Err(Outcome::Retry {
                error: interception.describe(),
                retry_after: None,
            })
        }
    }
}

/// Why a response is no verdict of the server's.
#[derive(Debug)]
pub enum NotAReply {
    CutShort(String),
    Intercepted(crate::http::Interception),
}

/// Reads a response whole and keeps it only if it is the server's.
pub async fn server_reply(
    response: reqwest::Response,
) -> Result<(u16, String, Option<Duration>), NotAReply> {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|error| NotAReply::CutShort(describe(&error)))?;
    if let Some(interception) = judge(status, &headers, &body) {
        return Err(NotAReply::Intercepted(interception));
    }
    Ok((
        status.as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
        retry_after(&headers),
    ))
}

fn auth_failure(ctx: &Ctx, error: AuthError) -> Outcome {
    match error {
        AuthError::Offline(message) => {
            (ctx.network.probe_now)();
            Outcome::Retry {
                error: message,
                retry_after: None,
            }
        }
        // Signed out or ended: the entry waits for the next sign-in, unchanged.
        other => {
            tracing::info!(error = %other, "queued work waits for a sign-in");
            Outcome::Release
        }
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(3600)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    at.duration_since(std::time::SystemTime::now()).ok()
}

/// What the server's own reply means for its entry (a reply that is not the server's never
/// gets here: [`server_reply`]).
pub fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> Outcome {
    let code = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string));
    match status {
        200..=299 => Outcome::Done {
            status,
            body: body.to_string(),
        },
        401 => Outcome::Release,
        408 | 425 | 429 | 500..=599 => Outcome::Retry {
            error: format!("the server answered {status}"),
            retry_after,
        },
        409 if code.as_deref() == Some("idempotency_in_flight") => Outcome::Retry {
            error: "the same request is still being processed".into(),
            retry_after: retry_after.or(Some(Duration::from_secs(1))),
        },
        _ => Outcome::Dead {
            status,
            body: body.chars().take(4000).collect(),
            error: match code {
                Some(code) => format!("refused by the server ({status} {code})"),
                None => format!("refused by the server ({status})"),
            },
        },
    }
}

async fn send_batch(ctx: &Ctx, claimed: &[Claimed]) -> Vec<(i64, Outcome)> {
    let requests: Vec<serde_json::Value> = claimed
        .iter()
        .map(|c| {
            let body = c
                .body
                .as_ref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
            let mut item = serde_json::json!({
                "id": c.id.to_string(),
                "method": c.method,
                "path": c.path,
                "idempotency_key": c.idempotency_key,
            });
            if let Some(body) = body {
                item["body"] = body;
            }
            item
        })
        .collect();
    let payload = serde_json::json!({ "requests": requests });
    let Ok(url) = ctx.auth.server().join("v1/batch") else {
        return all(claimed, Outcome::Release);
    };
    let timeout = ctx.request_timeout();
    let result = ctx
        .auth
        .send_authorized(|client| client.post(url.clone()).timeout(timeout).json(&payload))
        .await;
    let response = match result {
        Ok(r) => r,
        Err(error) => {
            let outcome = auth_failure(ctx, error);
            return all(claimed, outcome);
        }
    };
    let (status, text, retry) = match read_reply(ctx, response).await {
        Ok(reply) => reply,
        Err(outcome) => return all(claimed, outcome),
    };
    if status != 200 {
        return match classify(status, &text, retry) {
            Outcome::Dead { .. } => {
                // The server refuses batches: send one by one for a while.
                tracing::warn!(
                    status,
                    "the server refused a batch; sending singly for a minute"
                );
                *ctx.unbatched_until
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) =
                    Some(Instant::now() + Duration::from_secs(60));
                all(claimed, Outcome::Release)
            }
            other => all(claimed, other),
        };
    }
    let replies: HashMap<String, (u16, String)> =
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => v["responses"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| {
                            let id = item["id"].as_str()?.to_string();
                            let status = u16::try_from(item["status"].as_u64()?).ok()?;
                            Some((id, (status, item["body"].to_string())))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => HashMap::new(),
        };
    // Within a stream: after a barrier that did not go through, later items keep their result
    // only if they succeeded (e.g. an answer whose attempt is not created yet is sent again
    // later, without counting against it); a barrier after any failed item likewise (a
    // submission must not overtake an answer that failed).
    let mut failed_any: HashSet<&str> = HashSet::new();
    let mut failed_barrier: HashSet<&str> = HashSet::new();
    claimed
        .iter()
        .map(|c| {
            let outcome = match replies.get(&c.id.to_string()) {
                Some((status, body)) => classify(*status, body, None),
                None => Outcome::Retry {
                    error: "the batch reply did not mention this request".into(),
                    retry_after: None,
                },
            };
            let stream = c.stream.as_str();
            let held_back = if c.kind.is_barrier() {
                failed_any.contains(stream)
            } else {
                failed_barrier.contains(stream)
            };
            let outcome = match outcome {
                Outcome::Done { .. } => outcome,
                _ if held_back => Outcome::Release,
                other => {
                    failed_any.insert(stream);
                    if c.kind.is_barrier() {
                        failed_barrier.insert(stream);
                    }
                    other
                }
            };
            (c.id, outcome)
        })
        .collect()
}

fn all(claimed: &[Claimed], outcome: Outcome) -> Vec<(i64, Outcome)> {
    claimed.iter().map(|c| (c.id, outcome.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified_as_the_contract_says() {
        assert!(matches!(classify(200, "{}", None), Outcome::Done { .. }));
        assert!(matches!(classify(201, "{}", None), Outcome::Done { .. }));
        assert_eq!(classify(401, "", None), Outcome::Release);
        for status in [408, 429, 500, 502, 503] {
            assert!(
                matches!(classify(status, "", None), Outcome::Retry { .. }),
                "{status}"
            );
        }
        let in_flight = classify(409, r#"{"code":"idempotency_in_flight"}"#, None);
        assert!(matches!(in_flight, Outcome::Retry { .. }));
        let closed = classify(409, r#"{"code":"attempt_closed","title":"x"}"#, None);
        match closed {
            Outcome::Dead {
                status,
                error,
                body,
            } => {
                assert_eq!(status, 409);
                assert!(error.contains("attempt_closed"));
                assert!(body.contains("attempt_closed"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(422, "not json", None),
            Outcome::Dead { .. }
        ));
        let wait = classify(429, "", Some(Duration::from_secs(7)));
        assert_eq!(
            wait,
            Outcome::Retry {
                error: "the server answered 429".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
    }

    /// A one-shot HTTP server on 127.0.0.1 that writes `raw` and closes.
    fn replying(raw: &'static [u8]) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(raw);
            }
        });
        format!("http://{addr}/v1/attempts/a/answers/q1")
    }

    async fn reply_of(raw: &'static [u8]) -> Result<(u16, String, Option<Duration>), NotAReply> {
        let url = replying(raw);
        let response = reqwest::Client::new().put(url).send().await.unwrap();
        server_reply(response).await
    }

    #[tokio::test]
    async fn only_a_whole_reply_of_the_servers_is_a_verdict() {
        let whole = reply_of(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 42\r\n\r\n\
              {\"question_id\":\"q1\",\"seq\":1,\"stored\":true}",
        )
        .await
        .unwrap();
        assert_eq!(whole.0, 200);
        assert!(matches!(
            classify(whole.0, &whole.1, whole.2),
            Outcome::Done { .. }
        ));
        // The body stops after 15 of the 43 bytes announced: not delivered, tried again.
        let cut = reply_of(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 43\r\n\r\n\
              {\"question_id\":",
        )
        .await;
        assert!(matches!(cut, Err(NotAReply::CutShort(_))), "{cut:?}");
        // A portal's login page with 200 is not a receipt.
        let page = reply_of(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 21\r\n\r\n\
              <form>Sign in</form>\n",
        )
        .await;
        assert!(matches!(page, Err(NotAReply::Intercepted(_))), "{page:?}");
        // A proxy's own 503 page: not the server's 503.
        let proxy = reply_of(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nVia: 1.1 proxy\r\n\
              Content-Length: 7\r\n\r\n<h1>x</h1",
        )
        .await;
        assert!(matches!(proxy, Err(NotAReply::Intercepted(_))), "{proxy:?}");
        // The server's own refusal is one.
        let refused = reply_of(
            b"HTTP/1.1 409 Conflict\r\nContent-Type: application/problem+json\r\n\
              Content-Length: 25\r\n\r\n{\"code\":\"attempt_closed\"}",
        )
        .await
        .unwrap();
        assert!(matches!(
            classify(refused.0, &refused.1, refused.2),
            Outcome::Dead { .. }
        ));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "12".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        let later = std::time::SystemTime::now() + Duration::from_secs(100);
        h.insert(
            reqwest::header::RETRY_AFTER,
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let got = retry_after(&h).unwrap();
        assert!(got > Duration::from_secs(90) && got <= Duration::from_secs(100));
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
