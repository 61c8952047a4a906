// Status windows: each is a `diagnostics-*` window, which its capability limits to reading
// the shared state and renewing the sign-in. The core opens them (so on Linux they share the
// main window's web process).
import { commands } from "../bindings";
import { describeError } from "./errors";

export async function openStatusWindow(): Promise<void> {
  const result = await commands.openStatusWindow();
  if (result.status === "error") console.error("could not open a status window:", describeError(result.error));
}
