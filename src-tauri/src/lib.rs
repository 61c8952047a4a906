//! The Tauri shell of Exam Bank Desktop: windows, plugins and thin IPC commands.
//!
//! Business logic lives in `exam-core`; this crate loads the configuration, starts
//! logging, and wires the core to the webview.

pub mod commands;
pub mod state;

use exam_core::config::{self, ConfigInputs};
use tauri::{Manager, Runtime};

use crate::state::AppState;

/// The typed IPC surface: every command the UI may call, for the invoke handler and the
/// generated TypeScript bindings alike.
pub fn specta_builder<R: Runtime>() -> tauri_specta::Builder<R> {
    tauri_specta::Builder::<R>::new()
        // Our IPC types only travel one way, so one TypeScript type per Rust type.
        .disable_serde_phases()
        .commands(tauri_specta::collect_commands![commands::app::app_info])
}

/// Writes the TypeScript bindings of [`specta_builder`] to `path`.
pub fn export_bindings(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let language = specta_typescript::Typescript::default().header(
        "// Generated from the Rust commands by `cargo test -p exam-desktop`: do not edit.\n",
    );
    specta_builder::<tauri::Wry>().export(language, path)?;
    Ok(())
}

/// Attaches the app's state, commands and plugins to a builder (the real one or a mock).
pub fn configure<R: Runtime>(builder: tauri::Builder<R>, state: AppState) -> tauri::Builder<R> {
    builder
        .invoke_handler(specta_builder::<R>().invoke_handler())
        .manage(state)
}

/// Starts the app. Returns when the last window closes.
pub fn run() {
    let loaded = config::load(&ConfigInputs::from_process());
    let log = exam_core::logging::init(&loaded.settings.log, &loaded.settings.log_dir());
    let log_file = match log {
        Ok(outcome) => {
            if let Some(error) = &outcome.file_error {
                tracing::warn!(%error, "logging to stderr only");
            }
            outcome.file
        }
        Err(error) => {
            eprintln!("exam-desktop: {error}");
            None
        }
    };
    tracing::info!(
        version = exam_core::VERSION,
        server = %loaded.settings.server_url,
        data_dir = %loaded.settings.data_dir.display(),
        "starting"
    );
    for problem in &loaded.problems {
        tracing::error!(%problem, "configuration problem");
    }

    let state = AppState::new(loaded, log_file);
    // The single-instance plugin must be the first one registered.
    let builder =
        tauri::Builder::default().plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            tracing::info!("a second launch was redirected to this window");
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.show();
                let _ = window.set_focus();
            }
        }));
    if let Err(error) = configure(builder, state).run(tauri::generate_context!()) {
        tracing::error!(%error, "the app stopped with an error");
        eprintln!("exam-desktop: {error}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests;
