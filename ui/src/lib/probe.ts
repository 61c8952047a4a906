// Every window answers the core's delivery probes at once, so the core can measure how long
// its events take to reach the windows (diagnostics window, benchmark).
import { getCurrentWebviewWindow } from "@tauri-apps/api/webviewWindow";
import { commands, events, type CoreEvent } from "../bindings";

/** The ping id an event carries, if it is a probe. */
export function pingOf(event: CoreEvent): { id: number; answerAfterMs: number } | null {
  return event.type === "ping" ? { id: event.id, answerAfterMs: event.answer_after_ms } : null;
}

export async function answerPings(): Promise<void> {
  const label = getCurrentWebviewWindow().label;
  await events.coreEventMessage.listen((event) => {
    // The wall clock, as precisely as this webview gives it.
    const received = performance.timeOrigin + performance.now();
    const ping = pingOf(event.payload);
    if (ping === null) return;
    const answer = () => void commands.ackEvent(ping.id, label, received);
    if (ping.answerAfterMs > 0) setTimeout(answer, ping.answerAfterMs);
    else answer();
  });
}
