//! The reference Exam Bank server: implements `shared/API.md` so the desktop client can be
//! developed, demonstrated and tested end to end on one machine — including the security
//! backend (lockouts, rate limits, IP blocks, session termination, an append-only audit log).
//!
//! Every `/v1` operation is one entry of [`routes::ROUTES`] and runs through one dispatcher,
//! so a request sent alone and the same request inside `/v1/batch` are processed identically.

pub mod admin;
pub mod api;
pub mod audit;
pub mod auth;
pub mod console;
pub mod db;
pub mod demo;
pub mod fleet;
pub mod http;
pub mod idempotency;
pub mod packages;
pub mod problem;
pub mod ratelimit;
pub mod readiness;
pub mod reports;
pub mod routes;
pub mod seal;
pub mod security;
pub mod stats;
pub mod updates;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use tokio::net::TcpListener;

pub use db::Db;
pub use ratelimit::RateSpec;

/// How the server runs. [`Config::new`] gives the contract's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub db_path: PathBuf,
    /// Bearer token of the administration API (at least
    /// [`admin::MIN_ADMIN_TOKEN_LEN`] characters); `None` disables it.
    pub admin_token: Option<String>,
    /// The key that signs access tokens (at least 32 bytes), e.g. read from a file kept
    /// apart from the database; `None` keeps a generated one in the database.
    pub jwt_key: Option<Vec<u8>>,
    /// Lifetime of access tokens, in seconds.
    pub access_ttl_s: u64,
    pub user_rate: RateSpec,
    pub ip_rate: RateSpec,
    /// Failed sign-ins for one username from one IP that lock that pair for the window.
    pub lockout_failures: u32,
    /// Failed sign-ins for one username from any IPs that lock the username.
    pub lockout_user_failures: u32,
    /// Failed sign-ins from one IP (any usernames) that lock the IP: high, since a whole lab
    /// may sit behind one NAT address.
    pub lockout_ip_failures: u32,
    pub lockout_window_s: u64,
    /// Failed uses of the admin API (a missing or wrong token, a student's token) from one
    /// address within [`admin::ADMIN_FAILURE_WINDOW`] that lock that address out of it.
    pub admin_lockout_failures: usize,
    /// Password checks (19 MiB each) run at most this many at once…
    pub hash_concurrency: usize,
    /// …with at most this many sign-ins waiting for one; beyond, 503 with `Retry-After`.
    pub hash_queue: usize,
    /// A retried rotation of the previous refresh token is honoured within this many seconds.
    pub refresh_grace_s: u64,
    /// A session ends this many seconds after sign-in, whatever happens (contract: 12 h).
    pub session_absolute_s: u64,
    /// A session ends when its refresh token goes unused this many seconds (contract: 8 h).
    pub session_idle_s: u64,
    /// The `two_devices` rule (one student signed in on two machines at once) also asks the
    /// student for the password again (step-up): their sessions begun before the alert are
    /// refused with 401 `step_up_required`. `false` keeps the alert alone.
    pub step_up_on_two_devices: bool,
    /// When the fleet's insights speak up (`GET /v1/admin/fleet/insights`).
    pub insights: fleet::insights::Thresholds,
    /// Seeds demo students and exams.
    pub demo: bool,
    /// The demo's sealed exam "opening soon" opens this many seconds after seeding.
    pub demo_opens_in_s: u64,
    /// Reports on a schedule: what, where the files go, how they are mailed.
    pub reports: reports::schedule::Settings,
    /// The app's releases, when this server plays the update server (see [`updates`]).
    pub updates_dir: Option<PathBuf>,
}

impl Config {
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        Self {
            db_path: db_path.into(),
            admin_token: None,
            jwt_key: None,
            access_ttl_s: 900,
            user_rate: RateSpec::new(20.0, 200.0),
            ip_rate: RateSpec::new(2000.0, 4000.0),
            lockout_failures: 5,
            lockout_user_failures: 20,
            lockout_ip_failures: 100,
            lockout_window_s: 300,
            admin_lockout_failures: admin::ADMIN_FAILURE_LIMIT,
            hash_concurrency: std::thread::available_parallelism()
                .map_or(2, std::num::NonZeroUsize::get)
                .clamp(2, 8),
            hash_queue: 32,
            refresh_grace_s: 60,
            session_absolute_s: 12 * 3600,
            session_idle_s: 8 * 3600,
            step_up_on_two_devices: true,
            insights: fleet::insights::Thresholds::default(),
            demo: false,
            demo_opens_in_s: 300,
            reports: reports::schedule::Settings::default(),
            updates_dir: None,
        }
    }
}

/// Everything a request handler may use.
pub struct AppState {
    pub config: Config,
    pub db: Db,
    /// A read-only connection for the routes marked `reader` (long analytics queries).
    pub reader: Db,
    pub jwt: auth::JwtKeys,
    pub limiter: ratelimit::Limiter,
    pub stats: stats::Stats,
    /// (principal, idempotency key) pairs being processed right now.
    pub in_flight: Mutex<HashSet<(String, String)>>,
    /// Active IP blocks, reloaded whenever an admin changes them.
    pub blocks: RwLock<Vec<admin::Block>>,
    /// An IP block changed in a transaction: reload `blocks` once it has committed.
    pub blocks_changed: std::sync::atomic::AtomicBool,
    /// Failed uses of the admin API by address.
    pub admin_failures: admin::AdminFailures,
    /// Bounds concurrent password hashing.
    pub hashing: auth::HashGate,
    /// Poked after every committed write: the console's alert streams look for changes.
    pub alerts_changed: tokio::sync::Notify,
    /// Machine-minutes were stored in the transaction being committed…
    pub minutes_stored: std::sync::atomic::AtomicBool,
    /// …and poked once it has: the console's fleet streams look for them.
    pub fleet_changed: tokio::sync::Notify,
    /// Who was alerted about hitting a rate limit lately (the `request_burst` rule).
    pub bursts: security::burst::BurstGate,
    /// Parsed questions by exam id (exams do not change while the server runs).
    pub questions: Mutex<HashMap<String, Arc<Vec<api::Question>>>>,
}

impl AppState {
    /// Opens the database, migrates it, loads or creates the signing key, seeds demo data.
    pub fn open(config: Config) -> anyhow::Result<Self> {
        if let Some(token) = &config.admin_token {
            anyhow::ensure!(
                token.chars().count() >= admin::MIN_ADMIN_TOKEN_LEN,
                "the admin token has {} characters; at least {} are required \
                 (make one with `openssl rand -hex 16`)",
                token.chars().count(),
                admin::MIN_ADMIN_TOKEN_LEN
            );
        }
        if let Some(key) = &config.jwt_key {
            anyhow::ensure!(
                key.len() >= 32,
                "the token signing key has {} bytes; at least 32 are required",
                key.len()
            );
        }
        config.reports.check()?;
        let db = Db::open(&config.db_path)?;
        let reader = Db::open_reader(&config.db_path)?;
        let jwt = match &config.jwt_key {
            Some(key) => auth::JwtKeys::from_secret(key),
            None => auth::JwtKeys::load_or_create(&db)?,
        };
        if config.demo {
            demo::seed(&db, config.demo_opens_in_s)?;
        }
        idempotency::purge_expired(&db)?;
        fleet::prune(&db.lock(), now().timestamp_millis(), None)?;
        let blocks = RwLock::new(admin::load_blocks(&db)?);
        Ok(Self {
            admin_failures: admin::AdminFailures::new(config.admin_lockout_failures),
            hashing: auth::HashGate::new(config.hash_concurrency, config.hash_queue),
            blocks,
            blocks_changed: std::sync::atomic::AtomicBool::new(false),
            questions: Mutex::new(HashMap::new()),
            alerts_changed: tokio::sync::Notify::new(),
            minutes_stored: std::sync::atomic::AtomicBool::new(false),
            fleet_changed: tokio::sync::Notify::new(),
            bursts: security::burst::BurstGate::default(),
            config,
            db,
            reader,
            jwt,
            limiter: ratelimit::Limiter::default(),
            stats: stats::Stats::default(),
            in_flight: Mutex::new(HashSet::new()),
        })
    }
}

/// A server bound to its address, not yet serving.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Opens the state and binds `addr` (port 0 picks a free port: see [`Server::local_addr`]).
    pub async fn bind(addr: SocketAddr, config: Config) -> anyhow::Result<Self> {
        let state = Arc::new(AppState::open(config)?);
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
            state,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then finishes the requests in progress.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The report schedule stops when shutdown comes (or serving ends: `stop` dropped).
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let schedule = reports::schedule::start(self.state.clone(), stopping);
        let app = http::router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop.send(true);
            })
            .await;
        if let Some(schedule) = schedule {
            schedule.join().await;
        }
        served
    }
}

impl Server {
    /// Binds `addr` and serves in the background on the current Tokio runtime (tests,
    /// benchmarks, tools). [`Running::stop`], or dropping the handle, stops it.
    pub async fn spawn(addr: SocketAddr, config: Config) -> anyhow::Result<Running> {
        let server = Self::bind(addr, config).await?;
        let addr = server.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            if let Err(error) = server
                .serve(async move {
                    let _ = stopped.await;
                })
                .await
            {
                tracing::error!(%error, "the server stopped with an error");
            }
        });
        Ok(Running {
            addr,
            stop: Some(stop),
            done: Some(done),
        })
    }
}

/// A server serving in the background (see [`Server::spawn`]).
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// `http://ADDR/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops serving and waits until it has (the port is free again; the database stays).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Now, as the server's clock says.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// RFC 3339 UTC with milliseconds: sortable as text.
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
