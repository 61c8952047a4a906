//! The real app on a shared lab computer: student A takes an exam offline and submits it;
//! the school ends A's session; student B signs in on the same computer, online, and takes
//! the exam. The server holds none of A's work under B and all of B's; when A signs in again,
//! A's attempt, every answer and the submission arrive in A's own account, each applied once.

use std::time::Duration;

use anyhow::{Context, Result};
use fault_proxy::Link;
use serde_json::json;

use crate::support::{self, SERIAL};

const WAIT: Duration = Duration::from_secs(30);

fn take_exam(session: &support::Session, answers: &[(&str, &str)]) -> Result<()> {
    session.click("[data-testid=start-demo-mixed]")?;
    session.find("[data-testid=question-prompt]")?;
    for (question, text) in answers {
        session.open_question(question)?;
        session.type_into("[data-testid=answer-text]", text)?;
        session.wait_text("[data-testid=save-status]", WAIT, |t| t.contains("Saved"))?;
    }
    session.click("[data-testid=review]")?;
    session.click("[data-testid=submit]")?;
    session.click("[data-testid=confirm-submit]")?;
    Ok(())
}

/// `user` signs in and downloads the exam; the link goes; they answer and submit, and the
/// screen says it is submitted on this computer.
fn submit_offline(
    session: &support::Session,
    link: &fault_proxy::FaultProxy,
    user: &str,
    answers: &[(&str, &str)],
) -> Result<()> {
    session.sign_in(user, "demo")?;
    session.click("[data-testid=download-demo-mixed]")?;
    session.wait_text("[data-testid=exam-ready-demo-mixed]", WAIT, |t| {
        !t.is_empty()
    })?;
    link.set_link(Link::Refuse);
    take_exam(session, answers)?;
    session.wait_text("[data-testid=submission-state]", WAIT, |t| {
        t.contains("Submitted on this computer")
    })?;
    Ok(())
}

fn only_attempt(server: &support::ExamServer, user: &str) -> Result<Option<String>> {
    let attempts = server.admin(&format!("/v1/admin/users/{user}/attempts"))?;
    let list = attempts
        .as_array()
        .with_context(|| format!("no list: {attempts}"))?;
    assert!(list.len() <= 1, "{user}: {attempts}");
    Ok(list
        .first()
        .and_then(|a| a["attempt_id"].as_str())
        .map(str::to_string))
}

#[test]
fn work_of_a_student_whose_session_was_ended_reaches_their_own_account_never_the_next_students(
) -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, link, _data_dir, harness) = support::behind_a_cuttable_link()?;
    let session = harness.session()?;

    // A downloads the exam, then the network goes; A answers and submits offline.
    submit_offline(
        &session,
        &link,
        "student15",
        &[("q03", "A's short answer"), ("q04", "A's essay")],
    )?;

    // The school ends A's session; the network returns. A's screen goes to sign-in.
    server.revoke_sessions("student15")?;
    link.set_link(Link::Up);
    session.wait_text(
        "[data-testid=session-ended]",
        Duration::from_secs(60),
        |t| !t.is_empty(),
    )?;
    assert!(only_attempt(&server, "student15")?.is_none());

    // B signs in on the same computer and takes the exam online.
    session.sign_in("student16", "demo")?;
    session.click("[data-testid=download-demo-mixed]")?;
    session.wait_text("[data-testid=exam-ready-demo-mixed]", WAIT, |t| {
        !t.is_empty()
    })?;
    take_exam(&session, &[("q03", "B's short answer")])?;
    session.wait_text(
        "[data-testid=submission-state]",
        Duration::from_secs(60),
        |t| t.contains("Delivered"),
    )?;
    // B's screen counts A's waiting work without naming it.
    session.click("[data-testid=connection]")?;
    let others = session.wait_text("[data-testid=others-waiting]", WAIT, |t| !t.is_empty())?;
    assert!(!others.contains("student15"), "{others}");
    support::screenshot(&harness.display, "e2e-shared-lab-b.png")?;
    session.click("[data-testid=close-drawer]")?;

    let b_attempt = only_attempt(&server, "student16")?.context("B's attempt")?;
    let b_held = server.admin(&format!("/v1/admin/attempts/{b_attempt}"))?;
    assert_eq!(b_held["answers"]["q03"]["value"], json!("B's short answer"));
    assert_eq!(b_held["answers"].as_object().map(|a| a.len()), Some(1));
    assert!(only_attempt(&server, "student15")?.is_none());

    // B leaves, straight from the submission; the app says nothing of B's waits. A signs in
    // again: A's work arrives in A's account, each answer once.
    session.click("[data-testid=sign-out]")?;
    let what = session.wait_text("[data-testid=sign-out-what]", WAIT, |t| !t.is_empty())?;
    assert!(
        what.contains("Everything you did is on the Exam Bank server"),
        "{what}"
    );
    session.click("[data-testid=confirm-sign-out]")?;
    session.sign_in("student15", "demo")?;
    session.wait_text(
        "[data-testid=submission-state]",
        Duration::from_secs(60),
        |t| t.contains("Delivered"),
    )?;
    let a_attempt = only_attempt(&server, "student15")?.context("A's attempt")?;
    let a_held = server.admin(&format!("/v1/admin/attempts/{a_attempt}"))?;
    assert_eq!(a_held["answers"]["q03"]["value"], json!("A's short answer"));
    assert_eq!(a_held["answers"]["q04"]["value"], json!("A's essay"));
    assert_eq!(a_held["applied_writes"], json!(2), "{a_held}");
    assert!(a_held["receipt"]["receipt_id"].is_string(), "{a_held}");
    assert_eq!(only_attempt(&server, "student16")?, Some(b_attempt));
    support::screenshot(&harness.display, "e2e-shared-lab-a-back.png")?;
    Ok(())
}

#[test]
fn work_of_a_student_who_quit_without_signing_out_reaches_their_account_while_the_next_works(
) -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, link, _data_dir, harness) = support::behind_a_cuttable_link()?;
    let session = harness.session()?;

    // A downloads the exam; the network goes; A answers, submits, and quits the app (closes
    // its window) without signing out.
    submit_offline(
        &session,
        &link,
        "student13",
        &[("q03", "A's short answer"), ("q04", "A's other answer")],
    )?;
    support::close_app(&harness.display)?;
    drop(session);
    assert!(only_attempt(&server, "student13")?.is_none());

    // B starts the app: nobody is signed in (A was signed out when the app quit).
    let session = harness.session()?;
    session.find("[data-testid=sign-in]")?;
    // The network returns; B signs in and works.
    link.set_link(Link::Up);
    session.sign_in("student14", "demo")?;
    session.click("[data-testid=download-demo-mixed]")?;
    session.wait_text("[data-testid=exam-ready-demo-mixed]", WAIT, |t| {
        !t.is_empty()
    })?;
    take_exam(&session, &[("q03", "B's short answer")])?;
    session.wait_text(
        "[data-testid=submission-state]",
        Duration::from_secs(60),
        |t| t.contains("Delivered"),
    )?;

    // A's work arrives in A's account without A, each answer once; B's in B's.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let a_attempt = loop {
        if let Some(id) = only_attempt(&server, "student13")? {
            let held = server.admin(&format!("/v1/admin/attempts/{id}"))?;
            if held["receipt"]["receipt_id"].is_string() {
                break id;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "A's work never arrived"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let a_held = server.admin(&format!("/v1/admin/attempts/{a_attempt}"))?;
    assert_eq!(a_held["answers"]["q03"]["value"], json!("A's short answer"));
    assert_eq!(a_held["answers"]["q04"]["value"], json!("A's other answer"));
    assert_eq!(a_held["applied_writes"], json!(2), "{a_held}");
    let b_attempt = only_attempt(&server, "student14")?.context("B's attempt")?;
    let b_held = server.admin(&format!("/v1/admin/attempts/{b_attempt}"))?;
    assert_eq!(b_held["answers"]["q03"]["value"], json!("B's short answer"));
    assert_eq!(b_held["answers"].as_object().map(|a| a.len()), Some(1));
    // B is still the one signed in.
    assert!(session
        .text("[data-testid=signed-in-user]")?
        .contains("student14"));
    support::screenshot(&harness.display, "e2e-shared-lab-quit.png")?;
    Ok(())
}

#[test]
fn a_student_who_walks_away_is_signed_out_after_the_configured_minute_and_told_why() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = support::ExamServer::start()?;
    let data_dir = tempfile::tempdir()?;
    let config = data_dir.path().join("config.toml");
    std::fs::write(&config, "[session]\nidle_sign_out_min = 1\n")?;
    let harness = support::Harness::start(&[
        ("EXAM_DESKTOP_SERVER", server.url()),
        (
            "EXAM_DESKTOP_DATA_DIR",
            data_dir.path().join("data").display().to_string(),
        ),
        ("EXAM_DESKTOP_CONFIG", config.display().to_string()),
    ])?;
    let session = harness.session()?;
    session.sign_in("student12", "demo")?;
    // Nobody touches the computer: after a minute the student is signed out, and the
    // sign-in screen says why (not an error, not the school).
    let said = session.wait_text(
        "[data-testid=session-ended]",
        Duration::from_secs(120),
        |t| !t.is_empty(),
    )?;
    assert!(
        said.contains("signed out after a minute without activity"),
        "{said}"
    );
    support::screenshot(&harness.display, "e2e-idle-sign-out.png")?;
    Ok(())
}
