//! This computer as the app's window and the device checks see it: the webview the window
//! needs, the displays, and the programs the security policy lists.
//!
//! Only what can be known without the app is reported as known. The displays are counted
//! by the app's window, so without it the doctor shows the count the app last wrote to its
//! log, with when, or says it was not checked. Whether the app runs in a remote session is
//! about the app's own session, not the doctor's (IT may well run this over SSH), so it is
//! left to the app.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::{Finding, Level};
use crate::security::findings::{evaluate, Observed};
use crate::security::{BeforeStart, Code, SecurityPolicy, Severity};

/// The webview's finding from what the shell read.
pub fn webview(version: &Result<String, String>) -> Finding {
    let name = if cfg!(windows) {
        "WebView2"
    } else if cfg!(target_os = "macos") {
        "WKWebView"
    } else {
        "WebKitGTK"
    };
    match version {
        Ok(version) => Finding::new("webview.ok", Level::Ok, format!("{name} {version}"))
            .with("webview", name)
            .with("version", version),
        Err(why) => Finding::new(
            "webview.missing",
            Level::Fail,
            format!("{name} cannot be found: the app's window cannot open"),
        )
        .detail(format!(
            "{why}.\nInstall {name} (on Windows: the Evergreen WebView2 Runtime from Microsoft; on \
             Linux: the webkit2gtk-4.1 package), then run the doctor again."
        ))
        .with("webview", name)
        .with("error", why),
    }
}

/// How much of each log file's end is read for the last display count: the app logs a count
/// when it changes, and the log is capped by size, so the end holds the latest.
const LOG_TAIL_BYTES: u64 = 512 * 1024;

/// The last `displays counted` line of the app's logs in `log_dir`: (when, how many).
pub(super) fn last_display_count(log_dir: &Path) -> Option<(String, u32)> {
    let newest_first = std::iter::once(crate::logging::LOG_FILE_NAME.to_string())
        .chain((1..10).map(|n| format!("{}.{n}", crate::logging::LOG_FILE_NAME)));
    for name in newest_first {
        let Ok(mut file) = std::fs::File::open(log_dir.join(name)) else {
            continue;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if file
            .seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))
            .is_err()
        {
            continue;
        }
        let mut tail = Vec::new();
        if file.read_to_end(&mut tail).is_err() {
            continue;
        }
        let text = String::from_utf8_lossy(&tail);
        if let Some(found) = text.lines().rev().find_map(display_count_in) {
            return Some(found);
        }
    }
    None
}

/// (time, count) of a log line `<time>  INFO …: displays counted displays=N`.
fn display_count_in(line: &str) -> Option<(String, u32)> {
    if !line.contains("displays counted") {
        return None;
    }
    let count = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("displays="))?
        .parse()
        .ok()?;
    let at = line.split_whitespace().next()?.to_string();
    Some((at, count))
}

/// The displays' finding.
pub fn displays(log_dir: &Path, one_display: bool) -> Vec<Finding> {
    match last_display_count(log_dir) {
        None => vec![Finding::new(
            "displays.not_checked",
            Level::Info,
            "Displays not checked: the app's window counts them while it runs",
        )
        .detail("Open the app to have them counted; its status window shows the count.")],
        Some((at, n)) if n > 1 && one_display => vec![Finding::new(
            "displays.extra",
            Level::Warn,
            format!("The app last counted {n} displays ({at}); the policy allows one"),
        )
        .detail(
            "Unplug the extra display before an exam, or let IT allow more \
             (security.one_display = false). It is reported, never a reason to stop an exam.",
        )
        .with("displays", n)
        .with("counted_at", at)],
        Some((at, n)) => vec![Finding::new(
            "displays.last_count",
            Level::Info,
            format!(
                "The app last counted {} ({at})",
                if n == 1 {
                    "1 display".to_string()
                } else {
                    format!("{n} displays")
                }
            ),
        )
        .with("displays", n)
        .with("counted_at", at)],
    }
}

/// The device checks that hold without the app: programs running now under the policy, and
/// what the machine is.
pub fn integrity(policy: &SecurityPolicy) -> Vec<Finding> {
    let (processes, _) = crate::security::device::ProcessScanner::new().scan();
    let mut machine = crate::security::device::machine_facts();
    machine.remote_session = None;
    let found = evaluate(
        policy,
        &Observed {
            processes: &processes,
            machine: Some(&machine),
            ..Observed::default()
        },
    );
    integrity_findings(policy, &found, processes.len())
}

/// The device checks' findings in the doctor's terms.
pub(super) fn integrity_findings(
    policy: &SecurityPolicy,
    found: &[crate::security::Finding],
    processes: usize,
) -> Vec<Finding> {
    let listed: usize = policy.programs.values().map(|p| p.len()).sum();
    let mut findings: Vec<Finding> = found
        .iter()
        .map(|f| {
            let code = format!(
                "integrity.{}",
                f.code
                    .event_type()
                    .strip_prefix("security.")
                    .unwrap_or(f.code.event_type())
            );
            let level = if f.blocks_start {
                Level::Fail
            } else {
                match f.severity {
                    Severity::Warning => Level::Warn,
                    Severity::Info => Level::Info,
                }
            };
            let title = match (&f.subject, f.category, f.code) {
                (Some(program), Some(category), _) => {
                    format!(
                        "`{program}` is running ({})",
                        category.as_str().replace('_', " ")
                    )
                }
                (_, _, Code::VirtualMachine) => "This computer looks like a virtual machine".into(),
                (_, _, Code::HypervisorFlag) => "The CPU reports a hypervisor".into(),
                _ => f.evidence.clone(),
            };
            let detail = match f.category.map(|c| policy.before_start.get(&c)) {
                Some(Some(BeforeStart::Refuse)) => format!(
                    "{}.\nNo attempt can start on this computer while it runs (the policy refuses \
                     it); an attempt in progress is never stopped. Close it before the exam — if \
                     you are using it to run this check, that is expected.",
                    f.evidence
                ),
                Some(_) => format!(
                    "{}.\nStudents are warned and it is reported to the proctor; close it before \
                     the exam.",
                    f.evidence
                ),
                None if f.severity == Severity::Info => format!(
                    "{}.\nInformation only: it is reported, and never stops an exam.",
                    f.evidence
                ),
                None => f.evidence.clone(),
            };
            let mut finding = Finding::new(&code, level, title)
                .detail(detail)
                .with("confidence", f.confidence)
                .with("evidence", &f.evidence);
            if let Some(category) = f.category {
                finding = finding.with("category", category);
            }
            if let Some(subject) = &f.subject {
                finding = finding.with("program", subject);
            }
            finding
        })
        .collect();
    if !findings
        .iter()
        .any(|f| f.code == "integrity.prohibited_program")
    {
        findings.insert(
            0,
            Finding::new(
                "integrity.ok",
                Level::Ok,
                format!(
                    "No listed program runs ({processes} processes against {listed} programs in \
                     {} categories)",
                    policy.programs.len()
                ),
            )
            .with("processes", processes)
            .with("listed_programs", listed),
        );
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::tests::documented;
    use crate::security::device::{MachineFacts, ProcessSeen, VmHint};

    #[test]
    fn the_webview_is_named_with_its_version_or_missing() {
        let ok = webview(&Ok("2.44.1".into()));
        assert_eq!(ok.code, "webview.ok");
        assert!(ok.title.ends_with("2.44.1"));
        let missing = webview(&Err("not installed".into()));
        assert_eq!(
            (missing.code.as_str(), missing.level),
            ("webview.missing", Level::Fail)
        );
        documented(&ok);
        documented(&missing);
    }

    #[test]
    fn the_last_display_count_comes_from_the_apps_log_or_is_not_checked() {
        let dir = tempfile::tempdir().unwrap();
        let none = displays(dir.path(), true);
        assert_eq!(none[0].code, "displays.not_checked");
        std::fs::write(
            dir.path().join("exam-desktop.log.1"),
            "2025-05-01T07:00:00.000001Z  INFO exam_desktop: displays counted displays=1\n",
        )
        .unwrap();
        let older = displays(dir.path(), true);
        assert_eq!(older[0].code, "displays.last_count");
        assert_eq!(
            older[0].evidence["counted_at"],
            "2025-05-01T07:00:00.000001Z"
        );
        std::fs::write(
            dir.path().join("exam-desktop.log"),
            "2025-05-01T08:00:00.000001Z  INFO exam_desktop: displays counted displays=2\n\
             2025-05-01T08:00:01.000001Z  INFO exam_core::sync: something else\n",
        )
        .unwrap();
        let two = displays(dir.path(), true);
        assert_eq!(
            (two[0].code.as_str(), two[0].level),
            ("displays.extra", Level::Warn)
        );
        assert_eq!(two[0].evidence["displays"], 2);
        assert_eq!(displays(dir.path(), false)[0].code, "displays.last_count");
        for f in none.iter().chain(&older).chain(&two) {
            documented(f);
        }
    }

    fn seen(pid: u32, name: &str) -> ProcessSeen {
        ProcessSeen {
            pid,
            name: name.into(),
            file: None,
        }
    }

    #[test]
    fn programs_the_policy_refuses_fail_others_warn_and_a_clean_machine_is_ok() {
        let policy = SecurityPolicy::default();
        let machine = MachineFacts {
            vm_hints: vec![VmHint {
                source: "SMBIOS product name".into(),
                value: "KVM".into(),
            }],
            ..MachineFacts::default()
        };
        let processes = [seen(10, "bash"), seen(11, "anydesk"), seen(12, "zoom")];
        let found = evaluate(
            &policy,
            &Observed {
                processes: &processes,
                machine: Some(&machine),
                ..Observed::default()
            },
        );
        let findings = integrity_findings(&policy, &found, processes.len());
        for f in &findings {
            documented(f);
        }
        let got: Vec<(&str, Level)> = findings
            .iter()
            .map(|f| (f.code.as_str(), f.level))
            .collect();
        assert_eq!(
            got,
            [
                ("integrity.prohibited_program", Level::Fail),
                ("integrity.prohibited_program", Level::Warn),
                ("integrity.virtual_machine", Level::Info),
            ]
        );
        assert!(
            findings[0].title.contains("anydesk"),
            "{}",
            findings[0].title
        );
        assert!(findings[0].detail.contains("No attempt can start"));
        let clean = integrity_findings(&policy, &[], 200);
        assert_eq!(clean[0].code, "integrity.ok");
        documented(&clean[0]);
    }

    #[test]
    fn every_device_check_code_without_a_session_is_documented() {
        for code in [
            Code::ProhibitedProgram,
            Code::VirtualMachine,
            Code::HypervisorFlag,
        ] {
            let name = code.event_type().replace("security.", "integrity.");
            assert!(crate::doctor::code_doc(&name).is_some(), "{name}");
        }
    }
}
