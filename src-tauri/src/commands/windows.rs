//! Status and diagnostics windows: the UI opens as many as wanted (`diagnostics-*`
//! windows, see capabilities/diagnostics.json); all are fed by the same core.

use exam_core::auth::health::HealthReport;

use crate::state::AppState;

/// The health report of sign-in and tokens.
#[tauri::command]
#[specta::specta]
pub fn diagnostics(state: tauri::State<'_, AppState>) -> HealthReport {
    state.auth.health()
}
