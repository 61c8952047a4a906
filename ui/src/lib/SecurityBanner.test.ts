// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/svelte";
import { tick } from "svelte";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { CoreEvent, SecurityFinding } from "../bindings";

const securityStatus = vi.fn();
let deliver: ((event: { payload: CoreEvent }) => void) | undefined;
vi.mock("../bindings", () => ({
  commands: { securityStatus: () => securityStatus() },
  events: {
    coreEventMessage: {
      listen: async (handler: (event: { payload: CoreEvent }) => void) => {
        deliver = handler;
        return () => {};
      },
    },
  },
}));

import SecurityBanner from "./SecurityBanner.svelte";
import { i18n } from "./i18n.svelte";

const anydesk: SecurityFinding = {
  code: "prohibited_program",
  severity: "warning",
  confidence: "high",
  subject: "anydesk",
  category: "remote_control",
  evidence: "process `anydesk` (pid 4242) is remote_control program `anydesk`",
  blocks_start: true,
};
const vm: SecurityFinding = {
  code: "virtual_machine",
  severity: "info",
  confidence: "medium",
  subject: null,
  category: null,
  evidence: "SMBIOS system vendor: QEMU",
  blocks_start: false,
};
const status = (findings: SecurityFinding[]) => ({
  status: "ok",
  data: { now: { findings, checked_at: null }, reports: [] },
});

describe("SecurityBanner", () => {
  beforeEach(() => {
    i18n.lang = "en";
    securityStatus.mockReset();
  });
  afterEach(cleanup);

  it("says what was seen and what to do, live, and clears once it is fixed", async () => {
    securityStatus.mockResolvedValue(status([]));
    render(SecurityBanner, { inExam: true });
    await tick();
    expect(screen.queryByTestId("security-banner")).toBeNull();
    deliver?.({ payload: { type: "security_changed", security: { findings: [anydesk, vm], checked_at: null } } });
    await tick();
    const banner = screen.getByTestId("security-banner");
    expect(banner.textContent).toContain("AnyDesk is running: someone else could see or control this computer.");
    expect(banner.textContent).toContain("Close AnyDesk to continue.");
    expect(banner.textContent).toContain("Your exam goes on: nothing was stopped.");
    // Information (a virtual machine) is not a warning on the main screen.
    expect(banner.textContent).not.toContain("virtual machine");
    deliver?.({ payload: { type: "security_changed", security: { findings: [vm], checked_at: null } } });
    await tick();
    expect(screen.queryByTestId("security-banner")).toBeNull();
  });

  it("in Vietnamese", async () => {
    i18n.lang = "vi";
    securityStatus.mockResolvedValue(status([anydesk]));
    render(SecurityBanner);
    expect((await screen.findByTestId("security-banner")).textContent).toContain("Hãy đóng AnyDesk để tiếp tục.");
  });
});

describe("every finding", () => {
  const codes: [SecurityFinding["code"], string | null, string, string][] = [
    ["sign_in_failures", "6", "6 wrong passwords were typed on this computer", "Đã có 6 lần nhập sai mật khẩu"],
    ["session_reused", "student3", "The server ended student3's session", "phiên đăng nhập của student3"],
    ["token_refused_early", null, "earlier than expected", "sớm hơn dự kiến"],
    ["request_burst", "slowed down", "asked this app to slow down", "gửi chậm lại"],
    ["network_changed", null, "network changed during your exam", "Mạng của máy tính này đã thay đổi"],
  ];
  afterEach(() => {
    i18n.lang = "en";
  });
  for (const [code, subject, english, vietnamese] of codes) {
    it(`${code} is said in plain words, in English and Vietnamese`, async () => {
      const { findingSentence } = await import("./security");
      const finding: SecurityFinding = {
        code,
        severity: "warning",
        confidence: "medium",
        subject,
        category: null,
        evidence: "",
        blocks_start: false,
      };
      i18n.lang = "en";
      expect(findingSentence(finding)).toContain(english);
      i18n.lang = "vi";
      expect(findingSentence(finding)).toContain(vietnamese);
    });
  }
});
