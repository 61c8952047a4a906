//! What the app is and how it is configured.

use exam_core::config::{ConfigProblem, ConfigSource, EffectiveValue};
use serde::Serialize;

use crate::state::AppState;

#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct AppInfo {
    pub version: String,
    /// Where answers, queues and logs are kept on this computer.
    pub data_dir: String,
    /// The Exam Bank server this app talks to.
    pub server_url: String,
    /// Every configuration layer, lowest first, and what it contributed.
    pub config_sources: Vec<ConfigSource>,
    /// Keys the school's managed configuration locks.
    pub locked_keys: Vec<String>,
    /// Malformed configuration; while any is present the app shows it instead of the exam.
    pub config_problems: Vec<ConfigProblem>,
    /// Every key's value and the layer (file, policy, registry key…) it comes from.
    pub settings: Vec<EffectiveValue>,
    pub log_file: Option<String>,
}

#[tauri::command]
#[specta::specta]
pub fn app_info(state: tauri::State<'_, AppState>) -> AppInfo {
    let config = state.core.config();
    AppInfo {
        version: exam_core::VERSION.to_string(),
        data_dir: config.settings.data_dir.display().to_string(),
        server_url: config.settings.server_url.to_string(),
        config_sources: config.sources.clone(),
        locked_keys: config.locked.clone(),
        config_problems: config.problems.clone(),
        settings: exam_core::config::effective_values(config),
        log_file: state.log_file.as_ref().map(|p| p.display().to_string()),
    }
}

/// A key or a click in the main window: the student is at the computer (the core signs
/// out after a time without any, outside an exam).
#[tauri::command]
#[specta::specta]
pub fn note_activity(state: tauri::State<'_, AppState>) {
    state.core.note_activity();
}

/// The language the student chose in the UI (`en` or `vi`), for desktop notifications.
#[tauri::command]
#[specta::specta]
pub fn set_ui_language(state: tauri::State<'_, AppState>, language: String) {
    state.language.set(&language);
}

/// What the updater is doing (the status window, diagnostics); `None` before it started.
#[tauri::command]
#[specta::specta]
pub fn update_status(
    state: tauri::State<'_, AppState>,
) -> Option<exam_core::update::status::UpdateStatus> {
    state.update.get().map(|u| (u.status)())
}

/// "Check now" in the status window: the updater asks the update server at its next step
/// (within a minute); installing still waits for the gate.
#[tauri::command]
#[specta::specta]
pub fn update_check_now(state: tauri::State<'_, AppState>) {
    if let Some(update) = state.update.get() {
        (update.check_soon)();
    }
}
