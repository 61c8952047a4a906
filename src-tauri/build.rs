//! Compiles the app's capabilities and permissions (Tauri ACL) and embeds the context.

fn main() {
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    println!("cargo:rerun-if-changed=ui/dist");
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        // Every app command gets `allow-<command>`; a window may call only what its
        // capability grants.
        .app_manifest(tauri_build::AppManifest::new().commands(&[
            "app_info",
            "auth_snapshot",
            "sign_in",
            "sign_out",
            "force_refresh",
            "diagnostics",
            "measure_event_delivery",
            "ack_event",
            "open_status_window",
            "sync_status",
            "sync_pause",
            "sync_resume",
            "sync_now",
            "dead_letters",
            "retry_dead_letter",
            "export_dead_letters",
            "set_ui_language",
            "note_activity",
            "update_status",
            "update_check_now",
            "exam_list",
            "download_exam",
            "exam_readiness",
            "start_attempt",
            "start_attempt_with_code",
            "security_status",
            "analytics_overview",
            "current_attempt",
            "attempt_view",
            "save_answer",
            "set_flag",
            "set_current_question",
            "attempt_progress",
            "attempt_fair_time",
            "submit_attempt",
            "close_attempt",
        ]));
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {error:#}");
    }
}
