//! Where a launch spends its time: [`run`](crate::run) notes each step of starting up, and
//! the first call of each command the first screen makes, on the wall clock the page's own
//! timings use (ms since the Unix epoch), so `cargo bench --bench launch` can line them up
//! with the process start and the page's navigation timings.
//!
//! Steps noted before logging is set up are kept and logged as soon as it is. Lines go out
//! at debug level under the `exam_desktop::startup` target
//! (`RUST_LOG=info,exam_desktop::startup=debug`).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Firsts are noted only this long after the start: afterwards they are not part of the
/// launch.
const WINDOW_SECS: u64 = 10;

struct Clock {
    started: Instant,
    started_epoch_ms: f64,
}

#[derive(Default)]
struct Notes {
    /// Steps noted before logging was set up.
    pending: Vec<(&'static str, f64, f64)>,
    logging: bool,
    seen: HashSet<String>,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();
static NOTES: Mutex<Option<Notes>> = Mutex::new(None);

/// Starts the clock (the first line of `run`).
pub fn begin() {
    CLOCK.get_or_init(|| Clock {
        started: Instant::now(),
        started_epoch_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
    });
    step("main");
}

/// (ms since the epoch, ms since [`begin`]) now.
fn now() -> Option<(f64, f64)> {
    let clock = CLOCK.get()?;
    let since = clock.started.elapsed().as_secs_f64() * 1000.0;
    Some((clock.started_epoch_ms + since, since))
}

fn emit(step: &str, at_ms: f64, since_main_ms: f64) {
    tracing::debug!(
        target: "exam_desktop::startup",
        step,
        at_ms = format!("{at_ms:.3}"),
        since_main_ms = format!("{since_main_ms:.3}"),
        "startup step"
    );
}

/// Notes that startup reached `step`.
pub fn step(step: &'static str) {
    let Some((at, since)) = now() else {
        return;
    };
    let mut notes = NOTES.lock().unwrap_or_else(|p| p.into_inner());
    let notes = notes.get_or_insert_with(Notes::default);
    if notes.logging {
        emit(step, at, since);
    } else {
        notes.pending.push((step, at, since));
    }
}

/// Logging is set up: the steps noted so far are logged now.
pub fn logging_ready() {
    let pending = {
        let mut notes = NOTES.lock().unwrap_or_else(|p| p.into_inner());
        let notes = notes.get_or_insert_with(Notes::default);
        notes.logging = true;
        std::mem::take(&mut notes.pending)
    };
    for (step, at, since) in pending {
        emit(step, at, since);
    }
    self::step("logging");
}

/// Notes the first time `what` happens during the launch (a command called, the page
/// loaded).
pub fn first(what: &str) {
    let Some((at, since)) = now() else {
        return;
    };
    if since > (WINDOW_SECS * 1000) as f64 {
        return;
    }
    let mut notes = NOTES.lock().unwrap_or_else(|p| p.into_inner());
    let notes = notes.get_or_insert_with(Notes::default);
    if notes.logging && notes.seen.insert(what.to_string()) {
        emit(what, at, since);
    }
}
