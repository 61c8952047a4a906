//! The real binary: listens where `--listen` says and stops cleanly on SIGTERM.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn the_binary_listens_where_told_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_exam-server"))
        .args(["--listen", "127.0.0.1:0", "--demo", "--db"])
        .arg(dir.path().join("server.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let url = first.strip_prefix("listening on ").unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");

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
