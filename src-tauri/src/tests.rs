//! Tests of the shell: the IPC surface through Tauri's mock runtime, and the bindings.

use std::path::{Path, PathBuf};

use exam_core::config::{self, ConfigInputs};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;

use tauri::Manager;

use crate::state::AppState;

fn loaded_config(dir: &Path) -> exam_core::config::LoadedConfig {
    let managed = dir.join("managed.toml");
    std::fs::write(
        &managed,
        "locked = [\"server_url\"]\nserver_url = \"https://exams.school.example\"\n",
    )
    .unwrap();
    config::load(&ConfigInputs {
        managed_file: managed,
        default_user_file: None,
        default_data_dir: Some(dir.join("data")),
        env: Default::default(),
        args: vec!["--server".into(), "http://127.0.0.1:1".into()],
        cwd: dir.to_path_buf(),
        policies: Default::default(),
    })
}

fn invoke(
    cmd: &str,
    window: &tauri::WebviewWindow<tauri::test::MockRuntime>,
) -> Result<serde_json::Value, serde_json::Value> {
    get_ipc_response(
        window,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::default(),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|body| body.deserialize::<serde_json::Value>().unwrap())
}

/// The app's real context (capabilities included) on the mock runtime.
fn app(dir: &Path) -> tauri::App<tauri::test::MockRuntime> {
    let config = loaded_config(dir);
    let core = exam_core::app::CoreBuilder::new(
        config,
        std::sync::Arc::new(exam_core::testing::MemoryStore::default()),
    )
    .network(exam_core::app::Network::AlwaysOnline)
    .start()
    .unwrap();
    let state = AppState::new(core, Some(dir.join("data/logs/exam-desktop.log")));
    let app = crate::configure(mock_builder())
        .build(tauri::generate_context!())
        .unwrap();
    app.manage(state);
    app
}

#[test]
fn app_info_over_ipc_reports_version_server_and_sources() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    let value = invoke("app_info", &window).unwrap();
    assert_eq!(value["version"], env!("CARGO_PKG_VERSION"));
    // The managed file locks the server, so the command-line flag is ignored.
    assert_eq!(value["server_url"], "https://exams.school.example/");
    assert_eq!(value["locked_keys"], serde_json::json!(["server_url"]));
    assert_eq!(
        value["data_dir"],
        dir.path().join("data").display().to_string()
    );
    let sources = value["config_sources"].as_array().unwrap();
    let layers: Vec<&str> = sources
        .iter()
        .map(|s| s["layer"].as_str().unwrap())
        .collect();
    assert_eq!(
        layers,
        [
            "defaults",
            "managed",
            "policy",
            "user",
            "environment",
            "command_line"
        ]
    );
    assert_eq!(
        sources[5]["ignored_locked"],
        serde_json::json!(["server_url"])
    );
    // Every key's value and where it comes from, for the status window.
    let settings = value["settings"].as_array().unwrap();
    let server = settings.iter().find(|s| s["key"] == "server_url").unwrap();
    assert_eq!(server["value"], "https://exams.school.example/");
    assert_eq!(server["layer"], "managed");
    assert_eq!(server["locked"], true);
    assert!(settings.iter().any(|s| s["key"] == "update.channel"
        && s["value"] == "stable"
        && s["layer"] == "defaults"));
    assert_eq!(value["config_problems"], serde_json::json!([]));
    assert!(value["log_file"]
        .as_str()
        .unwrap()
        .ends_with("exam-desktop.log"));
    let snapshot = invoke("auth_snapshot", &window).unwrap();
    assert_eq!(snapshot["status"], "signed_out");
    assert_eq!(snapshot["version"], 0);
}

#[test]
fn a_status_window_reads_state_but_cannot_sign_in_or_out() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let window = tauri::WebviewWindowBuilder::new(&app, "diagnostics-1-1", Default::default())
        .build()
        .unwrap();
    assert_eq!(
        invoke("auth_snapshot", &window).unwrap()["status"],
        "signed_out"
    );
    let report = invoke("diagnostics", &window).unwrap();
    assert_eq!(report["findings"][0]["severity"], "ok");
    let error = invoke("sign_out", &window).unwrap_err();
    assert!(error.to_string().contains("not allowed"), "{error}");
}

#[test]
fn a_window_without_the_capability_cannot_call_app_info() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let window = tauri::WebviewWindowBuilder::new(&app, "stranger", Default::default())
        .build()
        .unwrap();
    let error = invoke("app_info", &window).unwrap_err();
    assert!(error.to_string().contains("not allowed"), "{error}");
}

const BINDINGS: &str = "ui/src/bindings.ts";

/// Regenerates the TypeScript bindings and fails when the committed file was stale, so
/// the UI can never drift from the commands it calls.
#[test]
fn typescript_bindings_are_up_to_date() {
    let committed_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(BINDINGS);
    let fresh = tempfile::tempdir().unwrap().keep().join("bindings.ts");
    crate::export_bindings(&fresh).unwrap();
    let fresh_text = std::fs::read_to_string(&fresh).unwrap();
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if committed != fresh_text {
        std::fs::write(&committed_path, &fresh_text).unwrap();
        panic!("{BINDINGS} was stale and has been regenerated: review and commit it");
    }
}

#[test]
fn sync_status_and_dead_letter_export_over_ipc() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    let status = invoke("sync_status", &window).unwrap();
    assert_eq!(status["queue"]["pending"], 0);
    assert_eq!(status["network"], serde_json::Value::Null);
    assert_eq!(
        invoke("dead_letters", &window).unwrap(),
        serde_json::json!([])
    );
    // Only the signed-in student's work is ever exported; nobody signed in, nothing.
    assert_eq!(
        invoke("export_dead_letters", &window).unwrap_err(),
        serde_json::json!({"kind": "not_signed_in"})
    );
    assert!(!dir.path().join("data/exports").exists());
}

/// A window that fell behind the core is sent every state it shows, not only the sign-in;
/// in order, events pass as they are; a closed bus ends the forwarding.
#[test]
fn a_window_that_lagged_gets_a_full_snapshot() {
    use exam_core::bus::CoreEvent;
    use tokio::sync::broadcast::error::RecvError;

    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let state = app.state::<AppState>();
    let snapshot = || state.core.snapshot_events();
    let kinds = |events: Vec<CoreEvent>| -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e {
                CoreEvent::AuthChanged { .. } => "auth",
                CoreEvent::NetworkChanged { .. } => "network",
                CoreEvent::SyncProgress { .. } => "sync",
                CoreEvent::ExamChanged { .. } => "exam",
                CoreEvent::SecurityChanged { .. } => "security",
                _ => "other",
            })
            .collect()
    };
    let lagged = crate::events::to_windows(Err(RecvError::Lagged(7)), &snapshot).unwrap();
    // No monitor in this app and no attempt yet: the sign-in, sync progress and the device
    // checks.
    assert_eq!(kinds(lagged), ["auth", "sync", "security"]);
    let ping = CoreEvent::Ping {
        id: 1,
        sent_ms: 0.0,
        answer_after_ms: 0,
    };
    assert_eq!(
        crate::events::to_windows(Ok(ping.clone()), &snapshot),
        Some(vec![ping])
    );
    assert_eq!(
        crate::events::to_windows(Err(RecvError::Closed), &snapshot),
        None
    );
}

#[test]
fn update_endpoints_are_the_servers_own_or_its_with_the_channel_and_pin_filled_in() {
    let mut settings = exam_core::config::Settings::new(
        url::Url::parse("https://exams.school.example/").unwrap(),
        std::path::PathBuf::from("/tmp/unused"),
    );
    settings.update.channel = "beta".into();
    settings.update.pin = Some("1.4.".into());
    let urls = crate::updater::endpoints(&settings);
    assert_eq!(urls.len(), 1);
    let url = urls[0].as_str();
    assert!(
        url.starts_with(
            "https://exams.school.example/updates/%7B%7Btarget%7D%7D/%7B%7Barch%7D%7D/"
        ),
        "{url}"
    );
    assert!(url.contains("?channel=beta&pin=1.4.&bundle="), "{url}");

    settings.update.endpoints =
        vec!["https://updates.school.example/{{channel}}/{{target}}/{{current_version}}".into()];
    settings.update.pin = None;
    let urls = crate::updater::endpoints(&settings);
    assert_eq!(
        urls[0].as_str(),
        "https://updates.school.example/beta/%7B%7Btarget%7D%7D/%7B%7Bcurrent_version%7D%7D"
    );
}
