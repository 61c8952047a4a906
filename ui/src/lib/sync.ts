// Words for the network and sync states, shared by the header and the sync panel.
import type { NetStatus, SyncProgress } from "../bindings";

export function networkLabel(status: NetStatus | null | undefined): string {
  switch (status?.state) {
    case "online":
      return "Online";
    case "degraded":
      return "Slow connection";
    case "offline":
      return "Offline — answers are kept on this computer";
    case "captive_portal":
      return "This network needs a sign-in page first";
    case "server_down":
      return "Exam Bank server unavailable — answers are kept on this computer";
    default:
      return "Checking the connection…";
  }
}

export function syncLabel(p: SyncProgress): string {
  switch (p.state) {
    case "syncing":
      return `Sending… ${p.done} sent, ${p.remaining} to go`;
    case "paused":
      return `Sending paused (${p.remaining} waiting)`;
    case "waiting_for_network":
      return p.remaining > 0 ? `${p.remaining} waiting for the connection` : "Nothing waiting";
    case "waiting_for_sign_in":
      return p.remaining > 0 ? `${p.remaining} waiting for you to sign in` : "Nothing waiting";
    case "retrying":
      return `${p.remaining} waiting to be retried`;
    case "idle":
      return "Everything is sent";
  }
}

/** A reason from the core as a sentence: capital first, full stop last. */
export function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  const capital = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?)]$/.test(capital) ? capital : `${capital}.`;
}
