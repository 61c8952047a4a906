//! What the shell keeps for the lifetime of the app.

use std::path::PathBuf;
use std::sync::Mutex;

use exam_core::auth::{AuthWorker, TokenManager};
use exam_core::bus::EventBus;
use exam_core::config::LoadedConfig;

pub struct AppState {
    pub config: LoadedConfig,
    pub log_file: Option<PathBuf>,
    pub bus: EventBus,
    pub auth: TokenManager,
    /// The background refresher, stopped when the app exits.
    pub auth_worker: Mutex<Option<AuthWorker>>,
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
        }
    }
}
