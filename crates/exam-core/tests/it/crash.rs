//! Crash safety with real processes: a child saving answers (and syncing them to the real
//! server) is killed with SIGKILL at random moments, 100 times. After each kill, every save
//! the child reported durable is still in the queue or already delivered; at the end the
//! server holds exactly the latest save of every answer.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use exam_core::bus::EventBus;
use exam_core::queue::{Limits, NewEntry, Queue};
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::support::{admin_attempt, drained, memory_manager, online_engine, password, Server};

const CHILD_DB: &str = "EXAM_CRASH_CHILD_DB";
const CHILD_SERVER: &str = "EXAM_CRASH_CHILD_SERVER";
const CHILD_ATTEMPTS: &str = "EXAM_CRASH_CHILD_ATTEMPTS";
const CHILD_SEED: &str = "EXAM_CRASH_CHILD_SEED";
/// The short-answer questions of the demo exam.
const QUESTIONS: [&str; 5] = ["q03", "q07", "q11", "q15", "q19"];

/// The child's work when run by `answers_reported_durable_survive_sigkill` (does nothing in
/// a normal test run): save answers as fast as it can, reporting each durable one, while
/// a sync engine delivers them.
#[test]
fn crash_child() {
    let Ok(db) = std::env::var(CHILD_DB) else {
        return;
    };
    let server: url::Url = std::env::var(CHILD_SERVER).unwrap().parse().unwrap();
    let attempts: Vec<String> = std::env::var(CHILD_ATTEMPTS)
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let queue = Queue::open(std::path::Path::new(&db), Limits::default()).unwrap();
    let bus = EventBus::default();
    let auth = memory_manager(server, &bus);
    runtime
        .block_on(auth.sign_in("student9", password()))
        .unwrap();
    let owner = auth.owner().unwrap();
    let engine = runtime.block_on(async { online_engine(&queue, &auth, &bus) });
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = std::io::stdout().lock();
    for n in 0.. {
        let attempt = &attempts[rng.gen_range(0..attempts.len())];
        let question = QUESTIONS[rng.gen_range(0..QUESTIONS.len())];
        let value = format!("s{seed}-{n}");
        let saved = queue
            .enqueue(
                NewEntry::answer(attempt, question, json!(value), &exam_core::now_rfc3339())
                    .owned_by(&owner),
            )
            .unwrap();
        // Reported only once the save is committed.
        writeln!(out, "durable {} {attempt} {question} {value}", saved.id).unwrap();
        out.flush().unwrap();
        engine.notify();
        if n % 10 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[derive(Debug, Clone)]
struct Reported {
    id: i64,
    value: String,
}

/// The newest row of each answer in the queue: (id, value, status).
fn newest_rows(queue: &Queue) -> HashMap<(String, String), (i64, String, String)> {
    let conn = queue.store().lock();
    let mut stmt = conn
        .prepare("SELECT id, path, body, status FROM queue WHERE kind = 'answer' ORDER BY id")
        .unwrap();
    let mut out = HashMap::new();
    for row in stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .unwrap()
    {
        let (id, path, body, status) = row.unwrap();
        // /v1/attempts/{attempt}/answers/{question}
        let parts: Vec<&str> = path.split('/').collect();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        out.insert(
            (parts[3].to_string(), parts[5].to_string()),
            (id, body["value"].as_str().unwrap().to_string(), status),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_reported_durable_survive_sigkill() {
    let server = Server::start(900).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("exam-desktop.db");
    let owner = exam_core::owner::Owner::of(&server.url(), "student9");
    let attempts: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    {
        let queue = Queue::open(&db, Limits::default()).unwrap();
        for attempt in &attempts {
            queue
                .enqueue(
                    NewEntry::start_attempt("demo-mixed", attempt, &exam_core::now_rfc3339())
                        .owned_by(&owner),
                )
                .unwrap();
        }
    }
    let me = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1234);
    // The newest reported save of each answer, over every run.
    let mut reported: HashMap<(String, String), Reported> = HashMap::new();
    let mut total_reported = 0usize;
    for round in 0..100u64 {
        let mut child = Command::new(&me)
            .args([
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &db)
            .env(CHILD_SERVER, server.url().as_str())
            .env(CHILD_ATTEMPTS, attempts.join(","))
            .env(CHILD_SEED, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l.starts_with("durable "))
                .collect::<Vec<String>>()
        });
        // Kill at a random moment: sometimes while it starts, mostly while it saves.
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..600)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let parts: Vec<&str> = line.split(' ').collect();
            if parts.len() < 5 {
                continue; // the line the kill cut in half was never reported whole
            }
            total_reported += 1;
            let id: i64 = parts[1].parse().unwrap();
            reported.insert(
                (parts[2].to_string(), parts[3].to_string()),
                Reported {
                    id,
                    value: parts[4].to_string(),
                },
            );
        }
        // Reopening recovers what was in flight; every reported save is there, or was
        // superseded by a newer save of the same answer.
        let queue = Queue::open(&db, Limits::default()).unwrap();
        let rows = newest_rows(&queue);
        for (key, saved) in &reported {
            let (id, value, status) = rows
                .get(key)
                .unwrap_or_else(|| panic!("round {round}: {key:?} lost entirely"));
            assert!(*id >= saved.id, "round {round}: {key:?} went back in time");
            if *id == saved.id {
                assert_eq!(value, &saved.value, "round {round}: {key:?}");
            }
            assert_ne!(status, "in_flight", "recovered at open");
        }
    }
    assert!(total_reported > 1000, "the child saved: {total_reported}");

    // Deliver what is left, then the server holds exactly the newest save of each answer.
    let queue = Queue::open(&db, Limits::default()).unwrap();
    let bus = EventBus::default();
    let auth = memory_manager(server.url(), &bus);
    auth.sign_in("student9", password()).await.unwrap();
    let engine = online_engine(&queue, &auth, &bus);
    engine.sync_now();
    drained(&queue, Duration::from_secs(60)).await;
    assert_eq!(queue.counts().unwrap().dead, 0);
    let rows = newest_rows(&queue);
    for attempt in &attempts {
        let held = admin_attempt(&server, attempt).await;
        for question in QUESTIONS {
            if let Some((_, value, _)) = rows.get(&(attempt.clone(), question.to_string())) {
                assert_eq!(
                    held["answers"][question]["value"], *value,
                    "{attempt}/{question}"
                );
            }
        }
    }
    println!("{total_reported} saves reported durable across 100 kills; all accounted for");
}
