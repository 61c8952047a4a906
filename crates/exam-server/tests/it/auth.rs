//! Sign-in, rotation, reuse detection, revocation, lockout.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::{config, status_json, Student, TestServer, Tokens};

fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn refresh(server: &TestServer, refresh_token: &str) -> (u16, Value) {
    status_json(
        server
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .await,
    )
    .await
}

async fn exams_status(server: &TestServer, access: &str) -> u16 {
    server
        .request(Method::GET, "/v1/exams")
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn audit_types(server: &TestServer, user: &str) -> Vec<String> {
    let (_, events) = server
        .admin(Method::GET, &format!("/v1/admin/audit?user={user}"), None)
        .await;
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn password_grant_issues_a_jwt_and_an_opaque_refresh_token() {
    let server = TestServer::start().await;
    let tokens = server.login("student1").await;
    assert_eq!(tokens.raw["token_type"], "Bearer");
    assert_eq!(tokens.raw["expires_in"], 900);
    let c = claims(&tokens.access);
    assert_eq!(c["sub"], "student1");
    assert_eq!(c["aud"], "exam-bank");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
    for claim in ["sid", "jti", "scope"] {
        assert!(c[claim].is_string(), "{claim}");
    }
    assert_eq!(
        tokens.refresh.split('.').count(),
        1,
        "the refresh token is opaque"
    );
    assert_eq!(exams_status(&server, &tokens.access).await, 200);
    assert!(audit_types(&server, "student1")
        .await
        .contains(&"login".to_string()));
}

#[tokio::test]
async fn wrong_credentials_are_invalid_grant() {
    let server = TestServer::start().await;
    for (user, password) in [("student1", "wrong"), ("nobody", "demo")] {
        let (status, body) = status_json(
            server
                .token_request(&[
                    ("grant_type", "password"),
                    ("username", user),
                    ("password", password),
                ])
                .await,
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_grant");
    }
    let (status, body) = status_json(server.token_request(&[("grant_type", "magic")]).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) =
        status_json(server.token_request(&[("grant_type", "password")]).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn five_failures_lock_a_username_with_retry_after() {
    let server = TestServer::start().await;
    for _ in 0..5 {
        let response = server
            .token_request(&[
                ("grant_type", "password"),
                ("username", "student2"),
                ("password", "nope"),
            ])
            .await;
        assert_eq!(response.status(), 400);
    }
    // Now even the right password is refused until the window passes.
    let response = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "student2"),
            ("password", "demo"),
        ])
        .await;
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    // Another student (another username, but the same IP, which has 5 failures too) is locked as
    // well: the IP rule.
    let response = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "student3"),
            ("password", "demo"),
        ])
        .await;
    assert_eq!(response.status(), 429);
    let types = audit_types(&server, "student2").await;
    assert_eq!(
        types.iter().filter(|t| *t == "brute_force_lockout").count(),
        1,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "login_failure").count(),
        5,
        "{types:?}"
    );
    assert_eq!(server.stats().await["lockouts"], 1);
}

#[tokio::test]
async fn the_lockout_ends_when_the_window_passes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(exam_server::Config {
        lockout_window_s: 5,
        ..config(dir.path().join("s.db"))
    })
    .await;
    for _ in 0..5 {
        server
            .token_request(&[
                ("grant_type", "password"),
                ("username", "student4"),
                ("password", "x"),
            ])
            .await;
    }
    let locked = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "student4"),
            ("password", "demo"),
        ])
        .await;
    assert_eq!(locked.status(), 429);
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(retry) + Duration::from_millis(200)).await;
    let response = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "student4"),
            ("password", "demo"),
        ])
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_is_dead_once_the_new_one_is_used() {
    let server = TestServer::start().await;
    let first = server.login("student5").await;
    let (status, body) = refresh(&server, &first.refresh).await;
    assert_eq!(status, 200, "{body}");
    let second = Tokens::from(body);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(claims(&second.access)["sid"], claims(&first.access)["sid"]);
    let (status, body) = refresh(&server, &second.refresh).await;
    assert_eq!(status, 200, "{body}");
    let third = Tokens::from(body);

    // Reuse of the first token (its successor has been used): the whole family is revoked.
    let (status, body) = refresh(&server, &first.refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(&server, &third.refresh).await;
    assert_eq!(status, 400, "the newest token of the family is revoked too");
    assert_eq!(exams_status(&server, &third.access).await, 401);
    assert!(audit_types(&server, "student5")
        .await
        .contains(&"refresh_token_reuse".to_string()));
    let stats = server.stats().await;
    assert_eq!(stats["refresh_reuse_detections"], 1);
    assert_eq!(stats["token_refreshes"], 2);
}

#[tokio::test]
async fn a_retried_rotation_within_the_grace_period_keeps_the_session() {
    let server = TestServer::start().await;
    let first = server.login("student6").await;
    // The response to this rotation is "lost": the client never sees `lost`.
    let (status, lost) = refresh(&server, &first.refresh).await;
    assert_eq!(status, 200);
    let (status, body) = refresh(&server, &first.refresh).await;
    assert_eq!(status, 200, "a retried rotation is not reuse: {body}");
    let retried = Tokens::from(body);
    assert_eq!(exams_status(&server, &retried.access).await, 200);
    let (status, body) = refresh(&server, &retried.refresh).await;
    assert_eq!(status, 200, "{body}");
    // The successor that was replaced is dead, and presenting it is reuse.
    let lost = Tokens::from(lost);
    let (status, _) = refresh(&server, &lost.refresh).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_retry_after_the_grace_period_is_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(exam_server::Config {
        refresh_grace_s: 1,
        ..config(dir.path().join("s.db"))
    })
    .await;
    let first = server.login("student7").await;
    assert_eq!(refresh(&server, &first.refresh).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) = refresh(&server, &first.refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn revocation_ends_the_family_and_always_answers_200() {
    let server = TestServer::start().await;
    let tokens = server.login("student8").await;
    let response = server
        .http
        .post(server.url("/oauth/revoke"))
        .form(&[("token", tokens.refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(refresh(&server, &tokens.refresh).await.0, 400);
    assert_eq!(exams_status(&server, &tokens.access).await, 401);
    let response = server
        .http
        .post(server.url("/oauth/revoke"))
        .form(&[("token", "unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(audit_types(&server, "student8")
        .await
        .contains(&"revocation".to_string()));
}

#[tokio::test]
async fn an_expired_access_token_is_401_and_refresh_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(exam_server::Config {
        access_ttl_s: 1,
        ..config(dir.path().join("s.db"))
    })
    .await;
    let tokens = server.login("student9").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = server
        .request(Method::GET, "/v1/exams")
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let (status, body) = refresh(&server, &tokens.refresh).await;
    assert_eq!(status, 200);
    assert_eq!(
        exams_status(&server, body["access_token"].as_str().unwrap()).await,
        200
    );
}

#[tokio::test]
async fn the_admin_can_end_every_session_of_a_student() {
    let server = TestServer::start().await;
    let a = Student::login(&server, "student10").await;
    let b = Student::login(&server, "student10").await;
    let (status, body) = server
        .admin(
            Method::POST,
            "/v1/admin/users/student10/sessions/revoke",
            None,
        )
        .await;
    assert_eq!((status, body["revoked_sessions"].as_i64()), (200, Some(2)));
    for s in [&a, &b] {
        assert_eq!(s.get("/v1/exams").await.0, 401);
        assert_eq!(refresh(&server, &s.tokens.refresh).await.0, 400);
    }
    assert!(audit_types(&server, "student10")
        .await
        .contains(&"admin_revoke_sessions".to_string()));
}

#[tokio::test]
async fn requests_need_a_valid_bearer_token() {
    let server = TestServer::start().await;
    for auth in [None, Some("garbage"), Some("eyJhbGciOiJIUzI1NiJ9.e30.x")] {
        let mut request = server.request(Method::GET, "/v1/exams");
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        let (status, body) = status_json(request.send().await.unwrap()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_token")),
            "{auth:?}"
        );
    }
}

#[tokio::test]
async fn tokens_survive_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let server = TestServer::start_with(config(db.clone())).await;
    let tokens = server.login("student11").await;
    server.stop().await;
    let server = TestServer::start_with(config(db)).await;
    assert_eq!(exams_status(&server, &tokens.access).await, 200);
    assert_eq!(refresh(&server, &tokens.refresh).await.0, 200);
}
