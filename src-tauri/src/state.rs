//! What the shell keeps for the lifetime of the app: the core, and the shell's own parts.

use std::path::PathBuf;
use std::sync::OnceLock;

use exam_core::app::Core;

use crate::probe::EventProbe;
use crate::windows::StatusWindowOpener;

pub struct AppState {
    /// Every service of the app, put together by [`exam_core::app::CoreBuilder`].
    pub core: Core,
    pub log_file: Option<PathBuf>,
    /// Times core events to the windows (diagnostics).
    pub probe: EventProbe,
    /// Opens status windows (set when the app starts).
    pub status_window_opener: OnceLock<StatusWindowOpener>,
    /// The UI's language, for desktop notifications.
    pub language: crate::notify::Language,
    /// The updater (set when the app starts; absent in the shell's unit tests).
    pub update: OnceLock<UpdateHandle>,
}

/// The updater as the commands and the exit path use it, whatever the runtime.
pub struct UpdateHandle {
    pub status: Box<dyn Fn() -> exam_core::update::status::UpdateStatus + Send + Sync>,
    pub check_soon: Box<dyn Fn() + Send + Sync>,
    pub at_quit: Box<dyn Fn(&Core) + Send + Sync>,
}

impl AppState {
    pub fn new(core: Core, log_file: Option<PathBuf>) -> Self {
        Self {
            core,
            log_file,
            probe: EventProbe::default(),
            status_window_opener: OnceLock::new(),
            language: crate::notify::Language::default(),
            update: OnceLock::new(),
        }
    }
}
