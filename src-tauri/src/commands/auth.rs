//! Sign-in, sign-out and the auth state every window shares. Tokens never cross IPC.

use exam_core::auth::AuthSnapshot;
use exam_core::secret::Secret;

use crate::error::IpcError;
use crate::state::AppState;

/// The current auth state; a window calls this when it opens or was hidden.
#[tauri::command]
#[specta::specta]
pub fn auth_snapshot(state: tauri::State<'_, AppState>) -> AuthSnapshot {
    state.core.auth_snapshot()
}

#[tauri::command]
#[specta::specta]
pub async fn sign_in(
    state: tauri::State<'_, AppState>,
    username: String,
    password: String,
) -> Result<AuthSnapshot, IpcError> {
    Ok(state.core.sign_in(&username, Secret::new(password)).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn sign_out(state: tauri::State<'_, AppState>) -> Result<AuthSnapshot, IpcError> {
    Ok(state.core.sign_out().await)
}

/// Refreshes the access token now (diagnostics and tests).
#[tauri::command]
#[specta::specta]
pub async fn force_refresh(state: tauri::State<'_, AppState>) -> Result<AuthSnapshot, IpcError> {
    Ok(state.core.force_refresh().await?)
}
