import { describe, expect, it } from "vitest";
import type { SyncProgress } from "../bindings";
import { i18n } from "./i18n.svelte";
import { networkLabel, refusedLabel, syncLabel } from "./sync";

const progress = (state: SyncProgress["state"], remaining: number, done = 0): SyncProgress => ({
  state,
  remaining,
  refused: 0,
  others_waiting: 0,
  done,
  items_per_s: 0,
  current: null,
  last_error: null,
});

describe("sync words", () => {
  it("says where answers are when the server cannot be reached", () => {
    const net = { quality: "none", rtt_ms: null, since_ms: 0, reason: null, usable: false, probes: 1 } as const;
    expect(networkLabel({ ...net, state: "offline" })).toContain("kept on this computer");
    expect(networkLabel({ ...net, state: "server_down" })).toContain("kept on this computer");
    expect(networkLabel({ ...net, state: "captive_portal" })).toContain("sign-in page");
    expect(networkLabel(null)).toContain("Checking");
  });

  it("counts what waits and why", () => {
    expect(syncLabel(progress("syncing", 5, 7))).toBe("Sending… 7 sent, 5 to go");
    expect(syncLabel(progress("waiting_for_network", 3))).toBe("3 waiting for the connection");
    expect(syncLabel(progress("waiting_for_sign_in", 2))).toBe("2 waiting for you to sign in");
    expect(syncLabel(progress("waiting_for_sign_in", 0))).toBe("Nothing waiting");
    expect(syncLabel(progress("idle", 0))).toBe("Everything is sent");
  });

  it("never says everything is sent next to something the server refused", () => {
    const refused = { ...progress("idle", 0), refused: 1 };
    expect(syncLabel(refused)).toBe("Everything else is sent; 1 item was not accepted by the server (see below)");
    expect(syncLabel({ ...refused, refused: 2 })).toContain("2 items were not accepted");
    expect(refusedLabel(refused)?.short).toBe("1 not accepted");
    expect(refusedLabel(progress("idle", 0))).toBeNull();
    i18n.lang = "vi";
    expect(syncLabel(refused)).toBe("Đã gửi hết phần còn lại; máy chủ không nhận 1 mục (xem bên dưới)");
    i18n.lang = "en";
  });
});
