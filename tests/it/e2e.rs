//! The built app, as a student and an IT admin meet it.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;

use crate::support::{self, against_demo_server, Harness, APP, SERIAL};

#[test]
fn the_window_shows_version_and_server_and_a_second_launch_exits() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, data_dir, harness) = against_demo_server()?;
    let session = harness.session()?;

    let version = session.text("[data-testid=app-version]")?;
    assert_eq!(version, format!("v{}", env!("CARGO_PKG_VERSION")));
    // The server came from an environment variable, not the school's managed settings: the
    // sign-in screen says so, with the address the password would go to.
    let shown_server = session.text("[data-testid=server-set-by-user]")?;
    assert!(shown_server.contains(&server.url()), "{shown_server}");
    assert!(
        shown_server.contains("EXAM_DESKTOP_SERVER"),
        "{shown_server}"
    );
    assert_eq!(session.title()?, "Exam Bank Desktop");
    support::screenshot(&harness.display, "e2e-main-window.png")?;

    // A second launch hands over to the running window and exits — before any I/O: given a
    // data dir of its own and a server that counts connections, it creates no database (nor
    // even the directory) and connects nowhere, so it can neither rotate a refresh token
    // nor reset the first instance's queue, however slow its keychain or disk.
    let elsewhere = tempfile::tempdir()?;
    let second_dir = elsewhere.path().join("second");
    let counting = std::net::TcpListener::bind("127.0.0.1:0")?;
    counting.set_nonblocking(true)?;
    let mut second = Command::new(APP)
        .envs(harness.env.iter().map(|(k, v)| (k, v)))
        .env("EXAM_DESKTOP_DATA_DIR", &second_dir)
        .env(
            "EXAM_DESKTOP_SERVER",
            format!("http://{}/", counting.local_addr()?),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let status = support::wait_for_exit(&mut second, Duration::from_secs(60))?;
    assert!(status.success(), "the second launch exited with {status}");
    assert!(
        !second_dir.exists(),
        "the second launch wrote to its data dir before handing over"
    );
    assert!(
        counting.accept().is_err(),
        "the second launch connected to its server before handing over"
    );
    // The first window is still there and answering.
    assert_eq!(session.text("[data-testid=app-version]")?, version);

    let log = std::fs::read_to_string(data_dir.path().join("logs/exam-desktop.log"))?;
    assert!(log.contains("starting"), "{log}");
    assert!(
        log.contains("a second launch was redirected to this window"),
        "{log}"
    );
    Ok(())
}

#[test]
fn a_malformed_config_file_is_shown_instead_of_a_crash() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "# Exam Bank Desktop\nserver_url = \"ftp://exams.school.example\"\n",
    )?;
    let harness = Harness::start(&[
        ("EXAM_DESKTOP_CONFIG", config.display().to_string()),
        (
            "EXAM_DESKTOP_DATA_DIR",
            dir.path().join("data").display().to_string(),
        ),
    ])?;
    let session = harness.session()?;
    let problems = session.text("[data-testid=config-problems]")?;
    assert!(
        problems.contains(&config.display().to_string()),
        "{problems}"
    );
    assert!(problems.contains("line 2"), "{problems}");
    assert!(problems.contains("server_url"), "{problems}");
    assert!(problems.contains("http:// or https://"), "{problems}");
    support::screenshot(&harness.display, "e2e-config-problem.png")?;
    Ok(())
}

fn version_of(text: &str) -> u32 {
    text.trim()
        .trim_start_matches("state v")
        .parse()
        .unwrap_or(0)
}

#[test]
fn sign_in_then_three_status_windows_follow_one_core() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, data_dir, harness) = against_demo_server()?;
    let session = harness.session()?;
    let wait = Duration::from_secs(30);

    // A wrong password first: the student is told, in words.
    session.type_into("#username", "student7")?;
    session.type_into("#password", "not-the-password")?;
    session.click("[data-testid=sign-in]")?;
    let error = session.wait_text("[data-testid=sign-in-error]", wait, |t| !t.is_empty())?;
    assert!(error.contains("not right"), "{error}");
    session.clear("#username")?;
    session.clear("#password")?;
    session.sign_in("student7", "demo")?;
    assert_eq!(
        session.text("[data-testid=data-dir]")?,
        data_dir.path().display().to_string()
    );
    support::screenshot(&harness.display, "e2e-signed-in.png")?;

    // Three status windows.
    let main = session.current_handle()?;
    for _ in 0..3 {
        session.click("[data-testid=open-status]")?;
    }
    let handles = session.wait_for_windows(4, wait)?;
    assert_eq!(handles.len(), 4, "main + 3 status windows: {handles:?}");

    // Force a refresh from the main window: every window shows the same, newer version.
    let before = version_of(&session.text("[data-testid=auth-version]")?);
    session.click("[data-testid=refresh-now]")?;
    let after = version_of(&session.wait_text("[data-testid=auth-version]", wait, |t| {
        // One version for "renewing", one for "renewed".
        version_of(t) >= before + 2
    })?);
    for handle in &handles {
        session.switch_to(handle)?;
        let shown = session.wait_text("[data-testid=auth-version]", wait, |t| {
            version_of(t) >= after
        })?;
        assert_eq!(version_of(&shown), after, "window {handle}");
    }
    support::screenshot(&harness.display, "e2e-status-windows.png")?;

    // The core's test events reach every window and every window answers.
    let status = handles
        .iter()
        .find(|h| **h != main)
        .expect("a status window");
    session.switch_to(status)?;
    session.click("[data-testid=measure-events]")?;
    session.wait_text("[data-testid=event-delivery]", wait, |t| !t.is_empty())?;
    assert_eq!(
        session.attribute("[data-testid=event-delivery]", "data-windows")?,
        "4"
    );
    assert_eq!(
        session.attribute("[data-testid=event-delivery]", "data-missed")?,
        "0"
    );

    // The sync panel: the monitor has found the server; nothing is waiting.
    session.wait_text("[data-testid=network-state]", wait, |t| {
        t == "Online" || t == "Slow connection"
    })?;
    session.click("[data-testid=sync-now]")?;
    session.wait_text("[data-testid=sync-state]", wait, |t| {
        t.contains("Everything is sent") || t.contains("Nothing waiting")
    })?;
    assert_eq!(session.text("[data-testid=queue-dead]")?, "0");
    support::screenshot(&harness.display, "e2e-sync-panel.png")?;

    // The school ends the session: at the next refresh every window shows why.
    server.revoke_sessions("student7")?;
    session.switch_to(&handles[handles.len() - 1])?;
    session.click("[data-testid=refresh-now]")?;
    for handle in &handles {
        session.switch_to(handle)?;
        let shown = session.wait_text("[data-testid=session-ended]", wait, |t| !t.is_empty())?;
        assert!(shown.contains("ended"), "window {handle}: {shown}");
    }
    session.switch_to(&main)?;
    session.find("[data-testid=sign-in]")?;
    support::screenshot(&harness.display, "e2e-session-ended.png")?;

    // No token ever reached a page or a log: refresh tokens start with `rt_`, access tokens
    // are JWTs (`eyJ…`).
    for handle in &handles {
        session.switch_to(handle)?;
        let page = session.source()?;
        assert!(
            !page.contains("rt_") && !page.contains("eyJ"),
            "a token in window {handle}"
        );
    }
    for entry in std::fs::read_dir(data_dir.path().join("logs"))? {
        let text = std::fs::read_to_string(entry?.path())?;
        assert!(
            text.contains("student7") || text.contains("starting"),
            "the log was written"
        );
        assert!(
            !text.contains("rt_") && !text.contains("eyJ"),
            "a token in the log:\n{text}"
        );
    }
    Ok(())
}

#[test]
fn the_status_window_shows_the_connection_lost_and_back() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_server, link, data_dir, harness) = support::behind_a_cuttable_link()?;
    let session = harness.session()?;
    let wait = Duration::from_secs(30);
    session.sign_in("student11", "demo")?;
    let main = session.current_handle()?;
    session.click("[data-testid=open-status]")?;
    let handles = session.wait_for_windows(2, wait)?;
    let status = handles
        .iter()
        .find(|h| **h != main)
        .expect("a status window");
    session.switch_to(status)?;
    // Usable: online, or "slow" when this machine is busy enough to take a probe past 250 ms.
    let usable = |t: &str| t == "Online" || t == "Slow connection";
    session.wait_text("[data-testid=network-state]", wait, usable)?;

    // The cable is pulled: nothing answers any more.
    link.set_link(fault_proxy::Link::Blackhole);
    let shown = session.wait_text("[data-testid=network-state]", wait, |t| {
        t.starts_with("Offline")
    })?;
    assert!(shown.contains("kept on this computer"), "{shown}");
    session.find("[data-testid=sync-now]")?;
    support::screenshot(&harness.display, "e2e-offline.png")?;
    // The main window is not in front: a desktop notification says so too.
    let log = data_dir.path().join("logs/exam-desktop.log");
    let deadline = std::time::Instant::now() + wait;
    while !std::fs::read_to_string(&log)?
        .contains("desktop notification shown summary=Connection lost")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no notification: {}",
            std::fs::read_to_string(&log)?
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    support::screenshot(&harness.display, "e2e-notification.png")?;
    // The main window still says the student is signed in (offline is not signed out).
    session.switch_to(&main)?;
    session.wait_text("[data-testid=signed-in-user]", wait, |t| t == "student11")?;

    // Back: the window says so by itself.
    link.set_link(fault_proxy::Link::Up);
    session.switch_to(status)?;
    session.wait_text("[data-testid=network-state]", wait, usable)?;
    Ok(())
}
