//! Scheduled reports end to end: the server's own schedule fires (its clock set two seconds
//! before a minute), writes the files into the reports folder and mails them through a real
//! SMTP server on loopback — Python's aiosmtpd (Debian's python3-aiosmtpd, installed by
//! scripts/bootstrap.sh) keeping what it receives in a Maildir — and a mail server that is
//! down at first gets the letter once it is up (the outbox's backoff).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DurationRound, Utc};
use exam_server::reports::mail::{Backoff, File, Letter, MailSettings, Outbox};
use exam_server::reports::schedule::{Clock, Settings};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::dataset::{self, EXAM, EXAM_TITLE};
use crate::TestServer;

/// A Python 3 with aiosmtpd: Debian's, which may not be the first `python3` on the PATH.
fn python() -> &'static str {
    for candidate in ["/usr/bin/python3", "python3"] {
        let found = std::process::Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return candidate;
        }
    }
    panic!("no Python with aiosmtpd: `bash scripts/bootstrap.sh test` installs python3-aiosmtpd");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// aiosmtpd on `127.0.0.1:port`, every message kept in a Maildir; stopped when dropped.
struct Sink {
    _child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Sink {
    async fn start(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = tokio::process::Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "aiosmtpd did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { _child: child, dir }
    }

    /// The messages received, waiting up to `timeout` for at least `n`.
    async fn messages(&self, n: usize, timeout: Duration) -> Vec<PathBuf> {
        let started = Instant::now();
        loop {
            let found: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("mail/new"))
                .map(|entries| entries.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            if found.len() >= n || started.elapsed() > timeout {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A received message as Python's `email` package reads it: subject, from, to, text, and
/// each attachment's name, type and SHA-256.
fn read_message(path: &Path) -> Value {
    let script = r#"
import email, email.policy, hashlib, json, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
print(json.dumps({
    "subject": str(m["subject"]), "from": str(m["from"]), "to": str(m["to"]),
    "text": m.get_body(("plain",)).get_content(),
    "files": [{"name": p.get_filename(), "type": p.get_content_type(),
               "sha256": hashlib.sha256(p.get_payload(decode=True)).hexdigest()}
              for p in m.iter_attachments()],
}))
"#;
    let output = std::process::Command::new(python())
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn mail_settings(port: u16) -> MailSettings {
    MailSettings::new(
        format!("smtp://127.0.0.1:{port}").parse().unwrap(),
        "Exam Bank <reports@school.example>",
        vec![
            "it@school.example".into(),
            "examiners@school.example".into(),
        ],
    )
}

/// The CSV but for its `generated_at` line (the time of the run).
fn without_generated_at(csv: &[u8]) -> String {
    String::from_utf8(csv.to_vec())
        .unwrap()
        .split("\r\n")
        .filter(|line| !line.starts_with("generated_at,"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[tokio::test]
async fn a_scheduled_report_is_written_to_the_folder_and_mailed() {
    let port = free_port();
    let sink = Sink::start(port).await;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("reports");
    // The schedule's clock reads two seconds before the next minute: `* * * * *` fires soon.
    let real = Utc::now();
    let offset = real.duration_trunc(chrono::Duration::minutes(1)).unwrap()
        + chrono::Duration::seconds(58)
        - real;
    let settings = Settings {
        jobs: vec![format!("* * * * * exam:{EXAM} pdf,csv").parse().unwrap()],
        dir: Some(folder.clone()),
        mail: Some(mail_settings(port)),
        clock: Clock::new(move || exam_server::now() + offset),
        ..Settings::default()
    };
    let server = TestServer::start_with(exam_server::Config {
        reports: settings,
        ..crate::config(dir.path().join("server.db"))
    })
    .await;
    dataset::write(&server.state.db.lock());

    let messages = sink.messages(1, Duration::from_secs(40)).await;
    assert!(!messages.is_empty(), "no report mail arrived");
    // The files, whole, and nothing else (no temporary file left behind).
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let pdf_name = "exam-giua-ky-toan-exam-20261201T1100Z.pdf";
    let csv_name = "exam-giua-ky-toan-exam-20261201T1100Z.csv";
    assert_eq!(names, [csv_name, pdf_name]);
    let csv = std::fs::read(folder.join(csv_name)).unwrap();
    let pdf = std::fs::read(folder.join(pdf_name)).unwrap();
    assert_eq!(
        without_generated_at(&csv),
        without_generated_at(&std::fs::read(super::golden_path("exam.csv")).unwrap())
    );
    assert!(super::pdf_text(&pdf).contains(dataset::HUONG));

    let message = read_message(&messages[0]);
    assert_eq!(
        message["subject"].as_str().unwrap(),
        format!(
            "Exam Bank: Exam report: {EXAM_TITLE}, 2026-12-01 08:00 to 2026-12-01 11:00 UTC \
             (the exam's window)"
        )
    );
    assert_eq!(message["from"], "Exam Bank <reports@school.example>");
    assert_eq!(message["to"], "it@school.example, examiners@school.example");
    assert!(message["text"]
        .as_str()
        .unwrap()
        .contains(&format!("* * * * * exam:{EXAM} pdf,csv")));
    assert_eq!(
        message["files"],
        serde_json::json!([
            {"name": pdf_name, "type": "application/pdf", "sha256": sha256(&pdf)},
            {"name": csv_name, "type": "text/csv", "sha256": sha256(&csv)},
        ])
    );
    // Stopping the server stops the schedule with it.
    tokio::time::timeout(Duration::from_secs(30), server.stop())
        .await
        .expect("the server and its schedule stop");
}

#[tokio::test]
async fn a_letter_waits_for_a_mail_server_that_is_down() {
    let port = free_port();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let (outbox, task) = Outbox::start(
        mail_settings(port),
        Backoff {
            first: Duration::from_millis(200),
            max: Duration::from_secs(1),
        },
        stopping,
    );
    let csv = "student,late\r\nTrần Văn Đức,yes\r\n".as_bytes().to_vec();
    outbox.post(Letter {
        subject: "Báo cáo: Kiểm tra giữa kỳ".into(),
        text: "Đính kèm.".into(),
        files: vec![File {
            name: "late.csv".into(),
            content_type: "text/csv; charset=utf-8",
            bytes: csv.clone(),
        }],
    });
    // Nothing listens yet: the first tries fail, and the letter waits.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let sink = Sink::start(port).await;
    let messages = sink.messages(1, Duration::from_secs(20)).await;
    assert_eq!(
        messages.len(),
        1,
        "the letter arrived once the server was up"
    );
    let message = read_message(&messages[0]);
    assert_eq!(message["subject"], "Báo cáo: Kiểm tra giữa kỳ");
    assert_eq!(
        message["files"],
        serde_json::json!([{"name": "late.csv", "type": "text/csv", "sha256": sha256(&csv)}])
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}
