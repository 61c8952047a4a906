//! The Tauri shell of Exam Bank Desktop: windows, plugins and thin IPC commands.
//!
//! Business logic lives in `exam-core`; this crate loads the configuration, starts
//! logging, and wires the core to the webview.

pub mod commands;
pub mod error;
pub mod events;
pub mod notify;
pub mod probe;
pub mod state;
pub mod windows;

use std::sync::Arc;

use exam_core::auth::{AuthConfig, TokenManager};
use exam_core::bus::EventBus;
use exam_core::config::{self, ConfigInputs};
use exam_core::http::HttpClient;
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
            commands::sync::sync_pause,
            commands::sync::sync_resume,
            commands::sync::sync_now,
            commands::sync::dead_letters,
            commands::sync::retry_dead_letter,
            commands::sync::export_dead_letters,
            commands::app::set_ui_language,
            commands::exam::exam_list,
            commands::exam::download_exam,
            commands::exam::start_attempt,
            commands::exam::current_attempt,
            commands::exam::attempt_view,
            commands::exam::save_answer,
            commands::exam::set_flag,
            commands::exam::set_current_question,
            commands::exam::attempt_progress,
            commands::exam::submit_attempt,
            commands::exam::close_attempt,
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
    builder
        .invoke_handler(specta.invoke_handler())
        .setup(move |app| {
            specta.mount_events(app);
            let state = app.state::<AppState>();
            let handle = app.handle().clone();
            events::forward(app.handle().clone(), &state.bus, move || {
                handle.state::<AppState>().snapshot_events()
            });
            let _ = state
                .status_window_opener
                .set(windows::opener(app.handle().clone()));
            notify::watch(
                app.handle().clone(),
                &state.bus,
                state.offline.as_ref().ok().map(|o| o.exams.clone()),
                state.language.clone(),
            );
            let handle = app.handle().clone();
            state.probe.set_windows(Box::new(move || {
                handle.webview_windows().into_keys().collect()
            }));
            Ok(())
        })
}

/// The core services of a running app: the bus, and the token manager on the OS keychain.
pub fn core_services(server: url::Url) -> Result<(EventBus, TokenManager), String> {
    let bus = EventBus::default();
    let http = HttpClient::new(&format!("ExamBankDesktop/{}", exam_core::VERSION))
        .map_err(|e| e.to_string())?;
    let auth = TokenManager::new(AuthConfig::new(server), http, os_keychain(), bus.clone());
    Ok((bus, auth))
}

/// The OS keychain entries of this app (tokens, the answer key).
pub fn os_keychain() -> Arc<dyn exam_core::keychain::SecretStore> {
    Arc::new(Keychain::new(OsKeychain::new(KEYCHAIN_SERVICE)))
}

/// Opens the queue in the data directory and starts the network monitor and the sync
/// engine on their own threads.
pub fn start_offline(
    settings: &exam_core::config::Settings,
    auth: &TokenManager,
    bus: &EventBus,
) -> Result<state::Offline, String> {
    use exam_core::network::{MonitorConfig, NetworkMonitor};
    use exam_core::queue::{Limits, Queue};
    use exam_core::sync::{SyncConfig, SyncEngine};

    let path = settings.data_dir.join(exam_core::store::FILE_NAME);
    let limits = Limits {
        max_entries: settings.queue.max_entries,
        max_bytes: settings.queue.max_bytes,
    };
    let queue = Queue::open(&path, limits).map_err(|e| e.to_string())?;
    let monitor = NetworkMonitor::spawn(
        MonitorConfig::from_settings(settings),
        auth.http().clone(),
        bus.clone(),
        Some(queue.store().clone()),
    )
    .map(Arc::new)
    .map_err(|e| format!("cannot start the network monitor: {e}"))?;
    let sync = SyncConfig {
        concurrency: settings.sync.concurrency as usize,
        batch_window: std::time::Duration::from_millis(u64::from(settings.sync.batch_window_ms)),
        batch_max: settings.sync.batch_max as usize,
        ..SyncConfig::default()
    };
    let engine = SyncEngine::spawn(
        sync,
        queue.clone(),
        auth.clone(),
        monitor.view(),
        bus.clone(),
    )
    .map_err(|e| format!("cannot start the sync engine: {e}"))?;
    let exams =
        exam_core::exam::ExamService::new(queue.clone(), auth.clone(), os_keychain(), bus.clone())
            .map_err(|e| format!("cannot open the exams on this computer: {e}"))?;
    let exam_watcher = exams.spawn_watcher();
    Ok(state::Offline {
        queue,
        monitor: Some(monitor),
        engine,
        exams,
        exam_watcher,
    })
}

/// Starts the app. Returns when the last window closes.
///
/// The order is written down because it matters: the settings are read (files only), then
/// `build()` runs the single-instance plugin — a second launch hands its arguments to the
/// running window and exits there, before it has touched the keychain, the database, the
/// log or the network (so it can never rotate the refresh token the first instance holds,
/// nor reset its queue). Only then are logging, the session and the services started.
pub fn run() {
    let loaded = config::load(&ConfigInputs::from_process());
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
    let app = match configure(builder).build(tauri::generate_context!()) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("exam-desktop: cannot start: {error}");
            std::process::exit(1);
        }
    };

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

    let (bus, auth) = match core_services(loaded.settings.server_url.clone()) {
        Ok(services) => services,
        Err(error) => {
            tracing::error!(%error, "cannot start the core");
            eprintln!("exam-desktop: cannot start: {error}");
            std::process::exit(1);
        }
    };
    // Restore the session from the keychain and keep tokens fresh, in the background.
    let worker = tauri::async_runtime::block_on(async {
        let restoring = auth.clone();
        tauri::async_runtime::spawn(async move {
            match restoring.restore().await {
                Ok(true) => tracing::info!("session restored from the keychain"),
                Ok(false) => {}
                Err(error) => tracing::error!(%error, "could not read the keychain"),
            }
        });
        auth.spawn_worker()
    });
    // With a settings problem nothing is sent anywhere until IT fixes it.
    let offline = if loaded.problems.is_empty() {
        start_offline(&loaded.settings, &auth, &bus)
    } else {
        Err(
            "the settings on this computer have a problem; nothing is sent until it is fixed"
                .into(),
        )
    };
    if let Err(error) = &offline {
        tracing::error!(%error, "the offline queue cannot start");
    }
    let state = AppState::new(loaded, log_file, bus, auth, offline);
    *state.auth_worker.lock().unwrap_or_else(|p| p.into_inner()) = Some(worker);
    app.manage(state);
    app.run(|_, _| {});
}

#[cfg(test)]
mod tests;
