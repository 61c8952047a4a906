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
    // Another student at the same address (a lab behind one NAT) is not locked out: the
    // lockout is keyed on (username, IP), and the IP's own limit is far higher.
    let response = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "student3"),
            ("password", "demo"),
        ])
        .await;
    assert_eq!(response.status(), 200);
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
    // The proctor and IT are alerted, with what was done.
    let (status, alerts) = server
        .admin(Method::GET, "/v1/admin/alerts?rule=refresh_reuse", None)
        .await;
    assert_eq!(status, 200, "{alerts}");
    let alerts = alerts["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["severity"], "critical");
    assert_eq!(alerts[0]["username"], "student5");
    assert_eq!(alerts[0]["response"]["action"], "session_ended");
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

#[tokio::test]
async fn a_refresh_token_unused_for_the_idle_lifetime_ends_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(exam_server::Config {
        session_idle_s: 1,
        ..config(dir.path().join("s.db"))
    })
    .await;
    let first = server.login("student11").await;
    // Used within the idle lifetime: the session goes on, and the clock restarts.
    let (status, body) = refresh(&server, &first.refresh).await;
    assert_eq!(status, 200, "{body}");
    let second = Tokens::from(body);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) = refresh(&server, &second.refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("session expired"), "{description}");
    assert!(description.contains("not used for 1 s"), "{description}");
    // The session is over: its access token stops working too, and IT sees why.
    assert_eq!(exams_status(&server, &second.access).await, 401);
    assert!(audit_types(&server, "student11")
        .await
        .contains(&"session_expired".to_string()));
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_even_when_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(exam_server::Config {
        session_absolute_s: 2,
        ..config(dir.path().join("s.db"))
    })
    .await;
    let mut tokens = server.login("student12").await;
    // Access tokens never outlive the session.
    assert!(
        tokens.raw["expires_in"].as_i64().unwrap() <= 2,
        "{}",
        tokens.raw
    );
    let started = std::time::Instant::now();
    let mut ended = None;
    while started.elapsed() < Duration::from_secs(10) {
        let (status, body) = refresh(&server, &tokens.refresh).await;
        if status != 200 {
            ended = Some((status, body));
            break;
        }
        tokens = Tokens::from(body);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (status, body) = ended.expect("the session never expired");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("session expired") && description.contains("after sign-in"),
        "{description}"
    );
    // A new sign-in starts a new session.
    let again = server.login("student12").await;
    assert_eq!(exams_status(&server, &again.access).await, 200);
}

/// A sign-in from `ip` (any 127.x.y.z reaches the test server on this machine).
async fn sign_in_from(
    server: &TestServer,
    ip: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
        .post(server.url("/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("client_id", "exam-desktop"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn guesses_sent_in_parallel_are_each_counted_before_the_check() {
    let server = TestServer::start().await;
    let guesses = (0..16).map(|i| {
        let server = &server;
        async move {
            sign_in_from(server, "127.0.0.1", "student5", &format!("guess{i}"))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 400).count();
    let locked = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        checked, 5,
        "only five guesses reach the password check: {statuses:?}"
    );
    assert_eq!(locked, 11, "{statuses:?}");
    let types = audit_types(&server, "student5").await;
    assert_eq!(
        types.iter().filter(|t| *t == "login_failure").count(),
        5,
        "{types:?}"
    );
}

#[tokio::test]
async fn a_classmate_elsewhere_cannot_lock_a_student_out_with_a_few_guesses() {
    let server = TestServer::start().await;
    // Five wrong guesses at student6's password from another address…
    for _ in 0..5 {
        assert_eq!(
            sign_in_from(&server, "127.0.0.2", "student6", "nope")
                .await
                .status(),
            400
        );
    }
    assert_eq!(
        sign_in_from(&server, "127.0.0.2", "student6", "demo")
            .await
            .status(),
        429
    );
    // …do not stop student6 at their own machine.
    assert_eq!(
        sign_in_from(&server, "127.0.0.3", "student6", "demo")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_username_is_locked_after_twenty_failures_from_any_addresses() {
    let server = TestServer::start().await;
    for i in 0..20 {
        let ip = format!("127.0.1.{}", i / 4 + 1); // four guesses from each of five addresses
        assert_eq!(
            sign_in_from(&server, &ip, "student7", "nope")
                .await
                .status(),
            400,
            "guess {i}"
        );
    }
    let response = sign_in_from(&server, "127.0.2.1", "student7", "demo").await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("for this username"),
        "{body}"
    );
    // Other students are not affected.
    assert_eq!(
        sign_in_from(&server, "127.0.2.1", "student8", "demo")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_address_is_locked_after_its_own_higher_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(exam_server::Config {
        lockout_ip_failures: 8,
        ..config(dir.path().join("s.db"))
    })
    .await;
    for i in 0..8 {
        let user = format!("student{}", i / 2 + 1); // two guesses for each of four students
        assert_eq!(
            sign_in_from(&server, "127.0.3.1", &user, "nope")
                .await
                .status(),
            400
        );
    }
    let response = sign_in_from(&server, "127.0.3.1", "student9", "demo").await;
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("from this address"),
        "{body}"
    );
    assert_eq!(
        sign_in_from(&server, "127.0.3.2", "student9", "demo")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn password_checks_beyond_the_bound_are_told_to_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(exam_server::Config {
        hash_concurrency: 1,
        hash_queue: 0,
        ..config(dir.path().join("s.db"))
    })
    .await;
    let attempts = (1..=12).map(|i| {
        let server = &server;
        async move {
            let response = sign_in_from(server, "127.0.4.1", &format!("student{i}"), "demo").await;
            let status = response.status().as_u16();
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value = response.json().await.unwrap();
            (status, retry, body)
        }
    });
    let replies = futures::future::join_all(attempts).await;
    let busy: Vec<_> = replies.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(
        replies.iter().all(|(s, _, _)| *s == 200 || *s == 503),
        "{replies:?}"
    );
    assert!(
        !busy.is_empty(),
        "twelve checks at once on one slot: some must be told to wait"
    );
    for (_, retry, body) in &busy {
        assert!(retry.is_some(), "{body}");
        assert_eq!(body["error"], "temporarily_unavailable");
    }
    // A busy answer is not a failure: nothing was locked, and the student can sign in now.
    assert_eq!(
        server.stats().await["sign_ins_busy"].as_u64().unwrap(),
        busy.len() as u64
    );
    assert_eq!(
        sign_in_from(&server, "127.0.4.1", "student1", "demo")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn invented_methods_do_not_grow_the_statistics() {
    let server = TestServer::start().await;
    for i in 0..20 {
        let method = Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        server.request(method, "/v1/exams").send().await.unwrap();
        server
            .request(Method::GET, &format!("/nowhere/{i}"))
            .send()
            .await
            .unwrap();
    }
    let stats = server.stats().await;
    let routes: Vec<&String> = stats["requests"].as_object().unwrap().keys().collect();
    assert!(
        routes
            .iter()
            .all(|r| !r.contains("INVENTED") && !r.contains("nowhere")),
        "{routes:?}"
    );
    assert!(routes.len() <= 3, "{routes:?}");
}
