//! Layered configuration, the way IT deploys it.
//!
//! Layers, lowest to highest: built-in defaults, the system-wide managed file, the
//! platform's policies (JSON files on Linux, Group Policy on Windows, managed preferences on
//! macOS: [`policy`]), the user file, environment variables, command-line flags. The managed
//! file can mark keys as `locked`; every key a policy sets is forced, the way browsers treat
//! enterprise policies. The user layers (user file, environment, command line) cannot
//! override either.
//!
//! Loading never fails and never panics: a layer that is malformed contributes nothing
//! and becomes a [`ConfigProblem`] naming the file, line and key, so the app can show the
//! problem to the student and to IT instead of crashing.
//!
//! Every key is described once, in [`SPECS`]; the reference IT reads (`docs/policies/`: the
//! key list, a JSON Schema, the Windows ADMX template, a macOS profile) is generated from it
//! by [`reference::render_all`], and a test fails when the committed copy is stale.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use url::Url;

mod effective;
mod file;
mod layers;
pub mod policy;
pub mod reference;
mod specs;

pub use effective::{effective_values, EffectiveValue};
pub use file::parse_server_url;
use layers::{absolute, Builder};
pub use policy::{managed_preference_paths, policy_dir_path, PolicyInputs};
pub use specs::{FieldSpec, KeySpec, KeyType, SPECS};

/// The server a fresh install talks to: the local reference server.
pub const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:8787/";
pub const ENV_SERVER: &str = "EXAM_DESKTOP_SERVER";
pub const ENV_DATA_DIR: &str = "EXAM_DESKTOP_DATA_DIR";
/// Replaces the path of the user file.
pub const ENV_CONFIG: &str = "EXAM_DESKTOP_CONFIG";

/// Every key a file may set, in dotted form. Also the names `locked` accepts, and the value
/// names of the Windows policies and the keys of the macOS ones. [`SPECS`] describes each.
pub const KEYS: &[&str] = &[
    "server_url",
    "data_dir",
    "log.level",
    "log.max_file_bytes",
    "log.max_files",
    "queue.max_entries",
    "queue.max_bytes",
    "sync.concurrency",
    "sync.batch_window_ms",
    "sync.batch_max",
    "network.probe_timeout_max_ms",
    "session.sign_out_on_quit",
    "session.idle_sign_out_min",
    "security.refuse_before_start",
    "security.add_programs",
    "security.remove_programs",
    "security.allow_programs",
    "security.one_display",
    "analytics.lab",
    "analytics.insights",
    "update.mode",
    "update.endpoints",
    "update.channel",
    "update.pin",
    "update.allow_downgrade",
    "update.check_every_min",
    "update.deadline_h",
    "update.quiet_before_exam_min",
    "update.freeze",
];

/// The managed file of this platform, which only an administrator can write.
pub fn managed_file_path() -> PathBuf {
    if cfg!(target_os = "windows") {
        let base = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        PathBuf::from(base).join("ExamDesktop").join("config.toml")
    } else if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/ExamDesktop/config.toml")
    } else {
        PathBuf::from("/etc/exam-desktop/config.toml")
    }
}

/// The settings the app runs with, after every layer has been applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub server_url: Url,
    pub data_dir: PathBuf,
    pub log: LogSettings,
    pub queue: QueueSettings,
    pub sync: SyncSettings,
    pub network: NetworkSettings,
    pub session: SessionSettings,
    pub security: SecuritySettings,
    pub analytics: AnalyticsSettings,
    pub update: UpdateSettings,
}

/// How this computer takes new versions of the app (`[update]`). The updater reads it; the
/// decisions themselves live in [`crate::update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSettings {
    pub mode: UpdateMode,
    /// Update server URLs (https, or http to this computer only), which may hold the
    /// updater's placeholders `{{target}}`, `{{arch}}`, `{{current_version}}`,
    /// `{{bundle_type}}` and the app's `{{channel}}` and `{{pin}}`. Empty: the updater derives
    /// one from `server_url`.
    pub endpoints: Vec<String>,
    /// Which release line this computer follows (`stable`, `beta`…).
    pub channel: String,
    /// Only versions starting with this (`1.4.`: patches of 1.4 only).
    pub pin: Option<String>,
    /// Take an older version than the installed one (a rollback): only with a pin, which says
    /// where to.
    pub allow_downgrade: bool,
    pub check_every_min: u32,
    /// Hours a downloaded update may wait before it installs at the next launch or quit.
    pub deadline_h: u32,
    /// No install this many minutes before an announced exam.
    pub quiet_before_exam_min: u32,
    /// Windows in which nothing is installed (exam season).
    pub freeze: Vec<FreezeWindow>,
}

impl Default for UpdateSettings {
    fn default() -> Self {
        Self {
            mode: UpdateMode::Auto,
            endpoints: Vec::new(),
            channel: "stable".into(),
            pin: None,
            allow_downgrade: false,
            check_every_min: 240,
            deadline_h: 72,
            quiet_before_exam_min: 120,
            freeze: Vec::new(),
        }
    }
}

impl UpdateSettings {
    /// The endpoints with `{{channel}}` and `{{pin}}` (empty without a pin) filled in; the
    /// updater plugin's own placeholders are left for it.
    pub fn filled_endpoints(&self) -> Vec<String> {
        let pin = self.pin.as_deref().unwrap_or_default();
        self.endpoints
            .iter()
            .map(|e| {
                e.replace("{{channel}}", &self.channel)
                    .replace("{{pin}}", pin)
            })
            .collect()
    }

    /// Whether `now_ms` (ms since the epoch) falls in a freeze window.
    pub fn frozen_at(&self, now_ms: i64) -> bool {
        self.freeze.iter().any(|w| w.contains(now_ms))
    }
}

/// What the updater does on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateMode {
    /// Check, download, and install when it is safe.
    #[default]
    Auto,
    /// Check and report only: IT installs.
    Check,
    /// No check at all: IT's deployment tool updates the app.
    Off,
}

impl UpdateMode {
    pub const ALL: [UpdateMode; 3] = [UpdateMode::Auto, UpdateMode::Check, UpdateMode::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Check => "check",
            Self::Off => "off",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// A time span in which no update is installed, in ms since the epoch: `from_ms` included,
/// `to_ms` not (`to_ms > from_ms` always holds for a loaded window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreezeWindow {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl FreezeWindow {
    pub fn contains(&self, now_ms: i64) -> bool {
        (self.from_ms..self.to_ms).contains(&now_ms)
    }
}

/// What the app tells the server about where it is, for the fleet's figures, and when this
/// computer's insights speak up (`[analytics.insights]`: IT may tune or lock them).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnalyticsSettings {
    /// The school's name for this computer's lab (none: the server groups by subnet).
    pub lab: Option<String>,
    pub insights: crate::analytics::insights::Thresholds,
}

/// What the device checks look for and what they do before an attempt (the shipped
/// policy, changed by IT: [`crate::security::SecurityPolicy::from_settings`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecuritySettings {
    /// Categories that stop an attempt from starting while one of their programs runs (the
    /// others warn). None: the shipped choice (remote control refuses).
    pub refuse_before_start: Option<Vec<crate::security::Category>>,
    /// Programs added to a category (file names, `.exe` optional).
    pub add_programs: std::collections::BTreeMap<crate::security::Category, Vec<String>>,
    /// Programs taken off every list.
    pub remove_programs: Vec<String>,
    /// Programs allowed whatever the lists say.
    pub allow_programs: Vec<String>,
    /// More than one display is reported (true unless IT says otherwise).
    pub one_display: Option<bool>,
}

/// When a session ends on its own on a shared lab computer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// Sign out when the app quits with no exam open (an open exam keeps its student's
    /// session, so a crash or a quit in the middle resumes it).
    pub sign_out_on_quit: bool,
    /// Sign out after this many minutes without a key or a click, outside an exam
    /// (0: never).
    pub idle_sign_out_min: u32,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            sign_out_on_quit: true,
            idle_sign_out_min: 15,
        }
    }
}

/// How the network monitor tells slow from gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkSettings {
    /// The ceiling of the probe timeout (ms): a link whose round trip is longer than this is
    /// offline; anything faster is used, shown as degraded when slow.
    pub probe_timeout_max_ms: u32,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            probe_timeout_max_ms: 8000,
        }
    }
}

/// Limits on work waiting to be sent. When full, only telemetry is evicted; answers are
/// refused with a clear "storage full" error, never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    pub max_entries: u64,
    pub max_bytes: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            max_entries: 200_000,
            max_bytes: 512 * 1024 * 1024,
        }
    }
}

/// How the sync engine sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncSettings {
    /// Requests in flight at once.
    pub concurrency: u32,
    /// How long ready requests wait for company before a batch leaves (ms).
    pub batch_window_ms: u32,
    /// Requests per batch (1 = no batching).
    pub batch_max: u32,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            concurrency: 3,
            batch_window_ms: 25,
            batch_max: 50,
        }
    }
}

impl Settings {
    /// The defaults for `server_url`, keeping data in `data_dir` (tests, tools).
    pub fn new(server_url: Url, data_dir: PathBuf) -> Self {
        Self {
            server_url,
            data_dir,
            log: LogSettings::default(),
            queue: QueueSettings::default(),
            sync: SyncSettings::default(),
            network: NetworkSettings::default(),
            session: SessionSettings::default(),
            security: SecuritySettings::default(),
            analytics: AnalyticsSettings::default(),
            update: UpdateSettings::default(),
        }
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// A `tracing` filter: `info`, `debug`, `exam_core=debug,info`…
    pub level: String,
    pub max_file_bytes: u64,
    pub max_files: u32,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
            max_file_bytes: 5 * 1024 * 1024,
            max_files: 5,
        }
    }
}

/// One layer of configuration, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Layer {
    Defaults,
    Managed,
    /// The platform's policies (one source per file or registry key); every key they set is
    /// forced.
    Policy,
    User,
    Environment,
    CommandLine,
}

impl Layer {
    /// Only what an administrator writes (and the built-in defaults) may set a locked key.
    fn may_set_locked(self) -> bool {
        matches!(self, Layer::Defaults | Layer::Managed | Layer::Policy)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum SourceStatus {
    /// Read and applied.
    Applied,
    /// Nothing there (no file, no variable, no flag).
    Absent,
    /// There but malformed: see the problems. It contributed nothing.
    Invalid,
}

/// What one layer contributed, for the diagnostics an IT admin looks at.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ConfigSource {
    pub layer: Layer,
    /// A file path, the variable names, the flags, or `built-in`.
    pub origin: String,
    pub status: SourceStatus,
    /// Keys whose effective value comes from this layer.
    pub effective: Vec<String>,
    /// Keys this layer tried to set although the managed file locks them or a policy forces
    /// them.
    pub ignored_locked: Vec<String>,
}

/// A malformed piece of configuration: what and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ConfigProblem {
    pub origin: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
            if let Some(column) = self.column {
                write!(f, ", column {column}")?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The result of loading: settings to run with, where each came from, what was wrong.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub settings: Settings,
    pub sources: Vec<ConfigSource>,
    /// Keys the user layers cannot change: those the managed file locks, then those a policy
    /// forces.
    pub locked: Vec<String>,
    pub problems: Vec<ConfigProblem>,
}

impl LoadedConfig {
    /// Settings made in code, with no file behind them and no problem (tests, tools).
    pub fn from_settings(settings: Settings) -> Self {
        Self {
            settings,
            sources: Vec::new(),
            locked: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// Everything loading reads from the outside world, so tests can supply their own.
#[derive(Debug, Clone)]
pub struct ConfigInputs {
    pub managed_file: PathBuf,
    /// The user file unless `EXAM_DESKTOP_CONFIG` names another.
    pub default_user_file: Option<PathBuf>,
    pub default_data_dir: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    /// Command-line arguments without the program name.
    pub args: Vec<String>,
    /// Relative paths from the environment or the command line are taken from here.
    pub cwd: PathBuf,
    /// Where the platform's policies are (none by default, so tests read none by accident).
    pub policies: PolicyInputs,
}

impl ConfigInputs {
    /// The real platform paths, environment and command line of this process.
    pub fn from_process() -> Self {
        let dirs = crate::project_dirs();
        let env = [ENV_SERVER, ENV_DATA_DIR, ENV_CONFIG]
            .into_iter()
            .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
            .collect();
        Self {
            managed_file: managed_file_path(),
            default_user_file: dirs.as_ref().map(|d| d.config_dir().join("config.toml")),
            // Local, never roaming: a database must not travel to a profile server at sign-out.
            default_data_dir: dirs.as_ref().map(|d| d.data_local_dir().to_path_buf()),
            env,
            args: std::env::args().skip(1).collect(),
            cwd: std::env::current_dir().unwrap_or_default(),
            policies: PolicyInputs::for_this_platform(),
        }
    }
}

/// Applies every layer in order. Never fails: problems are reported in the result.
pub fn load(inputs: &ConfigInputs) -> LoadedConfig {
    let mut builder = Builder::new(inputs);

    builder.file_layer(Layer::Managed, &inputs.managed_file);
    policy::apply(&mut builder, &inputs.policies);
    let user_file = match inputs.env.get(ENV_CONFIG).filter(|v| !v.is_empty()) {
        Some(path) => Some(absolute(&inputs.cwd, path)),
        None => inputs.default_user_file.clone(),
    };
    match user_file {
        Some(path) => builder.file_layer(Layer::User, &path),
        None => builder.absent(Layer::User, "no user configuration directory".into()),
    }
    builder.env_layer(&inputs.env, &inputs.cwd);
    builder.args_layer(&inputs.args, &inputs.cwd);
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::layers::locate;
    use super::*;

    #[test]
    fn locate_finds_line_column_and_dotted_key() {
        let text = "server_url = \"x\"\n\n[log]\n# comment\nmax_files = 0\n";
        let offset = text.find("0\n").unwrap_or(0);
        assert_eq!(
            locate(text, offset),
            (Some(5), Some(13), Some("log.max_files".into()))
        );
        assert_eq!(
            locate(text, 3),
            (Some(1), Some(4), Some("server_url".into()))
        );
    }

    #[test]
    fn server_urls_are_checked() {
        let table = [
            ("https://exams.school.example", true),
            ("http://127.0.0.1:8787", true),
            ("http://localhost:8787/", true),
            ("http://[::1]:8787/", true),
            ("http://127.0.0.2:8787/", true),
            // Plain HTTP to another computer: the lab network could read passwords.
            ("http://exams.school.example", false),
            ("http://10.0.0.5:8787/", false),
            ("http://127.0.0.1.evil.example/", false),
            ("ftp://exams.school.example", false),
            ("exams.school.example", false),
            ("https://user:pw@exams.school.example", false),
            ("", false),
        ];
        for (input, ok) in table {
            assert_eq!(parse_server_url(input).is_ok(), ok, "{input}");
        }
    }

    #[test]
    fn problem_display_names_where() {
        let p = ConfigProblem {
            origin: "/etc/exam-desktop/config.toml".into(),
            line: Some(3),
            column: Some(14),
            key: Some("server_url".into()),
            message: "bad".into(),
        };
        assert_eq!(
            p.to_string(),
            "/etc/exam-desktop/config.toml, line 3, column 14, key `server_url`: bad"
        );
    }
}
