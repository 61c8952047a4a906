//! The readiness verdicts as tables: facts in, lines out.
#![allow(clippy::unwrap_used)]

use super::*;
use ReadinessState::{Fail, Ok, Warn};

fn machine() -> MachineFacts {
    MachineFacts {
        online: true,
        free_mb: Some(20_000.0),
        clock_offset_s: Some(0.4),
        apps_checked: true,
        prohibited: Vec::new(),
        displays: Some(1),
        extra_displays: false,
        keychain_failures: 0,
        keychain_problem: None,
        app_version: "0.1.0".into(),
    }
}

fn exam() -> ExamFacts {
    ExamFacts {
        exam_id: "midterm".into(),
        package: PackageFact::Checked { version: 2 },
        sealed: true,
        opened_here: false,
        listed_version: Some(2),
        min_client_version: None,
    }
}

const T: Thresholds = Thresholds {
    disk_reserve_mb: 512.0,
    clock_skew_s: 60.0,
};

/// The states of the card's six lines: package, server, disk, clock, programs, version.
fn states(card: &ExamReadiness) -> Vec<(ReadinessCode, ReadinessState)> {
    card.lines.iter().map(|l| (l.code, l.state)).collect()
}

type Change = Box<dyn Fn(&mut ExamFacts, &mut MachineFacts)>;
/// (case, change, the line it is about, its state, words in its title, words in its fix)
type Case = (
    &'static str,
    Change,
    ReadinessCode,
    ReadinessState,
    &'static str,
    Option<&'static str>,
);

#[test]
fn each_line_says_what_it_found_and_how_to_fix_it() {
    let table: Vec<Case> = vec![
        (
            "everything fine",
            Box::new(|_, _| {}),
            ReadinessCode::Package,
            Ok,
            "Downloaded and checked (version 2, sealed until the exam opens)",
            None,
        ),
        (
            "not downloaded",
            Box::new(|e, _| e.package = PackageFact::Missing),
            ReadinessCode::Package,
            Fail,
            "not downloaded",
            Some("Download it for offline"),
        ),
        (
            "the copy fails its checks",
            Box::new(|e, _| {
                e.package = PackageFact::Damaged {
                    version: Some(2),
                    detail: "its nonce has 3 bytes, not 24".into(),
                }
            }),
            ReadinessCode::Package,
            Fail,
            "fails its checks: its nonce has 3 bytes",
            Some("Download it again"),
        ),
        (
            "an older sealed copy",
            Box::new(|e, _| e.listed_version = Some(3)),
            ReadinessCode::Package,
            Fail,
            "Version 2 of the exam is on this computer; the server has version 3",
            Some("Download the update"),
        ),
        (
            "an older copy in clear",
            Box::new(|e, _| {
                e.sealed = false;
                e.listed_version = Some(3);
            }),
            ReadinessCode::Package,
            Warn,
            "the server has version 3",
            Some("Download the update"),
        ),
        (
            "offline, sealed and not opened: the start code",
            Box::new(|_, m| m.online = false),
            ReadinessCode::Server,
            Warn,
            "the proctor's start code will be needed",
            Some("ask your proctor for the start code"),
        ),
        (
            "offline, opened here already: nothing needed",
            Box::new(|e, m| {
                m.online = false;
                e.opened_here = true;
            }),
            ReadinessCode::Server,
            Ok,
            "the exam starts without it",
            None,
        ),
        (
            "offline, in clear: nothing needed",
            Box::new(|e, m| {
                m.online = false;
                e.sealed = false;
            }),
            ReadinessCode::Server,
            Ok,
            "cannot be reached now, and the exam starts without it",
            None,
        ),
        (
            "disk low",
            Box::new(|_, m| m.free_mb = Some(300.0)),
            ReadinessCode::Disk,
            Warn,
            "300 MiB free on this computer's disk (less than 512 MiB)",
            Some("free some space"),
        ),
        (
            "disk full",
            Box::new(|_, m| m.free_mb = Some(42.0)),
            ReadinessCode::Disk,
            Fail,
            "Only 42 MiB free",
            Some("answers may not be saved"),
        ),
        (
            "disk unknown",
            Box::new(|_, m| m.free_mb = None),
            ReadinessCode::Disk,
            Warn,
            "cannot be read",
            Some("Ask IT"),
        ),
        (
            "disk plenty",
            Box::new(|_, _| {}),
            ReadinessCode::Disk,
            Ok,
            "19.5 GiB free",
            None,
        ),
        (
            "clock ten minutes behind",
            Box::new(|_, m| m.clock_offset_s = Some(600.0)),
            ReadinessCode::Clock,
            Warn,
            "600 s behind the server's",
            Some("so no time is lost"),
        ),
        (
            "clock ahead",
            Box::new(|_, m| m.clock_offset_s = Some(-90.0)),
            ReadinessCode::Clock,
            Warn,
            "90 s ahead of the server's",
            Some("set this computer's clock"),
        ),
        (
            "clock never compared",
            Box::new(|_, m| m.clock_offset_s = None),
            ReadinessCode::Clock,
            Warn,
            "not been compared",
            Some("Connect to the school network once"),
        ),
        (
            "a program the policy refuses",
            Box::new(|_, m| m.prohibited = vec![("anydesk".into(), true), ("zoom".into(), false)]),
            ReadinessCode::ProhibitedApps,
            Fail,
            "Prohibited programs are running: anydesk, zoom",
            Some("it cannot start while they run"),
        ),
        (
            "a program reported only",
            Box::new(|_, m| m.prohibited = vec![("zoom".into(), false)]),
            ReadinessCode::ProhibitedApps,
            Warn,
            "running: zoom",
            Some("your proctor is told"),
        ),
        (
            "programs not checked yet",
            Box::new(|_, m| m.apps_checked = false),
            ReadinessCode::ProhibitedApps,
            Warn,
            "not been checked yet",
            Some("check again"),
        ),
        (
            "too old for the exam",
            Box::new(|e, _| e.min_client_version = Some("0.2.0".into())),
            ReadinessCode::AppVersion,
            Fail,
            "This exam needs version 0.2.0 or newer; this computer has 0.1.0",
            Some("Ask IT to update the app"),
        ),
        (
            "new enough",
            Box::new(|e, _| e.min_client_version = Some("0.1.0".into())),
            ReadinessCode::AppVersion,
            Ok,
            "is new enough (the exam needs 0.1.0)",
            None,
        ),
        (
            "a minimum that is not a version",
            Box::new(|e, _| e.min_client_version = Some("next term".into())),
            ReadinessCode::AppVersion,
            Warn,
            "cannot be compared",
            Some("Tell IT"),
        ),
    ];
    for (case, change, code, state, title, fix) in table {
        let (mut e, mut m) = (exam(), machine());
        change(&mut e, &mut m);
        let card = exam_card(&e, &m, &T, "2026-12-01T08:00:00.000Z".into());
        let line = card.lines.iter().find(|l| l.code == code).unwrap();
        assert_eq!(line.state, state, "{case}: {line:?}");
        assert!(line.title.contains(title), "{case}: {}", line.title);
        match (fix, &line.fix) {
            (Some(words), Some(got)) => assert!(got.contains(words), "{case}: {got}"),
            (None, None) => {}
            (want, got) => panic!("{case}: fix {got:?}, want {want:?}"),
        }
        // A red line makes the exam not ready; nothing else does.
        assert_eq!(
            card.ready,
            card.lines.iter().all(|l| l.state != Fail),
            "{case}"
        );
        // Every line that is not fine says how to fix it.
        for l in &card.lines {
            assert_eq!(l.fix.is_some(), l.state != Ok, "{case}: {l:?}");
        }
    }
}

#[test]
fn the_card_has_its_six_lines_in_order() {
    let card = exam_card(&exam(), &machine(), &T, "t".into());
    assert!(card.ready);
    assert_eq!(
        states(&card),
        [
            (ReadinessCode::Package, Ok),
            (ReadinessCode::Server, Ok),
            (ReadinessCode::Disk, Ok),
            (ReadinessCode::Clock, Ok),
            (ReadinessCode::ProhibitedApps, Ok),
            (ReadinessCode::AppVersion, Ok),
        ]
    );
}

#[test]
fn the_report_carries_the_machine_and_each_kept_exam() {
    let mut m = machine();
    m.free_mb = Some(300.0);
    m.prohibited = vec![("anydesk".into(), true)];
    m.displays = Some(2);
    m.extra_displays = true;
    m.keychain_failures = 2;
    let checks: Vec<_> = machine_checks(&m, &T).iter().map(check_report).collect();
    let shown: Vec<(&str, ReadinessState, Option<f64>)> = checks
        .iter()
        .map(|c| (c.code.as_str(), c.state, c.value))
        .collect();
    assert_eq!(
        shown,
        [
            ("disk", Warn, Some(300.0)),
            ("clock", Ok, Some(0.4)),
            ("keychain", Warn, Some(2.0)),
            ("prohibited_apps", Fail, Some(1.0)),
            ("displays", Warn, Some(2.0)),
        ]
    );
    assert_eq!(checks[3].detail.as_deref(), Some("anydesk"));
    m.keychain_problem = Some("the Secret Service is locked".into());
    let keychain = check_report(&machine_checks(&m, &T)[2]);
    assert_eq!(keychain.state, Fail);
    assert_eq!(
        keychain.detail.as_deref(),
        Some("the Secret Service is locked")
    );

    // An exam's own lines only (the machine's are reported once).
    let mut e = exam();
    e.min_client_version = Some("0.2.0".into());
    e.listed_version = Some(3);
    let mut offline = machine();
    offline.online = false;
    offline.free_mb = Some(1.0);
    let r = exam_report(&e, &offline);
    assert!(!r.ready);
    assert_eq!(
        r.reasons,
        ["package_outdated", "start_code_needed", "version_too_old"]
    );
    assert_eq!((r.version, r.sealed), (Some(2), true));
    let fine = exam_report(&exam(), &offline);
    assert!(fine.ready, "a start code is needed, nothing fails");
    assert_eq!(fine.reasons, ["start_code_needed"]);
}
