//! A scripted, deterministic dataset for the report tests: one exam on 1 December 2026 in
//! "Phòng máy 3" with four students (Vietnamese names), their answers, the outages their
//! apps reported, the lab's minute summaries, and a handful of alerts — every time fixed.
//!
//! Written straight into the database (what the API would have stored), so that the
//! reports made from it are the same on every run: the golden files pin them.

use chrono::{DateTime, Utc};
use exam_server::fleet::{Aggregate, Row, Summary, METRICS};
use rusqlite::{params, Connection};
use serde_json::json;

pub const EXAM: &str = "giua-ky-toan";
pub const EXAM_TITLE: &str = "Kiểm tra giữa kỳ — Toán cao cấp";
pub const LAB: &str = "Phòng máy 3";
pub const HUONG: &str = "Nguyễn Thị Hương";
pub const DUC: &str = "Trần Văn Đức";
pub const CHAU: &str = "Lê Minh Châu";
pub const BAO: &str = "Phạm Quốc Bảo";

/// When the reports are made: the evening of the exam.
pub const NOW: &str = "2026-12-01T18:00:00Z";

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// `hh:mm:ss` on the exam's day, as stored (RFC 3339 with milliseconds).
fn at(hms: &str) -> String {
    exam_server::rfc3339(t(&format!("2026-12-01T{hms}Z")))
}

fn minute_ms(hm: &str) -> i64 {
    t(&format!("2026-12-01T{hm}:00Z")).timestamp_millis()
}

fn user(conn: &Connection, name: &str) -> i64 {
    conn.execute(
        "INSERT INTO users (username, password_hash, created_at) VALUES (?1, 'x', ?2)",
        params![name, at("07:00:00")],
    )
    .unwrap();
    conn.last_insert_rowid()
}

struct Attempt<'a> {
    id: &'a str,
    user: i64,
    started: &'a str,
    submitted: Option<&'a str>,
    late: bool,
    applied_writes: i64,
    saves: &'a [(&'a str, &'a str)],
}

fn attempt(conn: &Connection, a: &Attempt<'_>) {
    let started = t(&format!("2026-12-01T{}Z", a.started));
    let deadline = exam_server::rfc3339(started + chrono::Duration::hours(1));
    conn.execute(
        "INSERT INTO attempts (id, exam_id, user_id, status, started_at, deadline_at,
                               applied_writes, receipt_id, submitted_at, answers_digest, late)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            a.id,
            EXAM,
            a.user,
            if a.submitted.is_some() {
                "submitted"
            } else {
                "open"
            },
            at(a.started),
            deadline,
            a.applied_writes,
            a.submitted.map(|_| format!("receipt-{}", a.id)),
            a.submitted.map(at),
            a.submitted.map(|_| "0".repeat(64)),
            a.submitted.map(|_| a.late),
        ],
    )
    .unwrap();
    for (question, saved) in a.saves {
        conn.execute(
            "INSERT INTO answers (attempt_id, question_id, value, seq, saved_at)
             VALUES (?1, ?2, '\"o1\"', 1, ?3)",
            params![a.id, question, at(saved)],
        )
        .unwrap();
    }
}

fn event(conn: &Connection, user: i64, id: &str, kind: &str, attrs: serde_json::Value) {
    conn.execute(
        "INSERT INTO events (user_id, id, type, at, attrs, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?4)",
        params![user, id, kind, at("08:40:00"), attrs.to_string()],
    )
    .unwrap();
}

/// One machine-minute of the lab.
#[allow(clippy::too_many_arguments)]
fn minute(
    conn: &Connection,
    device: &str,
    hm: &str,
    user: i64,
    attempt: Option<&str>,
    version: &str,
    metrics: &[(&str, f64)],
) {
    let mut values = [None; METRICS.len()];
    for (name, value) in metrics {
        let i = METRICS.iter().position(|m| m == name).unwrap();
        values[i] = Some(Aggregate {
            count: 1,
            sum: *value,
            min: *value,
            max: *value,
        });
    }
    let summary = Summary {
        minute_ms: minute_ms(hm),
        device: device.into(),
        lab: Some(LAB.into()),
        app_version: Some(version.into()),
        attempt_id: attempt.map(str::to_string),
        exam_id: attempt.map(|_| EXAM.to_string()),
        metrics: values,
    };
    exam_server::fleet::record(
        conn,
        &Row {
            summary: &summary,
            subnet: "10.3.0.0/24".into(),
            user_id: user,
            received_ms: summary.minute_ms + 61_000,
        },
    )
    .unwrap();
}

fn alert(
    conn: &Connection,
    rule: &str,
    severity: &str,
    username: Option<&str>,
    ip: Option<&str>,
    summary: &str,
    times: (&str, Option<&str>, Option<&str>),
) {
    let (created, cleared, acked) = times;
    conn.execute(
        "INSERT INTO alerts (rule, severity, username, ip, summary, evidence, created_at,
                             cleared_at, acked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, '{}', ?6, ?7, ?8)",
        params![
            rule,
            severity,
            username,
            ip,
            summary,
            exam_server::rfc3339(t(created)),
            cleared.map(|c| exam_server::rfc3339(t(c))),
            acked.map(|a| exam_server::rfc3339(t(a))),
        ],
    )
    .unwrap();
}

/// Writes the dataset into a migrated, otherwise empty database.
pub fn write(conn: &Connection) {
    let questions = json!([
        {"id": "q1", "kind": "single", "prompt": "2 + 2 = ?",
         "options": [{"id": "o1", "text": "4"}, {"id": "o2", "text": "5"}]},
        {"id": "q2", "kind": "single", "prompt": "Đạo hàm của x² là gì?",
         "options": [{"id": "o1", "text": "2x"}, {"id": "o2", "text": "x"}]},
        {"id": "q3", "kind": "short", "prompt": "Tích phân của 1/x?", "max_length": 100},
    ]);
    conn.execute(
        "INSERT INTO exams (id, title, version, opens_at, closes_at, duration_s, instructions,
                            questions)
         VALUES (?1, ?2, 1, ?3, ?4, 3600, 'Làm bài trong 60 phút.', ?5)",
        params![
            EXAM,
            EXAM_TITLE,
            at("08:00:00"),
            at("11:00:00"),
            questions.to_string()
        ],
    )
    .unwrap();
    let huong = user(conn, HUONG);
    let duc = user(conn, DUC);
    let chau = user(conn, CHAU);
    let bao = user(conn, BAO);

    attempt(
        conn,
        &Attempt {
            id: "a-huong",
            user: huong,
            started: "08:00:10",
            submitted: Some("08:55:00"),
            late: false,
            applied_writes: 4,
            saves: &[("q1", "08:10:00"), ("q2", "08:20:30"), ("q3", "08:54:00")],
        },
    );
    attempt(
        conn,
        &Attempt {
            id: "a-duc",
            user: duc,
            started: "08:01:30",
            submitted: Some("09:02:00"),
            late: true,
            applied_writes: 5,
            saves: &[("q1", "08:30:00"), ("q2", "08:45:10"), ("q3", "09:01:50")],
        },
    );
    attempt(
        conn,
        &Attempt {
            id: "a-chau",
            user: chau,
            started: "08:05:00",
            submitted: None,
            late: false,
            applied_writes: 1,
            saves: &[("q1", "08:06:00")],
        },
    );
    attempt(
        conn,
        &Attempt {
            id: "a-bao",
            user: bao,
            started: "08:03:00",
            submitted: Some("08:40:00"),
            late: false,
            applied_writes: 2,
            saves: &[("q1", "08:10:40"), ("q3", "08:39:00")],
        },
    );

    // What the apps reported: an outage and, overlapping it, a restart for Đức; a restart for
    // Hương; and an outage of another attempt (not this exam's), which must not count.
    event(
        conn,
        duc,
        "ev-duc-outage",
        "network.outage",
        json!({"attempt_id": "a-duc", "started_at": at("08:10:00"), "ended_at": at("08:12:05"),
               "duration_ms": 125_000, "state": "offline"}),
    );
    event(
        conn,
        duc,
        "ev-duc-restart",
        "app.not_running",
        json!({"attempt_id": "a-duc", "started_at": at("08:11:00"), "ended_at": at("08:13:00"),
               "duration_ms": 120_000, "device": "pm3-02"}),
    );
    event(
        conn,
        huong,
        "ev-huong-restart",
        "app.not_running",
        json!({"attempt_id": "a-huong", "started_at": at("08:30:00"), "ended_at": at("08:31:20"),
               "duration_ms": 80_000, "device": "pm3-01"}),
    );
    event(
        conn,
        bao,
        "ev-bao-elsewhere",
        "network.outage",
        json!({"attempt_id": "another-exam", "started_at": at("08:20:00"),
               "ended_at": at("08:25:00"), "state": "offline"}),
    );

    // The lab: three machines during the exam (one on an older app), Đức's offline for two
    // minutes and a bit, and one machine on in the evening with answers still waiting.
    for (hm, delivered) in [
        ("08:00", 2.0),
        ("08:10", 1.0),
        ("08:20", 1.0),
        ("08:54", 1.0),
    ] {
        minute(
            conn,
            "pm3-01",
            hm,
            huong,
            Some("a-huong"),
            "1.4.0",
            &[("delivered", delivered), ("queue_depth", 0.0)],
        );
    }
    minute(
        conn,
        "pm3-02",
        "08:01",
        duc,
        Some("a-duc"),
        "1.4.0",
        &[("delivered", 1.0)],
    );
    minute(
        conn,
        "pm3-02",
        "08:10",
        duc,
        Some("a-duc"),
        "1.4.0",
        &[("offline_s", 60.0), ("outages", 1.0)],
    );
    minute(
        conn,
        "pm3-02",
        "08:11",
        duc,
        Some("a-duc"),
        "1.4.0",
        &[("offline_s", 60.0)],
    );
    minute(
        conn,
        "pm3-02",
        "08:12",
        duc,
        Some("a-duc"),
        "1.4.0",
        &[("offline_s", 5.0), ("delivered", 2.0)],
    );
    minute(
        conn,
        "pm3-02",
        "09:01",
        duc,
        Some("a-duc"),
        "1.4.0",
        &[("delivered", 2.0), ("queue_depth", 0.0)],
    );
    minute(
        conn,
        "pm3-03",
        "08:05",
        chau,
        Some("a-chau"),
        "1.3.9",
        &[("delivered", 1.0), ("offline_s", 3.0)],
    );
    minute(
        conn,
        "pm3-04",
        "17:57",
        bao,
        None,
        "1.4.0",
        &[("queue_depth", 3.0)],
    );

    alert(
        conn,
        "client_finding",
        "warning",
        Some(DUC),
        Some("10.3.0.12"),
        "Trần Văn Đức: a prohibited program is running (TeamViewer)",
        ("2026-12-01T08:20:00Z", Some("2026-12-01T08:25:00Z"), None),
    );
    alert(
        conn,
        "two_devices",
        "warning",
        Some(CHAU),
        Some("10.3.0.13"),
        "Lê Minh Châu signed in on two machines (pm3-03, pm3-04)",
        ("2026-12-01T08:30:00Z", None, Some("2026-12-01T09:00:00Z")),
    );
    alert(
        conn,
        "network_changed",
        "info",
        Some(HUONG),
        Some("10.3.0.11"),
        "Nguyễn Thị Hương's attempt continued from a new address",
        ("2026-12-01T08:40:00Z", None, None),
    );
    alert(
        conn,
        "password_spraying",
        "critical",
        None,
        Some("10.9.9.50"),
        "12 usernames failed to sign in from 10.9.9.50 within 10 min",
        ("2026-12-01T12:00:00Z", None, Some("2026-12-01T19:00:00Z")),
    );
    // Two days before: outside the day's report.
    alert(
        conn,
        "brute_force",
        "warning",
        Some(BAO),
        Some("10.3.0.14"),
        "Phạm Quốc Bảo: 5 failed sign-ins",
        ("2026-11-29T10:00:00Z", None, None),
    );
}
