//! The offline queue, the network and the sync engine, as windows see and control them.

use exam_core::app::SyncStatus;
use exam_core::exam::RefusedItem;

use crate::error::IpcError;
use crate::state::AppState;

#[tauri::command]
#[specta::specta]
pub fn sync_status(state: tauri::State<'_, AppState>) -> Result<SyncStatus, IpcError> {
    Ok(state.core.sync_status()?)
}

/// Pauses sending; work keeps being saved on this computer.
#[tauri::command]
#[specta::specta]
pub fn sync_pause(state: tauri::State<'_, AppState>) -> Result<SyncStatus, IpcError> {
    Ok(state.core.sync_pause()?)
}

#[tauri::command]
#[specta::specta]
pub fn sync_resume(state: tauri::State<'_, AppState>) -> Result<SyncStatus, IpcError> {
    Ok(state.core.sync_resume()?)
}

/// Sends everything now: waiting retries become due, and the network is probed at once.
#[tauri::command]
#[specta::specta]
pub fn sync_now(state: tauri::State<'_, AppState>) -> Result<SyncStatus, IpcError> {
    Ok(state.core.sync_now()?)
}

/// What the server refused, newest first, named by exam and question.
#[tauri::command]
#[specta::specta]
pub fn dead_letters(state: tauri::State<'_, AppState>) -> Result<Vec<RefusedItem>, IpcError> {
    Ok(state.core.dead_letters()?)
}

/// Puts a dead letter back in the queue, by hand.
#[tauri::command]
#[specta::specta]
pub fn retry_dead_letter(state: tauri::State<'_, AppState>, id: f64) -> Result<(), IpcError> {
    Ok(state.core.retry_dead_letter(id as i64)?)
}

/// Writes every dead letter to `<data_dir>/exports/dead-letters-<time>.json`; the path.
#[tauri::command]
#[specta::specta]
pub fn export_dead_letters(state: tauri::State<'_, AppState>) -> Result<String, IpcError> {
    Ok(state.core.export_dead_letters()?.display().to_string())
}
