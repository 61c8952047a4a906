//! Bad input gets a clear problem, never a panic or a 5xx.

use reqwest::Method;
use serde_json::json;

use crate::{status_json, Student, TestServer};

#[tokio::test]
async fn a_body_over_one_mib_is_413() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = s.start_attempt("demo-mixed").await;
    let huge = format!(
        r#"{{"value": "{}", "seq": 1, "saved_at": "2026-11-28T10:00:00Z"}}"#,
        "x".repeat(1024 * 1024)
    );
    let response = s
        .request(Method::PUT, &format!("/v1/attempts/{attempt}/answers/q04"))
        .header("Idempotency-Key", crate::new_key())
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let response = server
        .http
        .post(server.url("/oauth/token"))
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400_problems_that_say_where() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = s.start_attempt("demo-mixed").await;
    let path = format!("/v1/attempts/{attempt}/answers/q03");
    let cases = [
        (r#"{"value": "Au", "seq": 1,"#, "malformed_body"),
        ("", "malformed_body"),
        (
            r#"{"value": "Au", "seq": "one", "saved_at": "2026-11-28T10:00:00Z"}"#,
            "invalid_body",
        ),
        (r#"{"value": "Au", "seq": 1}"#, "invalid_body"),
        (
            r#"{"value": "Au", "seq": 1, "saved_at": "2026-11-28T10:00:00Z", "extra": 1}"#,
            "invalid_body",
        ),
        (r#"[1, 2, 3]"#, "invalid_body"),
    ];
    for (body, code) in cases {
        let response = s
            .request(Method::PUT, &path)
            .header("Idempotency-Key", crate::new_key())
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, problem) = status_json(response).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some(code)),
            "{body}: {problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("line"),
            "{problem}"
        );
    }
    let (status, body) = s
        .send(
            Method::PUT,
            &path,
            json!({"value": "Au", "seq": 1, "saved_at": "yesterday"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("validation")));
    let (status, body) = s
        .send(
            Method::PUT,
            &path,
            json!({"value": "Au", "seq": -1, "saved_at": "2026-11-28T10:00:00Z"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("validation")));
}

#[tokio::test]
async fn wrong_methods_are_405_problems() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let (status, body) =
        status_json(s.request(Method::DELETE, "/v1/exams").send().await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (status, body) = status_json(
        server
            .request(Method::GET, "/oauth/token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn the_per_user_rate_limit_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(exam_server::Config {
        user_rate: exam_server::RateSpec::new(1.0, 3.0),
        ..crate::config(dir.path().join("s.db"))
    })
    .await;
    let s = Student::login(&server, "student1").await;
    for _ in 0..3 {
        assert_eq!(s.get("/v1/exams").await.0, 200);
    }
    let response = s.request(Method::GET, "/v1/exams").send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let (_, body) = status_json(response).await;
    assert_eq!(body["code"], "rate_limited");
    // Another student has a bucket of their own.
    assert_eq!(
        Student::login(&server, "student2")
            .await
            .get("/v1/exams")
            .await
            .0,
        200
    );
    assert!(server.stats().await["rate_limited"].as_u64().unwrap() >= 1);
}

/// JSON Schema (and so the OpenAPI document) counts `2.0` and `2e0` as the integer 2: the
/// server does too, and refuses real fractions like any other wrong type.
#[tokio::test]
async fn whole_numbers_may_be_written_with_a_fraction_or_an_exponent() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = s.start_attempt("demo-mixed").await;
    let path = format!("/v1/attempts/{attempt}/answers/q03");
    for (seq, status) in [("2.0", 200), ("3e0", 200), ("3.5", 400), ("1e400", 400)] {
        let body =
            format!(r#"{{"value": "Au", "seq": {seq}, "saved_at": "2026-11-28T10:00:00Z"}}"#);
        let response = s
            .request(Method::PUT, &path)
            .header("Idempotency-Key", crate::new_key())
            .body(body)
            .send()
            .await
            .unwrap();
        let (got, problem) = status_json(response).await;
        assert_eq!(got, status, "seq {seq}: {problem}");
    }
    let (status, body) = s
        .send(
            Method::POST,
            &format!("/v1/attempts/{attempt}/submit"),
            json!({"answer_count": 0.0, "answers_digest": "0".repeat(64)}),
        )
        .await;
    // The count was read: only the digest (and count) comparison refuses it.
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("digest_mismatch"))
    );
}

/// An event id is 1 to 255 characters, counted as characters (as the OpenAPI document's
/// `maxLength` counts them), not as UTF-8 bytes.
#[tokio::test]
async fn event_ids_are_limited_in_characters() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let event = |id: String| json!({"events": [{"id": id, "type": "metrics.minute", "at": "2026-11-28T10:00:00Z"}]});
    let (status, body) = s
        .send(Method::POST, "/v1/events", event("ệ".repeat(255)))
        .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (202, Some(1)),
        "{body}"
    );
    for id in ["ệ".repeat(256), String::new()] {
        let (status, body) = s.send(Method::POST, "/v1/events", event(id)).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("validation")));
    }
}

/// Serde reads a struct from an array too (`[null, null]` as two absent fields): every body of
/// the API is a JSON object, and anything else is refused where it starts.
#[tokio::test]
async fn a_body_that_is_not_an_object_is_refused() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    for body in ["[null, null]", " \n [null]", "null"] {
        let response = s
            .request(Method::POST, "/v1/exams/demo-mixed/attempts")
            .header("Idempotency-Key", crate::new_key())
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, problem) = status_json(response).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("invalid_body")),
            "{body}: {problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("line"),
            "{problem}"
        );
    }
}
