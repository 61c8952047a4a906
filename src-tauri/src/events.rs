//! Core events to windows: the shell subscribes to the core's bus once and forwards every
//! event, typed, to every window.

use exam_core::app::Core;
use exam_core::bus::CoreEvent;
use serde::Serialize;
use tauri::{AppHandle, Runtime};
use tauri_specta::Event;
use tokio::sync::broadcast::error::RecvError;

/// A core event as windows receive it.
#[derive(Debug, Clone, Serialize, specta::Type, tauri_specta::Event)]
pub struct CoreEventMessage(pub CoreEvent);

/// Forwards, as one of the core's workers, until the core stops. A window that lagged is
/// sent a full snapshot of every state windows show
/// ([`exam_core::app::Core::snapshot_events`]), so no window stays behind on any of them.
pub fn forward<R: Runtime>(
    app: AppHandle<R>,
    core: &Core,
    snapshot: impl Fn() -> Vec<CoreEvent> + Send + 'static,
) {
    let mut rx = core.bus().subscribe();
    core.workers()
        .spawn("window events", move |stop| async move {
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => break,
                    received = rx.recv() => received,
                };
                let Some(events) = to_windows(received, &snapshot) else {
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
