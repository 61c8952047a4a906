//! `exam-desktop doctor` and `exam-desktop queue …` as IT runs them: the built binary, a
//! temporary data folder and user configuration, the real reference server, and (where the
//! keychain is the point) a private Secret Service on a private session bus. No window opens.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use exam_core::owner::Owner;
use exam_core::queue::{Limits, NewEntry, Outcome, Queue};
use serde_json::Value;

use crate::support::{self, ExamServer, Guard};

const APP: &str = env!("CARGO_BIN_EXE_exam-desktop");
const SERVICE: &str = "org.exambank.desktop";
/// The student whose work the tests queue: never to be seen in the tools' output.
const STUDENT: &str = "student1";

/// A fresh account for the binary: a data folder, a user configuration file, and a session
/// bus with a Secret Service when the keychain matters (otherwise a bus that is not there).
struct Account {
    home: tempfile::TempDir,
    bus: Option<String>,
    _keyring: Option<Guard>,
    _bus: Option<Guard>,
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    fn both(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl Account {
    fn new(keychain: bool) -> Result<Self> {
        let home = tempfile::tempdir()?;
        let (bus, bus_guard, keyring) = if keychain {
            let (bus, guard) = support::session_bus(home.path())?;
            let keyring = support::keyring(&bus, home.path())?;
            (Some(bus), Some(guard), Some(keyring))
        } else {
            (None, None, None)
        };
        Ok(Self {
            home,
            bus,
            _keyring: keyring,
            _bus: bus_guard,
        })
    }

    fn data(&self) -> PathBuf {
        self.home.path().join("data")
    }

    fn config(&self) -> PathBuf {
        self.home.path().join("config.toml")
    }

    fn bus_address(&self) -> String {
        self.bus
            .clone()
            .unwrap_or_else(|| format!("unix:path={}", self.home.path().join("no-bus").display()))
    }

    /// The user configuration: the server to use.
    fn configure(&self, server_url: &str) -> Result<()> {
        std::fs::write(self.config(), format!("server_url = \"{server_url}\"\n"))?;
        Ok(())
    }

    fn run(&self, args: &[&str]) -> Result<Ran> {
        let started = Instant::now();
        let output = Command::new(APP)
            .args(args)
            .env_remove("EXAM_DESKTOP_SERVER")
            .env_remove("RUST_LOG")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("EXAM_DESKTOP_DATA_DIR", self.data())
            .env("EXAM_DESKTOP_CONFIG", self.config())
            .env("DBUS_SESSION_BUS_ADDRESS", self.bus_address())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("XDG_DATA_HOME", self.home.path().join(".local/share"))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {APP} {args:?}"))?;
        Ok(Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            took: started.elapsed(),
        })
    }

    /// Stores a keychain entry of the app's, as the app names it (for the purge to find).
    fn store_secret(&self, entry: &str) -> Result<()> {
        use std::io::Write as _;
        let mut child = Command::new("secret-tool")
            .args(["store", "--label=exam-desktop test entry"])
            .args(["service", SERVICE, "username", entry])
            .args(["target", "default", "application", "rust-keyring"])
            .env("DBUS_SESSION_BUS_ADDRESS", self.bus_address())
            .stdin(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("no stdin")?
            .write_all(b"1\nsecret-value")?;
        anyhow::ensure!(child.wait()?.success(), "secret-tool store {entry}");
        Ok(())
    }

    fn has_secret(&self, entry: &str) -> Result<bool> {
        let output = Command::new("secret-tool")
            .args(["lookup", "service", SERVICE, "username", entry])
            .env("DBUS_SESSION_BUS_ADDRESS", self.bus_address())
            .output()?;
        Ok(output.status.success() && !output.stdout.is_empty())
    }
}

fn codes(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .map(|findings| {
            findings
                .iter()
                .map(|f| {
                    (
                        f["code"].as_str().unwrap_or("").to_string(),
                        f["level"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn finding<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["code"] == code))
        .unwrap_or_else(|| panic!("no {code} in {report:#}"))
}

#[test]
fn doctor_with_the_server_reachable_is_ready_and_writes_nothing() -> Result<()> {
    let server = ExamServer::start()?;
    let account = Account::new(true)?;
    account.configure(&server.url())?;
    let ran = account.run(&["doctor", "--json"])?;
    println!(
        "doctor, server reachable: {:.2} s (budget 2 s)",
        ran.took.as_secs_f64()
    );
    let report = ran.json();
    let found = codes(&report);
    // A warning is possible on a test machine (a program the policy lists, say); a failure
    // is not.
    assert!(ran.code == 0 || ran.code == 1, "{}\n{report:#}", ran.code);
    let worst = match ran.code {
        0 => ["ok", "info"].contains(&report["worst"].as_str().unwrap_or("")),
        _ => report["worst"] == "warn",
    };
    assert!(worst, "exit {} with worst {}", ran.code, report["worst"]);
    assert!(found.iter().all(|(_, level)| level != "fail"), "{found:?}");
    for code in [
        "config.sources",
        "server.ok",
        "tls.not_used",
        "clock.ok",
        "keychain.ok",
        "database.missing",
        "queue.empty",
        "webview.ok",
        "displays.not_checked",
        "update.unknown",
    ] {
        assert!(
            found.iter().any(|(c, _)| c == code),
            "no {code} in {found:?}"
        );
    }
    assert_eq!(report["version"], exam_core::VERSION);
    assert!(report["generated_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(finding(&report, "server.ok")["evidence"]["status"], 204);
    // Only read: the data folder was not even made.
    assert!(!account.data().exists());

    let human = account.run(&["doctor"])?;
    assert_eq!(human.code, ran.code);
    assert!(
        human.stdout.contains("✓ The server answers at"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("[server.ok]"), "{}", human.stdout);
    assert!(human.stdout.contains("\nServer\n"), "{}", human.stdout);
    Ok(())
}

#[test]
fn doctor_with_the_server_unreachable_fails_within_its_budget() -> Result<()> {
    let account = Account::new(false)?;
    // Nothing listens: refused at once.
    let port = support::free_port()?;
    account.configure(&format!("http://127.0.0.1:{port}/"))?;
    let refused = account.run(&["doctor", "--json"])?;
    println!(
        "doctor, connection refused: {:.2} s (budget 5 s)",
        refused.took.as_secs_f64()
    );
    assert_eq!(refused.code, 2, "{}", refused.both());
    let report = refused.json();
    assert_eq!(report["worst"], "fail");
    let unreachable = finding(&report, "server.unreachable");
    assert_eq!(unreachable["level"], "fail");
    assert_eq!(unreachable["evidence"]["reason"], "server_not_running");
    assert_eq!(finding(&report, "clock.unknown")["level"], "info");

    // Black-holed: connections are taken and never answered.
    let server = ExamServer::start()?;
    let proxy = fault_proxy::FaultProxy::start(server.addr)?;
    proxy.set_link(fault_proxy::Link::Blackhole);
    account.configure(&proxy.url())?;
    let blackholed = account.run(&["doctor", "--json"])?;
    println!(
        "doctor, black-holed: {:.2} s (budget 5 s)",
        blackholed.took.as_secs_f64()
    );
    assert_eq!(blackholed.code, 2, "{}", blackholed.both());
    let report = blackholed.json();
    assert_eq!(
        finding(&report, "server.unreachable")["evidence"]["reason"],
        "no_answer"
    );
    Ok(())
}

#[test]
fn doctor_names_a_damaged_database_by_its_path() -> Result<()> {
    let server = ExamServer::start()?;
    let account = Account::new(false)?;
    account.configure(&server.url())?;
    std::fs::create_dir_all(account.data())?;
    let path = account.data().join("exam-desktop.db");
    std::fs::write(&path, vec![0x5a; 16_384])?;
    let ran = account.run(&["doctor", "--json"])?;
    assert_eq!(ran.code, 2, "{}", ran.both());
    let report = ran.json();
    let damaged = finding(&report, "database.corrupt");
    assert_eq!(damaged["level"], "fail");
    assert_eq!(damaged["evidence"]["path"], path.display().to_string());
    assert!(damaged["title"]
        .as_str()
        .is_some_and(|t| t.contains(&path.display().to_string())));
    // Kept exactly as it was, for IT.
    assert_eq!(std::fs::read(&path)?, vec![0x5a; 16_384]);
    Ok(())
}

#[test]
fn doctor_locates_a_malformed_configuration() -> Result<()> {
    let server = ExamServer::start()?;
    let account = Account::new(false)?;
    std::fs::write(
        account.config(),
        format!(
            "server_url = \"{}\"\n[queue]\nmax_entries = \"many\"\n",
            server.url()
        ),
    )?;
    let ran = account.run(&["doctor", "--json"])?;
    assert_eq!(ran.code, 2, "{}", ran.both());
    let report = ran.json();
    let problem = finding(&report, "config.problem");
    assert_eq!(problem["level"], "fail");
    assert_eq!(
        problem["evidence"]["origin"],
        account.config().display().to_string()
    );
    assert_eq!(problem["evidence"]["line"], 3);
    assert_eq!(problem["evidence"]["key"], "queue.max_entries");
    // The command line's own words (`doctor --json`) are not taken for settings.
    let problems: Vec<&Value> = report["findings"]
        .as_array()
        .map(|f| f.iter().filter(|f| f["code"] == "config.problem").collect())
        .unwrap_or_default();
    assert_eq!(problems.len(), 1, "{report:#}");
    Ok(())
}

/// A queue in `data` with one refused attempt creation of [`STUDENT`] (the server's reply and
/// the error name them) and one answer of theirs waiting; the refused entry's id.
fn queue_with_a_dead_letter(data: &Path, origin: &str) -> Result<i64> {
    let queue = Queue::open(&data.join("exam-desktop.db"), Limits::default())?;
    let owner = Owner::new(origin, STUDENT);
    let start = queue.enqueue(
        NewEntry::start_attempt("exam-7", "att-9", "2025-01-01T00:00:00Z").owned_by(&owner),
    )?;
    anyhow::ensure!(queue.claim(10)?.len() == 1);
    queue.complete(&[(
        start.id,
        Outcome::Dead {
            status: 409,
            body: format!(r#"{{"detail":"{STUDENT} already has an attempt at exam-7"}}"#),
            error: format!("refused: {STUDENT} already has an attempt"),
        },
    )])?;
    queue.enqueue(
        NewEntry::answer(
            "att-9",
            "q1",
            serde_json::json!("B"),
            "2025-01-01T00:00:01Z",
        )
        .owned_by(&owner),
    )?;
    Ok(start.id)
}

#[test]
fn doctor_queue_tools_list_export_and_retry_without_naming_the_student() -> Result<()> {
    let server = ExamServer::start()?;
    let account = Account::new(false)?;
    account.configure(&server.url())?;
    let origin = server.url().trim_end_matches('/').to_string();
    let dead = queue_with_a_dead_letter(&account.data(), &origin)?;

    let list = account.run(&["queue", "list"])?;
    assert_eq!(list.code, 0, "{}", list.both());
    assert!(list.stdout.contains("dead (409)"), "{}", list.stdout);
    assert!(
        list.stdout.contains("exam-7") && list.stdout.contains("att-9"),
        "{}",
        list.stdout
    );
    let json = account.run(&["queue", "list", "--json"])?;
    let items = json.json()["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "{}", json.stdout);
    assert!(items
        .iter()
        .any(|i| i["id"] == dead && i["state"] == "dead"));

    let doctor = account.run(&["doctor", "--json"])?;
    let report = doctor.json();
    assert_eq!(finding(&report, "queue.dead_letters")["level"], "warn");
    assert_eq!(finding(&report, "queue.waiting")["evidence"]["students"], 1);

    // While the app holds the database, nothing that changes the queue runs.
    let app = exam_core::store::Store::open_in(&account.data())?;
    let refused = account.run(&["queue", "retry", "--all"])?;
    assert_eq!(refused.code, 2, "{}", refused.both());
    assert!(refused.stderr.contains("is running"), "{}", refused.stderr);
    let while_running = account.run(&["queue", "list"])?;
    assert_eq!(while_running.code, 0, "reading works while the app runs");
    drop(app);

    let out = account.home.path().join("refused.json");
    let export = account.run(&["queue", "export", "--out", &out.display().to_string()])?;
    assert_eq!(export.code, 0, "{}", export.both());
    let exported = std::fs::read_to_string(&out)?;
    let letters: Value = serde_json::from_str(&exported)?;
    assert_eq!(letters.as_array().map(Vec::len), Some(1));
    assert!(
        exported.contains("<student> already has an attempt"),
        "{exported}"
    );
    let again = account.run(&["queue", "export", "--out", &out.display().to_string()])?;
    assert_eq!(again.code, 2, "an export never overwrites a file");

    let unknown = account.run(&["queue", "retry", "999999"])?;
    assert_eq!(unknown.code, 2, "{}", unknown.both());
    let retry = account.run(&["queue", "retry", "--all"])?;
    assert_eq!(retry.code, 0, "{}", retry.both());
    assert!(retry.stdout.contains(&dead.to_string()), "{}", retry.stdout);

    // Back in the queue, still its own student's.
    let conn = rusqlite::Connection::open(account.data().join("exam-desktop.db"))?;
    let (status, student): (String, String) = conn.query_row(
        "SELECT status, student FROM queue WHERE id = ?1",
        [dead],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert_eq!((status.as_str(), student.as_str()), ("pending", STUDENT));

    for output in [
        list.both(),
        json.both(),
        doctor.both(),
        refused.both(),
        export.both(),
        exported,
        unknown.both(),
        retry.both(),
    ] {
        assert!(!output.contains(STUDENT), "a student is named:\n{output}");
    }
    Ok(())
}

#[test]
fn doctor_purge_refuses_with_waiting_work_and_removes_everything_once_delivered() -> Result<()> {
    let server = ExamServer::start()?;
    let account = Account::new(true)?;
    account.configure(&server.url())?;
    let origin = server.url().trim_end_matches('/').to_string();
    let queue = Queue::open(&account.data().join("exam-desktop.db"), Limits::default())?;
    let owner = Owner::new(origin.as_str(), STUDENT);
    let answer = queue.enqueue(
        NewEntry::answer(
            "att-1",
            "q1",
            serde_json::json!("A"),
            "2025-01-01T00:00:00Z",
        )
        .owned_by(&owner),
    )?;
    std::fs::create_dir_all(account.data().join("logs"))?;
    std::fs::write(account.data().join("logs/exam-desktop.log"), b"a line\n")?;
    let entries = [
        format!("{origin} refresh-token {STUDENT}"),
        format!("{origin} answer-key {STUDENT}"),
    ];
    for entry in &entries {
        account.store_secret(entry)?;
    }

    // The queue holds the database open, as the running app does.
    let running = account.run(&["doctor", "--purge", "--yes", "--force"])?;
    assert_eq!(running.code, 2, "{}", running.both());
    assert!(running.stderr.contains("is running"), "{}", running.stderr);

    // Closed, with an answer not yet delivered.
    drop(queue);
    let refused = account.run(&["doctor", "--purge", "--yes"])?;
    assert_eq!(refused.code, 2, "{}", refused.both());
    assert!(
        refused.stdout.contains("WAITING WORK: 1 item(s)"),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stderr.contains("exam-desktop queue export"),
        "{}",
        refused.stderr
    );
    assert!(
        account.data().join("exam-desktop.db").exists(),
        "nothing was removed"
    );
    assert!(account.has_secret(&entries[0])?, "nothing was removed");

    // Delivered: nothing waits any more.
    let queue = Queue::open(&account.data().join("exam-desktop.db"), Limits::default())?;
    let claimed: Vec<i64> = queue.claim(10)?.iter().map(|c| c.id).collect();
    assert_eq!(claimed, [answer.id]);
    queue.complete(&[(
        answer.id,
        Outcome::Done {
            status: 200,
            body: "{}".into(),
        },
    )])?;
    drop(queue);

    let dry = account.run(&["doctor", "--purge"])?;
    assert_eq!(dry.code, 0, "{}", dry.both());
    assert!(
        dry.stdout.contains(&account.data().display().to_string()),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("exam-desktop.db"), "{}", dry.stdout);
    assert!(dry.stdout.contains("logs/ (1 files"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("2 entries in the OS keychain"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("Nothing was removed"), "{}", dry.stdout);
    assert!(account.data().exists());

    let done = account.run(&["doctor", "--purge", "--yes"])?;
    assert_eq!(done.code, 0, "{}", done.both());
    assert!(!account.data().exists(), "{}", done.both());
    for entry in &entries {
        assert!(
            !account.has_secret(entry)?,
            "{entry} is still in the keychain"
        );
    }
    for output in [running.both(), refused.both(), dry.both(), done.both()] {
        assert!(!output.contains(STUDENT), "a student is named:\n{output}");
        assert!(
            !output.contains("secret-value"),
            "a secret was shown:\n{output}"
        );
    }
    let again = account.run(&["doctor", "--purge", "--yes"])?;
    assert_eq!(again.code, 0, "{}", again.both());
    assert!(
        again
            .stdout
            .contains("Nothing of Exam Bank Desktop's is left"),
        "{}",
        again.stdout
    );
    Ok(())
}

#[test]
fn doctor_help_and_a_wrong_command_line_open_no_window() -> Result<()> {
    let account = Account::new(false)?;
    let help = account.run(&["--help"])?;
    assert_eq!(help.code, 0);
    for line in [
        "exam-desktop doctor [--json]",
        "queue retry (ID | --all)",
        "Exit status:",
    ] {
        assert!(help.stdout.contains(line), "{}", help.stdout);
    }
    let codes = account.run(&["doctor", "--codes"])?;
    assert_eq!(codes.code, 0);
    assert!(
        codes.stdout.contains("server.unreachable"),
        "{}",
        codes.stdout
    );
    let wrong = account.run(&["queue", "shuffle"])?;
    assert_eq!(wrong.code, 64, "{}", wrong.both());
    assert!(wrong.stderr.contains("unknown command"), "{}", wrong.stderr);
    Ok(())
}
