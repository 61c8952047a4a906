//! The offline queue, the network and the sync engine, as windows see and control them.

use exam_core::exam::RefusedItem;
use exam_core::network::{NetStatus, Outage};
use exam_core::queue::QueueCounts;
use exam_core::sync::{SyncProgress, SyncStats};
use serde::Serialize;

use crate::error::IpcError;
use crate::state::{AppState, Offline};

/// Everything the sync panel shows.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct SyncStatus {
    pub network: Option<NetStatus>,
    pub progress: SyncProgress,
    pub stats: SyncStats,
    pub queue: QueueCounts,
    /// The newest outages first.
    pub outages: Vec<Outage>,
}

fn offline(state: &AppState) -> Result<&Offline, IpcError> {
    state
        .offline
        .as_ref()
        .map_err(|message| IpcError::Internal {
            message: message.clone(),
        })
}

fn queue_error(error: exam_core::queue::QueueError) -> IpcError {
    IpcError::Internal {
        message: error.to_string(),
    }
}

fn status_of(offline: &Offline) -> Result<SyncStatus, IpcError> {
    Ok(SyncStatus {
        network: offline.monitor.as_ref().map(|m| m.status()),
        progress: offline.engine.progress(),
        stats: offline.engine.stats(),
        queue: offline.queue.counts().map_err(queue_error)?,
        outages: exam_core::network::outages(offline.queue.store(), 5).map_err(|e| {
            IpcError::Internal {
                message: e.to_string(),
            }
        })?,
    })
}

#[tauri::command]
#[specta::specta]
pub fn sync_status(state: tauri::State<'_, AppState>) -> Result<SyncStatus, IpcError> {
    status_of(offline(&state)?)
}

/// Pauses sending; work keeps being saved on this computer.
#[tauri::command]
#[specta::specta]
pub fn sync_pause(state: tauri::State<'_, AppState>) -> Result<SyncStatus, IpcError> {
    let offline = offline(&state)?;
    offline.engine.pause();
    status_of(offline)
}

#[tauri::command]
#[specta::specta]
pub fn sync_resume(state: tauri::State<'_, AppState>) -> Result<SyncStatus, IpcError> {
    let offline = offline(&state)?;
    offline.engine.resume();
    status_of(offline)
}

/// Sends everything now: waiting retries become due, and the network is probed at once.
#[tauri::command]
#[specta::specta]
pub fn sync_now(state: tauri::State<'_, AppState>) -> Result<SyncStatus, IpcError> {
    let offline = offline(&state)?;
    if let Some(monitor) = &offline.monitor {
        monitor.probe_now();
    }
    offline.engine.sync_now();
    status_of(offline)
}

/// What the server refused, newest first, named by exam and question.
#[tauri::command]
#[specta::specta]
pub fn dead_letters(state: tauri::State<'_, AppState>) -> Result<Vec<RefusedItem>, IpcError> {
    offline(&state)?
        .exams
        .refused_items(200)
        .map_err(IpcError::from)
}

/// Puts a dead letter back in the queue, by hand.
#[tauri::command]
#[specta::specta]
pub fn retry_dead_letter(state: tauri::State<'_, AppState>, id: f64) -> Result<(), IpcError> {
    let offline = offline(&state)?;
    offline.queue.retry_dead(id as i64).map_err(queue_error)?;
    offline.engine.notify();
    Ok(())
}

/// Writes every dead letter to `<data_dir>/exports/dead-letters-<time>.json`; the path.
#[tauri::command]
#[specta::specta]
pub fn export_dead_letters(state: tauri::State<'_, AppState>) -> Result<String, IpcError> {
    let json = offline(&state)?.queue.export_dead().map_err(queue_error)?;
    let dir = state.config.settings.data_dir.join("exports");
    let stamp = exam_core::now_rfc3339().replace(':', "-");
    let path = dir.join(format!("dead-letters-{stamp}.json"));
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, json))
        .map_err(|e| IpcError::Internal {
            message: format!("cannot write {}: {e}", path.display()),
        })?;
    Ok(path.display().to_string())
}
