import { describe, expect, it } from "vitest";
import { layerName, problemLocation, sourceSummary, userServer } from "./config";

describe("problemLocation", () => {
  it("names file, line, column and key", () => {
    expect(
      problemLocation({
        origin: "/etc/exam-desktop/config.toml",
        line: 3,
        column: 14,
        key: "server_url",
        message: "bad",
      }),
    ).toBe("/etc/exam-desktop/config.toml, line 3, column 14, key “server_url”");
  });

  it("leaves out what is unknown", () => {
    expect(
      problemLocation({ origin: "command line", line: null, column: null, key: null, message: "x" }),
    ).toBe("command line");
  });
});

describe("sourceSummary", () => {
  it("says what a layer sets and what the school locked", () => {
    expect(
      sourceSummary({
        layer: "command_line",
        origin: "--server",
        status: "applied",
        effective: ["data_dir"],
        ignored_locked: ["server_url"],
      }),
    ).toBe("sets data_dir; server_url locked by your school");
  });

  it("describes absent and invalid layers", () => {
    const base = { layer: "user" as const, origin: "x", effective: [], ignored_locked: [] };
    expect(sourceSummary({ ...base, status: "absent" })).toBe("not present");
    expect(sourceSummary({ ...base, status: "invalid" })).toBe("has a problem (ignored)");
  });
});

describe("layerName", () => {
  it("has a name for every layer", () => {
    expect(layerName("managed")).toBe("School-managed settings");
  });
});

describe("userServer", () => {
  const source = (layer: "defaults" | "managed" | "user" | "environment" | "command_line", effective: string[]) => ({
    layer,
    origin: layer === "environment" ? "EXAM_DESKTOP_SERVER" : layer,
    status: "applied" as const,
    effective,
    ignored_locked: [],
  });

  it("names the user-level setting that chose the server", () => {
    expect(userServer({ config_sources: [source("defaults", ["data_dir"]), source("environment", ["server_url"])] })).toBe(
      "EXAM_DESKTOP_SERVER",
    );
    expect(userServer({ config_sources: [source("command_line", ["server_url"])] })).toBe("--server");
    expect(userServer({ config_sources: [{ ...source("user", ["server_url"]), origin: "/home/s/.config/exam-desktop/config.toml" }] })).toBe(
      "/home/s/.config/exam-desktop/config.toml",
    );
  });

  it("says nothing when the school or the built-in default chose it", () => {
    expect(userServer({ config_sources: [source("managed", ["server_url"]), source("user", ["data_dir"])] })).toBeNull();
    expect(userServer({ config_sources: [source("defaults", ["server_url"])] })).toBeNull();
  });
});
