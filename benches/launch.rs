//! Launch → interactive, in the real app: the release build under Xvfb, started by
//! tauri-driver (as a student's double-click would start it), against the reference server.
//! "Interactive" is the moment the first screen is on the page with the core's answers in it
//! (app information and the session): the UI writes the time on `<html data-interactive-at>`.
//! Measured from just before the WebDriver session asks for the app, so the driver's own
//! start-up counts against the app. Budget: ≤ 500 ms (`chromium --app`: 493 ms to load).
//!
//! `cargo bench --bench launch` (needs what `make test` installs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BUDGET_MS: f64 = 500.0;
const RUNS: usize = 7;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// When the running app's process started (ms since the epoch, 10 ms steps), from /proc.
fn process_start_ms() -> anyhow::Result<f64> {
    let out = std::process::Command::new("pgrep")
        .args(["-o", "-f", support::APP])
        .output()?;
    let pid = String::from_utf8(out.stdout)?.trim().to_string();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Field 22 (starttime, clock ticks after boot), counted after the command's ")".
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let ticks: f64 = after
        .split_whitespace()
        .nth(19)
        .ok_or_else(|| anyhow::anyhow!("no start time in {stat}"))?
        .parse()?;
    // Its age now (uptime minus its start, both since boot; USER_HZ is 100 on Linux).
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")?
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no uptime"))?
        .parse()?;
    Ok(now_ms() - (uptime - ticks / 100.0) * 1000.0)
}

fn main() -> anyhow::Result<()> {
    let (_server, _data, harness) = support::against_demo_server()?;
    let mut took = Vec::new();
    let mut from_process = Vec::new();
    let mut native = Vec::new();
    for run in 0..RUNS {
        let start = now_ms();
        let session = harness.session()?;
        let at: f64 = session
            .attribute("html[data-interactive-at]", "data-interactive-at")?
            .parse()?;
        took.push(at - start);
        let process = process_start_ms()?;
        from_process.push(at - process);
        let page: f64 = session
            .attribute("html[data-interactive-at]", "data-page-start-at")?
            .parse()?;
        native.push(page - process);
        if run == 0 {
            support::screenshot(&harness.display, "bench-launch.png")?;
        }
        drop(session);
        // The next launch starts from nothing running.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::process::Command::new("pgrep")
            .args(["-f", support::APP])
            .output()?
            .status
            .success()
        {
            anyhow::ensure!(std::time::Instant::now() < deadline, "the app did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    from_process.sort_by(f64::total_cmp);
    native.sort_by(f64::total_cmp);
    println!(
        "  of which process start → the page starts loading (Rust setup, webview, web process): median {:.0} ms",
        native[native.len() / 2]
    );
    println!(
        "process start → interactive (the app's own share, /proc start time in 10 ms steps): median {:.0} ms, min {:.0} ms, max {:.0} ms over {RUNS} launches",
        from_process[from_process.len() / 2],
        from_process[0],
        from_process[from_process.len() - 1]
    );
    let first = took[0];
    let mut warm = took[1..].to_vec();
    warm.sort_by(f64::total_cmp);
    let median = warm[warm.len() / 2];
    println!(
        "launch → interactive (release app, sign-in screen ready): first launch {first:.0} ms; next {} launches median {median:.0} ms, max {:.0} ms   (budget ≤ {BUDGET_MS} ms: {}; chromium --app 493 ms to load)",
        warm.len(),
        warm[warm.len() - 1],
        if median <= BUDGET_MS { "met" } else { "MISSED" }
    );
    Ok(())
}
