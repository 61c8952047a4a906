//! Fleet analytics: `metrics.minute` summaries aggregated per machine, lab and exam (exact
//! sums on known events), the series for charts, the server's own figures beside them, the
//! lab of a machine without one (its subnet), retention, and the queries' validation.

use chrono::{DateTime, Duration, DurationRound, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::{new_key, Student, TestServer};

/// The start of the minute `ago` minutes before now.
fn minute(ago: i64) -> DateTime<Utc> {
    this_minute() - Duration::minutes(ago)
}

fn this_minute() -> DateTime<Utc> {
    exam_server::now()
        .duration_trunc(Duration::minutes(1))
        .unwrap()
}

fn agg(count: i64, sum: f64, min: f64, max: f64) -> Value {
    json!({"count": count, "sum": sum, "min": min, "max": max})
}

/// As the server answers it: with the mean.
fn figure(count: i64, sum: f64, min: f64, max: f64) -> Value {
    json!({"count": count, "sum": sum, "min": min, "max": max, "mean": sum / count as f64})
}

fn summary(
    at: DateTime<Utc>,
    device: &str,
    lab: Option<&str>,
    exam: Option<&str>,
    metrics: Value,
) -> Value {
    let minute = exam_server::rfc3339(at);
    json!({"id": format!("metrics-{device}-{}", at.timestamp_millis()),
           "type": "metrics.minute", "at": minute,
           "attrs": {"minute": minute, "device": device, "lab": lab, "app_version": "1.4.0",
                     "attempt_id": exam.map(|_| "a-1"), "exam_id": exam,
                     "metrics": metrics}})
}

async fn send(student: &Student<'_>, events: Vec<Value>) -> Value {
    let (status, body) = student
        .send(Method::POST, "/v1/events", json!({"events": events}))
        .await;
    assert_eq!(status, 202, "{body}");
    body
}

async fn get(server: &TestServer, path: &str) -> Value {
    let (status, body) = server.admin(Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Two machines in "Lab A" (one with two minutes), one in an unnamed lab, and what must not
/// count: a retried event, the same machine-minute from another student, a malformed summary.
/// Its minutes are counted back from `base`'s; it returns them `ago` minutes back.
async fn known_fleet(server: &TestServer) -> impl Fn(i64) -> DateTime<Utc> {
    let base = this_minute();
    let minute = move |ago: i64| base - Duration::minutes(ago);
    let s1 = Student::login(server, "student1").await;
    let s2 = Student::login(server, "student2").await;
    let s3 = Student::login(server, "student3").await;
    let exam = Some("demo-mixed");
    let a1_first = summary(
        minute(3),
        "dev-a1",
        Some("Lab A"),
        exam,
        json!({"save_ms": agg(2, 30.0, 10.0, 20.0), "delivered": agg(60, 2.0, 0.0, 1.0),
               "offline_s": agg(5, 5.0, 1.0, 1.0)}),
    );
    let body = send(
        &s1,
        vec![
            a1_first.clone(),
            summary(
                minute(2),
                "dev-a1",
                Some("Lab A"),
                exam,
                json!({"save_ms": agg(1, 40.0, 40.0, 40.0), "outages": agg(1, 1.0, 1.0, 1.0)}),
            ),
            // Two days ago: outside the default period.
            summary(
                minute(2 * 24 * 60),
                "dev-a1",
                Some("Lab A"),
                exam,
                json!({"save_ms": agg(1, 1000.0, 1000.0, 1000.0)}),
            ),
        ],
    )
    .await;
    assert_eq!(body["accepted"], 3);
    // Retried: not a second minute.
    assert_eq!(send(&s1, vec![a1_first]).await["accepted"], 0);
    send(
        &s2,
        vec![
            summary(
                minute(2),
                "dev-a2",
                Some("Lab A"),
                exam,
                json!({"save_ms": agg(3, 15.0, 2.0, 9.0),
                       "refresh_failures": agg(1, 2.0, 2.0, 2.0),
                       "gpu_temp_c": agg(1, 70.0, 70.0, 70.0)}),
            ),
            // dev-a1's minute again, from another student signed in on it: kept as an event,
            // counted once.
            json!({"id": new_key(), "type": "metrics.minute",
                   "at": exam_server::rfc3339(minute(3)),
                   "attrs": {"minute": exam_server::rfc3339(minute(3)), "device": "dev-a1",
                             "lab": "Lab A", "metrics": {"save_ms": agg(9, 900.0, 1.0, 500.0)}}}),
        ],
    )
    .await;
    let body = send(
        &s3,
        vec![
            summary(
                minute(3),
                "dev-c1",
                None,
                None,
                json!({"save_ms": agg(4, 10.0, 1.0, 4.0), "offline_s": agg(60, 60.0, 1.0, 1.0)}),
            ),
            // Malformed (no device): accepted and kept, never counted.
            json!({"id": new_key(), "type": "metrics.minute",
                   "at": exam_server::rfc3339(minute(3)),
                   "attrs": {"minute": exam_server::rfc3339(minute(3)),
                             "metrics": {"save_ms": agg(1, 5000.0, 5000.0, 5000.0)}}}),
        ],
    )
    .await;
    assert_eq!(body["accepted"], 2, "a malformed summary is still an event");
    minute
}

/// The groups without `last_seen` (checked apart: it is the server's clock).
fn groups(body: &Value) -> Vec<Value> {
    body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let seen = g["last_seen"].as_str().unwrap();
            let seen = DateTime::parse_from_rfc3339(seen).unwrap();
            assert!(seen <= exam_server::now() && seen > exam_server::now() - Duration::minutes(5));
            let mut g = g.clone();
            g.as_object_mut().unwrap().remove("last_seen");
            g
        })
        .collect()
}

#[tokio::test]
async fn minute_summaries_are_aggregated_per_lab_machine_and_exam() {
    let server = TestServer::start().await;
    let minute = known_fleet(&server).await;

    let by_lab = get(&server, "/v1/admin/fleet").await;
    assert_eq!(by_lab["by"], "lab");
    let from = DateTime::parse_from_rfc3339(by_lab["from"].as_str().unwrap()).unwrap();
    let to = DateTime::parse_from_rfc3339(by_lab["to"].as_str().unwrap()).unwrap();
    assert_eq!(to - from, Duration::hours(24), "the last 24 h by default");
    assert_eq!(
        groups(&by_lab),
        vec![
            json!({"key": "127.0.0.0/24", "label": "Subnet 127.0.0.0/24",
                   "machines": 1, "students": 1, "minutes": 1,
                   "metrics": {"save_ms": figure(4, 10.0, 1.0, 4.0),
                               "offline_s": figure(60, 60.0, 1.0, 1.0)}}),
            json!({"key": "Lab A", "label": "Lab A", "machines": 2, "students": 2, "minutes": 3,
                   "metrics": {"save_ms": figure(6, 85.0, 2.0, 40.0),
                               "delivered": figure(60, 2.0, 0.0, 1.0),
                               "offline_s": figure(5, 5.0, 1.0, 1.0),
                               "refresh_failures": figure(1, 2.0, 2.0, 2.0),
                               "outages": figure(1, 1.0, 1.0, 1.0)}}),
        ],
        "{by_lab}"
    );

    let by_machine = get(&server, "/v1/admin/fleet?by=machine").await;
    assert_eq!(by_machine["by"], "machine");
    let machines: Vec<(Value, Value, Value, Value)> = groups(&by_machine)
        .into_iter()
        .map(|g| {
            (
                g["key"].clone(),
                g["label"].clone(),
                g["minutes"].clone(),
                g["metrics"]["save_ms"].clone(),
            )
        })
        .collect();
    assert_eq!(
        machines,
        vec![
            (
                json!("dev-a1"),
                json!("in Lab A"),
                json!(2),
                figure(3, 70.0, 10.0, 40.0)
            ),
            (
                json!("dev-a2"),
                json!("in Lab A"),
                json!(1),
                figure(3, 15.0, 2.0, 9.0)
            ),
            (
                json!("dev-c1"),
                json!("in 127.0.0.0/24"),
                json!(1),
                figure(4, 10.0, 1.0, 4.0)
            ),
        ],
        "{by_machine}"
    );

    let by_exam = get(&server, "/v1/admin/fleet?by=exam").await;
    let exams = groups(&by_exam);
    assert_eq!(exams.len(), 2, "{by_exam}");
    assert_eq!(exams[0]["key"], "", "minutes outside an exam");
    assert_eq!(exams[0]["label"], "Not in an exam");
    assert_eq!(exams[0]["machines"], 1);
    assert_eq!(exams[1]["key"], "demo-mixed");
    let title: String = server
        .state
        .db
        .lock()
        .query_row("SELECT title FROM exams WHERE id = 'demo-mixed'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(exams[1]["label"], title.as_str());
    assert_eq!(
        (
            &exams[1]["machines"],
            &exams[1]["students"],
            &exams[1]["minutes"]
        ),
        (&json!(2), &json!(2), &json!(3))
    );
    assert_eq!(exams[1]["metrics"]["save_ms"], figure(6, 85.0, 2.0, 40.0));

    // A longer period takes in the minute of two days ago.
    let from = exam_server::rfc3339(minute(3 * 24 * 60));
    let longer = get(&server, &format!("/v1/admin/fleet?from={from}")).await;
    let lab_a = &longer["groups"][1];
    assert_eq!(lab_a["minutes"], 4, "{longer}");
    assert_eq!(lab_a["metrics"]["save_ms"], figure(7, 1085.0, 2.0, 1000.0));
    // And a period that ends before the last minutes leaves them out: `to` is exclusive.
    let to = exam_server::rfc3339(minute(2));
    let earlier = get(&server, &format!("/v1/admin/fleet?to={to}")).await;
    assert_eq!(
        earlier["groups"][1]["metrics"]["save_ms"],
        figure(2, 30.0, 10.0, 20.0)
    );
}

#[tokio::test]
async fn a_series_has_a_point_per_step_with_data() {
    let server = TestServer::start().await;
    let minute = known_fleet(&server).await;
    let at = |ago| json!(exam_server::rfc3339(minute(ago)));

    let lab_a = get(
        &server,
        "/v1/admin/fleet/series?metric=save_ms&by=lab&key=Lab%20A",
    )
    .await;
    assert_eq!(lab_a["metric"], "save_ms");
    assert_eq!(lab_a["step_s"], 60);
    assert_eq!(lab_a["key"], "Lab A");
    // p99: of the machine-minutes' maxima (a few of them: the largest).
    let mut first = figure(2, 30.0, 10.0, 20.0);
    first["at"] = at(3);
    first["p99"] = json!(20.0);
    let mut second = figure(4, 55.0, 2.0, 40.0);
    second["at"] = at(2);
    second["p99"] = json!(40.0);
    assert_eq!(lab_a["points"], json!([first, second]), "{lab_a}");

    // The whole fleet: both labs' offline seconds in one point.
    let fleet = get(&server, "/v1/admin/fleet/series?metric=offline_s").await;
    let mut point = figure(65, 65.0, 1.0, 1.0);
    point["at"] = at(3);
    point["p99"] = json!(1.0);
    assert_eq!(fleet["points"], json!([point]), "{fleet}");
    assert_eq!(fleet["key"], Value::Null);

    // Outside an exam (the key ""), one machine.
    let outside = get(
        &server,
        "/v1/admin/fleet/series?metric=save_ms&by=exam&key=",
    )
    .await;
    let mut point = figure(4, 10.0, 1.0, 4.0);
    point["at"] = at(3);
    point["p99"] = json!(4.0);
    assert_eq!(outside["points"], json!([point]), "{outside}");

    // Hours: the same figures, in the hour (or two) the minutes fall in.
    let hourly = get(
        &server,
        "/v1/admin/fleet/series?metric=save_ms&by=machine&key=dev-a1&step=3600",
    )
    .await;
    assert_eq!(hourly["step_s"], 3600);
    let points = hourly["points"].as_array().unwrap();
    let hours: Vec<Value> = [3, 2]
        .map(|ago| {
            json!(exam_server::rfc3339(
                minute(ago).duration_trunc(Duration::hours(1)).unwrap()
            ))
        })
        .into_iter()
        .fold(Vec::new(), |mut hours, h| {
            if !hours.contains(&h) {
                hours.push(h);
            }
            hours
        });
    assert_eq!(
        points.iter().map(|p| p["at"].clone()).collect::<Vec<_>>(),
        hours,
        "{hourly}"
    );
    let count: i64 = points.iter().map(|p| p["count"].as_i64().unwrap()).sum();
    let sum: f64 = points.iter().map(|p| p["sum"].as_f64().unwrap()).sum();
    assert_eq!((count, sum), (3, 70.0));
    if let [point] = points.as_slice() {
        assert_eq!(point["max"], 40.0);
        assert_eq!(point["mean"], 70.0 / 3.0);
        assert_eq!(point["p99"], 40.0);
    }
}

#[tokio::test]
async fn the_server_adds_its_own_request_figures_for_the_period() {
    let server = TestServer::start().await;
    let student = Student::login(&server, "student4").await;
    student.get("/v1/exams").await;
    let (status, _) = student.get("/v1/admin/fleet").await;
    assert_eq!(status, 403, "students have no fleet view");

    let body = get(&server, "/v1/admin/fleet").await;
    let figures = &body["server"];
    assert_eq!(figures["basis"], "window", "{figures}");
    // The sign-in, the exams, the refused fleet view, at least.
    assert!(figures["requests"].as_u64().unwrap() >= 3, "{figures}");
    assert!(figures["client_errors"].as_u64().unwrap() >= 1, "{figures}");
    assert_eq!(figures["errors"], 0, "{figures}");
    assert!(figures["p50_ms"].as_f64().unwrap() > 0.0, "{figures}");
    assert!(
        figures["p99_ms"].as_f64().unwrap() >= figures["p50_ms"].as_f64().unwrap(),
        "{figures}"
    );
    // The server started a moment ago: that is where its figures begin.
    let covered = DateTime::parse_from_rfc3339(figures["from"].as_str().unwrap()).unwrap();
    assert!(
        covered > exam_server::now() - Duration::minutes(2),
        "{figures}"
    );

    // A period before the server started: nothing it can say.
    let past = get(
        &server,
        "/v1/admin/fleet?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z",
    )
    .await;
    assert_eq!(
        past["server"],
        json!({"basis": "window", "from": null, "to": null, "requests": 0, "errors": 0,
               "client_errors": 0, "rate_limited": 0, "p50_ms": null, "p99_ms": null})
    );
    assert_eq!(past["groups"], json!([]));
}

#[test]
fn a_machine_without_a_lab_is_counted_in_its_subnet() {
    let table = [
        ("10.20.30.40", "10.20.30.0/24"),
        ("10.20.30.255", "10.20.30.0/24"),
        ("127.0.0.1", "127.0.0.0/24"),
        ("192.168.1.7", "192.168.1.0/24"),
        // IPv4 seen through an IPv6 socket is still IPv4.
        ("::ffff:192.168.1.7", "192.168.1.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("fe80::1", "fe80::/64"),
        ("::1", "::/64"),
    ];
    for (ip, subnet) in table {
        assert_eq!(
            exam_server::fleet::subnet(ip.parse().unwrap()),
            subnet,
            "{ip}"
        );
    }
}

#[tokio::test]
async fn old_minutes_are_dropped_and_minutes_out_of_range_never_kept() {
    let server = TestServer::start().await;
    let student = Student::login(&server, "student5").await;
    let rows = || -> i64 {
        server
            .state
            .db
            .lock()
            .query_row("SELECT COUNT(*) FROM metric_minutes", [], |r| r.get(0))
            .unwrap()
    };
    // Stored before the retention moved past it (say, by an older server).
    let old = exam_server::fleet::Summary::from_attrs(
        summary(
            minute(91 * 24 * 60),
            "dev-old",
            None,
            None,
            json!({"save_ms": agg(1, 1.0, 1.0, 1.0)}),
        )["attrs"]
            .as_object()
            .unwrap(),
    )
    .unwrap();
    let stored = exam_server::fleet::record(
        &server.state.db.lock(),
        &exam_server::fleet::Row {
            summary: &old,
            subnet: "10.0.0.0/24".into(),
            user_id: 1,
            received_ms: old.minute_ms,
        },
    )
    .unwrap();
    assert!(stored);
    assert_eq!(rows(), 1);
    let m = json!({"save_ms": agg(1, 1.0, 1.0, 1.0)});
    send(
        &student,
        vec![
            summary(minute(91 * 24 * 60), "dev-x", None, None, m.clone()),
            summary(minute(-2 * 24 * 60), "dev-x", None, None, m.clone()),
            summary(minute(1), "dev-x", None, None, m),
        ],
    )
    .await;
    let devices: Vec<String> = {
        let conn = server.state.db.lock();
        let mut stmt = conn
            .prepare("SELECT device || ' ' || minute_ms FROM metric_minutes")
            .unwrap();
        let devices = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        devices
    };
    assert_eq!(
        devices,
        vec![format!("dev-x {}", minute(1).timestamp_millis())],
        "the old minute dropped, the too old and the future one never kept"
    );
}

#[tokio::test]
async fn fleet_queries_say_which_parameter_is_wrong() {
    let server = TestServer::start().await;
    let month_ago = exam_server::rfc3339(minute(30 * 24 * 60));
    let month_by_minute = format!("/v1/admin/fleet/series?metric=save_ms&from={month_ago}");
    let table = [
        (
            "/v1/admin/fleet?by=room",
            "by `room` is not one of machine, lab, exam",
        ),
        (
            "/v1/admin/fleet?from=yesterday",
            "from `yesterday` is not an RFC 3339 time",
        ),
        (
            "/v1/admin/fleet?to=2026-13-01T00:00:00Z",
            "to `2026-13-01T00:00:00Z` is not an RFC 3339 time",
        ),
        (
            "/v1/admin/fleet?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
            "from (2026-12-02T00:00:00.000Z) must be before to (2026-12-01T00:00:00.000Z)",
        ),
        (
            "/v1/admin/fleet/series",
            "metric is required: one of save_ms, delivered",
        ),
        (
            "/v1/admin/fleet/series?metric=gpu_temp_c",
            "metric `gpu_temp_c` is not one of save_ms",
        ),
        ("/v1/admin/fleet/series?metric=save_ms&by=room", "by `room`"),
        (
            "/v1/admin/fleet/series?metric=save_ms&step=5",
            "step `5` is not one of 60, 300, 900, 3600, 21600, 86400 (seconds) or auto",
        ),
        (
            "/v1/admin/fleet/series?metric=save_ms&from=nope",
            "from `nope`",
        ),
        (
            "/v1/admin/fleet/series?metric=save_ms,gpu_temp_c",
            "metric `gpu_temp_c` is not one of save_ms",
        ),
        (
            "/v1/admin/fleet/series?metric=save_ms,",
            "metric `` is not one of save_ms",
        ),
        (
            "/v1/admin/fleet/series?metric=save_ms&step=120",
            "step `120` is not one of",
        ),
        (
            "/v1/admin/fleet/series?metric=save_ms&points=9",
            "points `9` is not a whole number from 10 to 10080",
        ),
        (
            "/v1/admin/fleet/series?metric=save_ms&step=auto&points=many",
            "points `many`",
        ),
        (
            month_by_minute.as_str(),
            "steps of 60 s; at most 10080: choose a longer step (step=3600, or step=auto)",
        ),
    ];
    for (path, detail) in table {
        let (status, body) = server.admin(Method::GET, path, None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], "invalid_query", "{path}: {body}");
        let said = body["detail"].as_str().unwrap();
        assert!(said.contains(detail), "{path}: {said}");
    }
    // A month by the hour is fine, and so is any period with `step=auto`.
    get(
        &server,
        &format!("/v1/admin/fleet/series?metric=save_ms&from={month_ago}&step=3600"),
    )
    .await;
    let auto = get(
        &server,
        &format!("/v1/admin/fleet/series?metric=save_ms&from={month_ago}&step=auto"),
    )
    .await;
    assert_eq!(auto["step_s"], 3600, "{auto}");
}

#[tokio::test]
async fn the_scopes_are_every_lab_exam_and_machine_kept() {
    let server = TestServer::start().await;
    let empty = get(&server, "/v1/admin/fleet/scopes").await;
    assert_eq!(
        empty,
        json!({"first": null, "last": null, "labs": [], "exams": [], "machines": []}),
        "no machine has reported"
    );
    let minute = known_fleet(&server).await;
    let title: String = server
        .state
        .db
        .lock()
        .query_row("SELECT title FROM exams WHERE id = 'demo-mixed'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let scopes = get(&server, "/v1/admin/fleet/scopes").await;
    assert_eq!(
        scopes,
        json!({
            "first": exam_server::rfc3339(minute(2 * 24 * 60)),
            "last": exam_server::rfc3339(minute(1)),
            "labs": [{"key": "127.0.0.0/24", "label": "Subnet 127.0.0.0/24"},
                     {"key": "Lab A", "label": "Lab A"}],
            "exams": [{"key": "", "label": "Not in an exam"},
                      {"key": "demo-mixed", "label": title}],
            "machines": [{"key": "dev-a1", "label": "in Lab A"},
                         {"key": "dev-a2", "label": "in Lab A"},
                         {"key": "dev-c1", "label": "in 127.0.0.0/24"}],
        })
    );
    // Each scope charts as its key says.
    for (by, key) in [("lab", "Lab%20A"), ("exam", ""), ("machine", "dev-c1")] {
        let body = get(
            &server,
            &format!("/v1/admin/fleet/series?metric=save_ms&by={by}&key={key}"),
        )
        .await;
        assert!(!body["points"].as_array().unwrap().is_empty(), "{by} {key}");
    }
}

/// The start of the UTC step of `step_s` seconds that `t` falls in.
fn step_start(t: DateTime<Utc>, step_s: i64) -> Value {
    json!(exam_server::rfc3339(
        t.duration_trunc(Duration::seconds(step_s)).unwrap()
    ))
}

#[tokio::test]
async fn several_metrics_come_in_one_request_at_any_step() {
    let server = TestServer::start().await;
    let minute = known_fleet(&server).await;
    let lab_a = "/v1/admin/fleet/series?by=lab&key=Lab%20A";
    let save = get(&server, &format!("{lab_a}&metric=save_ms")).await;
    let outages = get(&server, &format!("{lab_a}&metric=outages")).await;

    // Each as it comes alone, in the order asked (a repeat ignored).
    let both = get(&server, &format!("{lab_a}&metric=save_ms,outages,save_ms")).await;
    assert_eq!(both["metrics"], json!(["save_ms", "outages"]), "{both}");
    assert_eq!(
        both["series"],
        json!([{"metric": "save_ms", "points": save["points"]},
               {"metric": "outages", "points": outages["points"]}])
    );
    assert!(both.get("metric").is_none() && both.get("points").is_none());
    assert_eq!(
        (&both["by"], &both["key"]),
        (&json!("lab"), &json!("Lab A"))
    );

    // Five minutes a step, aligned on UTC: the same figures in fewer points.
    let five = get(&server, &format!("{lab_a}&metric=save_ms&step=300")).await;
    assert_eq!(five["step_s"], 300);
    let points = five["points"].as_array().unwrap();
    let mut starts = vec![step_start(minute(3), 300)];
    if step_start(minute(2), 300) != starts[0] {
        starts.push(step_start(minute(2), 300));
    }
    assert_eq!(
        points.iter().map(|p| p["at"].clone()).collect::<Vec<_>>(),
        starts,
        "{five}"
    );
    let total = |field: &str| -> f64 { points.iter().map(|p| p[field].as_f64().unwrap()).sum() };
    assert_eq!((total("count"), total("sum")), (6.0, 85.0));
    let max = points.iter().map(|p| p["max"].as_f64().unwrap());
    assert_eq!(max.fold(0.0, f64::max), 40.0);
    for step in [900, 3600, 21_600, 86_400] {
        let coarse = get(&server, &format!("{lab_a}&metric=save_ms&step={step}")).await;
        assert_eq!(coarse["step_s"], step);
        let points = coarse["points"].as_array().unwrap();
        let count: i64 = points.iter().map(|p| p["count"].as_i64().unwrap()).sum();
        assert_eq!(count, 6, "{coarse}");
    }

    // `auto`: the finest step with at most `points` steps in the period.
    let now = exam_server::now();
    let week = format!(
        "from={}&to={}",
        exam_server::rfc3339(now - Duration::days(7)),
        exam_server::rfc3339(now)
    );
    let table = [
        // A day by the minute: 1440 points, the default.
        (String::new(), 60),
        ("&points=300".into(), 300),
        ("&points=100".into(), 900),
        ("&points=10".into(), 21_600),
        // A week: 2016 five-minute steps.
        (format!("&{week}&points=2016"), 300),
        (format!("&{week}&points=2015"), 900),
    ];
    for (query, step) in table {
        let path = format!("{lab_a}&metric=save_ms&step=auto{query}");
        let body = get(&server, &path).await;
        assert_eq!(body["step_s"], step, "{path}");
    }
}

#[tokio::test]
async fn the_99th_percentile_is_of_the_machine_minutes_slowest() {
    let server = TestServer::start().await;
    let student = Student::login(&server, "student6").await;
    // 101 machines' same minute, the slowest save of each 1 to 101 ms.
    let events = (1..=101)
        .map(|i| {
            let v = f64::from(i);
            summary(
                minute(4),
                &format!("dev-{i:03}"),
                Some("Lab P"),
                None,
                json!({"save_ms": agg(2, v, 0.0, v)}),
            )
        })
        .collect();
    send(&student, events).await;
    let body = get(&server, "/v1/admin/fleet/series?metric=save_ms").await;
    let point = &body["points"][0];
    assert_eq!(
        (&point["count"], &point["max"], &point["p99"]),
        (&json!(202), &json!(101.0), &json!(100.0)),
        "the 100th of 101 (nearest rank): {body}"
    );
}

/// The next server-sent event of `response` (comments skipped), as its `id`, `event` and data.
async fn next_event(response: &mut reqwest::Response) -> (String, String, Value) {
    let mut buffer = String::new();
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), response.chunk())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .expect("the stream goes on");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::to_string)
            };
            if let Some(data) = field("data: ") {
                return (
                    field("id: ").unwrap_or_default(),
                    field("event: ").unwrap_or_default(),
                    serde_json::from_str(&data).unwrap(),
                );
            }
        }
    }
}

#[tokio::test]
async fn the_console_hears_of_minutes_as_they_are_stored() {
    let server = TestServer::start().await;
    let student = Student::login(&server, "student7").await;
    let stream = |token: Option<&str>, query: &str| {
        let request = server.request(Method::GET, &format!("/console/fleet/stream{query}"));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
    };
    assert_eq!(stream(None, "").await.unwrap().status(), 401);
    let refused = stream(Some(&student.tokens.access), "").await.unwrap();
    assert_eq!(refused.status(), 403, "a student's token");

    let mut live = stream(Some(crate::ADMIN), "").await.unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    let m = json!({"save_ms": agg(1, 5.0, 5.0, 5.0)});
    let first = summary(
        minute(2),
        "dev-l1",
        Some("Lab L"),
        Some("demo-mixed"),
        m.clone(),
    );
    send(&student, vec![first.clone()]).await;
    let (id, kind, arrived) = next_event(&mut live).await;
    assert_eq!(kind, "minutes");
    assert_eq!(
        arrived,
        json!({"cursor": id.parse::<i64>().unwrap(), "minutes": 1,
               "from": exam_server::rfc3339(minute(2)), "to": exam_server::rfc3339(minute(1)),
               "labs": ["Lab L"], "exams": ["demo-mixed"], "machines": ["dev-l1"],
               "more": false})
    );
    // A retried minute stores nothing: no event; the next new ones are told alone.
    send(&student, vec![first]).await;
    send(
        &student,
        vec![
            summary(minute(1), "dev-l2", None, None, m.clone()),
            summary(minute(1), "dev-l3", None, None, m.clone()),
        ],
    )
    .await;
    let (next_id, _, arrived) = next_event(&mut live).await;
    assert!(next_id.parse::<i64>().unwrap() > id.parse::<i64>().unwrap());
    assert_eq!(arrived["minutes"], 2, "{arrived}");
    assert_eq!(
        arrived["labs"],
        json!(["127.0.0.0/24"]),
        "the subnet, without a lab"
    );
    assert_eq!(arrived["exams"], json!([""]), "outside an exam");
    assert_eq!(arrived["machines"], json!(["dev-l2", "dev-l3"]));

    // Back after a break: from the last id, what was missed meanwhile.
    drop(live);
    send(&student, vec![summary(minute(3), "dev-l4", None, None, m)]).await;
    let mut again = stream(Some(crate::ADMIN), &format!("?since={next_id}"))
        .await
        .unwrap();
    let (_, _, missed) = next_event(&mut again).await;
    assert_eq!(missed["machines"], json!(["dev-l4"]), "{missed}");
    assert_eq!(missed["from"], exam_server::rfc3339(minute(3)));
}
