//! The built app, as a student and an IT admin meet it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;

use crate::support::{self, ExamServer, Guard, Session};

/// One app at a time: they share the single-instance name on the bus.
static SERIAL: Mutex<()> = Mutex::new(());

const APP: &str = env!("CARGO_BIN_EXE_exam-desktop");

/// Everything one launch of the app needs, torn down in reverse order.
struct Harness {
    env: Vec<(String, String)>,
    display: String,
    _home: tempfile::TempDir,
    driver_port: u16,
    _driver: Guard,
    _keyring: Guard,
    _bus: Guard,
    _display: Option<Guard>,
}

impl Harness {
    fn start(extra_env: &[(&str, String)]) -> Result<Self> {
        let (display, display_guard) = support::display()?;
        let home = tempfile::tempdir()?;
        let (bus, bus_guard) = support::session_bus(home.path())?;
        let keyring = support::keyring(&bus, home.path())?;
        let mut env: Vec<(String, String)> = vec![
            ("DISPLAY".into(), display.clone()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), bus),
            // A fresh account: no user config, data or keychain of the machine leaks in.
            ("HOME".into(), home.path().display().to_string()),
            (
                "XDG_CONFIG_HOME".into(),
                home.path().join(".config").display().to_string(),
            ),
            (
                "XDG_DATA_HOME".into(),
                home.path().join(".local/share").display().to_string(),
            ),
            (
                "XDG_CACHE_HOME".into(),
                home.path().join(".cache").display().to_string(),
            ),
            // Software rendering: Xvfb has no GPU.
            ("WEBKIT_DISABLE_DMABUF_RENDERER".into(), "1".into()),
            ("LIBGL_ALWAYS_SOFTWARE".into(), "1".into()),
        ];
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.clone())));

        let driver_port = support::free_port()?;
        let native_port = support::free_port()?;
        let mut driver = Command::new(support::tauri_driver_path()?);
        driver
            .args([
                "--port",
                &driver_port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .env_remove("EXAM_DESKTOP_SERVER")
            .env_remove("EXAM_DESKTOP_DATA_DIR")
            .env_remove("EXAM_DESKTOP_CONFIG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let driver = Guard(driver.spawn()?);
        support::wait_for_port(driver_port, Duration::from_secs(30))?;
        Ok(Self {
            env,
            display,
            _home: home,
            driver_port,
            _driver: driver,
            _keyring: keyring,
            _bus: bus_guard,
            _display: display_guard,
        })
    }

    fn session(&self) -> Result<Session> {
        Session::start(self.driver_port, Path::new(APP))
    }
}

/// The reference server with demo data, and the app pointed at it with a fresh data dir.
fn against_demo_server() -> Result<(ExamServer, tempfile::TempDir, Harness)> {
    let server = ExamServer::start()?;
    let data_dir = tempfile::tempdir()?;
    let harness = Harness::start(&[
        ("EXAM_DESKTOP_SERVER", server.url()),
        (
            "EXAM_DESKTOP_DATA_DIR",
            data_dir.path().display().to_string(),
        ),
    ])?;
    Ok((server, data_dir, harness))
}

#[test]
fn the_window_shows_version_and_server_and_a_second_launch_exits() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, data_dir, harness) = against_demo_server()?;
    let session = harness.session()?;

    let version = session.text("[data-testid=app-version]")?;
    assert_eq!(version, format!("v{}", env!("CARGO_PKG_VERSION")));
    let shown_server = session.text("[data-testid=server-url]")?;
    assert!(shown_server.contains(&server.url()), "{shown_server}");
    assert_eq!(session.title()?, "Exam Bank Desktop");
    support::screenshot(&harness.display, "e2e-main-window.png")?;

    // A second launch hands over to the running window and exits.
    let mut second = Command::new(APP)
        .envs(harness.env.iter().map(|(k, v)| (k, v)))
        .env("EXAM_DESKTOP_DATA_DIR", data_dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let status = support::wait_for_exit(&mut second, Duration::from_secs(60))?;
    assert!(status.success(), "the second launch exited with {status}");
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
    session.clear("#password")?;
    session.type_into("#password", "demo")?;
    session.click("[data-testid=sign-in]")?;
    session.wait_text("[data-testid=signed-in-user]", wait, |t| t == "student7")?;
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
    let deadline = std::time::Instant::now() + wait;
    let mut handles = session.handles()?;
    while handles.len() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        handles = session.handles()?;
    }
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
