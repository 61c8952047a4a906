//! Load benchmark of the reference server over real HTTP on loopback: answer PUTs one by
//! one, and the same writes in batches of 10. Prints requests/s and p50/p99 latency.
//!
//! `cargo bench -p exam-server --bench load` (release build). `LOAD_OPS` sets the number of
//! answer writes per phase (default 20000), `LOAD_CONCURRENCY` the requests in flight (16).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_server::{Config, RateSpec};
use reqwest::Client;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

const STUDENTS: usize = 10;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Target {
    token: String,
    attempt: String,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(
    name: &str,
    requests: usize,
    ops: usize,
    elapsed: Duration,
    mut latencies: Vec<Duration>,
) -> f64 {
    latencies.sort();
    let secs = elapsed.as_secs_f64();
    println!(
        "{name:<28} {requests:>7} requests in {secs:>6.2}s  {:>9.0} req/s  {:>9.0} answer writes/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        requests as f64 / secs,
        ops as f64 / secs,
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
    );
    ops as f64 / secs
}

#[tokio::main]
async fn main() {
    let ops = env_usize("LOAD_OPS", 20_000);
    let concurrency = env_usize("LOAD_CONCURRENCY", 16);
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        demo: true,
        user_rate: RateSpec::OFF,
        ip_rate: RateSpec::OFF,
        ..Config::new(dir.path().join("load.db"))
    };
    let server = exam_server::Server::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.serve(std::future::pending()));

    let http = Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let mut targets = Vec::new();
    for i in 1..=STUDENTS {
        let tokens: Value = http
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", &format!("student{i}")),
                ("password", "demo"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = tokens["access_token"].as_str().unwrap().to_string();
        let attempt: Value = http
            .post(format!("{base}/v1/exams/demo-essay/attempts"))
            .bearer_auth(&token)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        targets.push(Target {
            token,
            attempt: attempt["attempt_id"].as_str().unwrap().to_string(),
        });
    }
    let targets = Arc::new(targets);
    println!("exam-server load: {ops} answer writes per phase, {concurrency} in flight, {STUDENTS} students, loopback, release build");

    // Phase 1: one PUT per answer write.
    let single = run(ops, concurrency, |i| {
        let (http, base, targets) = (http.clone(), base.clone(), targets.clone());
        async move {
            let t = &targets[i % STUDENTS];
            let q = ["e1", "e2", "e3"][i % 3];
            let response = http
                .put(format!("{base}/v1/attempts/{}/answers/{q}", t.attempt))
                .bearer_auth(&t.token)
                .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                .json(&json!({"value": format!("answer text {i}"), "seq": i + 1, "saved_at": "2026-11-28T10:00:00Z"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    })
    .await;
    let single_rate = report("answer PUT (one each)", ops, ops, single.0, single.1);

    // Phase 2: the same writes in batches of 10.
    let batches = ops / 10;
    let batched = run(batches, concurrency, |b| {
        let (http, base, targets) = (http.clone(), base.clone(), targets.clone());
        async move {
            let t = &targets[b % STUDENTS];
            let requests: Vec<Value> = (0..10)
                .map(|k| {
                    let i = ops + b * 10 + k;
                    json!({
                        "id": k.to_string(),
                        "method": "PUT",
                        "path": format!("/v1/attempts/{}/answers/{}", t.attempt, ["e1", "e2", "e3"][k % 3]),
                        "idempotency_key": uuid::Uuid::new_v4().to_string(),
                        "body": {"value": format!("answer text {i}"), "seq": i + 1, "saved_at": "2026-11-28T10:00:00Z"}
                    })
                })
                .collect();
            let response: Value = http
                .post(format!("{base}/v1/batch"))
                .bearer_auth(&t.token)
                .json(&json!({"requests": requests}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(response["responses"].as_array().unwrap().iter().all(|r| r["status"] == 200));
        }
    })
    .await;
    let batch_rate = report(
        "batch of 10 answer PUTs",
        batches,
        batches * 10,
        batched.0,
        batched.1,
    );
    println!(
        "batching gives {:.1}x the answer writes/s of single PUTs",
        batch_rate / single_rate
    );
}

/// Runs `count` jobs with at most `concurrency` in flight; returns wall time and latencies.
async fn run<F, Fut>(count: usize, concurrency: usize, job: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(count);
    for i in 0..count {
        let permit = limit.clone().acquire_owned().await.unwrap();
        let fut = job(i);
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            fut.await;
            drop(permit);
            t.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for h in handles {
        latencies.push(h.await.unwrap());
    }
    (start.elapsed(), latencies)
}
