//! Core events to windows: the shell subscribes to the core's bus once and forwards every
//! event, typed, to every window.
//!
//! Delivery costs one `eval` per window per event, and every `eval` is carried out on the
//! GTK main thread. Handed over one by one, each `eval` waits for its own turn of the main
//! loop, and the loop paints and answers the web process between turns: the tenth window
//! got its event several main-loop turns after the first. So the events that are waiting
//! on the bus go to the main thread together, in one task that hands every window its
//! `eval`s back to back (an `eval` issued on the main thread is carried out at once).

use exam_core::app::Core;
use exam_core::bus::CoreEvent;
use serde::Serialize;
use tauri::{AppHandle, Runtime};
use tauri_specta::Event;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

use crate::probe::Stage;

/// A core event as windows receive it.
#[derive(Debug, Clone, Serialize, specta::Type, tauri_specta::Event)]
pub struct CoreEventMessage(pub CoreEvent);

/// At most this many events go to the main thread in one task, so a burst cannot hold the
/// main loop (input, painting) for long.
pub const MAX_BATCH: usize = 64;

/// Where an event is on its way to the windows, told to the delivery probe.
pub type Marks = dyn Fn(&CoreEvent, Stage) + Send + Sync;

/// Forwards, as one of the core's workers, until the core stops. A window that lagged is
/// sent a full snapshot of every state windows show
/// ([`exam_core::app::Core::snapshot_events`]), so no window stays behind on any of them.
pub fn forward<R: Runtime>(
    app: AppHandle<R>,
    core: &Core,
    snapshot: impl Fn() -> Vec<CoreEvent> + Send + 'static,
    marks: std::sync::Arc<Marks>,
) {
    let mut rx = core.bus().subscribe();
    core.workers()
        .spawn("window events", move |stop| async move {
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => break,
                    received = rx.recv() => received,
                };
                let Some(first) = to_windows(received, &snapshot) else {
                    break;
                };
                let (events, open) = with_waiting(first, &mut rx, &snapshot);
                for event in &events {
                    marks(event, Stage::Forwarded);
                }
                deliver(&app, events, marks.clone());
                if !open {
                    break;
                }
            }
        });
}

/// Hands `events` to every window in one main-thread task, in order.
fn deliver<R: Runtime>(app: &AppHandle<R>, events: Vec<CoreEvent>, marks: std::sync::Arc<Marks>) {
    let handle = app.clone();
    let queued = app.run_on_main_thread(move || {
        for event in events {
            marks(&event, Stage::OnMainThread);
            let message = CoreEventMessage(event);
            if let Err(error) = message.emit(&handle) {
                tracing::error!(%error, "could not forward a core event");
            }
            marks(&message.0, Stage::Handed);
        }
    });
    if let Err(error) = queued {
        tracing::error!(%error, "could not forward core events to the main thread");
    }
}

/// `first`, then whatever else is already waiting on the bus (up to [`MAX_BATCH`] in all),
/// lags resolved as in [`to_windows`]; and whether the bus is still open.
pub fn with_waiting(
    mut events: Vec<CoreEvent>,
    rx: &mut Receiver<CoreEvent>,
    snapshot: &impl Fn() -> Vec<CoreEvent>,
) -> (Vec<CoreEvent>, bool) {
    while events.len() < MAX_BATCH {
        let received = match rx.try_recv() {
            Ok(event) => Ok(event),
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
            Err(TryRecvError::Closed) => return (events, false),
        };
        match to_windows(received, snapshot) {
            Some(more) => events.extend(more),
            None => return (events, false),
        }
    }
    (events, true)
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

#[cfg(test)]
mod tests {
    use exam_core::bus::EventBus;

    use super::*;

    fn ping(id: u32) -> CoreEvent {
        CoreEvent::Ping {
            id,
            sent_ms: 0.0,
            answer_after_ms: 0,
        }
    }

    fn ids(events: &[CoreEvent]) -> Vec<u32> {
        events
            .iter()
            .map(|e| match e {
                CoreEvent::Ping { id, .. } => *id,
                _ => 0,
            })
            .collect()
    }

    /// What waits on the bus goes in the same batch, in order, up to the cap; a lag is
    /// replaced by the snapshot; a closed bus is reported.
    #[test]
    fn waiting_events_join_the_batch() {
        let bus = EventBus::new(4);
        let mut rx = bus.subscribe();
        let snapshot = || vec![ping(0)];
        for id in 1..=3 {
            bus.publish(ping(id));
        }
        let (batch, open) = with_waiting(vec![ping(9)], &mut rx, &snapshot);
        assert_eq!((ids(&batch), open), (vec![9, 1, 2, 3], true));

        // Six on a bus of four: two were missed, so the snapshot comes first.
        for id in 1..=6 {
            bus.publish(ping(id));
        }
        let (batch, _) = with_waiting(vec![], &mut rx, &snapshot);
        assert_eq!(ids(&batch), vec![0, 3, 4, 5, 6]);

        bus.publish(ping(1));
        drop(bus);
        let (batch, open) = with_waiting(vec![], &mut rx, &snapshot);
        assert_eq!((ids(&batch), open), (vec![1], false));

        let bus = EventBus::new(2 * MAX_BATCH);
        let mut rx = bus.subscribe();
        for id in 0..(MAX_BATCH as u32 + 10) {
            bus.publish(ping(id));
        }
        let (batch, open) = with_waiting(vec![], &mut rx, &snapshot);
        assert_eq!((batch.len(), open), (MAX_BATCH, true));
        assert_eq!(rx.len(), 10);
    }
}
