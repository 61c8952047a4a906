// What the device checks found, in the student's words and language: what was seen and
// what to do. The evidence (process ids, file paths) is for the proctor and IT, and stays in
// the Security panel of the status window.
import type { SecurityFinding } from "../bindings";
import { t } from "./i18n.svelte";

/** A program's name as people know it ("anydesk" → "AnyDesk" where known). */
const KNOWN: Record<string, string> = {
  anydesk: "AnyDesk",
  teamviewer: "TeamViewer",
  rustdesk: "RustDesk",
  zoom: "Zoom",
  teams: "Microsoft Teams",
  "ms-teams": "Microsoft Teams",
  discord: "Discord",
  skype: "Skype",
  slack: "Slack",
  telegram: "Telegram",
  "telegram-desktop": "Telegram",
  zalo: "Zalo",
  obs: "OBS Studio",
  obs64: "OBS Studio",
};

export function programName(subject: string | null): string {
  if (!subject) return "?";
  return KNOWN[subject] ?? subject;
}

/** What was seen and what to do, in one or two sentences. */
export function findingSentence(f: SecurityFinding): string {
  switch (f.code) {
    case "prohibited_program": {
      const name = programName(f.subject);
      switch (f.category) {
        case "remote_control":
          return t("security.remoteControl", { name });
        case "meetings_chat":
          return t("security.meetingsChat", { name });
        default:
          return t("security.screenRecording", { name });
      }
    }
    case "extra_display":
      return t("security.extraDisplay", { n: f.subject ?? "2" });
    case "remote_session":
      return t("security.remoteSession");
    case "fingerprint_changed":
      return t("security.fingerprintChanged");
    case "clock_jump":
      return t("security.clockJump");
    case "virtual_machine":
      return t("security.virtualMachine");
    case "hypervisor_flag":
      return t("security.hypervisorFlag");
    case "refresh_storm":
      return t("security.refreshStorm");
    case "unusual_activity":
      return t("security.unusualActivity");
    case "sign_in_failures":
      return t("security.signInFailures", { n: f.subject ?? "5" });
    case "session_reused":
      return t("security.sessionReused", { name: f.subject ?? "?" });
    case "token_refused_early":
      return t("security.tokenRefusedEarly");
    case "request_burst":
      return t("security.requestBurst");
    case "network_changed":
      return t("security.networkChanged");
  }
}

/** The findings a student is told about on the main screen (information stays in the panel). */
export function warnings(findings: SecurityFinding[]): SecurityFinding[] {
  return findings.filter((f) => f.severity === "warning");
}
