import { describe, expect, it } from "vitest";
import { pingOf } from "./probe";

describe("pingOf", () => {
  it("answers probes and nothing else", () => {
    expect(pingOf({ type: "ping", id: 7, sent_ms: 1 })).toBe(7);
    expect(pingOf({ type: "ping", id: 0, sent_ms: 1 })).toBe(0);
    expect(pingOf({ type: "refresh_started", version: 3 })).toBeNull();
  });
});
