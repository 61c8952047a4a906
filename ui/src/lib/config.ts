// How configuration facts from the core are put into words for students and IT.
import type { ConfigProblem, ConfigSource, Layer } from "../bindings";

const LAYER_NAMES: Record<Layer, string> = {
  defaults: "Built-in defaults",
  managed: "School-managed settings",
  user: "Your settings file",
  environment: "Environment variables",
  command_line: "Command line",
};

export function layerName(layer: Layer): string {
  return LAYER_NAMES[layer];
}

/** "file, line 3, column 14, key `server_url`" — where to look. */
export function problemLocation(p: ConfigProblem): string {
  const parts = [p.origin];
  if (p.line != null) {
    parts.push(`line ${p.line}` + (p.column != null ? `, column ${p.column}` : ""));
  }
  if (p.key != null) parts.push(`key “${p.key}”`);
  return parts.join(", ");
}

/** What a layer did, in one short phrase. */
export function sourceSummary(s: ConfigSource): string {
  if (s.status === "absent") return "not present";
  if (s.status === "invalid") return "has a problem (ignored)";
  const parts: string[] = [];
  parts.push(s.effective.length > 0 ? `sets ${s.effective.join(", ")}` : "nothing in effect");
  if (s.ignored_locked.length > 0) {
    parts.push(`${s.ignored_locked.join(", ")} locked by your school`);
  }
  return parts.join("; ");
}
