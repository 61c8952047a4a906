// A readiness line in the student's words. The verdict (ok, worth a look, must be fixed) and
// what was found are the core's (`exam_core::exam::readiness`); here they are only put into
// English or Vietnamese, with the fix for every line that is not fine.
import type { ReadinessFinding, ReadinessLine, ReadinessState } from "../bindings";
import { formatLostTime, i18n, t } from "./i18n.svelte";

/** "19.5 GB", "300 MB": free space as people read it (MiB and GiB, named as usual). */
export function formatSpace(mb: number | null): string {
  if (mb === null) return "?";
  const number = (n: number, digits: number) =>
    new Intl.NumberFormat(i18n.locale, { maximumFractionDigits: digits }).format(n);
  return mb >= 1024 ? `${number(mb / 1024, 1)} GB` : `${number(mb, 0)} MB`;
}

/** What a line found, and how to fix it (none when it is fine). */
export function readinessWords(finding: ReadinessFinding): { title: string; fix: string | null } {
  switch (finding.kind) {
    case "package_checked":
      return {
        title: t(finding.sealed ? "readiness.packageCheckedSealed" : "readiness.packageChecked", {
          version: finding.version,
        }),
        fix: null,
      };
    case "package_missing":
      return { title: t("readiness.packageMissing"), fix: t("readiness.packageMissing.fix") };
    case "package_damaged":
      return { title: t("readiness.packageDamaged"), fix: t("readiness.packageDamaged.fix") };
    case "package_outdated":
      return {
        title: t("readiness.packageOutdated", { have: finding.have, current: finding.current }),
        fix: t("readiness.packageOutdated.fix"),
      };
    case "server_reachable":
      return { title: t("readiness.serverReachable"), fix: null };
    case "server_not_needed":
      return { title: t("readiness.serverNotNeeded"), fix: null };
    case "start_code_needed":
      return { title: t("readiness.startCodeNeeded"), fix: t("readiness.startCodeNeeded.fix") };
    case "disk_free":
      return { title: t("readiness.diskFree", { free: formatSpace(finding.free_mb) }), fix: null };
    case "disk_low":
      return {
        title: t("readiness.diskLow", { free: formatSpace(finding.free_mb), reserve: formatSpace(finding.reserve_mb) }),
        fix: t("readiness.diskLow.fix"),
      };
    case "disk_full":
      return { title: t("readiness.diskFull", { free: formatSpace(finding.free_mb) }), fix: t("readiness.diskFull.fix") };
    case "disk_unknown":
      return { title: t("readiness.diskUnknown"), fix: t("readiness.diskUnknown.fix") };
    case "clock_in_step":
      return { title: t("readiness.clockInStep"), fix: null };
    case "clock_off": {
      // The offset is the server's clock minus this computer's: positive, this one is behind.
      const offset = finding.offset_s ?? 0;
      const time = formatLostTime(Math.abs(offset) * 1000);
      return {
        title: t(offset > 0 ? "readiness.clockBehind" : "readiness.clockAhead", { time }),
        fix: t("readiness.clockOff.fix"),
      };
    }
    case "clock_unknown":
      return { title: t("readiness.clockUnknown"), fix: t("readiness.clockUnknown.fix") };
    case "no_prohibited_apps":
      return { title: t("readiness.noApps"), fix: null };
    case "prohibited_apps":
      return {
        title: t("readiness.apps", { programs: finding.programs.join(", ") }),
        fix: t(finding.blocks_start ? "readiness.apps.fixBlocks" : "readiness.apps.fix"),
      };
    case "apps_not_checked":
      return { title: t("readiness.appsNotChecked"), fix: t("readiness.appsNotChecked.fix") };
    case "version_allowed":
      return { title: t("readiness.versionAllowed", { have: finding.have }), fix: null };
    case "version_too_old":
      return {
        title: t("readiness.versionTooOld", { needed: finding.needed, have: finding.have }),
        fix: t("readiness.versionTooOld.fix"),
      };
    case "version_unknown":
      return {
        title: t("readiness.versionUnknown", { needed: finding.needed, have: finding.have }),
        fix: t("readiness.versionUnknown.fix"),
      };
    case "keychain_works":
      return { title: t("readiness.keychainWorks"), fix: null };
    case "keychain_failed":
      return { title: t("readiness.keychainFailed", { n: finding.times }), fix: t("readiness.keychain.fix") };
    case "keychain_broken":
      return { title: t("readiness.keychainBroken"), fix: t("readiness.keychain.fix") };
    case "one_display":
      return { title: t("readiness.oneDisplay"), fix: null };
    case "extra_displays":
      return { title: t("readiness.extraDisplays", { n: finding.displays }), fix: t("readiness.extraDisplays.fix") };
  }
}

/** The mark beside a line: the state in a glyph (the words are there for screen readers).
 * U+FE0E asks for the text glyph: without it a bold check may come from a picture font. */
export const STATE_MARKS: Record<ReadinessState, string> = { ok: "✓\uFE0E", warn: "!", fail: "✗\uFE0E" };

/** A line's words, its fix shown only when the core says it is not fine. */
export function lineWords(line: ReadinessLine): { title: string; fix: string | null } {
  const words = readinessWords(line.finding);
  return { title: words.title, fix: line.state === "ok" ? null : words.fix };
}
