//! The real parts an end-to-end test needs: a display, a session bus, the reference
//! server, tauri-driver, and a minimal W3C WebDriver client.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Kills the process (and waits for it) when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the first line a child prints on stdout (Xvfb -displayfd, dbus --print-address).
fn first_line(child: &mut Child) -> Result<String> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// The X display to use: `$DISPLAY`, or a private Xvfb started for the test.
pub fn display() -> Result<(String, Option<Guard>)> {
    if let Ok(display) = std::env::var("DISPLAY") {
        if !display.is_empty() {
            return Ok((display, None));
        }
    }
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting Xvfb (apt-get install xvfb, or run `make test`)")?;
    let number = first_line(&mut child)?;
    if number.is_empty() {
        bail!("Xvfb did not report a display number");
    }
    Ok((format!(":{number}"), Some(Guard(child))))
}

/// Xorg's configuration with the dummy driver: sixteen outputs (DUMMY0…15), the first one
/// connected, so a test can plug a second display in with `xrandr` — which Xvfb, with its
/// single output, cannot do.
const DUMMY_XORG_CONF: &str = r#"
Section "Device"
    Identifier "dummy"
    Driver "dummy"
    VideoRam 256000
EndSection
Section "Monitor"
    Identifier "monitor"
    HorizSync 5.0-1000.0
    VertRefresh 5.0-200.0
EndSection
Section "Screen"
    Identifier "screen"
    Device "dummy"
    Monitor "monitor"
    DefaultDepth 24
    SubSection "Display"
        Depth 24
        Virtual 2560 1024
        Modes "1280x800"
    EndSubSection
EndSection
"#;

/// An X server whose displays can be plugged in ([`plug_second_display`]): Xorg with the
/// dummy driver (xserver-xorg-video-dummy, installed by `make test`).
pub fn pluggable_display() -> Result<(String, Guard)> {
    let dir = std::env::temp_dir().join(format!("exam-e2e-xorg-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("xorg.conf");
    std::fs::write(&conf, DUMMY_XORG_CONF)?;
    let mut child = Command::new("Xorg")
        .args(["-displayfd", "1", "-noreset", "-nolisten", "tcp", "-config"])
        .arg(&conf)
        .arg("-logfile")
        .arg(dir.join("xorg.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting Xorg (apt-get install xserver-xorg-core xserver-xorg-video-dummy, or run `make test`)")?;
    let number = first_line(&mut child)?;
    if number.is_empty() {
        bail!(
            "Xorg did not report a display number (its log: {})",
            dir.join("xorg.log").display()
        );
    }
    Ok((format!(":{number}"), Guard(child)))
}

/// Plugs a second display into a [`pluggable_display`] (DUMMY1, right of the first), or
/// out. The server is then asked to probe its outputs (`--query`), as a cable plugged into
/// real hardware makes it do: GTK reads the server's current configuration without probing,
/// and would otherwise go on seeing one display on a wider screen.
pub fn plug_second_display(display: &str, on: bool) -> Result<()> {
    let xrandr = |args: &[&str]| -> Result<()> {
        let output = Command::new("xrandr")
            .arg("--display")
            .arg(display)
            .args(args)
            .output()
            .context("running xrandr (apt-get install x11-xserver-utils)")?;
        if !output.status.success() {
            bail!(
                "xrandr {args:?} exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    };
    if on {
        // The mode is there from an earlier plug, or added now.
        let _ = xrandr(&["--addmode", "DUMMY1", "1024x768"]);
    }
    let layout: &[&str] = if on {
        &[
            "--output",
            "DUMMY1",
            "--mode",
            "1024x768",
            "--right-of",
            "DUMMY0",
        ]
    } else {
        &["--output", "DUMMY1", "--off"]
    };
    xrandr(layout)?;
    xrandr(&["--query"])
}

/// A private D-Bus session bus, so single-instance works and nothing leaks to the desktop.
pub fn session_bus(socket_dir: &Path) -> Result<(String, Guard)> {
    let mut child = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!("--address=unix:tmpdir={}", socket_dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting dbus-daemon (apt-get install dbus)")?;
    let address = first_line(&mut child)?;
    if address.is_empty() {
        bail!("dbus-daemon did not print its address");
    }
    Ok((address, Guard(child)))
}

/// An unlocked gnome-keyring on `bus`, keeping its files under `home`: the app stores its
/// refresh token in the real Secret Service. On a loaded machine the daemon can be slow to
/// take its name on the bus, or exit at once: it is waited for, and started again once.
pub fn keyring(bus: &str, home: &Path) -> Result<Guard> {
    for _ in 0..2 {
        if let Some(guard) = keyring_once(bus, home)? {
            return Ok(guard);
        }
    }
    bail!(
        "gnome-keyring-daemon did not come up on the test bus: {}",
        std::fs::read_to_string(home.join("gnome-keyring.log")).unwrap_or_default()
    )
}

/// Whether some process owns `org.freedesktop.secrets` on `bus` (never starts one).
fn secret_service_owned(bus: &str) -> Result<bool> {
    let output = Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:org.freedesktop.secrets",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .output()
        .context("dbus-send (apt-get install dbus)")?;
    Ok(String::from_utf8_lossy(&output.stdout).contains("boolean true"))
}

fn keyring_once(bus: &str, home: &Path) -> Result<Option<Guard>> {
    use std::io::Write as _;
    // Its own runtime directory: the daemon's control socket lives there, and a daemon of an
    // earlier test still shutting down (same user, same default directory) would otherwise
    // take the new one's place and leave the new bus without a Secret Service.
    let runtime = home.join("run");
    std::fs::create_dir_all(&runtime)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut child = Command::new("gnome-keyring-daemon")
        .args(["--foreground", "--unlock", "--components=secrets"])
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(home.join("gnome-keyring.log"))?)
        .spawn()
        .context("starting gnome-keyring-daemon (apt-get install gnome-keyring)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(b"e2e-keyring-password")?;
    }
    // Wait until it owns the Secret Service name on the bus and its login collection is
    // created and unlocked: storing an item succeeds (searching alone can succeed earlier).
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(None); // it exited: start it again
        }
        // First that it owns the name — asked without D-Bus activation: a Secret Service call
        // before it has registered would make the bus start a second, locked daemon of its
        // own ("another secret service is running") and this one would give up.
        if !secret_service_owned(bus)? {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let mut probe = Command::new("secret-tool")
            .args(["store", "--label=e2e probe", "service", "probe"])
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        if let Some(mut stdin) = probe.stdin.take() {
            stdin.write_all(b"probe")?;
        }
        // A probe that hangs (a prompt nobody answers) is given up, not waited for.
        if wait_for_exit(&mut probe, Duration::from_secs(5)).is_ok_and(|s| s.success()) {
            return Ok(Some(Guard(child)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(None)
}

/// A notification service (dunst) on `bus`, showing on `display`: the app's desktop
/// notifications go to a real one.
pub fn notifications(bus: &str, display: &str, home: &Path) -> Result<Guard> {
    let child = Command::new("dunst")
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("DISPLAY", display)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting dunst (apt-get install dunst)")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let up = Command::new("dunstctl")
            .arg("is-paused")
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if up.success() {
            return Ok(Guard(child));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("dunst did not come up on the test bus")
}

pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";

/// The reference server on a free loopback port, on its own runtime.
pub struct ExamServer {
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ExamServer {
    pub fn start() -> Result<Self> {
        Self::start_with(|_| {})
    }

    /// The server with demo data, its configuration changed by `change` first.
    pub fn start_with(change: impl FnOnce(&mut exam_server::Config)) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let dir = tempfile::tempdir()?;
        let mut config = exam_server::Config {
            demo: true,
            admin_token: Some(ADMIN_TOKEN.into()),
            ..exam_server::Config::new(dir.path().join("server.db"))
        };
        change(&mut config);
        let server = runtime.block_on(exam_server::Server::bind("127.0.0.1:0".parse()?, config))?;
        let addr = server.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            _dir: dir,
            stop: Some(stop),
            runtime: Some(runtime),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The server's database (a test reads what it holds that the admin API does not show).
    pub fn db(&self) -> std::path::PathBuf {
        self._dir.path().join("server.db")
    }

    /// A GET of the admin API (what an examiner sees).
    pub fn admin(&self, path: &str) -> Result<Value> {
        let response = reqwest::blocking::Client::new()
            .get(format!("http://{}{path}", self.addr))
            .bearer_auth(ADMIN_TOKEN)
            .send()?;
        if !response.status().is_success() {
            bail!("GET {path}: {}", response.status());
        }
        Ok(response.json()?)
    }

    /// Submits `attempt` as `user` directly on the server, behind the app's back (as if
    /// from another computer): the server's digest is learned from its `digest_mismatch`.
    pub fn submit_behind_the_apps_back(&self, user: &str, attempt: &str) -> Result<()> {
        let client = reqwest::blocking::Client::new();
        let base = format!("http://{}", self.addr);
        let token: Value = client
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", "demo"),
                ("client_id", "exam-desktop"),
            ])
            .send()?
            .json()?;
        let token = token["access_token"].as_str().context("no access token")?;
        let submit = |digest: &str, count: u64| {
            client
                .post(format!("{base}/v1/attempts/{attempt}/submit"))
                .bearer_auth(token)
                .header("Idempotency-Key", format!("e2e-submit-{digest}"))
                .json(&json!({"answer_count": count, "answers_digest": digest}))
                .send()
        };
        let first: Value = submit("0", 0)?.json()?;
        let digest = first["answers_digest"]
            .as_str()
            .with_context(|| format!("no digest in {first}"))?;
        let count = first["answer_count"].as_u64().unwrap_or(0);
        let response = submit(digest, count)?;
        if !response.status().is_success() {
            bail!(
                "submitting {attempt}: {} {}",
                response.status(),
                response.text()?
            );
        }
        Ok(())
    }

    /// What the school does to end a student's sessions.
    pub fn revoke_sessions(&self, user: &str) -> Result<()> {
        let response = reqwest::blocking::Client::new()
            .post(format!(
                "http://{}/v1/admin/users/{user}/sessions/revoke",
                self.addr
            ))
            .bearer_auth(ADMIN_TOKEN)
            .header("Idempotency-Key", format!("e2e-{}", std::process::id()))
            .send()?;
        if !response.status().is_success() {
            bail!("revoking the sessions of {user}: {}", response.status());
        }
        Ok(())
    }
}

impl Drop for ExamServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn tauri_driver_path() -> Result<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin")));
    for dir in candidates {
        let path = dir.join("tauri-driver");
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!("tauri-driver is not installed: `cargo install tauri-driver@2.1.0 --locked`, or run `make test`")
}

pub fn wait_for_port(port: u16, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing listens on port {port} after {within:?}")
}

/// Waits for a child to exit on its own; kills it and fails after `within`.
pub fn wait_for_exit(child: &mut Child, within: Duration) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ticks option `id` of the question on screen and waits until it shows as chosen (a
/// click can land while the question is still being drawn).
pub fn choose(session: &Session, id: &str) -> Result<()> {
    let option = format!("[data-testid=option-{id}]");
    for _ in 0..5 {
        session.click(&option)?;
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if session.property(&option, "checked")? == json!(true) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    bail!("option {id} could not be chosen")
}

/// A W3C WebDriver session with the app, through tauri-driver.
pub struct Session {
    http: reqwest::blocking::Client,
    base: String,
}

impl Session {
    pub fn start(driver_port: u16, application: &Path) -> Result<Self> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let response: Value = http
            .post(format!("http://127.0.0.1:{driver_port}/session"))
            .json(&json!({
                "capabilities": {"alwaysMatch": {
                    "browserName": "wry",
                    "tauri:options": {"application": application}
                }}
            }))
            .send()?
            .json()?;
        let id = response["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no session: {response}"))?;
        let session = Self {
            http,
            base: format!("http://127.0.0.1:{driver_port}/session/{id}"),
        };
        session.call("POST", "/timeouts", Some(json!({"implicit": 30_000})))?;
        Ok(session)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response: Value = request.send()?.json()?;
        if let Some(error) = response["value"]["error"].as_str() {
            bail!(
                "WebDriver {method} {path}: {error}: {}",
                response["value"]["message"]
            );
        }
        Ok(response["value"].clone())
    }

    /// The element matching `css`, waiting (implicitly) until it appears.
    pub fn find(&self, css: &str) -> Result<String> {
        let value = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        value
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("no element id in {value}"))
    }

    pub fn text(&self, css: &str) -> Result<String> {
        let element = self.find(css)?;
        let value = self.call("GET", &format!("/element/{element}/text"), None)?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    pub fn click(&self, css: &str) -> Result<()> {
        let element = self.find(css)?;
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )?;
        Ok(())
    }

    pub fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let element = self.find(css)?;
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )?;
        Ok(())
    }

    pub fn clear(&self, css: &str) -> Result<()> {
        let element = self.find(css)?;
        self.call(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )?;
        Ok(())
    }

    pub fn handles(&self) -> Result<Vec<String>> {
        let value = self.call("GET", "/window/handles", None)?;
        Ok(value
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The page's HTML as it is now, scripts' output included.
    pub fn source(&self) -> Result<String> {
        Ok(self
            .call("GET", "/source", None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub fn current_handle(&self) -> Result<String> {
        Ok(self
            .call("GET", "/window", None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub fn switch_to(&self, handle: &str) -> Result<()> {
        self.call("POST", "/window", Some(json!({"handle": handle})))?;
        Ok(())
    }

    /// Polls `css`'s text until `done` holds (the UI follows events asynchronously).
    pub fn wait_text(
        &self,
        css: &str,
        within: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let text = self.text(css).unwrap_or_default();
            if done(&text) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                bail!("{css} still shows {text:?} after {within:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `script` in the page (W3C Execute Script); its return value.
    pub fn execute(&self, script: &str) -> Result<Value> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Runs `script` in the page until it calls its last argument (W3C Execute Async Script);
    /// the value it was called with.
    pub fn execute_async(&self, script: &str) -> Result<Value> {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// A DOM property (e.g. an input's current `value`, a checkbox's `checked`).
    pub fn property(&self, css: &str, name: &str) -> Result<Value> {
        let element = self.find(css)?;
        self.call("GET", &format!("/element/{element}/property/{name}"), None)
    }

    pub fn attribute(&self, css: &str, name: &str) -> Result<String> {
        let element = self.find(css)?;
        let value = self.call("GET", &format!("/element/{element}/attribute/{name}"), None)?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// Opens question `id` from the navigation and waits until it is the current one (a notice
    /// appearing can move the grid between finding a button and clicking it: then click again).
    pub fn open_question(&self, id: &str) -> Result<()> {
        let button = format!("[data-testid=nav-{id}]");
        for _ in 0..5 {
            self.click(&button)?;
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while std::time::Instant::now() < deadline {
                if self.attribute(&button, "aria-current")? == "step" {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        anyhow::bail!("question {id} did not open")
    }

    /// Signs in from the main window's sign-in screen and waits until it says so.
    pub fn sign_in(&self, user: &str, password: &str) -> Result<()> {
        // The form offers the last student's name (a session that ended): replace it.
        self.clear("#username")?;
        self.type_into("#username", user)?;
        self.type_into("#password", password)?;
        self.click("[data-testid=sign-in]")?;
        self.wait_text(
            "[data-testid=signed-in-user]",
            Duration::from_secs(30),
            |t| t == user,
        )?;
        Ok(())
    }

    /// Waits until `count` windows are open; their handles.
    pub fn wait_for_windows(&self, count: usize, within: Duration) -> Result<Vec<String>> {
        let deadline = Instant::now() + within;
        loop {
            let handles = self.handles()?;
            if handles.len() >= count {
                return Ok(handles);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} windows open after {within:?}, not {count}",
                    handles.len()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn title(&self) -> Result<String> {
        Ok(self
            .call("GET", "/title", None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
    }
}

/// Saves what the X display shows (as a person would see it) to `target/screenshots/NAME`.
/// WebKitWebDriver's own screenshot hangs under Xvfb without a compositor, so ImageMagick
/// reads the screen instead.
pub fn screenshot(display: &str, name: &str) -> Result<PathBuf> {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("target"))
        .join("screenshots")
        .join(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let status = Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(&path)
        .status()
        .context("running ImageMagick's import (apt-get install imagemagick)")?;
    if !status.success() {
        bail!("import exited with {status}");
    }
    Ok(path)
}

/// The app under test, built by cargo for these tests and benchmarks.
pub const APP: &str = env!("CARGO_BIN_EXE_exam-desktop");

/// One app at a time: they share the single-instance name on the bus.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Kills the running app with SIGKILL (no chance to save or clean up), as a power cut or
/// a crash would; waits until it is gone.
pub fn kill_app() -> Result<()> {
    let status = Command::new("pkill").args(["-KILL", "-f", APP]).status()?;
    if !status.success() {
        bail!("no running app to kill ({status})");
    }
    until_the_app_is_gone(Duration::from_secs(10), "after SIGKILL")
}

/// Waits until no process of the app is left.
fn until_the_app_is_gone(within: Duration, after: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + within;
    while Command::new("pgrep")
        .args(["-f", APP])
        .output()?
        .status
        .success()
    {
        if std::time::Instant::now() > deadline {
            bail!("the app is still running {after}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Quits the app as a student does: closes its window (WM_DELETE_WINDOW, what the close
/// button sends), then waits for the process to end.
pub fn close_app(display: &str) -> Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/close-window.py");
    let status = Command::new("/usr/bin/python3")
        .arg(script)
        .arg("Exam Bank Desktop")
        .env("DISPLAY", display)
        .status()?;
    if !status.success() {
        bail!("could not close the app's window ({status})");
    }
    until_the_app_is_gone(Duration::from_secs(30), "30 s after its window closed")
}

/// Everything one launch of the app needs, torn down in reverse order.
pub struct Harness {
    pub env: Vec<(String, String)>,
    pub display: String,
    _home: tempfile::TempDir,
    driver_port: u16,
    _driver: Guard,
    _keyring: Guard,
    _notifications: Guard,
    _bus: Guard,
    _display: Option<Guard>,
}

impl Harness {
    pub fn start(extra_env: &[(&str, String)]) -> Result<Self> {
        Self::start_on(display()?, extra_env)
    }

    /// [`Harness::start`] on a display of the test's (a [`pluggable_display`]).
    pub fn start_on(
        (display, display_guard): (String, Option<Guard>),
        extra_env: &[(&str, String)],
    ) -> Result<Self> {
        let home = tempfile::tempdir()?;
        let (bus, bus_guard) = session_bus(home.path())?;
        let keyring = keyring(&bus, home.path())?;
        let notifications = notifications(&bus, &display, home.path())?;
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

        let driver_port = free_port()?;
        let native_port = free_port()?;
        let mut driver = Command::new(tauri_driver_path()?);
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
        wait_for_port(driver_port, Duration::from_secs(30))?;
        Ok(Self {
            env,
            display,
            _home: home,
            driver_port,
            _driver: driver,
            _keyring: keyring,
            _notifications: notifications,
            _bus: bus_guard,
            _display: display_guard,
        })
    }

    pub fn session(&self) -> Result<Session> {
        self.session_with(Path::new(APP))
    }

    /// A session with another app, launched the same way (the launch benchmark's bare app).
    pub fn session_with(&self, application: &Path) -> Result<Session> {
        Session::start(self.driver_port, application)
    }
}

/// The reference server with demo data, a link to it the test can cut, and the app pointed
/// at the link with a fresh data dir.
pub fn behind_a_cuttable_link() -> Result<(
    ExamServer,
    fault_proxy::FaultProxy,
    tempfile::TempDir,
    Harness,
)> {
    behind_a_cuttable_link_to(ExamServer::start()?)
}

/// [`behind_a_cuttable_link`] to a server of the test's.
pub fn behind_a_cuttable_link_to(
    server: ExamServer,
) -> Result<(
    ExamServer,
    fault_proxy::FaultProxy,
    tempfile::TempDir,
    Harness,
)> {
    let link = fault_proxy::FaultProxy::start(server.addr)?;
    let data_dir = tempfile::tempdir()?;
    let harness = Harness::start(&[
        ("EXAM_DESKTOP_SERVER", format!("{}/", link.url())),
        (
            "EXAM_DESKTOP_DATA_DIR",
            data_dir.path().display().to_string(),
        ),
    ])?;
    Ok((server, link, data_dir, harness))
}

/// The reference server with demo data, and the app pointed at it with a fresh data dir.
pub fn against_demo_server() -> Result<(ExamServer, tempfile::TempDir, Harness)> {
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
