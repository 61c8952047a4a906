//! The updater in the shell: `tauri-plugin-updater` (minisign-signed releases) behind the
//! core's [`Source`], driven by the core's [`Updater`] — which decides when to check, and
//! asks the gate before every install, so an update never lands during an exam.
//!
//! Only the plugin calls and the platform's facts (which kind of install this is, whether
//! this process may replace it) live here.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exam_core::config::Settings;
use exam_core::update::gate::{Installability, Moment};
use exam_core::update::status::UpdateStatus;
use exam_core::update::worker::{Found, Mode, Plan, Source, Step, UpdateError, Updater};
use exam_core::update::VersionPolicy;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_updater::UpdaterExt;
use url::Url;

use crate::state::AppState;

/// How often the gate is asked again while an update waits (and checks come due).
pub const STEP_EVERY: Duration = Duration::from_secs(60);
/// The update server's answer and each download chunk must come within this.
const TIMEOUT: Duration = Duration::from_secs(120);
/// At quit, an install waits at most this long (a package manager may be slow); the app
/// quits anyway after it.
pub const QUIT_WAIT: Duration = Duration::from_secs(120);

/// Debug builds only: the tests' throw-away public key, and a stand-in for the installed
/// file (an AppImage) so the real plugin can install into a temporary folder.
const ENV_PUBKEY: &str = "EXAM_DESKTOP_UPDATE_PUBKEY";
const ENV_EXECUTABLE: &str = "EXAM_DESKTOP_UPDATE_EXECUTABLE";

pub type AppUpdater<R> = Updater<PluginSource<R>>;

/// The plugin, as the core's source of updates.
pub struct PluginSource<R: Runtime> {
    app: AppHandle<R>,
    endpoints: Vec<Url>,
    pubkey: String,
    policy: VersionPolicy,
    /// The file an AppImage-style install replaces (tests); `None`: the plugin's own choice.
    executable: Option<PathBuf>,
    found: Mutex<Option<tauri_plugin_updater::Update>>,
}

fn map_error(error: tauri_plugin_updater::Error) -> UpdateError {
    use tauri_plugin_updater::Error as E;
    match error {
        E::Minisign(_) | E::Base64(_) | E::SignatureUtf8(_) => {
            UpdateError::BadSignature(error.to_string())
        }
        E::Reqwest(_) | E::Network(_) => UpdateError::Unreachable(error.to_string()),
        E::Io(_)
        | E::TempDirNotOnSameMountPoint
        | E::BinaryNotFoundInArchive
        | E::TempDirNotFound
        | E::AuthenticationFailed
        | E::DebInstallFailed
        | E::PackageInstallFailed
        | E::InvalidUpdaterFormat => UpdateError::Install(error.to_string()),
        other => UpdateError::Malformed(other.to_string()),
    }
}

impl<R: Runtime> Source for PluginSource<R> {
    fn installability(&self) -> Installability {
        installability(self.executable.as_deref())
    }

    async fn check(&self) -> Result<Option<Found>, UpdateError> {
        if self.pubkey.trim().is_empty() {
            return Err(UpdateError::NoKey);
        }
        let policy = self.policy.clone();
        let mut builder = self
            .app
            .updater_builder()
            .endpoints(self.endpoints.clone())
            .map_err(map_error)?
            .pubkey(self.pubkey.clone())
            .timeout(TIMEOUT)
            .version_comparator(move |current, release| policy.accepts(&current, &release.version));
        if let Some(path) = &self.executable {
            builder = builder.executable_path(path);
        }
        let updater = builder.build().map_err(map_error)?;
        match updater.check().await.map_err(map_error)? {
            Some(update) => {
                let found = Found {
                    version: update.version.clone(),
                    notes: update.body.clone(),
                };
                *self.found.lock().unwrap_or_else(|p| p.into_inner()) = Some(update);
                Ok(Some(found))
            }
            None => Ok(None),
        }
    }

    async fn download(
        &self,
        mut progress: Box<dyn FnMut(u64, Option<u64>) + Send>,
    ) -> Result<Vec<u8>, UpdateError> {
        let update = self
            .found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| UpdateError::Malformed("nothing was found to download".into()))?;
        // The plugin verifies the minisign signature against the key before returning.
        update
            .download(|chunk, total| progress(chunk as u64, total), || {})
            .await
            .map_err(map_error)
    }

    fn install(&self, bytes: &[u8]) -> Result<(), UpdateError> {
        let update = self
            .found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| UpdateError::Install("nothing was downloaded".into()))?;
        update.install(bytes).map_err(map_error)
    }
}

/// Whether this install can replace itself: a kind the updater knows, in a place this
/// process may write. A per-machine install (a `.deb` in `/usr/bin`, an MSI in Program Files)
/// run by a student cannot — the app reports the update and IT's tool installs it.
fn installability(executable: Option<&std::path::Path>) -> Installability {
    use tauri::utils::config::BundleType;
    let bundle = tauri::utils::platform::bundle_type();
    let target = match (executable, bundle) {
        (Some(path), _) => path.to_path_buf(),
        (None, None) => return Installability::Unsupported,
        (None, Some(BundleType::AppImage)) => match std::env::var_os("APPIMAGE") {
            Some(path) => PathBuf::from(path),
            None => return Installability::Unsupported,
        },
        (None, Some(_)) => match tauri::utils::platform::current_exe() {
            Ok(path) => path,
            Err(_) => return Installability::Unsupported,
        },
    };
    let Some(dir) = target.parent() else {
        return Installability::Unsupported;
    };
    if writable(dir) {
        Installability::Yes
    } else {
        Installability::NeedsElevation
    }
}

/// Whether a file can be created in `dir` (the honest test: permissions, ACLs, read-only
/// mounts and elevation all answer through it).
fn writable(dir: &std::path::Path) -> bool {
    let probe = dir.join(format!(".exam-desktop-update-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

/// The update server's addresses: IT's, or the Exam Bank server's own `/updates/`. The
/// channel and pin travel as query parameters; the other placeholders are the plugin's.
pub fn endpoints(settings: &Settings) -> Vec<Url> {
    let mut update = settings.update.clone();
    if update.endpoints.is_empty() {
        update.endpoints = vec![format!(
            "{}updates/{{{{target}}}}/{{{{arch}}}}/{{{{current_version}}}}?channel={{{{channel}}}}&pin={{{{pin}}}}&bundle={{{{bundle_type}}}}",
            settings.server_url
        )];
    }
    update
        .filled_endpoints()
        .iter()
        .filter_map(|endpoint| match Url::parse(endpoint) {
            Ok(url) => Some(url),
            Err(error) => {
                tracing::error!(%error, %endpoint, "an update endpoint is not a URL");
                None
            }
        })
        .collect()
}

/// IT's `[update]` as the core's plan, for the app at version `current`.
pub fn plan(settings: &Settings, current: String) -> Plan {
    let update = &settings.update;
    Plan {
        mode: match update.mode {
            exam_core::config::UpdateMode::Auto => Mode::Auto,
            exam_core::config::UpdateMode::Check => Mode::Check,
            exam_core::config::UpdateMode::Off => Mode::Off,
        },
        check_every: Duration::from_secs(u64::from(update.check_every_min) * 60),
        gate: exam_core::update::gate::GatePolicy {
            quiet_before_exam: Duration::from_secs(u64::from(update.quiet_before_exam_min) * 60),
            deadline: Duration::from_secs(u64::from(update.deadline_h) * 3600),
        },
        freeze: update.freeze.clone(),
        channel: update.channel.clone(),
        pin: update.pin.clone(),
        current,
    }
}

/// The release key this build trusts (`plugins.updater.pubkey` of tauri.conf.json, set by
/// `make bundle`); debug builds may take the tests' throw-away key from the environment.
fn pubkey<R: Runtime>(app: &AppHandle<R>) -> String {
    if cfg!(debug_assertions) {
        if let Ok(key) = std::env::var(ENV_PUBKEY) {
            return key;
        }
    }
    app.config()
        .plugins
        .0
        .get("updater")
        .and_then(|u| u.get("pubkey"))
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_string()
}

/// Makes the updater of this app.
pub fn make<R: Runtime>(app: &AppHandle<R>, settings: &Settings) -> Arc<AppUpdater<R>> {
    let executable = if cfg!(debug_assertions) {
        std::env::var_os(ENV_EXECUTABLE).map(PathBuf::from)
    } else {
        None
    };
    let source = PluginSource {
        app: app.clone(),
        endpoints: endpoints(settings),
        pubkey: pubkey(app),
        policy: VersionPolicy {
            pin: settings.update.pin.clone(),
            allow_downgrade: settings.update.allow_downgrade,
        },
        executable,
        found: Mutex::new(None),
    };
    Arc::new(Updater::new(
        source,
        plan(settings, app.package_info().version.to_string()),
        settings.data_dir.clone(),
        Box::new(|status: &UpdateStatus| {
            tracing::debug!(phase = ?status.phase, "update status");
        }),
    ))
}

fn now_ms() -> i64 {
    exam_core::clock::now_ms()
}

/// Runs the updater: a step at launch, then every [`STEP_EVERY`]; an install at launch or
/// while idle restarts the app into the new version.
pub fn start<R: Runtime>(app: AppHandle<R>, updater: Arc<AppUpdater<R>>) {
    tauri::async_runtime::spawn(async move {
        let mut moment = Moment::Launch;
        loop {
            let facts = app.state::<AppState>().core.update_facts(now_ms());
            if let Step::Installed { version } = updater.step(moment, facts, now_ms()).await {
                tracing::info!(%version, "restarting into the new version");
                app.request_restart();
                return;
            }
            moment = Moment::Idle;
            updater.wait(STEP_EVERY).await;
        }
    });
}

/// The last step, as the app quits: installs a waiting update if the gate allows it now.
pub fn at_quit<R: Runtime>(core: &exam_core::app::Core, updater: &AppUpdater<R>) {
    let facts = core.update_facts(now_ms());
    let step = tauri::async_runtime::block_on(async {
        tokio::time::timeout(QUIT_WAIT, updater.step(Moment::Quit, facts, now_ms())).await
    });
    match step {
        Ok(Step::Installed { version }) => tracing::info!(%version, "update installed at quit"),
        Ok(Step::Nothing) => {}
        Err(_) => tracing::warn!("the update did not finish installing before quit"),
    }
}
