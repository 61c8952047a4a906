//! Device checks with real processes: a copy of `sleep` renamed like a prohibited program
//! is seen within the 2 s of a check, shown, reported to the real server as a security event
//! of the signed-in student — and it stops an attempt from starting only while it runs,
//! never an attempt in progress.

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_core::app::{Core, CoreBuilder};
use exam_core::bus::CoreEvent;
use exam_core::config::{LoadedConfig, Settings};
use exam_core::exam::{AnswerValue, ExamError};
use exam_core::security::{Category, Code, Confidence};
use exam_core::testing::MemoryStore;

use crate::support::{password, Server};

/// Runs a copy of `sleep` under the file name `name` (a program renamed to look like
/// another, or the real one's file name: the checks see both).
struct Program {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Program {
    fn start(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::copy("/bin/sleep", &path).unwrap();
        let child = Command::new(&path).arg("600").spawn().unwrap();
        Self { child, _dir: dir }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn core_at(server: &Server, dir: &std::path::Path) -> Core {
    CoreBuilder::new(
        LoadedConfig::from_settings(Settings::new(server.url(), dir.to_path_buf())),
        Arc::new(MemoryStore::default()),
    )
    .start()
    .unwrap()
}

/// The security events the server holds for `student`: (type, attrs).
fn server_events(server: &Server, student: &str) -> Vec<(String, serde_json::Value)> {
    let conn = rusqlite::Connection::open(server.db()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT e.type, e.attrs FROM events e JOIN users u ON u.id = e.user_id
             WHERE u.username = ?1 AND e.type LIKE 'security.%' ORDER BY e.rowid",
        )
        .unwrap();
    let rows = stmt
        .query_map([student], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .unwrap()
        .map(|r| {
            let (kind, attrs) = r.unwrap();
            (kind, serde_json::from_str(&attrs).unwrap())
        })
        .collect();
    rows
}

fn until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_control_program_stops_a_start_only_while_it_runs_and_never_an_exam_in_progress() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let core = core_at(&server, dir.path());
    core.sign_in("student15", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    let security = core.services().unwrap().security.clone();
    exams.list().await.unwrap();
    exams.download("demo-mixed").await.unwrap();
    let mut events = core.bus().subscribe();

    // A remote-control program runs: the start is refused, naming it and why.
    let anydesk = Program::start("anydesk");
    let seen_at = Instant::now();
    match exams.start("demo-mixed").await {
        Err(ExamError::DeviceNotReady(findings)) => {
            assert_eq!(findings.len(), 1, "{findings:?}");
            let f = &findings[0];
            assert_eq!(f.code, Code::ProhibitedProgram);
            assert_eq!(f.subject.as_deref(), Some("anydesk"));
            assert_eq!(f.category, Some(Category::RemoteControl));
            assert_eq!(f.confidence, Confidence::High);
            assert!(
                f.evidence.contains(&anydesk.child.id().to_string()),
                "{}",
                f.evidence
            );
        }
        other => panic!("the start should be refused: {other:?}"),
    }
    // The windows are told.
    let told = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Ok(CoreEvent::SecurityChanged { security }) = events.recv().await {
                return security;
            }
        }
    })
    .await
    .expect("the windows are told within 2 s");
    assert!(told
        .findings
        .iter()
        .any(|f| f.subject.as_deref() == Some("anydesk")));
    println!(
        "anydesk seen and shown {:?} after it started",
        seen_at.elapsed()
    );

    // Closed: the start goes on.
    drop(anydesk);
    let view = exams.start("demo-mixed").await.unwrap();

    // During the attempt a meeting app starts, renamed: seen (by its file's name), shown,
    // reported with the attempt — and the exam goes on.
    let zoom = Program::start("zoom");
    until("the finding", Duration::from_secs(3), || {
        security
            .snapshot()
            .findings
            .iter()
            .any(|f| f.subject.as_deref() == Some("zoom"))
    });
    let question = view
        .questions
        .iter()
        .find(|q| q.kind == exam_core::exam::QuestionKind::Short)
        .unwrap()
        .id
        .clone();
    exams
        .save_answer(
            &view.attempt_id,
            &question,
            AnswerValue::Text("still here".into()),
        )
        .unwrap();
    until("the report on the server", Duration::from_secs(20), || {
        server_events(&server, "student15")
            .iter()
            .any(|(kind, attrs)| {
                kind == "security.prohibited_program"
                    && attrs["subject"] == "zoom"
                    && attrs["attempt_id"] == view.attempt_id.as_str()
            })
    });
    drop(zoom);
    until("the finding clears", Duration::from_secs(3), || {
        security
            .snapshot()
            .findings
            .iter()
            .all(|f| f.subject.as_deref() != Some("zoom"))
    });
    until(
        "the clearing on the server",
        Duration::from_secs(20),
        || {
            server_events(&server, "student15")
                .iter()
                .any(|(kind, attrs)| kind == "security.cleared" && attrs["subject"] == "zoom")
        },
    );

    // Everything reported about the student here, for them to read.
    let owner = core.auth().owner().unwrap();
    let reports = security.reports_of(&owner);
    let kinds: Vec<&str> = reports.iter().map(|r| r.event_type.as_str()).collect();
    assert!(kinds.contains(&"security.prohibited_program"), "{kinds:?}");
    assert!(kinds.contains(&"security.cleared"), "{kinds:?}");
    // The attempt was never stopped.
    assert!(exams.current().unwrap().is_some());
    core.shutdown(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_machine_with_the_default_policy_has_no_warning() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let core = core_at(&server, dir.path());
    let security = core.services().unwrap().security.clone();
    let findings = tokio::task::spawn_blocking(move || security.check_now())
        .await
        .unwrap();
    // This CI machine is a virtual machine: that is information, never a warning or a block.
    for f in &findings {
        assert_eq!(
            f.severity,
            exam_core::security::Severity::Info,
            "a warning on a clean machine: {f:?}"
        );
        assert!(!f.blocks_start, "{f:?}");
    }
    println!("findings on this machine: {findings:#?}");
    core.shutdown(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asked_for_the_password_again_the_student_signs_in_and_the_attempt_goes_on() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let core = core_at(&server, dir.path());
    core.sign_in("student16", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.list().await.unwrap();
    let view = exams.start("demo-mixed").await.unwrap();

    // The proctor asks for the password again.
    let status = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/admin/users/student16/step-up",
            server.addr
        ))
        .bearer_auth(crate::support::ADMIN)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&serde_json::json!({"reason": "checking who is at the keyboard"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    // The next request ends the session, saying why.
    let _ = exams.list().await;
    let snapshot = core.auth_snapshot();
    assert!(!snapshot.has_session, "{snapshot:?}");
    assert_eq!(
        snapshot.reason,
        Some(exam_core::reason::Reason::StepUpRequired),
        "{snapshot:?}"
    );
    // The password again: the same attempt goes on.
    core.sign_in("student16", password()).await.unwrap();
    let back = exams.current().unwrap().expect("the attempt is kept");
    assert_eq!(back.attempt_id, view.attempt_id);
    exams
        .save_answer(
            &view.attempt_id,
            &view.questions[2].id,
            AnswerValue::Text("after the password".into()),
        )
        .unwrap();
    core.shutdown(Duration::from_secs(5));
}

/// Refreshes `token` on the server behind the app's back (what a copy of it would do);
/// the successor it got.
async fn refresh_behind_the_apps_back(server: &Server, token: &str) -> String {
    let reply: serde_json::Value = reqwest::Client::new()
        .post(format!("{}oauth/token", server.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", "exam-desktop"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["refresh_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_stay_the_machines_and_a_copied_session_is_reported_as_its_students() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let core = CoreBuilder::new(
        LoadedConfig::from_settings(Settings::new(server.url(), dir.path().to_path_buf())),
        store.clone(),
    )
    .start()
    .unwrap();
    let security = core.services().unwrap().security.clone();
    let check = |security: &exam_core::security::SecurityMonitor| {
        let security = security.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                security.start_refusals();
                security.snapshot().findings
            })
            .await
            .unwrap()
        }
    };
    let has = |findings: &[exam_core::security::Finding], code: Code| {
        findings.iter().find(|f| f.code == code).cloned()
    };

    // Someone guesses passwords at this computer: the fifth failure is a finding.
    for n in 1..=5 {
        let refused = core
            .sign_in(
                &format!("student{}", 20 + n % 2),
                "guess".to_string().into(),
            )
            .await;
        assert!(refused.is_err(), "guess {n}");
        let findings = check(&security).await;
        assert_eq!(
            has(&findings, Code::SignInFailures).is_some(),
            n >= 5,
            "after {n}: {findings:?}"
        );
    }
    let failures = has(&check(&security).await, Code::SignInFailures).unwrap();
    assert_eq!(failures.severity, exam_core::security::Severity::Warning);
    assert!(
        failures.evidence.starts_with("5 failed sign-ins"),
        "{}",
        failures.evidence
    );

    // A student signs in while it still holds: it is not reported as theirs.
    core.sign_in("student22", password()).await.unwrap();
    check(&security).await;
    let owner = core.auth().owner().unwrap();
    assert!(
        security
            .reports_of(&owner)
            .iter()
            .all(|r| r.finding.code != Code::SignInFailures),
        "{:?}",
        security.reports_of(&owner)
    );

    // Their refresh token is copied and used: the server ends the session for reuse, and
    // the app reports it as theirs.
    let stolen = store.refresh_token("student22").unwrap();
    let successor = refresh_behind_the_apps_back(&server, &stolen).await;
    refresh_behind_the_apps_back(&server, &successor).await;
    let ended = core.force_refresh().await;
    assert!(ended.is_err(), "{ended:?}");
    assert_eq!(
        core.auth_snapshot().reason,
        Some(exam_core::reason::Reason::SessionReused)
    );
    let reused = has(&check(&security).await, Code::SessionReused).expect("a finding");
    assert_eq!(reused.subject.as_deref(), Some("student22"));
    assert!(
        security
            .reports_of(&owner)
            .iter()
            .any(|r| r.event_type == "security.session_reused"),
        "{:?}",
        security.reports_of(&owner)
    );
    // Delivered once they sign in again.
    core.sign_in("student22", password()).await.unwrap();
    until(
        "the report of reuse on the server",
        Duration::from_secs(20),
        || {
            server_events(&server, "student22")
                .iter()
                .any(|(kind, _)| kind == "security.session_reused")
        },
    );
    assert!(
        server_events(&server, "student22")
            .iter()
            .all(|(kind, _)| kind != "security.sign_in_failures"),
        "failed sign-ins are nobody's"
    );
    core.shutdown(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_school_ended_early_is_information_for_it() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let core = core_at(&server, dir.path());
    core.sign_in("student23", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.list().await.unwrap();
    // The school ends the session with 15 minutes of the access token's life left.
    let status = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/admin/users/student23/sessions/revoke",
            server.addr
        ))
        .bearer_auth(crate::support::ADMIN)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    let _ = exams.list().await;
    let security = core.services().unwrap().security.clone();
    let findings = tokio::task::spawn_blocking(move || security.check_now())
        .await
        .unwrap();
    let early = findings
        .iter()
        .find(|f| f.code == Code::TokenRefusedEarly)
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert_eq!(early.severity, exam_core::security::Severity::Info);
    assert!(
        early.evidence.starts_with("1 access token(s) refused"),
        "{}",
        early.evidence
    );
    core.shutdown(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_during_an_attempt_reaches_the_server_once_it_is_over() {
    let server = Server::start(900).await;
    let proxy = fault_proxy::FaultProxy::start(server.addr).unwrap();
    let base: url::Url = format!("{}/", proxy.url()).parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let core = CoreBuilder::new(
        LoadedConfig::from_settings(Settings::new(base, dir.path().to_path_buf())),
        Arc::new(MemoryStore::default()),
    )
    .start()
    .unwrap();
    core.sign_in("student24", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.list().await.unwrap();
    let view = exams.start("demo-mixed").await.unwrap();
    let monitor = core.services().unwrap().monitor.clone().unwrap();
    let online = {
        let monitor = monitor.clone();
        move || monitor.status().state == exam_core::network::NetState::Online
    };

    proxy.set_link(fault_proxy::Link::Refuse);
    monitor.probe_now();
    until("an outage", Duration::from_secs(30), || !online());
    std::thread::sleep(Duration::from_secs(2));
    proxy.set_link(fault_proxy::Link::Up);
    monitor.probe_now();
    until("online", Duration::from_secs(30), online.clone());

    let outage = || {
        let conn = rusqlite::Connection::open(server.db()).unwrap();
        conn.query_row(
            "SELECT e.attrs FROM events e JOIN users u ON u.id = e.user_id
             WHERE u.username = 'student24' AND e.type = 'network.outage'",
            [],
            |r| r.get::<_, String>(0),
        )
        .ok()
        .map(|a| serde_json::from_str::<serde_json::Value>(&a).unwrap())
    };
    until("the outage on the server", Duration::from_secs(30), || {
        outage().is_some()
    });
    let attrs = outage().unwrap();
    assert_eq!(attrs["attempt_id"], view.attempt_id.as_str(), "{attrs}");
    assert!(
        ["offline", "server_down"].contains(&attrs["state"].as_str().unwrap()),
        "{attrs}"
    );
    let lasted = attrs["duration_ms"].as_i64().unwrap();
    assert!(lasted >= 2_000, "{attrs}");
    // The proctor reads it in the attempt's timeline.
    let timeline = server
        .admin(&format!("/v1/admin/attempts/{}/timeline", view.attempt_id))
        .await;
    let items = timeline["items"].as_array().unwrap();
    let outage = items
        .iter()
        .find(|i| i["kind"] == "outage")
        .unwrap_or_else(|| panic!("{timeline}"));
    assert!(
        outage["text"].as_str().unwrap().contains(" for "),
        "{outage}"
    );
    // Told once, whatever the checks do next.
    std::thread::sleep(Duration::from_secs(3));
    let conn = rusqlite::Connection::open(server.db()).unwrap();
    let told: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE type = 'network.outage'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(told, 1);
    core.shutdown(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_requests_is_slowed_by_the_server_seen_by_the_app_and_alerted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::config(dir.path().join("server.db"), 900);
    // A tight limit for one student: 10 at once, then one a second.
    config.user_rate = exam_server::RateSpec::new(1.0, 10.0);
    let server = Server::start_at("127.0.0.1:0".parse().unwrap(), config).await;
    let data = tempfile::tempdir().unwrap();
    let core = core_at(&server, data.path());
    core.sign_in("student25", password()).await.unwrap();
    let url = server.url().join("v1/exams").unwrap();
    let mut slowed = 0;
    for _ in 0..30 {
        let response = core
            .auth()
            .send_authorized(|c| c.get(url.clone()))
            .await
            .unwrap();
        if response.status() == 429 {
            slowed += 1;
        }
    }
    assert!(slowed > 0, "the server never slowed the app down");
    // The app sees it…
    let security = core.services().unwrap().security.clone();
    let findings = tokio::task::spawn_blocking(move || {
        security.start_refusals();
        security.snapshot().findings
    })
    .await
    .unwrap();
    let burst = findings
        .iter()
        .find(|f| f.code == Code::RequestBurst)
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert!(
        burst.evidence.contains(&format!("{slowed} time(s)")),
        "{}",
        burst.evidence
    );
    // …and the proctor and IT have the server's alert, once.
    let alerts = server.admin("/v1/admin/alerts?rule=request_burst").await;
    let alerts = alerts["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["username"], "student25");
    core.shutdown(Duration::from_secs(5));
}
