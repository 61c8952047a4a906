//! Layered configuration, the way IT deploys it.
//!
//! Layers, lowest to highest: built-in defaults, the system-wide managed file, the user
//! file, environment variables, command-line flags. The managed file can mark keys as
//! `locked`; the user layers (user file, environment, command line) cannot override those.
//!
//! Loading never fails and never panics: a layer that is malformed contributes nothing
//! and becomes a [`ConfigProblem`] naming the file, line and key, so the app can show the
//! problem to the student and to IT instead of crashing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

/// The server a fresh install talks to: the local reference server.
pub const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:8787/";
pub const ENV_SERVER: &str = "EXAM_DESKTOP_SERVER";
pub const ENV_DATA_DIR: &str = "EXAM_DESKTOP_DATA_DIR";
/// Replaces the path of the user file.
pub const ENV_CONFIG: &str = "EXAM_DESKTOP_CONFIG";

/// Every key a file may set, in dotted form. Also the names `locked` accepts.
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

/// One layer of configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Layer {
    Defaults,
    Managed,
    User,
    Environment,
    CommandLine,
}

impl Layer {
    /// Only the built-in defaults and the managed file may set a locked key.
    fn may_set_locked(self) -> bool {
        matches!(self, Layer::Defaults | Layer::Managed)
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
    /// Keys this layer tried to set although the managed file locks them.
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
    /// Keys the managed file locks.
    pub locked: Vec<String>,
    pub problems: Vec<ConfigProblem>,
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
            default_data_dir: dirs.as_ref().map(|d| d.data_dir().to_path_buf()),
            env,
            args: std::env::args().skip(1).collect(),
            cwd: std::env::current_dir().unwrap_or_default(),
        }
    }
}

/// Applies every layer in order. Never fails: problems are reported in the result.
pub fn load(inputs: &ConfigInputs) -> LoadedConfig {
    let mut builder = Builder::new(inputs);

    builder.file_layer(Layer::Managed, &inputs.managed_file);
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

/// One layer's values, before locks are applied. Every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Partial {
    server_url: Option<ServerUrl>,
    data_dir: Option<AbsoluteDir>,
    log: Option<PartialLog>,
    queue: Option<PartialQueue>,
    sync: Option<PartialSync>,
    network: Option<PartialNetwork>,
    locked: Option<toml::Spanned<Vec<KnownKey>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialQueue {
    max_entries: Option<Ranged<100, 100_000_000>>,
    max_bytes: Option<Ranged<1_048_576, 68_719_476_736>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialSync {
    concurrency: Option<Ranged<1, 16>>,
    batch_window_ms: Option<Ranged<0, 1000>>,
    batch_max: Option<Ranged<1, 50>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialNetwork {
    probe_timeout_max_ms: Option<Ranged<1000, 60_000>>,
}

/// An integer within `MIN..=MAX`.
#[derive(Debug, Deserialize)]
#[serde(try_from = "i64")]
struct Ranged<const MIN: i64, const MAX: i64>(u64);

impl<const MIN: i64, const MAX: i64> TryFrom<i64> for Ranged<MIN, MAX> {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&value) {
            Ok(Self(value.unsigned_abs()))
        } else {
            Err(format!("{value} is out of range ({MIN} to {MAX})"))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialLog {
    level: Option<LogLevel>,
    max_file_bytes: Option<FileSize>,
    max_files: Option<FileCount>,
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct ServerUrl(Url);

impl TryFrom<String> for ServerUrl {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        parse_server_url(&value).map(ServerUrl)
    }
}

/// An `http` or `https` URL with a host and no credentials in it.
pub fn parse_server_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| {
        format!("\"{value}\" is not a URL ({e}); expected e.g. https://exams.school.example")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "\"{value}\" uses \"{}\"; the server URL must start with http:// or https://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("\"{value}\" has no host name"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the server URL must not contain a user name or password".into());
    }
    Ok(url)
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct AbsoluteDir(PathBuf);

impl TryFrom<String> for AbsoluteDir {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let path = PathBuf::from(&value);
        if value.trim().is_empty() {
            Err("the data directory must not be empty".into())
        } else if !path.is_absolute() {
            Err(format!(
                "\"{value}\" is a relative path; in a file the data directory must be absolute"
            ))
        } else {
            Ok(AbsoluteDir(path))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct LogLevel(String);

impl TryFrom<String> for LogLevel {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if is_log_filter(&value) {
            Ok(LogLevel(value))
        } else {
            Err(format!(
                "\"{value}\" is not a log level; use off, error, warn, info, debug or trace \
                 (or target=level pairs separated by commas)"
            ))
        }
    }
}

/// A level, or `target=level` directives. Stricter than `EnvFilter`, which takes any bare
/// word as a target name and would silently turn a typo into "log nothing".
fn is_log_filter(value: &str) -> bool {
    const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];
    let is_level = |s: &str| LEVELS.contains(&s.trim().to_ascii_lowercase().as_str());
    !value.trim().is_empty()
        && value
            .split(',')
            .all(|directive| match directive.split_once('=') {
                Some((target, level)) => !target.trim().is_empty() && is_level(level),
                None => is_level(directive),
            })
        && tracing_subscriber::EnvFilter::builder()
            .parse(value)
            .is_ok()
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "i64")]
struct FileSize(u64);

impl TryFrom<i64> for FileSize {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        const MIN: i64 = 64 * 1024;
        const MAX: i64 = 1024 * 1024 * 1024;
        if (MIN..=MAX).contains(&value) {
            Ok(FileSize(value.unsigned_abs()))
        } else {
            Err(format!("{value} bytes is out of range ({MIN} to {MAX})"))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "i64")]
struct FileCount(u32);

impl TryFrom<i64> for FileCount {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        match u32::try_from(value) {
            Ok(n @ 1..=100) => Ok(FileCount(n)),
            _ => Err(format!("{value} is out of range (1 to 100 files)")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct KnownKey(String);

impl TryFrom<String> for KnownKey {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if KEYS.contains(&value.as_str()) {
            Ok(KnownKey(value))
        } else {
            Err(format!(
                "cannot lock unknown key \"{value}\"; known keys: {}",
                KEYS.join(", ")
            ))
        }
    }
}

/// The values of one layer in applicable form.
#[derive(Default)]
struct Values {
    server_url: Option<Url>,
    data_dir: Option<PathBuf>,
    log_level: Option<String>,
    log_max_file_bytes: Option<u64>,
    log_max_files: Option<u32>,
    queue_max_entries: Option<u64>,
    queue_max_bytes: Option<u64>,
    sync_concurrency: Option<u32>,
    sync_batch_window_ms: Option<u32>,
    sync_batch_max: Option<u32>,
    network_probe_timeout_max_ms: Option<u32>,
}

impl From<Partial> for Values {
    fn from(p: Partial) -> Self {
        let log = p.log.unwrap_or_default();
        let queue = p.queue.unwrap_or_default();
        let sync = p.sync.unwrap_or_default();
        let network = p.network.unwrap_or_default();
        let small = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Values {
            server_url: p.server_url.map(|v| v.0),
            data_dir: p.data_dir.map(|v| v.0),
            log_level: log.level.map(|v| v.0),
            log_max_file_bytes: log.max_file_bytes.map(|v| v.0),
            log_max_files: log.max_files.map(|v| v.0),
            queue_max_entries: queue.max_entries.map(|v| v.0),
            queue_max_bytes: queue.max_bytes.map(|v| v.0),
            sync_concurrency: sync.concurrency.map(|v| small(v.0)),
            sync_batch_window_ms: sync.batch_window_ms.map(|v| small(v.0)),
            sync_batch_max: sync.batch_max.map(|v| small(v.0)),
            network_probe_timeout_max_ms: network.probe_timeout_max_ms.map(|v| small(v.0)),
        }
    }
}

struct Builder {
    settings: Settings,
    sources: Vec<ConfigSource>,
    /// For each key, the index in `sources` of the layer that set it last.
    winner: BTreeMap<&'static str, usize>,
    locked: Vec<String>,
    problems: Vec<ConfigProblem>,
    data_dir_known: bool,
}

impl Builder {
    fn new(inputs: &ConfigInputs) -> Self {
        #[allow(clippy::expect_used)]
        let server_url = Url::parse(DEFAULT_SERVER_URL).expect("DEFAULT_SERVER_URL is a valid URL");
        let data_dir_known = inputs.default_data_dir.is_some();
        let settings = Settings {
            server_url,
            data_dir: inputs
                .default_data_dir
                .clone()
                .unwrap_or_else(|| inputs.cwd.join("exam-desktop-data")),
            log: LogSettings::default(),
            queue: QueueSettings::default(),
            sync: SyncSettings::default(),
            network: NetworkSettings::default(),
        };
        let mut builder = Builder {
            settings,
            sources: Vec::new(),
            winner: BTreeMap::new(),
            locked: Vec::new(),
            problems: Vec::new(),
            data_dir_known,
        };
        builder.sources.push(ConfigSource {
            layer: Layer::Defaults,
            origin: "built-in".into(),
            status: SourceStatus::Applied,
            effective: Vec::new(),
            ignored_locked: Vec::new(),
        });
        for key in KEYS {
            builder.winner.insert(key, 0);
        }
        builder
    }

    fn absent(&mut self, layer: Layer, origin: String) {
        self.push_source(layer, origin, SourceStatus::Absent);
    }

    fn push_source(&mut self, layer: Layer, origin: String, status: SourceStatus) -> usize {
        self.sources.push(ConfigSource {
            layer,
            origin,
            status,
            effective: Vec::new(),
            ignored_locked: Vec::new(),
        });
        self.sources.len() - 1
    }

    fn file_layer(&mut self, layer: Layer, path: &Path) {
        let origin = path.display().to_string();
        let text = match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    let line = line_of_offset(e.as_bytes(), e.utf8_error().valid_up_to());
                    self.invalid(
                        layer,
                        &origin,
                        Some(line),
                        None,
                        None,
                        "the file is not UTF-8 text".into(),
                    );
                    return;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.absent(layer, origin);
                return;
            }
            Err(e) => {
                self.invalid(
                    layer,
                    &origin,
                    None,
                    None,
                    None,
                    format!("cannot read the file: {e}"),
                );
                return;
            }
        };
        let partial: Partial = match toml::from_str(&text) {
            Ok(p) => p,
            Err(e) => {
                let (line, column, key) = match e.span() {
                    Some(span) => locate(&text, span.start),
                    None => (None, None, None),
                };
                self.invalid(
                    layer,
                    &origin,
                    line,
                    column,
                    key,
                    e.message().trim().to_string(),
                );
                return;
            }
        };
        let mut partial = partial;
        if let Some(locked) = partial.locked.take() {
            if layer == Layer::Managed {
                self.locked = locked.into_inner().into_iter().map(|k| k.0).collect();
            } else {
                let (line, column, _) = locate(&text, locked.span().start);
                self.invalid(
                    layer,
                    &origin,
                    line,
                    column,
                    Some("locked".into()),
                    "\"locked\" is only honoured in the system-wide managed file".into(),
                );
                return;
            }
        }
        let index = self.push_source(layer, origin, SourceStatus::Applied);
        self.apply(index, partial.into());
    }

    fn env_layer(&mut self, env: &BTreeMap<String, String>, cwd: &Path) {
        let mut values = Values::default();
        let mut names = Vec::new();
        let mut ok = true;
        if let Some(raw) = env.get(ENV_SERVER).filter(|v| !v.is_empty()) {
            names.push(ENV_SERVER);
            match parse_server_url(raw) {
                Ok(url) => values.server_url = Some(url),
                Err(message) => {
                    ok = false;
                    self.problem(
                        format!("environment variable {ENV_SERVER}"),
                        None,
                        None,
                        Some("server_url"),
                        message,
                    );
                }
            }
        }
        if let Some(raw) = env.get(ENV_DATA_DIR).filter(|v| !v.is_empty()) {
            names.push(ENV_DATA_DIR);
            values.data_dir = Some(absolute(cwd, raw));
        }
        self.flag_like_layer(Layer::Environment, names, ok, values);
    }

    fn args_layer(&mut self, args: &[String], cwd: &Path) {
        let mut values = Values::default();
        let mut names = Vec::new();
        let mut ok = true;
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            let (flag, key) = match flag {
                "--server" => ("--server", "server_url"),
                "--data-dir" => ("--data-dir", "data_dir"),
                // Other arguments belong to the platform (GTK, WebDriver): not ours to judge.
                _ => continue,
            };
            names.push(flag);
            let value = match inline.or_else(|| iter.next().cloned()) {
                Some(v) if !v.is_empty() => v,
                _ => {
                    ok = false;
                    self.problem(
                        "command line".into(),
                        None,
                        None,
                        Some(key),
                        format!("{flag} needs a value"),
                    );
                    continue;
                }
            };
            if key == "server_url" {
                match parse_server_url(&value) {
                    Ok(url) => values.server_url = Some(url),
                    Err(message) => {
                        ok = false;
                        self.problem(
                            format!("command line {flag}"),
                            None,
                            None,
                            Some(key),
                            message,
                        );
                    }
                }
            } else {
                values.data_dir = Some(absolute(cwd, &value));
            }
        }
        self.flag_like_layer(Layer::CommandLine, names, ok, values);
    }

    /// Environment and command line: a bad value is dropped, the good ones still apply.
    fn flag_like_layer(&mut self, layer: Layer, mut names: Vec<&str>, ok: bool, values: Values) {
        names.dedup();
        if names.is_empty() {
            let origin = match layer {
                Layer::Environment => format!("{ENV_SERVER}, {ENV_DATA_DIR}"),
                _ => "--server, --data-dir".into(),
            };
            self.absent(layer, origin);
            return;
        }
        let status = if ok {
            SourceStatus::Applied
        } else {
            SourceStatus::Invalid
        };
        let index = self.push_source(layer, names.join(", "), status);
        self.apply(index, values);
    }

    fn apply(&mut self, index: usize, values: Values) {
        let Values {
            server_url,
            data_dir,
            log_level,
            log_max_file_bytes,
            log_max_files,
            queue_max_entries,
            queue_max_bytes,
            sync_concurrency,
            sync_batch_window_ms,
            sync_batch_max,
            network_probe_timeout_max_ms,
        } = values;
        if let Some(v) = server_url {
            if self.may_set(index, "server_url") {
                self.settings.server_url = v;
            }
        }
        if let Some(v) = data_dir {
            if self.may_set(index, "data_dir") {
                self.settings.data_dir = v;
                self.data_dir_known = true;
            }
        }
        if let Some(v) = log_level {
            if self.may_set(index, "log.level") {
                self.settings.log.level = v;
            }
        }
        if let Some(v) = log_max_file_bytes {
            if self.may_set(index, "log.max_file_bytes") {
                self.settings.log.max_file_bytes = v;
            }
        }
        if let Some(v) = log_max_files {
            if self.may_set(index, "log.max_files") {
                self.settings.log.max_files = v;
            }
        }
        if let Some(v) = queue_max_entries {
            if self.may_set(index, "queue.max_entries") {
                self.settings.queue.max_entries = v;
            }
        }
        if let Some(v) = queue_max_bytes {
            if self.may_set(index, "queue.max_bytes") {
                self.settings.queue.max_bytes = v;
            }
        }
        if let Some(v) = sync_concurrency {
            if self.may_set(index, "sync.concurrency") {
                self.settings.sync.concurrency = v;
            }
        }
        if let Some(v) = sync_batch_window_ms {
            if self.may_set(index, "sync.batch_window_ms") {
                self.settings.sync.batch_window_ms = v;
            }
        }
        if let Some(v) = sync_batch_max {
            if self.may_set(index, "sync.batch_max") {
                self.settings.sync.batch_max = v;
            }
        }
        if let Some(v) = network_probe_timeout_max_ms {
            if self.may_set(index, "network.probe_timeout_max_ms") {
                self.settings.network.probe_timeout_max_ms = v;
            }
        }
    }

    /// Whether the layer at `index` may set `key`; records the outcome either way.
    fn may_set(&mut self, index: usize, key: &'static str) -> bool {
        let source = &mut self.sources[index];
        if !source.layer.may_set_locked() && self.locked.iter().any(|k| k == key) {
            tracing::warn!(key, origin = %source.origin, "ignored: the managed configuration locks this key");
            source.ignored_locked.push(key.to_string());
            return false;
        }
        self.winner.insert(key, index);
        true
    }

    fn invalid(
        &mut self,
        layer: Layer,
        origin: &str,
        line: Option<u32>,
        column: Option<u32>,
        key: Option<String>,
        message: String,
    ) {
        self.push_source(layer, origin.to_string(), SourceStatus::Invalid);
        self.problems.push(ConfigProblem {
            origin: origin.to_string(),
            line,
            column,
            key,
            message,
        });
    }

    fn problem(
        &mut self,
        origin: String,
        line: Option<u32>,
        column: Option<u32>,
        key: Option<&str>,
        message: String,
    ) {
        self.problems.push(ConfigProblem {
            origin,
            line,
            column,
            key: key.map(str::to_string),
            message,
        });
    }

    fn finish(mut self) -> LoadedConfig {
        for (key, index) in &self.winner {
            self.sources[*index].effective.push((*key).to_string());
        }
        if !self.data_dir_known {
            self.problem(
                "built-in".into(),
                None,
                None,
                Some("data_dir"),
                "this account has no home directory, so there is no default data directory; set data_dir"
                    .into(),
            );
        }
        LoadedConfig {
            settings: self.settings,
            sources: self.sources,
            locked: self.locked,
            problems: self.problems,
        }
    }
}

fn absolute(cwd: &Path, value: &str) -> PathBuf {
    let path = PathBuf::from(value);
    if path.is_absolute() {
        path
    } else {
        cwd.join(path)
    }
}

fn line_of_offset(bytes: &[u8], offset: usize) -> u32 {
    let newlines = bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// Line, column (both from 1) and dotted key at a byte offset of a TOML text.
fn locate(text: &str, offset: usize) -> (Option<u32>, Option<u32>, Option<String>) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = line_of_offset(text.as_bytes(), offset);
    let column = u32::try_from(before[line_start..].chars().count() + 1).unwrap_or(u32::MAX);
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let key = key_on_line(line_text).map(|key| match current_table(&text[..line_start]) {
        Some(table) => format!("{table}.{key}"),
        None => key,
    });
    (Some(line), Some(column), key)
}

fn key_on_line(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('#') {
        return None;
    }
    let (key, _) = trimmed.split_once('=')?;
    let key: String = key
        .split('.')
        .map(|part| part.trim().trim_matches('"').trim_matches('\''))
        .collect::<Vec<_>>()
        .join(".");
    (!key.is_empty()).then_some(key)
}

/// The `[table]` header in force at the end of `text`, if any.
fn current_table(text: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        let t = line.trim();
        let inner = t.strip_prefix('[')?.strip_suffix(']')?;
        Some(inner.trim_matches(['[', ']']).trim().to_string())
    })
}

#[cfg(test)]
mod tests {
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
