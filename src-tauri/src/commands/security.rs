//! The Security panel of the status window: what this computer checks, the policy in force,
//! what the checks find now, and everything reported about the signed-in student here.

use exam_core::security::{SecurityPolicy, SecurityReport, SecuritySnapshot};
use serde::Serialize;

use crate::error::IpcError;
use crate::state::AppState;

/// Everything the Security panel shows.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct SecurityStatus {
    pub now: SecuritySnapshot,
    pub policy: SecurityPolicy,
    /// What was reported about the signed-in student on this computer, newest first.
    pub reports: Vec<SecurityReport>,
    /// How long a process scan takes here (µs, p50 and p99).
    pub scan_p50_us: f64,
    pub scan_p99_us: f64,
}

#[tauri::command]
#[specta::specta]
pub async fn security_status(
    state: tauri::State<'_, AppState>,
) -> Result<SecurityStatus, IpcError> {
    let security = &state.core.services()?.security;
    let reports = state
        .core
        .auth()
        .owner()
        .map(|owner| security.reports_of(&owner))
        .unwrap_or_default();
    let scans = security.scan_times();
    Ok(SecurityStatus {
        now: security.snapshot(),
        policy: security.policy().clone(),
        reports,
        scan_p50_us: scans.p50_us,
        scan_p99_us: scans.p99_us,
    })
}
