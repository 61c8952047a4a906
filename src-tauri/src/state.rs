//! What the shell keeps for the lifetime of the app.

use std::path::PathBuf;

use exam_core::config::LoadedConfig;

pub struct AppState {
    pub config: LoadedConfig,
    pub log_file: Option<PathBuf>,
}

impl AppState {
    pub fn new(config: LoadedConfig, log_file: Option<PathBuf>) -> Self {
        Self { config, log_file }
    }
}
