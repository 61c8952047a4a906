//! The real binary: listens where `--listen` says and stops cleanly on SIGTERM; prints start
//! codes for proctors.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn the_binary_listens_where_told_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let (mut child, url) = start(&["--db".as_ref(), db.as_os_str()]).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let response = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(response.status(), 204);
    // --demo seeded the students.
    let response = reqwest::Client::new()
        .post(format!("{url}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "student30"),
            ("password", "demo"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().await.unwrap();
    assert!(
        exit.success(),
        "exam-server exited with {exit} after SIGTERM"
    );
}

#[tokio::test]
async fn a_bad_listen_address_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_exam-server"))
        .args(["--listen", "not-an-address"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--listen"), "{stderr}");
}

/// Starts the binary with `args`; the base URL once it listens.
async fn start(args: &[&std::ffi::OsStr]) -> (tokio::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exam-server"))
        .args(["--listen", "127.0.0.1:0", "--demo"])
        .args(args)
        .env_remove("EXAM_SERVER_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let url = first.strip_prefix("listening on ").unwrap().to_string();
    (child, url)
}

#[tokio::test]
async fn the_admin_token_and_the_signing_key_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, "file-admin-token-0123456789\n").unwrap();
    let key_file = dir.path().join("jwt-key");
    std::fs::write(&key_file, [7u8; 48]).unwrap();
    let db = dir.path().join("server.db");
    let args = [
        "--db".as_ref(),
        db.as_os_str(),
        "--admin-token-file".as_ref(),
        token_file.as_os_str(),
        "--jwt-key-file".as_ref(),
        key_file.as_os_str(),
    ];
    let (child, url) = start(&args).await;
    let http = reqwest::Client::new();
    let stats = http
        .get(format!("{url}/v1/admin/stats"))
        .bearer_auth("file-admin-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);
    let tokens: serde_json::Value = http
        .post(format!("{url}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "student1"),
            ("password", "demo"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    drop(child);
    // The signing key was not kept in the database: a restart with the same key file
    // accepts the token, and the database holds no key.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let stored: i64 = conn
        .query_row("SELECT COUNT(*) FROM meta WHERE key = 'jwt_key'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, 0);
    drop(conn);
    let (_child, url) = start(&args).await;
    let exams = http
        .get(format!("{url}/v1/exams"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(exams.status(), 200);
}

#[tokio::test]
async fn a_short_admin_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_exam-server"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("server.db"))
        .env("EXAM_SERVER_ADMIN_TOKEN", "short")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 20"), "{stderr}");
    assert!(
        !stderr.contains("short\""),
        "the token itself is not printed: {stderr}"
    );
}

#[tokio::test]
async fn the_start_code_command_prints_the_code_and_audits_the_view() {
    let server = crate::TestServer::start().await;
    let (status, view) = server
        .admin(
            reqwest::Method::GET,
            "/v1/admin/exams/demo-sealed-soon/start-code",
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");

    let output = Command::new(env!("CARGO_BIN_EXE_exam-server"))
        .args(["start-code", "demo-sealed-soon", "--db"])
        .arg(&server.db)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let code = view["start_code"].as_str().unwrap();
    assert!(stdout.contains(&format!("start_code: {code}")), "{stdout}");
    assert!(stdout.contains("version: 1"), "{stdout}");
    assert!(
        stdout.contains(&format!("opens_at: {}", view["opens_at"].as_str().unwrap())),
        "{stdout}"
    );
    let (_, audit) = server
        .admin(
            reqwest::Method::GET,
            "/v1/admin/audit?type=start_code_viewed",
            None,
        )
        .await;
    let via: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"]["via"].as_str().unwrap())
        .collect();
    assert_eq!(via, ["cli", "api"]);

    for (exam, says) in [
        ("nope", "there is no exam `nope`"),
        ("demo-mixed", "not sealed"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_exam-server"))
            .args(["start-code", exam, "--db"])
            .arg(&server.db)
            .output()
            .await
            .unwrap();
        assert!(!output.status.success(), "{exam}");
        assert!(output.stdout.is_empty(), "{exam}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
    let missing = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_exam-server"))
        .args(["start-code", "demo-sealed-soon", "--db"])
        .arg(missing.path().join("none.db"))
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(
        !missing.path().join("none.db").exists(),
        "no database is created"
    );
}
