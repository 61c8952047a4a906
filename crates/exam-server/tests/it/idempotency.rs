//! Idempotency keys: replay, reuse with another body, in flight, across a restart.

use reqwest::Method;
use serde_json::json;

use crate::{config, new_key, Student, TestServer};

#[tokio::test]
async fn a_replay_returns_the_stored_response_and_applies_nothing() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = s.start_attempt("demo-mixed").await;
    let path = format!("/v1/attempts/{attempt}/answers/q03");
    let body = json!({"value": "Au", "seq": 1, "saved_at": "2026-11-28T10:00:00Z"});
    let key = new_key();
    let first = s
        .request(Method::PUT, &path)
        .header("Idempotency-Key", &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: serde_json::Value = first.json().await.unwrap();
    // The same operation, with whitespace and key order that differ on the wire.
    let again = s
        .request(Method::PUT, &path)
        .header("Idempotency-Key", &key)
        .header("Content-Type", "application/json")
        .body(r#"{ "seq": 1, "saved_at": "2026-11-28T10:00:00Z", "value": "Au" }"#)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), first);
    let (_, admin) = server
        .admin(Method::GET, &format!("/v1/admin/attempts/{attempt}"), None)
        .await;
    assert_eq!(admin["applied_writes"], 1);
    assert_eq!(server.stats().await["idempotent_replays"], 1);
}

#[tokio::test]
async fn a_key_reused_for_another_body_is_422_and_a_missing_key_400() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = s.start_attempt("demo-mixed").await;
    let path = format!("/v1/attempts/{attempt}/answers/q03");
    let key = new_key();
    let (status, _) = s
        .send_keyed(
            Method::PUT,
            &path,
            &key,
            json!({"value": "Au", "seq": 1, "saved_at": "2026-11-28T10:00:00Z"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = s
        .send_keyed(
            Method::PUT,
            &path,
            &key,
            json!({"value": "Ag", "seq": 2, "saved_at": "2026-11-28T10:00:00Z"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );

    let response = s
        .request(Method::PUT, &path)
        .json(&json!({"value": "Ag", "seq": 3, "saved_at": "2026-11-28T10:00:00Z"}))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::status_json(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("idempotency_key_required"))
    );
    let long = "k".repeat(256);
    let (status, body) = s
        .send_keyed(
            Method::PUT,
            &path,
            &long,
            json!({"value": "Ag", "seq": 3, "saved_at": "2026-11-28T10:00:00Z"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("idempotency_key_required"))
    );
}

#[tokio::test]
async fn a_failed_request_is_not_stored_so_its_retry_can_succeed() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    // The answer arrives before its attempt (created offline, not yet delivered).
    let attempt = uuid::Uuid::new_v4().to_string();
    let key = new_key();
    let put = json!({"value": "Au", "seq": 1, "saved_at": "2026-11-28T10:00:00Z"});
    let path = format!("/v1/attempts/{attempt}/answers/q03");
    assert_eq!(
        s.send_keyed(Method::PUT, &path, &key, put.clone()).await.0,
        404
    );
    let (status, _) = s
        .send(
            Method::POST,
            "/v1/exams/demo-mixed/attempts",
            json!({"attempt_id": attempt}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = s.send_keyed(Method::PUT, &path, &key, put).await;
    assert_eq!((status, body["stored"].as_bool()), (200, Some(true)));
}

#[tokio::test]
async fn replay_works_across_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let server = TestServer::start_with(config(db.clone())).await;
    let tokens = server.login("student1").await;
    let s = Student {
        server: &server,
        tokens: tokens.clone(),
    };
    let attempt = s.start_attempt("demo-mixed").await;
    let key = new_key();
    let path = format!("/v1/attempts/{attempt}/answers/q03");
    let put = json!({"value": "Au", "seq": 1, "saved_at": "2026-11-28T10:00:00Z"});
    let (status, first) = s.send_keyed(Method::PUT, &path, &key, put.clone()).await;
    assert_eq!(status, 200);
    server.stop().await;

    let server = TestServer::start_with(config(db)).await;
    let s = Student {
        server: &server,
        tokens,
    };
    let response = s
        .request(Method::PUT, &path)
        .header("Idempotency-Key", &key)
        .json(&put)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), first);
    let (_, admin) = server
        .admin(Method::GET, &format!("/v1/admin/attempts/{attempt}"), None)
        .await;
    assert_eq!(admin["applied_writes"], 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_apply_once() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = s.start_attempt("demo-mixed").await;
    let key = new_key();
    let path = format!("/v1/attempts/{attempt}/answers/q04");
    let put = json!({"value": "essay text", "seq": 1, "saved_at": "2026-11-28T10:00:00Z"});
    let requests = (0..40).map(|_| s.send_keyed(Method::PUT, &path, &key, put.clone()));
    let results = futures::future::join_all(requests).await;
    let mut ok_bodies = Vec::new();
    for (status, body) in results {
        match status {
            200 => ok_bodies.push(body),
            409 => assert_eq!(body["code"], "idempotency_in_flight"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!ok_bodies.is_empty());
    assert!(ok_bodies.iter().all(|b| b == &ok_bodies[0]));
    let (_, admin) = server
        .admin(Method::GET, &format!("/v1/admin/attempts/{attempt}"), None)
        .await;
    assert_eq!(admin["applied_writes"], 1);
}

#[tokio::test]
async fn a_request_whose_key_is_still_in_flight_gets_409() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = s.start_attempt("demo-mixed").await;
    let key = new_key();
    // The first request with this key is still being processed (held here by the test).
    let user_id: i64 = rusqlite::Connection::open(&server.db)
        .unwrap()
        .query_row(
            "SELECT id FROM users WHERE username = 'student1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let entry = (format!("user:{user_id}"), key.clone());
    server.state.in_flight.lock().unwrap().insert(entry.clone());
    let path = format!("/v1/attempts/{attempt}/answers/q03");
    let put = json!({"value": "Au", "seq": 1, "saved_at": "2026-11-28T10:00:00Z"});
    let (status, body) = s.send_keyed(Method::PUT, &path, &key, put.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("idempotency_in_flight"))
    );
    // Once it is done, the retry goes through.
    server.state.in_flight.lock().unwrap().remove(&entry);
    let (status, body) = s.send_keyed(Method::PUT, &path, &key, put).await;
    assert_eq!((status, body["stored"].as_bool()), (200, Some(true)));
}
