//! Sync throughput to the local reference server (in-process, loopback): 20,000 answer
//! saves across 20 attempts queued while the engine is paused, then delivered, with
//! batching (20 per `/v1/batch`) and without; plus connection reuse.
//!
//! `cargo bench -p exam-core --bench sync` prints each figure next to its budget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_core::app::{CoreBuilder, Network};
use exam_core::config::{LoadedConfig, Settings};
use exam_core::http::HttpClient;
use exam_core::queue::NewEntry;
use exam_core::secret::Secret;
use exam_core::sync::SyncConfig;
use exam_core::testing::MemoryStore;
use serde_json::json;

const SAVES: usize = 20_000;

async fn run(base: &str, batch_max: usize) -> (f64, f64, exam_core::sync::SyncStats) {
    let http = HttpClient::new("bench").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::new(base.parse().unwrap(), dir.path().to_path_buf());
    settings.queue.max_entries = u64::MAX;
    settings.queue.max_bytes = u64::MAX;
    let core = CoreBuilder::new(
        LoadedConfig::from_settings(settings),
        Arc::new(MemoryStore::default()),
    )
    .http(http.clone())
    .network(Network::AlwaysOnline)
    .sync(SyncConfig {
        batch_max,
        ..SyncConfig::default()
    })
    .start()
    .unwrap();
    // Everything is queued first, then sent: paused until then.
    core.sync_pause().unwrap();
    core.sign_in("student2", Secret::new("demo".into()))
        .await
        .unwrap();
    let queue = core.services().unwrap().queue.clone();
    let owner = core.auth().owner().unwrap();
    let attempts: Vec<String> = (0..20).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let now = exam_core::now_rfc3339();
    let mut entries: Vec<NewEntry> = attempts
        .iter()
        .map(|a| NewEntry::start_attempt("demo-mixed", a, &now).owned_by(&owner))
        .collect();
    for i in 0..SAVES {
        // Short answers (q03, q07, …): every save a distinct operation (no coalescing).
        let mut e = NewEntry::answer(
            &attempts[i % 20],
            &format!("q{:02}", 3 + 4 * ((i / 20) % 5)),
            json!(format!("answer {i}")),
            &now,
        )
        .owned_by(&owner);
        e.coalesce_key = None;
        entries.push(e);
    }
    queue.enqueue_many(entries).unwrap();
    let before = http.reuse();
    let start = Instant::now();
    core.sync_now().unwrap();
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
    let stats = core.sync_status().unwrap().stats;
    core.shutdown(exam_core::app::SHUTDOWN_WAIT);
    assert_eq!(queue.counts().unwrap().dead, 0);
    ((SAVES + 20) as f64 / took.as_secs_f64(), reuse, stats)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = exam_server::Config {
        demo: true,
        admin_token: Some("bench-admin-token-0123456789".into()),
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
