// Words for the network and sync states, shared by the header and the sync panel.
import type { NetStatus, SyncProgress } from "../bindings";
import { t, tn } from "./i18n.svelte";

/** The network state in words: the whole sentence (`net.*`) or the header's few (`netShort.*`). */
function stateLabel(set: "net" | "netShort", status: NetStatus | null | undefined): string {
  switch (status?.state) {
    case "online":
    case "degraded":
    case "offline":
    case "captive_portal":
    case "server_down":
      return t(`${set}.${status.state}`);
    default:
      return t(`${set}.unknown`);
  }
}

export function networkLabel(status: NetStatus | null | undefined): string {
  return stateLabel("net", status);
}

/** The header's short form of `networkLabel` (the full sentence stays its accessible name). */
export function networkShortLabel(status: NetStatus | null | undefined): string {
  return stateLabel("netShort", status);
}

export function syncLabel(p: SyncProgress): string {
  const counts = { done: p.done, remaining: p.remaining };
  switch (p.state) {
    case "syncing":
      return t("sync.syncing", counts);
    case "paused":
      return t("sync.paused", counts);
    case "waiting_for_network":
      return p.remaining > 0 ? t("sync.waitingNetwork", counts) : t("sync.nothing");
    case "waiting_for_sign_in":
      return p.remaining > 0 ? t("sync.waitingSignIn", counts) : t("sync.nothing");
    case "retrying":
      return t("sync.retrying", counts);
    case "idle":
      // Never "everything is sent" next to something the server refused.
      return p.refused > 0 ? tn("sync.idleRefused", p.refused) : t("sync.idle");
  }
}

/** "2 not accepted" (and its sentence) while the server has refused anything, else null. */
export function refusedLabel(p: SyncProgress | null | undefined): { short: string; long: string } | null {
  if (!p || p.refused === 0) return null;
  return { short: tn("netShort.refused", p.refused), long: tn("net.refused", p.refused) };
}

/** "Sending 12 of 40" while a sync runs, else null. */
export function sendingLabel(p: SyncProgress | null | undefined): string | null {
  if (!p || p.state !== "syncing" || p.remaining === 0) return null;
  return t("sync.progress", { done: p.done, total: p.done + p.remaining });
}
