//! What the shell keeps for the lifetime of the app.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use exam_core::auth::{AuthWorker, TokenManager};
use exam_core::bus::{CoreEvent, EventBus};
use exam_core::config::LoadedConfig;

use crate::probe::EventProbe;
use crate::windows::StatusWindowOpener;

/// The offline queue, the network monitor, the sync engine and the exams on top of them.
pub struct Offline {
    pub queue: exam_core::queue::Queue,
    pub monitor: Option<std::sync::Arc<exam_core::network::NetworkMonitor>>,
    pub engine: exam_core::sync::SyncEngine,
    pub exams: exam_core::exam::ExamService,
    /// Reads what the server did with queued exam work as sync progresses.
    pub exam_watcher: exam_core::exam::Watcher,
}

pub struct AppState {
    pub config: LoadedConfig,
    pub log_file: Option<PathBuf>,
    pub bus: EventBus,
    pub auth: TokenManager,
    /// The background refresher, stopped when the app exits.
    pub auth_worker: Mutex<Option<AuthWorker>>,
    /// Times core events to the windows (diagnostics).
    pub probe: EventProbe,
    /// The queue and sync, or why they could not start (shown to the student).
    pub offline: Result<Offline, String>,
    /// Opens status windows (set when the app starts).
    pub status_window_opener: OnceLock<StatusWindowOpener>,
    /// The UI's language, for desktop notifications.
    pub language: crate::notify::Language,
}

impl AppState {
    pub fn new(
        config: LoadedConfig,
        log_file: Option<PathBuf>,
        bus: EventBus,
        auth: TokenManager,
        offline: Result<Offline, String>,
    ) -> Self {
        Self {
            config,
            log_file,
            bus,
            auth,
            auth_worker: Mutex::new(None),
            probe: EventProbe::default(),
            offline,
            status_window_opener: OnceLock::new(),
            language: crate::notify::Language::default(),
        }
    }

    /// Every state a window shows, as the events that carry it: the sign-in, the network,
    /// sync progress and (for the attempt on this computer) a nudge to read it again. Sent
    /// to windows that fell behind.
    pub fn snapshot_events(&self) -> Vec<CoreEvent> {
        let mut events = vec![CoreEvent::AuthChanged {
            snapshot: self.auth.snapshot(),
        }];
        if let Ok(offline) = &self.offline {
            if let Some(monitor) = &offline.monitor {
                events.push(CoreEvent::NetworkChanged {
                    status: monitor.status(),
                });
            }
            events.push(CoreEvent::SyncProgress {
                progress: offline.engine.progress(),
            });
            if let Ok(Some(attempt_id)) = offline.exams.current_id() {
                events.push(CoreEvent::ExamChanged { attempt_id });
            }
        }
        events
    }
}
