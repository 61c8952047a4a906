// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { UpdateStatus } from "../bindings";

const updateStatus = vi.fn();
const updateCheckNow = vi.fn();
vi.mock("../bindings", () => ({
  commands: { updateStatus: () => updateStatus(), updateCheckNow: () => updateCheckNow() },
}));

import UpdatePanel from "./UpdatePanel.svelte";
import { i18n } from "./i18n.svelte";

const base: UpdateStatus = {
  current: "0.1.0",
  phase: { phase: "up_to_date" },
  channel: "stable",
  pin: null,
  last_check_ms: Date.UTC(2026, 11, 1, 8, 0),
  waiting_since_ms: null,
};

describe("UpdatePanel", () => {
  afterEach(() => {
    cleanup();
    i18n.lang = "en";
  });

  it("says why a downloaded update waits, in plain words, in both languages", async () => {
    updateStatus.mockResolvedValue({
      ...base,
      pin: "0.2.",
      phase: { phase: "deferred", version: "0.2.1", wait: { reason: "work_waiting", items: 3 } },
    });
    render(UpdatePanel);
    const phase = await screen.findByTestId("update-phase");
    expect(phase.textContent).toBe(
      "Version 0.2.1 is downloaded and checked. It will be installed once the 3 answers and submissions waiting on this computer have reached the server.",
    );
    expect(screen.getByTestId("update-panel").textContent).toContain("Pinned by IT to versions 0.2.*");
    i18n.lang = "vi";
    await vi.waitFor(() => expect(screen.getByTestId("update-phase").textContent).toContain("3 câu trả lời và bài nộp đang chờ"));
  });

  it("an exam in progress, a per-machine install and a failed check", async () => {
    updateStatus.mockResolvedValue({ ...base, phase: { phase: "deferred", version: "0.2.0", wait: { reason: "attempt_open" } } });
    render(UpdatePanel);
    expect((await screen.findByTestId("update-phase")).textContent).toContain("after the exam in progress on this computer");
    cleanup();

    updateStatus.mockResolvedValue({ ...base, phase: { phase: "cannot_apply", version: "0.2.0", installability: "needs_elevation" } });
    render(UpdatePanel);
    expect((await screen.findByTestId("update-phase")).textContent).toContain("only IT can install it on this computer");
    cleanup();

    updateStatus.mockResolvedValue({
      ...base,
      phase: { phase: "failed", code: "update.bad_signature", message: "the update's signature does not match this app's key: x" },
    });
    render(UpdatePanel);
    expect((await screen.findByTestId("update-phase")).textContent).toContain("signature does not match");
    expect(screen.getByText("update.bad_signature")).toBeTruthy();
    await fireEvent.click(screen.getByTestId("update-check-now"));
    expect(updateCheckNow).toHaveBeenCalledOnce();
    expect(await screen.findByText("The update server will be asked within a minute.")).toBeTruthy();
  });

  it("updates turned off by IT: no button", async () => {
    updateStatus.mockResolvedValue({ ...base, phase: { phase: "off" } });
    render(UpdatePanel);
    expect((await screen.findByTestId("update-phase")).textContent).toContain("Automatic updates are off");
    expect(screen.queryByTestId("update-check-now")).toBeNull();
  });
});
