//! Integration and end-to-end tests of the app: the built binary under Xvfb, driven by
//! tauri-driver + WebKitWebDriver, against the real reference server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analytics_e2e;
mod doctor;
mod e2e;
mod exam_e2e;
mod fair_time_e2e;
mod network_e2e;
mod readiness_e2e;
mod sealed_e2e;
mod security_e2e;
mod shared_lab_e2e;
mod support;
mod update_e2e;
