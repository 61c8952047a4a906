//! The Tauri shell of Exam Bank Desktop: windows, plugins and thin IPC commands.
//!
//! Business logic lives in `exam-core`; this crate loads the configuration, starts
//! logging, and wires the core to the webview.

pub mod cli;
pub mod commands;
pub mod error;
pub mod events;
pub mod notify;
pub mod probe;
pub mod startup;
pub mod state;
pub mod updater;
pub mod windows;

use std::sync::Arc;

use exam_core::app::CoreBuilder;
use exam_core::config::{self, ConfigInputs};
use exam_core::keychain::{Keychain, OsKeychain};
use tauri::{Manager, Runtime};

use crate::state::AppState;

/// The keychain service name under which the app keeps its secrets.
pub const KEYCHAIN_SERVICE: &str = "org.exambank.desktop";

/// The typed IPC surface: every command the UI may call, for the invoke handler and the
/// generated TypeScript bindings alike.
pub fn specta_builder<R: Runtime>() -> tauri_specta::Builder<R> {
    tauri_specta::Builder::<R>::new()
        // Our IPC types only travel one way, so one TypeScript type per Rust type.
        .disable_serde_phases()
        .commands(tauri_specta::collect_commands![
            commands::app::app_info,
            commands::auth::auth_snapshot,
            commands::auth::sign_in,
            commands::auth::sign_out,
            commands::auth::force_refresh,
            commands::windows::diagnostics,
            commands::windows::measure_event_delivery,
            commands::windows::ack_event,
            commands::windows::open_status_window,
            commands::sync::sync_status,
            commands::security::security_status,
            commands::analytics::analytics_overview,
            commands::sync::sync_pause,
            commands::sync::sync_resume,
            commands::sync::sync_now,
            commands::sync::dead_letters,
            commands::sync::retry_dead_letter,
            commands::sync::export_dead_letters,
            commands::app::set_ui_language,
            commands::app::note_activity,
            commands::app::update_status,
            commands::app::update_check_now,
            commands::exam::exam_list,
            commands::exam::download_exam,
            commands::exam::exam_readiness,
            commands::exam::start_attempt,
            commands::exam::start_attempt_with_code,
            commands::exam::current_attempt,
            commands::exam::attempt_view,
            commands::exam::save_answer,
            commands::exam::set_flag,
            commands::exam::set_current_question,
            commands::exam::attempt_progress,
            commands::exam::submit_attempt,
            commands::exam::close_attempt,
            commands::exam::attempt_fair_time,
        ])
        .events(tauri_specta::collect_events![events::CoreEventMessage])
}

/// Writes the TypeScript bindings of [`specta_builder`] to `path`.
pub fn export_bindings(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let language = specta_typescript::Typescript::default().header(
        "// Generated from the Rust commands by `cargo test -p exam-desktop`: do not edit.\n",
    );
    specta_builder::<tauri::Wry>().export(language, path)?;
    Ok(())
}

/// Attaches the app's commands and event forwarding to a builder (the real one or a mock).
/// The state ([`AppState`]) is managed after `build()`, so the single-instance check (a
/// plugin, run by `build()`) comes before any I/O; the setup hook runs later, in `run`.
pub fn configure<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    let specta = specta_builder::<R>();
    let commands = specta.invoke_handler();
    builder
        .invoke_handler(move |invoke| {
            startup::first(invoke.message.command());
            commands(invoke)
        })
        .on_page_load(|webview, payload| {
            if webview.label() == "main" {
                startup::first(match payload.event() {
                    tauri::webview::PageLoadEvent::Started => "page load started",
                    tauri::webview::PageLoadEvent::Finished => "page load finished",
                });
            }
        })
        .setup(move |app| {
            specta.mount_events(app);
            let state = app.state::<AppState>();
            let handle = app.handle().clone();
            let marker = app.handle().clone();
            events::forward(
                app.handle().clone(),
                &state.core,
                move || handle.state::<AppState>().core.snapshot_events(),
                Arc::new(move |event, stage| marker.state::<AppState>().probe.mark(event, stage)),
            );
            let _ = state
                .status_window_opener
                .set(windows::opener(app.handle().clone()));
            notify::watch(app.handle().clone(), &state.core, state.language.clone());
            watch_displays(app.handle().clone());
            let handle = app.handle().clone();
            state.probe.set_windows(Box::new(move || {
                handle.webview_windows().into_keys().collect()
            }));
            Ok(())
        })
}

/// Counts the displays every 2 s for the device checks (the core has no window system).
/// Asking for the monitors waits for the event loop's answer, so it is asked from a
/// blocking thread — never from the runtime's workers — and only once the loop runs.
fn watch_displays<R: Runtime>(app: tauri::AppHandle<R>) {
    tauri::async_runtime::spawn(async move {
        let mut counted = None;
        loop {
            tokio::time::sleep(exam_core::security::monitor::CHECK_EVERY).await;
            let asking = app.clone();
            let monitors =
                match tokio::task::spawn_blocking(move || asking.available_monitors()).await {
                    Ok(Ok(monitors)) => monitors,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "the displays cannot be counted");
                        continue;
                    }
                    Err(_) => continue,
                };
            let n = u32::try_from(monitors.len()).unwrap_or(u32::MAX);
            if counted != Some(n) {
                tracing::info!(displays = n, "displays counted");
                counted = Some(n);
            }
            if let Ok(services) = app.state::<AppState>().core.services() {
                services.security.set_displays(n);
            }
        }
    });
}

/// The OS keychain entries of this app (tokens, the answer key).
pub fn os_keychain() -> Arc<dyn exam_core::keychain::SecretStore> {
    Arc::new(Keychain::new(OsKeychain::new(KEYCHAIN_SERVICE)))
}

/// Creates the main window as tauri.conf.json describes it.
fn main_window<R: Runtime>(app: &tauri::App<R>) -> tauri::Result<()> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == "main")
        .cloned()
        .unwrap_or_default();
    tauri::WebviewWindowBuilder::from_config(app.handle(), &config)?.build()?;
    Ok(())
}

/// Starts the app. Returns when the last window closes.
///
/// The order is written down because it matters:
/// 1. The settings are read (files only) and the one runtime is made (threads only); Tauri
///    is told to use it, so its commands, the core's workers and the HTTP connection pool
///    share one runtime.
/// 2. `build()` runs the single-instance plugin — a second launch hands its arguments to the
///    running window and exits there, before it has touched the keychain, the database, the
///    log or the network (so it can never rotate the refresh token the first instance
///    holds, nor reset its queue).
/// 3. The main window is created (`create: false` in tauri.conf.json: Tauri would create it
///    only once the event loop runs, after the core has started). WebKit starts its web
///    process and the page begins to load while the main thread goes on to the next step;
///    the page's first commands are answered once the event loop runs, with the core there.
/// 4. Logging, then the core ([`CoreBuilder::start`], whose own order is written there).
/// 5. On exit, the core is shut down (workers joined, newest first, bounded wait).
pub fn run() {
    startup::begin();
    let loaded = config::load(&ConfigInputs::from_process());
    startup::step("config");
    let runtime = match exam_core::lifecycle::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("exam-desktop: cannot start: {error}");
            std::process::exit(1);
        }
    };
    tauri::async_runtime::set(runtime.handle().clone());
    startup::step("runtime");
    // The single-instance plugin must be the first one registered.
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            tracing::info!("a second launch was redirected to this window");
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.show();
                let _ = window.set_focus();
            }
        }))
        // Signed updates (minisign); the UI gets none of its commands: the core's updater
        // alone decides when to check and install (see `updater`).
        .plugin(tauri_plugin_updater::Builder::new().build());
    let app = match configure(builder).build(tauri::generate_context!()) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("exam-desktop: cannot start: {error}");
            std::process::exit(1);
        }
    };

    startup::step("built");
    if let Err(error) = main_window(&app) {
        eprintln!("exam-desktop: cannot open the window: {error}");
        std::process::exit(1);
    }
    startup::step("window");
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
    startup::logging_ready();
    tracing::info!(
        version = %app.package_info().version,
        server = %loaded.settings.server_url,
        data_dir = %loaded.settings.data_dir.display(),
        "starting"
    );
    for problem in &loaded.problems {
        tracing::error!(%problem, "configuration problem");
    }

    let core = match CoreBuilder::new(loaded, os_keychain())
        .runtime(runtime.handle().clone())
        .start()
    {
        Ok(core) => core,
        Err(error) => {
            tracing::error!(%error, "cannot start the core");
            eprintln!("exam-desktop: cannot start: {error}");
            std::process::exit(1);
        }
    };
    startup::step("core");
    let settings = core.config().settings.clone();
    app.manage(AppState::new(core, log_file));
    let updater = updater::make(app.handle(), &settings);
    let (status, soon, quit) = (updater.clone(), updater.clone(), updater.clone());
    let _ = app.state::<AppState>().update.set(state::UpdateHandle {
        status: Box::new(move || status.status()),
        check_soon: Box::new(move || soon.check_soon()),
        at_quit: Box::new(move |core| updater::at_quit(core, &quit)),
    });
    updater::start(app.handle().clone(), updater);
    app.run(|handle, event| {
        if let tauri::RunEvent::Ready = event {
            startup::step("event loop");
        }
        if let tauri::RunEvent::Exit = event {
            let core = &handle.state::<AppState>().core;
            // A shared lab computer: quitting with no exam in progress signs the student
            // out (their waiting work still goes to their account).
            if tauri::async_runtime::block_on(core.on_quit()) {
                tracing::info!("signed out on quit");
            }
            if let Some(update) = handle.state::<AppState>().update.get() {
                (update.at_quit)(core);
            }
            let report = core.shutdown(exam_core::app::SHUTDOWN_WAIT);
            if !report.aborted.is_empty() {
                tracing::warn!(aborted = ?report.aborted, "some work did not stop in time");
            }
        }
    });
}

#[cfg(test)]
mod tests;
