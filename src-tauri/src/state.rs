//! What the shell keeps for the lifetime of the app.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use exam_core::auth::{AuthWorker, TokenManager};
use exam_core::bus::EventBus;
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
}
