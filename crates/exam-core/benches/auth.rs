//! Token-manager benchmarks against the real reference server on loopback:
//! cached token retrieval, one refresh under 1000 concurrent callers, and core-event
//! fan-out to N subscribers (the bus side of "event to N windows").
//!
//! `cargo bench -p exam-core --bench auth` prints each figure next to its budget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_core::auth::{AuthConfig, TokenManager};
use exam_core::bus::{CoreEvent, EventBus};
use exam_core::http::HttpClient;
use exam_core::secret::Secret;
use exam_core::testing::MemoryStore;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[(((p / 100.0) * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

async fn refreshes(base: &str) -> u64 {
    let stats: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}v1/admin/stats"))
        .bearer_auth("bench-admin-token-0123456789")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["token_refreshes"].as_u64().unwrap()
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

    let manager = TokenManager::new(
        AuthConfig::new(base.parse().unwrap()),
        HttpClient::new("bench").unwrap(),
        Arc::new(MemoryStore::default()),
        EventBus::default(),
    );
    manager
        .sign_in("student1", Secret::new("demo".into()))
        .await
        .unwrap();

    // 1. Cached access token.
    let mut samples = Vec::with_capacity(200_000);
    for _ in 0..200_000 {
        let t = Instant::now();
        let token = manager.access_token().await.unwrap();
        samples.push(t.elapsed());
        std::hint::black_box(token);
    }
    samples.sort();
    println!(
        "cached access token          p50 {:>7.0} ns  p99 {:>7.0} ns  (budget p99 <= 5000 ns)",
        pct(&samples, 50.0).as_nanos(),
        pct(&samples, 99.0).as_nanos()
    );

    // 2. 1000 concurrent callers on an invalidated token, five rounds.
    for round in 1..=5 {
        let token = manager.access_token().await.unwrap();
        manager.invalidate_access(&token);
        let before = refreshes(&base).await;
        let start = Instant::now();
        let callers: Vec<_> = (0..1000)
            .map(|_| {
                let m = manager.clone();
                tokio::spawn(async move { m.access_token().await.unwrap() })
            })
            .collect();
        for c in callers {
            c.await.unwrap();
        }
        let took = start.elapsed();
        let sent = refreshes(&base).await - before;
        println!(
            "1000 concurrent callers, round {round}: {sent} refresh request(s), all served in {:>6.1} ms  (budget: exactly 1)",
            took.as_secs_f64() * 1e3
        );
    }

    // 3. Core event to N subscribers (what the shell forwards to N windows).
    for n in [1usize, 10, 50] {
        let bus = EventBus::new(1024);
        let mut receivers: Vec<_> = (0..n).map(|_| bus.subscribe()).collect();
        let mut worst = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let t = Instant::now();
            bus.publish(CoreEvent::RefreshStarted { version: 1 });
            for rx in &mut receivers {
                rx.recv().await.unwrap();
            }
            worst.push(t.elapsed());
        }
        worst.sort();
        println!(
            "core event to {n:>2} subscribers   p50 {:>7.0} ns  p99 {:>7.0} ns  (bus only: delivery into webviews is not in this figure)",
            pct(&worst, 50.0).as_nanos(),
            pct(&worst, 99.0).as_nanos()
        );
    }
    let reuse = manager.http().reuse();
    println!(
        "connections: {} opened for {} requests ({:.1}% reuse)",
        reuse.connections_opened,
        reuse.requests_sent,
        reuse.reuse_rate() * 100.0
    );
}
