//! Exams, attempts, answers, submission: the student's path through an exam.

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{Student, TestServer};

#[tokio::test]
async fn the_exam_list_and_package_with_etag() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let (status, exams) = s.get("/v1/exams").await;
    assert_eq!(status, 200);
    let mixed = exams
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "demo-mixed")
        .unwrap();
    assert_eq!(mixed["question_count"], 20);
    for field in ["title", "version", "opens_at", "closes_at", "duration_s"] {
        assert!(!mixed[field].is_null(), "{field}");
    }

    let response = s
        .request(Method::GET, "/v1/exams/demo-mixed/package")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let package: Value = response.json().await.unwrap();
    assert_eq!(package["questions"].as_array().unwrap().len(), 20);
    assert_eq!(package["id"], "demo-mixed");

    let again = s
        .request(Method::GET, "/v1/exams/demo-mixed/package")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    let other = s
        .request(Method::GET, "/v1/exams/demo-mixed/package")
        .header("If-None-Match", "\"old\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(s.get("/v1/exams/nope/package").await.0, 404);
}

#[tokio::test]
async fn attempts_can_be_created_by_the_server_or_the_client() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let (status, body) = s
        .send(Method::POST, "/v1/exams/demo-mixed/attempts", json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(uuid::Uuid::parse_str(body["attempt_id"].as_str().unwrap()).is_ok());

    // Started offline ten minutes ago: the client's id and start time are kept.
    let id = uuid::Uuid::new_v4().to_string();
    let started = (chrono::Utc::now() - chrono::Duration::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (status, body) = s
        .send(
            Method::POST,
            "/v1/exams/demo-mixed/attempts",
            json!({"attempt_id": id, "started_at": started}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["attempt_id"], id);
    assert_eq!(body["started_at"], started);
    let deadline =
        chrono::DateTime::parse_from_rfc3339(body["deadline_at"].as_str().unwrap()).unwrap();
    let start = chrono::DateTime::parse_from_rfc3339(&started).unwrap();
    assert_eq!((deadline - start).num_seconds(), 3600);

    // A start time in the future is not trusted: the server's clock is used.
    let (status, body) = s
        .send(
            Method::POST,
            "/v1/exams/demo-mixed/attempts",
            json!({"started_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201);
    assert!(body["started_at"].as_str().unwrap() < "2099");

    // Someone else cannot take that id; a non-UUID id is refused.
    let other = Student::login(&server, "student2").await;
    let (status, body) = other
        .send(
            Method::POST,
            "/v1/exams/demo-mixed/attempts",
            json!({"attempt_id": id}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("attempt_id_taken"))
    );
    let (status, body) = s
        .send(
            Method::POST,
            "/v1/exams/demo-mixed/attempts",
            json!({"attempt_id": "nope"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("validation")));
    let (status, _) = s
        .send(Method::POST, "/v1/exams/nope/attempts", json!({}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_stale_seq_never_overwrites_a_newer_answer() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = s.start_attempt("demo-mixed").await;
    let (status, body) = s.put_answer(&attempt, "q03", json!("Au"), 5).await;
    assert_eq!(
        (status, body["stored"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let (status, body) = s.put_answer(&attempt, "q03", json!("Ag"), 3).await;
    assert_eq!((status, body["stored"].as_bool()), (200, Some(false)));
    let (_, body) = s.get(&format!("/v1/attempts/{attempt}")).await;
    assert_eq!(body["answers"]["q03"], json!({"value": "Au", "seq": 5}));
    let (_, admin) = server
        .admin(Method::GET, &format!("/v1/admin/attempts/{attempt}"), None)
        .await;
    assert_eq!(admin["applied_writes"], 1);
    assert_eq!(admin["username"], "student1");
}

#[tokio::test]
async fn answers_are_checked_against_their_question() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = s.start_attempt("demo-mixed").await;
    // q01 single, q02 multiple, q03 short, q04 essay.
    let good = [
        ("q01", json!("o2")),
        ("q02", json!(["o1", "o3"])),
        ("q03", json!("Au")),
        ("q04", json!("Vì ánh sáng xanh tán xạ mạnh hơn.")),
    ];
    for (i, (q, value)) in good.into_iter().enumerate() {
        let (status, body) = s.put_answer(&attempt, q, value, i as i64 + 1).await;
        assert_eq!(status, 200, "{q}: {body}");
    }
    let bad = [
        ("q01", json!("o9")),
        ("q01", json!(["o1"])),
        ("q02", json!("o1")),
        ("q03", json!(42)),
        ("q03", json!("x".repeat(201))),
    ];
    for (q, value) in bad {
        let (status, body) = s.put_answer(&attempt, q, value.clone(), 100).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation")),
            "{q} {value}"
        );
    }
    assert_eq!(s.put_answer(&attempt, "q99", json!("x"), 100).await.0, 404);
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        s.put_answer(&unknown.to_string(), "q01", json!("o1"), 1)
            .await
            .0,
        404
    );
    // Another student's attempt does not exist for this one: the same 404, the same code,
    // as an attempt nobody has.
    let other = Student::login(&server, "student2").await;
    let (status, body) = other.put_answer(&attempt, "q01", json!("o1"), 200).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("attempt_not_found"))
    );
    let (status, body) = other.get(&format!("/v1/attempts/{attempt}")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("attempt_not_found"))
    );
    let (_, nobodys) = s.get(&format!("/v1/attempts/{unknown}")).await;
    assert_eq!(nobodys["code"], "attempt_not_found");
}

fn digest(canonical: &str) -> String {
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

#[tokio::test]
async fn submission_checks_the_digest_and_gives_a_receipt() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = s.start_attempt("demo-mixed").await;
    s.put_answer(&attempt, "q02", json!(["o3", "o1"]), 1).await;
    s.put_answer(&attempt, "q01", json!("o2"), 2).await;
    let path = format!("/v1/attempts/{attempt}/submit");

    // The client believes it also answered q03: the server says what it holds.
    let wrong = digest(r#"{"q01":"o2","q02":["o1","o3"],"q03":"Au"}"#);
    let (status, body) = s
        .send(
            Method::POST,
            &path,
            json!({"answer_count": 3, "answers_digest": wrong}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("digest_mismatch")),
        "{body}"
    );
    let expected = digest(r#"{"q01":"o2","q02":["o1","o3"]}"#);
    assert_eq!(body["answers_digest"], expected);
    assert_eq!(body["answers"], json!({"q01": 2, "q02": 1}));

    // It re-sends the missing answer and submits again.
    s.put_answer(&attempt, "q03", json!("Au"), 3).await;
    let key = crate::new_key();
    let submit = json!({"answer_count": 3, "answers_digest": wrong});
    let (status, receipt) = s
        .send_keyed(Method::POST, &path, &key, submit.clone())
        .await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["answers_digest"], wrong);
    assert_eq!(receipt["late"], false);
    assert!(receipt["receipt_id"].is_string() && receipt["submitted_at"].is_string());

    // The same submission retried gets the same receipt; a new one is refused.
    let (status, again) = s
        .send_keyed(Method::POST, &path, &key, submit.clone())
        .await;
    assert_eq!((status, &again), (200, &receipt));
    let (status, body) = s.send(Method::POST, &path, submit).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("attempt_closed"))
    );
    let (status, body) = s.put_answer(&attempt, "q04", json!("late"), 4).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("attempt_closed"))
    );

    let (_, detail) = s.get(&format!("/v1/attempts/{attempt}")).await;
    assert_eq!(detail["status"], "submitted");
    assert_eq!(detail["receipt"], receipt);
    let (_, list) = server
        .admin(Method::GET, "/v1/admin/users/student1/attempts", None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        server
            .admin(Method::GET, "/v1/admin/users/nobody/attempts", None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn events_are_accepted_once_per_id() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let events = json!({"events": [
        {"id": "e1", "type": "focus_lost", "at": "2026-11-28T10:00:00Z", "attrs": {"window": "main"}},
        {"id": "e2", "type": "network_offline", "at": "2026-11-28T10:00:01Z"}
    ]});
    let (status, body) = s.send(Method::POST, "/v1/events", events.clone()).await;
    assert_eq!((status, body["accepted"].as_i64()), (202, Some(2)));
    // A new key (a new request) with the same events: deduplicated by id.
    let (status, body) = s.send(Method::POST, "/v1/events", events.clone()).await;
    assert_eq!((status, body["accepted"].as_i64()), (202, Some(0)));
    // Another student whose client picked the same ids: their events are theirs, not dropped.
    let other = Student::login(&server, "student2").await;
    let (status, body) = other.send(Method::POST, "/v1/events", events).await;
    assert_eq!((status, body["accepted"].as_i64()), (202, Some(2)));
    let many: Vec<Value> = (0..501)
        .map(|i| json!({"id": format!("x{i}"), "type": "t", "at": "2026-11-28T10:00:00Z"}))
        .collect();
    let (status, body) = s
        .send(Method::POST, "/v1/events", json!({"events": many}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("batch_too_large"))
    );
}
