//! Status and diagnostics windows: the UI opens as many as wanted (`diagnostics-*`
//! windows, see capabilities/diagnostics.json); all are fed by the same core.

use std::time::Duration;

use exam_core::auth::health::HealthReport;

use crate::error::IpcError;
use crate::probe::DeliveryReport;
use crate::state::AppState;

/// The health report of sign-in and tokens.
#[tauri::command]
#[specta::specta]
pub fn diagnostics(state: tauri::State<'_, AppState>) -> HealthReport {
    state.core.health()
}

/// Measures how fast core events reach every open window: `rounds` pings, each answered
/// by every window (see [`crate::probe`]).
#[tauri::command]
#[specta::specta]
pub async fn measure_event_delivery(
    state: tauri::State<'_, AppState>,
    rounds: u32,
    answer_after_ms: u32,
) -> Result<DeliveryReport, IpcError> {
    if !(1..=10_000).contains(&rounds) {
        return Err(IpcError::internal(format!(
            "rounds must be between 1 and 10000, not {rounds}"
        )));
    }
    Ok(state
        .probe
        .measure(
            state.core.bus(),
            rounds,
            answer_after_ms.min(1000),
            Duration::from_secs(2) + Duration::from_millis(u64::from(answer_after_ms.min(1000))),
        )
        .await)
}

/// A window's answer to a ping: when it received it (ms since the epoch, its own clock).
#[tauri::command]
#[specta::specta]
pub fn ack_event(state: tauri::State<'_, AppState>, id: u32, window: String, received_ms: f64) {
    state.probe.ack(id, &window, received_ms);
}

/// Opens another status window; its label. See [`crate::windows::open_status_window`].
#[tauri::command]
#[specta::specta]
pub async fn open_status_window(state: tauri::State<'_, AppState>) -> Result<String, IpcError> {
    let opener = state
        .status_window_opener
        .get()
        .ok_or_else(|| IpcError::internal("windows cannot be opened yet"))?;
    opener().await
}
