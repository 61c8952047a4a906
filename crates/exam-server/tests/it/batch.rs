//! `/v1/batch`: items processed one by one, exactly as if sent alone.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{new_key, Student, TestServer};

#[tokio::test]
async fn a_batch_with_good_and_bad_items_gives_independent_results() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = uuid::Uuid::new_v4().to_string();
    let saved = "2026-11-28T10:00:00Z";
    let items = json!({"requests": [
        {"id": "1", "method": "POST", "path": "/v1/exams/demo-mixed/attempts", "idempotency_key": new_key(), "body": {"attempt_id": attempt}},
        {"id": "2", "method": "PUT", "path": format!("/v1/attempts/{attempt}/answers/q01"), "idempotency_key": new_key(), "body": {"value": "o1", "seq": 1, "saved_at": saved}},
        {"id": "3", "method": "PUT", "path": format!("/v1/attempts/{attempt}/answers/q01"), "idempotency_key": new_key(), "body": {"value": "o9", "seq": 2, "saved_at": saved}},
        {"id": "4", "method": "PUT", "path": format!("/v1/attempts/{attempt}/answers/q03"), "body": {"value": "Au", "seq": 3, "saved_at": saved}},
        {"id": "5", "method": "GET", "path": "/v1/nope"},
        {"id": "6", "method": "PUT", "path": format!("/v1/attempts/{attempt}/answers/q03"), "idempotency_key": new_key(), "body": {"value": "Au", "seq": 4, "saved_at": saved}},
        {"id": "7", "method": "POST", "path": "/v1/batch", "idempotency_key": new_key(), "body": {"requests": []}},
        {"id": "8", "method": "GET", "path": format!("/v1/attempts/{attempt}")},
        {"id": "9", "method": "GET", "path": "/v1/admin/stats"}
    ]});
    let (status, body) = s
        .request(Method::POST, "/v1/batch")
        .json(&items)
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 200);
    let body: Value = body.json().await.unwrap();
    let results: Vec<(String, u64, Value)> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
                r["body"].clone(),
            )
        })
        .collect();
    let statuses: Vec<u64> = results.iter().map(|r| r.1).collect();
    assert_eq!(
        statuses,
        [201, 200, 422, 400, 404, 200, 400, 200, 403],
        "{body}"
    );
    assert_eq!(results[3].2["code"], "idempotency_key_required");
    assert_eq!(
        results[7].2["answers"],
        json!({"q01": {"value": "o1", "seq": 1}, "q03": {"value": "Au", "seq": 4}})
    );
}

#[tokio::test]
async fn an_item_sent_alone_then_in_a_batch_with_the_same_key_is_a_replay() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let attempt = s.start_attempt("demo-mixed").await;
    let key = new_key();
    let path = format!("/v1/attempts/{attempt}/answers/q02");
    let put = json!({"value": ["o1", "o3"], "seq": 1, "saved_at": "2026-11-28T10:00:00Z"});
    let (status, alone) = s.send_keyed(Method::PUT, &path, &key, put.clone()).await;
    assert_eq!(status, 200);
    let items = json!({"requests": [{"id": "a", "method": "PUT", "path": path, "idempotency_key": key, "body": put}]});
    let response: Value = s
        .request(Method::POST, "/v1/batch")
        .json(&items)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = &response["responses"][0];
    assert_eq!(item["status"], 200);
    assert_eq!(item["body"], alone);
    assert_eq!(item["replayed"], true);
    let (_, admin) = server
        .admin(Method::GET, &format!("/v1/admin/attempts/{attempt}"), None)
        .await;
    assert_eq!(admin["applied_writes"], 1);
}

#[tokio::test]
async fn oversized_and_malformed_batches_are_400() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "path": "/v1/exams"}))
        .collect();
    let response = s
        .request(Method::POST, "/v1/batch")
        .json(&json!({"requests": many}))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::status_json(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("batch_too_large"))
    );
    let response = s
        .request(Method::POST, "/v1/batch")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = crate::status_json(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_body"))
    );
    let response = s
        .request(Method::POST, "/v1/batch")
        .json(&json!({"requests": [{"id": 1}]}))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::status_json(response).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_body")));
    assert_eq!(
        s.request(Method::GET, "/v1/batch")
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}
