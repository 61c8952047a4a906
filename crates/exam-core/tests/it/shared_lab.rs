//! Shared exam-lab machines: one computer, one OS account, student after student. Every
//! student's work reaches that student's account, and only with their own credentials.

use std::time::Duration;

use exam_core::app::Core;
use exam_core::exam::{AnswerValue, AttemptView, QuestionKind, SubmissionState};
use exam_core::owner::Owner;
use exam_core::sync::SyncConfig;

use std::sync::Arc;

use exam_core::app::CoreBuilder;
use exam_core::config::{LoadedConfig, Settings};
use exam_core::testing::MemoryStore;

use crate::support::{admin_attempt, password, Server};

fn answers(view: &AttemptView, tag: &str) -> Vec<(String, AnswerValue)> {
    view.questions
        .iter()
        .map(|q| {
            let value = match q.kind {
                QuestionKind::Single => AnswerValue::Text(q.options[0].id.clone()),
                QuestionKind::Multiple => {
                    AnswerValue::Choices(q.options.iter().take(2).map(|o| o.id.clone()).collect())
                }
                QuestionKind::Short | QuestionKind::Essay => {
                    AnswerValue::Text(format!("{tag} {}", q.id))
                }
            };
            (q.id.clone(), value)
        })
        .collect()
}

/// Starts `demo-mixed`, answers every question and submits; the attempt's id.
async fn take_and_submit(core: &Core, tag: &str) -> (String, usize) {
    let exams = core.exams().unwrap();
    exams.list().await.unwrap();
    let view = exams.start("demo-mixed").await.unwrap();
    let all = answers(&view, tag);
    for (question, value) in &all {
        exams
            .save_answer(&view.attempt_id, question, value.clone())
            .unwrap();
    }
    exams.submit(&view.attempt_id).unwrap();
    (view.attempt_id, all.len())
}

/// Waits until nothing of `owner`'s is left to send.
async fn delivered_for(core: &Core, owner: &Owner) {
    let queue = core.services().unwrap().queue.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = queue.waiting_by_owner().unwrap();
        if !waiting.iter().any(|(o, _)| o.as_ref() == Some(owner)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{owner}'s work still waits: {waiting:?}; dead letters {:?}",
            queue.dead_letters(10).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn attempts_of(server: &Server, student: &str) -> Vec<String> {
    server
        .admin(&format!("/v1/admin/users/{student}/attempts"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt_id"].as_str().unwrap().to_string())
        .collect()
}

/// The app's core on a lab computer: its keychain kept, so a test can look into it.
async fn lab_core(server: &Server, dir: &std::path::Path) -> (Core, Arc<MemoryStore>) {
    let secrets = Arc::new(MemoryStore::default());
    let settings = Settings::new(server.url(), dir.to_path_buf());
    let core = CoreBuilder::new(LoadedConfig::from_settings(settings), secrets.clone())
        .sync(SyncConfig::default())
        .start()
        .unwrap();
    (core, secrets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_left_when_the_school_ended_the_session_waits_for_its_student_and_is_never_sent_as_the_next(
) {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let (core, secrets) = lab_core(&server, dir.path()).await;
    let a = Owner::of(&server.url(), "student21");
    let b = Owner::of(&server.url(), "student22");
    core.sign_in("student21", password()).await.unwrap();
    core.exams().unwrap().download("demo-mixed").await.unwrap();

    // A answers and submits with nothing sent (as offline); the school ends A's session.
    core.sync_pause().unwrap();
    let (a_attempt, a_answers) = take_and_submit(&core, "A").await;
    assert_eq!(
        server
            .admin_post("/v1/admin/users/student21/sessions/revoke")
            .await,
        200
    );

    // B signs in on the same computer, online, and works.
    core.sign_in("student22", password()).await.unwrap();
    core.sync_resume().unwrap();
    core.exams().unwrap().download("demo-mixed").await.unwrap();
    let (b_attempt, b_answers) = take_and_submit(&core, "B").await;
    delivered_for(&core, &b).await;

    // The server holds all of B's work under B and none of A's.
    assert_eq!(
        attempts_of(&server, "student22").await,
        vec![b_attempt.clone()]
    );
    let b_held = admin_attempt(&server, &b_attempt).await;
    assert_eq!(
        b_held["answers"].as_object().unwrap().len(),
        b_answers,
        "{b_held}"
    );
    assert!(b_held["receipt"]["receipt_id"].is_string(), "{b_held}");
    for (_, answer) in b_held["answers"].as_object().unwrap() {
        let text = answer["value"].as_str().unwrap_or_default();
        assert!(!text.starts_with("A "), "A's answer under B: {b_held}");
    }
    assert!(attempts_of(&server, "student21").await.is_empty());
    // A's work waits here, counted, untouched; the dead credential is gone.
    let waiting = core.services().unwrap().queue.waiting_by_owner().unwrap();
    assert!(
        waiting
            .iter()
            .any(|(o, n)| o.as_ref() == Some(&a) && *n > 0),
        "{waiting:?}"
    );
    assert!(
        !secrets
            .keys()
            .iter()
            .any(|k| k.ends_with("delivery-token student21")),
        "{:?}",
        secrets.keys()
    );
    // B sees none of it.
    assert!(core
        .exams()
        .unwrap()
        .current()
        .unwrap()
        .is_none_or(|v| v.attempt_id != a_attempt));

    // A signs in again: A's attempt, every answer and the submission arrive in A's
    // account, each applied once.
    core.sign_out().await;
    core.sign_in("student21", password()).await.unwrap();
    delivered_for(&core, &a).await;
    assert_eq!(
        attempts_of(&server, "student21").await,
        vec![a_attempt.clone()]
    );
    let a_held = admin_attempt(&server, &a_attempt).await;
    assert_eq!(
        a_held["answers"].as_object().unwrap().len(),
        a_answers,
        "{a_held}"
    );
    assert_eq!(a_held["applied_writes"], a_answers, "{a_held}");
    assert_eq!(
        core.exams()
            .unwrap()
            .progress(&a_attempt)
            .unwrap()
            .submission
            .map(|s| s.state),
        Some(SubmissionState::Delivered)
    );
    assert_eq!(attempts_of(&server, "student22").await, vec![b_attempt]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_a_student_left_reaches_their_account_without_them_while_the_next_student_works() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let (core, secrets) = lab_core(&server, dir.path()).await;
    let a = Owner::of(&server.url(), "student23");
    let b = Owner::of(&server.url(), "student24");
    core.sign_in("student23", password()).await.unwrap();
    core.exams().unwrap().download("demo-mixed").await.unwrap();

    // A submits with nothing sent (as offline) and leaves.
    core.sync_pause().unwrap();
    let (a_attempt, a_answers) = take_and_submit(&core, "A").await;
    core.sign_out().await;
    assert!(secrets
        .keys()
        .iter()
        .any(|k| k.ends_with("delivery-token student23")));

    // B signs in and works; the network returns.
    core.sign_in("student24", password()).await.unwrap();
    core.exams().unwrap().download("demo-mixed").await.unwrap();
    let (b_attempt, b_answers) = take_and_submit(&core, "B").await;
    core.sync_resume().unwrap();
    delivered_for(&core, &b).await;
    delivered_for(&core, &a).await;

    // Each student's work in their own account, each answer applied once.
    assert_eq!(
        attempts_of(&server, "student23").await,
        vec![a_attempt.clone()]
    );
    assert_eq!(
        attempts_of(&server, "student24").await,
        vec![b_attempt.clone()]
    );
    for (attempt, n, tag) in [(&a_attempt, a_answers, "A "), (&b_attempt, b_answers, "B ")] {
        let held = admin_attempt(&server, attempt).await;
        assert_eq!(held["answers"].as_object().unwrap().len(), n, "{held}");
        assert_eq!(held["applied_writes"], n, "{held}");
        assert!(held["receipt"]["receipt_id"].is_string(), "{held}");
        for (_, answer) in held["answers"].as_object().unwrap() {
            if let Some(text) = answer["value"].as_str().filter(|t| t.len() > 2) {
                if text.starts_with("A ") || text.starts_with("B ") {
                    assert!(text.starts_with(tag), "{held}");
                }
            }
        }
    }
    // Delivered: A's credential is gone from this computer (and revoked on the server).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while secrets
        .keys()
        .iter()
        .any(|k| k.ends_with("delivery-token student23"))
    {
        assert!(std::time::Instant::now() < deadline, "{:?}", secrets.keys());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let revocations = server
        .admin("/v1/admin/audit?user=student23&limit=50")
        .await;
    assert!(
        revocations
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "revocation"),
        "{revocations}"
    );
    // B is still signed in and sees only B's.
    assert_eq!(core.auth_snapshot().user.as_deref(), Some("student24"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_filed_under_another_account_is_never_shown_as_delivered() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let (core, _secrets) = lab_core(&server, dir.path()).await;
    core.sign_in("student25", password()).await.unwrap();
    core.exams().unwrap().download("demo-mixed").await.unwrap();
    core.sync_pause().unwrap();
    let (attempt, _) = take_and_submit(&core, "A").await;
    // The server's replies, as a server that files the submission under someone else would
    // send them (the reference server names the right student; this is the client's check).
    let queue = core.services().unwrap().queue.clone();
    let owner = core.auth().owner().unwrap();
    loop {
        let claimed = queue.claim_for(&owner, 50, u64::MAX).unwrap();
        if claimed.is_empty() {
            break;
        }
        let outcomes: Vec<_> = claimed
            .iter()
            .map(|c| {
                let body = if c.path.ends_with("/submit") {
                    serde_json::json!({"receipt_id": "r-1", "student": "student26",
                        "submitted_at": "2026-12-01T10:00:00Z", "answers_digest": "x", "late": false})
                } else {
                    serde_json::json!({"stored": true})
                };
                (
                    c.id,
                    exam_core::queue::Outcome::Done {
                        status: 200,
                        body: body.to_string(),
                    },
                )
            })
            .collect();
        queue.complete(&outcomes).unwrap();
    }
    let exams = core.exams().unwrap();
    exams.reconcile(&attempt).unwrap();
    let submission = exams.progress(&attempt).unwrap().submission.unwrap();
    assert_ne!(
        submission.state,
        SubmissionState::Delivered,
        "{submission:?}"
    );
    assert_eq!(submission.receipt_id, None);
    assert_eq!(
        submission.refusal.and_then(|r| r.code).as_deref(),
        Some("receipt_for_another_account")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_who_walks_away_is_signed_out_outside_an_exam_never_during_one() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::new(server.url(), dir.path().to_path_buf());
    let core = CoreBuilder::new(
        LoadedConfig::from_settings(settings),
        Arc::new(MemoryStore::default()),
    )
    .idle_sign_out(Duration::from_millis(800))
    .start()
    .unwrap();
    core.sign_in("student27", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.download("demo-mixed").await.unwrap();
    let view = exams.start("demo-mixed").await.unwrap();
    // In the middle of an exam nobody is signed out, however long the pause.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(core.auth_snapshot().has_session);
    // Submitted: a student who then walks away is signed out, and the screen says why.
    exams.submit(&view.attempt_id).unwrap();
    core.note_activity();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while core.auth_snapshot().has_session {
        assert!(std::time::Instant::now() < deadline, "still signed in");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        core.auth_snapshot().reason,
        Some(exam_core::reason::Reason::IdleSignOut { minutes: 1 })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quitting_signs_out_unless_an_exam_is_in_progress() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let (core, secrets) = lab_core(&server, dir.path()).await;
    core.sign_in("student28", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.download("demo-mixed").await.unwrap();
    let view = exams.start("demo-mixed").await.unwrap();
    // Quitting in the middle of an exam keeps the session: the next start resumes it.
    assert!(!core.on_quit().await);
    assert!(core.auth_snapshot().has_session);
    // With the exam submitted and delivered, quitting signs the student out.
    exams.submit(&view.attempt_id).unwrap();
    delivered_for(&core, &core.auth().owner().unwrap()).await;
    assert!(core.on_quit().await);
    assert!(!core.auth_snapshot().has_session);
    assert!(
        !secrets.keys().iter().any(|k| k.contains("student28")),
        "{:?}",
        secrets.keys()
    );
}
