//! The core's lifecycle, in a process of its own (so the threads and file handles counted are
//! the core's): started and stopped 100 times against the real reference server, with
//! saves in flight at every stop. Nothing is left behind, nothing is lost, nothing is applied
//! twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "it/support.rs"]
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_core::app::{Core, CoreBuilder, SHUTDOWN_WAIT};
use exam_core::config::{LoadedConfig, Settings};
use exam_core::queue::{Limits, NewEntry, Queue};
use exam_core::testing::MemoryStore;
use serde_json::{json, Value};

use support::{password, Server};

const ROUNDS: usize = 100;
const SAVES_PER_ROUND: usize = 5;

/// Names of this process's threads that belong to the core.
fn core_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| name.starts_with("exam-"))
        .collect()
}

/// This process's open file handles, as what they point at, but for the reference
/// server's database (its connection pool grows with the load).
fn open_files() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| !target.contains("/s.db") && target != "/proc/self/fd")
        .filter(|target| !target.starts_with("/proc/") || !target.ends_with("/fd"))
        .collect()
}

fn files_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    open_files()
        .into_iter()
        .filter(|f| f.starts_with(&dir))
        .collect()
}

/// Every entry on disk, as the next start sees it (saves still in the inbox moved in).
fn rows(db: &Path) -> Vec<(String, String)> {
    Queue::open(db, Limits::default()).unwrap().flush().unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        // The device checks' reports and the history's minute summaries come with the clock.
        .prepare(
            "SELECT kind, status FROM queue WHERE kind NOT IN ('event', 'telemetry') ORDER BY id",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

/// The server's reply to every delivered answer save.
fn answer_replies(db: &Path) -> Vec<Value> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT response_body FROM queue WHERE kind = 'answer' AND status = 'done'")
        .unwrap();
    let replies = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|body| serde_json::from_str(&body.unwrap()).unwrap())
        .collect();
    replies
}

#[test]
fn the_core_starts_and_stops_100_times_leaving_nothing_behind_and_losing_nothing() {
    if std::env::consts::OS != "linux" {
        return; // counts threads and handles through /proc
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(Server::start(900));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join(exam_core::store::FILE_NAME);
    let secrets = Arc::new(MemoryStore::default());
    let settings = Settings::new(server.url(), data.clone());
    let start = || -> Core {
        CoreBuilder::new(
            LoadedConfig::from_settings(settings.clone()),
            secrets.clone(),
        )
        .start()
        .unwrap()
    };

    // Signed in once; every later core restores the session from the secret store.
    let first = start();
    let handle = first.workers().handle().clone();
    handle
        .block_on(first.sign_in("student4", password()))
        .unwrap();
    let questions = handle.block_on(support::text_questions(first.auth()));
    let owner = first.auth().owner().unwrap();
    let attempt = uuid::Uuid::new_v4().to_string();
    first
        .services()
        .unwrap()
        .queue
        .enqueue(
            NewEntry::start_attempt("demo-mixed", &attempt, &exam_core::now_rfc3339())
                .owned_by(&owner),
        )
        .unwrap();
    first.shutdown(SHUTDOWN_WAIT);
    drop(first);
    // What the process holds without a core (the server's side of the first core's
    // connections closes as the server notices).
    std::thread::sleep(Duration::from_millis(500));
    let handles_before = open_files().len();

    let mut newest = std::collections::BTreeMap::new();
    let mut saves = 0usize;
    for round in 0..ROUNDS {
        let core = start();
        let queue = core.services().unwrap().queue.clone();
        for i in 0..SAVES_PER_ROUND {
            let question = &questions[(round * SAVES_PER_ROUND + i) % questions.len()];
            let value = format!("round {round}, save {i}");
            let mut entry =
                NewEntry::answer(&attempt, question, json!(value), &exam_core::now_rfc3339())
                    .owned_by(&owner);
            // Every save travels on its own, so each must be applied exactly once.
            entry.coalesce_key = None;
            queue.enqueue(entry).unwrap();
            newest.insert(question.clone(), value);
            saves += 1;
        }
        // Stop at different moments of delivery: at once, while sending, after a while.
        std::thread::sleep(Duration::from_millis([0, 3, 20][round % 3]));
        let report = core.shutdown(SHUTDOWN_WAIT);
        drop(queue);
        assert_eq!(core.workers().running(), 0, "round {round}: {report:?}");
        drop(core);

        assert_eq!(core_threads(), Vec::<String>::new(), "round {round}");
        assert_eq!(files_under(&data), Vec::<String>::new(), "round {round}");
        // Each save is on disk: delivered, or still waiting (a claim cut short is waiting
        // again once the queue is opened).
        let on_disk = rows(&db);
        assert_eq!(on_disk.len(), saves + 1, "round {round}");
        for (kind, status) in &on_disk {
            assert!(
                ["pending", "done"].contains(&status.as_str()),
                "round {round}: a {kind} is {status}"
            );
        }
    }

    // One more start delivers what waits.
    let last = start();
    let queue = last.services().unwrap().queue.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    while queue.remaining().unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "not delivered: {:?}",
            queue.counts()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(queue.counts().unwrap().dead, 0);
    last.shutdown(SHUTDOWN_WAIT);
    drop(queue);
    drop(last);

    let held = runtime.block_on(support::admin_attempt(&server, &attempt));
    let replies = answer_replies(&db);
    assert_eq!(replies.len(), saves, "every save has the server's reply");
    let stored = replies.iter().filter(|r| r["stored"] == true).count();
    assert_eq!(
        held["applied_writes"].as_u64().unwrap(),
        stored as u64,
        "a save was applied twice or lost: {held}"
    );
    for (question, value) in &newest {
        assert_eq!(
            held["answers"][question]["value"],
            json!(value),
            "{question}"
        );
    }
    // Every save and the attempt delivered (the device checks' reports of the last start may
    // still wait: they are not this test's).
    let reopened = Queue::open(&db, Limits::default()).unwrap();
    drop(reopened);
    assert!(
        rows(&db).iter().all(|(_, status)| status == "done"),
        "{:?}",
        rows(&db)
    );

    // The server closes its side of the connections the cores held as it notices them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_files().len() > handles_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        open_files().len(),
        handles_before,
        "file handles left behind: {:?}",
        open_files()
    );
    assert_eq!(core_threads(), Vec::<String>::new());
}
