//! The history on this computer, kept by the real core against the real server: answers
//! saved and delivered, sign-in and tokens, the network — in its own file, readable as
//! series, and surviving a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_core::analytics::{Metric, FLUSH_EVERY};
use exam_core::app::CoreBuilder;
use exam_core::config::{LoadedConfig, Settings};
use exam_core::exam::AnswerValue;
use exam_core::testing::MemoryStore;

use crate::support::{password, Server};

/// The core as the app builds it, keeping its data in `dir` (a restart is another call).
fn core_in(
    server: &Server,
    dir: &std::path::Path,
    secrets: &Arc<MemoryStore>,
) -> exam_core::app::Core {
    CoreBuilder::new(
        LoadedConfig::from_settings(Settings::new(server.url(), dir.to_path_buf())),
        secrets.clone(),
    )
    .device_checks(false)
    .start()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_app_does_is_kept_as_history_in_a_file_of_its_own() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let start = || core_in(&server, dir.path(), &secrets);
    let core = start();
    let began = exam_core::clock::now_ms();
    core.sign_in("student26", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.list().await.unwrap();
    let view = exams.start("demo-mixed").await.unwrap();
    for (i, question) in view.questions.iter().enumerate() {
        use exam_core::exam::QuestionKind;
        if matches!(question.kind, QuestionKind::Short | QuestionKind::Essay) {
            exams
                .save_answer(
                    &view.attempt_id,
                    &question.id,
                    AnswerValue::Text(format!("answer {i}")),
                )
                .unwrap();
        }
    }
    crate::support::drained(&core.services().unwrap().queue, Duration::from_secs(30)).await;
    let history = core.services().unwrap().history.clone().expect("a history");

    let series = |metric: Metric| {
        history
            .series(
                metric,
                began - 1000,
                exam_core::clock::now_ms(),
                exam_core::clock::now_ms(),
            )
            .unwrap()
    };
    let deadline = Instant::now() + FLUSH_EVERY * 4;
    let wanted = [
        Metric::SaveMs,
        Metric::SignInMs,
        Metric::Delivered,
        Metric::QueueDepth,
        Metric::Online,
        Metric::Requests,
        // Sampled as the worker starts, then once a minute.
        Metric::DiskFreeMb,
    ];
    while wanted.iter().any(|m| series(*m).points.is_empty()) {
        assert!(
            Instant::now() < deadline,
            "not in the history: {:?}",
            wanted
                .iter()
                .filter(|m| series(**m).points.is_empty())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let saves = series(Metric::SaveMs);
    assert_eq!(saves.resolution_s, 1);
    let saved: u32 = saves.points.iter().map(|p| p.count).sum();
    assert!(saved >= 1, "{saves:?}");
    assert!(
        saves.points.iter().all(|p| p.min > 0.0 && p.max < 10_000.0),
        "{saves:?}"
    );
    // Deliveries are counted by the sampler (each second) and written with the next flush.
    let delivered = || -> f64 { series(Metric::Delivered).points.iter().map(|p| p.sum).sum() };
    let deadline = Instant::now() + FLUSH_EVERY * 4;
    while delivered() < f64::from(saved) {
        assert!(
            Instant::now() < deadline,
            "{} delivered, {saved} saved",
            delivered()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(dir
        .path()
        .join(exam_core::analytics::history::FILE_NAME)
        .exists());

    // The minute's summary goes to the server as telemetry of the signed-in student.
    let services = core.services().unwrap();
    let sources = exam_core::analytics::Sources {
        auth: core.auth().clone(),
        engine: services.engine.clone(),
        network: services.monitor.clone().unwrap().view(),
        queue: services.queue.clone(),
        lab: Some("Lab B2".into()),
        bus: core.bus().clone(),
        data_dir: dir.path().to_path_buf(),
    };
    let first = began.div_euclid(60_000) * 60_000;
    for minute in [first, first + 60_000] {
        exam_core::analytics::send_minute(&history, &sources, "device-1", minute);
    }
    let summaries = || -> Vec<serde_json::Value> {
        let conn = rusqlite::Connection::open(server.db()).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT e.attrs FROM events e JOIN users u ON u.id = e.user_id
                 WHERE u.username = 'student26' AND e.type = 'metrics.minute'",
            )
            .unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(|r| serde_json::from_str::<serde_json::Value>(&r.unwrap()).unwrap())
            // The worker sends its own at each minute's end, as this computer.
            .filter(|s| s["device"] == "device-1")
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while summaries().is_empty() {
        assert!(Instant::now() < deadline, "no minute summary on the server");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent: u64 = summaries()
        .iter()
        .map(|s| s["metrics"]["save_ms"]["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(sent, u64::from(saved), "{:?}", summaries());
    let one = &summaries()[0];
    assert_eq!(one["lab"], "Lab B2", "{one}");
    assert_eq!(one["device"], "device-1", "{one}");
    assert_eq!(one["exam_id"], "demo-mixed", "{one}");
    let free = &series(Metric::DiskFreeMb).points[0];
    assert!(free.min > 0.0 && free.min < 1e9, "{free:?}");

    // Kept across a restart of the app.
    core.shutdown(Duration::from_secs(5));
    drop(core);
    let again = start();
    let kept = again
        .services()
        .unwrap()
        .history
        .clone()
        .unwrap()
        .series(
            Metric::SaveMs,
            began - 1000,
            exam_core::clock::now_ms(),
            exam_core::clock::now_ms(),
        )
        .unwrap();
    assert_eq!(kept.points.iter().map(|p| p.count).sum::<u32>(), saved);
    again.shutdown(Duration::from_secs(5));
}

/// The fair-time ledger across a crash: the app's last sign of life before it died, its
/// start again, the time between kept and reported as the attempt's student's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_lost_to_the_app_not_running_is_kept_and_reported() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let start = || core_in(&server, dir.path(), &secrets);
    let core = start();
    core.sign_in("student27", password()).await.unwrap();
    let exams = core.exams().unwrap().clone();
    exams.list().await.unwrap();
    let view = exams.start("demo-mixed").await.unwrap();
    core.shutdown(Duration::from_secs(5));
    drop((core, exams));
    // As if it had begun a minute ago and died 40 s ago: its last sign of life is that old.
    let db = dir.path().join(exam_core::store::FILE_NAME);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE attempts SET alive_at_ms = ?1, started_at = ?2",
            rusqlite::params![
                exam_core::clock::now_ms() - 40_000,
                exam_core::clock::rfc3339(exam_core::clock::now_ms() - 60_000)
            ],
        )
        .unwrap();

    let core = start();
    let exams = core.exams().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ledger = loop {
        // The session is restored from the keychain in the background.
        let ledger = exams.fair_time(&view.attempt_id);
        if let Ok(ledger) = &ledger {
            if ledger.not_running_ms > 0.0 {
                break ledger.clone();
            }
        }
        assert!(Instant::now() < deadline, "no time lost noted: {ledger:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        (40_000.0..45_000.0).contains(&ledger.not_running_ms),
        "{ledger:?}"
    );
    assert_eq!(ledger.total_ms, ledger.not_running_ms);
    assert_eq!(ledger.offline_ms, 0.0);
    // Reported to the server as the student's, once.
    let events = || -> Vec<String> {
        let conn = rusqlite::Connection::open(server.db()).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT e.attrs FROM events e JOIN users u ON u.id = e.user_id
                 WHERE u.username = 'student27' AND e.type = 'app.not_running'",
            )
            .unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while events().is_empty() {
        assert!(Instant::now() < deadline, "not reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attrs: serde_json::Value = serde_json::from_str(&events()[0]).unwrap();
    assert_eq!(attrs["attempt_id"], view.attempt_id.as_str());
    assert!(attrs["duration_ms"].as_i64().unwrap() >= 40_000, "{attrs}");
    core.shutdown(Duration::from_secs(5));
    assert_eq!(events().len(), 1);
}
