// Why the server cannot be used (or is slow), or why a session ended: the core sends a code
// with the numbers and names the words need, and this file words it in the UI's language.
// No English text of the core's ever reaches a screen.
import type { Reason } from "../bindings";
import { i18n, t, tn } from "./i18n.svelte";

/** Seconds as the UI's language writes them: one decimal under 10 s. */
function seconds(ms: number): string {
  const s = ms / 1000;
  return new Intl.NumberFormat(i18n.locale, { maximumFractionDigits: s < 10 ? 1 : 0 }).format(s);
}

/** The reason in words, without a capital or a full stop (it goes inside sentences). */
export function describeReason(r: Reason): string {
  switch (r.code) {
    case "no_answer":
      return t("reason.no_answer", { s: seconds(r.after_ms) });
    case "timed_out":
    case "no_network":
    case "name_not_found":
    case "server_not_running":
    case "connection_cut":
    case "reply_cut":
    case "reply_too_large":
    case "unreadable_reply":
    case "certificate_intercepted":
    case "portal_page":
    case "proxy_answers":
    case "bad_address":
    case "keychain_failed":
    case "session_reused":
    case "session_ended_by_school":
    case "step_up_required":
    case "session_expired":
      return t(`reason.${r.code}`);
    case "portal_sign_in":
      return r.host ? t("reason.portal_sign_in_at", { host: r.host }) : t("reason.portal_sign_in");
    case "server_error":
      return t("reason.server_error", { status: r.status });
    case "slow":
      return t("reason.slow", { s: seconds(r.rtt_ms) });
    case "server_asks_to_wait":
      return t("reason.server_asks_to_wait", { s: r.retry_after_s });
    case "idle_sign_out":
      return tn("reason.idle_sign_out", r.minutes);
    case "refused_by_server":
      return t("reason.refused_by_server", { status: r.server_code ?? r.status ?? "?" });
  }
}

/** The reason as a sentence of its own: capital first, full stop last. */
export function reasonSentence(r: Reason): string {
  const words = describeReason(r).trim();
  const capital = words.charAt(0).toLocaleUpperCase(i18n.locale) + words.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}
