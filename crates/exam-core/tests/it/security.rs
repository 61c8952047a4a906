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
