//! Sync throughput to the local reference server (in-process, loopback): 20,000 answer
//! saves across 20 attempts queued while the engine is paused, then delivered, with
//! batching (20 per `/v1/batch`) and without; plus connection reuse.
//!
//! `cargo bench -p exam-core --bench sync` prints each figure next to its budget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_core::auth::{AuthConfig, TokenManager};
use exam_core::bus::EventBus;
use exam_core::http::HttpClient;
use exam_core::queue::{Limits, NewEntry, Queue};
use exam_core::secret::Secret;
use exam_core::sync::{NetworkView, SyncConfig, SyncEngine};
use exam_core::testing::MemoryStore;
use serde_json::json;

const SAVES: usize = 20_000;

async fn run(base: &str, batch_max: usize) -> (f64, f64, exam_core::sync::SyncStats) {
    let http = HttpClient::new("bench").unwrap();
    let auth = TokenManager::new(
        AuthConfig::new(base.parse().unwrap()),
        http.clone(),
        Arc::new(MemoryStore::default()),
        EventBus::default(),
    );
    auth.sign_in("student2", Secret::new("demo".into()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(
        &dir.path().join("q.db"),
        Limits {
            max_entries: u64::MAX,
            max_bytes: u64::MAX,
        },
    )
    .unwrap();
    let attempts: Vec<String> = (0..20).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let now = exam_core::now_rfc3339();
    let mut entries: Vec<NewEntry> = attempts
        .iter()
        .map(|a| NewEntry::start_attempt("demo-mixed", a, &now))
        .collect();
    for i in 0..SAVES {
        // Short answers (q03, q07, …): every save a distinct operation (no coalescing).
        let mut e = NewEntry::answer(
            &attempts[i % 20],
            &format!("q{:02}", 3 + 4 * ((i / 20) % 5)),
            json!(format!("answer {i}")),
            &now,
        );
        e.coalesce_key = None;
        entries.push(e);
    }
    queue.enqueue_many(entries).unwrap();
    let engine = SyncEngine::spawn(
        SyncConfig {
            batch_max,
            ..SyncConfig::default()
        },
        queue.clone(),
        auth.clone(),
        NetworkView::always_online(),
        EventBus::default(),
    )
    .unwrap();
    let before = http.reuse();
    let start = Instant::now();
    engine.sync_now();
    while queue.remaining().unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed();
    let after = http.reuse();
    let reuse = exam_core::http::ReuseStats {
        connections_opened: after.connections_opened - before.connections_opened,
        requests_sent: after.requests_sent - before.requests_sent,
    }
    .reuse_rate();
    let stats = engine.stats();
    engine.stop();
    assert_eq!(queue.counts().unwrap().dead, 0);
    ((SAVES + 20) as f64 / took.as_secs_f64(), reuse, stats)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = exam_server::Config {
        demo: true,
        admin_token: Some("bench".into()),
        user_rate: exam_server::RateSpec::OFF,
        ip_rate: exam_server::RateSpec::OFF,
        ..exam_server::Config::new(dir.path().join("bench.db"))
    };
    let server = exam_server::Server::spawn("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let base = server.url();

    // SYNC_BENCH_BATCH=20 tries another batch size (the default is the app's, 50).
    let batch: usize = std::env::var("SYNC_BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SyncConfig::default().batch_max);
    println!("sync to the local reference server, {SAVES} answer saves across 20 attempts:");
    let (batched, reuse_b, stats_b) = run(&base, batch).await;
    println!(
        "  batched ({batch} per request): {batched:.0} ops/s, {} requests, avg {:.1} ms, connection reuse {:.1}%   (budget ≥ 5,000 ops/s; reuse ≥ 99%)",
        stats_b.requests,
        stats_b.avg_request_ms,
        reuse_b * 100.0
    );
    let (single, reuse_s, stats_s) = run(&base, 1).await;
    println!(
        "  unbatched: {single:.0} ops/s, {} requests, avg {:.1} ms, connection reuse {:.1}%",
        stats_s.requests,
        stats_s.avg_request_ms,
        reuse_s * 100.0
    );
    println!(
        "  batching speed-up: {:.1}×   (budget ≥ 5×)",
        batched / single
    );
}
