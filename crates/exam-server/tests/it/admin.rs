//! The administration API: its own token, IP blocks, audit search, stats.

use reqwest::Method;
use serde_json::json;

use crate::{status_json, Student, TestServer};

#[tokio::test]
async fn the_admin_api_needs_the_admin_token() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    assert_eq!(
        server
            .request(Method::GET, "/v1/admin/stats")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let (status, body) = s.get("/v1/admin/stats").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    // And the admin token is not a student's.
    let response = server
        .request(Method::GET, "/v1/exams")
        .bearer_auth(crate::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn an_ip_block_shuts_out_its_range_until_removed() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let (status, block) = server
        .admin(
            Method::POST,
            "/v1/admin/ip-blocks",
            Some(json!({"cidr": "127.0.0.0/8", "reason": "test"})),
        )
        .await;
    assert_eq!(status, 201, "{block}");
    assert_eq!(block["cidr"], "127.0.0.0/8");
    let (status, body) = s.get("/v1/exams").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("ip_blocked")));
    let login = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "student2"),
            ("password", "demo"),
        ])
        .await;
    assert_eq!(login.status(), 403);
    // Health probes and the admin API stay reachable, so the block can be lifted.
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        204
    );
    let id = block["id"].as_i64().unwrap();
    let (status, _) = server
        .admin(Method::DELETE, &format!("/v1/admin/ip-blocks/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(s.get("/v1/exams").await.0, 200);
    assert_eq!(
        server
            .admin(Method::DELETE, &format!("/v1/admin/ip-blocks/{id}"), None)
            .await
            .0,
        404
    );

    // Another range does not touch us; bad ranges and past expiry are refused.
    let (status, _) = server
        .admin(
            Method::POST,
            "/v1/admin/ip-blocks",
            Some(
                json!({"cidr": "10.1.2.0/24", "reason": "lab 2", "until": "2099-01-01T00:00:00Z"}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(s.get("/v1/exams").await.0, 200);
    for bad in [
        json!({"cidr": "10.1.2.0/99", "reason": "x"}),
        json!({"cidr": "10.0.0.1", "reason": "x", "until": "2001-01-01T00:00:00Z"}),
        json!({"cidr": "10.0.0.1", "reason": " "}),
    ] {
        let (status, body) = server
            .admin(Method::POST, "/v1/admin/ip-blocks", Some(bad.clone()))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_audit_log_is_searchable_newest_first() {
    let server = TestServer::start().await;
    Student::login(&server, "student1").await;
    Student::login(&server, "student2").await;
    server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "student1"),
            ("password", "bad"),
        ])
        .await;
    let (status, all) = server.admin(Method::GET, "/v1/admin/audit", None).await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let (_, mine) = server
        .admin(
            Method::GET,
            "/v1/admin/audit?user=student1&type=login",
            None,
        )
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["ip"], "127.0.0.1");
    let (_, one) = server
        .admin(Method::GET, "/v1/admin/audit?limit=1", None)
        .await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["type"], "login_failure");
    let (_, none) = server
        .admin(
            Method::GET,
            "/v1/admin/audit?since=2099-01-01T00:00:00Z",
            None,
        )
        .await;
    assert!(none.as_array().unwrap().is_empty());
    assert_eq!(
        server
            .admin(Method::GET, "/v1/admin/audit?since=tuesday", None)
            .await
            .0,
        422
    );
    assert_eq!(
        server
            .admin(Method::GET, "/v1/admin/audit?limit=0", None)
            .await
            .0,
        422
    );
}

#[tokio::test]
async fn the_audit_table_refuses_updates_and_deletes() {
    let server = TestServer::start().await;
    Student::login(&server, "student1").await;
    let conn = rusqlite::Connection::open(&server.db).unwrap();
    let update = conn.execute("UPDATE audit SET type = 'nothing'", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = conn.execute("DELETE FROM audit", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[tokio::test]
async fn stats_count_requests_by_route_and_status() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    s.get("/v1/exams").await;
    s.get("/v1/exams").await;
    s.get("/v1/exams/nope/package").await;
    let stats = server.stats().await;
    assert_eq!(stats["requests"]["GET /v1/exams"]["200"], 2, "{stats}");
    assert_eq!(
        stats["requests"]["GET /v1/exams/{exam_id}/package"]["404"], 1,
        "{stats}"
    );
    assert_eq!(stats["requests"]["POST /oauth/token"]["200"], 1, "{stats}");
    assert_eq!(stats["logins"], 1);
    let (status, _) = status_json(
        server
            .request(Method::GET, "/v1/admin/stats")
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
}
