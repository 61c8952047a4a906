//! What the shell keeps for the lifetime of the app.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use exam_core::auth::{AuthWorker, TokenManager};
use exam_core::bus::EventBus;
use exam_core::config::LoadedConfig;

use crate::probe::EventProbe;
use crate::windows::StatusWindowOpener;

pub struct AppState {
    pub config: LoadedConfig,
    pub log_file: Option<PathBuf>,
    pub bus: EventBus,
    pub auth: TokenManager,
    /// The background refresher, stopped when the app exits.
    pub auth_worker: Mutex<Option<AuthWorker>>,
    /// Times core events to the windows (diagnostics).
    pub probe: EventProbe,
    /// Opens status windows (set when the app starts).
    pub status_window_opener: OnceLock<StatusWindowOpener>,
}

impl AppState {
    pub fn new(
        config: LoadedConfig,
        log_file: Option<PathBuf>,
        bus: EventBus,
        auth: TokenManager,
    ) -> Self {
        Self {
            config,
            log_file,
            bus,
            auth,
            auth_worker: Mutex::new(None),
            probe: EventProbe::default(),
            status_window_opener: OnceLock::new(),
        }
    }
}
