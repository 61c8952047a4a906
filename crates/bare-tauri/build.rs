//! Embeds the bare app's context (its config and its one page).

fn main() {
    tauri_build::build();
}
