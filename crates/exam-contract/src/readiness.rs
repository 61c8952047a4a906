//! Readiness before an exam: what the app and the server must say alike about it.
//!
//! The app judges its own computer — the readiness card under each downloaded exam
//! (`exam_core::exam::readiness`) — and reports its verdicts as a `device.readiness`
//! telemetry event at its start and then daily; the server keeps the latest report of each
//! machine and answers IT's question "which machines are not ready for that exam at that
//! time, and why" from it. Two things must not differ between the two sides, so they live
//! here: the one rule for an exam's `min_client_version` ([`version_allowed`]), and the shape
//! and codes of the report ([`DeviceReadiness`]).
//!
//! Codes travel as strings in the report so that a server keeps (and shows) a code a newer
//! app knows and it does not; the app writes them from [`Code`] and [`ExamReason`] only.

use serde::{Deserialize, Serialize};

/// The event type of a machine's readiness report.
pub const EVENT_TYPE: &str = "device.readiness";

/// How one line of readiness stands: fine, worth a look, or in the way of the exam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum ReadinessState {
    Ok,
    Warn,
    Fail,
}

/// What a line of readiness is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename = "ReadinessCode")]
pub enum Code {
    /// The exam's package is on this computer and passes its checks.
    Package,
    /// The server can be reached now (or what the start needs without it).
    Server,
    /// Free space on the disk that holds the app's data.
    Disk,
    /// This computer's clock against the server's.
    Clock,
    /// Programs the school's policy prohibits, running now.
    ProhibitedApps,
    /// This app's version against the exam's `min_client_version`.
    AppVersion,
    /// The OS keychain (sign-in and the students' answer keys live there).
    Keychain,
    /// More displays than the policy allows.
    Displays,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Package => "package",
            Self::Server => "server",
            Self::Disk => "disk",
            Self::Clock => "clock",
            Self::ProhibitedApps => "prohibited_apps",
            Self::AppVersion => "app_version",
            Self::Keychain => "keychain",
            Self::Displays => "displays",
        }
    }
}

/// Why an exam's own lines are not all fine, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExamReason {
    /// The copy here fails its checks (damaged on disk, or from a bad download).
    PackageDamaged,
    /// The server has a newer version than the copy here.
    PackageOutdated,
    /// This app is older than the exam's `min_client_version`.
    VersionTooOld,
    /// The exam's `min_client_version` cannot be read.
    VersionUnknown,
    /// Sealed, not opened here, and the server out of reach: the proctor's start code will
    /// be needed.
    StartCodeNeeded,
}

impl ExamReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PackageDamaged => "package_damaged",
            Self::PackageOutdated => "package_outdated",
            Self::VersionTooOld => "version_too_old",
            Self::VersionUnknown => "version_unknown",
            Self::StartCodeNeeded => "start_code_needed",
        }
    }
}

/// Whether an app version may take an exam.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionCheck {
    /// No minimum, or the version is at least the minimum.
    Allowed,
    /// The version is below the minimum.
    TooOld,
    /// The minimum or the version is not a version (`MAJOR.MINOR.PATCH`).
    Unknown,
}

/// A version as the contract writes one: semantic versioning, `MAJOR.MINOR.PATCH` with an
/// optional pre-release (`0.2.0-rc.1`, below `0.2.0`); a leading `v` and surrounding blanks
/// are tolerated. None when it is not one.
pub fn parse_version(text: &str) -> Option<semver::Version> {
    let text = text.trim();
    semver::Version::parse(text.strip_prefix('v').unwrap_or(text)).ok()
}

/// The rule for an exam's `min_client_version`: an app of `version` may take the exam when
/// the exam names no minimum (none or blank) or `version` is at least it, by semantic
/// versioning's precedence (build metadata is ignored).
pub fn version_allowed(version: &str, min: Option<&str>) -> VersionCheck {
    let Some(min) = min.map(str::trim).filter(|m| !m.is_empty()) else {
        return VersionCheck::Allowed;
    };
    match (parse_version(version), parse_version(min)) {
        (Some(have), Some(need)) if have.cmp_precedence(&need).is_lt() => VersionCheck::TooOld,
        (Some(_), Some(_)) => VersionCheck::Allowed,
        _ => VersionCheck::Unknown,
    }
}

/// The `attrs` of a `device.readiness` event: one machine's readiness as its app judged it.
/// No student is named in it; the server keeps the latest per `device`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceReadiness {
    /// The machine's device fingerprint (an HMAC of machine identifiers, never a serial).
    pub device: String,
    /// The lab the app is configured with, if any.
    #[serde(default)]
    pub lab: Option<String>,
    pub app_version: String,
    /// When the app judged it (RFC 3339, the app's clock).
    pub checked_at: String,
    /// The machine's own lines (disk, clock, keychain, prohibited programs, displays).
    #[serde(default)]
    pub checks: Vec<CheckReport>,
    /// Every exam package kept on the machine, with its own verdict.
    #[serde(default)]
    pub exams: Vec<ExamReport>,
    /// Work waiting on the machine to be sent (counts only).
    #[serde(default)]
    pub waiting: Waiting,
}

/// One machine-level line of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// A [`Code`], as a string.
    pub code: String,
    pub state: ReadinessState,
    /// Its figure, where it has one: free MiB (`disk`), seconds the clock is off, positive
    /// when behind the server (`clock`), programs running (`prohibited_apps`), displays.
    #[serde(default)]
    pub value: Option<f64>,
    /// What was seen, for IT (English): the programs' names, the keychain's error.
    #[serde(default)]
    pub detail: Option<String>,
}

/// One kept exam package's verdict in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExamReport {
    pub exam_id: String,
    /// The version of the package kept.
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub sealed: bool,
    /// None of the exam's own lines fails.
    pub ready: bool,
    /// [`ExamReason`]s of the lines that are not fine, as strings.
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// Work waiting on a machine: entries to send (telemetry is not work), entries the server
/// refused and kept here for IT, and how many students they belong to — never who.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    #[serde(default)]
    pub items: u32,
    #[serde(default)]
    pub refused: u32,
    #[serde(default)]
    pub students: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_version_rule() {
        use VersionCheck::*;
        let table = [
            ("0.1.0", None, Allowed),
            ("0.1.0", Some(""), Allowed),
            ("0.1.0", Some("  "), Allowed),
            ("0.1.0", Some("0.1.0"), Allowed),
            ("0.1.0", Some("0.2.0"), TooOld),
            ("0.2.0", Some("0.2.0"), Allowed),
            ("0.10.0", Some("0.9.0"), Allowed),
            ("1.0.0", Some("0.99.99"), Allowed),
            ("0.2.0-rc.1", Some("0.2.0"), TooOld),
            ("0.2.0", Some("0.2.0-rc.1"), Allowed),
            ("0.2.0+build.7", Some("0.2.0"), Allowed),
            ("0.2.0", Some("v0.2.0"), Allowed),
            ("0.1.0", Some("0.2"), Unknown),
            ("0.1.0", Some("soon"), Unknown),
            ("garbage", Some("0.2.0"), Unknown),
        ];
        for (version, min, want) in table {
            assert_eq!(version_allowed(version, min), want, "{version} vs {min:?}");
        }
    }

    #[test]
    fn a_report_reads_back_and_an_older_or_newer_one_still_reads() {
        let report = DeviceReadiness {
            device: "d1".into(),
            lab: Some("Phòng máy 3".into()),
            app_version: "0.1.0".into(),
            checked_at: "2026-12-01T08:00:00.000Z".into(),
            checks: vec![CheckReport {
                code: Code::Disk.as_str().into(),
                state: ReadinessState::Warn,
                value: Some(400.0),
                detail: None,
            }],
            exams: vec![ExamReport {
                exam_id: "e1".into(),
                version: Some(2),
                sealed: true,
                ready: false,
                reasons: vec![ExamReason::VersionTooOld.as_str().into()],
            }],
            waiting: Waiting {
                items: 3,
                refused: 0,
                students: 1,
            },
        };
        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(json["checks"][0]["state"], "warn");
        assert_eq!(json["exams"][0]["reasons"][0], "version_too_old");
        let back: DeviceReadiness = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, report);
        // Fields a newer app adds are ignored; ones an older app lacks default.
        let lean: DeviceReadiness = serde_json::from_value(serde_json::json!({
            "device": "d2", "app_version": "0.1.0", "checked_at": "2026-12-01T08:00:00Z",
            "future": {"x": 1}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(lean.checks.is_empty() && lean.exams.is_empty());
        assert_eq!(lean.waiting, Waiting::default());
    }
}
