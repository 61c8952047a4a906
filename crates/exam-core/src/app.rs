//! The composition root: [`CoreBuilder`] puts the core together in one written order and
//! returns a [`Core`], whose methods are the use cases the shell calls.
//!
//! Start order (each step only after the one before):
//! 1. The event bus, the HTTP client and the token manager: no I/O.
//! 2. The session is restored from the secret store, then the token refresher starts
//!    (workers; the keychain is read off the caller's thread).
//! 3. Only if the settings have no problem (with one, nothing is sent anywhere until IT
//!    fixes it): the queue is opened (claims of a previous run are reset), the network
//!    monitor and the sync engine start, the exam service opens and its watcher starts.
//!
//! Shutdown ([`Core::shutdown`]) stops the workers in the reverse order, with one bounded
//! wait ([`crate::lifecycle`]). The shell builds the core after its single-instance check,
//! so a second launch never reaches step 1.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::auth::health::HealthReport;
use crate::auth::{AuthConfig, AuthError, AuthSnapshot, TokenManager};
use crate::bus::{CoreEvent, EventBus};
use crate::config::LoadedConfig;
use crate::exam::{ExamError, ExamService, RefusedItem};
use crate::http::HttpClient;
use crate::keychain::SecretStore;
use crate::lifecycle::{ShutdownReport, Workers};
use crate::network::{MonitorConfig, NetStatus, NetworkMonitor, NetworkView, Outage};
use crate::queue::{Limits, Queue, QueueCounts, QueueError};
use crate::secret::Secret;
use crate::store::StoreError;
use crate::sync::{SyncConfig, SyncEngine, SyncProgress, SyncStats};

/// How long [`Core::shutdown`] waits for the workers in all by default: long enough for a
/// request in flight on a slow link to be answered and recorded, short enough that closing
/// the app never hangs.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// How long [`Core::shutdown`] lets a refresh under way complete before stopping the workers:
/// a rotation cut off here is retried at the next start, which the server accepts only within
/// 60 s of it. Rarely spent at all (a refresh takes milliseconds on a working link).
pub const REFRESH_WAIT: Duration = Duration::from_secs(10);

/// Why a use case could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Exam(#[from] ExamError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The settings on this computer have a problem: nothing is sent until IT fixes it.
    #[error("the settings on this computer have a problem")]
    Settings,
    /// The queue, sync and exams could not start (the reason is in the log and here).
    #[error("the offline queue is not available: {0}")]
    Unavailable(String),
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    /// This computer's history could not be read (figures only: nothing else is affected).
    #[error(transparent)]
    History(#[from] crate::analytics::history::HistoryError),
}

/// The network as the core watches it.
#[derive(Debug, Clone)]
pub enum Network {
    /// Probed by a [`NetworkMonitor`] (the app).
    Monitor(Box<MonitorConfig>),
    /// Taken to be up, never probed (tests of other parts).
    AlwaysOnline,
}

/// Puts a [`Core`] together; the platform parts are given, everything else follows from
/// the settings.
pub struct CoreBuilder {
    config: LoadedConfig,
    secrets: Arc<dyn SecretStore>,
    http: Option<HttpClient>,
    runtime: Option<tokio::runtime::Handle>,
    auth: Option<AuthConfig>,
    network: Option<Network>,
    sync: Option<SyncConfig>,
    idle_sign_out: Option<Duration>,
    security_policy: Option<crate::security::SecurityPolicy>,
    device_checks: bool,
    bus: EventBus,
}

impl CoreBuilder {
    /// The settings as loaded, and where secrets are kept (the OS keychain in the app).
    pub fn new(config: LoadedConfig, secrets: Arc<dyn SecretStore>) -> Self {
        Self {
            config,
            secrets,
            http: None,
            runtime: None,
            auth: None,
            network: None,
            sync: None,
            idle_sign_out: None,
            security_policy: None,
            device_checks: true,
            bus: EventBus::default(),
        }
    }

    /// The HTTP client (default: one with the product's user agent).
    pub fn http(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Runs the workers on this runtime (the shell's, shared with Tauri) instead of one of
    /// the core's own.
    pub fn runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Auth timings other than the defaults for the settings' server (tests, benches).
    pub fn auth(mut self, auth: AuthConfig) -> Self {
        self.auth = Some(auth);
        self
    }

    pub fn network(mut self, network: Network) -> Self {
        self.network = Some(network);
        self
    }

    /// Sync tuning other than the settings' (tests, benches).
    pub fn sync(mut self, sync: SyncConfig) -> Self {
        self.sync = Some(sync);
        self
    }

    /// Signs out after `after` without activity instead of the settings' minutes (tests).
    pub fn idle_sign_out(mut self, after: Duration) -> Self {
        self.idle_sign_out = Some(after);
        self
    }

    /// Whether the device is checked every 2 s and before each start (on by default; off
    /// for tests whose point is elsewhere and which count what is queued).
    pub fn device_checks(mut self, on: bool) -> Self {
        self.device_checks = on;
        self
    }

    /// The device checks' policy (by default the shipped one).
    pub fn security_policy(mut self, policy: crate::security::SecurityPolicy) -> Self {
        self.security_policy = Some(policy);
        self
    }

    /// Starts every service in the written order (see the module's documentation). Fails
    /// only if no runtime can be made; a queue that cannot open leaves the core up (sign-in
    /// works, the reason is shown) with [`Core::services`] saying why.
    pub fn start(self) -> std::io::Result<Core> {
        let settings = &self.config.settings;
        let workers = match self.runtime {
            Some(handle) => Workers::on(handle),
            None => Workers::new()?,
        };
        let http = match self.http {
            Some(http) => http,
            None => HttpClient::new(&format!("ExamBankDesktop/{}", crate::VERSION))
                .map_err(std::io::Error::other)?,
        };
        // 1.
        let bus = self.bus;
        let auth_config = self
            .auth
            .unwrap_or_else(|| AuthConfig::new(settings.server_url.clone()));
        let auth = TokenManager::new(auth_config, http, self.secrets.clone(), bus.clone());
        // 2.
        let restoring = auth.clone();
        // Who is signed in is known once the restore has looked: nothing decides "this
        // student left" before that.
        let (restored, looked) = tokio::sync::watch::channel(false);
        workers.spawn("session restore", move |_stop| async move {
            match restoring.restore().await {
                Ok(true) => tracing::info!("session restored from the keychain"),
                Ok(false) => {}
                Err(error) => tracing::error!(%error, "could not read the keychain"),
            }
            restored.send_replace(true);
        });
        auth.spawn_worker(&workers);
        // 3.
        let services = if self.config.problems.is_empty() {
            let network = self.network.unwrap_or_else(|| {
                Network::Monitor(Box::new(MonitorConfig::from_settings(settings)))
            });
            let sync = self.sync.unwrap_or_else(|| SyncConfig {
                concurrency: settings.sync.concurrency as usize,
                batch_window: Duration::from_millis(u64::from(settings.sync.batch_window_ms)),
                batch_max: settings.sync.batch_max as usize,
                ..SyncConfig::default()
            });
            Services::start(
                &workers,
                settings,
                network,
                sync,
                &auth,
                &bus,
                self.secrets,
                self.security_policy.unwrap_or_else(|| {
                    crate::security::SecurityPolicy::from_settings(&settings.security)
                }),
                self.device_checks,
            )
        } else {
            Err(
                "the settings on this computer have a problem; nothing is sent until it is fixed"
                    .into(),
            )
        };
        if let Err(error) = &services {
            tracing::error!(%error, "the offline queue cannot start");
        }
        remove_old_exports(&settings.data_dir);
        let presence = Arc::new(crate::presence::Presence::default());
        if let Ok(services) = &services {
            crate::presence::spawn_idle_sign_out(
                &workers,
                presence.clone(),
                auth.clone(),
                services.exams.clone(),
                services.queue.clone(),
                self.idle_sign_out.unwrap_or(Duration::from_secs(
                    u64::from(settings.session.idle_sign_out_min) * 60,
                )),
            );
            crate::presence::spawn_departures(
                &workers,
                auth.clone(),
                services.exams.clone(),
                &bus,
                looked,
            );
        }
        Ok(Core {
            config: self.config,
            workers,
            bus,
            auth,
            services,
            presence,
        })
    }
}

/// The queue, the network monitor, the sync engine and the exams on top of them.
pub struct Services {
    pub queue: Queue,
    pub monitor: Option<Arc<NetworkMonitor>>,
    pub engine: SyncEngine,
    pub exams: ExamService,
    /// The device checks (every 2 s), and what they found.
    pub security: crate::security::SecurityMonitor,
    /// What this computer measured, over time (none when its file could not be used).
    pub history: Option<crate::analytics::History>,
    /// When this computer's insights speak up (`[analytics.insights]`).
    pub insight_thresholds: crate::analytics::insights::Thresholds,
    /// Where the readiness cards and reports gather their facts.
    pub readiness: crate::exam::readiness::gather::Sources,
}

impl Services {
    #[allow(clippy::too_many_arguments)]
    fn start(
        workers: &Workers,
        settings: &crate::config::Settings,
        network: Network,
        sync: SyncConfig,
        auth: &TokenManager,
        bus: &EventBus,
        secrets: Arc<dyn SecretStore>,
        security_policy: crate::security::SecurityPolicy,
        device_checks: bool,
    ) -> Result<Self, String> {
        let path = settings.data_dir.join(crate::store::FILE_NAME);
        let limits = Limits {
            max_entries: settings.queue.max_entries,
            max_bytes: settings.queue.max_bytes,
        };
        let queue = Queue::open(&path, limits).map_err(|e| e.to_string())?;
        // Work an earlier version kept names its student, not its server: the server is
        // the one the app is set up for (before anything is sent or shown).
        queue
            .adopt_unowned(&crate::owner::origin_of(&settings.server_url))
            .map_err(|e| e.to_string())?;
        let (monitor, view) = match network {
            Network::Monitor(config) => {
                let monitor = Arc::new(NetworkMonitor::spawn(
                    workers,
                    *config,
                    auth.http().clone(),
                    bus.clone(),
                    Some(queue.store().clone()),
                ));
                let who = auth.clone();
                monitor.note_outages_for(Arc::new(move || who.signed_in_owner()));
                let view = monitor.view();
                (Some(monitor), view)
            }
            Network::AlwaysOnline => (None, NetworkView::always_online()),
        };
        let engine = SyncEngine::spawn(
            workers,
            sync,
            queue.clone(),
            auth.clone(),
            view.clone(),
            bus.clone(),
        );
        let exams = ExamService::new(queue.clone(), auth.clone(), secrets, bus.clone())
            .map_err(|e| format!("cannot open the exams on this computer: {e}"))?;
        exams.spawn_watcher(workers);
        exams.spawn_ledger(workers);
        let security = crate::security::SecurityMonitor::new(
            security_policy,
            bus.clone(),
            auth.clone(),
            queue.clone(),
        );
        if device_checks {
            exams.set_security(security.clone());
            security.spawn(workers);
        }
        let readiness = crate::exam::readiness::gather::Sources {
            exams: exams.clone(),
            security: security.clone(),
            network: view.clone(),
            queue: queue.clone(),
            auth: auth.clone(),
            data_dir: settings.data_dir.clone(),
            lab: settings.analytics.lab.clone(),
            thresholds: (&settings.analytics.insights).into(),
        };
        // The machine's readiness goes to the server with the device checks' reports.
        if device_checks {
            crate::exam::readiness::report::spawn(workers, readiness.clone());
        }
        // The history: its own file, so a damaged or slow one never stops the app.
        let history = match crate::analytics::History::open(
            &settings.data_dir,
            crate::analytics::Recorder::default(),
        ) {
            Ok(history) => {
                auth.set_recorder(history.recorder().clone());
                exams.set_recorder(history.recorder().clone());
                crate::analytics::spawn(
                    workers,
                    history.clone(),
                    crate::analytics::Sources {
                        auth: auth.clone(),
                        engine: engine.clone(),
                        network: view,
                        queue: queue.clone(),
                        lab: settings.analytics.lab.clone(),
                        bus: bus.clone(),
                        data_dir: settings.data_dir.clone(),
                    },
                );
                Some(history)
            }
            Err(error) => {
                tracing::error!(%error, "no history is kept on this computer this time");
                None
            }
        };
        Ok(Self {
            queue,
            monitor,
            engine,
            exams,
            security,
            history,
            insight_thresholds: settings.analytics.insights,
            readiness,
        })
    }
}

/// Everything the sync panel shows.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SyncStatus {
    pub network: Option<NetStatus>,
    pub progress: SyncProgress,
    pub stats: SyncStats,
    pub queue: QueueCounts,
    /// The database was damaged at start: set aside for IT, and a new one started.
    pub damaged_database: Option<crate::store::Quarantined>,
    /// The newest outages first.
    pub outages: Vec<Outage>,
}

/// How long an export (which holds a student's answers in clear) stays on the computer.
pub const EXPORT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Removes exports older than [`EXPORT_RETENTION`] (at start and after each export).
fn remove_old_exports(data_dir: &std::path::Path) {
    match crate::files::remove_older_than(&data_dir.join("exports"), EXPORT_RETENTION) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "old exports removed"),
        Err(error) => tracing::warn!(%error, "cannot remove old exports"),
    }
}

/// The running core.
pub struct Core {
    config: LoadedConfig,
    workers: Workers,
    bus: EventBus,
    auth: TokenManager,
    services: Result<Services, String>,
    presence: Arc<crate::presence::Presence>,
}

impl Core {
    pub fn config(&self) -> &LoadedConfig {
        &self.config
    }

    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    pub fn auth(&self) -> &TokenManager {
        &self.auth
    }

    /// The runtime the core's workers run on (the shell's tasks join them there).
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    /// The queue, sync and exams, or why they could not start.
    pub fn services(&self) -> Result<&Services, CoreError> {
        self.services
            .as_ref()
            .map_err(|why| CoreError::Unavailable(why.clone()))
    }

    pub fn exams(&self) -> Result<&ExamService, CoreError> {
        Ok(&self.services()?.exams)
    }

    // Sign-in.

    pub fn auth_snapshot(&self) -> AuthSnapshot {
        self.auth.snapshot()
    }

    /// Signs in, unless the settings have a problem (then nothing is sent anywhere).
    pub async fn sign_in(
        &self,
        username: &str,
        password: Secret<String>,
    ) -> Result<AuthSnapshot, CoreError> {
        if !self.config.problems.is_empty() {
            return Err(CoreError::Settings);
        }
        // Another student's session still here (they never signed out) ends first, leaving
        // their waiting work its delivery credential: it is never sent as the new student.
        let current = self.auth.snapshot();
        if current.has_session && current.user.as_deref() != Some(username.trim()) {
            self.sign_out().await;
        }
        Ok(self.auth.sign_in(username, password).await?)
    }

    /// Signs out. With work of the student's still waiting here, their session stays in the
    /// keychain as a delivery credential (not revoked): the work is sent to their account
    /// with it as soon as the network allows, whoever uses the computer meanwhile, and the
    /// credential is removed once it is delivered. Without waiting work the session is
    /// revoked and forgotten.
    pub async fn sign_out(&self) -> AuthSnapshot {
        let queue = self.services().ok().map(|s| &s.queue);
        let snapshot = crate::presence::sign_out_keeping_work(&self.auth, queue, None).await;
        // With nothing of theirs left to do here, their key and data go now.
        if let Ok(services) = self.services() {
            let (auth, exams) = (self.auth.clone(), services.exams.clone());
            let _ = tokio::task::spawn_blocking(move || {
                crate::presence::retire_departed(&auth, &exams)
            })
            .await;
        }
        snapshot
    }

    /// The damaged database set aside at start, if any.
    pub fn damaged_database(&self) -> Option<crate::store::Quarantined> {
        self.services()
            .ok()
            .and_then(|s| s.queue.store().quarantined().cloned())
    }

    /// What the update gate needs from this computer's database and session
    /// ([`crate::update::facts`]). Without the services (a damaged database), the answer
    /// is "busy": an update waits rather than guess.
    pub fn update_facts(&self, now_ms: i64) -> crate::update::facts::Facts {
        let signed_in = self.auth.snapshot().has_session;
        match self.services() {
            Ok(services) => {
                let conn = services.queue.store().lock();
                crate::update::facts::Facts {
                    signed_in,
                    ..crate::update::facts::gather(&conn, now_ms)
                }
            }
            Err(_) => crate::update::facts::Facts {
                attempt_open: true,
                signed_in,
                ..Default::default()
            },
        }
    }

    /// The readiness card of a downloaded exam for the signed-in student: the package, the
    /// server, the disk, the clock, prohibited programs and this app's version, each line
    /// with how to fix it ([`crate::exam::readiness`]).
    pub async fn exam_readiness(
        &self,
        exam_id: &str,
    ) -> Result<crate::exam::readiness::ExamReadiness, CoreError> {
        let sources = self.services()?.readiness.clone();
        let exam_id = exam_id.to_string();
        tokio::task::spawn_blocking(move || sources.card(&exam_id))
            .await
            .map_err(|e| ExamError::Unexpected(format!("judging readiness: {e}")))?
            .map_err(CoreError::from)
    }

    /// A key or a click in a window: the student is at the computer.
    pub fn note_activity(&self) {
        self.presence.note();
    }

    /// The app is quitting. With no exam in progress here and `session.sign_out_on_quit`
    /// (on by default), the student is signed out (their waiting work still goes to their
    /// account); an exam in progress keeps its session, so the next start resumes it.
    /// Whether it signed out.
    pub async fn on_quit(&self) -> bool {
        if !self.config.settings.session.sign_out_on_quit || !self.auth.snapshot().has_session {
            return false;
        }
        if let Ok(services) = self.services() {
            if crate::presence::exam_in_progress(&services.exams) {
                return false;
            }
        }
        self.sign_out().await;
        true
    }

    pub async fn force_refresh(&self) -> Result<AuthSnapshot, CoreError> {
        Ok(self.auth.force_refresh().await?)
    }

    /// Sign-in and tokens, and whether the signed-in student's answer key is missing
    /// while answers sealed with it are here.
    pub fn health(&self) -> HealthReport {
        let mut report = self.auth.health();
        if let Some(damaged) = self.damaged_database() {
            report.add(crate::auth::health::Observation::DatabaseSetAside {
                kept_as: damaged.kept_as,
            });
        }
        if let (Ok(services), Some(owner)) = (self.services(), self.auth.signed_in_owner()) {
            let keys = services.exams.keys();
            if let Ok(None) = keys.existing(&owner) {
                match keys.sealed_count(&owner) {
                    Ok(0) => {}
                    Ok(sealed) => report.add(crate::auth::health::Observation::AnswerKeyMissing {
                        sealed: u32::try_from(sealed).unwrap_or(u32::MAX),
                    }),
                    Err(error) => tracing::warn!(%error, "cannot count sealed answers"),
                }
            }
        }
        report
    }

    // The queue and sync.

    /// This computer's dashboard over the last `range` (none when no history is kept).
    pub fn analytics_overview(
        &self,
        range: Duration,
    ) -> Result<Option<crate::analytics::Overview>, CoreError> {
        let services = self.services()?;
        let Some(history) = services.history.as_ref() else {
            return Ok(None);
        };
        let snapshot = self.auth.snapshot();
        let metrics = self.auth.metrics();
        let context = crate::analytics::Context {
            clock_offset_s: snapshot.clock_offset_s,
            access_lifetime_s: None,
            keychain_errors: metrics
                .errors
                .get("keychain")
                .copied()
                .map_or(0.0, f64::from),
            thresholds: services.insight_thresholds,
        };
        let range_ms = i64::try_from(range.as_millis()).unwrap_or(i64::MAX);
        crate::analytics::overview(history, context, range_ms, crate::clock::now_ms())
            .map(Some)
            .map_err(CoreError::from)
    }

    pub fn sync_status(&self) -> Result<SyncStatus, CoreError> {
        let services = self.services()?;
        Ok(SyncStatus {
            network: services.monitor.as_ref().map(|m| m.status()),
            progress: services.engine.progress(),
            stats: services.engine.stats(),
            // The signed-in student's; others' waiting work is only counted
            // (`progress.others_waiting`).
            queue: match self.auth.signed_in_owner() {
                Some(owner) => services.queue.counts_for(&owner)?,
                None => Default::default(),
            },
            outages: crate::network::outages_for(
                services.queue.store(),
                self.auth.signed_in_owner().as_ref(),
                5,
            )
            .map_err(|e| QueueError::from(StoreError::sqlite(services.queue.store().path(), e)))?,
            damaged_database: self.damaged_database(),
        })
    }

    /// Pauses sending; work keeps being saved on this computer.
    pub fn sync_pause(&self) -> Result<SyncStatus, CoreError> {
        self.services()?.engine.pause();
        self.sync_status()
    }

    pub fn sync_resume(&self) -> Result<SyncStatus, CoreError> {
        self.services()?.engine.resume();
        self.sync_status()
    }

    /// Sends everything now: waiting retries become due, and the network is probed at once.
    pub fn sync_now(&self) -> Result<SyncStatus, CoreError> {
        let services = self.services()?;
        if let Some(monitor) = &services.monitor {
            monitor.probe_now();
        }
        services.engine.sync_now();
        self.sync_status()
    }

    /// What the server refused, newest first, named by exam and question.
    /// The signed-in student's only; nobody signed in, none.
    pub fn dead_letters(&self) -> Result<Vec<RefusedItem>, CoreError> {
        if !self.auth.snapshot().has_session {
            return Ok(Vec::new());
        }
        Ok(self.services()?.exams.refused_items(200)?)
    }

    /// Puts a dead letter back in the queue, by hand.
    pub fn retry_dead_letter(&self, id: i64) -> Result<(), CoreError> {
        let services = self.services()?;
        services.queue.retry_dead(id)?;
        services.engine.notify();
        Ok(())
    }

    /// Writes the signed-in student's dead letters to
    /// `<data_dir>/exports/dead-letters-<time>.json`; the path.
    pub fn export_dead_letters(&self) -> Result<PathBuf, CoreError> {
        let owner = self
            .auth
            .signed_in_owner()
            .ok_or(CoreError::Auth(AuthError::NotSignedIn))?;
        let json = self.services()?.queue.export_dead_for(&owner)?;
        let dir = self.config.settings.data_dir.join("exports");
        let stamp = crate::now_rfc3339().replace(':', "-");
        let path = dir.join(format!("dead-letters-{stamp}.json"));
        // Owner-only, and gone after EXPORT_RETENTION: it holds the student's answers.
        crate::files::private_dir(&dir)
            .and_then(|()| crate::files::write_private(&path, json.as_bytes()))
            .map_err(|error| CoreError::Write {
                path: path.clone(),
                error,
            })?;
        remove_old_exports(&self.config.settings.data_dir);
        Ok(path)
    }

    // Windows.

    /// Every state a window shows, as the events that carry it: the sign-in, the network,
    /// sync progress and (for the attempt on this computer) a nudge to read it again. Sent
    /// to windows that open late or fell behind.
    pub fn snapshot_events(&self) -> Vec<CoreEvent> {
        let mut events = vec![CoreEvent::AuthChanged {
            snapshot: self.auth.snapshot(),
        }];
        if let Ok(services) = &self.services {
            if let Some(monitor) = &services.monitor {
                events.push(CoreEvent::NetworkChanged {
                    status: monitor.status(),
                });
            }
            events.push(CoreEvent::SyncProgress {
                progress: services.engine.progress(),
            });
            events.push(CoreEvent::SecurityChanged {
                security: services.security.snapshot(),
            });
            if let Ok(Some(attempt_id)) = services.exams.current_id() {
                events.push(CoreEvent::ExamChanged { attempt_id });
            }
        }
        events
    }

    // Lifecycle.

    /// Stops every worker, newest first, waiting at most `within` in all. What was saved is
    /// on disk; what was not yet sent stays queued for the next start.
    pub fn shutdown(&self, within: Duration) -> ShutdownReport {
        // A refresh under way completes first (the server's rotation and the keychain write
        // belong together; see `TokenManager::refresh`). Bounded by a token request's timeout.
        self.auth.wait_for_refreshes(REFRESH_WAIT);
        let report = self.workers.shutdown(within);
        tracing::info!(
            stopped = report.stopped.len(),
            aborted = ?report.aborted,
            "the core stopped"
        );
        report
    }
}
