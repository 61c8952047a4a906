//! The sync engine against the real reference server, through a proxy that cuts, refuses,
//! blackholes and drops requests and responses: every queued operation takes effect on the
//! server exactly once, in stream order, whatever the link does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use exam_core::bus::EventBus;
use exam_core::network::{MonitorConfig, NetworkMonitor};
use exam_core::queue::{Limits, NewEntry, Queue, Status};
use exam_core::sync::{SyncConfig, SyncEngine};
use fault_proxy::{FaultProxy, Faults, Link};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::support::{admin_attempt, drained, memory_manager, online_engine, password, Server};

/// A valid random answer for a question of the demo package.
fn random_value(question: &Value, rng: &mut impl Rng) -> Value {
    let options: Vec<String> = question["options"]
        .as_array()
        .map(|o| {
            o.iter()
                .map(|o| o["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    match question["kind"].as_str().unwrap() {
        "single" => json!(options[rng.gen_range(0..options.len())]),
        "multiple" => {
            let picked: Vec<&String> = options.iter().filter(|_| rng.gen_bool(0.5)).collect();
            json!(picked)
        }
        _ => json!(format!(
            "answer {} — Trả lời {}",
            rng.gen::<u32>(),
            rng.gen::<u16>()
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_saves_through_a_flapping_link_take_effect_exactly_once() {
    let server = Server::start(900).await;
    let proxy = Arc::new(FaultProxy::start(server.addr).unwrap());
    let base: url::Url = format!("{}/", proxy.url()).parse().unwrap();
    let bus = EventBus::default();
    let auth = memory_manager(base.clone(), &bus);
    auth.sign_in("student5", password()).await.unwrap();
    let owner = auth.owner().unwrap();
    let package: Value = auth
        .send_authorized(|c| c.get(base.join("v1/exams/demo-mixed/package").unwrap()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let questions = package["questions"].as_array().unwrap().clone();

    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("exam-desktop.db"), Limits::default()).unwrap();
    let workers = exam_core::lifecycle::Workers::new().unwrap();
    let monitor = Arc::new(NetworkMonitor::spawn(
        &workers,
        MonitorConfig::new(base.clone()),
        auth.http().clone(),
        bus.clone(),
        Some(queue.store().clone()),
    ));
    let config = SyncConfig {
        request_timeout: Duration::from_secs(2),
        ..SyncConfig::default()
    };
    let engine = SyncEngine::spawn(
        &workers,
        config,
        queue.clone(),
        auth.clone(),
        monitor.view(),
        bus.clone(),
    );

    let attempts: Vec<String> = (0..20).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for attempt in &attempts {
        queue
            .enqueue(
                NewEntry::start_attempt("demo-mixed", attempt, &exam_core::now_rfc3339())
                    .owned_by(&owner),
            )
            .unwrap();
    }

    // The link flaps for as long as the saves go on.
    let flapping = Arc::new(AtomicBool::new(true));
    let flapper = {
        let (proxy, flapping) = (proxy.clone(), flapping.clone());
        std::thread::spawn(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let mut changes = 0u32;
            while flapping.load(Ordering::SeqCst) {
                match rng.gen_range(0..4) {
                    0 => proxy.set_link(Link::Refuse),
                    1 => proxy.set_link(Link::Blackhole),
                    2 => {
                        proxy.set_link(Link::Up);
                        proxy.set_faults(Faults {
                            seed: rng.gen(),
                            drop_request: 0.05,
                            drop_response: 0.1,
                            delay_min: Duration::ZERO,
                            delay_max: Duration::from_millis(20),
                        });
                    }
                    _ => {
                        proxy.set_link(Link::Up);
                        proxy.set_faults(Faults::default());
                    }
                }
                changes += 1;
                std::thread::sleep(Duration::from_millis(rng.gen_range(50..400)));
            }
            proxy.set_faults(Faults::default());
            proxy.set_link(Link::Up);
            changes
        })
    };

    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut latest: HashMap<(String, String), Value> = HashMap::new();
    for i in 0..10_000 {
        let attempt = &attempts[rng.gen_range(0..attempts.len())];
        let question = &questions[rng.gen_range(0..questions.len())];
        let qid = question["id"].as_str().unwrap().to_string();
        let value = random_value(question, &mut rng);
        queue
            .enqueue(
                NewEntry::answer(attempt, &qid, value.clone(), &exam_core::now_rfc3339())
                    .owned_by(&owner),
            )
            .unwrap();
        latest.insert((attempt.clone(), qid), value);
        if i % 20 == 19 {
            engine.notify();
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }
    flapping.store(false, Ordering::SeqCst);
    let changes = flapper.join().unwrap();
    engine.sync_now();
    drained(&queue, Duration::from_secs(180)).await;

    let counts = queue.counts().unwrap();
    let stats = engine.stats();
    let proxy_stats = proxy.stats();
    println!(
        "link changes {changes}, proxy {proxy_stats:?}\nqueue {counts:?}\nsync {stats:?}\nnetwork {:?}",
        monitor.status()
    );
    assert_eq!(counts.dead, 0, "{:?}", queue.dead_letters(5).unwrap());
    assert!(
        proxy_stats.dropped_by_faults() > 0,
        "the faults were exercised"
    );

    // What the server holds is exactly the latest of every answer, and every write it
    // applied corresponds to one delivered save.
    let stored_true = stored_writes_per_attempt(&queue);
    for attempt in &attempts {
        let held = admin_attempt(&server, attempt).await;
        let answers = held["answers"].as_object().unwrap();
        let expected: HashMap<&String, &Value> = latest
            .iter()
            .filter(|((a, _), _)| a == attempt)
            .map(|((_, q), v)| (q, v))
            .collect();
        assert_eq!(answers.len(), expected.len(), "attempt {attempt}");
        for (question, value) in expected {
            assert_eq!(&answers[question]["value"], value, "{attempt}/{question}");
        }
        assert_eq!(
            held["applied_writes"].as_u64().unwrap(),
            stored_true.get(attempt.as_str()).copied().unwrap_or(0),
            "attempt {attempt}: a write was applied twice or lost"
        );
    }
    let report = workers.shutdown(Duration::from_secs(5));
    assert_eq!(report.stopped, vec!["sync engine", "network monitor"]);
}

/// Delivered answer saves whose reply said the server stored them, per attempt.
fn stored_writes_per_attempt(queue: &Queue) -> HashMap<String, u64> {
    let conn = queue.store().lock();
    let mut stmt = conn
        .prepare(
            "SELECT stream, response_body FROM queue WHERE kind = 'answer' AND status = 'done'",
        )
        .unwrap();
    let mut out = HashMap::new();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (stream, body) = row.unwrap();
        let reply: Value = serde_json::from_str(&body).unwrap();
        if reply["stored"] == json!(true) {
            *out.entry(stream.trim_start_matches("attempt:").to_string())
                .or_insert(0) += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_becomes_a_dead_letter_and_blocks_nothing() {
    let server = Server::start(900).await;
    let bus = EventBus::default();
    let auth = memory_manager(server.url(), &bus);
    auth.sign_in("student6", password()).await.unwrap();
    let owner = auth.owner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("exam-desktop.db"), Limits::default()).unwrap();
    let attempt = uuid::Uuid::new_v4().to_string();
    let now = exam_core::now_rfc3339();
    queue
        .enqueue(NewEntry::start_attempt("demo-mixed", &attempt, &now).owned_by(&owner))
        .unwrap();
    let bad = queue
        .enqueue(NewEntry::answer(&attempt, "no-such-question", json!("x"), &now).owned_by(&owner))
        .unwrap();
    let good = queue
        .enqueue(NewEntry::answer(&attempt, "q03", json!("a short answer"), &now).owned_by(&owner))
        .unwrap();
    let engine = online_engine(&queue, &auth, &bus);
    engine.notify();
    drained(&queue, Duration::from_secs(30)).await;
    assert_eq!(queue.status_of(bad.id).unwrap(), Some(Status::Dead));
    assert_eq!(queue.status_of(good.id).unwrap(), Some(Status::Done));
    let letters = queue.dead_letters(10).unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].response_status.unwrap() >= 400);
    assert!(letters[0]
        .error
        .as_deref()
        .unwrap()
        .contains("refused by the server"));
    let held = admin_attempt(&server, &attempt).await;
    assert_eq!(held["answers"]["q03"]["value"], "a short answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_the_queue_waits_and_is_kept_then_delivers_after_sign_in() {
    let server = Server::start(900).await;
    let owner = exam_core::owner::Owner::of(&server.url(), "student8");
    let bus = EventBus::default();
    let auth = memory_manager(server.url(), &bus);
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("exam-desktop.db"), Limits::default()).unwrap();
    let attempt = uuid::Uuid::new_v4().to_string();
    let now = exam_core::now_rfc3339();
    queue
        .enqueue(NewEntry::start_attempt("demo-mixed", &attempt, &now).owned_by(&owner))
        .unwrap();
    queue
        .enqueue(
            NewEntry::answer(&attempt, "q04", json!("typed while signed out"), &now)
                .owned_by(&owner),
        )
        .unwrap();
    let engine = online_engine(&queue, &auth, &bus);
    engine.notify();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        queue.remaining().unwrap(),
        2,
        "nothing sent, nothing dropped"
    );
    assert_eq!(
        engine.progress().state,
        exam_core::sync::SyncState::WaitingForSignIn
    );
    auth.sign_in("student8", password()).await.unwrap();
    drained(&queue, Duration::from_secs(30)).await;
    let held = admin_attempt(&server, &attempt).await;
    assert_eq!(held["answers"]["q04"]["value"], "typed while signed out");
    // Paused: new work waits; resumed: it goes.
    engine.pause();
    queue
        .enqueue(
            NewEntry::answer(&attempt, "q04", json!("second"), &exam_core::now_rfc3339())
                .owned_by(&owner),
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(queue.remaining().unwrap(), 1);
    assert_eq!(engine.progress().state, exam_core::sync::SyncState::Paused);
    // What waits is told as it grows, without anyone asking.
    assert_eq!(engine.progress().remaining, 1);
    engine.resume();
    drained(&queue, Duration::from_secs(30)).await;
    assert_eq!(
        admin_attempt(&server, &attempt).await["answers"]["q04"]["value"],
        "second"
    );
}
