//! Readiness before an exam: a card under each downloaded exam that says, line by line,
//! whether this computer is ready for it — the package is here and passes its checks, the
//! server can be reached (or what the start needs without it), the disk has room, the clock
//! agrees with the server's, no prohibited program runs, this app is new enough — and, for
//! each line that is not fine, how to fix it in plain words.
//!
//! The same verdicts, for the machine and each exam package kept on it, go to the server once
//! a day as a `device.readiness` event ([`report`]), so IT can ask which machines are not
//! ready for an exam before it starts.
//!
//! Invariants:
//! - The verdicts are pure functions of gathered facts ([`exam_card`], [`machine_checks`],
//!   [`exam_report`]; a table test), so the card, the report and their tests cannot differ.
//!   Gathering the facts ([`gather`]) is the only I/O, and is bounded: one read of the kept
//!   package, the list, the clock, the disk and the device checks' last findings.
//! - The exam's `min_client_version` is judged by the contract's rule, the one the server
//!   applies to the machines' reports ([`exam_contract::readiness::version_allowed`]).
//! - Each line carries its finding as data (the screen words it in the student's language)
//!   and a plain-English title and fix for the log, IT's tools and the tests.
//! - Nothing here blocks anything: the start keeps its own rules (`ExamService::start`).

pub mod gather;
pub mod report;

use serde::Serialize;

use exam_contract::readiness::{
    version_allowed, CheckReport, ExamReason, ExamReport, VersionCheck,
};
pub use exam_contract::readiness::{Code as ReadinessCode, ReadinessState};

/// Below this much free space (MiB) the disk is full for the card: saving answers may fail.
pub const DISK_FULL_MB: f64 = 100.0;

/// What the machine gives every exam's card, gathered by [`gather`].
#[derive(Debug, Clone, PartialEq)]
pub struct MachineFacts {
    /// The server can be used now (the network monitor's verdict).
    pub online: bool,
    /// Free space (MiB) on the disk of the data folder; none when it cannot be read.
    pub free_mb: Option<f64>,
    /// The server's clock minus this computer's (s), as learnt from the server's `Date`
    /// headers (positive: this computer is behind); none before the first reply.
    pub clock_offset_s: Option<f64>,
    /// Whether the device checks have looked at the running programs.
    pub apps_checked: bool,
    /// Prohibited programs running now: (name, whether the policy refuses a start with it).
    pub prohibited: Vec<(String, bool)>,
    /// Displays the shell counted (none: unknown), and whether that is more than allowed.
    pub displays: Option<u32>,
    pub extra_displays: bool,
    /// Times the OS keychain failed since the app started.
    pub keychain_failures: u32,
    /// The keychain could not be read now, or the signed-in student's answer key is missing
    /// while answers sealed with it are here: why.
    pub keychain_problem: Option<String>,
    /// This app's version.
    pub app_version: String,
}

/// One exam as its card needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExamFacts {
    pub exam_id: String,
    pub package: PackageFact,
    /// Sealed until it opens (from the kept package, else the list).
    pub sealed: bool,
    /// Opened here by the signed-in student already: the start needs neither the network
    /// nor a start code.
    pub opened_here: bool,
    /// The version the server lists now (none: not in the list kept here).
    pub listed_version: Option<u32>,
    /// The exam's `min_client_version` (none: any).
    pub min_client_version: Option<String>,
}

/// The package kept on this computer.
#[derive(Debug, Clone, PartialEq)]
pub enum PackageFact {
    Missing,
    /// Read back and checked (a sealed one as far as it can be before it opens).
    Checked {
        version: u32,
    },
    /// Kept, but it fails the checks now (why, for IT).
    Damaged {
        version: Option<u32>,
        detail: String,
    },
}

impl PackageFact {
    fn version(&self) -> Option<u32> {
        match self {
            Self::Missing => None,
            Self::Checked { version } => Some(*version),
            Self::Damaged { version, .. } => *version,
        }
    }
}

/// When the disk and the clock are worth a look (`[analytics.insights]`, the same numbers
/// the Analytics panel's insights use).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub disk_reserve_mb: f64,
    pub clock_skew_s: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self::from(&crate::analytics::insights::Thresholds::default())
    }
}

impl From<&crate::analytics::insights::Thresholds> for Thresholds {
    fn from(t: &crate::analytics::insights::Thresholds) -> Self {
        Self {
            disk_reserve_mb: t.disk_reserve_bytes / 1_048_576.0,
            clock_skew_s: t.clock_skew_s,
        }
    }
}

/// What a line found, with its figures: the screen words it (English, Vietnamese).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum ReadinessFinding {
    PackageChecked {
        version: u32,
        sealed: bool,
    },
    PackageMissing,
    PackageDamaged {
        detail: String,
    },
    PackageOutdated {
        have: u32,
        current: u32,
        sealed: bool,
    },
    ServerReachable,
    /// Out of reach, and not needed: the exam starts without it (answers are sent later).
    ServerNotNeeded,
    /// Out of reach, and the exam is sealed: the proctor's start code will be needed.
    StartCodeNeeded,
    DiskFree {
        free_mb: f64,
    },
    DiskLow {
        free_mb: f64,
        reserve_mb: f64,
    },
    DiskFull {
        free_mb: f64,
    },
    DiskUnknown,
    /// `offset_s`: the server's clock minus this computer's (positive: behind).
    ClockInStep {
        offset_s: f64,
    },
    ClockOff {
        offset_s: f64,
    },
    ClockUnknown,
    NoProhibitedApps,
    ProhibitedApps {
        programs: Vec<String>,
        blocks_start: bool,
    },
    AppsNotChecked,
    VersionAllowed {
        have: String,
        needed: Option<String>,
    },
    VersionTooOld {
        have: String,
        needed: String,
    },
    VersionUnknown {
        have: String,
        needed: String,
    },
    KeychainWorks,
    KeychainFailed {
        times: u32,
    },
    KeychainBroken {
        detail: String,
    },
    OneDisplay {
        displays: Option<u32>,
    },
    ExtraDisplays {
        displays: u32,
    },
}

/// One line of readiness.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ReadinessLine {
    pub code: ReadinessCode,
    pub state: ReadinessState,
    pub finding: ReadinessFinding,
    /// What it found, in plain English (the log, IT's tools; the screen words `finding`).
    pub title: String,
    /// How to fix it, in plain English; none when it is fine.
    pub fix: Option<String>,
}

/// The readiness card of one downloaded exam.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ExamReadiness {
    pub exam_id: String,
    /// No line fails.
    pub ready: bool,
    pub lines: Vec<ReadinessLine>,
    /// When it was judged (RFC 3339, this computer's clock).
    pub checked_at: String,
}

fn line(
    code: ReadinessCode,
    state: ReadinessState,
    finding: ReadinessFinding,
    title: impl Into<String>,
    fix: Option<&str>,
) -> ReadinessLine {
    ReadinessLine {
        code,
        state,
        finding,
        title: title.into(),
        fix: fix.map(str::to_string),
    }
}

fn mib(mb: f64) -> String {
    if mb >= 1024.0 {
        format!("{:.1} GiB", mb / 1024.0)
    } else {
        format!("{mb:.0} MiB")
    }
}

fn package_line(exam: &ExamFacts) -> ReadinessLine {
    use ReadinessState::*;
    let code = ReadinessCode::Package;
    match &exam.package {
        PackageFact::Missing => line(
            code,
            Fail,
            ReadinessFinding::PackageMissing,
            "The exam is not downloaded to this computer",
            Some("Download it for offline while the network is up."),
        ),
        PackageFact::Damaged { detail, .. } => line(
            code,
            Fail,
            ReadinessFinding::PackageDamaged {
                detail: detail.clone(),
            },
            format!("The copy of the exam on this computer fails its checks: {detail}"),
            Some("Download it again while the network is up; if it still fails, tell IT."),
        ),
        PackageFact::Checked { version } => match exam.listed_version {
            Some(current) if current > *version => line(
                code,
                // A sealed copy of an older version does not open with the proctor's code.
                if exam.sealed && !exam.opened_here {
                    Fail
                } else {
                    Warn
                },
                ReadinessFinding::PackageOutdated {
                    have: *version,
                    current,
                    sealed: exam.sealed,
                },
                format!(
                    "Version {version} of the exam is on this computer; the server has version \
                     {current}"
                ),
                Some("Download the update while the network is up."),
            ),
            _ => line(
                code,
                Ok,
                ReadinessFinding::PackageChecked {
                    version: *version,
                    sealed: exam.sealed,
                },
                if exam.sealed {
                    format!(
                        "Downloaded and checked (version {version}, sealed until the exam opens)"
                    )
                } else {
                    format!("Downloaded and checked (version {version})")
                },
                None,
            ),
        },
    }
}

fn server_line(exam: &ExamFacts, machine: &MachineFacts) -> ReadinessLine {
    use ReadinessState::*;
    let code = ReadinessCode::Server;
    if machine.online {
        return line(
            code,
            Ok,
            ReadinessFinding::ServerReachable,
            "The Exam Bank server can be reached now",
            None,
        );
    }
    if exam.sealed && !exam.opened_here {
        return line(
            code,
            Warn,
            ReadinessFinding::StartCodeNeeded,
            "The Exam Bank server cannot be reached now: at the start, the proctor's start code \
             will be needed",
            Some(
                "Connect to the school network before the exam, or ask your proctor for the \
                 start code at the start.",
            ),
        );
    }
    line(
        code,
        Ok,
        ReadinessFinding::ServerNotNeeded,
        "The Exam Bank server cannot be reached now, and the exam starts without it (answers \
         are sent when the network is back)",
        None,
    )
}

fn disk_line(machine: &MachineFacts, t: &Thresholds) -> ReadinessLine {
    use ReadinessState::*;
    let code = ReadinessCode::Disk;
    match machine.free_mb {
        None => line(
            code,
            Warn,
            ReadinessFinding::DiskUnknown,
            "The free space of this computer's disk cannot be read",
            Some("Ask IT to check the disk that holds the app's data."),
        ),
        Some(free) if free < DISK_FULL_MB => line(
            code,
            Fail,
            ReadinessFinding::DiskFull { free_mb: free },
            format!("Only {} free on this computer's disk", mib(free)),
            Some("Ask IT to free some space: answers may not be saved on a full disk."),
        ),
        Some(free) if free < t.disk_reserve_mb => line(
            code,
            Warn,
            ReadinessFinding::DiskLow {
                free_mb: free,
                reserve_mb: t.disk_reserve_mb,
            },
            format!(
                "{} free on this computer's disk (less than {})",
                mib(free),
                mib(t.disk_reserve_mb)
            ),
            Some("Ask IT to free some space before the exam."),
        ),
        Some(free) => line(
            code,
            Ok,
            ReadinessFinding::DiskFree { free_mb: free },
            format!("{} free on this computer's disk", mib(free)),
            None,
        ),
    }
}

fn clock_line(machine: &MachineFacts, t: &Thresholds) -> ReadinessLine {
    use ReadinessState::*;
    let code = ReadinessCode::Clock;
    match machine.clock_offset_s {
        None => line(
            code,
            Warn,
            ReadinessFinding::ClockUnknown,
            "This computer's clock has not been compared with the server's yet",
            Some("Connect to the school network once before the exam."),
        ),
        Some(off) if off.abs() > t.clock_skew_s => line(
            code,
            Warn,
            ReadinessFinding::ClockOff { offset_s: off },
            format!(
                "This computer's clock is {:.0} s {} the server's",
                off.abs(),
                if off > 0.0 { "behind" } else { "ahead of" }
            ),
            Some(
                "Ask IT to set this computer's clock (time zone and network time). Exam times \
                 follow the server's clock, so no time is lost.",
            ),
        ),
        Some(off) => line(
            code,
            Ok,
            ReadinessFinding::ClockInStep { offset_s: off },
            "This computer's clock agrees with the server's",
            None,
        ),
    }
}

fn apps_line(machine: &MachineFacts) -> ReadinessLine {
    use ReadinessState::*;
    let code = ReadinessCode::ProhibitedApps;
    if !machine.apps_checked {
        return line(
            code,
            Warn,
            ReadinessFinding::AppsNotChecked,
            "The running programs have not been checked yet",
            Some("Wait a few seconds and check again."),
        );
    }
    if machine.prohibited.is_empty() {
        return line(
            code,
            Ok,
            ReadinessFinding::NoProhibitedApps,
            "No prohibited program is running",
            None,
        );
    }
    let programs: Vec<String> = machine.prohibited.iter().map(|p| p.0.clone()).collect();
    let blocks_start = machine.prohibited.iter().any(|p| p.1);
    let names = programs.join(", ");
    line(
        code,
        if blocks_start { Fail } else { Warn },
        ReadinessFinding::ProhibitedApps {
            programs,
            blocks_start,
        },
        format!("Prohibited programs are running: {names}"),
        Some(if blocks_start {
            "Close them before the exam: it cannot start while they run."
        } else {
            "Close them before the exam: your proctor is told while they run."
        }),
    )
}

fn version_line(exam: &ExamFacts, machine: &MachineFacts) -> ReadinessLine {
    use ReadinessState::*;
    let code = ReadinessCode::AppVersion;
    let have = machine.app_version.clone();
    let min = exam
        .min_client_version
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    match version_allowed(&have, min) {
        VersionCheck::Allowed => line(
            code,
            Ok,
            ReadinessFinding::VersionAllowed {
                have: have.clone(),
                needed: min.map(str::to_string),
            },
            match min {
                Some(min) => format!("This app ({have}) is new enough (the exam needs {min})"),
                None => format!("This app ({have}) may take the exam"),
            },
            None,
        ),
        VersionCheck::TooOld => {
            let needed = min.unwrap_or_default().to_string();
            line(
                code,
                Fail,
                ReadinessFinding::VersionTooOld {
                    have: have.clone(),
                    needed: needed.clone(),
                },
                format!("This exam needs version {needed} or newer; this computer has {have}"),
                Some("Ask IT to update the app before the exam."),
            )
        }
        VersionCheck::Unknown => {
            let needed = min.unwrap_or_default().to_string();
            line(
                code,
                Warn,
                ReadinessFinding::VersionUnknown {
                    have: have.clone(),
                    needed: needed.clone(),
                },
                format!(
                    "The exam's minimum app version `{needed}` cannot be compared with this \
                     app's ({have})"
                ),
                Some("Tell IT: the exam's minimum version is not a version."),
            )
        }
    }
}

fn keychain_line(machine: &MachineFacts) -> ReadinessLine {
    use ReadinessState::*;
    let code = ReadinessCode::Keychain;
    if let Some(detail) = &machine.keychain_problem {
        return line(
            code,
            Fail,
            ReadinessFinding::KeychainBroken {
                detail: detail.clone(),
            },
            format!("The OS keychain does not work: {detail}"),
            Some("Ask IT to check this computer's keychain: sign-in and saved answers need it."),
        );
    }
    if machine.keychain_failures > 0 {
        return line(
            code,
            Warn,
            ReadinessFinding::KeychainFailed {
                times: machine.keychain_failures,
            },
            format!(
                "The OS keychain failed {} time(s) since the app started",
                machine.keychain_failures
            ),
            Some("Ask IT to check this computer's keychain."),
        );
    }
    line(
        code,
        Ok,
        ReadinessFinding::KeychainWorks,
        "The OS keychain works",
        None,
    )
}

fn displays_line(machine: &MachineFacts) -> ReadinessLine {
    use ReadinessState::*;
    let code = ReadinessCode::Displays;
    match machine.displays {
        Some(n) if machine.extra_displays => line(
            code,
            Warn,
            ReadinessFinding::ExtraDisplays { displays: n },
            format!("{n} displays are connected; the policy allows one"),
            Some("Unplug the extra displays before the exam."),
        ),
        n => line(
            code,
            Ok,
            ReadinessFinding::OneDisplay { displays: n },
            "The displays are as the policy allows",
            None,
        ),
    }
}

/// The card of one exam: its package, the server, the disk, the clock, prohibited programs
/// and this app's version, in that order.
pub fn exam_card(
    exam: &ExamFacts,
    machine: &MachineFacts,
    t: &Thresholds,
    checked_at: String,
) -> ExamReadiness {
    let lines = vec![
        package_line(exam),
        server_line(exam, machine),
        disk_line(machine, t),
        clock_line(machine, t),
        apps_line(machine),
        version_line(exam, machine),
    ];
    ExamReadiness {
        exam_id: exam.exam_id.clone(),
        ready: lines.iter().all(|l| l.state != ReadinessState::Fail),
        lines,
        checked_at,
    }
}

/// The machine's own lines, for the fleet's report: the disk, the clock, the keychain,
/// prohibited programs and the displays.
pub fn machine_checks(machine: &MachineFacts, t: &Thresholds) -> Vec<ReadinessLine> {
    vec![
        disk_line(machine, t),
        clock_line(machine, t),
        keychain_line(machine),
        apps_line(machine),
        displays_line(machine),
    ]
}

/// A machine line as the report carries it.
pub fn check_report(line: &ReadinessLine) -> CheckReport {
    use ReadinessFinding as F;
    let (value, detail) = match &line.finding {
        F::DiskFree { free_mb } | F::DiskLow { free_mb, .. } | F::DiskFull { free_mb } => {
            (Some(*free_mb), None)
        }
        F::ClockInStep { offset_s } | F::ClockOff { offset_s } => (Some(*offset_s), None),
        F::NoProhibitedApps => (Some(0.0), None),
        F::ProhibitedApps { programs, .. } => {
            (Some(programs.len() as f64), Some(programs.join(", ")))
        }
        F::KeychainFailed { times } => (Some(f64::from(*times)), None),
        F::KeychainBroken { detail } => (None, Some(detail.clone())),
        F::OneDisplay { displays } => (displays.map(f64::from), None),
        F::ExtraDisplays { displays } => (Some(f64::from(*displays)), None),
        _ => (None, None),
    };
    CheckReport {
        code: line.code.as_str().to_string(),
        state: line.state,
        value,
        detail,
    }
}

/// One kept exam as the report carries it: ready when none of its own lines (package,
/// server, version) fails; the reasons of those that are not fine.
pub fn exam_report(exam: &ExamFacts, machine: &MachineFacts) -> ExamReport {
    use ReadinessFinding as F;
    let own = [
        package_line(exam),
        server_line(exam, machine),
        version_line(exam, machine),
    ];
    let reasons = own
        .iter()
        .filter_map(|l| match l.finding {
            F::PackageDamaged { .. } => Some(ExamReason::PackageDamaged),
            F::PackageOutdated { .. } => Some(ExamReason::PackageOutdated),
            F::StartCodeNeeded => Some(ExamReason::StartCodeNeeded),
            F::VersionTooOld { .. } => Some(ExamReason::VersionTooOld),
            F::VersionUnknown { .. } => Some(ExamReason::VersionUnknown),
            _ => None,
        })
        .map(|r| r.as_str().to_string())
        .collect();
    ExamReport {
        exam_id: exam.exam_id.clone(),
        version: exam.package.version(),
        sealed: exam.sealed,
        ready: own.iter().all(|l| l.state != ReadinessState::Fail),
        reasons,
    }
}

#[cfg(test)]
mod tests;
