use crate::TestServer;

#[tokio::test]
async fn healthz_answers_204_with_a_date_header() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.headers().contains_key("date"));
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_routes_answer_404() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.url("/no/such/route")).await.unwrap();
    assert_eq!(response.status(), 404);
}
