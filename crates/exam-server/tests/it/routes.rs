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
