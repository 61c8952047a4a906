//! The updater in the built app, with the real `tauri-plugin-updater` against the reference
//! server playing the update server (`--updates-dir`), signed with throw-away minisign keys:
//! a wrongly signed release is refused; a good one is downloaded during an exam but waits —
//! "an attempt is open", then "a student is signed in" — and is installed once the answers
//! are delivered and the student has signed out: the plugin replaces the installed file (an
//! AppImage-style install in a temporary folder) and the app restarts into it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::support::{self, ExamServer, Harness, SERIAL};

const WAIT: Duration = Duration::from_secs(30);

/// A throw-away key pair: the public key as the app takes it and a signer of artifacts, in
/// the format `tauri signer` writes (base64 of minisign's text files).
struct Key {
    public: String,
    secret: minisign::SecretKey,
    pk: minisign::PublicKey,
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

impl Key {
    fn new() -> Result<Self> {
        let pair = minisign::KeyPair::generate_unencrypted_keypair()?;
        Ok(Self {
            public: b64(&pair.pk.to_box()?.to_string()),
            secret: pair.sk,
            pk: pair.pk,
        })
    }

    fn sign(&self, bytes: &[u8]) -> Result<String> {
        let signature = minisign::sign(
            Some(&self.pk),
            &self.secret,
            std::io::Cursor::new(bytes),
            Some("exam-desktop update (test)"),
            None,
        )?;
        Ok(b64(&signature.to_string()))
    }
}

/// Publishes `bytes` as `version` on the stable channel for this platform.
fn publish(dir: &Path, version: &str, bytes: &[u8], signature: &str) -> Result<()> {
    let release = dir.join("stable").join(version);
    std::fs::create_dir_all(&release)?;
    std::fs::write(release.join("exam-desktop.AppImage"), bytes)?;
    std::fs::write(release.join("exam-desktop.AppImage.sig"), signature)?;
    std::fs::write(
        release.join("manifest.json"),
        serde_json::json!({
            "notes": "A test release",
            "pub_date": "2026-12-01T08:00:00Z",
            "platforms": {"linux-x86_64": {"url": "exam-desktop.AppImage"}},
        })
        .to_string(),
    )?;
    Ok(())
}

fn status(data_dir: &Path) -> Value {
    std::fs::read(data_dir.join("update.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn wait_status(data_dir: &Path, what: &str, done: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(data_dir);
        if done(&s) {
            return Ok(s);
        }
        anyhow::ensure!(Instant::now() < deadline, "{what}: the status is {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn check_now(session: &support::Session) -> Result<()> {
    session.execute_async(
        "const done = arguments[arguments.length - 1];
         window.__TAURI_INTERNALS__.invoke('update_check_now').then(() => done(true), e => done(String(e)));",
    )?;
    Ok(())
}

#[test]
fn signed_updates_are_verified_wait_for_the_exam_and_install_after_delivery() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let good = Key::new()?;
    let other = Key::new()?;
    let updates = tempfile::tempdir()?;
    let updates_dir = updates.path().to_path_buf();
    // The demo's sealed exam opens in three days, well outside the quiet time before an exam
    // (the gate's own table covers that case).
    let server = ExamServer::start_with(|c| {
        c.updates_dir = Some(updates_dir.clone());
        c.demo_opens_in_s = 3 * 86_400;
    })?;

    // The app "installed" in a folder of the test's, as an AppImage is.
    let install = tempfile::tempdir()?;
    let installed: PathBuf = install.path().join("exam-desktop");
    std::fs::copy(support::APP, &installed)?;
    let marker = install.path().join("new-version-started");
    // The new version: it says it started, with what.
    let new_version =
        b"#!/bin/sh\necho \"0.2.0 started\" > \"$EXAM_DESKTOP_TEST_MARKER\"\n".to_vec();

    let data = tempfile::tempdir()?;
    let data_dir = data.path();
    let harness = Harness::start(&[
        ("EXAM_DESKTOP_SERVER", server.url()),
        ("EXAM_DESKTOP_DATA_DIR", data_dir.display().to_string()),
        ("EXAM_DESKTOP_UPDATE_PUBKEY", good.public.clone()),
        (
            "EXAM_DESKTOP_UPDATE_EXECUTABLE",
            installed.display().to_string(),
        ),
        ("EXAM_DESKTOP_TEST_MARKER", marker.display().to_string()),
    ])?;
    let session = harness.session_with(&installed)?;

    // Nothing published: up to date.
    wait_status(data_dir, "first check", |s| {
        s["phase"]["phase"] == "up_to_date"
    })?;

    // A release signed by another key: refused, nothing replaced.
    publish(
        &updates_dir,
        "0.2.0",
        &new_version,
        &other.sign(&new_version)?,
    )?;
    check_now(&session)?;
    let refused = wait_status(data_dir, "a wrong signature", |s| {
        s["phase"]["phase"] == "failed"
    })?;
    assert_eq!(
        refused["phase"]["code"], "update.bad_signature",
        "{refused}"
    );
    assert_eq!(std::fs::read(&installed)?, std::fs::read(support::APP)?);

    // A student takes an exam; meanwhile the release is published correctly signed.
    session.sign_in("student21", "demo")?;
    // The status window, opened before the exam (a proctor's view of this computer).
    let main = session.current_handle()?;
    session.click("[data-testid=open-status]")?;
    let handles = session.wait_for_windows(2, WAIT)?;
    let status_window = handles
        .iter()
        .find(|h| **h != main)
        .ok_or_else(|| anyhow::anyhow!("no status window"))?
        .clone();
    session.switch_to(&main)?;
    session.click("[data-testid=start-demo-mixed]")?;
    session.wait_text("[data-testid=question-prompt]", WAIT, |t| !t.is_empty())?;
    session.open_question("q03")?;
    session.type_into("[data-testid=answer-text]", "Au")?;
    publish(
        &updates_dir,
        "0.2.0",
        &new_version,
        &good.sign(&new_version)?,
    )?;
    check_now(&session)?;
    let deferred = wait_status(data_dir, "downloaded during the exam", |s| {
        s["phase"]["phase"] == "deferred"
    })?;
    assert_eq!(deferred["phase"]["version"], "0.2.0", "{deferred}");
    assert_eq!(
        deferred["phase"]["wait"]["reason"], "attempt_open",
        "{deferred}"
    );
    println!("during the exam: {}", deferred["phase"]);
    // What a proctor or IT sees in the status window: why it waits, in plain words.
    session.switch_to(&status_window)?;
    session.execute("document.querySelector('[data-testid=update-panel]').scrollIntoView()")?;
    let told = session.wait_text("[data-testid=update-phase]", WAIT, |t| {
        t.contains("after the exam in progress")
    })?;
    assert!(
        told.starts_with("Version 0.2.0 is downloaded and checked"),
        "{told}"
    );
    support::screenshot(&harness.display, "e2e-update-deferred.png")?;
    session.switch_to(&main)?;
    // The student goes on: answers still save while the update waits.
    session.type_into("[data-testid=answer-text]", "gust")?;
    session.wait_text("[data-testid=save-status]", WAIT, |t| {
        t.contains("Saved on the server")
    })?;
    assert_eq!(std::fs::read(&installed)?, std::fs::read(support::APP)?);

    // Submitted and delivered: the update still waits for the student to leave.
    session.click("[data-testid=review]")?;
    session.click("[data-testid=submit]")?;
    session.click("[data-testid=confirm-submit]")?;
    session.wait_text("[data-testid=receipt-id]", WAIT, |t| !t.is_empty())?;
    check_now(&session)?;
    let in_use = wait_status(data_dir, "signed in", |s| {
        s["phase"]["wait"]["reason"] == "in_use"
    })?;
    println!("after delivery: {}", in_use["phase"]);
    support::screenshot(&harness.display, "e2e-update-waiting.png")?;

    // Signed out: installed, and the app restarts into the new version.
    session.click("[data-testid=close-attempt]")?;
    session.click("[data-testid=sign-out]")?;
    session.click("[data-testid=confirm-sign-out]")?;
    session.find("[data-testid=sign-in-form], form")?;
    let _ = check_now(&session);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !marker.exists() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the new version did not start: {}",
            status(data_dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let said = std::fs::read_to_string(&marker).context("the marker")?;
    assert_eq!(said.trim(), "0.2.0 started");
    assert_eq!(std::fs::read(&installed)?, new_version);
    // Nothing of the student's was left behind undelivered.
    let attempts = server.admin("/v1/admin/users/student21/attempts")?;
    assert!(attempts.to_string().contains("submitted"), "{attempts}");
    drop(session);
    Ok(())
}
