//! Device checks in the built app with real processes: a copy of `sleep` renamed like a
//! remote-control program keeps an exam from starting — saying which program to close — and
//! the start goes on once it is closed; during the exam a meeting app starts: the student
//! sees it within the 2 s of a check, the server has the event, and the exam goes on; closed,
//! the banner clears. A second display plugged in mid-exam is shown and reported the same
//! way; unplugged, it clears. Passwords guessed at the sign-in screen are told on this
//! computer's screen, and the server raises its brute-force alert for the proctor.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::support::{self, SERIAL};

const WAIT: Duration = Duration::from_secs(30);

/// A copy of `sleep` running under the file name `name`.
struct Program {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Program {
    fn start(name: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(name);
        std::fs::copy("/bin/sleep", &path)?;
        let child = Command::new(&path).arg("600").spawn()?;
        Ok(Self { child, _dir: dir })
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The security events the server holds for `student`: (type, attrs).
fn server_events(server: &support::ExamServer, student: &str) -> Result<Vec<(String, String)>> {
    let conn = rusqlite::Connection::open(server.db())?;
    let mut stmt = conn.prepare(
        "SELECT e.type, e.attrs FROM events e JOIN users u ON u.id = e.user_id
         WHERE u.username = ?1 AND e.type LIKE 'security.%' ORDER BY e.rowid",
    )?;
    let rows = stmt
        .query_map([student], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[test]
fn a_prohibited_program_is_shown_and_reported_within_seconds_and_never_stops_an_exam_in_progress(
) -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, _data_dir, harness) = support::against_demo_server()?;
    let session = harness.session()?;
    session.sign_in("student17", "demo")?;
    session.find("[data-testid=exam-demo-mixed]")?;

    // A remote-control program runs: the student is told which and what to do…
    let anydesk = Program::start("anydesk")?;
    let started = Instant::now();
    session.wait_text("[data-testid=security-banner]", WAIT, |t| {
        t.contains("AnyDesk is running")
    })?;
    println!(
        "banner shown {:?} after the program started",
        started.elapsed()
    );
    support::screenshot(&harness.display, "e2e-security-before-start.png")?;
    // …and the exam does not start while it runs, saying why.
    session.click("[data-testid=start-demo-mixed]")?;
    let refused = session.wait_text("[data-testid=exam-demo-mixed] [role=alert]", WAIT, |t| {
        !t.is_empty()
    })?;
    assert!(refused.contains("Close AnyDesk"), "{refused}");
    support::screenshot(&harness.display, "e2e-security-start-refused.png")?;

    // Closed: it leaves the banner and the exam starts.
    drop(anydesk);
    gone_from_banner(&session, "AnyDesk")?;
    session.click("[data-testid=start-demo-mixed]")?;
    if session
        .wait_text("[data-testid=question-prompt]", WAIT, |t| !t.is_empty())
        .is_err()
    {
        support::screenshot(&harness.display, "e2e-security-start-after-close.png")?;
        anyhow::bail!(
            "the exam did not start once AnyDesk was closed: {}",
            session
                .text("[data-testid=exam-demo-mixed]")
                .unwrap_or_default()
        );
    }

    // During the exam a meeting app starts: seen, shown, reported — the exam goes on.
    let zoom = Program::start("zoom")?;
    let started = Instant::now();
    let banner = session.wait_text("[data-testid=security-banner]", WAIT, |t| {
        t.contains("Zoom")
    })?;
    println!(
        "banner shown {:?} after the program started",
        started.elapsed()
    );
    assert!(banner.contains("Your exam goes on"), "{banner}");
    support::screenshot(&harness.display, "e2e-security-in-exam.png")?;
    let deadline = Instant::now() + WAIT;
    loop {
        let events = server_events(&server, "student17")?;
        if events.iter().any(|(kind, attrs)| {
            kind == "security.prohibited_program" && attrs.contains("\"zoom\"")
        }) {
            assert!(
                events
                    .iter()
                    .any(|(_, attrs)| attrs.contains("\"attempt_id\":\"")),
                "{events:?}"
            );
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "not on the server: {events:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The exam goes on: an answer is saved and reaches the server.
    session.open_question("q03")?;
    session.type_into("[data-testid=answer-text]", "Au")?;
    session.wait_text("[data-testid=save-status]", WAIT, |t| {
        t.contains("Saved on the server")
    })?;
    drop(zoom);
    gone_from_banner(&session, "Zoom")?;
    Ok(())
}

/// Waits until the banner no longer names `program` (gone with it, or still there for
/// something else this machine runs).
fn gone_from_banner(session: &support::Session, program: &str) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let source = session.source()?;
        let shown = source
            .split("data-testid=\"security-banner\"")
            .nth(1)
            .is_some_and(|banner| {
                banner
                    .split("</section>")
                    .next()
                    .unwrap_or("")
                    .contains(program)
            });
        if !shown {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{program} still in the banner after {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_second_display_plugged_in_mid_exam_is_shown_and_reported_and_the_exam_goes_on() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (display, xorg) = support::pluggable_display()?;
    let server = support::ExamServer::start()?;
    let data_dir = tempfile::tempdir()?;
    let harness = support::Harness::start_on(
        (display.clone(), Some(xorg)),
        &[
            ("EXAM_DESKTOP_SERVER", server.url()),
            (
                "EXAM_DESKTOP_DATA_DIR",
                data_dir.path().display().to_string(),
            ),
        ],
    )?;
    let session = harness.session()?;
    session.sign_in("student18", "demo")?;
    session.click("[data-testid=start-demo-mixed]")?;
    session.wait_text("[data-testid=question-prompt]", WAIT, |t| !t.is_empty())?;

    support::plug_second_display(&display, true)?;
    let started = Instant::now();
    let banner = match session.wait_text("[data-testid=security-banner]", WAIT, |t| {
        t.contains("2 displays are connected")
    }) {
        Ok(banner) => banner,
        Err(e) => {
            support::screenshot(&display, "e2e-security-second-display-failed.png")?;
            return Err(e);
        }
    };
    println!(
        "banner shown {:?} after the display was plugged in",
        started.elapsed()
    );
    assert!(banner.contains("Your exam goes on"), "{banner}");
    support::screenshot(&display, "e2e-security-second-display.png")?;
    let deadline = Instant::now() + WAIT;
    while !server_events(&server, "student18")?
        .iter()
        .any(|(kind, attrs)| {
            kind == "security.extra_display" && attrs.contains("\"attempt_id\":\"")
        })
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "not on the server: {:?}",
            server_events(&server, "student18")?
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The exam goes on.
    session.open_question("q03")?;
    session.type_into("[data-testid=answer-text]", "Au")?;
    session.wait_text("[data-testid=save-status]", WAIT, |t| {
        t.contains("Saved on the server")
    })?;
    // Unplugged: the banner clears, and the server is told.
    support::plug_second_display(&display, false)?;
    gone_from_banner(&session, "displays are connected")?;
    let deadline = Instant::now() + WAIT;
    while !server_events(&server, "student18")?
        .iter()
        .any(|(kind, attrs)| kind == "security.cleared" && attrs.contains("extra_display"))
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the clearing is not on the server"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[test]
fn guessed_passwords_are_told_on_this_screen_and_alerted_to_the_proctor() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, _data_dir, harness) = support::against_demo_server()?;
    let session = harness.session()?;
    session.find("#username")?;
    for guess in 1..=6 {
        session.clear("#username")?;
        session.type_into("#username", "student19")?;
        session.clear("#password")?;
        session.type_into("#password", &format!("guess-{guess}"))?;
        session.click("[data-testid=sign-in]")?;
        // Answered: a wrong password empties the field; a lockout says to wait.
        let deadline = Instant::now() + WAIT;
        let error = loop {
            let error = session
                .text("[data-testid=sign-in-error]")
                .unwrap_or_default();
            let emptied = session.property("#password", "value")? == "";
            if emptied || error.contains("Too many") {
                break error;
            }
            anyhow::ensure!(Instant::now() < deadline, "guess {guess} got no answer");
            std::thread::sleep(Duration::from_millis(100));
        };
        println!("guess {guess}: {error}");
        if guess == 6 {
            assert!(
                error.contains("Too many"),
                "the sixth is locked out: {error}"
            );
        }
    }
    // This computer's screen says so…
    let banner = session.wait_text("[data-testid=security-banner]", WAIT, |t| {
        t.contains("wrong passwords were typed on this computer")
    })?;
    println!("{banner}");
    support::screenshot(&harness.display, "e2e-security-guessed-passwords.png")?;
    // …and the proctor has the server's alert (what the console lists).
    let alerts = server.admin("/v1/admin/alerts?status=open")?;
    let brute = alerts["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["rule"] == "brute_force" && a["username"] == "student19");
    let brute = brute.ok_or_else(|| anyhow::anyhow!("no brute-force alert: {alerts}"))?;
    assert_eq!(brute["severity"], "warning", "{brute}");
    // Nothing about it was reported as any student's.
    let conn = rusqlite::Connection::open(server.db())?;
    let told: i64 = conn.query_row(
        "SELECT COUNT(*) FROM events WHERE type = 'security.sign_in_failures'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(told, 0);
    Ok(())
}
