//! One configuration file as TOML: every key, its type and its range. A value out of range
//! or a key that does not exist is an error with its place, never a silent default.

use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use super::{FreezeWindow, UpdateMode, KEYS};

/// One layer's values, before locks are applied. Every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Partial {
    pub(super) server_url: Option<ServerUrl>,
    pub(super) data_dir: Option<AbsoluteDir>,
    pub(super) log: Option<PartialLog>,
    pub(super) queue: Option<PartialQueue>,
    pub(super) sync: Option<PartialSync>,
    pub(super) network: Option<PartialNetwork>,
    pub(super) session: Option<PartialSession>,
    pub(super) security: Option<PartialSecurity>,
    pub(super) analytics: Option<PartialAnalytics>,
    pub(super) update: Option<PartialUpdate>,
    pub(super) locked: Option<toml::Spanned<Vec<KnownKey>>>,
}

/// `[update]`: what the updater may do, and when.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartialUpdate {
    pub(super) mode: Option<ModeName>,
    pub(super) endpoints: Option<Bounded<Endpoint, 10>>,
    pub(super) channel: Option<Channel>,
    pub(super) pin: Option<Pin>,
    pub(super) allow_downgrade: Option<bool>,
    pub(super) check_every_min: Option<Ranged<5, 10_080>>,
    pub(super) deadline_h: Option<Ranged<0, 2160>>,
    pub(super) quiet_before_exam_min: Option<Ranged<0, 1440>>,
    pub(super) freeze: Option<Bounded<Freeze, 50>>,
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct ModeName(pub(super) UpdateMode);

impl TryFrom<String> for ModeName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        UpdateMode::parse(value.trim())
            .map(ModeName)
            .ok_or_else(|| format!("\"{value}\" is not an update mode (auto, check or off)"))
    }
}

/// The placeholders an update endpoint may hold, with a sample value each: the updater plugin
/// fills `target`, `arch`, `current_version` and `bundle_type`, the app `channel` and `pin`
/// ([`super::UpdateSettings::filled_endpoints`]).
pub(super) const ENDPOINT_PLACEHOLDERS: [(&str, &str); 6] = [
    ("{{target}}", "linux"),
    ("{{arch}}", "x86_64"),
    ("{{current_version}}", "1.0.0"),
    ("{{bundle_type}}", "appimage"),
    ("{{channel}}", "stable"),
    ("{{pin}}", "1.4."),
];

/// An update server URL, under the rule of [`parse_server_url`] once its placeholders are
/// filled: the update's signature is checked anyway, but plain HTTP would still let a lab
/// network see and withhold updates.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct Endpoint(pub(super) String);

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let trimmed = value.trim();
        let filled = ENDPOINT_PLACEHOLDERS
            .iter()
            .fold(trimmed.to_string(), |text, (placeholder, sample)| {
                text.replace(placeholder, sample)
            });
        if filled.contains("{{") || filled.contains("}}") {
            return Err(format!(
                "\"{value}\" holds a placeholder the app does not fill; the known ones are \
                 {}",
                ENDPOINT_PLACEHOLDERS.map(|(p, _)| p).join(", ")
            ));
        }
        parse_server_url(&filled)?;
        Ok(Endpoint(trimmed.to_string()))
    }
}

/// A release channel's name: what a path or a query string can carry unescaped.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct Channel(pub(super) String);

impl TryFrom<String> for Channel {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let ok = (1..=32).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Channel(value))
        } else {
            Err(format!(
                "\"{value}\" is not a channel name: 1 to 32 lowercase letters, digits and hyphens \
                 (e.g. stable, beta)"
            ))
        }
    }
}

/// The start of a version number: `1.4.` (any 1.4 release) or `1.4.2` (that one).
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct Pin(pub(super) String);

impl TryFrom<String> for Pin {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let ok = (1..=32).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && value.starts_with(|c: char| c.is_ascii_digit())
            && !value.contains("..");
        if ok {
            Ok(Pin(value))
        } else {
            Err(format!(
                "\"{value}\" is not a version prefix: digits and dots, up to 32 characters \
                 (e.g. \"1.4.\" for any 1.4 release, \"1.4.2\" for that one)"
            ))
        }
    }
}

/// `{ from = …, to = … }`: a window in which nothing is installed.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawFreeze")]
pub(super) struct Freeze(pub(super) FreezeWindow);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreeze {
    from: Instant,
    to: Instant,
}

impl TryFrom<RawFreeze> for Freeze {
    type Error = String;
    fn try_from(raw: RawFreeze) -> Result<Self, String> {
        if raw.to.ms <= raw.from.ms {
            Err(format!(
                "a freeze window must end after it starts: \"to\" ({}) is not after \"from\" ({})",
                raw.to.text, raw.from.text
            ))
        } else {
            Ok(Freeze(FreezeWindow {
                from_ms: raw.from.ms,
                to_ms: raw.to.ms,
            }))
        }
    }
}

/// An RFC 3339 date and time with its offset, as text or as TOML's own date-time (IT may
/// write it either way). Without an offset the instant would depend on each computer's time
/// zone, so a local time is refused.
#[derive(Debug)]
struct Instant {
    ms: i64,
    text: String,
}

impl Instant {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| Instant {
                ms: t.timestamp_millis(),
                text: text.to_string(),
            })
            .map_err(|e| {
                format!(
                    "\"{text}\" is not an RFC 3339 date and time with an offset, such as \
                     2026-12-14T00:00:00+07:00 ({e})"
                )
            })
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Instant;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 date and time with an offset")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Instant, E> {
                Instant::parse(v).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Instant, A::Error> {
                // The toml crate hands its date-times over as a one-entry map.
                let datetime = toml::value::Datetime::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Instant::parse(&datetime.to_string()).map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartialQueue {
    pub(super) max_entries: Option<Ranged<100, 100_000_000>>,
    pub(super) max_bytes: Option<Ranged<1_048_576, 68_719_476_736>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartialSync {
    pub(super) concurrency: Option<Ranged<1, 16>>,
    pub(super) batch_window_ms: Option<Ranged<0, 1000>>,
    pub(super) batch_max: Option<Ranged<1, 50>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartialNetwork {
    pub(super) probe_timeout_max_ms: Option<Ranged<1000, 60_000>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartialSession {
    pub(super) sign_out_on_quit: Option<bool>,
    pub(super) idle_sign_out_min: Option<Ranged<0, 480>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartialSecurity {
    pub(super) refuse_before_start: Option<Vec<CategoryName>>,
    pub(super) add_programs:
        Option<std::collections::BTreeMap<CategoryName, Bounded<ProgramName, 500>>>,
    pub(super) remove_programs: Option<Bounded<ProgramName, 500>>,
    pub(super) allow_programs: Option<Bounded<ProgramName, 500>>,
    pub(super) one_display: Option<bool>,
}

/// A category of prohibited programs, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct CategoryName(pub(super) crate::security::Category);

impl TryFrom<String> for CategoryName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        crate::security::Category::parse(&value)
            .map(CategoryName)
            .ok_or_else(|| {
                format!(
                    "\"{value}\" is not a category of programs (remote_control, meetings_chat, \
                     screen_recording)"
                )
            })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartialAnalytics {
    pub(super) lab: Option<LabName>,
    pub(super) insights: Option<PartialInsights>,
}

/// When the insights speak up (`crate::analytics::insights::Thresholds`); each one left
/// out keeps the value of the layer below.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartialInsights {
    pub(super) refreshes_per_hour: Option<Ranged<1, 3600>>,
    pub(super) clock_skew_s: Option<Ranged<1, 86_400>>,
    pub(super) outages_per_hour: Option<Ranged<1, 3600>>,
    pub(super) backlog_min: Option<Ranged<1, 1440>>,
    pub(super) save_p99_ms: Option<Ranged<1, 60_000>>,
    pub(super) disk_reserve_mb: Option<Ranged<0, 1_048_576>>,
    pub(super) disk_full_within_h: Option<Ranged<1, 720>>,
    pub(super) drain_longer_than_min: Option<Ranged<1, 1440>>,
}

impl PartialInsights {
    /// These values over `thresholds`.
    pub(super) fn apply(&self, t: &mut crate::analytics::insights::Thresholds) {
        let set = |slot: &mut f64, value: &Option<u64>, scale: f64| {
            if let Some(v) = value {
                *slot = *v as f64 * scale;
            }
        };
        set(
            &mut t.refreshes_per_hour,
            &self.refreshes_per_hour.as_ref().map(|r| r.0),
            1.0,
        );
        set(
            &mut t.clock_skew_s,
            &self.clock_skew_s.as_ref().map(|r| r.0),
            1.0,
        );
        set(
            &mut t.outages_per_hour,
            &self.outages_per_hour.as_ref().map(|r| r.0),
            1.0,
        );
        set(
            &mut t.backlog_s,
            &self.backlog_min.as_ref().map(|r| r.0),
            60.0,
        );
        set(
            &mut t.save_p99_ms,
            &self.save_p99_ms.as_ref().map(|r| r.0),
            1.0,
        );
        set(
            &mut t.disk_reserve_bytes,
            &self.disk_reserve_mb.as_ref().map(|r| r.0),
            1_048_576.0,
        );
        set(
            &mut t.disk_full_within_s,
            &self.disk_full_within_h.as_ref().map(|r| r.0),
            3600.0,
        );
        set(
            &mut t.drain_longer_than_s,
            &self.drain_longer_than_min.as_ref().map(|r| r.0),
            60.0,
        );
    }
}

/// The school's name for a lab: 1 to 64 characters, no control characters.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct LabName(pub(super) String);

impl TryFrom<String> for LabName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let trimmed = value.trim();
        if trimmed.is_empty()
            || trimmed.chars().count() > 64
            || trimmed.chars().any(char::is_control)
        {
            Err(format!(
                "\"{}\": a lab's name is 1 to 64 characters, without control characters",
                value.escape_debug()
            ))
        } else {
            Ok(LabName(trimmed.to_string()))
        }
    }
}

/// A program's file name: 1 to 100 characters, no directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct ProgramName(pub(super) String);

impl TryFrom<String> for ProgramName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 100 {
            Err(format!(
                "\"{value}\": a program is named by its file name, 1 to 100 characters"
            ))
        } else if trimmed.contains(['/', '\\']) {
            Err(format!(
                "\"{value}\": a program is named by its file name, without a directory"
            ))
        } else {
            Ok(ProgramName(trimmed.to_string()))
        }
    }
}

/// A list of at most `MAX` items.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Vec<T>")]
pub(super) struct Bounded<T, const MAX: usize>(pub(super) Vec<T>);

impl<T, const MAX: usize> TryFrom<Vec<T>> for Bounded<T, MAX> {
    type Error = String;
    fn try_from(value: Vec<T>) -> Result<Self, String> {
        if value.len() > MAX {
            Err(format!(
                "{} entries; at most {MAX} are allowed",
                value.len()
            ))
        } else {
            Ok(Bounded(value))
        }
    }
}

/// An integer within `MIN..=MAX`.
#[derive(Debug, Deserialize)]
#[serde(try_from = "i64")]
pub(super) struct Ranged<const MIN: i64, const MAX: i64>(pub(super) u64);

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
pub(super) struct PartialLog {
    pub(super) level: Option<LogLevel>,
    pub(super) max_file_bytes: Option<FileSize>,
    pub(super) max_files: Option<FileCount>,
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct ServerUrl(pub(super) Url);

impl TryFrom<String> for ServerUrl {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        parse_server_url(&value).map(ServerUrl)
    }
}

/// An `https` URL with a host and no credentials in it — or `http` to this computer
/// (loopback: the reference server in development and tests). Plain HTTP to anywhere else
/// would let a lab network read passwords and answers.
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
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(format!(
            "\"{value}\" uses plain http:// to another computer, where the network could read \
             passwords and answers; use https:// (http:// is only for this computer: \
             127.0.0.1, ::1 or localhost)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the server URL must not contain a user name or password".into());
    }
    Ok(url)
}

/// Whether `url` names this computer.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct AbsoluteDir(pub(super) PathBuf);

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
pub(super) struct LogLevel(pub(super) String);

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
pub(super) fn is_log_filter(value: &str) -> bool {
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
pub(super) struct FileSize(pub(super) u64);

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
pub(super) struct FileCount(pub(super) u32);

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
pub(super) struct KnownKey(pub(super) String);

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
