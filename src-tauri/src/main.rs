// No console window next to the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // IT's tools (`doctor`, `queue`) run before anything of the app: no window, no
    // single-instance check, no log file.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if exam_desktop::cli::is_tool(&args) {
        std::process::exit(exam_desktop::cli::main(&args));
    }
    exam_desktop::run();
}
