//! Readiness before an exam: an exam's `min_client_version` (set by an admin, listed to
//! students), the machines' `device.readiness` reports (the latest kept per machine, a late
//! older one never replacing it), and IT's question "which machines are not ready for that
//! exam at that time, and why" over real HTTP — as JSON and as CSV.

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};

use crate::{Student, TestServer};

const EXAM: &str = "demo-sealed-tomorrow";

/// A `device.readiness` event as an app sends it.
fn report(device: &str, lab: &str, version: &str, ago_s: i64, exams: Value, waiting: u32) -> Value {
    let checked = exam_server::rfc3339(exam_server::now() - Duration::seconds(ago_s));
    json!({
        "id": format!("readiness-{device}-{checked}"), "type": "device.readiness", "at": checked,
        "attrs": {
            "device": device, "lab": lab, "app_version": version, "checked_at": checked,
            "checks": [
                {"code": "disk", "state": "ok", "value": 20480.0, "detail": null},
                {"code": "clock", "state": "ok", "value": 0.5, "detail": null},
                {"code": "keychain", "state": "ok", "value": null, "detail": null},
                {"code": "prohibited_apps", "state": "ok", "value": 0.0, "detail": null},
                {"code": "displays", "state": "ok", "value": 1.0, "detail": null}
            ],
            "exams": exams,
            "waiting": {"items": waiting, "refused": 0, "students": u32::from(waiting > 0)}
        }
    })
}

async fn send(student: &Student<'_>, events: Vec<Value>) {
    let (status, body) = student
        .send(Method::POST, "/v1/events", json!({"events": events}))
        .await;
    assert_eq!(status, 202, "{body}");
}

async fn readiness(server: &TestServer, query: &str) -> Value {
    let path = format!("/v1/admin/machines/readiness{query}");
    let (status, body) = server.admin(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn item<'a>(answer: &'a Value, device: &str) -> &'a Value {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["device"] == device)
        .unwrap_or_else(|| panic!("{device} is not listed: {answer}"))
}

fn codes(item: &Value, list: &str) -> Vec<String> {
    item[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_exam_names_the_oldest_app_that_may_take_it_and_an_admin_sets_it() {
    let server = TestServer::start().await;
    let student = Student::login(&server, "student1").await;
    let listed = |exams: &Value, id: &str| {
        exams
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .cloned()
            .unwrap()
    };
    // The demo: tomorrow's exam needs an app newer than this one; the others any.
    let (_, exams) = student.get("/v1/exams").await;
    assert_eq!(listed(&exams, EXAM)["min_client_version"], "0.2.0");
    assert_eq!(
        listed(&exams, "demo-mixed")["min_client_version"],
        Value::Null
    );

    let path = "/v1/admin/exams/demo-mixed/min-client-version";
    let (status, body) = server
        .admin(
            Method::PUT,
            path,
            Some(json!({"min_client_version": "1.2.3"})),
        )
        .await;
    assert_eq!(
        (status, &body),
        (
            200,
            &json!({"exam_id": "demo-mixed", "min_client_version": "1.2.3"})
        )
    );
    let (_, exams) = student.get("/v1/exams").await;
    assert_eq!(listed(&exams, "demo-mixed")["min_client_version"], "1.2.3");
    let (_, admin_exams) = server.admin(Method::GET, "/v1/admin/exams", None).await;
    assert_eq!(
        listed(&admin_exams, "demo-mixed")["min_client_version"],
        "1.2.3"
    );
    // Not a version, an unknown exam, a student: refused.
    for (path, body, want) in [
        (path, json!({"min_client_version": "soon"}), 422),
        (path, json!({"min_client_version": "1.2"}), 422),
        (path, json!({"other": 1}), 400),
        (
            "/v1/admin/exams/nope/min-client-version",
            json!({"min_client_version": null}),
            404,
        ),
    ] {
        let (status, problem) = server.admin(Method::PUT, path, Some(body.clone())).await;
        assert_eq!(status, want, "{body}: {problem}");
    }
    let (status, _) = student
        .send(Method::PUT, path, json!({"min_client_version": null}))
        .await;
    assert_eq!(status, 403);
    // Cleared again, and each change audited.
    let (status, _) = server
        .admin(Method::PUT, path, Some(json!({"min_client_version": null})))
        .await;
    assert_eq!(status, 200);
    let (_, exams) = student.get("/v1/exams").await;
    assert_eq!(
        listed(&exams, "demo-mixed")["min_client_version"],
        Value::Null
    );
    let (_, audit) = server
        .admin(
            Method::GET,
            "/v1/admin/audit?type=exam_min_client_version",
            None,
        )
        .await;
    assert_eq!(audit.as_array().map(Vec::len), Some(2), "{audit}");
}

#[tokio::test]
async fn which_machines_are_not_ready_for_an_exam_at_a_time_and_why() {
    let server = TestServer::start().await;
    let (a, b, c) = (
        Student::login(&server, "student1").await,
        Student::login(&server, "student2").await,
        Student::login(&server, "student3").await,
    );
    let kept = |version: u32| json!([{"exam_id": EXAM, "version": version, "sealed": true, "ready": true, "reasons": []}]);
    // Machine 1: a new enough app with the exam downloaded. Machine 2: this app, without the
    // exam, with work waiting. Machine 3: only its minute summaries (an app that does not
    // report readiness). Machine 4: reported three days ago, silent since.
    send(&a, vec![report("m-1", "Lab A", "0.2.0", 60, kept(1), 0)]).await;
    send(
        &b,
        vec![report(
            "m-2",
            "=cmd|' /C calc'!A0",
            "0.1.0",
            30,
            json!([]),
            3,
        )],
    )
    .await;
    let minute = exam_server::rfc3339(exam_server::now() - Duration::minutes(2));
    send(
        &c,
        vec![
            json!({"id": "metrics-m-3", "type": "metrics.minute", "at": minute,
                    "attrs": {"minute": minute, "device": "m-3", "lab": "Lab B",
                              "app_version": "0.1.0", "attempt_id": null, "exam_id": null,
                              "metrics": {}}}),
        ],
    )
    .await;
    send(&c, vec![report("m-4", "Lab B", "0.2.0", 10, kept(1), 0)]).await;
    {
        let db = rusqlite::Connection::open(&server.db).unwrap();
        let three_days_ago = (exam_server::now() - Duration::days(3)).timestamp_millis();
        db.execute(
            "UPDATE machine_readiness SET received_ms = ?1, checked_ms = ?1 WHERE device = 'm-4'",
            [three_days_ago],
        )
        .unwrap();
    }
    // An older report of machine 1 arriving late (a queue drained late) changes nothing.
    send(
        &a,
        vec![report("m-1", "Lab A", "0.1.0", 7200, json!([]), 9)],
    )
    .await;

    let answer = readiness(&server, &format!("?exam={EXAM}")).await;
    assert_eq!(answer["exam"]["min_client_version"], "0.2.0");
    // No `at`: the exam's opening (tomorrow), and "not seen" counts back from now.
    assert_eq!(answer["at"], answer["exam"]["opens_at"]);
    assert_eq!(
        (answer["machines"].as_u64(), answer["ready"].as_u64()),
        (Some(4), Some(1))
    );
    let m1 = item(&answer, "m-1");
    assert_eq!(m1["ready"], true, "{m1}");
    assert_eq!(m1["app_version"], "0.2.0");
    assert_eq!(m1["exam"]["version"], 1);
    assert_eq!(m1["lab"], "Lab A");
    let m2 = item(&answer, "m-2");
    assert_eq!(m2["ready"], false);
    assert_eq!(
        codes(m2, "reasons"),
        ["version_too_old", "exam_not_downloaded", "work_waiting"]
    );
    assert_eq!(
        m2["reasons"][0]["text"],
        "app 0.1.0 is older than the 0.2.0 this exam needs"
    );
    assert_eq!(m2["waiting"]["items"], 3);
    let m3 = item(&answer, "m-3");
    assert_eq!(codes(m3, "reasons"), ["no_report", "version_too_old"]);
    assert_eq!(m3["lab"], "Lab B");
    let m4 = item(&answer, "m-4");
    assert_eq!(codes(m4, "reasons"), ["not_seen"]);
    // Not-ready machines first.
    let order: Vec<bool> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ready"].as_bool().unwrap())
        .collect();
    assert_eq!(order, [false, false, false, true]);

    // Another exam, any version, not downloaded anywhere; without an exam, the machines alone.
    let mixed = readiness(&server, "?exam=demo-mixed").await;
    assert_eq!(
        codes(item(&mixed, "m-1"), "reasons"),
        ["exam_not_downloaded"]
    );
    let alone = readiness(&server, "").await;
    assert_eq!(alone["exam"], Value::Null);
    assert_eq!(codes(item(&alone, "m-1"), "reasons"), Vec::<String>::new());
    assert_eq!(codes(item(&alone, "m-2"), "reasons"), ["work_waiting"]);
    // Asked about four days ago: machine 4 had been seen then.
    let then = exam_server::rfc3339(exam_server::now() - Duration::days(4) + Duration::hours(12));
    let before = readiness(
        &server,
        &format!("?exam={EXAM}&at={}", then.replace('+', "%2B")),
    )
    .await;
    assert_eq!(before["at"], then);
    assert_eq!(item(&before, "m-4")["ready"], true, "{before}");

    // As CSV: a byte order mark, one row per machine, a lab that looks like a formula defused.
    let response = server
        .request(
            Method::GET,
            &format!("/v1/admin/machines/readiness?exam={EXAM}&format=csv"),
        )
        .bearer_auth(crate::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with(&format!("attachment; filename=\"readiness-{EXAM}-")),
        "{disposition}"
    );
    let csv = response.text().await.unwrap();
    assert!(csv.starts_with('\u{feff}'), "a byte order mark first");
    assert!(csv.contains("\r\nmachines\r\ndevice,lab,subnet,app_version,last_seen,ready,reasons,why,warnings,waiting_items,refused_items\r\n"), "{csv}");
    assert!(csv.contains("not_ready,3\r\n"), "{csv}");
    let row = csv.lines().find(|l| l.starts_with("m-2,")).unwrap();
    assert!(
        row.starts_with("m-2,'=cmd|' /C calc'!A0,127.0.0.0/24,0.1.0,"),
        "{row}"
    );
    assert!(
        row.contains(",no,version_too_old; exam_not_downloaded; work_waiting,"),
        "{row}"
    );

    // Refused, naming what: an unknown exam, a time that is not one, a format it does not make.
    for (query, status) in [
        ("?exam=nope", 404),
        ("?exam=", 400),
        ("?at=tomorrow", 400),
        ("?format=pdf", 400),
    ] {
        let (got, problem) = server
            .admin(
                Method::GET,
                &format!("/v1/admin/machines/readiness{query}"),
                None,
            )
            .await;
        assert_eq!(got, status, "{query}: {problem}");
    }
    let (_, problem) = server
        .admin(
            Method::GET,
            "/v1/admin/machines/readiness?at=tomorrow",
            None,
        )
        .await;
    assert_eq!(problem["parameter"], "at");
    // A student may not ask.
    let (status, _) = a.get("/v1/admin/machines/readiness").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_report_that_cannot_be_read_is_kept_as_an_event_and_left_out() {
    let server = TestServer::start().await;
    let student = Student::login(&server, "student1").await;
    send(
        &student,
        vec![
            json!({"id": "r-1", "type": "device.readiness", "at": "2026-12-01T08:00:00Z",
                   "attrs": {"lab": "no device"}}),
            json!({"id": "r-2", "type": "device.readiness", "at": "2026-12-01T08:00:00Z",
                   "attrs": {"device": "", "app_version": "0.1.0", "checked_at": "x"}}),
        ],
    )
    .await;
    let answer = readiness(&server, "").await;
    assert_eq!(answer["machines"], 0, "{answer}");
    let (_, events) = server
        .admin(Method::GET, "/v1/admin/events?type=device.readiness", None)
        .await;
    assert_eq!(
        events["events"].as_array().map(Vec::len),
        Some(2),
        "{events}"
    );
}
