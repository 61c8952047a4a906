//! Security alerts over real HTTP: each rule, its evidence and its response, audited and
//! undoable; acknowledging with a note.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{new_key, Student, TestServer};

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

#[tokio::test]
async fn one_session_on_two_machines_is_ended_two_sessions_are_an_alert() {
    let server = TestServer::start().await;
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
