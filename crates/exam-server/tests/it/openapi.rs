//! The OpenAPI document matches the routes the server really has.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::TestServer;

/// Routes outside the `/v1` table.
const OTHER_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/generate_204"),
    ("GET", "/openapi.json"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/revoke"),
    ("POST", "/v1/batch"),
];

fn server_routes() -> BTreeSet<(String, String)> {
    exam_server::routes::ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.template.to_string()))
        .chain(
            OTHER_ROUTES
                .iter()
                .map(|(m, p)| (m.to_string(), p.to_string())),
        )
        .collect()
}

#[tokio::test]
async fn the_served_document_lists_exactly_the_routes() {
    let server = TestServer::start().await;
    let doc: Value = reqwest::get(server.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert_eq!(documented, server_routes());
}

#[tokio::test]
async fn every_documented_route_exists_on_the_live_server() {
    let server = TestServer::start().await;
    for (method, template) in server_routes() {
        let path = template
            .replace("{exam_id}", "demo-mixed")
            .replace("{attempt_id}", "00000000-0000-0000-0000-000000000000")
            .replace("{question_id}", "q01")
            .replace("{username}", "student1")
            .replace("{id}", "1");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = server
            .request(method.clone(), &path)
            .bearer_auth(crate::ADMIN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}");
        assert!(
            status != 404
                || body.contains("there is no ") && !body.contains(&format!("there is no {path}")),
            "{method} {path}: {body}"
        );
    }
}
