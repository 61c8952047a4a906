//! Core events to windows: the shell subscribes to the core's bus once and forwards every
//! event, typed, to every window.

use exam_core::bus::{CoreEvent, EventBus};
use serde::Serialize;
use tauri::{AppHandle, Runtime};
use tauri_specta::Event;
use tokio::sync::broadcast::error::RecvError;

/// A core event as windows receive it.
#[derive(Debug, Clone, Serialize, specta::Type, tauri_specta::Event)]
pub struct CoreEventMessage(pub CoreEvent);

/// Forwards until the bus closes. A window that lagged gets the current auth snapshot, so
/// no window stays behind.
pub fn forward<R: Runtime>(
    app: AppHandle<R>,
    bus: &EventBus,
    snapshot: impl Fn() -> exam_core::auth::AuthSnapshot + Send + 'static,
) {
    let mut rx = bus.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let event = match rx.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "windows fell behind the core; sending a snapshot");
                    CoreEvent::AuthChanged {
                        snapshot: snapshot(),
                    }
                }
                Err(RecvError::Closed) => break,
            };
            if let Err(error) = CoreEventMessage(event).emit(&app) {
                tracing::error!(%error, "could not forward a core event");
            }
        }
    });
}
