// How configuration facts from the core are put into words for students and IT, in the UI's
// language. (A problem's own message, from the settings file's parser, stays as the core
// wrote it: it quotes the file for IT.)
import type { AppInfo, ConfigProblem, ConfigSource, Layer } from "../bindings";
import { t } from "./i18n.svelte";

export function layerName(layer: Layer): string {
  return t(`layer.${layer}`);
}

/** "file, line 3, column 14, key `server_url`" — where to look. */
export function problemLocation(p: ConfigProblem): string {
  const parts = [p.origin];
  if (p.line != null) {
    parts.push(
      p.column != null
        ? t("config.lineColumn", { line: p.line, column: p.column })
        : t("config.line", { line: p.line }),
    );
  }
  if (p.key != null) parts.push(t("config.key", { key: p.key }));
  return parts.join(", ");
}

/** What a layer did, in one short phrase. */
export function sourceSummary(s: ConfigSource): string {
  if (s.status === "absent") return t("config.absent");
  if (s.status === "invalid") return t("config.invalid");
  const parts: string[] = [];
  parts.push(s.effective.length > 0 ? t("config.sets", { keys: s.effective.join(", ") }) : t("config.nothing"));
  if (s.ignored_locked.length > 0) {
    parts.push(t("config.locked", { keys: s.ignored_locked.join(", ") }));
  }
  return parts.join("; ");
}

/**
 * Where the server address came from when a user-level layer (the user's file, a variable,
 * a command-line flag) chose it rather than the school's managed file or the built-in
 * default: the sign-in screen says so, since the password goes to that server.
 */
export function userServer(info: Pick<AppInfo, "config_sources">): string | null {
  const source = info.config_sources.find(
    (s) => s.effective.includes("server_url") && (s.layer === "user" || s.layer === "environment" || s.layer === "command_line"),
  );
  if (!source) return null;
  // The one variable or flag that sets the server, rather than every one the layer read.
  if (source.layer === "environment") return "EXAM_DESKTOP_SERVER";
  if (source.layer === "command_line") return "--server";
  return source.origin;
}
