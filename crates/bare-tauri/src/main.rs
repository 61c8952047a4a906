//! A bare Tauri 2 app: one window, one static page, no plugin, no command, no state. It
//! is the floor `cargo bench --bench launch` measures Exam Bank Desktop against: the same
//! Tauri, WebKitGTK and machine, launched the same way, doing nothing of its own.

fn main() {
    if let Err(error) = tauri::Builder::default().run(tauri::generate_context!()) {
        eprintln!("bare-tauri: {error}");
        std::process::exit(1);
    }
}
