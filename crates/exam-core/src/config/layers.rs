//! Applying the layers in order: each one's values, the managed file's locks and the keys
//! policies force, and the record of which layer set which key (shown in diagnostics), with
//! every problem located.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use url::Url;

use super::file::Partial;
use super::*;

/// The values of one layer in applicable form.
#[derive(Default)]
pub(super) struct Values {
    pub(super) server_url: Option<Url>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) log_level: Option<String>,
    pub(super) log_max_file_bytes: Option<u64>,
    pub(super) log_max_files: Option<u32>,
    pub(super) queue_max_entries: Option<u64>,
    pub(super) queue_max_bytes: Option<u64>,
    pub(super) sync_concurrency: Option<u32>,
    pub(super) sync_batch_window_ms: Option<u32>,
    pub(super) sync_batch_max: Option<u32>,
    pub(super) network_probe_timeout_max_ms: Option<u32>,
    pub(super) session_sign_out_on_quit: Option<bool>,
    pub(super) session_idle_sign_out_min: Option<u32>,
    pub(super) security_refuse_before_start: Option<Vec<crate::security::Category>>,
    pub(super) security_add_programs: Option<BTreeMap<crate::security::Category, Vec<String>>>,
    pub(super) security_remove_programs: Option<Vec<String>>,
    pub(super) security_allow_programs: Option<Vec<String>>,
    pub(super) security_one_display: Option<bool>,
    pub(super) analytics_lab: Option<String>,
    pub(super) analytics_insights: Option<super::file::PartialInsights>,
    pub(super) update_mode: Option<UpdateMode>,
    pub(super) update_endpoints: Option<Vec<String>>,
    pub(super) update_channel: Option<String>,
    pub(super) update_pin: Option<String>,
    pub(super) update_allow_downgrade: Option<bool>,
    pub(super) update_check_every_min: Option<u32>,
    pub(super) update_deadline_h: Option<u32>,
    pub(super) update_quiet_before_exam_min: Option<u32>,
    pub(super) update_freeze: Option<Vec<FreezeWindow>>,
}

impl From<Partial> for Values {
    fn from(p: Partial) -> Self {
        let log = p.log.unwrap_or_default();
        let queue = p.queue.unwrap_or_default();
        let sync = p.sync.unwrap_or_default();
        let network = p.network.unwrap_or_default();
        let session = p.session.unwrap_or_default();
        let security = p.security.unwrap_or_default();
        let analytics = p.analytics.unwrap_or_default();
        let update = p.update.unwrap_or_default();
        let names = |list: super::file::Bounded<super::file::ProgramName, 500>| {
            list.0.into_iter().map(|n| n.0).collect::<Vec<_>>()
        };
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
            session_sign_out_on_quit: session.sign_out_on_quit,
            session_idle_sign_out_min: session.idle_sign_out_min.map(|v| small(v.0)),
            security_refuse_before_start: security
                .refuse_before_start
                .map(|list| list.into_iter().map(|c| c.0).collect()),
            security_add_programs: security.add_programs.map(|map| {
                map.into_iter()
                    .map(|(category, list)| (category.0, names(list)))
                    .collect()
            }),
            security_remove_programs: security.remove_programs.map(names),
            security_allow_programs: security.allow_programs.map(names),
            security_one_display: security.one_display,
            analytics_lab: analytics.lab.map(|l| l.0),
            analytics_insights: analytics.insights,
            update_mode: update.mode.map(|m| m.0),
            update_endpoints: update
                .endpoints
                .map(|list| list.0.into_iter().map(|e| e.0).collect()),
            update_channel: update.channel.map(|c| c.0),
            update_pin: update.pin.map(|p| p.0),
            update_allow_downgrade: update.allow_downgrade,
            update_check_every_min: update.check_every_min.map(|v| small(v.0)),
            update_deadline_h: update.deadline_h.map(|v| small(v.0)),
            update_quiet_before_exam_min: update.quiet_before_exam_min.map(|v| small(v.0)),
            update_freeze: update
                .freeze
                .map(|list| list.0.into_iter().map(|f| f.0).collect()),
        }
    }
}

pub(super) struct Builder {
    settings: Settings,
    sources: Vec<ConfigSource>,
    /// For each key, the index in `sources` of the layer that set it last.
    winner: BTreeMap<&'static str, usize>,
    locked: Vec<String>,
    problems: Vec<ConfigProblem>,
    data_dir_known: bool,
}

impl Builder {
    pub(super) fn new(inputs: &ConfigInputs) -> Self {
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
            session: SessionSettings::default(),
            security: SecuritySettings::default(),
            analytics: super::AnalyticsSettings::default(),
            update: UpdateSettings::default(),
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

    pub(super) fn absent(&mut self, layer: Layer, origin: String) {
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

    pub(super) fn file_layer(&mut self, layer: Layer, path: &Path) {
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

    pub(super) fn env_layer(&mut self, env: &BTreeMap<String, String>, cwd: &Path) {
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

    pub(super) fn args_layer(&mut self, args: &[String], cwd: &Path) {
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
            session_sign_out_on_quit,
            session_idle_sign_out_min,
            security_refuse_before_start,
            security_add_programs,
            security_remove_programs,
            security_allow_programs,
            security_one_display,
            analytics_lab,
            analytics_insights,
            update_mode,
            update_endpoints,
            update_channel,
            update_pin,
            update_allow_downgrade,
            update_check_every_min,
            update_deadline_h,
            update_quiet_before_exam_min,
            update_freeze,
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
        if let Some(v) = session_sign_out_on_quit {
            if self.may_set(index, "session.sign_out_on_quit") {
                self.settings.session.sign_out_on_quit = v;
            }
        }
        if let Some(v) = session_idle_sign_out_min {
            if self.may_set(index, "session.idle_sign_out_min") {
                self.settings.session.idle_sign_out_min = v;
            }
        }
        if let Some(v) = security_refuse_before_start {
            if self.may_set(index, "security.refuse_before_start") {
                self.settings.security.refuse_before_start = Some(v);
            }
        }
        if let Some(v) = security_add_programs {
            if self.may_set(index, "security.add_programs") {
                self.settings.security.add_programs = v;
            }
        }
        if let Some(v) = security_remove_programs {
            if self.may_set(index, "security.remove_programs") {
                self.settings.security.remove_programs = v;
            }
        }
        if let Some(v) = security_allow_programs {
            if self.may_set(index, "security.allow_programs") {
                self.settings.security.allow_programs = v;
            }
        }
        if let Some(v) = security_one_display {
            if self.may_set(index, "security.one_display") {
                self.settings.security.one_display = Some(v);
            }
        }
        if let Some(v) = analytics_lab {
            if self.may_set(index, "analytics.lab") {
                self.settings.analytics.lab = Some(v);
            }
        }
        if let Some(v) = analytics_insights {
            if self.may_set(index, "analytics.insights") {
                v.apply(&mut self.settings.analytics.insights);
            }
        }
        if let Some(v) = update_mode {
            if self.may_set(index, "update.mode") {
                self.settings.update.mode = v;
            }
        }
        if let Some(v) = update_endpoints {
            if self.may_set(index, "update.endpoints") {
                self.settings.update.endpoints = v;
            }
        }
        if let Some(v) = update_channel {
            if self.may_set(index, "update.channel") {
                self.settings.update.channel = v;
            }
        }
        if let Some(v) = update_pin {
            if self.may_set(index, "update.pin") {
                self.settings.update.pin = Some(v);
            }
        }
        if let Some(v) = update_allow_downgrade {
            if self.may_set(index, "update.allow_downgrade") {
                self.settings.update.allow_downgrade = v;
            }
        }
        if let Some(v) = update_check_every_min {
            if self.may_set(index, "update.check_every_min") {
                self.settings.update.check_every_min = v;
            }
        }
        if let Some(v) = update_deadline_h {
            if self.may_set(index, "update.deadline_h") {
                self.settings.update.deadline_h = v;
            }
        }
        if let Some(v) = update_quiet_before_exam_min {
            if self.may_set(index, "update.quiet_before_exam_min") {
                self.settings.update.quiet_before_exam_min = v;
            }
        }
        if let Some(v) = update_freeze {
            if self.may_set(index, "update.freeze") {
                self.settings.update.freeze = v;
            }
        }
    }

    /// A policy source's outcome: applied, and every key it set forced for the layers above.
    pub(super) fn policy_source(&mut self, origin: String, read: super::policy::PolicyRead) {
        use super::policy::PolicyRead;
        match read {
            PolicyRead::Absent => self.absent(Layer::Policy, origin),
            PolicyRead::Invalid(at) => self.invalid(
                Layer::Policy,
                &origin,
                at.line,
                at.column,
                at.key,
                at.message,
            ),
            PolicyRead::Read(partial) => {
                let index = self.push_source(Layer::Policy, origin, SourceStatus::Applied);
                self.apply(index, (*partial).into());
                let forced: Vec<&'static str> = self
                    .winner
                    .iter()
                    .filter(|(_, winner)| **winner == index)
                    .map(|(key, _)| *key)
                    .collect();
                for key in forced {
                    if !self.locked.iter().any(|k| k == key) {
                        self.locked.push(key.to_string());
                    }
                }
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

    pub(super) fn finish(mut self) -> LoadedConfig {
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

pub(super) fn absolute(cwd: &Path, value: &str) -> PathBuf {
    let path = PathBuf::from(value);
    if path.is_absolute() {
        path
    } else {
        cwd.join(path)
    }
}

pub(super) fn line_of_offset(bytes: &[u8], offset: usize) -> u32 {
    let newlines = bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// Line, column (both from 1) and dotted key at a byte offset of a TOML text.
pub(super) fn locate(text: &str, offset: usize) -> (Option<u32>, Option<u32>, Option<String>) {
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

pub(super) fn key_on_line(line: &str) -> Option<String> {
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
pub(super) fn current_table(text: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        let t = line.trim();
        let inner = t.strip_prefix('[')?.strip_suffix(']')?;
        Some(inner.trim_matches(['[', ']']).trim().to_string())
    })
}
