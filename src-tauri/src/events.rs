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

/// Forwards until the bus closes. A window that lagged is sent a full snapshot of every
/// state windows show ([`crate::state::AppState::snapshot_events`]), so no window stays
/// behind on any of them.
pub fn forward<R: Runtime>(
    app: AppHandle<R>,
    bus: &EventBus,
    snapshot: impl Fn() -> Vec<CoreEvent> + Send + 'static,
) {
    let mut rx = bus.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let Some(events) = to_windows(rx.recv().await, &snapshot) else {
                break;
            };
            for event in events {
                if let Err(error) = CoreEventMessage(event).emit(&app) {
                    tracing::error!(%error, "could not forward a core event");
                }
            }
        }
    });
}

/// What the windows are sent for what the bus gave: the event itself; after a lag, the
/// snapshot instead of what was missed; `None` when the bus closed.
pub fn to_windows(
    received: Result<CoreEvent, RecvError>,
    snapshot: &impl Fn() -> Vec<CoreEvent>,
) -> Option<Vec<CoreEvent>> {
    match received {
        Ok(event) => Some(vec![event]),
        Err(RecvError::Lagged(missed)) => {
            tracing::warn!(
                missed,
                "windows fell behind the core; sending a full snapshot"
            );
            Some(snapshot())
        }
        Err(RecvError::Closed) => None,
    }
}
