// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/svelte";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { SecurityFinding, SecurityStatus } from "../bindings";

const securityStatus = vi.fn();
vi.mock("../bindings", () => ({
  commands: { securityStatus: () => securityStatus() },
  events: { coreEventMessage: { listen: async () => () => {} } },
}));

import SecurityPanel from "./SecurityPanel.svelte";
import { i18n } from "./i18n.svelte";

const zoom: SecurityFinding = {
  code: "prohibited_program",
  severity: "warning",
  confidence: "medium",
  subject: "zoom",
  category: "meetings_chat",
  evidence: "process `notes` (pid 77, file /tmp/x/zoom) is meetings_chat program `zoom`",
  blocks_start: false,
};
const status: SecurityStatus = {
  now: { findings: [zoom], checked_at: "2026-12-01T09:00:00Z" },
  policy: {
    programs: { remote_control: ["anydesk", "teamviewer"], meetings_chat: ["zoom"], screen_recording: ["obs"] },
    allowed: ["teams"],
    before_start: { remote_control: "refuse", meetings_chat: "warn", screen_recording: "warn" },
    one_display: true,
  },
  reports: [{ at: "2026-12-01T09:00:00Z", event_type: "security.prohibited_program", finding: zoom, attempt_id: "a1" }],
  scan_p50_us: 6200,
  scan_p99_us: 6900,
};

describe("SecurityPanel", () => {
  afterEach(cleanup);

  it("shows what is checked, the policy, what is found with its evidence, and what was reported", async () => {
    i18n.lang = "en";
    securityStatus.mockResolvedValue({ status: "ok", data: status });
    render(SecurityPanel);
    const now = await screen.findByTestId("security-now");
    expect(now.textContent).toContain("Zoom (meetings and chat) is running.");
    expect(now.textContent).toContain("pid 77, file /tmp/x/zoom");
    expect(now.textContent).toContain("certainty: medium");
    const policy = screen.getByTestId("security-policy").textContent ?? "";
    expect(policy).toContain("Remote control");
    expect(policy).toContain("an exam does not start while one runs");
    expect(policy).toContain("2 programs listed");
    expect(policy).toContain("Microsoft Teams");
    expect(screen.getByTestId("security-reports").textContent).toContain("Zoom (meetings and chat) is running.");
    expect(screen.getByTestId("security-panel").textContent).toContain("A check takes 6.2 ms");
  });
});
