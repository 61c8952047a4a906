//! The updater's steps, with the real download and install behind [`Source`] (the shell
//! implements it with `tauri-plugin-updater`): when to check, what to do with what was
//! found, when to install — asked of [`gate::decide`] every time — and the status everybody
//! reads ([`super::status`]). Kept here, not in the shell, so every path is tested with a
//! fake source.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::facts::Facts;
use super::gate::{self, Decision, GatePolicy, Installability, Moment, Situation};
use super::status::{self, Phase, UpdateStatus};

/// What the update server offered and the policy accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub version: String,
    pub notes: Option<String>,
}

/// Why a step failed; the next check tries again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("the update server cannot be reached: {0}")]
    Unreachable(String),
    #[error("the update's signature does not match this app's key: {0}")]
    BadSignature(String),
    #[error("the update server's answer cannot be used: {0}")]
    Malformed(String),
    #[error("the update cannot be installed: {0}")]
    Install(String),
    #[error("this build has no key to check updates with")]
    NoKey,
}

impl UpdateError {
    /// A stable reason code (diagnostics, the doctor).
    pub fn code(&self) -> &'static str {
        match self {
            UpdateError::Unreachable(_) => "update.unreachable",
            UpdateError::BadSignature(_) => "update.bad_signature",
            UpdateError::Malformed(_) => "update.malformed",
            UpdateError::Install(_) => "update.install_failed",
            UpdateError::NoKey => "update.no_key",
        }
    }
}

/// The update server and the installer.
pub trait Source: Send + Sync + 'static {
    /// Whether this install can replace itself (see [`Installability`]).
    fn installability(&self) -> Installability;
    /// Asks the update server; `Some` only for a version the policy accepts.
    fn check(&self) -> impl Future<Output = Result<Option<Found>, UpdateError>> + Send;
    /// Downloads what `check` found and verifies its signature; `progress(received, total)`.
    fn download(
        &self,
        progress: Box<dyn FnMut(u64, Option<u64>) + Send>,
    ) -> impl Future<Output = Result<Vec<u8>, UpdateError>> + Send;
    /// Installs verified bytes (blocking: a package manager may run).
    fn install(&self, bytes: &[u8]) -> Result<(), UpdateError>;
}

/// `update.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Check, download, install when the gate says so.
    #[default]
    Auto,
    /// Check and report only.
    Check,
    /// No check: IT's own tool updates this computer.
    Off,
}

/// IT's policy for the updater (from `[update]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub mode: Mode,
    pub check_every: Duration,
    pub gate: GatePolicy,
    /// IT's freeze windows (`update.freeze`).
    pub freeze: Vec<crate::config::FreezeWindow>,
    pub channel: String,
    pub pin: Option<String>,
    /// The version running (the app's own, as the updater compares it).
    pub current: String,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            mode: Mode::Auto,
            check_every: Duration::from_secs(4 * 3600),
            gate: GatePolicy::default(),
            freeze: Vec::new(),
            channel: "stable".into(),
            pin: None,
            current: crate::VERSION.into(),
        }
    }
}

/// After a failed check, the next one comes this soon (or at the normal interval if shorter).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(15 * 60);

/// What a step did that the shell must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Installed: at an idle moment or a launch the shell restarts the app; at a quit it
    /// simply goes on quitting.
    Installed {
        version: String,
    },
}

struct Inner {
    status: UpdateStatus,
    /// When the next check is due (ms since the epoch); `None`: at the next step.
    next_check_ms: Option<i64>,
    /// Verified bytes of the downloaded version.
    downloaded: Option<(String, Arc<Vec<u8>>)>,
    /// The version `status.waiting_since_ms` is about (kept across restarts).
    waiting_version: Option<String>,
}

/// The updater: call [`Updater::step`] at launch, then every minute or so while the app
/// runs, and once more at quit.
pub struct Updater<S: Source> {
    source: Arc<S>,
    plan: Plan,
    data_dir: PathBuf,
    inner: Mutex<Inner>,
    on_change: Box<dyn Fn(&UpdateStatus) + Send + Sync>,
    /// Wakes the loop that calls [`Updater::step`] ([`Updater::check_soon`]).
    wake: tokio::sync::Notify,
}

impl<S: Source> Updater<S> {
    /// Picks up the saved status: an update that was waiting keeps its waiting time (the
    /// deadline counts from when it was first downloaded, across restarts).
    pub fn new(
        source: S,
        plan: Plan,
        data_dir: PathBuf,
        on_change: Box<dyn Fn(&UpdateStatus) + Send + Sync>,
    ) -> Self {
        let mut status = UpdateStatus::new(&plan.current, &plan.channel, plan.pin.as_deref());
        let mut waiting_version = None;
        if let Some(saved) = status::load(&data_dir) {
            // Only a status of this very version means anything (an update may just have
            // been installed).
            if saved.current == status.current {
                status.last_check_ms = saved.last_check_ms;
                status.waiting_since_ms = saved.waiting_since_ms;
                if let Phase::Deferred { version, .. } = &saved.phase {
                    waiting_version = Some(version.clone());
                    status.phase = saved.phase.clone();
                }
            }
        }
        if plan.mode == Mode::Off {
            status.phase = Phase::Off;
        }
        Self {
            source: Arc::new(source),
            plan,
            data_dir,
            inner: Mutex::new(Inner {
                status,
                next_check_ms: None,
                downloaded: None,
                waiting_version,
            }),
            on_change,
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn status(&self) -> UpdateStatus {
        self.lock().status.clone()
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, change: impl FnOnce(&mut UpdateStatus)) {
        let status = {
            let mut inner = self.lock();
            change(&mut inner.status);
            inner.status.clone()
        };
        if let Err(error) = status::save(&self.data_dir, &status) {
            tracing::warn!(%error, "the update status cannot be saved");
        }
        (self.on_change)(&status);
    }

    fn frozen(&self, now_ms: i64) -> bool {
        self.plan.freeze.iter().any(|w| w.contains(now_ms))
    }

    /// Makes the next step check the update server whatever the interval (the status
    /// window's "Check now"), and wakes the loop for it.
    pub fn check_soon(&self) {
        {
            let mut inner = self.lock();
            if inner.downloaded.is_none() {
                inner.next_check_ms = None;
            }
        }
        self.wake.notify_one();
    }

    /// Resolves after `every`, or sooner when [`Updater::check_soon`] is called.
    pub async fn wait(&self, every: Duration) {
        let _ = tokio::time::timeout(every, self.wake.notified()).await;
    }

    /// One step at `moment`, with the database's `facts` at `now_ms`.
    pub async fn step(&self, moment: Moment, facts: Facts, now_ms: i64) -> Step {
        if self.plan.mode == Mode::Off {
            if self.status().phase != Phase::Off {
                self.set(|s| s.phase = Phase::Off);
            }
            return Step::Nothing;
        }
        let (have, due) = {
            let inner = self.lock();
            (
                inner.downloaded.is_some(),
                inner.next_check_ms.is_none_or(|at| now_ms >= at),
            )
        };
        // Checks and downloads go on in the background (they never touch the save path:
        // the queue bench runs during one), never at a quit.
        if !have && due && moment != Moment::Quit {
            self.check_and_fetch(now_ms).await;
        }
        let Some((version, bytes)) = self.lock().downloaded.clone() else {
            return Step::Nothing;
        };
        let waiting_since = self.status().waiting_since_ms.unwrap_or(now_ms as f64);
        let situation = Situation {
            moment,
            installability: self.source.installability(),
            attempt_open: facts.attempt_open,
            work_waiting: facts.work_waiting,
            next_exam_in: facts.next_exam_in,
            frozen: self.frozen(now_ms),
            deferred_for: Duration::from_millis((now_ms as f64 - waiting_since).max(0.0) as u64),
            signed_in: facts.signed_in,
        };
        match gate::decide(&situation, &self.plan.gate) {
            Decision::Install => {
                tracing::info!(version = %version, ?moment, "installing the update");
                self.set(|s| {
                    s.phase = Phase::Installing {
                        version: version.clone(),
                    }
                });
                let source = self.source.clone();
                let installed = tokio::task::spawn_blocking(move || source.install(&bytes))
                    .await
                    .unwrap_or_else(|e| Err(UpdateError::Install(e.to_string())));
                self.lock().downloaded = None;
                match installed {
                    Ok(()) => {
                        tracing::info!(version = %version, "update installed");
                        Step::Installed { version }
                    }
                    Err(error) => {
                        tracing::error!(%error, version = %version, "the update could not be installed");
                        self.failed(&error, now_ms);
                        Step::Nothing
                    }
                }
            }
            Decision::Defer(wait) => {
                let phase = Phase::Deferred {
                    version: version.clone(),
                    wait,
                };
                if self.status().phase != phase {
                    tracing::info!(version = %version, ?wait, "the update waits");
                    self.set(|s| s.phase = phase);
                }
                Step::Nothing
            }
            Decision::CannotApply { installability } => {
                self.set(|s| {
                    s.phase = Phase::CannotApply {
                        version: version.clone(),
                        installability,
                    }
                });
                Step::Nothing
            }
        }
    }

    fn failed(&self, error: &UpdateError, now_ms: i64) {
        // A build without a key stays without one until it is replaced: no retry.
        let next = match error {
            UpdateError::NoKey => i64::MAX,
            _ => now_ms + self.plan.check_every.min(RETRY_AFTER_FAILURE).as_millis() as i64,
        };
        self.lock().next_check_ms = Some(next);
        self.set(|s| {
            s.phase = Phase::Failed {
                code: error.code().into(),
                message: error.to_string(),
            }
        });
    }

    async fn check_and_fetch(&self, now_ms: i64) {
        self.set(|s| s.phase = Phase::Checking);
        let found = match self.source.check().await {
            Ok(found) => found,
            Err(UpdateError::NoKey) => {
                tracing::info!("this build trusts no update key: it does not update itself");
                self.failed(&UpdateError::NoKey, now_ms);
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "update check failed");
                self.failed(&error, now_ms);
                return;
            }
        };
        self.lock().next_check_ms = Some(now_ms + self.plan.check_every.as_millis() as i64);
        let Some(found) = found else {
            self.set(|s| {
                s.phase = Phase::UpToDate;
                s.last_check_ms = Some(now_ms as f64);
                s.waiting_since_ms = None;
            });
            return;
        };
        tracing::info!(version = %found.version, "an update is available");
        if self.plan.mode == Mode::Check {
            self.set(|s| {
                s.phase = Phase::Available {
                    version: found.version.clone(),
                };
                s.last_check_ms = Some(now_ms as f64);
            });
            return;
        }
        let installability = self.source.installability();
        if installability != Installability::Yes {
            // Not downloaded: IT's tool installs it; the app only says so.
            self.set(|s| {
                s.phase = Phase::CannotApply {
                    version: found.version.clone(),
                    installability,
                };
                s.last_check_ms = Some(now_ms as f64);
            });
            return;
        }
        self.set(|s| {
            s.last_check_ms = Some(now_ms as f64);
            s.phase = Phase::Downloading {
                version: found.version.clone(),
                received_kb: 0,
                total_kb: None,
            };
        });
        let progress = self.progress(found.version.clone());
        match self.source.download(progress).await {
            Ok(bytes) => {
                tracing::info!(version = %found.version, bytes = bytes.len(), "update downloaded and its signature verified");
                let mut inner = self.lock();
                inner.downloaded = Some((found.version.clone(), Arc::new(bytes)));
                let same = inner.waiting_version.as_deref() == Some(found.version.as_str());
                if !same || inner.status.waiting_since_ms.is_none() {
                    inner.status.waiting_since_ms = Some(now_ms as f64);
                    inner.waiting_version = Some(found.version.clone());
                }
            }
            Err(error) => {
                tracing::warn!(%error, version = %found.version, "update download failed");
                self.failed(&error, now_ms);
            }
        }
    }

    /// Progress into the status, saved at most every tenth of the download.
    fn progress(&self, version: String) -> Box<dyn FnMut(u64, Option<u64>) + Send> {
        let data_dir = self.data_dir.clone();
        let base = self.status();
        let mut received: u64 = 0;
        let mut shown_tenth = 0;
        Box::new(move |chunk, total| {
            received += chunk;
            let tenth = total.map_or(0, |t| (received * 10) / t.max(1));
            if tenth > shown_tenth {
                shown_tenth = tenth;
                let mut status = base.clone();
                status.phase = Phase::Downloading {
                    version: version.clone(),
                    received_kb: u32::try_from(received / 1024).unwrap_or(u32::MAX),
                    total_kb: total.map(|t| u32::try_from(t / 1024).unwrap_or(u32::MAX)),
                };
                let _ = status::save(&data_dir, &status);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::gate::Wait;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Default)]
    struct Fake {
        offer: Mutex<Option<&'static str>>,
        bad_signature: bool,
        installability: Option<Installability>,
        checks: AtomicU32,
        downloads: AtomicU32,
        installed: Mutex<Vec<Vec<u8>>>,
    }

    impl Source for Arc<Fake> {
        fn installability(&self) -> Installability {
            self.installability.unwrap_or(Installability::Yes)
        }
        async fn check(&self) -> Result<Option<Found>, UpdateError> {
            self.checks.fetch_add(1, Ordering::SeqCst);
            Ok(self.offer.lock().unwrap().map(|v| Found {
                version: v.into(),
                notes: None,
            }))
        }
        async fn download(
            &self,
            mut progress: Box<dyn FnMut(u64, Option<u64>) + Send>,
        ) -> Result<Vec<u8>, UpdateError> {
            self.downloads.fetch_add(1, Ordering::SeqCst);
            progress(3, Some(6));
            progress(3, Some(6));
            if self.bad_signature {
                return Err(UpdateError::BadSignature("signed by another key".into()));
            }
            Ok(b"new app".to_vec())
        }
        fn install(&self, bytes: &[u8]) -> Result<(), UpdateError> {
            self.installed.lock().unwrap().push(bytes.to_vec());
            Ok(())
        }
    }

    const MIN: i64 = 60_000;
    const T0: i64 = 1_800_000_000_000;

    fn free() -> Facts {
        Facts::default()
    }

    fn updater(fake: &Arc<Fake>, plan: Plan, dir: &std::path::Path) -> Updater<Arc<Fake>> {
        Updater::new(fake.clone(), plan, dir.to_path_buf(), Box::new(|_| {}))
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn nothing_new_then_checked_again_only_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake::default());
        let u = updater(&fake, Plan::default(), dir.path());
        rt().block_on(async {
            assert_eq!(u.step(Moment::Launch, free(), T0).await, Step::Nothing);
            assert_eq!(u.status().phase, Phase::UpToDate);
            u.step(Moment::Idle, free(), T0 + 60 * MIN).await;
            assert_eq!(fake.checks.load(Ordering::SeqCst), 1);
            u.step(Moment::Idle, free(), T0 + 4 * 60 * MIN).await;
            assert_eq!(fake.checks.load(Ordering::SeqCst), 2);
        });
        assert_eq!(status::load(dir.path()).unwrap().phase, Phase::UpToDate);
    }

    #[test]
    fn deferred_while_an_attempt_is_open_and_work_waits_then_installed_after_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake::default());
        *fake.offer.lock().unwrap() = Some("0.2.0");
        let u = updater(&fake, Plan::default(), dir.path());
        let busy = Facts {
            attempt_open: true,
            work_waiting: 4,
            next_exam_in: Some(Duration::ZERO),
            signed_in: true,
        };
        rt().block_on(async {
            // Found and downloaded during an exam, but not installed.
            assert_eq!(u.step(Moment::Launch, busy, T0).await, Step::Nothing);
            assert_eq!(fake.downloads.load(Ordering::SeqCst), 1);
            assert_eq!(
                u.status().phase,
                Phase::Deferred {
                    version: "0.2.0".into(),
                    wait: Wait::AttemptOpen
                }
            );
            // The exam is over, its answers still on their way.
            let after_exam = Facts {
                attempt_open: false,
                work_waiting: 4,
                next_exam_in: None,
                signed_in: true,
            };
            u.step(Moment::Idle, after_exam, T0 + MIN).await;
            assert_eq!(fake.downloads.load(Ordering::SeqCst), 1);
            assert_eq!(
                u.status().phase,
                Phase::Deferred {
                    version: "0.2.0".into(),
                    wait: Wait::WorkWaiting { items: 4 }
                }
            );
            u.step(Moment::Idle, busy, T0 + 2 * MIN).await;
            assert_eq!(
                u.status().phase,
                Phase::Deferred {
                    version: "0.2.0".into(),
                    wait: Wait::AttemptOpen
                }
            );
            assert!(fake.installed.lock().unwrap().is_empty());
            // Delivered: installed, once.
            assert_eq!(
                u.step(Moment::Idle, free(), T0 + 3 * MIN).await,
                Step::Installed {
                    version: "0.2.0".into()
                }
            );
            assert_eq!(*fake.installed.lock().unwrap(), vec![b"new app".to_vec()]);
            assert_eq!(fake.downloads.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn a_wrongly_signed_update_is_refused_and_retried_later() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake {
            bad_signature: true,
            ..Fake::default()
        });
        *fake.offer.lock().unwrap() = Some("0.2.0");
        let u = updater(&fake, Plan::default(), dir.path());
        rt().block_on(async {
            assert_eq!(u.step(Moment::Idle, free(), T0).await, Step::Nothing);
            assert!(matches!(
                u.status().phase,
                Phase::Failed { ref code, .. } if code == "update.bad_signature"
            ));
            u.step(Moment::Idle, free(), T0 + 5 * MIN).await;
            assert_eq!(fake.checks.load(Ordering::SeqCst), 1);
            u.step(Moment::Idle, free(), T0 + 15 * MIN).await;
            assert_eq!(fake.checks.load(Ordering::SeqCst), 2);
        });
        assert!(fake.installed.lock().unwrap().is_empty());
    }

    #[test]
    fn check_only_needs_elevation_and_off_never_download() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake::default());
        *fake.offer.lock().unwrap() = Some("0.2.0");
        let check_only = Plan {
            mode: Mode::Check,
            ..Plan::default()
        };
        let u = updater(&fake, check_only, dir.path());
        rt().block_on(u.step(Moment::Idle, free(), T0));
        assert_eq!(
            u.status().phase,
            Phase::Available {
                version: "0.2.0".into()
            }
        );

        let locked = Arc::new(Fake {
            installability: Some(Installability::NeedsElevation),
            ..Fake::default()
        });
        *locked.offer.lock().unwrap() = Some("0.2.0");
        let u = updater(&locked, Plan::default(), dir.path());
        rt().block_on(u.step(Moment::Idle, free(), T0));
        assert_eq!(
            u.status().phase,
            Phase::CannotApply {
                version: "0.2.0".into(),
                installability: Installability::NeedsElevation
            }
        );

        let off = Plan {
            mode: Mode::Off,
            ..Plan::default()
        };
        let u = updater(&fake, off, dir.path());
        rt().block_on(u.step(Moment::Launch, free(), T0));
        assert_eq!(u.status().phase, Phase::Off);
        assert_eq!(fake.downloads.load(Ordering::SeqCst), 0);
        assert_eq!(locked.downloads.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_deadline_counts_across_restarts_and_installs_at_quit_never_in_a_freeze() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake::default());
        *fake.offer.lock().unwrap() = Some("0.2.0");
        let waiting = Facts {
            work_waiting: 2,
            ..Facts::default()
        };
        let hour = 60 * MIN;
        {
            let u = updater(&fake, Plan::default(), dir.path());
            rt().block_on(u.step(Moment::Idle, waiting, T0));
        }
        // Restarted 80 h later (the default deadline is 72 h): the wait is remembered.
        let frozen_plan = Plan {
            freeze: vec![crate::config::FreezeWindow {
                from_ms: T0 + 79 * hour,
                to_ms: T0 + 81 * hour,
            }],
            ..Plan::default()
        };
        let u = updater(&fake, frozen_plan, dir.path());
        rt().block_on(async {
            assert_eq!(
                u.step(Moment::Idle, waiting, T0 + 80 * hour).await,
                Step::Nothing
            );
            assert_eq!(
                u.status().phase,
                Phase::Deferred {
                    version: "0.2.0".into(),
                    wait: Wait::Frozen
                }
            );
            // Past the freeze, idle with work waiting: still not while somebody works here.
            u.step(Moment::Idle, waiting, T0 + 82 * hour).await;
            assert_eq!(
                u.status().phase,
                Phase::Deferred {
                    version: "0.2.0".into(),
                    wait: Wait::WorkWaiting { items: 2 }
                }
            );
            // At quit, past the deadline: the queue survives the update.
            assert_eq!(
                u.step(Moment::Quit, waiting, T0 + 82 * hour + MIN).await,
                Step::Installed {
                    version: "0.2.0".into()
                }
            );
        });
    }
}
