//! A sealed exam as a student takes it in the built app, in a room without a network:
//! downloaded ahead, the link cut, the list counting down to the opening, the start code the
//! proctor reads out typed (a wrong one first), answered, the app killed and started again
//! with neither network nor code, the link restored, delivered, submitted, receipt.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::support::{self, SERIAL};

const WAIT: Duration = Duration::from_secs(30);
const EXAM: &str = "demo-sealed-soon";
/// The sealed exam opens this long after the server starts: time for the app to start, sign
/// in and download it, then to watch the countdown.
const OPENS_IN_S: u64 = 45;

#[test]
fn a_sealed_exam_downloaded_ahead_opens_offline_with_the_start_code_and_is_delivered_with_a_receipt(
) -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = support::ExamServer::start_with(|c| c.demo_opens_in_s = OPENS_IN_S)?;
    let (server, link, data_dir, harness) = support::behind_a_cuttable_link_to(server)?;
    let session = harness.session()?;
    session.sign_in("student14", "demo")?;

    // Downloaded ahead: sealed, ready, and it says when it opens.
    let row = format!("[data-testid=exam-{EXAM}]");
    session.find(&row)?;
    session.find(&format!("[data-testid=exam-sealed-{EXAM}]"))?;
    session.click(&format!("[data-testid=download-{EXAM}]"))?;
    session.wait_text(&format!("[data-testid=exam-ready-{EXAM}]"), WAIT, |t| {
        t.contains("opens at")
    })?;
    // Nothing of its questions is on this computer in clear.
    let on_disk = std::fs::read_dir(data_dir.path())?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("exam-desktop.db")
        })
        .map(|e| std::fs::read(e.path()).unwrap_or_default())
        .collect::<Vec<_>>()
        .concat();
    let prompt_words = format!("[{EXAM}] What is 7");
    assert!(
        !on_disk
            .windows(prompt_words.len())
            .any(|w| w == prompt_words.as_bytes()),
        "a question is on disk in clear before the exam opens"
    );
    let code = server.admin(&format!("/v1/admin/exams/{EXAM}/start-code"))?["start_code"]
        .as_str()
        .context("no start code")?
        .to_string();

    // The room has no network: the list is the one kept here, and counts down.
    link.set_link(fault_proxy::Link::Refuse);
    session.click("[data-testid=exams-refresh]")?;
    session.find("[data-testid=exam-list-offline]")?;
    let countdown = session.wait_text(&format!("[data-testid=opens-in-{EXAM}]"), WAIT, |t| {
        t.contains("Opens in")
    })?;
    let needs = session.text(&format!("[data-testid=exam-needs-{EXAM}]"))?;
    assert!(needs.contains("start code"), "{needs}");
    session.execute(&format!(
        "document.querySelector('{row}').scrollIntoView({{block: 'center'}})"
    ))?;
    std::thread::sleep(Duration::from_millis(2200));
    let later = session.text(&format!("[data-testid=opens-in-{EXAM}]"))?;
    assert_ne!(later, countdown, "the countdown does not move");
    support::screenshot(&harness.display, "e2e-sealed-countdown.png")?;

    // At the opening the start code is asked for. A wrong one says so…
    let form = format!("[data-testid=start-code-form-{EXAM}]");
    session.wait_text(&form, Duration::from_secs(OPENS_IN_S + 60), |t| {
        !t.is_empty()
    })?;
    let input = format!("[data-testid=start-code-{EXAM}]");
    session.type_into(&input, "aaaabbbbcccc")?;
    assert_eq!(
        session.property(&input, "value")?,
        json!("AAAA-BBBB-CCCC"),
        "typed as it is read out"
    );
    session.click(&format!("[data-testid=open-with-code-{EXAM}]"))?;
    let refused = session
        .wait_text(&format!("{row} [role=alert]"), WAIT, |t| {
            t.contains("does not open")
        })
        .with_context(|| format!("the row shows: {:?}", session.text(&row)))?;
    assert!(refused.contains("Sealed exam"), "names the exam: {refused}");
    support::screenshot(&harness.display, "e2e-sealed-wrong-code.png")?;
    // …the proctor's code opens it.
    session.clear(&input)?;
    session.type_into(&input, &code.to_lowercase())?;
    session.click(&format!("[data-testid=open-with-code-{EXAM}]"))?;
    let prompt = session.wait_text("[data-testid=question-prompt]", WAIT, |t| t.contains(EXAM))?;
    assert!(prompt.contains("What is 7"), "{prompt}");
    session.find("[data-testid=timer]")?;
    // q01 single, q03 short.
    support::choose(&session, "o2")?;
    session.open_question("q03")?;
    session.type_into("[data-testid=answer-text]", "Au")?;
    session.wait_text("[data-testid=save-status]", WAIT, |t| {
        t.contains("Saved on this computer")
    })?;
    support::screenshot(&harness.display, "e2e-sealed-opened.png")?;

    // Killed, started again: back with every answer, with neither network nor code.
    support::kill_app()?;
    drop(session);
    let session = harness.session()?;
    session.wait_text("[data-testid=resumed]", WAIT, |t| t.contains('2'))?;
    assert_eq!(
        session.property("[data-testid=answer-text]", "value")?,
        json!("Au")
    );
    session.open_question("q01")?;
    assert_eq!(
        session.property("[data-testid=option-o2]", "checked")?,
        json!(true)
    );
    assert!(session
        .text("[data-testid=question-prompt]")?
        .contains("What is 7"));
    support::screenshot(&harness.display, "e2e-sealed-resumed.png")?;

    // The link is back: delivered, submitted, receipt.
    link.set_link(fault_proxy::Link::Up);
    session.wait_text("[data-testid=save-status]", Duration::from_secs(60), |t| {
        t.contains("Saved on the server")
    })?;
    session.click("[data-testid=review]")?;
    session.click("[data-testid=submit]")?;
    session.click("[data-testid=confirm-submit]")?;
    let receipt = session.wait_text("[data-testid=receipt-id]", Duration::from_secs(60), |t| {
        !t.is_empty()
    })?;
    support::screenshot(&harness.display, "e2e-sealed-receipt.png")?;
    let attempts = server.admin("/v1/admin/users/student14/attempts")?;
    let attempt = attempts
        .as_array()
        .and_then(|a| a.first())
        .and_then(|a| a["attempt_id"].as_str().or(a["id"].as_str()))
        .with_context(|| format!("no attempt on the server: {attempts}"))?
        .to_string();
    let held = server.admin(&format!("/v1/admin/attempts/{attempt}"))?;
    assert_eq!(held["exam_id"], json!(EXAM), "{held}");
    assert_eq!(held["answers"]["q01"]["value"], json!("o2"), "{held}");
    assert_eq!(held["answers"]["q03"]["value"], json!("Au"), "{held}");
    assert!(
        held.to_string().contains(receipt.trim()),
        "receipt {receipt} not in {held}"
    );
    Ok(())
}
