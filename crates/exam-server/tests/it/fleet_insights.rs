//! The fleet's insights over real summaries sent as the apps send them: several machines'
//! clocks off, one lab's network failing every few minutes, a machine still holding work, an
//! exam's expected peak from a past one — and the thresholds set on the command line.

use chrono::{DateTime, Duration, DurationRound, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::{config, Student, TestServer};

fn this_minute() -> DateTime<Utc> {
    exam_server::now()
        .duration_trunc(Duration::minutes(1))
        .unwrap()
}

fn summary(
    at: DateTime<Utc>,
    device: &str,
    lab: &str,
    exam: Option<&str>,
    metrics: Value,
) -> Value {
    let minute = exam_server::rfc3339(at);
    json!({"id": format!("metrics-{device}-{}", at.timestamp_millis()),
           "type": "metrics.minute", "at": minute,
           "attrs": {"minute": minute, "device": device, "lab": lab, "app_version": "1.4.0",
                     "attempt_id": exam.map(|_| "a-1"), "exam_id": exam, "metrics": metrics}})
}

fn agg(count: i64, sum: f64, max: f64) -> Value {
    json!({"count": count, "sum": sum, "min": 0.0, "max": max})
}

async fn send(student: &Student<'_>, events: Vec<Value>) {
    let (status, body) = student
        .send(Method::POST, "/v1/events", json!({"events": events}))
        .await;
    assert_eq!(status, 202, "{body}");
}

async fn insights(server: &TestServer, query: &str) -> Value {
    let (status, body) = server
        .admin(
            Method::GET,
            &format!("/v1/admin/fleet/insights{query}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn codes(body: &Value) -> Vec<(String, Value, usize)> {
    body["insights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["code"].as_str().unwrap().to_string(),
                i["lab"].clone(),
                i["machines"].as_array().unwrap().len(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_fleet_says_what_only_the_fleet_shows_with_evidence() {
    let server = TestServer::start().await;
    let now = this_minute();
    let quiet = insights(&server, "").await;
    assert_eq!(codes(&quiet), vec![], "{quiet}");

    let s1 = Student::login(&server, "student1").await;
    // Lab C: two machines whose clocks are 10 minutes ahead (their minutes arrive before they
    // begin), with 4 and 3 outages in the last hour.
    let mut events = Vec::new();
    for (device, outages) in [("dev-c1", 4.0), ("dev-c2", 3.0)] {
        for k in 0..6 {
            let metrics = if k == 0 {
                json!({"outages": agg(1, outages, 1.0), "delivered": agg(60, 5.0, 1.0)})
            } else {
                json!({"delivered": agg(60, 5.0, 1.0)})
            };
            events.push(summary(
                now + Duration::minutes(10 - k),
                device,
                "Lab C",
                None,
                metrics,
            ));
        }
    }
    // Lab D: a machine on time, holding 40 items without a delivery for the last 30 minutes.
    for k in 0..=30 {
        events.push(summary(
            now - Duration::minutes(30 - k),
            "dev-d1",
            "Lab D",
            None,
            json!({"queue_depth": agg(60, 2400.0, 40.0), "delivered": agg(60, 0.0, 0.0)}),
        ));
    }
    for chunk in events.chunks(50) {
        send(&s1, chunk.to_vec()).await;
    }

    let body = insights(&server, "").await;
    assert_eq!(
        codes(&body),
        vec![
            ("clock_skew".into(), Value::Null, 2),
            ("frequent_outages".into(), json!("Lab C"), 2),
            ("backlog".into(), json!("Lab D"), 1),
        ],
        "{body}"
    );
    let skew = &body["insights"][0];
    assert!(
        skew["evidence"].as_str().unwrap().contains("ahead"),
        "{skew}"
    );
    assert!(skew["value"] == 2.0 && skew["threshold"] == 2.0, "{skew}");
    let backlog = &body["insights"][2];
    let waited = backlog["value"].as_f64().unwrap();
    assert!((29.0..=32.0).contains(&waited), "{backlog}");
    assert!(
        backlog["evidence"].as_str().unwrap().contains("40 items"),
        "{backlog}"
    );
    assert!(!backlog["recommendation"].as_str().unwrap().is_empty());
    assert_eq!(body["machines"], 3);
    assert_eq!(body["thresholds"]["clock_skew_s"], 60.0);

    // Upcoming exams with their expected peak: no past exam yet, so no number.
    let capacity = body["capacity"].as_array().unwrap();
    assert!(!capacity.is_empty(), "{body}");
    assert!(capacity
        .iter()
        .all(|c| c["peak_writes_per_s"].is_null() && c["past_exams"] == 0));

    // A past exam: 2 students, the busiest minute 240 deliveries (4 a second).
    for student in ["student2", "student3"] {
        let s = Student::login(&server, student).await;
        s.start_attempt("demo-mixed").await;
    }
    send(
        &s1,
        vec![
            summary(
                now - Duration::minutes(50),
                "dev-e1",
                "Lab E",
                Some("demo-mixed"),
                json!({"delivered": agg(60, 100.0, 3.0)}),
            ),
            summary(
                now - Duration::minutes(50),
                "dev-e2",
                "Lab E",
                Some("demo-mixed"),
                json!({"delivered": agg(60, 140.0, 3.0)}),
            ),
            summary(
                now - Duration::minutes(49),
                "dev-e1",
                "Lab E",
                Some("demo-mixed"),
                json!({"delivered": agg(60, 30.0, 3.0)}),
            ),
        ],
    )
    .await;
    let body = insights(&server, "?students=1000").await;
    let expected = body["capacity"][0].clone();
    assert_eq!(expected["students"], 1000.0, "{expected}");
    assert_eq!(expected["past_exams"], 1, "{expected}");
    // 4 writes/s for 2 students: 2,000 for 1,000.
    assert_eq!(expected["peak_writes_per_s"], 2000.0, "{expected}");

    let (status, body) = server
        .admin(Method::GET, "/v1/admin/fleet/insights?students=lots", None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("students"),
        "{body}"
    );
}

#[tokio::test]
async fn thresholds_are_the_servers_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path().join("server.db"));
    cfg.insights.set("backlog_min=60").unwrap();
    let server = TestServer::start_with(cfg).await;
    let s1 = Student::login(&server, "student1").await;
    let now = this_minute();
    let events = (0..=30)
        .map(|k| {
            summary(
                now - Duration::minutes(30 - k),
                "dev-d1",
                "Lab D",
                None,
                json!({"queue_depth": agg(60, 2400.0, 40.0)}),
            )
        })
        .collect();
    send(&s1, events).await;
    let body = insights(&server, "").await;
    assert_eq!(
        codes(&body),
        vec![],
        "30 minutes is no backlog at 60: {body}"
    );
    assert_eq!(body["thresholds"]["backlog_min"], 60.0);
}

#[tokio::test]
async fn trends_become_predictions_with_their_backtests() {
    let server = TestServer::start().await;
    let s1 = Student::login(&server, "student1").await;
    let now = exam_server::now();
    let hour = now.duration_trunc(Duration::hours(1)).unwrap();
    let ten = now.duration_trunc(Duration::minutes(10)).unwrap();
    let mut minutes: std::collections::BTreeMap<(&str, DateTime<Utc>), Value> = Default::default();
    // Token refreshes failing 3 more each hour for 12 hours (another machine of the lab).
    for h in 0..12 {
        minutes.insert(
            ("dev-f2", hour - Duration::hours(11 - h)),
            json!({"refresh_failures": agg(1, 3.0 * h as f64, 3.0 * h as f64)}),
        );
    }
    // The disk losing 1 GiB an hour for 6 hours, 3.5 GiB left; saves up to 900 ms lately.
    for k in 0..36 {
        let left = 3584.0 + (35 - k) as f64 * 1024.0 / 6.0;
        let mut metrics =
            json!({"disk_free_mb": {"count": 1, "sum": left, "min": left, "max": left}});
        if k == 35 {
            metrics["save_ms"] = json!({"count": 10, "sum": 1500.0, "min": 20.0, "max": 900.0});
        }
        minutes.insert(("dev-f1", ten - Duration::minutes(10 * (35 - k))), metrics);
    }
    // Each machine's last minute, sent as it ends (as the apps do): their clocks are right.
    let last = now.duration_trunc(Duration::minutes(1)).unwrap() - Duration::minutes(1);
    for device in ["dev-f1", "dev-f2"] {
        minutes
            .entry((device, last))
            .or_insert_with(|| json!({"delivered": agg(60, 0.0, 0.0)}));
    }
    let events: Vec<Value> = minutes
        .into_iter()
        .map(|((device, at), metrics)| summary(at, device, "Lab F", None, metrics))
        .collect();
    for chunk in events.chunks(50) {
        send(&s1, chunk.to_vec()).await;
    }
    let body = insights(&server, "").await;
    assert_eq!(
        codes(&body),
        vec![
            ("refresh_failures_rising".into(), json!("Lab F"), 0),
            ("slow_disks".into(), json!("Lab F"), 1),
            ("disk_filling_up".into(), json!("Lab F"), 1),
        ],
        "{body}"
    );
    let rising = &body["insights"][0];
    assert!(
        (rising["value"].as_f64().unwrap() - 3.0).abs() < 0.01,
        "{rising}"
    );
    assert!(rising["backtest"]["n"].as_u64().unwrap() > 0, "{rising}");
    let slow = &body["insights"][1];
    assert_eq!(slow["value"], 900.0, "{slow}");
    let filling = &body["insights"][2];
    // 3,584 MiB left, 512 kept, 1,024 MiB an hour: 3 hours.
    let eta_h = filling["value"].as_f64().unwrap() / 3600.0;
    assert!((eta_h - 3.0).abs() < 0.05, "{filling}");
    assert!(
        filling["evidence"].as_str().unwrap().contains("3.0 h"),
        "{filling}"
    );
    assert!(
        filling["backtest"]["mae"].as_f64().unwrap() < 1.0,
        "{filling}"
    );
}
