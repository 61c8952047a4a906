//! The Analytics panel of the status window: this computer's history charted over a range,
//! its insights and when the waiting work will have been sent. Live updates come as the
//! core's `history_tick` events.

use std::time::Duration;

use exam_core::analytics::Overview;

use crate::error::IpcError;
use crate::state::AppState;

/// The dashboard over the last `range_s` seconds (at most 90 days); none when this computer
/// keeps no history.
#[tauri::command]
#[specta::specta]
pub async fn analytics_overview(
    state: tauri::State<'_, AppState>,
    range_s: u32,
) -> Result<Option<Overview>, IpcError> {
    // A few thousand rows of the history's own file at most (7 days of minutes): read here.
    let range = Duration::from_secs(u64::from(range_s.min(90 * 86_400)));
    Ok(state.core.analytics_overview(range)?)
}
