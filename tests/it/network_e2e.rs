//! The real app on a school network: the Wi-Fi comes back behind a captive portal while the
//! student is answering (first a redirect to its login page, then the login page itself with
//! `200`). The header names the portal, nothing is refused, and when the portal goes every
//! answer reaches the server by itself. Then the server really refuses an answer (the
//! attempt was submitted from elsewhere): the screen says so in the student's words, with
//! what to do, and the refused list names the question and the exam.

use std::time::Duration;

use anyhow::{Context, Result};
use fault_proxy::{Link, Portal};
use serde_json::json;

use crate::support::{self, SERIAL};

const WAIT: Duration = Duration::from_secs(30);

fn answer(session: &support::Session, id: &str, text: &str) -> Result<()> {
    session.open_question(id)?;
    session.type_into("[data-testid=answer-text]", text)?;
    Ok(())
}

#[test]
fn answers_typed_behind_a_captive_portal_arrive_when_it_goes_and_a_real_refusal_is_worded(
) -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, link, _data_dir, harness) = support::behind_a_cuttable_link()?;
    let session = harness.session()?;
    session.sign_in("student14", "demo")?;
    session.click("[data-testid=download-demo-mixed]")?;
    session.wait_text("[data-testid=exam-ready-demo-mixed]", WAIT, |t| {
        !t.is_empty()
    })?;
    session.click("[data-testid=start-demo-mixed]")?;
    session.find("[data-testid=question-prompt]")?;
    answer(&session, "q03", "Before")?;
    session.wait_text("[data-testid=save-status]", WAIT, |t| {
        t.contains("Saved on the server")
    })?;

    // The Wi-Fi comes back behind a sign-in page; the student goes on answering.
    link.set_link(Link::Portal(Portal::Redirect));
    answer(
        &session,
        "q04",
        "Written while the network wanted a sign-in.",
    )?;
    session.wait_text("[data-testid=connection]", WAIT, |t| {
        t.contains("Network sign-in needed")
    })?;
    session.wait_text("[data-testid=save-status]", WAIT, |t| {
        t.contains("Saved on this computer")
    })?;
    // The same portal, now answering with its login page and 200.
    link.set_link(Link::Portal(Portal::LoginPage));
    answer(&session, "q07", "Portal")?;
    session.wait_text("[data-testid=save-status]", WAIT, |t| {
        t.contains("Saved on this computer")
    })?;
    session.click("[data-testid=connection]")?;
    let reason = session.text("[data-testid=network-reason]")?;
    assert!(reason.contains("sign in"), "{reason}");
    assert_eq!(session.text("[data-testid=queue-dead]")?.trim(), "0");
    support::screenshot(&harness.display, "e2e-portal.png")?;
    session.click("[data-testid=close-drawer]")?;

    // The portal goes: everything arrives by itself; nothing was refused.
    link.set_link(Link::Up);
    session.wait_text("[data-testid=save-status]", Duration::from_secs(60), |t| {
        t.contains("Saved on the server")
    })?;
    session.click("[data-testid=connection]")?;
    session.wait_text("[data-testid=queue-pending]", WAIT, |t| t.trim() == "0")?;
    assert_eq!(session.text("[data-testid=queue-dead]")?.trim(), "0");
    assert!(session.source()?.contains("data-testid=\"sync-panel\""));
    assert!(!session.source()?.contains("data-testid=\"dead-letters\""));
    assert!(!session
        .source()?
        .contains("data-testid=\"connection-refused\""));
    support::screenshot(&harness.display, "e2e-portal-gone.png")?;
    session.click("[data-testid=close-drawer]")?;
    let attempts = server.admin("/v1/admin/users/student14/attempts")?;
    let attempt = attempts
        .as_array()
        .and_then(|a| a.first())
        .and_then(|a| a["attempt_id"].as_str())
        .with_context(|| format!("no attempt on the server: {attempts}"))?
        .to_string();
    let held = server.admin(&format!("/v1/admin/attempts/{attempt}"))?;
    assert_eq!(held["answers"]["q03"]["value"], json!("Before"), "{held}");
    assert_eq!(
        held["answers"]["q04"]["value"],
        json!("Written while the network wanted a sign-in."),
        "{held}"
    );
    assert_eq!(held["answers"]["q07"]["value"], json!("Portal"), "{held}");

    // A real refusal: the attempt is submitted from elsewhere, then an answer is typed here.
    server.submit_behind_the_apps_back("student14", &attempt)?;
    answer(&session, "q08", "After it was submitted elsewhere")?;
    let status = session.wait_text("[data-testid=save-status]", WAIT, |t| {
        t.contains("did not accept")
    })?;
    assert!(
        status.contains("the exam was already submitted") && status.contains("tell a proctor"),
        "{status}"
    );
    session.wait_text("[data-testid=connection]", WAIT, |t| {
        t.contains("1 not accepted")
    })?;
    session.click("[data-testid=connection]")?;
    let item = session.wait_text("[data-testid=refused-item]", WAIT, |t| !t.is_empty())?;
    assert!(
        item.contains("Question 8 of General knowledge") && item.contains("already submitted"),
        "{item}"
    );
    assert!(!item.contains("/v1/"), "{item}");
    let sync = session.text("[data-testid=sync-state]")?;
    assert!(!sync.contains("Everything is sent"), "{sync}");
    support::screenshot(&harness.display, "e2e-refused.png")?;
    session.click("[data-testid=language] option[value=vi]")?;
    let item = session.wait_text("[data-testid=refused-item]", WAIT, |t| t.contains("Câu 8"))?;
    assert!(item.contains("bài thi đã được nộp"), "{item}");
    support::screenshot(&harness.display, "e2e-refused-vi.png")?;
    Ok(())
}
