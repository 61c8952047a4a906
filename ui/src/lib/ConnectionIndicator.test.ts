// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/svelte";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { CoreEvent, NetStatus, SyncProgress } from "../bindings";

const syncStatus = vi.fn();
let emit: (event: CoreEvent) => void = () => {};
vi.mock("../bindings", () => ({
  commands: { syncStatus: () => syncStatus() },
  events: {
    coreEventMessage: {
      listen: async (cb: (e: { payload: CoreEvent }) => void) => {
        emit = (payload) => cb({ payload });
        return () => {};
      },
    },
  },
}));

import ConnectionIndicator from "./ConnectionIndicator.svelte";
import { i18n } from "./i18n.svelte";

const net = (state: NetStatus["state"]): NetStatus => ({
  state,
  quality: "good",
  rtt_ms: 20,
  since_ms: 0,
  reason: null,
  usable: state === "online" || state === "degraded",
  probes: 3,
});
const progress = (over: Partial<SyncProgress> = {}): SyncProgress => ({
  state: "idle",
  done: 0,
  remaining: 0,
  refused: 0,
  others_waiting: 0,
  items_per_s: null,
  current: null,
  last_error: null,
  ...over,
});

describe("ConnectionIndicator", () => {
  beforeEach(() => {
    i18n.lang = "en";
    syncStatus.mockResolvedValue({ status: "ok", data: { network: net("online"), progress: progress() } });
  });
  afterEach(cleanup);

  it("starts from the sync status, then follows network and sync events", async () => {
    const onToggle = vi.fn();
    render(ConnectionIndicator, { expanded: false, controls: "sync-drawer", onToggle });
    const button = await screen.findByRole("button", { name: /Online/ });
    expect(button.getAttribute("aria-expanded")).toBe("false");
    expect(button.getAttribute("aria-controls")).toBe("sync-drawer");

    emit({ type: "sync_progress", progress: progress({ state: "syncing", done: 12, remaining: 28 }) });
    await vi.waitFor(() => expect(screen.getByTestId("connection").textContent).toContain("Sending 12 of 40"));

    emit({ type: "network_changed", status: net("offline") });
    await vi.waitFor(() => expect(screen.getByTestId("connection").textContent).toContain("Offline — answers are kept on this computer"));
    // Seen: the short form (the header keeps its height); heard: the whole sentence.
    expect(screen.getByText("Offline — saved here").getAttribute("aria-hidden")).toBe("true");
    expect(screen.getByRole("button", { name: /^Offline — answers are kept on this computer/ })).toBeTruthy();
    emit({ type: "network_changed", status: net("captive_portal") });
    await vi.waitFor(() => expect(screen.getByTestId("connection").textContent).toContain("sign-in page"));
    emit({ type: "network_changed", status: net("server_down") });
    await vi.waitFor(() => expect(screen.getByTestId("connection").textContent).toContain("server unavailable"));
    emit({ type: "network_changed", status: net("degraded") });
    await vi.waitFor(() => expect(screen.getByTestId("connection").textContent).toContain("Slow connection"));

    screen.getByTestId("connection").click();
    expect(onToggle).toHaveBeenCalled();
  });

  it("is never a bare Online while the server refused something", async () => {
    render(ConnectionIndicator, { expanded: false, controls: "sync-drawer", onToggle: vi.fn() });
    await screen.findByRole("button", { name: /Online/ });
    expect(screen.queryByTestId("connection-refused")).toBeNull();
    emit({ type: "sync_progress", progress: progress({ refused: 2 }) });
    await vi.waitFor(() => expect(screen.getByTestId("connection-refused").textContent).toContain("2 not accepted"));
    expect(screen.getByRole("button", { name: /The server did not accept 2 items; they are kept on this computer/ })).toBeTruthy();
    emit({ type: "sync_progress", progress: progress({ refused: 0 }) });
    await vi.waitFor(() => expect(screen.queryByTestId("connection-refused")).toBeNull());
  });
});
