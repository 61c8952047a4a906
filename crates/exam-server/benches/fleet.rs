//! How long the fleet view takes over a big exam: `FLEET_STUDENTS` machines (default 1000),
//! each with `FLEET_MINUTES` minute summaries (default 60) of 12 metrics, in 25 labs and 3
//! exams. Seeds `metric_minutes` directly (what `POST /v1/events` stores for each
//! `metrics.minute`), then times `GET /v1/admin/fleet` by exam, lab and machine, and a
//! series, over real HTTP on loopback; then a student's answer saves, alone and while the
//! fleet view is asked for again and again (it runs on the read-only connection, so the saves
//! should not wait for it). Prints the times; asserts nothing about them.
//!
//! `cargo bench -p exam-server --bench fleet` (release build).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use exam_server::fleet::{Aggregate, Row, Summary, METRICS};
use exam_server::{Config, RateSpec};

const ADMIN: &str = "bench-admin-token-0123456789";
/// Answer saves per phase.
const SAVES: usize = 1000;

fn env_i64(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let students = env_i64("FLEET_STUDENTS", 1000);
    let minutes = env_i64("FLEET_MINUTES", 60);
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        admin_token: Some(ADMIN.into()),
        demo: true,
        user_rate: RateSpec::OFF,
        ip_rate: RateSpec::OFF,
        ..Config::new(dir.path().join("server.db"))
    };
    let server = exam_server::Server::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let state = server.state();

    let seeding = Instant::now();
    let now_ms = exam_server::now().timestamp_millis();
    let first_minute = (now_ms / 60_000 - minutes) * 60_000;
    {
        let mut conn = state.db.lock();
        let tx = conn.transaction().unwrap();
        for s in 0..students {
            for m in 0..minutes {
                let minute_ms = first_minute + m * 60_000;
                let mut metrics = [None; METRICS.len()];
                // Twelve of the nineteen, as an app in an exam sends them.
                for (i, slot) in metrics.iter_mut().enumerate().take(12) {
                    let v = ((s * 7 + m * 3 + i as i64) % 50) as f64;
                    *slot = Some(Aggregate {
                        count: 1 + (i as i64 % 5),
                        sum: v * 3.0,
                        min: v,
                        max: v * 2.0,
                    });
                }
                let summary = Summary {
                    minute_ms,
                    device: format!("{s:04}-c0ffee00c0ffee00c0ffee00c0ffee00"),
                    lab: Some(format!("Lab {}", s % 25)),
                    app_version: Some("1.4.0".into()),
                    attempt_id: Some(format!("attempt-{s}")),
                    exam_id: Some(format!("exam-{}", s % 3)),
                    metrics,
                };
                exam_server::fleet::record(
                    &tx,
                    &Row {
                        summary: &summary,
                        subnet: format!("10.0.{}.0/24", s % 25),
                        user_id: s + 1,
                        received_ms: minute_ms + 61_000,
                    },
                )
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    println!(
        "seeded {} machine-minutes ({students} machines × {minutes} minutes) in {:.1}s",
        students * minutes,
        seeding.elapsed().as_secs_f64()
    );

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    for path in [
        "/v1/admin/fleet?by=exam",
        "/v1/admin/fleet?by=lab",
        "/v1/admin/fleet?by=machine",
        "/v1/admin/fleet/series?metric=save_ms",
        "/v1/admin/fleet/series?metric=save_ms&by=lab&key=Lab%207",
        "/v1/admin/fleet/insights",
    ] {
        let mut times: Vec<Duration> = Vec::new();
        let mut bytes = 0;
        for _ in 0..7 {
            let started = Instant::now();
            let response = http
                .get(format!("http://{addr}{path}"))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            bytes = response.bytes().await.unwrap().len();
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "GET {path:<56} median {:>7.1} ms  min {:>7.1} ms  ({} KiB)",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            bytes / 1024
        );
    }

    // A student's answer saves, one after another: alone, then with the fleet view asked for
    // all the while.
    let base = format!("http://{addr}");
    let tokens: serde_json::Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "student1"),
            ("password", "demo"),
            ("client_id", "exam-desktop"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_string();
    let attempt: serde_json::Value = http
        .post(format!("{base}/v1/exams/demo-essay/attempts"))
        .bearer_auth(&token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let attempt = attempt["attempt_id"].as_str().unwrap().to_string();
    let mut seq = 0;
    let mut saves = |label: &'static str| {
        let (http, base, token, attempt) =
            (http.clone(), base.clone(), token.clone(), attempt.clone());
        seq += SAVES;
        let first = seq;
        async move {
            let mut times = Vec::new();
            for i in 0..SAVES {
                let started = Instant::now();
                let response = http
                    .put(format!("{base}/v1/attempts/{attempt}/answers/e1"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                    .json(
                        &serde_json::json!({"value": format!("answer {i}"), "seq": first + i,
                                               "saved_at": "2026-11-28T10:00:00Z"}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                times.push(started.elapsed());
            }
            times.sort();
            println!(
                "answer PUT {label:<46} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
                times[SAVES / 2].as_secs_f64() * 1e3,
                times[SAVES * 99 / 100].as_secs_f64() * 1e3,
                times[SAVES - 1].as_secs_f64() * 1e3,
            );
        }
    };
    saves("alone").await;
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let asking = {
        let (http, base, busy) = (http.clone(), base.clone(), busy.clone());
        tokio::spawn(async move {
            let mut asked = 0;
            while busy.load(std::sync::atomic::Ordering::Relaxed) {
                let response = http
                    .get(format!("{base}/v1/admin/fleet?by=exam"))
                    .bearer_auth(ADMIN)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                asked += 1;
            }
            asked
        })
    };
    saves("while the fleet view is asked for").await;
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    println!(
        "(the fleet view was asked for {} times meanwhile)",
        asking.await.unwrap()
    );

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}
