import { describe, expect, it } from "vitest";
import { pingOf } from "./probe";

describe("pingOf", () => {
  it("answers probes and nothing else", () => {
    expect(pingOf({ type: "ping", id: 7, sent_ms: 1, answer_after_ms: 0 })).toEqual({ id: 7, answerAfterMs: 0 });
    expect(pingOf({ type: "ping", id: 0, sent_ms: 1, answer_after_ms: 20 })).toEqual({ id: 0, answerAfterMs: 20 });
    expect(pingOf({ type: "refresh_started", version: 3 })).toBeNull();
  });
});
