// @vitest-environment jsdom
import { cleanup, render, screen, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ExamList as List, ExamReadiness, ExamSummary, ReadinessLine } from "../bindings";

const examList = vi.fn();
const downloadExam = vi.fn();
const startAttempt = vi.fn();
const startAttemptWithCode = vi.fn();
const attemptView = vi.fn();
const examReadiness = vi.fn();
vi.mock("../bindings", () => ({
  commands: {
    examList: () => examList(),
    downloadExam: (id: string) => downloadExam(id),
    examReadiness: (id: string) => examReadiness(id),
    startAttempt: (id: string) => startAttempt(id),
    startAttemptWithCode: (id: string, code: string) => startAttemptWithCode(id, code),
    attemptView: (id: string) => attemptView(id),
  },
  events: {},
}));

import ExamList from "./ExamList.svelte";
import { i18n } from "./i18n.svelte";

const hour = 3_600_000;
const exam = (over: Partial<ExamSummary>): ExamSummary => ({
  id: "math",
  title: "Toán 10 — Giữa kỳ",
  version: 3,
  opens_at: new Date(Date.now() - hour).toISOString(),
  closes_at: new Date(Date.now() + 5 * hour).toISOString(),
  duration_s: 5400,
  question_count: 40,
  downloaded_version: null,
  update_available: false,
  active_attempt_id: null,
  submitted: false,
  start_block: null,
  sealed: false,
  download_from: null,
  opens_in_ms: null,
  opening: "nothing",
  min_client_version: null,
  version_needed: null,
  ...over,
});

/** A card as the core makes it: every line fine, unless `over` says otherwise. */
const card = (examId: string, over: Partial<Record<ReadinessLine["code"], ReadinessLine>> = {}) => {
  const fine: ReadinessLine[] = [
    { code: "package", state: "ok", finding: { kind: "package_checked", version: 3, sealed: false }, title: "", fix: null },
    { code: "server", state: "ok", finding: { kind: "server_reachable" }, title: "", fix: null },
    { code: "disk", state: "ok", finding: { kind: "disk_free", free_mb: 20_000 }, title: "", fix: null },
    { code: "clock", state: "ok", finding: { kind: "clock_in_step", offset_s: 0.4 }, title: "", fix: null },
    { code: "prohibited_apps", state: "ok", finding: { kind: "no_prohibited_apps" }, title: "", fix: null },
    { code: "app_version", state: "ok", finding: { kind: "version_allowed", have: "0.1.0", needed: null }, title: "", fix: null },
  ];
  const lines = fine.map((l) => over[l.code] ?? l);
  const data: ExamReadiness = {
    exam_id: examId,
    ready: lines.every((l) => l.state !== "fail"),
    lines,
    checked_at: new Date().toISOString(),
  };
  return { status: "ok" as const, data };
};
const list = (exams: ExamSummary[], over: Partial<List> = {}): { status: "ok"; data: List } => ({
  status: "ok",
  data: { exams, fetched_at: new Date().toISOString(), offline_reason: null, changes_in_ms: null, ...over },
});

async function setup(result: ReturnType<typeof list>) {
  examList.mockResolvedValue(result);
  const onOpen = vi.fn();
  render(ExamList, { onOpen });
  await screen.findAllByRole("listitem");
  return onOpen;
}

describe("ExamList", () => {
  beforeEach(() => {
    i18n.lang = "en";
    for (const f of [examList, downloadExam, startAttempt, startAttemptWithCode, attemptView, examReadiness]) f.mockReset();
    examReadiness.mockImplementation(async (id: string) => card(id));
  });
  afterEach(cleanup);

  it("shows each exam's facts and whether it is ready offline", async () => {
    await setup(list([exam({ downloaded_version: 3 }), exam({ id: "phys", title: "Physics" })]));
    const row = screen.getByTestId("exam-math");
    expect(within(row).getByRole("heading", { level: 3 }).textContent).toBe("Toán 10 — Giữa kỳ");
    expect(row.textContent).toContain("1 h 30 min · 40 questions");
    expect(screen.getByTestId("exam-ready-math").textContent).toContain("Ready offline (v3)");
    expect(screen.queryByTestId("exam-ready-phys")).toBeNull();
    const download = screen.getByTestId("download-math") as HTMLButtonElement;
    expect(download.disabled).toBe(true);
    expect(download.getAttribute("aria-describedby")).toBeTruthy();
    expect(row.textContent).toContain("It is already on this computer.");
    expect((screen.getByTestId("download-phys") as HTMLButtonElement).disabled).toBe(false);
    expect(screen.queryByTestId("exam-list-offline")).toBeNull();
  });

  it("offers an update when a newer version exists", async () => {
    await setup(list([exam({ downloaded_version: 2, version: 3, update_available: true })]));
    expect(screen.getByTestId("exam-ready-math").textContent).toContain("Ready offline (v2)");
    expect(screen.getByTestId("exam-math").textContent).toContain("Update available");
    const download = screen.getByTestId("download-math") as HTMLButtonElement;
    expect(download.textContent?.trim()).toBe("Download the update");
    expect(download.disabled).toBe(false);
  });

  it("offline: says the kept list is shown; only downloaded exams can start", async () => {
    await setup(
      list([exam({ downloaded_version: 3 }), exam({ id: "phys" })], { offline_reason: { code: "no_answer", after_ms: 8000 } }),
    );
    const notice = screen.getByTestId("exam-list-offline");
    expect(notice.textContent).toContain("the list kept on this computer is shown");
    expect(notice.textContent).toContain("The server does not answer (no reply within 8 s).");
    expect((screen.getByTestId("start-math") as HTMLButtonElement).disabled).toBe(false);
    expect((screen.getByTestId("start-phys") as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByTestId("download-phys") as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId("exam-phys").textContent).toContain("Downloading needs a connection");
  });

  it("an exam the core says has not opened yet cannot be started, and says when it opens", async () => {
    const opens_at = new Date(Date.now() + 2 * hour).toISOString();
    await setup(list([exam({ opens_at, start_block: { reason: "not_yet_open", opens_at } })]));
    expect((screen.getByTestId("start-math") as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId("exam-math").textContent).toContain("This exam opens at");
  });

  it("keeps no copy of the rule: the times alone do not block, the core's verdict does", async () => {
    // Opens in two hours by its times, but the core (on the server's clock) says it may start.
    await setup(list([exam({ opens_at: new Date(Date.now() + 2 * hour).toISOString(), downloaded_version: 3 })]));
    expect((screen.getByTestId("start-math") as HTMLButtonElement).disabled).toBe(false);
  });

  it("reads the list again when the core says an exam opens", async () => {
    vi.useFakeTimers();
    try {
      const opens_at = new Date(Date.now() + 60_000).toISOString();
      examList.mockResolvedValueOnce(
        list([exam({ opens_at, start_block: { reason: "not_yet_open", opens_at } })], { changes_in_ms: 60_000 }),
      );
      examList.mockResolvedValue(list([exam({ opens_at, downloaded_version: 3 })]));
      render(ExamList, { onOpen: vi.fn() });
      await vi.advanceTimersByTimeAsync(0);
      expect((screen.getByTestId("start-math") as HTMLButtonElement).disabled).toBe(true);
      await vi.advanceTimersByTimeAsync(60_500);
      expect(examList).toHaveBeenCalledTimes(2);
      expect((screen.getByTestId("start-math") as HTMLButtonElement).disabled).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it("downloads and then shows the exam as ready", async () => {
    await setup(list([exam({})]));
    downloadExam.mockResolvedValue({ status: "ok", data: exam({ downloaded_version: 3 }) });
    const user = userEvent.setup();
    await user.click(screen.getByTestId("download-math"));
    expect(downloadExam).toHaveBeenCalledWith("math");
    expect((await screen.findByTestId("exam-ready-math")).textContent).toContain("Ready offline (v3)");
  });

  it("starts an attempt, or resumes the one in progress", async () => {
    const onOpen = await setup(list([exam({}), exam({ id: "phys", active_attempt_id: "att-9" })]));
    const view = { attempt_id: "att-1" };
    startAttempt.mockResolvedValue({ status: "ok", data: view });
    attemptView.mockResolvedValue({ status: "ok", data: { attempt_id: "att-9" } });
    const user = userEvent.setup();
    await user.click(screen.getByTestId("start-math"));
    expect(startAttempt).toHaveBeenCalledWith("math");
    expect(onOpen).toHaveBeenCalledWith(view);
    const resume = screen.getByTestId("start-phys");
    expect(resume.textContent?.trim()).toBe("Resume");
    await user.click(resume);
    expect(attemptView).toHaveBeenCalledWith("att-9");
    expect(startAttempt).toHaveBeenCalledTimes(1);
  });

  it("says why a start failed", async () => {
    await setup(list([exam({})]));
    startAttempt.mockResolvedValue({
      status: "error",
      error: { kind: "offline", reason: { code: "portal_sign_in", host: "login.lab" } },
    });
    const user = userEvent.setup();
    await user.click(screen.getByTestId("start-math"));
    expect((await screen.findByRole("alert")).textContent).toBe(
      "The Exam Bank server cannot be reached: this network wants you to sign in to it first " +
        "(its sign-in page is at login.lab). Check the network, or ask your teacher.",
    );
  });

  it("a submitted exam cannot be started again", async () => {
    await setup(list([exam({ submitted: true, downloaded_version: 3, start_block: { reason: "already_submitted" } })]));
    expect((screen.getByTestId("start-math") as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId("exam-math").textContent).toContain("You have already submitted this exam.");
  });

  describe("readiness", () => {
    const tooOld: ReadinessLine = {
      code: "app_version",
      state: "fail",
      finding: { kind: "version_too_old", have: "0.1.0", needed: "0.2.0" },
      title: "This exam needs version 0.2.0 or newer; this computer has 0.1.0",
      fix: "Ask IT to update the app before the exam.",
    };
    const lowDisk: ReadinessLine = {
      code: "disk",
      state: "warn",
      finding: { kind: "disk_low", free_mb: 300, reserve_mb: 512 },
      title: "",
      fix: "",
    };

    it("a card under each downloaded exam only: every line, its verdict, and how to fix it", async () => {
      examReadiness.mockImplementation(async (id: string) => card(id, { app_version: tooOld, disk: lowDisk }));
      await setup(list([exam({ downloaded_version: 3 }), exam({ id: "phys", title: "Physics" })]));
      const section = await screen.findByTestId("readiness-verdict-math");
      expect(section.textContent?.trim()).toBe("Not ready");
      expect(examReadiness).toHaveBeenCalledWith("math");
      expect(examReadiness).not.toHaveBeenCalledWith("phys");
      expect(screen.queryByTestId("readiness-phys")).toBeNull();
      const line = (code: string) => screen.getByTestId(`readiness-math-${code}`);
      expect(line("package").textContent).toContain("Downloaded and checked (version 3)");
      expect(line("package").dataset.state).toBe("ok");
      expect(line("server").textContent).toContain("The Exam Bank server can be reached");
      expect(line("disk").dataset.state).toBe("warn");
      expect(line("disk").textContent).toContain("Only 300 MB free on the disk (less than 512 MB)");
      expect(line("disk").textContent).toContain("Ask IT to free some space before the exam.");
      expect(line("clock").textContent).toContain("The clock agrees with the server's");
      expect(line("prohibited_apps").textContent).toContain("No prohibited program is running");
      expect(line("app_version").dataset.state).toBe("fail");
      expect(line("app_version").textContent).toContain("Must be fixed:");
      expect(line("app_version").textContent).toContain(
        "This exam needs version 0.2.0 or newer; this computer has 0.1.0",
      );
      expect(line("app_version").querySelector(".fix")?.textContent).toBe("Ask IT to update the app before the exam.");
      // A fine line offers no fix.
      expect(line("package").querySelector(".fix")).toBeNull();
    });

    it("in Vietnamese", async () => {
      i18n.lang = "vi";
      examReadiness.mockImplementation(async (id: string) =>
        card(id, {
          app_version: tooOld,
          server: { code: "server", state: "warn", finding: { kind: "start_code_needed" }, title: "", fix: "" },
          clock: { code: "clock", state: "warn", finding: { kind: "clock_off", offset_s: 600 }, title: "", fix: "" },
          prohibited_apps: {
            code: "prohibited_apps",
            state: "fail",
            finding: { kind: "prohibited_apps", programs: ["anydesk"], blocks_start: true },
            title: "",
            fix: "",
          },
        }),
      );
      await setup(list([exam({ downloaded_version: 3 })]));
      expect((await screen.findByTestId("readiness-verdict-math")).textContent?.trim()).toBe("Chưa sẵn sàng");
      const line = (code: string) => screen.getByTestId(`readiness-math-${code}`).textContent;
      expect(line("app_version")).toContain("Bài thi này cần phiên bản 0.2.0 trở lên; máy này đang có 0.1.0");
      expect(line("app_version")).toContain("Hãy nhờ bộ phận IT cập nhật ứng dụng trước giờ thi.");
      expect(line("server")).toContain("khi bắt đầu sẽ cần mã bắt đầu do giám thị đọc");
      expect(line("clock")).toContain("Đồng hồ chậm hơn máy chủ 10 phút 0 giây");
      expect(line("prohibited_apps")).toContain("Đang chạy chương trình bị cấm: anydesk");
      expect(line("prohibited_apps")).toContain("bài thi không bắt đầu được khi chúng đang chạy");
      expect(screen.getByTestId("readiness-math").textContent).toContain("Máy tính này đã sẵn sàng chưa?");
    });

    it("an exam that needs a newer app says so on the list, before the exam and without a download", async () => {
      await setup(list([exam({ min_client_version: "0.2.0", version_needed: { needed: "0.2.0", have: "0.1.0" } })]));
      expect(screen.getByTestId("exam-version-math").textContent?.trim()).toBe(
        "This exam needs version 0.2.0 or newer; this computer has 0.1.0 — ask IT to update",
      );
      i18n.lang = "vi";
      await Promise.resolve();
      expect(screen.getByTestId("exam-version-math").textContent?.trim()).toBe(
        "Bài thi này cần phiên bản 0.2.0 trở lên; máy này đang có 0.1.0 — hãy nhờ bộ phận IT cập nhật",
      );
    });

    it("is read again on demand and after a download", async () => {
      await setup(list([exam({ downloaded_version: 3 }), exam({ id: "phys" })]));
      expect((await screen.findByTestId("readiness-verdict-math")).textContent?.trim()).toBe("Ready");
      const user = userEvent.setup();
      examReadiness.mockImplementation(async (id: string) => card(id, { app_version: tooOld }));
      await user.click(screen.getByTestId("readiness-again-math"));
      expect((await screen.findByTestId("readiness-verdict-math")).textContent?.trim()).toBe("Not ready");
      downloadExam.mockResolvedValue({ status: "ok", data: exam({ id: "phys", downloaded_version: 3 }) });
      await user.click(screen.getByTestId("download-phys"));
      expect((await screen.findByTestId("readiness-verdict-phys")).textContent?.trim()).toBe("Not ready");
      expect(examReadiness).toHaveBeenCalledWith("phys");
    });

    it("says when this computer could not be checked", async () => {
      examReadiness.mockResolvedValue({ status: "error", error: { kind: "not_signed_in" } });
      await setup(list([exam({ downloaded_version: 3 })]));
      expect(await screen.findByText(/This computer could not be checked: You are not signed in\./)).toBeTruthy();
    });
  });

  describe("sealed exams", () => {
    const sealed = (over: Partial<ExamSummary>) =>
      exam({ id: "final", title: "Final exam", sealed: true, opening: "key_or_start_code", ...over });

    it("downloaded ahead: ready, when it opens, a countdown, and what the start will need", async () => {
      vi.useFakeTimers({ toFake: ["setTimeout", "setInterval", "performance"] });
      try {
        const opens_at = new Date(Date.now() + 5 * 60_000).toISOString();
        examList.mockResolvedValue(
          list([
            sealed({
              opens_at,
              opens_in_ms: 5 * 60_000,
              downloaded_version: 1,
              start_block: { reason: "not_yet_open", opens_at },
            }),
          ]),
        );
        render(ExamList, { onOpen: vi.fn() });
        await vi.advanceTimersByTimeAsync(0);
        expect(screen.getByTestId("exam-sealed-final").textContent).toContain("Sealed until it opens");
        expect(screen.getByTestId("exam-ready-final").textContent).toMatch(/Ready — opens at \d\d:\d\d/);
        expect(screen.getByTestId("opens-in-final").textContent?.trim()).toBe("Opens in 5:00");
        await vi.advanceTimersByTimeAsync(61_000);
        expect(screen.getByTestId("opens-in-final").textContent?.trim()).toBe("Opens in 3:59");
        expect(screen.getByTestId("exam-needs-final").textContent).toContain("nothing to type");
        expect((screen.getByTestId("start-final") as HTMLButtonElement).disabled).toBe(true);
      } finally {
        vi.useRealTimers();
      }
    });

    it("cannot be downloaded before the server allows it, and says from when", async () => {
      const download_from = new Date(Date.now() + 24 * hour).toISOString();
      await setup(list([sealed({ download_from })]));
      expect((screen.getByTestId("download-final") as HTMLButtonElement).disabled).toBe(true);
      expect(screen.getByTestId("exam-final").textContent).toContain("It can be downloaded from");
    });

    it("offline and open: asks for the start code, formats it, and opens the exam with it", async () => {
      const onOpen = await setup(
        list([sealed({ downloaded_version: 1 })], { offline_reason: { code: "no_network" } }),
      );
      expect(screen.getByTestId("exam-needs-final").textContent).toContain("type the start code");
      expect(screen.queryByTestId("start-final")).toBeNull();
      const input = screen.getByTestId("start-code-final") as HTMLInputElement;
      const open = screen.getByTestId("open-with-code-final") as HTMLButtonElement;
      expect(open.disabled).toBe(true);
      const user = userEvent.setup();
      await user.type(input, "abcd efgh jk23");
      expect(input.value).toBe("ABCD-EFGH-JK23");
      startAttemptWithCode.mockResolvedValue({ status: "ok", data: { attempt_id: "att-1" } });
      await user.click(open);
      expect(startAttemptWithCode).toHaveBeenCalledWith("final", "ABCD-EFGH-JK23");
      expect(onOpen).toHaveBeenCalledWith({ attempt_id: "att-1" });
    });

    it("a start that cannot fetch the key asks for the code; a wrong code says so and waits", async () => {
      await setup(list([sealed({ downloaded_version: 1 })]));
      startAttempt.mockResolvedValue({
        status: "error",
        error: { kind: "start_code_needed", exam_id: "final", title: "Final exam" },
      });
      const user = userEvent.setup();
      await user.click(screen.getByTestId("start-final"));
      expect((await screen.findByRole("alert")).textContent).toContain(
        "“Final exam” is sealed and the Exam Bank server cannot be reached for its key",
      );
      await user.type(screen.getByTestId("start-code-final"), "AAAABBBBCCCC");
      startAttemptWithCode.mockResolvedValue({
        status: "error",
        error: { kind: "start_code_refused", exam_id: "final", title: "Final exam", retry_in_ms: 4000 },
      });
      await user.click(screen.getByTestId("open-with-code-final"));
      expect((await screen.findByRole("alert")).textContent).toContain("This start code does not open “Final exam”");
      expect((screen.getByTestId("open-with-code-final") as HTMLButtonElement).disabled).toBe(true);
      expect(screen.getByTestId("start-code-form-final").textContent).toContain("You can try again in 4 s.");
    });
  });
});
