//! The core of Exam Bank Desktop: everything that is not the Tauri shell.
//!
//! The core never depends on Tauri, so it can be tested on its own, run headless, and
//! reused by tools. It reaches the outside world through small traits it owns; the shell
//! only converts arguments, calls in here and maps errors.

pub mod analytics;
pub mod app;
pub mod auth;
pub mod backoff;
pub mod bus;
pub mod clock;
pub mod config;
pub mod doctor;
pub mod exam;
pub mod files;
pub mod http;
pub mod keychain;
pub mod keys;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod network;
pub mod owner;
pub mod presence;
pub mod queue;
pub mod reason;
pub mod seal;
pub mod secret;
pub mod security;
pub mod store;
pub mod sync;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod update;

/// The product's version, the same for the core, the shell and the installers.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Now as an RFC 3339 UTC timestamp with milliseconds (the API's time format).
pub fn now_rfc3339() -> String {
    clock::rfc3339(clock::now_ms())
}

/// Where the platform keeps this application's per-user data and configuration.
pub(crate) fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("org", "Exam Bank", "exam-desktop")
}
