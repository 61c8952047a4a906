//! `exam-desktop doctor` against its budgets, as IT runs it: the built binary (no window),
//! a fresh data folder, a private Secret Service, and the reference server — reachable,
//! refusing connections, and black-holed behind a link that takes connections and never
//! answers (the slowest case: the request's own timeout).
//!
//! Budgets: doctor ≤ 2 s reachable / ≤ 5 s unreachable.
//!
//! `cargo bench --bench doctor` (needs what `make test` installs: dbus, gnome-keyring).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fault_proxy::{FaultProxy, Link};

const APP: &str = env!("CARGO_BIN_EXE_exam-desktop");
const REACHABLE_BUDGET_S: f64 = 2.0;
const UNREACHABLE_BUDGET_S: f64 = 5.0;

/// Runs `doctor --json` against `server` `n` times; the seconds each took, sorted, and the
/// last exit status.
fn doctor(
    home: &std::path::Path,
    bus: &str,
    server: &str,
    n: usize,
) -> anyhow::Result<(Vec<f64>, i32)> {
    let config = home.join("config.toml");
    std::fs::write(&config, format!("server_url = \"{server}\"\n"))?;
    let mut took = Vec::with_capacity(n);
    let mut code = 0;
    for _ in 0..n {
        let started = Instant::now();
        let output = Command::new(APP)
            .args(["doctor", "--json"])
            .env_remove("EXAM_DESKTOP_SERVER")
            .env_remove("DISPLAY")
            .env("EXAM_DESKTOP_DATA_DIR", home.join("data"))
            .env("EXAM_DESKTOP_CONFIG", &config)
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()?;
        took.push(started.elapsed().as_secs_f64());
        code = output.status.code().unwrap_or(-1);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        anyhow::ensure!(report["findings"].is_array(), "not a report: {report}");
    }
    took.sort_by(f64::total_cmp);
    Ok((took, code))
}

fn line(what: &str, took: &[f64], budget: f64, code: i32) {
    let median = took[took.len() / 2];
    let max = took[took.len() - 1];
    println!(
        "  {what:<24} median {median:.2} s, max {max:.2} s of {} runs (budget {budget:.0} s{}), exit {code}",
        took.len(),
        if max <= budget { "" } else { ": OVER" }
    );
}

fn main() -> anyhow::Result<()> {
    let home = tempfile::tempdir()?;
    let (bus, _bus) = support::session_bus(home.path())?;
    let _keyring = support::keyring(&bus, home.path())?;
    let server = support::ExamServer::start()?;

    println!("doctor ≤ 2 s reachable / ≤ 5 s unreachable (the built binary, `doctor --json`):");
    // The first run pays for loading the binary from disk: not counted.
    doctor(home.path(), &bus, &server.url(), 1)?;
    let (took, code) = doctor(home.path(), &bus, &server.url(), 10)?;
    line("reachable", &took, REACHABLE_BUDGET_S, code);

    let closed = support::free_port()?;
    let (took, code) = doctor(home.path(), &bus, &format!("http://127.0.0.1:{closed}/"), 5)?;
    line("refused", &took, UNREACHABLE_BUDGET_S, code);

    let proxy = FaultProxy::start(server.addr)?;
    proxy.set_link(Link::Blackhole);
    let (took, code) = doctor(home.path(), &bus, &proxy.url(), 3)?;
    line("black-holed", &took, UNREACHABLE_BUDGET_S, code);
    drop(proxy);
    std::thread::sleep(Duration::from_millis(50));
    Ok(())
}
