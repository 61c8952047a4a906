//! How long a per-exam report takes for a big exam: `REPORT_STUDENTS` students (default
//! 1000), each with an attempt of `REPORT_QUESTIONS` answers (default 40), one in ten with an
//! outage and one in twenty-five with a restart reported, and an hour of minute summaries
//! from each machine — in a real SQLite file, seeded directly (what the API would have stored).
//! Then, several times, the report is built from the database (on the server's read-only
//! connection, as the endpoint and the schedule do) and rendered as JSON, CSV and PDF; the
//! median and 95th percentile of build + render are printed next to the budget (2 s). Prints
//! the times; asserts nothing about them.
//!
//! `cargo bench -p exam-server --bench reports` (release build).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use exam_server::fleet::{Aggregate, Row, Summary, METRICS};
use exam_server::reports::{self, Format, Kind, Request};
use rusqlite::params;
use serde_json::json;

const EXAM: &str = "bench-exam";
const RUNS: usize = 20;
const BUDGET: Duration = Duration::from_secs(2);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn seed(conn: &mut rusqlite::Connection, students: usize, questions: usize) {
    let opens = t("2026-12-01T08:00:00Z");
    let at = |seconds: i64| exam_server::rfc3339(opens + chrono::Duration::seconds(seconds));
    let tx = conn.transaction().unwrap();
    let question_list: Vec<_> = (0..questions)
        .map(|q| {
            json!({"id": format!("q{q:02}"), "kind": "single", "prompt": format!("Câu {q}"),
                   "options": [{"id": "o1", "text": "A"}, {"id": "o2", "text": "B"}]})
        })
        .collect();
    tx.execute(
        "INSERT INTO exams (id, title, version, opens_at, closes_at, duration_s, instructions,
                            questions)
         VALUES (?1, 'Kiểm tra cuối kỳ — Giải tích', 1, ?2, ?3, 5400, '', ?4)",
        params![EXAM, at(0), at(3 * 3600), json!(question_list).to_string()],
    )
    .unwrap();
    let names = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"];
    let given = [
        "Thị Hương",
        "Văn Đức",
        "Minh Châu",
        "Quốc Bảo",
        "Thu Trang",
        "Đức Anh",
    ];
    for s in 0..students {
        let started = i64::try_from(s % 300).unwrap();
        tx.execute(
            "INSERT INTO users (username, password_hash, created_at) VALUES (?1, 'x', ?2)",
            params![
                format!(
                    "{} {} {s:04}",
                    names[s % names.len()],
                    given[s % given.len()]
                ),
                at(0)
            ],
        )
        .unwrap();
        let user = tx.last_insert_rowid();
        let attempt = format!("attempt-{s:04}");
        let submitted = 5000 + started + i64::try_from(s % 700).unwrap();
        let deadline = started + 5400;
        tx.execute(
            "INSERT INTO attempts (id, exam_id, user_id, status, started_at, deadline_at,
                                   applied_writes, receipt_id, submitted_at, answers_digest, late)
             VALUES (?1, ?2, ?3, 'submitted', ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                attempt,
                EXAM,
                user,
                at(started),
                at(deadline),
                i64::try_from(questions + s % 7).unwrap(),
                format!("receipt-{s}"),
                at(submitted),
                "0".repeat(64),
                submitted > deadline
            ],
        )
        .unwrap();
        for q in 0..questions {
            let saved = started + 60 + i64::try_from(q * 120 + s % 97).unwrap();
            tx.prepare_cached(
                "INSERT INTO answers (attempt_id, question_id, value, seq, saved_at)
                 VALUES (?1, ?2, '\"o1\"', ?3, ?4)",
            )
            .unwrap()
            .execute(params![attempt, format!("q{q:02}"), q, at(saved)])
            .unwrap();
        }
        let event = |kind: &str, from: i64, to: i64| {
            tx.prepare_cached(
                "INSERT INTO events (user_id, id, type, at, attrs, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?4)",
            )
            .unwrap()
            .execute(params![
                user,
                format!("{kind}-{s}"),
                kind,
                at(to),
                json!({"attempt_id": attempt, "started_at": at(from), "ended_at": at(to),
                       "duration_ms": (to - from) * 1000})
                .to_string()
            ])
            .unwrap();
        };
        if s % 10 == 0 {
            event("network.outage", started + 600, started + 725);
        }
        if s % 25 == 0 {
            event("app.not_running", started + 700, started + 780);
        }
        for m in 0..60 {
            let mut metrics = [None; METRICS.len()];
            for (name, value) in [("delivered", 1.0), ("queue_depth", 0.0), ("offline_s", 0.0)] {
                let i = METRICS.iter().position(|n| *n == name).unwrap();
                metrics[i] = Some(Aggregate {
                    count: 60,
                    sum: value,
                    min: 0.0,
                    max: value,
                });
            }
            let summary = Summary {
                minute_ms: opens.timestamp_millis() + m * 60_000,
                device: format!("machine-{s:04}"),
                lab: Some(format!("Phòng máy {}", s % 25)),
                app_version: Some("1.4.0".into()),
                attempt_id: Some(attempt.clone()),
                exam_id: Some(EXAM.into()),
                metrics,
            };
            exam_server::fleet::record(
                &tx,
                &Row {
                    summary: &summary,
                    subnet: format!("10.0.{}.0/24", s % 25),
                    user_id: user,
                    received_ms: summary.minute_ms + 61_000,
                },
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let students = env_usize("REPORT_STUDENTS", 1000);
    let questions = env_usize("REPORT_QUESTIONS", 40);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let seeding = Instant::now();
    {
        let db = exam_server::Db::open(&path).unwrap();
        seed(&mut db.lock(), students, questions);
    }
    println!(
        "seeded {students} students × {questions} answers, {} machine-minutes in {:.1} s",
        students * 60,
        seeding.elapsed().as_secs_f64()
    );
    let reader = exam_server::Db::open_reader(&path).unwrap();
    let request = Request::new(Kind::Exam, Some(EXAM.into()), None);
    let now = t("2026-12-01T18:00:00Z");

    // Building alone, then building and rendering each format (what a request or a scheduled
    // run does).
    let mut builds = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        reports::build(&reader.lock(), &request, now).unwrap();
        builds.push(started.elapsed());
    }
    report_line("build (read + compute)", &mut builds, None);
    for format in [Format::Json, Format::Csv, Format::Pdf] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..RUNS {
            let started = Instant::now();
            let report = reports::build(&reader.lock(), &request, now).unwrap();
            size = reports::render(&report, format).unwrap().len();
            times.push(started.elapsed());
        }
        report_line(
            &format!("build + render {}", format.name()),
            &mut times,
            Some(size),
        );
    }
}

/// "name  median … ms  p95 … ms  (budget 2 s)".
fn report_line(name: &str, times: &mut [Duration], size: Option<usize>) {
    times.sort();
    let median = times[times.len() / 2];
    let p95 = times[((times.len() * 95).div_ceil(100)).saturating_sub(1)];
    let within = if p95 <= BUDGET { "within" } else { "OVER" };
    println!(
        "{name:<24} median {:>8.1} ms  p95 {:>8.1} ms  budget {:.0} s ({within}){}",
        ms(median),
        ms(p95),
        BUDGET.as_secs_f64(),
        size.map_or(String::new(), |s| format!("  {} KiB", s / 1024)),
    );
}
