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
    // Nothing of theirs is left in the keychain: neither session nor answer key (the key
    // goes once the receipt has been read back).
    gone_from_keychain(&secrets, "student28").await;
}

/// The app's core on a lab computer whose keychain outlives it (a restart is another call).
fn restartable(server: &Server, dir: &std::path::Path, secrets: &Arc<MemoryStore>) -> Core {
    CoreBuilder::new(
        LoadedConfig::from_settings(Settings::new(server.url(), dir.to_path_buf())),
        secrets.clone(),
    )
    .start()
    .unwrap()
}

/// `student` signs in, starts `demo-mixed` with nothing sent, saves `n` answers, and the app
/// stops; the attempt as it was, and every answer the helper would give.
async fn answered_offline_then_quit(
    core: Core,
    student: &str,
    n: usize,
) -> (AttemptView, Vec<(String, AnswerValue)>) {
    core.sign_in(student, password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.download("demo-mixed").await.unwrap();
    core.sync_pause().unwrap();
    let view = exams.start("demo-mixed").await.unwrap();
    let all = answers(&view, "A");
    for (question, value) in all.iter().take(n) {
        exams
            .save_answer(&view.attempt_id, question, value.clone())
            .unwrap();
    }
    core.shutdown(Duration::from_secs(5));
    (view, all)
}

/// Waits until a restarted app has restored its session from the keychain.
async fn signed_in_again(core: &Core) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !core.auth_snapshot().has_session {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            core.auth_snapshot()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the keychain holds nothing of `student`'s.
async fn gone_from_keychain(secrets: &MemoryStore, student: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while secrets
        .keys()
        .iter()
        .any(|k| k.ends_with(&format!(" {student}")))
    {
        assert!(std::time::Instant::now() < deadline, "{:?}", secrets.keys());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every sealed value on disk (saved answers and queued bodies) with its associated data.
fn sealed_on_disk(dir: &std::path::Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let conn = rusqlite::Connection::open(dir.join(exam_core::store::FILE_NAME)).unwrap();
    let mut out = Vec::new();
    let mut answers = conn
        .prepare(
            "SELECT t.exam_id, a.attempt_id, a.question_id, a.value FROM answers a
             JOIN attempts t ON t.attempt_id = a.attempt_id WHERE a.value IS NOT NULL",
        )
        .unwrap();
    let rows = answers
        .query_map([], |r| {
            let (exam, attempt, question): (String, String, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok((
                format!("answer\0{exam}\0{attempt}\0{question}").into_bytes(),
                r.get::<_, Vec<u8>>(3)?,
            ))
        })
        .unwrap();
    out.extend(rows.map(Result::unwrap));
    let mut queued = conn
        .prepare("SELECT idempotency_key, body FROM queue WHERE body IS NOT NULL")
        .unwrap();
    let rows = queued
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?.into_bytes(), r.get::<_, Vec<u8>>(1)?))
        })
        .unwrap();
    out.extend(rows.map(Result::unwrap));
    out.retain(|(_, value)| exam_core::seal::is_sealed(value));
    out
}

/// Every answer key the keychain holds.
fn keys_in(secrets: &MemoryStore) -> Vec<exam_core::seal::AnswerKey> {
    use exam_core::keychain::SecretStore;
    secrets
        .keys()
        .iter()
        .filter_map(|name| secrets.get(name).unwrap())
        .filter_map(|value| exam_core::seal::AnswerKey::decode(&value).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_cannot_open_the_answers_another_left_here() {
    use exam_core::seal::Sealer;
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let (core, _secrets) = lab_core(&server, dir.path()).await;
    let a = Owner::of(&server.url(), "student25");
    let b = Owner::of(&server.url(), "student26");
    core.sign_in("student25", password()).await.unwrap();
    core.exams().unwrap().download("demo-mixed").await.unwrap();
    core.sync_pause().unwrap();
    let (a_attempt, _) = take_and_submit(&core, "A").await;
    core.sign_out().await;

    core.sign_in("student26", password()).await.unwrap();
    let exams = core.exams().unwrap();
    // Through the app: A's attempt does not exist for B.
    assert!(matches!(
        exams.view(&a_attempt),
        Err(exam_core::exam::ExamError::NotFound(_))
    ));
    assert!(exams.current().unwrap().is_none());
    assert!(core
        .services()
        .unwrap()
        .queue
        .dead_letters_for(&b, 10)
        .unwrap()
        .is_empty());
    // And underneath: B's key (made for B's first save) opens none of A's sealed values.
    exams.download("demo-mixed").await.unwrap();
    take_and_submit(&core, "B").await;
    let b_key = exams.keys().existing(&b).unwrap().expect("B's key");
    let a_key = exams
        .keys()
        .existing(&a)
        .unwrap()
        .expect("A's key, kept for A's waiting work");
    let sealed = sealed_on_disk(dir.path());
    let a_values: Vec<_> = sealed
        .iter()
        .filter(|(ad, value)| a_key.open(ad, value).is_ok())
        .collect();
    assert!(
        a_values.len() > 10,
        "A's answers and queued saves are sealed on disk"
    );
    for (ad, value) in &a_values {
        assert!(b_key.open(ad, value).is_err(), "B's key opened A's data");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_a_student_left_and_their_work_was_delivered_nothing_here_opens_their_answers() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let (core, secrets) = lab_core(&server, dir.path()).await;
    let a = Owner::of(&server.url(), "student29");
    core.sign_in("student29", password()).await.unwrap();
    core.exams().unwrap().download("demo-mixed").await.unwrap();
    // A answers offline and leaves; B signs in; the network returns and A's work is delivered
    // without A.
    core.sync_pause().unwrap();
    let (a_attempt, a_answers) = take_and_submit(&core, "A").await;
    // What someone copying the disk now would get: A's sealed answers and saves.
    let copied = sealed_on_disk(dir.path());
    assert!(copied.len() >= a_answers);
    core.sign_out().await;
    core.sign_in("student30", password()).await.unwrap();
    core.sync_resume().unwrap();
    delivered_for(&core, &a).await;
    let held = admin_attempt(&server, &a_attempt).await;
    assert_eq!(
        held["answers"].as_object().unwrap().len(),
        a_answers,
        "{held}"
    );

    // A's key and credential leave the keychain…
    gone_from_keychain(&secrets, "student29").await;
    assert!(!secrets.keys().iter().any(|k| k == "answer-key"));
    // …and no key left on this computer opens anything sealed on its disk that was A's.
    let keys = keys_in(&secrets);
    for (ad, value) in copied.into_iter().chain(sealed_on_disk(dir.path())) {
        for key in &keys {
            use exam_core::seal::Sealer;
            assert!(
                key.open(&ad, &value).is_err(),
                "a key here still opens a value of A's"
            );
        }
    }
    // A's attempt, answers and exam list are gone from the disk too (a minute's figures of
    // the history may still wait: they hold no answer).
    let conn = rusqlite::Connection::open(dir.path().join(exam_core::store::FILE_NAME)).unwrap();
    let left: i64 = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM attempts WHERE username = 'student29')
                  + (SELECT COUNT(*) FROM exam_list WHERE username = 'student29')
                  + (SELECT COUNT(*) FROM queue WHERE student = 'student29' AND body IS NOT NULL
                                                AND kind <> 'telemetry')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    assert!(core.exams().unwrap().keys().existing(&a).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_key_is_reported_and_nothing_is_changed_until_it_is_back() {
    use exam_core::keychain::SecretStore;
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let start = || restartable(&server, dir.path(), &secrets);
    let a = Owner::of(&server.url(), "student19");
    let (_, all) = answered_offline_then_quit(start(), "student19", 3).await;

    // The keychain loses the key (a profile reset); the app starts again.
    let entry = exam_core::keys::entry_of(&a);
    let kept = secrets.get(&entry).unwrap().unwrap();
    secrets.delete(&entry).unwrap();
    let core = start();
    signed_in_again(&core).await;
    let exams = core.exams().unwrap().clone();
    let sealed_before = exams.keys().sealed_count(&a).unwrap();
    assert!(sealed_before >= 3);
    let view = exams.current().unwrap().expect("the attempt resumes");
    // The view degrades answer by answer; the student and IT are told why.
    assert_eq!(view.unreadable_answers, 3);
    assert!(view.key_missing);
    assert_eq!(view.questions.iter().filter(|q| q.unreadable).count(), 3);
    assert!(view
        .questions
        .iter()
        .filter(|q| !q.unreadable)
        .all(|q| q.answer.is_none()));
    // No new key is made over the old data, and nothing is changed.
    let (question, value) = &all[3];
    match exams.save_answer(&view.attempt_id, question, value.clone()) {
        Err(exam_core::exam::ExamError::Key(exam_core::seal::SealError::KeyMissing { sealed })) => {
            assert_eq!(sealed, sealed_before)
        }
        other => panic!("saved over a lost key: {other:?}"),
    }
    assert!(secrets.get(&entry).unwrap().is_none(), "a new key was made");
    assert_eq!(exams.keys().sealed_count(&a).unwrap(), sealed_before);
    // IT sees it in the diagnostics window.
    let findings: Vec<_> = core
        .health()
        .findings
        .into_iter()
        .map(|f| f.observation)
        .collect();
    assert!(
        findings.contains(&exam_core::auth::health::Observation::AnswerKeyMissing {
            sealed: u32::try_from(sealed_before).unwrap()
        }),
        "{findings:?}"
    );

    // The key comes back (the profile loaded): everything reads again.
    secrets.set(&entry, &kept).unwrap();
    exams.keys().recheck();
    let view = exams.view(&view.attempt_id).unwrap();
    assert_eq!(view.unreadable_answers, 0);
    assert!(!view.key_missing);
    assert_eq!(
        view.questions.iter().filter(|q| q.answer.is_some()).count(),
        3
    );
    exams
        .save_answer(&view.attempt_id, question, value.clone())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_key_of_an_earlier_version_becomes_each_students_own() {
    use exam_core::keychain::SecretStore;
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let start = || restartable(&server, dir.path(), &secrets);
    let a = Owner::of(&server.url(), "student18");
    let (view, _) = answered_offline_then_quit(start(), "student18", 4).await;
    // As an earlier version left it: one key for the OS account.
    let entry = exam_core::keys::entry_of(&a);
    let key = secrets.get(&entry).unwrap().unwrap();
    secrets.delete(&entry).unwrap();
    secrets.set(exam_core::seal::KEYCHAIN_ENTRY, &key).unwrap();

    let core = start();
    signed_in_again(&core).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while secrets
        .get(exam_core::seal::KEYCHAIN_ENTRY)
        .unwrap()
        .is_some()
    {
        assert!(std::time::Instant::now() < deadline, "{:?}", secrets.keys());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        secrets.get(&entry).unwrap().is_some(),
        "{:?}",
        secrets.keys()
    );
    let view = core.exams().unwrap().view(&view.attempt_id).unwrap();
    assert_eq!(view.unreadable_answers, 0);
    assert_eq!(
        view.questions.iter().filter(|q| q.answer.is_some()).count(),
        4
    );
}

/// A database damaged by `damage` (in `dir`): the app starts, sets it aside for IT, works
/// on a new one, and says so.
async fn starts_over_a_damaged_database(damage: impl FnOnce(&std::path::Path)) {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(exam_core::store::FILE_NAME);
    damage(&db);
    let (core, _secrets) = lab_core(&server, dir.path()).await;
    let damaged = core.damaged_database().expect("set aside");
    assert!(
        std::path::Path::new(&damaged.kept_as).exists(),
        "{damaged:?}"
    );
    assert_eq!(
        core.sync_status().unwrap().damaged_database,
        Some(damaged.clone())
    );
    assert!(core.health().findings.iter().any(|f| f.observation
        == exam_core::auth::health::Observation::DatabaseSetAside {
            kept_as: damaged.kept_as.clone()
        }));
    // The exams work on the new database.
    core.sign_in("student17", password()).await.unwrap();
    let exams = core.exams().unwrap();
    assert!(!exams.list().await.unwrap().exams.is_empty());
    let view = exams.start("demo-mixed").await.unwrap();
    let (question, value) = answers(&view, "A").remove(0);
    exams
        .save_answer(&view.attempt_id, &question, value)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_database_file_is_set_aside_and_the_exams_still_work() {
    starts_over_a_damaged_database(|db| std::fs::write(db, vec![0x42; 64 * 1024]).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_database_is_set_aside_and_the_exams_still_work() {
    starts_over_a_damaged_database(|db| {
        let store = exam_core::store::Store::open(db).unwrap();
        store
            .lock()
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
                 INSERT INTO counters SELECT 'filler' || i, i FROM n;
                 CREATE TABLE filler (x BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
                 INSERT INTO filler SELECT randomblob(2000) FROM n;
                 PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .unwrap();
        drop(store);
        let bytes = std::fs::read(db).unwrap();
        std::fs::write(db, &bytes[..bytes.len() / 3]).unwrap();
    })
    .await;
}

/// Every byte of the database files (the database, its WAL).
fn on_disk(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let path = dir.join(format!("{}{suffix}", exam_core::store::FILE_NAME));
        bytes.extend(std::fs::read(path).unwrap_or_default());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answers_digest_is_never_kept_in_clear() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let (core, _secrets) = lab_core(&server, dir.path()).await;
    let a = Owner::of(&server.url(), "student16");
    core.sign_in("student16", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.download("demo-mixed").await.unwrap();
    // Submitted offline: the digest is in the queued submission and on the attempt.
    core.sync_pause().unwrap();
    let (attempt, _) = take_and_submit(&core, "A").await;
    let submission = exams.progress(&attempt).unwrap().submission.unwrap();
    let digest = submission.local_digest.clone();
    assert_eq!(digest.len(), 64, "{submission:?}");
    assert!(
        !contains(&on_disk(dir.path()), &digest),
        "the digest is on disk in clear"
    );
    // Delivered: the receipt's digest (the same) is shown, and still not kept in clear.
    core.sync_resume().unwrap();
    delivered_for(&core, &a).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let receipt = loop {
        let submission = exams.progress(&attempt).unwrap().submission.unwrap();
        if submission.state == SubmissionState::Delivered {
            break submission;
        }
        assert!(std::time::Instant::now() < deadline, "{submission:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(receipt.receipt_digest.as_deref(), Some(digest.as_str()));
    assert_eq!(receipt.local_digest, digest);
    assert!(
        !contains(&on_disk(dir.path()), &digest),
        "the digest is on disk in clear"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_noted_while_a_student_was_signed_in_is_theirs_alone() {
    use exam_core::network::NetState;
    let mut server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let (core, _secrets) = lab_core(&server, dir.path()).await;
    let state = |core: &Core| core.sync_status().unwrap().network.map(|n| n.state);
    let until = |what: NetState| {
        let core = &core;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while state(core) != Some(what) {
                assert!(std::time::Instant::now() < deadline, "never {what:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    until(NetState::Online).await;
    core.sign_in("student11", password()).await.unwrap();
    // The server goes away while A is signed in, and comes back.
    let addr = server.addr;
    let db_dir = server.stop().await.unwrap();
    until(NetState::ServerDown).await;
    let _server = Server::start_at(
        addr,
        crate::support::config(db_dir.path().join("s.db"), 900),
    )
    .await;
    until(NetState::Online).await;
    assert_eq!(
        core.sync_status().unwrap().outages.len(),
        1,
        "A sees the outage"
    );
    // B, at the same computer, does not see A's.
    core.sign_out().await;
    core.sign_in("student10", password()).await.unwrap();
    assert!(core.sync_status().unwrap().outages.is_empty());
}

/// A keychain that takes its time to read (a desktop session still unlocking it at login).
struct SlowToRead {
    inner: Arc<MemoryStore>,
    delay: Duration,
}

impl exam_core::keychain::SecretStore for SlowToRead {
    fn get(
        &self,
        key: &str,
    ) -> Result<Option<exam_core::secret::Secret<String>>, exam_core::keychain::KeychainError> {
        std::thread::sleep(self.delay);
        self.inner.get(key)
    }
    fn set(
        &self,
        key: &str,
        value: &exam_core::secret::Secret<String>,
    ) -> Result<(), exam_core::keychain::KeychainError> {
        self.inner.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), exam_core::keychain::KeychainError> {
        self.inner.delete(key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_keychain_at_start_never_makes_the_signed_in_student_look_departed() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let (core, secrets) = lab_core(&server, dir.path()).await;
    let owner = Owner::of(&server.url(), "student3");
    core.sign_in("student3", password()).await.unwrap();
    core.exams().unwrap().download("demo-mixed").await.unwrap();
    let (attempt, _) = take_and_submit(&core, "A").await;
    delivered_for(&core, &owner).await;
    // Everything of theirs is delivered: only being signed in keeps their key and data here.
    let db = dir.path().join(exam_core::store::FILE_NAME);
    let receipt_read = |db: &std::path::Path| -> bool {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row(
            "SELECT COUNT(*) FROM attempts WHERE attempt_id = ?1 AND receipt_id IS NOT NULL",
            [&attempt],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !receipt_read(&db) {
        assert!(std::time::Instant::now() < deadline, "no receipt read back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    core.shutdown(Duration::from_secs(5));
    drop(core);

    // The app starts again while the keychain answers slowly: the session is restored late.
    let slow = Arc::new(SlowToRead {
        inner: secrets.clone(),
        delay: Duration::from_millis(700),
    });
    let again = CoreBuilder::new(
        LoadedConfig::from_settings(Settings::new(server.url(), dir.path().to_path_buf())),
        slow,
    )
    .start()
    .unwrap();
    signed_in_again(&again).await;
    // Long enough for a look at who left, at start and after the sign-in came back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        secrets.keys().contains(&exam_core::keys::entry_of(&owner)),
        "the signed-in student's answer key was removed: {:?}",
        secrets.keys()
    );
    assert!(
        receipt_read(&db),
        "the signed-in student's attempt was removed"
    );
    again.shutdown(Duration::from_secs(5));
}
