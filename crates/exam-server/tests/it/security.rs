//! Security alerts over real HTTP: each rule, its evidence and its response, audited and
//! undoable; acknowledging with a note.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{new_key, status_json, Student, TestServer};

/// A `security.*` event as the app sends it.
fn event(kind: &str, attrs: Value) -> Value {
    let at = exam_server::rfc3339(exam_server::now());
    json!({"id": new_key(), "type": kind, "at": at, "attrs": attrs})
}

fn finding(code: &str, subject: &str, device: &str, attempt: Option<&str>) -> Value {
    json!({"code": code, "severity": "warning", "confidence": "high", "subject": subject,
           "category": "remote_control",
           "evidence": format!("process `{subject}` (pid 42) is remote_control program `{subject}`"),
           "blocks_start": true, "attempt_id": attempt, "device": device})
}

async fn send_events(student: &Student<'_>, events: Vec<Value>) {
    let (status, body) = student
        .send(Method::POST, "/v1/events", json!({"events": events}))
        .await;
    assert_eq!(status, 202, "{body}");
}

async fn alerts(server: &TestServer, query: &str) -> Vec<Value> {
    let (status, body) = server
        .admin(Method::GET, &format!("/v1/admin/alerts{query}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["alerts"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_clients_warning_is_an_alert_cleared_when_it_stops_and_acknowledged_with_a_note() {
    let server = TestServer::start().await;
    let student = Student::login(&server, "student1").await;
    let attempt = student.start_attempt("demo-mixed").await;
    let warning = finding("prohibited_program", "anydesk", "dev-a", Some(&attempt));
    // Sent twice (a retried batch): one alert.
    let same = event("security.prohibited_program", warning.clone());
    send_events(&student, vec![same.clone()]).await;
    send_events(&student, vec![same]).await;
    // Information (a virtual machine) is no alert.
    send_events(
        &student,
        vec![event(
            "security.virtual_machine",
            json!({"code": "virtual_machine", "severity": "info", "device": "dev-a"}),
        )],
    )
    .await;
    let list = alerts(&server, "").await;
    assert_eq!(list.len(), 1, "{list:?}");
    let alert = &list[0];
    assert_eq!(alert["rule"], "client_finding");
    assert_eq!(alert["severity"], "warning");
    assert_eq!(alert["username"], "student1");
    assert_eq!(alert["attempt_id"], attempt.as_str());
    assert_eq!(alert["device"], "dev-a");
    assert!(
        alert["summary"].as_str().unwrap().contains("anydesk"),
        "{alert}"
    );
    assert!(alert["cleared_at"].is_null());

    // The student closes it: cleared.
    send_events(&student, vec![event("security.cleared", warning)]).await;
    let alert = &alerts(&server, "").await[0];
    assert!(alert["cleared_at"].is_string(), "{alert}");

    // A proctor acknowledges it with a note: audited; gone from the open ones.
    let id = alert["id"].as_str().unwrap();
    let (status, acked) = server
        .admin(
            Method::POST,
            &format!("/v1/admin/alerts/{id}/ack"),
            Some(json!({"note": "spoke to the student; closed"})),
        )
        .await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["ack_note"], "spoke to the student; closed");
    assert!(alerts(&server, "?status=open").await.is_empty());
    let (_, audit) = server
        .admin(Method::GET, "/v1/admin/audit?type=alert_acknowledged", None)
        .await;
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
    let (status, _) = server
        .admin(Method::POST, "/v1/admin/alerts/999/ack", Some(json!({})))
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .admin(Method::GET, "/v1/admin/alerts?since_id=-1", None)
        .await;
    assert_eq!(status, 422);

    // The events, filtered by a type prefix; the machine, with its last student.
    let (status, events) = server
        .admin(
            Method::GET,
            "/v1/admin/events?type=security.*&user=student1",
            None,
        )
        .await;
    assert_eq!(status, 200, "{events}");
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "security.cleared",
            "security.virtual_machine",
            "security.prohibited_program"
        ]
    );
    // The attempt's timeline: started, the finding and its clearing, in order.
    let (status, timeline) = server
        .admin(
            Method::GET,
            &format!("/v1/admin/attempts/{attempt}/timeline"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{timeline}");
    let kinds: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "started", "{timeline}");
    assert!(
        kinds.contains(&"finding") && kinds.contains(&"finding_cleared"),
        "{timeline}"
    );
    let (status, _) = server
        .admin(Method::GET, "/v1/admin/attempts/nope/timeline", None)
        .await;
    assert_eq!(status, 404);
    let (status, machines) = server.admin(Method::GET, "/v1/admin/machines", None).await;
    assert_eq!(status, 200, "{machines}");
    let machine = &machines["machines"][0];
    assert_eq!(machine["device"], "dev-a");
    assert_eq!(machine["last_student"], "student1");
    assert_eq!(
        machine["integrity"], "ok",
        "its only alert was acknowledged: {machine}"
    );
}

/// A demo server (as [`TestServer::start`]) with `change` made to its configuration.
async fn server_with(change: impl FnOnce(&mut exam_server::Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::config(dir.path().join("server.db"));
    change(&mut config);
    let mut server = TestServer::start_with(config).await;
    server._dir = Some(dir);
    server
}

/// Every alert of `rule`, newest first, read from the database (for when the admin API
/// itself is rate-limited).
fn stored_alerts(server: &TestServer, rule: &str) -> Vec<Value> {
    let mut list = exam_server::security::changed_since(&server.state.db.lock(), 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|a| a["rule"] == rule)
        .collect::<Vec<_>>();
    list.reverse();
    list
}

#[tokio::test]
async fn one_session_on_two_machines_is_ended_two_sessions_are_an_alert() {
    // Without the step-up, so that the copied session is still usable to be caught.
    let server = server_with(|c| c.step_up_on_two_devices = false).await;
    let info = |device: &str| {
        event(
            "security.hypervisor_flag",
            json!({"code": "hypervisor_flag", "severity": "info", "device": device}),
        )
    };
    // Signed in on two machines (two sessions): a warning, nothing ended.
    let here = Student::login(&server, "student2").await;
    let there = Student::login(&server, "student2").await;
    send_events(&here, vec![info("dev-a")]).await;
    send_events(&there, vec![info("dev-b")]).await;
    let list = alerts(&server, "?user=student2").await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["rule"], "two_devices");
    assert!(list[0]["response"].is_null());
    let (status, _) = here.get("/v1/exams").await;
    assert_eq!(status, 200, "nothing was ended");

    // One session's token used from another machine: copied. The session ends.
    let copied = Student {
        server: &server,
        tokens: here.tokens.clone(),
    };
    send_events(&copied, vec![info("dev-c")]).await;
    let list = alerts(&server, "?user=student2").await;
    let critical = list
        .iter()
        .find(|a| a["rule"] == "session_two_devices")
        .unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(critical["severity"], "critical");
    assert_eq!(critical["response"]["action"], "session_ended");
    let (status, _) = here.get("/v1/exams").await;
    assert_eq!(status, 401, "the copied session was ended");
    let (status, _) = there.get("/v1/exams").await;
    assert_eq!(status, 200, "the other session is not touched");
}

#[tokio::test]
async fn one_machine_with_two_attempts_in_progress_and_a_network_change_are_alerts() {
    let server = TestServer::start().await;
    let a = Student::login(&server, "student3").await;
    let b = Student::login(&server, "student4").await;
    let a_attempt = a.start_attempt("demo-mixed").await;
    let b_attempt = b.start_attempt("demo-mixed").await;
    let info = |attempt: &str| {
        event(
            "security.hypervisor_flag",
            json!({"code": "hypervisor_flag", "severity": "info", "device": "lab-7",
                   "attempt_id": attempt}),
        )
    };
    send_events(&a, vec![info(&a_attempt)]).await;
    send_events(&b, vec![info(&b_attempt)]).await;
    let list = alerts(&server, "").await;
    assert!(
        list.iter()
            .any(|x| x["rule"] == "shared_device"
                && x["summary"].as_str().unwrap().contains("student3")),
        "{list:?}"
    );
}

#[tokio::test]
async fn many_usernames_failing_from_one_address_are_an_alert_then_a_block_that_can_be_lifted() {
    let server = TestServer::start().await;
    let fail = |user: String| {
        let server = &server;
        async move {
            server
                .token_request(&[
                    ("grant_type", "password"),
                    ("username", &user),
                    ("password", "wrong"),
                    ("client_id", "exam-desktop"),
                ])
                .await
                .status()
                .as_u16()
        }
    };
    for i in 0..5 {
        assert_eq!(fail(format!("nobody{i}")).await, 400);
    }
    let list = alerts(&server, "").await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["rule"], "password_spraying");
    assert!(list[0]["response"].is_null(), "an alert, no block yet");
    for i in 5..10 {
        fail(format!("nobody{i}")).await;
    }
    let list = alerts(&server, "").await;
    let blocked = list
        .iter()
        .find(|a| !a["response"].is_null())
        .unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(blocked["response"]["action"], "ip_blocked");
    // Blocked: even the right password is refused from there.
    let response = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "student5"),
            ("password", "demo"),
            ("client_id", "exam-desktop"),
        ])
        .await;
    assert_eq!(response.status().as_u16(), 403);
    // An admin lifts it (the admin API stays reachable from a blocked address).
    let block = blocked["response"]["block"].as_str().unwrap();
    let (status, _) = server
        .admin(
            Method::DELETE,
            &format!("/v1/admin/ip-blocks/{block}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    server.login("student5").await;
}

#[tokio::test]
async fn asking_for_the_password_again_refuses_older_sessions_until_the_student_signs_in_again() {
    let server = TestServer::start().await;
    let before = Student::login(&server, "student6").await;
    let (status, body) = server
        .admin(
            Method::POST,
            "/v1/admin/users/student6/step-up",
            Some(json!({"reason": "two machines at once"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The session begun before: refused with the step-up challenge (RFC 9470)…
    let response = before
        .request(Method::GET, "/v1/exams")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("insufficient_user_authentication"),
        "{challenge}"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "step_up_required");
    // …and its refresh ends it, saying why.
    let refreshed = server
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &before.tokens.refresh),
            ("client_id", "exam-desktop"),
        ])
        .await;
    assert_eq!(refreshed.status().as_u16(), 400);
    let error: Value = refreshed.json().await.unwrap();
    assert_eq!(error["error"], "invalid_grant");
    assert!(error["error_description"]
        .as_str()
        .unwrap()
        .contains("password again"));
    // Signing in with the password again works at once.
    let after = Student::login(&server, "student6").await;
    let (status, _) = after.get("/v1/exams").await;
    assert_eq!(status, 200);
    // Withdrawn (audited both ways); a second withdrawal has nothing to withdraw.
    let (status, _) = server
        .admin(Method::DELETE, "/v1/admin/users/student6/step-up", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .admin(Method::DELETE, "/v1/admin/users/student6/step-up", None)
        .await;
    assert_eq!(status, 404);
    let (_, audit) = server
        .admin(
            Method::GET,
            "/v1/admin/audit?user=student6&type=step_up_required",
            None,
        )
        .await;
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
}

#[tokio::test]
async fn two_sessions_on_two_machines_ask_for_the_password_again_unless_configured_not_to() {
    let info = |device: &str| {
        event(
            "security.hypervisor_flag",
            json!({"code": "hypervisor_flag", "severity": "info", "device": device}),
        )
    };
    // (--step-up-on-two-devices, whether the sessions are refused)
    for step_up in [true, false] {
        let server = server_with(|c| c.step_up_on_two_devices = step_up).await;
        let here = Student::login(&server, "student2").await;
        let there = Student::login(&server, "student2").await;
        send_events(&here, vec![info("dev-a")]).await;
        send_events(&there, vec![info("dev-b")]).await;
        let list = alerts(&server, "?user=student2").await;
        assert_eq!(list.len(), 1, "step-up {step_up}: {list:?}");
        let alert = &list[0];
        assert_eq!(alert["rule"], "two_devices");
        let (_, audit) = server
            .admin(
                Method::GET,
                "/v1/admin/audit?user=student2&type=step_up_required",
                None,
            )
            .await;
        let audit = audit.as_array().unwrap().clone();
        if !step_up {
            assert!(alert["response"].is_null(), "{alert}");
            assert!(audit.is_empty(), "{audit:?}");
            assert_eq!(here.get("/v1/exams").await.0, 200);
            assert_eq!(there.get("/v1/exams").await.0, 200);
            continue;
        }
        // The response: the password again, recorded with its undo, audited as the rule's.
        assert_eq!(alert["response"]["action"], "step_up_required", "{alert}");
        assert_eq!(
            alert["response"]["undo"],
            "DELETE /v1/admin/users/student2/step-up"
        );
        assert!(alert["response"]["required_at"].is_string(), "{alert}");
        assert_eq!(audit.len(), 1, "{audit:?}");
        assert_eq!(audit[0]["detail"]["rule"], "two_devices");
        assert_eq!(audit[0]["detail"]["alert"], alert["id"]);
        // Both sessions begun before are refused with the step-up challenge.
        for session in [&here, &there] {
            let (status, problem) = session.get("/v1/exams").await;
            assert_eq!(status, 401, "{problem}");
            assert_eq!(problem["code"], "step_up_required");
        }
        // Signed in again on one machine: works, and the rule, which still sees the other
        // machine in its window, does not ask again.
        let again = Student::login(&server, "student2").await;
        send_events(&again, vec![info("dev-a")]).await;
        assert_eq!(again.get("/v1/exams").await.0, 200);
        assert_eq!(alerts(&server, "?user=student2").await.len(), 1);
        // The undo the alert names works.
        let undo = alert["response"]["undo"].as_str().unwrap();
        let path = undo.strip_prefix("DELETE ").unwrap();
        assert_eq!(server.admin(Method::DELETE, path, None).await.0, 204);
        assert_eq!(there.get("/v1/exams").await.0, 200);
    }
}

async fn sign_in(server: &TestServer, username: &str, password: &str) -> u16 {
    server
        .token_request(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_username_locked_out_from_one_address_is_one_brute_force_alert() {
    /// (case, sign-ins in order as (username, password), brute_force alerts, about a student)
    type Case = (&'static str, &'static [SignIn], usize, bool);
    type SignIn = (&'static str, &'static str);
    let table: &[Case] = &[
        (
            "four failures: not locked",
            &[("student3", "x"); 4],
            0,
            true,
        ),
        ("five failures lock it", &[("student3", "x"); 5], 1, true),
        (
            "refused while locked: still one alert",
            &[("student3", "x"); 9],
            1,
            true,
        ),
        ("a username no student has", &[("ghost", "x"); 5], 1, false),
        (
            "five usernames once each: spraying, not this",
            &[
                ("nobody0", "x"),
                ("nobody1", "x"),
                ("nobody2", "x"),
                ("nobody3", "x"),
                ("nobody4", "x"),
            ],
            0,
            false,
        ),
        (
            "the right password in between forgives the failures",
            &[
                ("student3", "x"),
                ("student3", "x"),
                ("student3", "x"),
                ("student3", "demo"),
                ("student3", "x"),
                ("student3", "x"),
                ("student3", "x"),
            ],
            0,
            true,
        ),
    ];
    for (case, sign_ins, expected, known) in table {
        let server = TestServer::start().await;
        let mut statuses = Vec::new();
        for (username, password) in *sign_ins {
            statuses.push(sign_in(&server, username, password).await);
        }
        let list = alerts(&server, "?rule=brute_force").await;
        assert_eq!(list.len(), *expected, "{case}: {statuses:?} {list:?}");
        let Some(alert) = list.first() else { continue };
        let username = sign_ins[0].0;
        assert_eq!(alert["severity"], "warning", "{case}");
        assert_eq!(alert["username"], username, "{case}");
        assert_eq!(alert["ip"], "127.0.0.1", "{case}");
        assert!(
            alert["response"].is_null(),
            "{case}: the lockout is the response"
        );
        let evidence = &alert["evidence"];
        assert_eq!(evidence["failures"], 5, "{case}: {evidence}");
        assert_eq!(evidence["window_s"], 300, "{case}: {evidence}");
        assert_eq!(evidence["known_student"], *known, "{case}: {evidence}");
        let until =
            chrono::DateTime::parse_from_rfc3339(evidence["locked_until"].as_str().unwrap())
                .unwrap();
        let left = until
            .signed_duration_since(exam_server::now())
            .num_seconds();
        assert!((290..=300).contains(&left), "{case}: {left} s left");
        assert!(
            alert["summary"]
                .as_str()
                .unwrap()
                .contains("sign-in locked until"),
            "{case}: {alert}"
        );
        // What the lockout says and what the alert says agree: the next try is refused.
        assert_eq!(sign_in(&server, username, "x").await, 429, "{case}");
    }
}

#[tokio::test]
async fn hitting_a_rate_limit_is_one_request_burst_alert_per_window() {
    use exam_server::RateSpec;
    // Almost no refill: the burst is all there is during the test.
    let slow = |burst| RateSpec::new(0.001, burst);
    /// The alert expected: (username, scope, burst).
    type Expected = (Option<&'static str>, &'static str, f64);
    // (case, per-user limit, per-address limit, the alert or none)
    let table: &[(&str, RateSpec, RateSpec, Option<Expected>)] = &[
        (
            "a student over the per-student limit",
            slow(3.0),
            RateSpec::OFF,
            Some((Some("student7"), "student", 3.0)),
        ),
        (
            "an address over the per-address limit",
            RateSpec::OFF,
            slow(5.0),
            Some((None, "address", 5.0)),
        ),
        ("no limits", RateSpec::OFF, RateSpec::OFF, None),
    ];
    for (case, user_rate, ip_rate, expected) in table {
        let server = server_with(|c| {
            c.user_rate = *user_rate;
            c.ip_rate = *ip_rate;
        })
        .await;
        let student = Student::login(&server, "student7").await;
        let mut refused = 0;
        for _ in 0..12 {
            if student.get("/v1/exams").await.0 == 429 {
                refused += 1;
            }
        }
        let list = stored_alerts(&server, "request_burst");
        let Some((username, scope, burst)) = expected else {
            assert_eq!(refused, 0, "{case}");
            assert!(list.is_empty(), "{case}: {list:?}");
            continue;
        };
        assert!(refused >= 5, "{case}: {refused} refused");
        assert_eq!(
            list.len(),
            1,
            "{case}: one alert for {refused} refusals: {list:?}"
        );
        let alert = &list[0];
        assert_eq!(alert["severity"], "warning", "{case}");
        assert_eq!(alert["username"].as_str(), *username, "{case}: {alert}");
        assert_eq!(alert["ip"], "127.0.0.1", "{case}");
        let evidence = &alert["evidence"];
        assert_eq!(evidence["scope"], *scope, "{case}: {evidence}");
        assert_eq!(evidence["path"], "/v1/exams", "{case}: {evidence}");
        assert_eq!(evidence["method"], "GET", "{case}: {evidence}");
        assert_eq!(evidence["limit"]["burst"], *burst, "{case}: {evidence}");
        assert_eq!(
            evidence["window_s"],
            exam_server::security::WINDOW_S,
            "{case}"
        );
        assert!(
            alert["response"].is_null(),
            "{case}: the 429 is the response"
        );
    }
}

#[tokio::test]
async fn an_outage_the_app_reports_is_in_the_attempts_timeline() {
    let server = TestServer::start().await;
    let student = Student::login(&server, "student8").await;
    let attempt = student.start_attempt("demo-mixed").await;
    let other = student.start_attempt("demo-essay").await;
    let start = exam_server::now() + chrono::Duration::seconds(60);
    let outage = |attempt: &str, from_s: i64, ms: i64, state: &str| {
        let started = start + chrono::Duration::seconds(from_s);
        let ended = started + chrono::Duration::milliseconds(ms);
        event(
            "network.outage",
            json!({"attempt_id": attempt, "started_at": exam_server::rfc3339(started),
                   "ended_at": exam_server::rfc3339(ended), "duration_ms": ms,
                   "state": state}),
        )
    };
    send_events(
        &student,
        vec![
            outage(&attempt, 0, 125_000, "offline"),
            outage(&attempt, 300, 45_000, "server_unreachable"),
            outage(&other, 0, 1_000, "offline"),
        ],
    )
    .await;
    let (status, timeline) = server
        .admin(
            Method::GET,
            &format!("/v1/admin/attempts/{attempt}/timeline"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{timeline}");
    let items = timeline["items"].as_array().unwrap();
    let outages: Vec<&Value> = items.iter().filter(|i| i["kind"] == "outage").collect();
    let hms = |from_s: i64, ms: i64| {
        (start + chrono::Duration::seconds(from_s) + chrono::Duration::milliseconds(ms))
            .format("%H:%M:%S")
            .to_string()
    };
    assert_eq!(
        outages,
        [
            &json!({"at": exam_server::rfc3339(start), "kind": "outage",
                    "text": format!("offline for 2 min 5 s (until {} UTC)", hms(0, 125_000))}),
            &json!({"at": exam_server::rfc3339(start + chrono::Duration::seconds(300)),
                    "kind": "outage",
                    "text": format!("server unreachable for 45 s (until {} UTC)",
                                    hms(300, 45_000))}),
        ],
        "{timeline}"
    );
    assert_eq!(items[0]["kind"], "started", "in time order: {timeline}");
}

/// An attempt of `exam` the student's app began at `started` (offline, say).
async fn start_attempt_at(
    student: &Student<'_>,
    exam: &str,
    started: chrono::DateTime<chrono::Utc>,
) -> String {
    let (status, body) = student
        .send(
            Method::POST,
            &format!("/v1/exams/{exam}/attempts"),
            json!({"started_at": exam_server::rfc3339(started)}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["started_at"], exam_server::rfc3339(started), "{body}");
    body["attempt_id"].as_str().unwrap().to_string()
}

/// A report of lost time (`network.outage` or `app.not_running`) from `from` to `to`.
fn lost(
    kind: &str,
    attempt: &str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut attrs = json!({"attempt_id": attempt, "started_at": exam_server::rfc3339(from),
                           "ended_at": exam_server::rfc3339(to),
                           "duration_ms": (to - from).num_milliseconds()});
    attrs[if kind == "network.outage" {
        "state"
    } else {
        "device"
    }] = json!(if kind == "network.outage" {
        "offline"
    } else {
        "dev-l"
    });
    event(kind, attrs)
}

async fn timeline_of(server: &TestServer, attempt: &str) -> Value {
    let (status, timeline) = server
        .admin(
            Method::GET,
            &format!("/v1/admin/attempts/{attempt}/timeline"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{timeline}");
    timeline
}

#[tokio::test]
async fn the_time_an_attempt_lost_counts_the_apps_records_within_it_once() {
    use chrono::Duration;
    let server = TestServer::start().await;
    let student = Student::login(&server, "student12").await;
    let start = exam_server::now() - Duration::minutes(30);
    let at = |s: i64| start + Duration::seconds(s);
    let attempt = start_attempt_at(&student, "demo-mixed", start).await;
    let other = start_attempt_at(&student, "demo-essay", start).await;
    send_events(
        &student,
        vec![
            // Offline from before the attempt began: from its start, 30 s.
            lost("network.outage", &attempt, at(-60), at(30)),
            // Offline 2 min, and the app not running 1 min 20 s, 1 min of it at once.
            lost("network.outage", &attempt, at(300), at(420)),
            lost("app.not_running", &attempt, at(360), at(440)),
            // Malformed: kept and shown, but nothing can be counted.
            event(
                "app.not_running",
                json!({"attempt_id": attempt, "started_at": "yesterday", "ended_at": 7}),
            ),
            // After now (a client's clock ahead): the attempt has not got there.
            lost("network.outage", &attempt, at(3600), at(3700)),
            // Another attempt's.
            lost("app.not_running", &other, at(300), at(900)),
        ],
    )
    .await;
    let timeline = timeline_of(&server, &attempt).await;
    let hms = |s: i64| at(s).format("%H:%M:%S").to_string();
    let rfc = |s: i64| exam_server::rfc3339(at(s));
    assert_eq!(
        timeline["time_lost"],
        json!({
            "offline_ms": 150_000, "not_running_ms": 80_000, "total_ms": 170_000,
            "summary": "Time lost: 2 min 50 s — offline 2 min 30 s, app not running 1 min 20 s \
                        (1 min of it both at once, counted once)",
            "items": [
                {"kind": "offline", "started_at": rfc(0), "ended_at": rfc(30), "duration_ms": 30_000},
                {"kind": "offline", "started_at": rfc(300), "ended_at": rfc(420),
                 "duration_ms": 120_000},
                {"kind": "not_running", "started_at": rfc(360), "ended_at": rfc(440),
                 "duration_ms": 80_000},
            ],
        }),
        "{timeline}"
    );
    let not_running: Vec<&Value> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "not_running")
        .collect();
    assert_eq!(not_running.len(), 2, "{timeline}");
    assert_eq!(
        not_running[0],
        &json!({"at": rfc(360), "kind": "not_running",
                "text": format!("the app was not running for 1 min 20 s (until {} UTC) — a crash \
                                 or a restart", hms(440))}),
        "{timeline}"
    );
    assert_eq!(
        not_running[1]["text"], "the app was not running — a crash or a restart",
        "{timeline}"
    );

    // Submitted: the attempt ends there; what comes after is not lost from it.
    let path = format!("/v1/attempts/{attempt}/submit");
    let (_, server_says) = student
        .send(
            Method::POST,
            &path,
            json!({"answer_count": 0, "answers_digest": "0".repeat(64)}),
        )
        .await;
    let (status, receipt) = student
        .send(
            Method::POST,
            &path,
            json!({"answer_count": 0, "answers_digest": server_says["answers_digest"]}),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    let submitted = chrono::DateTime::parse_from_rfc3339(receipt["submitted_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    send_events(
        &student,
        vec![lost(
            "app.not_running",
            &attempt,
            submitted - Duration::seconds(10),
            submitted + Duration::minutes(5),
        )],
    )
    .await;
    let after = timeline_of(&server, &attempt).await;
    assert_eq!(after["status"], "submitted");
    let ledger = &after["time_lost"];
    assert_eq!(
        (
            &ledger["offline_ms"],
            &ledger["not_running_ms"],
            &ledger["total_ms"]
        ),
        (&json!(150_000), &json!(90_000), &json!(180_000)),
        "{after}"
    );
    assert_eq!(
        ledger["items"][3]["ended_at"],
        exam_server::rfc3339(submitted),
        "{after}"
    );
}

#[tokio::test]
async fn an_exams_time_lost_lists_every_attempt_most_lost_first() {
    use chrono::Duration;
    let server = TestServer::start().await;
    let start = exam_server::now() - Duration::minutes(20);
    let at = |s: i64| start + Duration::seconds(s);
    // (student, the reports of their demo-mixed attempt)
    let mut attempts = Vec::new();
    for (username, reports) in [
        ("student13", vec![("network.outage", 60, 180)]),
        ("student14", vec![]),
        (
            "student15",
            vec![("app.not_running", 60, 360), ("network.outage", 300, 420)],
        ),
    ] {
        let student = Student::login(&server, username).await;
        let attempt = start_attempt_at(&student, "demo-mixed", start).await;
        let mut events: Vec<Value> = reports
            .iter()
            .map(|(kind, from, to)| lost(kind, &attempt, at(*from), at(*to)))
            .collect();
        // Another exam's attempt of the same student: not this exam's.
        let elsewhere = start_attempt_at(&student, "demo-essay", start).await;
        events.push(lost("app.not_running", &elsewhere, at(0), at(600)));
        send_events(&student, events).await;
        attempts.push((username, attempt));
    }
    let (status, body) = server
        .admin(Method::GET, "/v1/admin/exams/demo-mixed/time-lost", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let row = |i: usize, offline: i64, not_running: i64, total: i64| {
        let (username, attempt) = &attempts[i];
        json!({"attempt_id": attempt, "username": username, "status": "open",
               "offline_ms": offline, "not_running_ms": not_running, "total_ms": total})
    };
    assert_eq!(
        body,
        json!({"exam_id": "demo-mixed", "attempts": [
            row(2, 120_000, 300_000, 360_000),
            row(0, 120_000, 0, 120_000),
            row(1, 0, 0, 0),
        ]})
    );
    // The other exam: each student's attempt there, 10 min not running.
    let (status, body) = server
        .admin(Method::GET, "/v1/admin/exams/demo-essay/time-lost", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let totals: Vec<&Value> = body["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["total_ms"])
        .collect();
    assert_eq!(totals, [&json!(600_000); 3], "{body}");
    // An exam nobody has started: no attempts; an unknown exam: 404, naming it.
    let (status, body) = server
        .admin(
            Method::GET,
            "/v1/admin/exams/demo-sealed-open/time-lost",
            None,
        )
        .await;
    assert_eq!(
        (status, &body),
        (200, &json!({"exam_id": "demo-sealed-open", "attempts": []}))
    );
    let (status, body) = server
        .admin(Method::GET, "/v1/admin/exams/nope/time-lost", None)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["detail"], "there is no exam `nope`", "{body}");
    // Students do not see it.
    let student = Student::login(&server, "student13").await;
    let (status, _) = student.get("/v1/admin/exams/demo-mixed/time-lost").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_alert_list_filters_by_rule_and_severity() {
    let server = TestServer::start().await;
    let student = Student::login(&server, "student9").await;
    send_events(
        &student,
        vec![event(
            "security.prohibited_program",
            finding("prohibited_program", "anydesk", "dev-f", None),
        )],
    )
    .await;
    for i in 0..5 {
        sign_in(&server, &format!("nobody{i}"), "x").await;
    }
    let everything = alerts(&server, "").await;
    assert_eq!(everything.len(), 2, "{everything:?}");
    // (query, the rules listed)
    let table: &[(&str, &[&str])] = &[
        ("?rule=client_finding", &["client_finding"]),
        ("?severity=critical", &["password_spraying"]),
        ("?severity=warning&user=student9", &["client_finding"]),
        ("?rule=password_spraying&severity=warning", &[]),
        ("?rule=brute_force", &[]),
        ("?status=open&severity=info", &[]),
    ];
    for (query, rules) in table {
        let list = alerts(&server, query).await;
        let listed: Vec<&str> = list.iter().map(|a| a["rule"].as_str().unwrap()).collect();
        assert_eq!(listed, *rules, "{query}");
    }
    // (query, status, words of the problem)
    let refused: &[(&str, u16, &str)] = &[
        (
            "?severity=urgent",
            400,
            "severity `urgent` is not one of info, warning, critical",
        ),
        (
            "?rule=nope",
            400,
            "rule `nope` is not one of client_finding",
        ),
        (
            "?severity=Warning",
            400,
            "is not one of info, warning, critical",
        ),
        ("?status=bogus", 422, "status `bogus` is not open or all"),
    ];
    for (query, status, words) in refused {
        let (got, problem) = server
            .admin(Method::GET, &format!("/v1/admin/alerts{query}"), None)
            .await;
        assert_eq!(got, *status, "{query}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(words),
            "{query}: {problem}"
        );
        if *status == 400 {
            assert_eq!(problem["code"], "invalid_query", "{query}");
        }
    }
}

#[tokio::test]
async fn a_machines_history_lists_its_findings_and_alerts_newest_first() {
    let server = TestServer::start().await;
    let a = Student::login(&server, "student10").await;
    let b = Student::login(&server, "student11").await;
    let c = Student::login(&server, "student12").await;
    let a_attempt = a.start_attempt("demo-mixed").await;
    let b_attempt = b.start_attempt("demo-mixed").await;
    let info = |device: &str, attempt: &str| {
        event(
            "security.hypervisor_flag",
            json!({"code": "hypervisor_flag", "severity": "info", "device": device,
                   "attempt_id": attempt, "evidence": "a hypervisor"}),
        )
    };
    // Distinct instants, so "newest first" has one answer.
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(5));
    send_events(&a, vec![info("lab-9", &a_attempt)]).await;
    pause().await;
    send_events(&b, vec![info("lab-9", &b_attempt)]).await;
    pause().await;
    send_events(
        &a,
        vec![event(
            "security.prohibited_program",
            finding("prohibited_program", "anydesk", "lab-9", Some(&a_attempt)),
        )],
    )
    .await;
    pause().await;
    // Another machine's finding is not this one's history.
    send_events(
        &c,
        vec![event(
            "security.prohibited_program",
            finding("prohibited_program", "teamviewer", "lab-1", None),
        )],
    )
    .await;

    let (status, history) = server
        .admin(Method::GET, "/v1/admin/machines/lab-9/history", None)
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["device"], "lab-9");
    assert_eq!(history["students"], json!(["student10", "student11"]));
    let rows: Vec<(&str, &str, &str, &str)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap(),
                i["code"].as_str().unwrap(),
                i["username"].as_str().unwrap(),
                i["severity"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("alert", "shared_device", "student10", "warning"),
            ("alert", "client_finding", "student10", "warning"),
            ("event", "prohibited_program", "student10", "warning"),
            ("alert", "shared_device", "student11", "warning"),
            ("event", "hypervisor_flag", "student11", "info"),
            ("event", "hypervisor_flag", "student10", "info"),
        ],
        "{history}"
    );
    let items = history["items"].as_array().unwrap();
    assert!(
        items
            .windows(2)
            .all(|w| w[0]["at"].as_str() >= w[1]["at"].as_str()),
        "newest first: {history}"
    );
    assert!(
        items[2]["summary"].as_str().unwrap().contains("anydesk"),
        "{}",
        items[2]
    );
    assert_eq!(items[2]["evidence"]["device"], "lab-9");
    assert_eq!(items[2]["attempt_id"], a_attempt.as_str());

    let (status, short) = server
        .admin(
            Method::GET,
            "/v1/admin/machines/lab-9/history?limit=2",
            None,
        )
        .await;
    assert_eq!(status, 200, "{short}");
    assert_eq!(short["items"].as_array().unwrap().len(), 2);
    let (status, problem) = server
        .admin(Method::GET, "/v1/admin/machines/never-seen/history", None)
        .await;
    assert_eq!(status, 404, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("there is no machine `never-seen`"),
        "{problem}"
    );
    // A student's token is refused.
    let response = a
        .request(Method::GET, "/v1/admin/machines/lab-9/history")
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(response).await.0, 403);
}
