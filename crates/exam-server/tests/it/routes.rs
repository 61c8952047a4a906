use crate::TestServer;

#[tokio::test]
async fn probes_answer_204_with_a_date_header() {
    let server = TestServer::start().await;
    for path in ["/healthz", "/generate_204"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 204, "{path}");
        assert!(response.headers().contains_key("date"), "{path}");
        assert!(response.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn unknown_routes_answer_404_problems() {
    let server = TestServer::start().await;
    for path in ["/no/such/route", "/v1/nope", "/v1/exams/x/nope"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_found");
        assert_eq!(body["status"], 404);
    }
}

/// RFC 9110 §15.5.6: a 405 names the methods the resource accepts in `Allow` — from the
/// `/v1` table (and the batch) as from axum's own method routing for the other routes.
#[tokio::test]
async fn wrong_methods_answer_405_with_allow() {
    let server = TestServer::start().await;
    let table = [
        ("DELETE", "/v1/exams", "GET"),
        ("TRACE", "/v1/exams/demo-mixed/package", "GET"),
        ("GET", "/v1/exams/demo-mixed/attempts", "POST"),
        ("OPTIONS", "/v1/attempts/a1/answers/q01", "PUT"),
        ("PUT", "/v1/attempts/a1", "GET"),
        ("GET", "/v1/batch", "POST"),
        ("GET", "/v1/admin/ip-blocks", "POST"),
        ("GET", "/v1/admin/ip-blocks/1", "DELETE"),
        ("POST", "/healthz", "GET,HEAD"),
        ("DELETE", "/openapi.json", "GET,HEAD"),
        ("GET", "/oauth/token", "POST"),
        ("PUT", "/oauth/revoke", "POST"),
    ];
    for (method, path, allow) in table {
        let response = server
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                path,
            )
            .bearer_auth(crate::ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        let allowed = response.headers().get("allow").map(|v| v.to_str().unwrap());
        let normalized = allowed.map(|a| a.replace(' ', ""));
        assert_eq!(normalized.as_deref(), Some(allow), "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "method_not_allowed", "{method} {path}");
    }
}
