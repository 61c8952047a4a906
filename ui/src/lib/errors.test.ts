import { describe, expect, it } from "vitest";
import { describeError } from "./errors";
import { isNewer, snapshotOf } from "./auth.svelte";
import type { AuthSnapshot } from "../bindings";

describe("describeError", () => {
  it("says how long a lockout lasts", () => {
    expect(describeError({ kind: "locked_out", retry_after_s: 42 })).toContain("42 seconds");
    expect(describeError({ kind: "locked_out", retry_after_s: 290 })).toContain("5 minutes");
  });
  it("tells a wrong password apart from a network problem", () => {
    expect(describeError({ kind: "wrong_credentials" })).toContain("not right");
    expect(describeError({ kind: "offline", message: "could not connect" })).toContain("cannot be reached");
  });
});

const snap = (version: number): AuthSnapshot => ({
  version,
  status: "signed_in",
  has_session: true,
  user: "student1",
  expires_at: null,
  refreshing: false,
  reason: null,
  clock_offset_s: 0,
});

describe("auth snapshots", () => {
  it("only ever move forward", () => {
    expect(isNewer(null, snap(1))).toBe(true);
    expect(isNewer(snap(2), snap(3))).toBe(true);
    expect(isNewer(snap(3), snap(3))).toBe(false);
    expect(isNewer(snap(4), snap(3))).toBe(false);
  });
  it("come from auth_changed events only", () => {
    expect(snapshotOf({ type: "auth_changed", snapshot: snap(5) })?.version).toBe(5);
    expect(snapshotOf({ type: "refresh_started", version: 6 })).toBeNull();
  });
});
