//! The exam service against the real reference server, through a link the test cuts:
//! download, start offline, answer every kind, restart, deliver, submit, receipt — and a
//! digest mismatch resolved by sending the missing answers again.

use std::sync::Arc;
use std::time::Duration;

use exam_core::auth::TokenManager;
use exam_core::bus::EventBus;
use exam_core::exam::{
    AnswerSaveState, AnswerValue, AttemptView, ExamError, ExamService, QuestionKind,
    SubmissionState,
};
use exam_core::queue::{Limits, Queue};
use exam_core::reason::Reason;
use exam_core::testing::MemoryStore;
use fault_proxy::{FaultProxy, Link};

use crate::support::{admin_attempt, drained, memory_manager, online_engine, password, Server};

struct Client {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    bus: EventBus,
    auth: TokenManager,
    secrets: Arc<MemoryStore>,
    queue: Queue,
    exams: ExamService,
}

impl Client {
    async fn new(base: url::Url) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exam-desktop.db");
        let bus = EventBus::default();
        let auth = memory_manager(base, &bus);
        auth.sign_in("student7", password()).await.unwrap();
        let secrets = Arc::new(MemoryStore::default());
        let queue = Queue::open(&path, Limits::default()).unwrap();
        let exams =
            ExamService::new(queue.clone(), auth.clone(), secrets.clone(), bus.clone()).unwrap();
        Self {
            _dir: dir,
            path,
            bus,
            auth,
            secrets,
            queue,
            exams,
        }
    }

    /// A new process on the same database and keychain (the app killed and started again).
    fn restart(&mut self) {
        self.queue = Queue::open(&self.path, Limits::default()).unwrap();
        self.exams = ExamService::new(
            self.queue.clone(),
            self.auth.clone(),
            self.secrets.clone(),
            self.bus.clone(),
        )
        .unwrap();
    }

    fn engine(&self) -> crate::support::Engine {
        online_engine(&self.queue, &self.auth, &self.bus)
    }

    /// Every byte of the database and its WAL.
    fn disk(&self) -> Vec<u8> {
        let mut bytes = std::fs::read(&self.path).unwrap();
        bytes.extend(std::fs::read(format!("{}-wal", self.path.display())).unwrap_or_default());
        bytes
    }
}

/// An answer for each question: the first option, the first two, or text with Vietnamese.
fn answer_for(view: &AttemptView, n: usize) -> Vec<(String, AnswerValue)> {
    view.questions
        .iter()
        .map(|q| {
            let value = match q.kind {
                QuestionKind::Single => AnswerValue::Text(q.options[n % 2].id.clone()),
                QuestionKind::Multiple => {
                    AnswerValue::Choices(q.options.iter().take(2).map(|o| o.id.clone()).collect())
                }
                QuestionKind::Short => AnswerValue::Text(format!("ngã {n}")),
                QuestionKind::Essay => {
                    AnswerValue::Text(format!("Quê hương tôi có con sông xanh biếc — bản {n}"))
                }
            };
            (q.id.clone(), value)
        })
        .collect()
}

/// Waits until the attempt's submission is delivered (progress reads what the server did).
async fn until_delivered(client: &Client, attempt: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let submission = client.exams.progress(attempt).unwrap().submission;
        if submission
            .as_ref()
            .is_some_and(|s| s.state == SubmissionState::Delivered)
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no receipt: {submission:?}, dead letters {:?}",
            client.queue.dead_letters(10).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exam_taken_offline_survives_a_restart_and_is_delivered_once_with_a_receipt() {
    let server = Server::start(900).await;
    let proxy = FaultProxy::start(server.addr).unwrap();
    let base: url::Url = format!("{}/", proxy.url()).parse().unwrap();
    let mut client = Client::new(base).await;

    // The list, then the package for offline use; asked again, the server says 304.
    let list = client.exams.list().await.unwrap();
    assert!(list.offline_reason.is_none());
    let mixed = list.exams.iter().find(|e| e.id == "demo-mixed").unwrap();
    assert_eq!(mixed.downloaded_version, None);
    let summary = client.exams.download("demo-mixed").await.unwrap();
    assert_eq!(summary.downloaded_version, Some(summary.version));
    client.exams.download("demo-mixed").await.unwrap();
    let stats = server.stats().await;
    let package = &stats["requests"]["GET /v1/exams/{exam_id}/package"];
    assert_eq!(
        (package["200"].as_u64(), package["304"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );

    // The link goes down: the list is the one kept here; the attempt starts anyway.
    proxy.set_link(Link::Refuse);
    let list = client.exams.list().await.unwrap();
    assert!(list.offline_reason.is_some(), "{list:?}");
    assert_eq!(
        list.exams
            .iter()
            .find(|e| e.id == "demo-mixed")
            .unwrap()
            .downloaded_version,
        Some(summary.version)
    );
    let view = client.exams.start("demo-mixed").await.unwrap();
    assert_eq!(view.questions.len(), 20);
    assert!(view.progress.remaining_ms > 0.0);
    assert!(!view.progress.deadline_confirmed);
    let attempt = view.attempt_id.clone();
    // Hostile prompts come through as the text they are.
    assert!(view
        .questions
        .iter()
        .any(|q| q.prompt.contains("<img src=x")));

    // Every question answered twice (the second replaces the first), one flagged.
    for n in 0..2 {
        for (q, value) in answer_for(&view, n) {
            let state = client.exams.save_answer(&attempt, &q, value).unwrap();
            assert_eq!(state.state, AnswerSaveState::Local);
        }
    }
    client
        .exams
        .set_flag(&attempt, &view.questions[3].id, true)
        .unwrap();
    client
        .exams
        .set_current(&attempt, &view.questions[7].id)
        .unwrap();
    // A wrong value is refused with what and where; nothing is saved for it.
    let err = client
        .exams
        .save_answer(
            &attempt,
            &view.questions[0].id,
            AnswerValue::Text("nope".into()),
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ExamError::AnswerRejected(exam_core::exam::AnswerProblem::NotAnOption { option })
                if option == "nope"
        ),
        "{err}"
    );

    // Sealed at rest: no answer text in the database file or its WAL.
    let secret = "Quê hương tôi có con sông xanh biếc".as_bytes();
    assert!(!client.disk().windows(secret.len()).any(|w| w == secret));

    // Killed and started again: same attempt, same question, every answer back.
    client.restart();
    let back = client
        .exams
        .current()
        .unwrap()
        .expect("the attempt to resume");
    assert_eq!(back.attempt_id, attempt);
    assert_eq!(back.resumed_answers, Some(20));
    assert_eq!(
        back.current_question.as_deref(),
        Some(view.questions[7].id.as_str())
    );
    assert!(back.questions[3].flagged);
    let expected = answer_for(&view, 1);
    for (q, (id, value)) in back.questions.iter().zip(&expected) {
        assert_eq!(&q.id, id);
        assert_eq!(q.answer.as_ref(), Some(value), "question {id}");
        assert_eq!(q.save.as_ref().unwrap().state, AnswerSaveState::Local);
    }

    // The link comes back: everything is delivered; the server holds exactly these
    // answers, each applied once (the first round was coalesced away while offline).
    proxy.set_link(Link::Up);
    let engine = client.engine();
    drained(&client.queue, Duration::from_secs(20)).await;
    let progress = client.exams.progress(&attempt).unwrap();
    assert!(progress.deadline_confirmed);
    assert!(progress
        .answers
        .iter()
        .all(|a| a.state == AnswerSaveState::Server && a.saved_server_at.is_some()));
    let held = admin_attempt(&server, &attempt).await;
    for (id, value) in &expected {
        assert_eq!(
            held["answers"][id]["value"],
            serde_json::to_value(value).unwrap(),
            "{id}: {held}"
        );
    }
    assert_eq!(held["applied_writes"], 20, "{held}");

    // Submitted: queued, then delivered with a receipt whose digest is ours.
    let submission = client.exams.submit(&attempt).unwrap();
    assert_eq!(submission.answer_count, 20);
    until_delivered(&client, &attempt).await;
    let done = client.exams.progress(&attempt).unwrap().submission.unwrap();
    assert!(done.receipt_id.is_some());
    assert_eq!(
        done.receipt_digest.as_deref(),
        Some(done.local_digest.as_str())
    );
    // Answers cannot change any more; the attempt can be closed now.
    assert!(client
        .exams
        .save_answer(&attempt, &view.questions[0].id, expected[0].1.clone())
        .is_err());
    client.exams.close(&attempt).unwrap();
    assert!(client.exams.current().unwrap().is_none());
    drop(engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_mismatch_sends_the_missing_answers_again_instead_of_losing_them() {
    let server = Server::start(900).await;
    let client = Client::new(server.url()).await;
    client.exams.list().await.unwrap();
    let view = client.exams.start("demo-mixed").await.unwrap();
    let attempt = view.attempt_id.clone();
    let answers = answer_for(&view, 0);
    for (q, value) in answers.iter().take(5) {
        client
            .exams
            .save_answer(&attempt, q, value.clone())
            .unwrap();
    }
    // One save is marked delivered without ever being sent — as if the server had lost it.
    client.queue.flush().unwrap();
    client
        .queue
        .store()
        .lock()
        .execute(
            "UPDATE queue SET status = 'done', completed_at = 1, response_status = 200
             WHERE id = (SELECT MAX(id) FROM queue WHERE kind = 'answer')",
            [],
        )
        .unwrap();
    client.exams.submit(&attempt).unwrap();
    let engine = client.engine();
    until_delivered(&client, &attempt).await;
    let held = admin_attempt(&server, &attempt).await;
    for (q, value) in answers.iter().take(5) {
        assert_eq!(
            held["answers"][q]["value"],
            serde_json::to_value(value).unwrap()
        );
    }
    // The refused submission is no dead letter: it was dealt with.
    assert!(client.queue.dead_letters(10).unwrap().is_empty());
    drop(engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_download_and_without_the_server_an_exam_cannot_start_and_says_why() {
    let server = Server::start(900).await;
    let proxy = FaultProxy::start(server.addr).unwrap();
    let base: url::Url = format!("{}/", proxy.url()).parse().unwrap();
    let client = Client::new(base).await;
    client.exams.list().await.unwrap();
    proxy.set_link(Link::Refuse);
    let err = client.exams.start("demo-essay").await.unwrap_err();
    assert!(matches!(err, ExamError::NotDownloaded(_)), "{err}");
    assert!(err.to_string().contains("has not been downloaded"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_storage_full_a_save_is_refused_whole_and_the_last_saved_answer_stays() {
    let server = Server::start(900).await;
    let client = Client::new(server.url()).await;
    client.exams.list().await.unwrap();
    let view = client.exams.start("demo-mixed").await.unwrap();
    let attempt = view.attempt_id.clone();
    let essay = &view.questions[3].id;
    client
        .exams
        .save_answer(&attempt, essay, AnswerValue::Text("first draft".into()))
        .unwrap();
    // The quota is reached (as a full disk would be): the next save is refused, saying so.
    client.queue.set_limits(Limits {
        max_entries: 2,
        max_bytes: u64::MAX,
    });
    let err = client
        .exams
        .save_answer(
            &attempt,
            &view.questions[0].id,
            AnswerValue::Text("o1".into()),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExamError::Queue(exam_core::queue::QueueError::Full { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("not queued"), "{err}");
    // Nothing half-written: the refused answer is not kept as saved, the earlier one is.
    let back = client.exams.view(&attempt).unwrap();
    assert_eq!(back.questions[0].answer, None);
    assert_eq!(
        back.questions[3].answer,
        Some(AnswerValue::Text("first draft".into()))
    );
    // Room again: the same save goes through.
    client.queue.set_limits(Limits::default());
    client
        .exams
        .save_answer(
            &attempt,
            &view.questions[0].id,
            AnswerValue::Text("o1".into()),
        )
        .unwrap();
}

/// Submits `attempt` on the server behind the client's back (as from another computer).
async fn submit_elsewhere(auth: &TokenManager, server: &Server, attempt: &str) {
    let url = server
        .url()
        .join(&format!("v1/attempts/{attempt}/submit"))
        .unwrap();
    let submit = |digest: String, count: u64| {
        let url = url.clone();
        move |c: &reqwest::Client| {
            c.post(url.clone())
                .header("Idempotency-Key", format!("elsewhere-{digest}"))
                .json(&serde_json::json!({"answer_count": count, "answers_digest": digest}))
        }
    };
    let first: serde_json::Value = auth
        .send_authorized(submit("0".into(), 0))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let digest = first["answers_digest"].as_str().unwrap().to_string();
    let count = first["answer_count"].as_u64().unwrap();
    let done = auth.send_authorized(submit(digest, count)).await.unwrap();
    assert!(done.status().is_success(), "{}", done.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_answer_is_named_by_its_question_and_exam_and_keeps_the_servers_code() {
    let server = Server::start(900).await;
    let client = Client::new(server.url()).await;
    client.exams.list().await.unwrap();
    let view = client.exams.start("demo-mixed").await.unwrap();
    let attempt = view.attempt_id.clone();
    let answers = answer_for(&view, 0);
    let (first, value) = answers[0].clone();
    client.exams.save_answer(&attempt, &first, value).unwrap();
    let engine = client.engine();
    drained(&client.queue, Duration::from_secs(20)).await;
    submit_elsewhere(&client.auth, &server, &attempt).await;

    // Question 5 is answered after the attempt was closed on the server.
    let (fifth, value) = answers[4].clone();
    client.exams.save_answer(&attempt, &fifth, value).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while engine.progress().refused == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            engine.progress()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let items = client.exams.refused_items(10).unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(item.what, exam_core::exam::RefusedWhat::Answer);
    assert_eq!(item.exam_title.as_deref(), Some(view.title.as_str()));
    assert_eq!(item.question_number, Some(5));
    assert_eq!(item.question_count, Some(view.questions.len() as u32));
    assert_eq!(item.refusal.status, Some(409));
    assert_eq!(item.refusal.code.as_deref(), Some("attempt_closed"));
    // The exam screen knows it too, with the same words.
    let view = client.exams.view(&attempt).unwrap();
    let save = view
        .questions
        .iter()
        .find(|q| q.id == fifth)
        .and_then(|q| q.save.clone())
        .unwrap();
    assert_eq!(save.state, AnswerSaveState::Refused);
    assert_eq!(
        save.refusal.unwrap().code.as_deref(),
        Some("attempt_closed")
    );
    drop(engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_portal_the_exam_list_kept_here_is_shown_with_the_portal_named() {
    let server = Server::start(900).await;
    let proxy = FaultProxy::start(server.addr).unwrap();
    let client = Client::new(format!("{}/", proxy.url()).parse().unwrap()).await;
    let fresh = client.exams.list().await.unwrap();
    assert!(fresh.offline_reason.is_none());
    for portal in [
        fault_proxy::Portal::Redirect,
        fault_proxy::Portal::LoginPage,
    ] {
        proxy.set_link(Link::Portal(portal));
        // The first request may die with the pooled connection the portal cut; the next
        // meets the portal itself. Either way the list kept here is shown.
        let mut reasons = Vec::new();
        for _ in 0..3 {
            let kept = client.exams.list().await.unwrap();
            assert_eq!(kept.exams.len(), fresh.exams.len());
            reasons.push(kept.offline_reason.unwrap());
        }
        // Said as the portal it is (the connection the portal cut may be named first).
        assert!(
            reasons
                .iter()
                .any(|r| matches!(r, Reason::PortalSignIn { .. } | Reason::PortalPage)),
            "{portal:?}: {reasons:?}"
        );
        let download = client.exams.download("demo-mixed").await.unwrap_err();
        assert!(matches!(download, ExamError::Offline(_)), "{download:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_enforces_the_start_window_and_says_why_in_the_list() {
    let server = Server::start(900).await;
    let client = Client::new(server.url()).await;
    let list = client.exams.list().await.unwrap();
    let exam = list.exams.iter().find(|e| e.id == "demo-mixed").unwrap();
    assert_eq!(exam.start_block, None, "{exam:?}");
    client.exams.download("demo-mixed").await.unwrap();
    // As the server will see it after closing time: the list kept here says it closed.
    let closed = "2020-01-01T10:00:00.000Z";
    {
        let store = client.queue.store().clone();
        let conn = store.lock();
        let summary: String = conn
            .query_row(
                "SELECT summary FROM exam_list WHERE exam_id = 'demo-mixed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
        summary["closes_at"] = serde_json::json!(closed);
        conn.execute(
            "UPDATE exam_list SET summary = ?1 WHERE exam_id = 'demo-mixed'",
            [summary.to_string()],
        )
        .unwrap();
    }
    let refused = client.exams.start("demo-mixed").await.unwrap_err();
    assert!(
        matches!(
            &refused,
            ExamError::StartRefused(exam_core::exam::StartBlock::Closed { closes_at }) if closes_at == closed
        ),
        "{refused:?}"
    );
    // Nothing was queued or kept for it.
    assert_eq!(client.queue.remaining().unwrap(), 0);
    assert!(client.exams.current_id().unwrap().is_none());
}
