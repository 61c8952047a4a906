//! A sealed exam taken with the app's core against the real reference server: downloaded
//! ahead and unreadable on this computer until it opens, opened online with the key or in a
//! room without a network with the start code, resumed after a restart with neither, and
//! refused — naming the exam and why, the package kept — when what is here does not open.

use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_core::app::{Core, CoreBuilder};
use exam_core::config::{LoadedConfig, Settings};
use exam_core::exam::SubmissionState;
use exam_core::exam::{AnswerValue, AttemptView, ExamError, Opening, QuestionKind, StartBlock};
use exam_core::testing::MemoryStore;

use crate::support::{admin_attempt, config, password, start_code, Server};

/// The app's core on `dir`, its keychain `secrets` (kept across restarts).
fn core_at(server: &url::Url, dir: &std::path::Path, secrets: &Arc<MemoryStore>) -> Core {
    CoreBuilder::new(
        LoadedConfig::from_settings(Settings::new(server.clone(), dir.to_path_buf())),
        secrets.clone(),
    )
    .start()
    .unwrap()
}

/// Every byte of the client's database, its WAL and its journal, as they are on disk.
fn on_disk(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with(exam_core::store::FILE_NAME) {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Words of the sealed demo exams' questions (their prompts and options).
const QUESTION_WORDS: [&str; 4] = [
    "What is 7",
    "closest to the Sun",
    "Mercury",
    "Carbon dioxide",
];

fn no_question_in_clear(dir: &std::path::Path, when: &str) {
    let disk = on_disk(dir);
    for words in QUESTION_WORDS {
        assert!(
            !contains(&disk, words),
            "{when}: `{words}` is on disk in clear"
        );
    }
}

fn answers(view: &AttemptView) -> Vec<(String, AnswerValue)> {
    view.questions
        .iter()
        .map(|q| {
            let value = match q.kind {
                QuestionKind::Single => AnswerValue::Text(q.options[1].id.clone()),
                QuestionKind::Multiple => AnswerValue::Choices(vec![q.options[0].id.clone()]),
                QuestionKind::Short | QuestionKind::Essay => {
                    AnswerValue::Text(format!("sealed answer to {}", q.id))
                }
            };
            (q.id.clone(), value)
        })
        .collect()
}

async fn signed_in_again(core: &Core) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !core.auth_snapshot().has_session {
        assert!(Instant::now() < deadline, "{:?}", core.auth_snapshot());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kept_package(dir: &std::path::Path, exam: &str) -> (u32, bool, String) {
    let conn = rusqlite::Connection::open(dir.join(exam_core::store::FILE_NAME)).unwrap();
    conn.query_row(
        "SELECT version, sealed, package FROM exam_packages WHERE exam_id = ?1",
        [exam],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_exam_downloaded_ahead_opens_offline_with_the_start_code_and_resumes_with_neither_network_nor_code(
) {
    let mut server = Server::start(900).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let core = core_at(&url, dir.path(), &secrets);
    core.sign_in("student5", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();

    // The list says which exams are sealed, when each opens, and what the start will need.
    let list = exams.list().await.unwrap();
    let soon = list
        .exams
        .iter()
        .find(|e| e.id == "demo-sealed-soon")
        .unwrap();
    assert!(soon.sealed);
    assert!(soon.opens_in_ms.is_some_and(|ms| ms > 60_000.0), "{soon:?}");
    assert_eq!(soon.opening, Opening::KeyOrStartCode);
    assert!(matches!(
        soon.start_block,
        Some(StartBlock::NotYetOpen { .. })
    ));
    let tomorrow = list
        .exams
        .iter()
        .find(|e| e.id == "demo-sealed-tomorrow")
        .unwrap();
    // Downloadable from the seeding on (give or take the server's clock as learnt here).
    assert!(
        tomorrow
            .download_from
            .as_deref()
            .and_then(exam_core::clock::parse_ms)
            .is_none_or(|from| from < exam_core::clock::now_ms() + 2_000),
        "{tomorrow:?}"
    );

    // Downloaded ahead: nothing of the questions is on this computer in clear.
    let ahead = exams.download("demo-sealed-soon").await.unwrap();
    assert_eq!(ahead.downloaded_version, Some(1));
    assert!(ahead.sealed);
    exams.download("demo-sealed-tomorrow").await.unwrap();
    let open = exams.download("demo-sealed-open").await.unwrap();
    assert_eq!(open.opening, Opening::KeyOrStartCode);
    no_question_in_clear(dir.path(), "downloaded ahead");
    assert!(matches!(
        exams.start("demo-sealed-soon").await,
        Err(ExamError::StartRefused(StartBlock::NotYetOpen { .. }))
    ));

    // The room has no network. The proctor reads out the start code.
    let code = start_code(&server, "demo-sealed-open").await;
    let other = start_code(&server, "demo-sealed-tomorrow").await;
    let addr = server.addr;
    let server_dir = server.stop().await.unwrap();
    match exams.start("demo-sealed-open").await {
        Err(ExamError::StartCodeNeeded { exam_id, title }) => {
            assert_eq!(exam_id, "demo-sealed-open");
            assert_eq!(title, "Sealed exam — open now");
        }
        other => panic!("the start code should be asked for: {other:?}"),
    }
    // Another exam's code does not open it, says so, and costs no wait the first time.
    match exams.start_with_code("demo-sealed-open", &other).await {
        Err(ExamError::StartCodeRefused {
            exam_id,
            retry_in_ms,
            ..
        }) => {
            assert_eq!(exam_id, "demo-sealed-open");
            assert_eq!(retry_in_ms, 0);
        }
        other => panic!("another exam's code must not open it: {other:?}"),
    }
    assert!(
        kept_package(dir.path(), "demo-sealed-open").1,
        "the sealed package stays"
    );

    // The right code, typed as people type it, opens it; the timer starts now.
    let before = exam_core::clock::now_ms();
    let typed = format!(" {} ", code.to_lowercase());
    let view = exams
        .start_with_code("demo-sealed-open", &typed)
        .await
        .unwrap();
    assert_eq!(view.questions.len(), 4);
    // (The server's clock as learnt from `Date` headers, which have whole seconds.)
    let started = exam_core::clock::parse_ms(&view.started_at).unwrap();
    assert!(
        started >= before - 1_000,
        "started {started}, opened after {before}"
    );
    let all = answers(&view);
    for (question, value) in &all {
        exams
            .save_answer(&view.attempt_id, question, value.clone())
            .unwrap();
    }
    // Open, and still nothing of the questions in clear on disk.
    no_question_in_clear(dir.path(), "opened and answered");
    core.shutdown(Duration::from_secs(5));
    drop(core);

    // The computer restarts, still without a network, and nobody has the code at hand.
    let again = core_at(&url, dir.path(), &secrets);
    signed_in_again(&again).await;
    let exams = again.exams().unwrap().clone();
    let resumed = exams.current().unwrap().expect("the attempt comes back");
    assert_eq!(resumed.attempt_id, view.attempt_id);
    assert_eq!(resumed.questions.len(), 4);
    for (question, value) in &all {
        let q = resumed
            .questions
            .iter()
            .find(|q| &q.id == question)
            .unwrap();
        assert_eq!(q.answer.as_ref(), Some(value), "{question}");
        assert_eq!(
            q.prompt,
            view.questions
                .iter()
                .find(|v| &v.id == question)
                .unwrap()
                .prompt
        );
    }

    // The network is back: everything is delivered, submitted, and the receipt read back.
    let server = Server::start_at(addr, config(server_dir.path().join("s.db"), 900)).await;
    exams.submit(&view.attempt_id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let progress = exams.progress(&view.attempt_id).unwrap();
        if progress
            .submission
            .as_ref()
            .is_some_and(|s| s.state == SubmissionState::Delivered)
        {
            assert!(progress.submission.unwrap().receipt_id.is_some());
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {progress:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = admin_attempt(&server, &view.attempt_id).await;
    assert_eq!(
        held["answers"].as_object().unwrap().len(),
        all.len(),
        "{held}"
    );
    again.shutdown(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_the_key_from_the_server_opens_a_sealed_exam_and_wrong_codes_wait_a_little() {
    let mut server = Server::start(900).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let core = core_at(&url, dir.path(), &secrets);
    core.sign_in("student6", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.list().await.unwrap();

    // Online, a start is all it takes (not even a download first).
    let view = exams.start("demo-sealed-open").await.unwrap();
    assert_eq!(view.questions.len(), 4);
    no_question_in_clear(dir.path(), "opened online");
    let listed = exams.list().await.unwrap();
    let open = listed
        .exams
        .iter()
        .find(|e| e.id == "demo-sealed-open")
        .unwrap();
    assert_eq!(
        open.opening,
        Opening::Nothing,
        "opened here: nothing more is needed"
    );
    let audit = server.admin("/v1/admin/audit?limit=200").await;
    assert!(
        audit.to_string().contains("exam_key_released"),
        "the key release is audited: {audit}"
    );

    // The next student on this computer: the exam opened by the first is not open for them.
    core.sign_out().await;
    core.sign_in("student7", password()).await.unwrap();
    let listed = exams.list().await.unwrap();
    let open = listed
        .exams
        .iter()
        .find(|e| e.id == "demo-sealed-open")
        .unwrap();
    assert_eq!(open.opening, Opening::KeyOrStartCode);
    let code = start_code(&server, "demo-sealed-open").await;

    // Offline, a few wrong codes cost nothing; then each makes the next try wait longer.
    let _server_dir = server.stop().await;
    let mut waits = Vec::new();
    for _ in 0..4 {
        let tried = exams
            .start_with_code("demo-sealed-open", "AAAA-BBBB-CCCC")
            .await;
        match tried {
            Err(ExamError::StartCodeRefused { retry_in_ms, .. }) => waits.push(retry_in_ms),
            // Tried too soon: not even tried; wait, then try again.
            Err(ExamError::StartCodeWait { retry_in_ms, .. }) => {
                assert_eq!(waits.len(), 3, "{waits:?}");
                tokio::time::sleep(Duration::from_millis(retry_in_ms + 100)).await;
                match exams
                    .start_with_code("demo-sealed-open", "AAAA-BBBB-CCCC")
                    .await
                {
                    Err(ExamError::StartCodeRefused { retry_in_ms, .. }) => waits.push(retry_in_ms),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(waits, [0, 0, 2_000, 4_000]);
    // Even the right code waits its turn…
    match exams.start_with_code("demo-sealed-open", &code).await {
        Err(ExamError::StartCodeWait {
            exam_id,
            retry_in_ms,
        }) => {
            assert_eq!(exam_id, "demo-sealed-open");
            assert!(retry_in_ms > 0 && retry_in_ms <= 4_000, "{retry_in_ms}");
            tokio::time::sleep(Duration::from_millis(retry_in_ms + 100)).await;
        }
        other => panic!("{other:?}"),
    }
    // …and then opens it; the wait starts over.
    let view = exams
        .start_with_code("demo-sealed-open", &code)
        .await
        .unwrap();
    assert_eq!(view.questions.len(), 4);
    match exams
        .start_with_code("demo-sealed-tomorrow", "AAAA-BBBB-CCCC")
        .await
    {
        Err(
            ExamError::StartRefused(StartBlock::NotYetOpen { .. }) | ExamError::NotDownloaded(_),
        ) => {}
        other => panic!("{other:?}"),
    }
    core.shutdown(Duration::from_secs(5));
}

/// A server whose demo "opening soon" sealed exam opens `in_s` seconds after it starts.
async fn server_opening_in(in_s: u64) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_at(
        "127.0.0.1:0".parse().unwrap(),
        exam_server::Config {
            demo_opens_in_s: in_s,
            ..config(dir.path().join("s.db"), 900)
        },
    )
    .await;
    (server, dir)
}

/// Waits until `exam` may start on the app's (server's) clock.
async fn until_open(core: &Core, exam: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = core.exams().unwrap().list().await.unwrap();
        let row = list.exams.iter().find(|e| e.id == exam).unwrap();
        if row.start_block.is_none() {
            return;
        }
        assert!(Instant::now() < deadline, "{row:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_altered_on_this_computer_is_refused_naming_the_exam_and_kept_then_downloaded_again_online(
) {
    let mut server = Server::start(900).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let core = core_at(&url, dir.path(), &secrets);
    core.sign_in("student8", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.list().await.unwrap();
    exams.download("demo-sealed-open").await.unwrap();
    let code = start_code(&server, "demo-sealed-open").await;

    // Someone alters the ciphertext kept on this computer.
    let (_, _, text) = kept_package(dir.path(), "demo-sealed-open");
    let mut package: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ciphertext = package["sealed"]["ciphertext"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = if ciphertext.starts_with('A') {
        "B"
    } else {
        "A"
    };
    package["sealed"]["ciphertext"] = format!("{flipped}{}", &ciphertext[1..]).into();
    let altered = package.to_string();
    rusqlite::Connection::open(dir.path().join(exam_core::store::FILE_NAME))
        .unwrap()
        .execute(
            "UPDATE exam_packages SET package = ?1 WHERE exam_id = 'demo-sealed-open'",
            [&altered],
        )
        .unwrap();

    // Offline, even the right code does not open it: refused, naming the exam, kept as is.
    let addr = server.addr;
    let server_dir = server.stop().await.unwrap();
    let refused = exams
        .start_with_code("demo-sealed-open", &code)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ExamError::StartCodeRefused { exam_id, .. } if exam_id == "demo-sealed-open"),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("demo-sealed-open"),
        "{refused}"
    );
    assert_eq!(kept_package(dir.path(), "demo-sealed-open").2, altered);

    // Online again, the key from the server does not open the altered copy: it is
    // downloaded again, and the exam starts.
    let _server = Server::start_at(addr, config(server_dir.path().join("s.db"), 900)).await;
    let view = exams.start("demo-sealed-open").await.unwrap();
    assert_eq!(view.questions.len(), 4);
    assert_ne!(kept_package(dir.path(), "demo-sealed-open").2, altered);
    core.shutdown(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_altered_on_its_way_is_refused_naming_the_exam_and_the_copy_here_stays() {
    let server = Server::start(900).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let core = core_at(&url, dir.path(), &secrets);
    core.sign_in("student9", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.list().await.unwrap();
    // The package is sealed on the server at its first download; then what it serves is
    // altered (as a proxy on the way could).
    exams.download("demo-sealed-open").await.unwrap();
    let kept = kept_package(dir.path(), "demo-sealed-open");
    rusqlite::Connection::open(server.db())
        .unwrap()
        .execute(
            "UPDATE sealed_packages SET ciphertext = CAST(zeroblob(length(ciphertext)) AS BLOB)
             WHERE exam_id = 'demo-sealed-open'",
            [],
        )
        .unwrap();
    rusqlite::Connection::open(dir.path().join(exam_core::store::FILE_NAME))
        .unwrap()
        .execute("UPDATE exam_packages SET etag = NULL", [])
        .unwrap();
    exams.download("demo-sealed-open").await.unwrap();
    let altered = kept_package(dir.path(), "demo-sealed-open");
    assert_ne!(altered.2, kept.2);

    let refused = exams.start("demo-sealed-open").await.unwrap_err();
    match &refused {
        ExamError::PackageDoesNotOpen { exam_id, title } => {
            assert_eq!(exam_id, "demo-sealed-open");
            assert_eq!(title, "Sealed exam — open now");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        refused.to_string().contains("demo-sealed-open"),
        "{refused}"
    );
    assert!(refused.to_string().contains("does not open"), "{refused}");
    assert_eq!(
        kept_package(dir.path(), "demo-sealed-open"),
        altered,
        "kept"
    );
    assert!(exams.current().unwrap().is_none(), "no attempt began");
    core.shutdown(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_code_of_another_version_is_refused_offline_and_online_the_new_version_is_fetched()
{
    let (mut server, server_dir) = server_opening_in(6).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let core = core_at(&url, dir.path(), &secrets);
    core.sign_in("student10", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.list().await.unwrap();
    assert_eq!(
        exams
            .download("demo-sealed-soon")
            .await
            .unwrap()
            .downloaded_version,
        Some(1)
    );
    // The proctor changes the start code before the exam: sealed again as version 2.
    assert_eq!(
        server
            .admin_post("/v1/admin/exams/demo-sealed-soon/start-code/rotate")
            .await,
        200
    );
    let new_code = start_code(&server, "demo-sealed-soon").await;
    until_open(&core, "demo-sealed-soon").await;

    // Offline, the new code does not open the copy of version 1 here: refused, kept.
    let addr = server.addr;
    server.stop().await;
    let refused = exams
        .start_with_code("demo-sealed-soon", &new_code)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ExamError::StartCodeRefused { exam_id, .. } if exam_id == "demo-sealed-soon"),
        "{refused:?}"
    );
    assert_eq!(kept_package(dir.path(), "demo-sealed-soon").0, 1);

    // Online, the key is for version 2: that version is downloaded and opened.
    let _server = Server::start_at(addr, config(server_dir.path().join("s.db"), 900)).await;
    let view = exams.start("demo-sealed-soon").await.unwrap();
    assert_eq!(view.questions.len(), 4);
    assert_eq!(kept_package(dir.path(), "demo-sealed-soon").0, 2);
    core.shutdown(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_package_that_opens_to_a_bad_package_is_refused_naming_the_exam_and_why() {
    let (server, server_dir) = server_opening_in(4).await;
    // The exam's questions are broken before it is first sealed: a single-choice question
    // with one option.
    rusqlite::Connection::open(server_dir.path().join("s.db"))
        .unwrap()
        .execute(
            "UPDATE exams SET questions = ?1 WHERE id = 'demo-sealed-soon'",
            [serde_json::json!([
                {"id": "q1", "kind": "single", "prompt": "Pick one", "options": [{"id": "o1", "text": "only"}]}
            ])
            .to_string()],
        )
        .unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let core = core_at(&url, dir.path(), &secrets);
    core.sign_in("student11", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.list().await.unwrap();
    exams.download("demo-sealed-soon").await.unwrap();
    let kept = kept_package(dir.path(), "demo-sealed-soon");
    until_open(&core, "demo-sealed-soon").await;

    let refused = exams.start("demo-sealed-soon").await.unwrap_err();
    match &refused {
        ExamError::BadPackage(bad) => {
            assert_eq!(bad.exam, "demo-sealed-soon");
            assert!(bad.reason.contains("options"), "{bad}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        refused.to_string().contains("demo-sealed-soon"),
        "{refused}"
    );
    assert_eq!(kept_package(dir.path(), "demo-sealed-soon"), kept, "kept");
    assert!(exams.current().unwrap().is_none(), "no attempt began");
    core.shutdown(Duration::from_secs(5));
}
