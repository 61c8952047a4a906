//! The fair-time ledger in the built app: an attempt loses time to a cut network and to the
//! app being killed and started again 20 s later; the submission screen says how much, in
//! plain words, and the proctor has the same figures in the attempt's timeline.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::support::{self, SERIAL};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn time_lost_to_an_outage_and_a_restart_is_told_at_submission_and_to_the_proctor() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, link, _data_dir, harness) = support::behind_a_cuttable_link()?;
    let session = harness.session()?;
    session.sign_in("student20", "demo")?;
    session.click("[data-testid=start-demo-mixed]")?;
    session.wait_text("[data-testid=question-prompt]", WAIT, |t| !t.is_empty())?;
    session.open_question("q03")?;
    session.type_into("[data-testid=answer-text]", "Au")?;
    session.wait_text("[data-testid=save-status]", WAIT, |t| {
        t.contains("Saved on the server")
    })?;

    // The network goes for a while; the student goes on typing.
    link.set_link(fault_proxy::Link::Refuse);
    session.open_question("q04")?;
    session.type_into(
        "[data-testid=answer-text]",
        "Written while the network was down.",
    )?;
    session.wait_text("[data-testid=connection]", WAIT, |t| !t.contains("Online"))?;
    std::thread::sleep(Duration::from_secs(5));
    link.set_link(fault_proxy::Link::Up);
    session.wait_text("[data-testid=save-status]", Duration::from_secs(60), |t| {
        t.contains("Saved on the server")
    })?;

    // The app is killed, and started again 20 s later.
    support::kill_app()?;
    drop(session);
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(20));
    let session = harness.session()?;
    session.wait_text("[data-testid=resumed]", WAIT, |t| !t.is_empty())?;
    let down = killed.elapsed();

    // Submitted: the student is told what was lost, and that the proctor can see it.
    session.click("[data-testid=review]")?;
    session.click("[data-testid=submit]")?;
    session.click("[data-testid=confirm-submit]")?;
    let restart = session.wait_text("[data-testid=fair-time-restart]", WAIT, |t| {
        t.contains("to a restart")
    })?;
    let offline = session.text("[data-testid=fair-time-offline]")?;
    println!("{restart}\n{offline}\n(the app was down for {down:?})");
    assert!(restart.contains("Your proctor can see this"), "{restart}");
    assert!(offline.contains("without a connection"), "{offline}");
    support::screenshot(&harness.display, "e2e-fair-time-submission.png")?;

    // The proctor has the same: the attempt's timeline, once delivered.
    let attempts = server.admin("/v1/admin/users/student20/attempts")?;
    let attempt = attempts
        .as_array()
        .and_then(|a| a.first())
        .and_then(|a| a["attempt_id"].as_str().or(a["id"].as_str()))
        .ok_or_else(|| anyhow::anyhow!("no attempt: {attempts}"))?
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let lost = loop {
        let timeline = server.admin(&format!("/v1/admin/attempts/{attempt}/timeline"))?;
        let lost = timeline["time_lost"].clone();
        if lost["not_running_ms"].as_f64().unwrap_or(0.0) > 0.0
            && lost["offline_ms"].as_f64().unwrap_or(0.0) > 0.0
        {
            break lost;
        }
        anyhow::ensure!(Instant::now() < deadline, "not in the timeline: {timeline}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let not_running = lost["not_running_ms"].as_f64().unwrap_or(0.0);
    // From the last sign of life (every 5 s) to the start again.
    assert!(
        not_running >= 15_000.0 && not_running <= down.as_secs_f64() * 1000.0 + 6_000.0,
        "{lost}"
    );
    Ok(())
}
