//! Reports: each kind made from a scripted dataset ([`dataset`]) and compared with its golden
//! files exactly (`tests/it/golden/`; `UPDATE_GOLDEN=1` rewrites them after a deliberate
//! change — read the diff before committing it), the PDFs read back with `pdftotext` for their
//! Vietnamese text, the endpoint's files, headers and refusals, and the schedule end to end
//! against a real SMTP sink ([`schedule`]).

mod dataset;
mod schedule;

use std::path::PathBuf;

use exam_server::reports::{self, Format, Kind, Request};
use reqwest::Method;
use serde_json::Value;

use crate::{Student, TestServer};
use dataset::{BAO, CHAU, DUC, EXAM, EXAM_TITLE, HUONG, LAB, NOW};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/golden")
        .join(name)
}

/// `bytes` must be the golden file `name`'s, byte for byte (`UPDATE_GOLDEN=1`: they become it).
fn golden(name: &str, bytes: &[u8]) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_GOLDEN=1 cargo test -p exam-server --test it reports writes it)",
            path.display()
        )
    });
    if want != bytes {
        let (want, got) = (
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(bytes),
        );
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(w, g)| w != g)
            .unwrap_or_else(|| want.lines().count().min(got.lines().count()));
        panic!(
            "{name} differs from its golden file at line {}:\n  golden: {:?}\n  made:   {:?}\n\
             (UPDATE_GOLDEN=1 rewrites it, if the change is meant)",
            line + 1,
            want.lines().nth(line),
            got.lines().nth(line)
        );
    }
}

/// A database holding the dataset, in a temporary folder.
fn database() -> (tempfile::TempDir, exam_server::Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = exam_server::Db::open(&dir.path().join("reports.db")).unwrap();
    dataset::write(&db.lock());
    (dir, db)
}

/// The three reports of the golden files, by name.
fn requests() -> Vec<(&'static str, Request)> {
    vec![
        ("exam", Request::new(Kind::Exam, Some(EXAM.into()), None)),
        ("lab", Request::new(Kind::Lab, Some(LAB.into()), None)),
        ("security", Request::new(Kind::Security, None, None)),
    ]
}

#[test]
fn each_report_is_its_golden_file_in_json_and_csv() {
    let (_dir, db) = database();
    let conn = db.lock();
    for (name, request) in requests() {
        let report = reports::build(&conn, &request, dataset::t(NOW)).unwrap();
        golden(
            &format!("{name}.json"),
            &reports::render(&report, Format::Json).unwrap(),
        );
        golden(
            &format!("{name}.csv"),
            &reports::render(&report, Format::Csv).unwrap(),
        );
    }
}

/// The text of a PDF as `pdftotext -raw` (poppler-utils, installed by scripts/bootstrap.sh)
/// reads it, in the order it is drawn, with every run of white space one space: a cell that
/// wraps reads as one text.
pub fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, pdf).unwrap();
    let output = std::process::Command::new("pdftotext")
        .arg("-raw")
        .arg(&path)
        .arg("-")
        .output()
        .unwrap_or_else(|e| {
            panic!("pdftotext: {e} (poppler-utils: `bash scripts/bootstrap.sh test` installs it)")
        });
    assert!(output.status.success(), "pdftotext failed: {output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_pdfs_show_the_vietnamese_names_as_written() {
    let (_dir, db) = database();
    let conn = db.lock();
    // (report, what its text must hold)
    let expected: [(&str, &[&str]); 3] = [
        (
            "exam",
            &[
                EXAM_TITLE,
                HUONG,
                DUC,
                CHAU,
                BAO,
                "Fair-time ledger",
                "Time lost: 3 min",
                "Late submissions",
            ],
        ),
        ("lab", &[LAB, "pm3-02", "Not ready", "1.3.9"]),
        (
            "security",
            &[
                "Security summary",
                "Trần Văn Đức: a prohibited program is running (TeamViewer)",
                "Nguyễn Thị Hương's attempt continued from a new address",
                "password_spraying",
            ],
        ),
    ];
    for ((name, request), (_, texts)) in requests().into_iter().zip(expected) {
        let report = reports::build(&conn, &request, dataset::t(NOW)).unwrap();
        let pdf = reports::render(&report, Format::Pdf).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{name}");
        assert_eq!(
            reports::render(&report, Format::Pdf).unwrap(),
            pdf,
            "{name}: the same report gives the same bytes"
        );
        // To look at them: REPORTS_PDF_DIR=/tmp/reports (then e.g. pdftoppm -png).
        if let Some(dir) = std::env::var_os("REPORTS_PDF_DIR") {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(PathBuf::from(dir).join(format!("{name}.pdf")), &pdf).unwrap();
        }
        let text = pdf_text(&pdf);
        for want in texts {
            assert!(text.contains(want), "{name}: no {want:?} in\n{text}");
        }
    }
}

/// The dataset in a running server's database.
async fn server() -> TestServer {
    let server = TestServer::start().await;
    dataset::write(&server.state.db.lock());
    server
}

async fn fetch(server: &TestServer, path: &str) -> reqwest::Response {
    server
        .request(Method::GET, path)
        .bearer_auth(crate::ADMIN)
        .send()
        .await
        .unwrap()
}

fn without_generated_at(mut report: Value) -> Value {
    report.as_object_mut().unwrap().remove("generated_at");
    report
}

#[tokio::test]
async fn the_endpoint_serves_each_format_as_a_named_file() {
    let server = server().await;
    // (path, content type, file name)
    let table = [
        (
            format!("/v1/admin/reports/exam?exam={EXAM}"),
            "application/json",
            "exam-giua-ky-toan-exam-20261201T1100Z.json",
        ),
        (
            format!("/v1/admin/reports/exam?exam={EXAM}&format=csv"),
            "text/csv; charset=utf-8",
            "exam-giua-ky-toan-exam-20261201T1100Z.csv",
        ),
        (
            "/v1/admin/reports/lab?lab=Ph%C3%B2ng%20m%C3%A1y%203&to=2026-12-01T18:00:00Z&format=pdf"
                .to_string(),
            "application/pdf",
            "lab-Phong-may-3-day-20261201T1800Z.pdf",
        ),
        (
            "/v1/admin/reports/security?range=week&to=2026-12-01T18:00:00Z&format=csv".to_string(),
            "text/csv; charset=utf-8",
            "security-week-20261201T1800Z.csv",
        ),
    ];
    for (path, content_type, filename) in table {
        let response = fetch(&server, &path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(
            headers["content-disposition"],
            format!("attachment; filename=\"{filename}\"").as_str(),
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let body = response.bytes().await.unwrap();
        match content_type {
            "application/pdf" => assert!(pdf_text(&body).contains(LAB)),
            "application/json" => {
                // The same report as the golden file, but for when it was made.
                let golden: Value =
                    serde_json::from_slice(&std::fs::read(golden_path("exam.json")).unwrap())
                        .unwrap();
                let served: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(without_generated_at(served), without_generated_at(golden));
            }
            _ => assert!(body.starts_with("\u{feff}report\r\n".as_bytes())),
        }
    }
    // The lab's day as JSON is the golden file's but for when it was made.
    let response = fetch(
        &server,
        "/v1/admin/reports/lab?lab=Ph%C3%B2ng%20m%C3%A1y%203&to=2026-12-01T18:00:00Z",
    )
    .await;
    let served: Value = response.json().await.unwrap();
    let golden: Value =
        serde_json::from_slice(&std::fs::read(golden_path("lab.json")).unwrap()).unwrap();
    assert_eq!(without_generated_at(served), without_generated_at(golden));
}

#[tokio::test]
async fn the_ledger_is_the_time_lost_endpoints() {
    let server = server().await;
    let (status, time_lost) = server
        .admin(
            Method::GET,
            &format!("/v1/admin/exams/{EXAM}/time-lost"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let report: Value = fetch(&server, &format!("/v1/admin/reports/exam?exam={EXAM}"))
        .await
        .json()
        .await
        .unwrap();
    let figures = |rows: &Value, student: &str| -> Vec<Value> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                serde_json::json!([
                    r["attempt_id"],
                    r[student],
                    r["offline_ms"],
                    r["not_running_ms"],
                    r["total_ms"]
                ])
            })
            .collect()
    };
    assert_eq!(
        figures(&report["ledger"], "student"),
        figures(&time_lost["attempts"], "username")
    );
    assert_eq!(report["ledger"][0]["student"], DUC, "most time lost first");
}

#[tokio::test]
async fn a_wrong_parameter_is_named_in_the_problem() {
    let server = server().await;
    let exam = format!("/v1/admin/reports/exam?exam={EXAM}");
    // (path, the parameter named, what the detail says)
    let table = [
        (
            format!("{exam}&range=fortnight"),
            "range",
            "range `fortnight` is not one of day, week, exam, custom",
        ),
        (
            format!("{exam}&format=docx"),
            "format",
            "format `docx` is not one of json, csv, pdf",
        ),
        (
            format!("{exam}&to=nope"),
            "to",
            "to `nope` is not an RFC 3339 time",
        ),
        (
            format!("{exam}&range=exam&from=2026-12-01T00:00:00Z"),
            "from",
            "from is for range=custom",
        ),
        ("/v1/admin/reports/exam".into(), "exam", "exam is required"),
        (
            "/v1/admin/reports/lab?lab=%20".into(),
            "lab",
            "lab is required",
        ),
        (
            "/v1/admin/reports/security?from=yesterday".into(),
            "from",
            "from `yesterday`",
        ),
        (
            "/v1/admin/reports/security?range=exam".into(),
            "range",
            "range=exam is for exam reports",
        ),
        (
            "/v1/admin/reports/security?range=custom".into(),
            "from",
            "from is required with range=custom",
        ),
        (
            "/v1/admin/reports/security?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z".into(),
            "from",
            "must be before to",
        ),
        (
            "/v1/admin/reports/security?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z".into(),
            "to",
            "at most 366 days",
        ),
    ];
    for (path, parameter, detail) in table {
        let response = fetch(&server, &path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_query", "{path}: {body}");
        assert_eq!(body["parameter"], parameter, "{path}: {body}");
        let said = body["detail"].as_str().unwrap();
        assert!(said.contains(detail), "{path}: {said}");
    }
    for path in [
        "/v1/admin/reports/weekly",
        "/v1/admin/reports/exam?exam=no-such-exam",
    ] {
        let response = fetch(&server, path).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let student = Student::login(&server, "student1").await;
    let (status, _) = student.get(&exam).await;
    assert_eq!(status, 403, "reports are for the admin");
}

#[tokio::test]
async fn in_a_batch_a_file_is_described() {
    let server = server().await;
    let (status, body) = server
        .admin(
            Method::POST,
            "/v1/batch",
            Some(serde_json::json!({"requests": [
                {"id": "csv", "method": "GET",
                 "path": format!("/v1/admin/reports/exam?exam={EXAM}&format=csv")},
                {"id": "json", "method": "GET", "path": format!("/v1/admin/reports/exam?exam={EXAM}")},
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let csv = &body["responses"][0]["body"];
    assert_eq!(csv["filename"], "exam-giua-ky-toan-exam-20261201T1100Z.csv");
    assert_eq!(csv["content_type"], "text/csv; charset=utf-8");
    assert!(csv["size"].as_u64().unwrap() > 100);
    assert_eq!(body["responses"][1]["body"]["exam"]["title"], EXAM_TITLE);
}
