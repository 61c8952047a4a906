//! Properties over many generated cases, against the real server:
//! - duplicated, reordered answer PUTs end with the highest `seq` stored and
//!   `applied_writes` equal to the number of effective writes;
//! - no request body, however hostile, makes the server panic or answer 5xx.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use reqwest::Method;
use serde_json::{json, Value};

use crate::{new_key, Student, TestServer};

/// One save the client made: question, value, and its position in the client's order
/// (which is its `seq`, strictly increasing across the attempt).
#[derive(Debug, Clone)]
struct Save {
    question: usize,
    text: String,
}

/// The client's saves, then the delivery order: indexes into the saves, with duplicates.
fn scenario() -> impl Strategy<Value = (Vec<Save>, Vec<usize>)> {
    prop::collection::vec(
        (0usize..4, "[a-z]{0,12}").prop_map(|(question, text)| Save { question, text }),
        1..25,
    )
    .prop_flat_map(|saves| {
        let n = saves.len();
        let deliveries = prop::collection::vec(0..n, n..n * 3)
            .prop_map(move |mut extra| {
                // Every save is delivered at least once; some twice or more.
                extra.extend(0..n);
                extra
            })
            .prop_shuffle();
        (Just(saves), deliveries)
    })
}

const QUESTIONS: [&str; 4] = ["q03", "q04", "q07", "q08"];

#[test]
fn duplicated_reordered_saves_keep_the_highest_seq_and_count_effective_writes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start());
    let student = runtime.block_on(Student::login(&server, "student1"));
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    runner
        .run(&scenario(), |(saves, deliveries)| {
            runtime.block_on(async {
                let attempt = student.start_attempt("demo-mixed").await;
                let keys: Vec<String> = saves.iter().map(|_| new_key()).collect();
                // The model: what a correct server must end with.
                let mut highest: HashMap<usize, usize> = HashMap::new();
                let mut delivered = vec![false; saves.len()];
                let mut effective = 0;
                for &i in &deliveries {
                    let save = &saves[i];
                    let seq = i + 1;
                    let path = format!(
                        "/v1/attempts/{attempt}/answers/{}",
                        QUESTIONS[save.question]
                    );
                    let body =
                        json!({"value": save.text, "seq": seq, "saved_at": "2026-11-28T10:00:00Z"});
                    let (status, reply) =
                        student.send_keyed(Method::PUT, &path, &keys[i], body).await;
                    prop_assert_eq!(status, 200, "{}", reply);
                    if !delivered[i] {
                        delivered[i] = true;
                        if highest.get(&save.question).is_none_or(|&h| seq > h) {
                            highest.insert(save.question, seq);
                            effective += 1;
                        }
                    }
                }
                let (_, stored) = server
                    .admin(Method::GET, &format!("/v1/admin/attempts/{attempt}"), None)
                    .await;
                prop_assert_eq!(stored["applied_writes"].as_u64(), Some(effective as u64));
                for (question, seq) in highest {
                    let answer = &stored["answers"][QUESTIONS[question]];
                    prop_assert_eq!(answer["seq"].as_u64(), Some(seq as u64));
                    prop_assert_eq!(&answer["value"], &json!(saves[seq - 1].text));
                }
                Ok(())
            })
        })
        .unwrap();
}

fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("value".to_string()),
        Just("seq".to_string()),
        Just("saved_at".to_string()),
        Just("attempt_id".to_string()),
        Just("started_at".to_string()),
        Just("requests".to_string()),
        Just("events".to_string()),
        Just("answers_digest".to_string()),
        Just("answer_count".to_string()),
        Just("cidr".to_string()),
        ".{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e300f64..1e300).prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::String),
        Just(json!("2026-11-28T10:00:00Z")),
        Just(json!("o1")),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..256),
        "[a-z_]{1,10}=[^&]{0,20}(&[a-z_]{1,10}=[^&]{0,20}){0,4}".prop_map(String::into_bytes),
    ]
}

#[test]
fn no_body_makes_any_route_panic_or_answer_5xx() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start());
    let student = runtime.block_on(Student::login(&server, "student1"));
    let attempt = runtime.block_on(student.start_attempt("demo-mixed"));
    let mut targets: Vec<(Method, String)> = exam_server::routes::ROUTES
        .iter()
        .map(|r| {
            let path = r
                .template
                .replace("{exam_id}", "demo-mixed")
                .replace("{attempt_id}", &attempt)
                .replace("{question_id}", "q02")
                // Not student1: revoking the sessions of the student making the requests
                // would only turn the rest of the run into 401s.
                .replace("{username}", "student2")
                .replace("{id}", "1");
            (
                Method::from_bytes(r.method.as_str().as_bytes()).unwrap(),
                path,
            )
        })
        .collect();
    targets.push((Method::POST, "/v1/batch".into()));
    targets.push((Method::POST, "/oauth/token".into()));
    targets.push((Method::POST, "/oauth/revoke".into()));

    let mut runner = TestRunner::new(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(0..targets.len(), body(), any::<bool>()),
            |(target, body, as_admin)| {
                let (method, path) = &targets[target];
                let token = if as_admin {
                    crate::ADMIN
                } else {
                    student.tokens.access.as_str()
                };
                let status = runtime.block_on(async {
                    let response = server
                        .request(method.clone(), path)
                        .bearer_auth(token)
                        .header("Idempotency-Key", new_key())
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    response.status().as_u16()
                });
                prop_assert!(
                    status < 500,
                    "{} {} answered {} to {:?}",
                    method,
                    path,
                    status,
                    String::from_utf8_lossy(&body)
                );
                Ok(())
            },
        )
        .unwrap();
    // The server is still healthy, and the attempt still takes answers.
    let (status, _) = runtime.block_on(student.put_answer(&attempt, "q01", json!("o1"), 1_000_000));
    assert!(status == 200 || status == 409, "{status}");
}
