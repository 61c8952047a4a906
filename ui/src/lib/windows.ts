// Status windows: each is a `diagnostics-*` window, which its capability limits to reading
// the shared state and renewing the sign-in.
import { WebviewWindow } from "@tauri-apps/api/webviewWindow";

let opened = 0;

export function openStatusWindow(): void {
  opened += 1;
  const label = `diagnostics-${Date.now()}-${opened}`;
  const win = new WebviewWindow(label, {
    url: "diagnostics.html",
    title: `Exam Bank Desktop — status ${opened}`,
    width: 720,
    height: 640,
    minWidth: 480,
    minHeight: 400,
  });
  win.once("tauri://error", (e) => console.error("could not open a status window", e));
}
