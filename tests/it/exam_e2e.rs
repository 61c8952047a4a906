//! The exam as a student takes it in the built app: downloaded, started and answered with
//! the link to the server cut, the app killed and started again, the link restored, then
//! submitted — checked against what the server holds.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::support::{self, SERIAL};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn an_exam_taken_offline_survives_a_kill_and_is_delivered_once_with_a_receipt() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, link, _data_dir, harness) = support::behind_a_cuttable_link()?;
    let session = harness.session()?;
    session.sign_in("student12", "demo")?;

    // The list; the exam downloaded for offline use.
    session.find("[data-testid=exam-demo-mixed]")?;
    session.click("[data-testid=download-demo-mixed]")?;
    session.wait_text("[data-testid=exam-ready-demo-mixed]", WAIT, |t| {
        !t.is_empty()
    })?;
    support::screenshot(&harness.display, "e2e-exam-list.png")?;

    // The link is cut: the exam starts anyway and every kind of question is answered.
    link.set_link(fault_proxy::Link::Refuse);
    session.click("[data-testid=start-demo-mixed]")?;
    session.find("[data-testid=question-prompt]")?;
    session.find("[data-testid=timer]")?;
    // q01 single, q02 multiple, q03 short, q04 essay.
    support::choose(&session, "o2")?;
    session.open_question("q02")?;
    support::choose(&session, "o1")?;
    support::choose(&session, "o3")?;
    session.open_question("q03")?;
    session.type_into("[data-testid=answer-text]", "Au")?;
    session.open_question("q04")?;
    let essay = "Quê hương tôi có con sông xanh biếc.";
    session.type_into("[data-testid=answer-text]", essay)?;
    session.click("[data-testid=flag]")?;
    session.wait_text("[data-testid=save-status]", WAIT, |t| {
        t.contains("Saved on this computer")
    })?;
    let count = session.text("[data-testid=char-count]")?;
    assert!(
        count.contains(&essay.chars().count().to_string()),
        "{count}"
    );
    // A word typed through an input method (Vietnamese Telex: "Vieetj" becomes "Việt"): the
    // half-typed syllable is never saved, the finished word is.
    session.open_question("q07")?;
    session.find("[data-testid=answer-text]")?;
    let saves = || session.attribute("[data-testid=save-status]", "data-saves-measured");
    let before = saves()?;
    session.execute(
        "const el = document.querySelector('[data-testid=answer-text]'); el.focus();
         el.dispatchEvent(new CompositionEvent('compositionstart', {data: '', bubbles: true}));
         for (const part of ['V', 'Vi', 'Vie', 'Viê']) {
           el.value = part;
           el.dispatchEvent(new InputEvent('input', {data: part, isComposing: true, bubbles: true}));
         }",
    )?;
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(saves()?, before, "a half-typed syllable was saved");
    session.execute(
        "const el = document.querySelector('[data-testid=answer-text]');
         el.value = 'Việt';
         el.dispatchEvent(new InputEvent('input', {data: 'Việt', isComposing: true, bubbles: true}));
         el.dispatchEvent(new CompositionEvent('compositionend', {data: 'Việt', bubbles: true}));",
    )?;
    session.wait_text("[data-testid=save-status]", WAIT, |_| {
        saves().map(|s| s != before).unwrap_or(false)
    })?;
    // Hostile prompts are text: the <img onerror> of q17 is shown, not run.
    session.open_question("q17")?;
    let prompt = session.text("[data-testid=question-prompt]")?;
    assert!(prompt.contains("<img src=x onerror="), "{prompt}");
    session.open_question("q04")?;
    support::screenshot(&harness.display, "e2e-exam-offline.png")?;

    // Killed mid-exam (no time to save anything more), then started again.
    support::kill_app()?;
    drop(session);
    let session = harness.session()?;
    let resumed = session.wait_text("[data-testid=resumed]", WAIT, |t| t.contains('5'))?;
    assert!(resumed.contains("nothing was lost"), "{resumed}");
    // Back on the question it was on, with every answer.
    let essay_back = session.property("[data-testid=answer-text]", "value")?;
    assert_eq!(essay_back, json!(essay));
    assert_eq!(
        session.attribute("[data-testid=flag]", "aria-pressed")?,
        "true"
    );
    session.open_question("q01")?;
    assert_eq!(
        session.property("[data-testid=option-o2]", "checked")?,
        json!(true)
    );
    session.open_question("q02")?;
    assert_eq!(
        session.property("[data-testid=option-o1]", "checked")?,
        json!(true)
    );
    assert_eq!(
        session.property("[data-testid=option-o3]", "checked")?,
        json!(true)
    );
    assert_eq!(
        session.property("[data-testid=option-o2]", "checked")?,
        json!(false)
    );
    session.open_question("q03")?;
    assert_eq!(
        session.property("[data-testid=answer-text]", "value")?,
        json!("Au")
    );
    support::screenshot(&harness.display, "e2e-exam-resumed.png")?;

    // The link is back: the answers reach the server by themselves.
    link.set_link(fault_proxy::Link::Up);
    session.wait_text("[data-testid=save-status]", Duration::from_secs(60), |t| {
        t.contains("Saved on the server")
    })?;
    let attempts = server.admin("/v1/admin/users/student12/attempts")?;
    let attempt = attempts
        .as_array()
        .and_then(|a| a.first())
        .and_then(|a| a["attempt_id"].as_str().or(a["id"].as_str()))
        .with_context(|| format!("no attempt on the server: {attempts}"))?
        .to_string();
    let held = server.admin(&format!("/v1/admin/attempts/{attempt}"))?;
    assert_eq!(held["answers"]["q01"]["value"], json!("o2"), "{held}");
    assert_eq!(
        held["answers"]["q02"]["value"],
        json!(["o1", "o3"]),
        "{held}"
    );
    assert_eq!(held["answers"]["q03"]["value"], json!("Au"), "{held}");
    assert_eq!(held["answers"]["q04"]["value"], json!(essay), "{held}");
    assert_eq!(held["answers"]["q07"]["value"], json!("Việt"), "{held}");
    assert_eq!(
        held["answers"].as_object().map(|a| a.len()),
        Some(5),
        "{held}"
    );
    // Each answer took effect once: saves made while offline were merged on this computer.
    assert_eq!(held["applied_writes"], json!(5), "{held}");

    // The link is cut again, then the exam is submitted: it is kept and queued, and says so.
    link.set_link(fault_proxy::Link::Refuse);
    session.click("[data-testid=review]")?;
    let answered = session.text("[data-testid=review-answered]")?;
    assert!(answered.contains('5'), "{answered}");
    support::screenshot(&harness.display, "e2e-exam-review.png")?;
    session.click("[data-testid=submit]")?;
    session.click("[data-testid=confirm-submit]")?;
    session.wait_text("[data-testid=submission-state]", WAIT, |t| {
        t.contains("Submitted on this computer")
    })?;
    // The sync drawer shows what waits.
    session.click("[data-testid=connection]")?;
    session.find("[data-testid=sync-drawer]")?;
    support::screenshot(&harness.display, "e2e-exam-submitted-offline.png")?;
    session.click("[data-testid=close-drawer]")?;

    // The link is back: delivered, with a receipt whose id and digest are the server's.
    link.set_link(fault_proxy::Link::Up);
    let receipt = session.wait_text("[data-testid=receipt-id]", Duration::from_secs(60), |t| {
        !t.is_empty()
    })?;
    let digest = session.text("[data-testid=receipt-digest]")?;
    support::screenshot(&harness.display, "e2e-exam-receipt.png")?;
    let held = server.admin(&format!("/v1/admin/attempts/{attempt}"))?;
    let text = held.to_string();
    assert!(
        text.contains(receipt.trim()),
        "receipt {receipt} not in {held}"
    );
    assert!(
        text.contains(digest.trim()),
        "digest {digest} not in {held}"
    );
    assert_eq!(held["applied_writes"], json!(5), "{held}");

    // In Vietnamese, the same screen.
    session.click("[data-testid=language] option[value=vi]")?;
    session.wait_text("[data-testid=submission]", WAIT, |t| t.contains("Mã"))?;
    support::screenshot(&harness.display, "e2e-exam-receipt-vi.png")?;
    Ok(())
}
