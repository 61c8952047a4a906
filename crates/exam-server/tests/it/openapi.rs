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
    ("GET", "/updates/{target}/{arch}/{current}"),
    ("GET", "/updates/files/{channel}/{version}/{file}"),
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
            .replace("{kind}", "security")
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

fn document() -> Value {
    serde_json::from_str(exam_server::http::OPENAPI).unwrap()
}

/// The limits the document states are the ones the server enforces (schemathesis, run by
/// `scripts/schemathesis.sh`, checks the same from the outside with generated requests).
#[test]
fn the_documented_limits_are_the_servers() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let key = &doc["components"]["parameters"]["IdempotencyKey"]["schema"];
    assert_eq!(key["minLength"], 1);
    assert_eq!(key["maxLength"], exam_server::idempotency::MAX_KEY_LEN);
    let events = &schemas["EventsRequest"]["properties"]["events"];
    assert_eq!(events["maxItems"], exam_server::api::MAX_EVENTS);
    assert_eq!(
        events["items"]["properties"]["id"]["maxLength"],
        exam_server::api::MAX_EVENT_ID_CHARS
    );
    assert_eq!(
        schemas["BatchRequest"]["properties"]["requests"]["maxItems"],
        exam_server::http::MAX_BATCH
    );
    // Bodies the server reads with `deny_unknown_fields` say so.
    for (name, schema) in [
        ("AttemptCreate", &schemas["AttemptCreate"]),
        ("AnswerPut", &schemas["AnswerPut"]),
        ("SubmitRequest", &schemas["SubmitRequest"]),
        ("BatchRequest", &schemas["BatchRequest"]),
        (
            "BatchRequest item",
            &schemas["BatchRequest"]["properties"]["requests"]["items"],
        ),
        ("IpBlockCreate", &schemas["IpBlockCreate"]),
    ] {
        assert_eq!(schema["additionalProperties"], false, "{name}");
    }
    // An empty path segment is no route at all.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    assert_eq!(parameter["schema"]["minLength"], 1, "{method} {path}");
                }
            }
        }
    }
}

/// Student operations name the OAuth 2 flow that mints their tokens, at the real endpoint.
#[test]
fn the_security_schemes_point_at_the_token_endpoint() {
    let doc = document();
    let flow = &doc["components"]["securitySchemes"]["oauth2"]["flows"]["password"];
    assert_eq!(flow["tokenUrl"], "/oauth/token");
    assert_eq!(flow["refreshUrl"], "/oauth/token");
    assert!(server_routes().contains(&("POST".to_string(), "/oauth/token".to_string())));
    for route in exam_server::routes::ROUTES {
        let operation = &doc["paths"][route.template][route.method.as_str().to_lowercase()];
        let expected = match route.access {
            exam_server::routes::Access::Student => serde_json::json!([{"oauth2": ["exam"]}]),
            exam_server::routes::Access::Admin => serde_json::json!([{"adminToken": []}]),
        };
        assert_eq!(
            operation["security"], expected,
            "{} {}",
            route.method, route.template
        );
    }
}
