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
    let id = block["id"].as_str().unwrap();
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
    // IDs are opaque strings to clients; this server's own test knows they count up.
    let ids: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
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

#[tokio::test]
async fn an_ip_block_rolled_back_never_reaches_the_cache() {
    let server = TestServer::start().await;
    let state = server.state.clone();
    let body = json!({"cidr": "10.9.8.0/24", "reason": "test"}).to_string();
    let call = exam_server::routes::Call {
        method: Method::POST,
        path: "/v1/admin/ip-blocks",
        query: Default::default(),
        body: body.as_bytes(),
        idempotency_key: Some("rolled-back"),
        if_none_match: None,
        ip: "127.0.0.1".parse().unwrap(),
    };
    {
        let mut conn = state.db.lock();
        let mut tx = conn.transaction().unwrap();
        let (_, reply) = exam_server::routes::execute(
            &state,
            &exam_server::routes::Principal::Admin,
            &call,
            &mut tx,
        );
        assert_eq!(reply.status, 201);
        // The transaction is dropped: rolled back.
    }
    assert!(
        state.blocks.read().unwrap().is_empty(),
        "a rolled-back block is in the cache"
    );
    // The same block committed is in force at once.
    let (status, _) = server
        .admin(
            Method::POST,
            "/v1/admin/ip-blocks",
            Some(json!({"cidr": "10.9.8.0/24", "reason": "test"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(state.blocks.read().unwrap().len(), 1);
}

#[tokio::test]
async fn failed_uses_of_the_admin_api_are_audited_and_locked_out() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    // A student's token on an admin route is a failure too.
    let (status, _) = s.get("/v1/admin/stats").await;
    assert_eq!(status, 403);
    for i in 1..exam_server::admin::ADMIN_FAILURE_LIMIT {
        let status = server
            .request(Method::GET, "/v1/admin/stats")
            .bearer_auth(format!("guess-{i}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "guess {i}");
    }
    // Locked: even the right token is not compared from this address for a while.
    let response = server
        .request(Method::GET, "/v1/admin/stats")
        .bearer_auth(crate::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let failures: i64 = server
        .state
        .db
        .lock()
        .query_row(
            "SELECT COUNT(*) FROM audit WHERE type = 'admin_auth_failure'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failures, exam_server::admin::ADMIN_FAILURE_LIMIT as i64);
    let lockouts: i64 = server
        .state
        .db
        .lock()
        .query_row(
            "SELECT COUNT(*) FROM audit WHERE type = 'admin_lockout'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(lockouts, 1);
    // Students are not affected.
    let (status, _) = s.get("/v1/exams").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_exams_are_listed_for_proctors_with_their_attempts() {
    let server = TestServer::start().await;
    let student = Student::login(&server, "student1").await;
    student.start_attempt("demo-mixed").await;
    let (status, body) = server.admin(Method::GET, "/v1/admin/exams", None).await;
    assert_eq!(status, 200, "{body}");
    let exams = body.as_array().unwrap();
    let mixed = exams.iter().find(|e| e["id"] == "demo-mixed").unwrap();
    assert_eq!(mixed["attempts"], 1, "{mixed}");
    assert_eq!(mixed["submitted"], 0, "{mixed}");
    assert!(mixed["title"].as_str().is_some_and(|t| !t.is_empty()));
    let opens: Vec<&str> = exams
        .iter()
        .map(|e| e["opens_at"].as_str().unwrap())
        .collect();
    let mut sorted = opens.clone();
    sorted.sort();
    assert_eq!(opens, sorted, "soonest first");

    let (status, body) = student.get("/v1/admin/exams").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
}
