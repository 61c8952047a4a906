//! `exam-desktop doctor` and the queue tools for IT: what IT asks of a lab computer before an
//! exam — can it take one now, and if not, why and what to do — answered without the app's
//! window, from the same settings, databases and keychain the app uses.
//!
//! Each check gives [`Finding`]s: a stable reason code (listed in [`CODES`], printed by
//! `exam-desktop doctor --codes`), a [`Level`], a title, a detail in plain words (what is
//! wrong and how to fix it) and a small map of evidence. The process's exit status is the
//! worst level ([`Level::exit_code`]).
//!
//! What it holds to:
//! - **Owners are never named.** No username or student id reaches its output (counts of
//!   students, attempt and exam ids only); exports are scrubbed of the names this computer
//!   knows ([`queue`]).
//! - **No secret is ever shown.** The doctor asks the keychain for an entry that does not
//!   exist; a purge looks the app's entries up only to know which are there.
//! - **The app is not disturbed.** A database the app holds open is read through a
//!   read-only connection; one nobody holds is opened for this process alone and never
//!   written ([`databases`]). What changes the queue or removes data refuses while the app
//!   runs.
//! - **Bounded time.** Every check runs at once, each under its own timeout, so the doctor
//!   answers within about 2 s with the server reachable and within 5 s without it
//!   (`cargo bench --bench doctor` measures both).
//!
//! The shell only parses the command line, supplies what only it knows ([`Platform`]: the
//! webview's version and the keychain of the app's service), prints and exits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::LoadedConfig;
use crate::keychain::SecretStore;

pub mod databases;
pub mod device;
pub mod disk;
pub mod purge;
pub mod queue;
mod render;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod updates;

pub use render::{codes_text, human, json};

/// How bad a finding is. Ordered: the worst of a report decides the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    /// Worth knowing; nothing to do.
    Info,
    /// Exams can be taken, but something should be looked at before the next one.
    Warn,
    /// This computer cannot take an exam as it is (or cannot send what it saves).
    Fail,
}

impl Level {
    /// The process's exit status for a report whose worst finding is this: 0 ok or info,
    /// 1 a warning, 2 a failure.
    pub fn exit_code(self) -> i32 {
        match self {
            Level::Ok | Level::Info => 0,
            Level::Warn => 1,
            Level::Fail => 2,
        }
    }

    /// The mark a terminal shows before the finding.
    pub fn mark(self) -> &'static str {
        match self {
            Level::Ok => "✓",
            Level::Info => "·",
            Level::Warn => "!",
            Level::Fail => "✗",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// One thing the doctor found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Stable reason code, `<area>.<what>` (see [`CODES`]).
    pub code: String,
    pub level: Level,
    /// One line.
    pub title: String,
    /// What is wrong and how to fix it, in plain words.
    pub detail: String,
    /// The figures and names behind it (never an owner, never a secret).
    pub evidence: BTreeMap<String, serde_json::Value>,
}

impl Finding {
    pub fn new(code: &str, level: Level, title: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            level,
            title: title.into(),
            detail: String::new(),
            evidence: BTreeMap::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.evidence.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
        );
        self
    }

    /// The area of the code (`server` of `server.unreachable`), which groups the output.
    pub fn area(&self) -> &str {
        self.code.split('.').next().unwrap_or("")
    }
}

/// Everything the doctor found, in the order of [`GROUPS`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The product's version.
    pub version: String,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub worst: Level,
    /// How long the checks took in all.
    pub took_ms: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn new(findings: Vec<Finding>, took: Duration) -> Self {
        Self {
            version: crate::VERSION.to_string(),
            generated_at: crate::now_rfc3339(),
            worst: worst(&findings),
            took_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            findings,
        }
    }

    pub fn exit_code(&self) -> i32 {
        self.worst.exit_code()
    }
}

/// The worst level among `findings` (ok when there are none).
pub fn worst(findings: &[Finding]) -> Level {
    findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok)
}

/// The output's groups: a title and the code areas it gathers, in the order shown.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("Configuration", &["config"]),
    ("Server", &["server", "tls", "clock"]),
    ("Keychain", &["keychain"]),
    ("Data folder and disk", &["data_dir", "disk"]),
    ("Databases", &["app", "database"]),
    ("Waiting work", &["queue"]),
    ("This computer", &["webview", "displays", "integrity"]),
    ("Updates", &["update"]),
    ("The doctor itself", &["check"]),
];

/// A reason code: the levels it comes with, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeDoc {
    pub code: &'static str,
    pub levels: &'static [Level],
    pub meaning: &'static str,
}

const fn doc(code: &'static str, levels: &'static [Level], meaning: &'static str) -> CodeDoc {
    CodeDoc {
        code,
        levels,
        meaning,
    }
}

use Level::{Fail, Info, Ok as Good, Warn};

/// Every reason code the doctor gives. Stable: scripts may match on them; a new one is
/// added, an existing one never changes its meaning.
pub const CODES: &[CodeDoc] = &[
    doc(
        "config.sources",
        &[Good, Info],
        "the settings in effect: each layer, where it was read and the keys it set",
    ),
    doc(
        "config.problem",
        &[Fail],
        "a malformed setting (file, line, key): nothing is sent to the server until it is fixed",
    ),
    doc(
        "config.locked_ignored",
        &[Info],
        "a user layer tried to set keys the managed file locks; the managed values apply",
    ),
    doc("server.ok", &[Good], "GET /healthz answered 204"),
    doc(
        "server.unreachable",
        &[Fail],
        "no answer from the server: no network, name not found, refused, or no reply in time",
    ),
    doc(
        "server.intercepted",
        &[Fail],
        "a captive portal or a proxy answered in the server's place",
    ),
    doc(
        "server.error",
        &[Fail],
        "the server answered with an error of its own (5xx)",
    ),
    doc(
        "server.unexpected_reply",
        &[Fail],
        "something answers at the address, but not as an Exam Bank server",
    ),
    doc(
        "tls.ok",
        &[Good],
        "the secure connection was made and the server's certificate is trusted",
    ),
    doc(
        "tls.not_used",
        &[Info],
        "plain HTTP, which the settings allow only to a server on this computer",
    ),
    doc(
        "tls.certificate",
        &[Fail],
        "the server's certificate is not trusted (the error is named)",
    ),
    doc(
        "clock.ok",
        &[Good],
        "this computer's clock agrees with the server's",
    ),
    doc(
        "clock.skew",
        &[Warn, Fail],
        "the clock is off: warn beyond analytics.insights.clock_skew_s (60 s), fail beyond 5 min",
    ),
    doc(
        "clock.unknown",
        &[Info],
        "the server's time is not known (no answer, or no Date header)",
    ),
    doc("keychain.ok", &[Good], "the OS keychain answers"),
    doc(
        "keychain.unavailable",
        &[Fail],
        "the OS keychain cannot be reached",
    ),
    doc(
        "keychain.refused",
        &[Fail],
        "the OS keychain refused the look-up",
    ),
    doc(
        "keychain.timeout",
        &[Fail],
        "the OS keychain did not answer in time",
    ),
    doc(
        "data_dir.missing",
        &[Info],
        "no data folder yet: nothing is stored on this computer",
    ),
    doc(
        "data_dir.shared",
        &[Warn],
        "other accounts of this computer can read the data folder",
    ),
    doc("disk.ok", &[Good], "enough free space for the data folder"),
    doc(
        "disk.low_space",
        &[Warn],
        "less free space than analytics.insights.disk_reserve_mb keeps for the queue",
    ),
    doc(
        "disk.almost_full",
        &[Fail],
        "under 64 MiB free: answers may soon not be saved",
    ),
    doc(
        "disk.unknown",
        &[Info],
        "the free space could not be measured",
    ),
    doc(
        "app.running",
        &[Info],
        "the app is running on this data folder (its databases were read, not opened for writing)",
    ),
    doc(
        "database.ok",
        &[Good],
        "PRAGMA quick_check found nothing wrong",
    ),
    doc("database.missing", &[Info], "not created yet"),
    doc(
        "database.corrupt",
        &[Fail],
        "damaged (the path and SQLite's words are given)",
    ),
    doc(
        "database.too_new",
        &[Fail],
        "written by a newer version of the app",
    ),
    doc(
        "database.unreadable",
        &[Fail],
        "cannot be opened (permissions, a lock)",
    ),
    doc(
        "database.not_checked",
        &[Info],
        "too large to check in the doctor's time; the app checks it at each start",
    ),
    doc(
        "database.set_aside",
        &[Warn],
        "a damaged database the app set aside and kept for IT; it may hold work never delivered",
    ),
    doc("queue.empty", &[Good], "nothing waits to be sent"),
    doc(
        "queue.waiting",
        &[Info],
        "work waits to be sent: counts by state and kind, the oldest's age",
    ),
    doc(
        "queue.backlog",
        &[Warn],
        "work has waited longer than analytics.insights.backlog_min (10 min)",
    ),
    doc(
        "queue.dead_letters",
        &[Warn],
        "work the server refused, kept on this computer",
    ),
    doc(
        "queue.telemetry",
        &[Info],
        "telemetry waiting (sent when possible, evicted first)",
    ),
    doc(
        "queue.unowned",
        &[Info],
        "work an earlier version kept without a student: never sent",
    ),
    doc("queue.unreadable", &[Warn], "the queue could not be read"),
    doc(
        "webview.ok",
        &[Good],
        "the webview the window needs (WebKitGTK, WebView2, WKWebView) and its version",
    ),
    doc(
        "webview.missing",
        &[Fail],
        "the webview cannot be found: the window cannot open",
    ),
    doc(
        "displays.not_checked",
        &[Info],
        "displays are counted by the app's window; none recorded",
    ),
    doc(
        "displays.last_count",
        &[Info],
        "the number of displays the app last counted (from its log)",
    ),
    doc(
        "displays.extra",
        &[Warn],
        "the app last counted more displays than the policy allows",
    ),
    doc(
        "integrity.ok",
        &[Good],
        "no program the policy lists runs; nothing else the device checks see",
    ),
    doc(
        "integrity.prohibited_program",
        &[Warn, Fail],
        "a listed program runs now (fail when the policy refuses a start while it runs)",
    ),
    doc(
        "integrity.virtual_machine",
        &[Info],
        "firmware or network cards of a virtual machine",
    ),
    doc(
        "integrity.hypervisor_flag",
        &[Info],
        "the CPU reports a hypervisor",
    ),
    doc("update.unknown", &[Info], "no update status yet"),
    doc(
        "update.status",
        &[Good, Info],
        "the updater's state: version, channel, pin, last check",
    ),
    doc("update.off", &[Info], "IT turned updates off"),
    doc(
        "update.available",
        &[Info],
        "a newer version the policy allows was found",
    ),
    doc(
        "update.waiting",
        &[Info],
        "a downloaded update waits to be installed, and why",
    ),
    doc(
        "update.failed",
        &[Warn],
        "the last check or download failed",
    ),
    doc(
        "update.cannot_apply",
        &[Warn],
        "a newer version exists but this installation cannot update itself",
    ),
    doc(
        "check.timeout",
        &[Warn],
        "a check did not finish in its time (named in the evidence)",
    ),
    doc("check.failed", &[Warn], "a check could not run"),
];

/// The documentation of `code`.
pub fn code_doc(code: &str) -> Option<&'static CodeDoc> {
    CODES.iter().find(|d| d.code == code)
}

/// What only the shell knows.
pub struct Platform {
    /// The webview's version as the shell reads it, or why it cannot.
    pub webview: Result<String, String>,
    /// The OS keychain under the app's service name.
    pub secrets: Arc<dyn SecretStore>,
}

/// The doctor's time limits.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// One request to the server, connection and TLS included.
    pub network: Duration,
    /// One look-up in the OS keychain.
    pub keychain: Duration,
    /// The checks of this computer (disk, databases, queue, processes).
    pub local: Duration,
}

impl Default for Options {
    /// 3 s for the server keeps a black-holed address under the 5 s budget; the local
    /// checks get 1.5 s, so a reachable server answers within the 2 s one.
    fn default() -> Self {
        Self {
            network: Duration::from_secs(3),
            keychain: Duration::from_secs(2),
            local: Duration::from_millis(1500),
        }
    }
}

/// Runs every check, concurrently, each within its time, and reports.
pub fn run(loaded: &LoadedConfig, platform: Platform, options: &Options) -> Report {
    let started = Instant::now();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let finding = Finding::new("check.failed", Level::Warn, "The checks could not start")
                .detail(format!("No thread could be started: {error}."));
            return Report::new(vec![finding], started.elapsed());
        }
    };
    let findings = runtime.block_on(gather(loaded, platform, *options));
    // A look-up stuck in the keychain or the name service is not waited for.
    runtime.shutdown_background();
    Report::new(findings, started.elapsed())
}

async fn gather(loaded: &LoadedConfig, platform: Platform, options: Options) -> Vec<Finding> {
    let settings = loaded.settings.clone();
    // The databases stop their checks a little before their thread is given up on, so a
    // large file is reported as not checked rather than as a check that timed out.
    let deadline = Instant::now() + options.local.saturating_sub(Duration::from_millis(250));
    let thresholds = settings.analytics.insights;
    let skew = server::SkewLimits::from_thresholds(&thresholds);
    let server = bounded(
        "server",
        options.network + Duration::from_millis(500),
        server::check(settings.server_url.clone(), skew, options.network),
    );
    let secrets = platform.secrets;
    let keychain = async move {
        let look = tokio::task::spawn_blocking(move || secrets::check(secrets.as_ref()));
        match tokio::time::timeout(options.keychain, look).await {
            Ok(Ok(finding)) => vec![finding],
            Ok(Err(error)) => vec![check_failed("keychain", &error.to_string())],
            Err(_) => vec![secrets::timed_out(options.keychain)],
        }
    };
    let dir = settings.data_dir.clone();
    let disk = blocking("disk", options.local, move || {
        disk::check(&dir, &thresholds)
    });
    let dir = settings.data_dir.clone();
    let databases = blocking("databases", options.local, move || {
        databases::check(&dir, deadline)
    });
    let dir = settings.data_dir.clone();
    let queue = blocking("queue", options.local, move || {
        queue::summary(&dir, crate::clock::now_ms(), &thresholds)
    });
    let security = settings.security.clone();
    let log_dir = settings.log_dir();
    let webview = platform.webview;
    let device = blocking("device", options.local, move || {
        let policy = crate::security::SecurityPolicy::from_settings(&security);
        let mut found = vec![device::webview(&webview)];
        found.extend(device::displays(&log_dir, policy.one_display));
        found.extend(device::integrity(&policy));
        found
    });
    let dir = settings.data_dir.clone();
    let update_settings = settings.update.clone();
    let update = blocking("update", options.local, move || {
        updates::check(&dir, &update_settings)
    });
    let (server, keychain, disk, databases, queue, device, update) =
        tokio::join!(server, keychain, disk, databases, queue, device, update);
    let mut findings = settings::check(loaded);
    for part in [server, keychain, disk, databases, queue, device, update] {
        findings.extend(part);
    }
    order(findings)
}

/// `findings` in the order of [`GROUPS`] (stable within a group).
fn order(mut findings: Vec<Finding>) -> Vec<Finding> {
    let rank = |f: &Finding| {
        GROUPS
            .iter()
            .position(|(_, areas)| areas.contains(&f.area()))
            .unwrap_or(GROUPS.len())
    };
    findings.sort_by_key(rank);
    findings
}

fn check_failed(check: &str, why: &str) -> Finding {
    Finding::new(
        "check.failed",
        Level::Warn,
        format!("The {check} check could not run"),
    )
    .detail(format!(
        "{why}. Run the doctor again; if it persists, send this report to IT."
    ))
    .with("check", check)
}

fn timed_out(check: &str, after: Duration) -> Finding {
    Finding::new(
        "check.timeout",
        Level::Warn,
        format!("The {check} check did not finish within {:.1} s", after.as_secs_f64()),
    )
    .detail("It was left unfinished so the doctor answers in time. A slow disk or an overloaded computer can cause this; run the doctor again.")
    .with("check", check)
    .with("after_ms", u64::try_from(after.as_millis()).unwrap_or(u64::MAX))
}

/// Runs `work` on a blocking thread, given up after `within`.
async fn blocking(
    check: &'static str,
    within: Duration,
    work: impl FnOnce() -> Vec<Finding> + Send + 'static,
) -> Vec<Finding> {
    match tokio::time::timeout(within, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(findings)) => findings,
        Ok(Err(error)) => vec![check_failed(check, &error.to_string())],
        Err(_) => vec![timed_out(check, within)],
    }
}

/// Runs an async check, given up after `within`.
async fn bounded(
    check: &'static str,
    within: Duration,
    work: impl std::future::Future<Output = Vec<Finding>>,
) -> Vec<Finding> {
    tokio::time::timeout(within, work)
        .await
        .unwrap_or_else(|_| vec![timed_out(check, within)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(level: Level) -> Finding {
        Finding::new("check.failed", level, "x")
    }

    #[test]
    fn the_worst_finding_decides_the_exit_status() {
        let table: &[(&[Level], Level, i32)] = &[
            (&[], Level::Ok, 0),
            (&[Level::Ok], Level::Ok, 0),
            (&[Level::Ok, Level::Info], Level::Info, 0),
            (&[Level::Info, Level::Warn, Level::Ok], Level::Warn, 1),
            (&[Level::Fail, Level::Warn], Level::Fail, 2),
            (&[Level::Ok, Level::Fail, Level::Info], Level::Fail, 2),
        ];
        for (levels, want, code) in table {
            let findings: Vec<Finding> = levels.iter().map(|l| at(*l)).collect();
            let report = Report::new(findings, Duration::ZERO);
            assert_eq!(report.worst, *want, "{levels:?}");
            assert_eq!(report.exit_code(), *code, "{levels:?}");
        }
    }

    #[test]
    fn codes_are_unique_grouped_and_named_as_areas() {
        let mut seen = std::collections::HashSet::new();
        for doc in CODES {
            assert!(seen.insert(doc.code), "{} twice", doc.code);
            let area = doc.code.split('.').next().unwrap_or("");
            assert!(
                GROUPS.iter().any(|(_, areas)| areas.contains(&area)),
                "{} has no group",
                doc.code
            );
            assert!(
                !doc.levels.is_empty() && !doc.meaning.is_empty(),
                "{}",
                doc.code
            );
        }
    }

    #[test]
    fn findings_are_ordered_by_group_and_keep_their_order_within_one() {
        let f = |code: &str| Finding::new(code, Level::Ok, code);
        let ordered = order(vec![
            f("update.status"),
            f("queue.empty"),
            f("server.ok"),
            f("config.sources"),
            f("clock.ok"),
            f("tls.not_used"),
        ]);
        let codes: Vec<&str> = ordered.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "config.sources",
                "server.ok",
                "clock.ok",
                "tls.not_used",
                "queue.empty",
                "update.status"
            ]
        );
    }

    /// Checks that a finding's code is documented with its level (the checks' tests call it).
    pub(crate) fn documented(finding: &Finding) {
        let doc =
            code_doc(&finding.code).unwrap_or_else(|| panic!("{} is not in CODES", finding.code));
        assert!(
            doc.levels.contains(&finding.level),
            "{} at {:?} is documented only at {:?}",
            finding.code,
            finding.level,
            doc.levels
        );
        assert!(!finding.title.is_empty(), "{} has no title", finding.code);
    }
}
