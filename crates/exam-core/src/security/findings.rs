//! Findings: what was seen, as data — a reason code, the evidence, how sure it is and how
//! much it matters. The student's screen words the code; the evidence is for the proctor
//! and IT. No finding ends an exam in progress; only a program the policy refuses stops an
//! attempt from *starting*, and only while it runs.

use serde::{Deserialize, Serialize};

use super::device::{MachineFacts, NetworkIdentity, ProcessSeen};
use super::policy::{BeforeStart, Category, SecurityPolicy};
use crate::auth::signals::SignalCounts;

/// Why a finding was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename = "SecurityCode")]
pub enum Code {
    /// A program of a prohibited category runs.
    ProhibitedProgram,
    /// More displays than the policy allows.
    ExtraDisplay,
    /// The app runs in a remote session.
    RemoteSession,
    /// The machine's fingerprint changed while a student was signed in.
    FingerprintChanged,
    /// This computer's clock jumped.
    ClockJump,
    /// Firmware or network cards of a virtual machine.
    VirtualMachine,
    /// The CPU reports a hypervisor (also true of ordinary PCs with Hyper-V).
    HypervisorFlag,
    /// Several token refreshes in one minute.
    RefreshStorm,
    /// Requests, refreshes or failures far from this computer's usual for minutes on end.
    UnusualActivity,
    /// Several failed sign-ins on this computer within minutes (about the machine, not
    /// reported as anyone's: the server sees the failures itself).
    SignInFailures,
    /// The server ended a session because its refresh token was used twice: it was copied.
    SessionReused,
    /// Access tokens refused long before their lifetime said.
    TokenRefusedEarly,
    /// The server slowed this app down, or it sent far more requests than an exam needs.
    RequestBurst,
    /// The network this computer uses (its interface or gateway) changed during an attempt.
    NetworkChanged,
}

impl Code {
    /// The event type sent to the server (`security.<code>`).
    pub fn event_type(self) -> &'static str {
        match self {
            Self::ProhibitedProgram => "security.prohibited_program",
            Self::ExtraDisplay => "security.extra_display",
            Self::RemoteSession => "security.remote_session",
            Self::FingerprintChanged => "security.fingerprint_changed",
            Self::ClockJump => "security.clock_jump",
            Self::VirtualMachine => "security.virtual_machine",
            Self::HypervisorFlag => "security.hypervisor_flag",
            Self::RefreshStorm => "security.refresh_storm",
            Self::UnusualActivity => "security.unusual_activity",
            Self::SignInFailures => "security.sign_in_failures",
            Self::SessionReused => "security.session_reused",
            Self::TokenRefusedEarly => "security.token_refused_early",
            Self::RequestBurst => "security.request_burst",
            Self::NetworkChanged => "security.network_changed",
        }
    }

    /// Whether it is about whoever uses the computer, not about a student: kept here and
    /// shown, never reported as the signed-in student's.
    pub fn about_the_machine(self) -> bool {
        matches!(self, Self::SignInFailures)
    }
}

/// Failed sign-ins on this computer within [`crate::auth::signals::WINDOW`] that make a
/// finding (the server locks one username out at five).
pub const SIGN_IN_FAILURES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename = "SecurityConfidence")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename = "SecuritySeverity")]
pub enum Severity {
    /// Reported, shown in the Security panel; nothing to do.
    Info,
    /// The student is told what was seen and what to do.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename = "SecurityFinding")]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    pub confidence: Confidence,
    /// What it is about, for the student's words: a program's name, a number of displays.
    pub subject: Option<String>,
    pub category: Option<Category>,
    /// What was seen, for the proctor and IT (English).
    pub evidence: String,
    /// An attempt may not start while this holds (policy `refuse`).
    pub blocks_start: bool,
}

impl Finding {
    /// What identifies it across scans (the same program seen again is the same finding).
    pub fn key(&self) -> (Code, Option<String>) {
        (self.code, self.subject.clone())
    }
}

/// What the scans feed into the rules.
#[derive(Debug, Clone, Default)]
pub struct Observed<'a> {
    pub processes: &'a [ProcessSeen],
    pub machine: Option<&'a MachineFacts>,
    /// Displays the shell counted (none: unknown).
    pub displays: Option<u32>,
    /// The fingerprint when the student signed in, when it differs from now.
    pub fingerprint_was: Option<&'a str>,
    /// A jump of this computer's clock, in seconds (re-learned server time).
    pub clock_jump_s: Option<i64>,
    /// What sign-in and tokens showed lately.
    pub auth: Option<&'a SignalCounts>,
    /// The network when the attempt in progress started, when it differs from now's.
    pub network_was: Option<(&'a NetworkIdentity, &'a NetworkIdentity)>,
}

/// The rules: every finding of `observed` under `policy`, in a stable order.
pub fn evaluate(policy: &SecurityPolicy, observed: &Observed<'_>) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    for process in observed.processes {
        let mut names = vec![process.name.as_str()];
        if let Some(file) = &process.file {
            names.push(file.as_str());
        }
        let Some((category, program)) = policy.categorise(&names) else {
            continue;
        };
        if findings
            .iter()
            .any(|f| f.code == Code::ProhibitedProgram && f.subject.as_deref() == Some(&program))
        {
            continue;
        }
        let by_name = super::policy::normalise(&process.name) == program
            || program.starts_with(&super::policy::normalise(&process.name));
        findings.push(Finding {
            code: Code::ProhibitedProgram,
            severity: Severity::Warning,
            // Its own name is as sure as it gets; only its file's name: it was renamed.
            confidence: if by_name {
                Confidence::High
            } else {
                Confidence::Medium
            },
            subject: Some(program.clone()),
            category: Some(category),
            evidence: format!(
                "process `{}` (pid {}{}) is {} program `{program}`",
                process.name,
                process.pid,
                process
                    .file
                    .as_deref()
                    .map(|f| format!(", file {f}"))
                    .unwrap_or_default(),
                category.as_str()
            ),
            blocks_start: policy.before_start.get(&category) == Some(&BeforeStart::Refuse),
        });
    }
    if let Some(n) = observed.displays.filter(|n| *n > 1 && policy.one_display) {
        findings.push(Finding {
            code: Code::ExtraDisplay,
            severity: Severity::Warning,
            confidence: Confidence::High,
            subject: Some(n.to_string()),
            category: None,
            evidence: format!("{n} displays are connected; the policy allows one"),
            blocks_start: false,
        });
    }
    if let Some(machine) = observed.machine {
        if let Some(why) = &machine.remote_session {
            findings.push(Finding {
                code: Code::RemoteSession,
                severity: Severity::Warning,
                confidence: Confidence::High,
                subject: None,
                category: None,
                evidence: why.clone(),
                blocks_start: false,
            });
        }
        if !machine.vm_hints.is_empty() {
            findings.push(Finding {
                code: Code::VirtualMachine,
                severity: Severity::Info,
                // Firmware strings and a virtual network card together leave little doubt.
                confidence: if machine.vm_hints.len() > 1 {
                    Confidence::High
                } else {
                    Confidence::Medium
                },
                subject: None,
                category: None,
                evidence: machine
                    .vm_hints
                    .iter()
                    .map(|h| format!("{}: {}", h.source, h.value))
                    .collect::<Vec<_>>()
                    .join("; "),
                blocks_start: false,
            });
        } else if machine.hypervisor_flag {
            findings.push(Finding {
                code: Code::HypervisorFlag,
                severity: Severity::Info,
                confidence: Confidence::Low,
                subject: None,
                category: None,
                evidence: "the CPU reports a hypervisor (also true of PCs with Hyper-V or \
                           virtualisation-based security turned on)"
                    .into(),
                blocks_start: false,
            });
        }
        if let Some(was) = observed
            .fingerprint_was
            .filter(|was| *was != machine.fingerprint)
        {
            findings.push(Finding {
                code: Code::FingerprintChanged,
                severity: Severity::Warning,
                confidence: Confidence::Medium,
                subject: None,
                category: None,
                evidence: format!(
                    "the device fingerprint changed from {was} to {} during the session",
                    machine.fingerprint
                ),
                blocks_start: false,
            });
        }
    }
    if let Some(jump) = observed.clock_jump_s.filter(|s| s.abs() >= 60) {
        findings.push(Finding {
            code: Code::ClockJump,
            severity: Severity::Info,
            confidence: Confidence::High,
            subject: None,
            category: None,
            evidence: format!(
                "this computer's clock jumped by {jump} s; exam times follow the server's clock"
            ),
            blocks_start: false,
        });
    }
    if let Some(auth) = observed.auth {
        if auth.sign_in_failures >= SIGN_IN_FAILURES {
            findings.push(Finding {
                code: Code::SignInFailures,
                severity: Severity::Warning,
                // Forgotten passwords look the same as guesses.
                confidence: Confidence::Medium,
                subject: Some(auth.sign_in_failures.to_string()),
                category: None,
                evidence: format!(
                    "{} failed sign-ins on this computer within {} minutes",
                    auth.sign_in_failures,
                    crate::auth::signals::WINDOW.as_secs() / 60
                ),
                blocks_start: false,
            });
        }
        if let Some(owner) = &auth.reused {
            findings.push(Finding {
                code: Code::SessionReused,
                severity: Severity::Warning,
                confidence: Confidence::High,
                subject: Some(owner.student.clone()),
                category: None,
                evidence: format!(
                    "the server ended {}'s session: its refresh token was used twice (copied)",
                    owner.student
                ),
                blocks_start: false,
            });
        }
        if auth.early_refusals > 0 {
            findings.push(Finding {
                code: Code::TokenRefusedEarly,
                severity: Severity::Info,
                // The school may have ended the session, or the server was restarted.
                confidence: Confidence::Low,
                subject: None,
                category: None,
                evidence: format!(
                    "{} access token(s) refused with up to {} s of their lifetime left",
                    auth.early_refusals, auth.early_by_s
                ),
                blocks_start: false,
            });
        }
        if auth.rate_limited > 0 {
            findings.push(Finding {
                code: Code::RequestBurst,
                severity: Severity::Info,
                confidence: Confidence::High,
                subject: Some("slowed down".into()),
                category: None,
                evidence: format!(
                    "the server asked this app to slow down {} time(s) in the last minute (429)",
                    auth.rate_limited
                ),
                blocks_start: false,
            });
        }
    }
    if let Some((was, now)) = observed.network_was.filter(|(was, now)| was != now) {
        findings.push(Finding {
            code: Code::NetworkChanged,
            severity: Severity::Info,
            // A lab's network rarely changes mid-exam, but a cable or Wi-Fi roam does it too.
            confidence: Confidence::Medium,
            subject: None,
            category: None,
            evidence: format!("the network changed during the attempt: was {was}, now {now}"),
            blocks_start: false,
        });
    }
    // Warnings first, then by code and subject.
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.code.cmp(&b.code))
            .then(a.subject.cmp(&b.subject))
    });
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::device::VmHint;

    fn process(pid: u32, name: &str, file: Option<&str>) -> ProcessSeen {
        ProcessSeen {
            pid,
            name: name.into(),
            file: file.map(str::to_string),
        }
    }

    #[test]
    fn each_rule_gives_its_code_evidence_confidence_and_whether_it_stops_a_start() {
        let policy = SecurityPolicy::default();
        let clean = MachineFacts {
            fingerprint: "f1".into(),
            ..MachineFacts::default()
        };
        let vm = MachineFacts {
            vm_hints: vec![VmHint {
                source: "SMBIOS system vendor".into(),
                value: "QEMU".into(),
            }],
            hypervisor_flag: true,
            fingerprint: "f1".into(),
            ..MachineFacts::default()
        };
        let hyperv_pc = MachineFacts {
            hypervisor_flag: true,
            fingerprint: "f1".into(),
            ..MachineFacts::default()
        };
        let processes = [
            process(10, "bash", Some("/usr/bin/bash")),
            process(11, "anydesk", Some("/usr/bin/anydesk")),
            process(12, "anydesk", Some("/usr/bin/anydesk")), // a second process of it
            process(13, "notes", Some("/tmp/x/zoom")),        // renamed
        ];
        // (what is observed, the findings' (code, subject, confidence, severity, blocks start))
        type Row = (Code, Option<&'static str>, Confidence, Severity, bool);
        let table: Vec<(Observed<'_>, Vec<Row>)> = vec![
            (
                Observed {
                    processes: &processes[..1],
                    machine: Some(&clean),
                    displays: Some(1),
                    ..Observed::default()
                },
                vec![],
            ),
            (
                Observed {
                    processes: &processes,
                    machine: Some(&clean),
                    ..Observed::default()
                },
                vec![
                    (
                        Code::ProhibitedProgram,
                        Some("anydesk"),
                        Confidence::High,
                        Severity::Warning,
                        true,
                    ),
                    (
                        Code::ProhibitedProgram,
                        Some("zoom"),
                        Confidence::Medium,
                        Severity::Warning,
                        false,
                    ),
                ],
            ),
            (
                Observed {
                    machine: Some(&vm),
                    displays: Some(2),
                    ..Observed::default()
                },
                vec![
                    (
                        Code::ExtraDisplay,
                        Some("2"),
                        Confidence::High,
                        Severity::Warning,
                        false,
                    ),
                    (
                        Code::VirtualMachine,
                        None,
                        Confidence::Medium,
                        Severity::Info,
                        false,
                    ),
                ],
            ),
            (
                // An ordinary PC with Hyper-V: a weak hint, information only.
                Observed {
                    machine: Some(&hyperv_pc),
                    ..Observed::default()
                },
                vec![(
                    Code::HypervisorFlag,
                    None,
                    Confidence::Low,
                    Severity::Info,
                    false,
                )],
            ),
            (
                Observed {
                    machine: Some(&clean),
                    fingerprint_was: Some("f0"),
                    clock_jump_s: Some(-3600),
                    ..Observed::default()
                },
                vec![
                    (
                        Code::FingerprintChanged,
                        None,
                        Confidence::Medium,
                        Severity::Warning,
                        false,
                    ),
                    (
                        Code::ClockJump,
                        None,
                        Confidence::High,
                        Severity::Info,
                        false,
                    ),
                ],
            ),
            (
                // The same fingerprint, a clock corrected by seconds: nothing.
                Observed {
                    machine: Some(&clean),
                    fingerprint_was: Some("f1"),
                    clock_jump_s: Some(5),
                    ..Observed::default()
                },
                vec![],
            ),
        ];
        for (observed, expected) in table {
            let found: Vec<Row> = evaluate(&policy, &observed)
                .iter()
                .map(|f| {
                    let subject: Option<&'static str> = f
                        .subject
                        .as_deref()
                        .map(|s| Box::leak(s.to_string().into_boxed_str()) as &'static str);
                    (f.code, subject, f.confidence, f.severity, f.blocks_start)
                })
                .collect();
            assert_eq!(found, expected, "{observed:?}");
        }
        let evidence = &evaluate(
            &policy,
            &Observed {
                processes: &processes[1..2],
                ..Observed::default()
            },
        )[0]
        .evidence;
        assert!(
            evidence.contains("pid 11") && evidence.contains("remote_control"),
            "{evidence}"
        );
    }

    #[test]
    fn sign_in_token_and_network_signals_give_their_findings() {
        use crate::auth::signals::SignalCounts;
        use crate::owner::Owner;
        let policy = SecurityPolicy::default();
        let gateway = |ip: &str, interface: &str| NetworkIdentity {
            interface: interface.into(),
            gateway: ip.parse().unwrap(),
            gateway_mac: None,
        };
        let (lab, lab_again, phone) = (
            gateway("10.0.0.1", "eth0"),
            gateway("10.0.0.1", "eth0"),
            gateway("192.168.43.1", "wlan0"),
        );
        let quiet = SignalCounts::default();
        let guessing = SignalCounts {
            sign_in_failures: 7,
            ..SignalCounts::default()
        };
        let typos = SignalCounts {
            sign_in_failures: 4,
            ..SignalCounts::default()
        };
        let copied = SignalCounts {
            reused: Some(Owner::new("http://exam.test", "student3")),
            early_refusals: 2,
            early_by_s: 840,
            rate_limited: 3,
            ..SignalCounts::default()
        };
        type Row = (Code, Option<&'static str>, Confidence, Severity);
        let table: Vec<(&str, Observed<'_>, Vec<Row>)> = vec![
            (
                "nothing",
                Observed {
                    auth: Some(&quiet),
                    network_was: Some((&lab, &lab_again)),
                    ..Observed::default()
                },
                vec![],
            ),
            (
                "a few typos are no finding",
                Observed {
                    auth: Some(&typos),
                    ..Observed::default()
                },
                vec![],
            ),
            (
                "guessing",
                Observed {
                    auth: Some(&guessing),
                    ..Observed::default()
                },
                vec![(
                    Code::SignInFailures,
                    Some("7"),
                    Confidence::Medium,
                    Severity::Warning,
                )],
            ),
            (
                "a copied session, early refusals, slow-downs",
                Observed {
                    auth: Some(&copied),
                    ..Observed::default()
                },
                vec![
                    (
                        Code::SessionReused,
                        Some("student3"),
                        Confidence::High,
                        Severity::Warning,
                    ),
                    (
                        Code::TokenRefusedEarly,
                        None,
                        Confidence::Low,
                        Severity::Info,
                    ),
                    (
                        Code::RequestBurst,
                        Some("slowed down"),
                        Confidence::High,
                        Severity::Info,
                    ),
                ],
            ),
            (
                "the network changed mid-attempt",
                Observed {
                    network_was: Some((&lab, &phone)),
                    ..Observed::default()
                },
                vec![(
                    Code::NetworkChanged,
                    None,
                    Confidence::Medium,
                    Severity::Info,
                )],
            ),
        ];
        for (what, observed, expected) in table {
            let found: Vec<Row> = evaluate(&policy, &observed)
                .iter()
                .map(|f| {
                    let subject: Option<&'static str> = f
                        .subject
                        .as_deref()
                        .map(|s| Box::leak(s.to_string().into_boxed_str()) as &'static str);
                    (f.code, subject, f.confidence, f.severity)
                })
                .collect();
            assert_eq!(found, expected, "{what}");
            assert!(
                evaluate(&policy, &observed).iter().all(|f| !f.blocks_start),
                "{what}"
            );
        }
        let changed = &evaluate(
            &policy,
            &Observed {
                network_was: Some((&lab, &phone)),
                ..Observed::default()
            },
        )[0];
        assert_eq!(
            changed.evidence,
            "the network changed during the attempt: was eth0 via gateway 10.0.0.1, now wlan0 via gateway 192.168.43.1"
        );
        assert!(
            Code::SignInFailures.about_the_machine() && !Code::SessionReused.about_the_machine()
        );
    }
}
