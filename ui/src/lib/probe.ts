// Every window answers the core's delivery probes at once, so the core can measure how long
// its events take to reach the windows (diagnostics window, benchmark).
import { getCurrentWebviewWindow } from "@tauri-apps/api/webviewWindow";
import { commands, events, type CoreEvent } from "../bindings";

/** The ping id an event carries, if it is a probe. */
export function pingOf(event: CoreEvent): number | null {
  return event.type === "ping" ? event.id : null;
}

export async function answerPings(): Promise<void> {
  const label = getCurrentWebviewWindow().label;
  await events.coreEventMessage.listen((event) => {
    const id = pingOf(event.payload);
    // The wall clock, as precisely as this webview gives it.
    if (id !== null) void commands.ackEvent(id, label, performance.timeOrigin + performance.now());
  });
}
