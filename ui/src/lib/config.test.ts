import { describe, expect, it } from "vitest";
import { layerName, problemLocation, sourceSummary } from "./config";

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
