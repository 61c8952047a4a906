// @vitest-environment jsdom
import { cleanup, render, screen, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AttemptProgress, AttemptView } from "./bindings";

const currentAttempt = vi.fn();
const setUiLanguage = vi.fn(async (_language: string) => {});
const noteActivity = vi.fn(async () => null);
const ok = (data: unknown) => ({ status: "ok", data });
const syncStatus = {
  network: { state: "online", quality: "good", rtt_ms: 12, since_ms: 0, reason: null, probes: 1 },
  progress: { state: "idle", done: 0, remaining: 0, refused: 0, items_per_s: null, current: null, last_error: null },
  stats: {},
  queue: { pending: 0, in_flight: 0, dead: 0, done: 7, bytes: null, evicted: 0, coalesced: 0 },
  outages: [],
};
vi.mock("./bindings", () => ({
  commands: {
    appInfo: async () => ({
      version: "0.1.0",
      data_dir: "/home/student/.local/share/exam-desktop",
      server_url: "https://exams.school.example/",
      config_sources: [],
      locked_keys: [],
      config_problems: [],
      settings: [],
      log_file: null,
    }),
    authSnapshot: async () => ({
      version: 4, status: "signed_in", has_session: true, user: "student4", expires_at: null, refreshing: false, reason: null, clock_offset_s: 0,
    }),
    currentAttempt: () => currentAttempt(),
    examList: async () => ok({ exams: [], fetched_at: null, offline_reason: null, changes_in_ms: null }),
    syncStatus: async () => ok(syncStatus),
    securityStatus: async () => ok({ now: { findings: [], checked_at: null }, reports: [] }),
    deadLetters: async () => ok([]),
    // Called after the test module has run, so `progress` (below) is set by then.
    attemptProgress: async () => ok(progress),
    setCurrentQuestion: async () => ok(null),
    setUiLanguage: (language: string) => setUiLanguage(language),
    noteActivity: () => noteActivity(),
  },
  events: { coreEventMessage: { listen: async () => () => {} } },
}));

import App from "./App.svelte";
import { i18n, STORAGE_KEY } from "./lib/i18n.svelte";

const progress: AttemptProgress = {
  answers: [],
  submission: null,
  deadline_at: "2025-03-12T05:00:00Z",
  deadline_confirmed: true,
  remaining_ms: 600_000,
  start_error: null,
  start_refusal: null,
};
const attempt = {
  attempt_id: "att-1",
  exam_id: "math",
  title: "Toán 10",
  instructions: "",
  status: "in_progress",
  started_at: "2025-03-12T03:30:00Z",
  current_question: null,
  resumed_answers: 2,
  unreadable_answers: 0,
  key_missing: false,
  progress,
  questions: [{ id: "q1", kind: "short", prompt: "?", options: [], max_length: null, answer: "x", answered: true, flagged: false, save: null, unreadable: false }],
} satisfies AttemptView;

describe("App", () => {
  beforeEach(() => {
    i18n.lang = "en";
    localStorage.clear();
    currentAttempt.mockReset();
  });
  afterEach(cleanup);

  it("signed in: the exam list, the account facts and the header, in English or Vietnamese", async () => {
    currentAttempt.mockResolvedValue(ok(null));
    const user = userEvent.setup();
    render(App);
    await screen.findByTestId("exam-list");
    expect(screen.getByTestId("signed-in-user").textContent).toBe("student4");
    expect(screen.getByTestId("data-dir").textContent).toBe("/home/student/.local/share/exam-desktop");
    expect(screen.getByTestId("server-url").textContent).toContain("https://exams.school.example/");
    expect(screen.getByTestId("app-version").textContent?.trim()).toBe("v0.1.0");
    for (const id of ["open-status", "refresh-now", "sign-out"]) expect(screen.getByTestId(id)).toBeTruthy();
    expect(screen.getByRole("banner")).toBeTruthy();
    expect(screen.getByRole("main")).toBeTruthy();

    await user.selectOptions(screen.getByLabelText("Language"), "vi");
    expect(screen.getByRole("heading", { name: "Bài thi của bạn" })).toBeTruthy();
    expect(screen.getByTestId("sign-out").textContent).toBe("Đăng xuất");
    expect(localStorage.getItem(STORAGE_KEY)).toBe("vi");
    expect(document.documentElement.lang).toBe("vi");
    expect(setUiLanguage).toHaveBeenLastCalledWith("vi");
    expect(screen.getByLabelText("Ngôn ngữ")).toBe(screen.getByTestId("language"));
  });

  it("after a restart, the attempt that was open comes back at once", async () => {
    currentAttempt.mockResolvedValue(ok(attempt));
    render(App);
    expect((await screen.findByTestId("resumed")).textContent).toContain("Your 2 saved answers are here");
    expect(screen.getByRole("timer")).toBeTruthy();
    expect(screen.queryByTestId("exam-list")).toBeNull();
    expect(screen.getByTestId("signed-in-user").textContent).toBe("student4");
  });

  it("signing out is always possible, also in the middle of an exam, and says what stays", async () => {
    currentAttempt.mockResolvedValue(ok(attempt));
    noteActivity.mockClear();
    syncStatus.progress.remaining = 12;
    const user = userEvent.setup();
    render(App);
    await screen.findByTestId("resumed");
    await user.click(screen.getByTestId("sign-out"));
    const dialog = await screen.findByRole("alertdialog", { name: "Sign out?" });
    expect(within(dialog).getByTestId("sign-out-what").textContent).toContain(
      "Your 12 saved items are on this computer and will be sent to your account as soon as the network allows. You do not need to come back.",
    );
    expect(dialog.textContent).toContain("Your exam stays open");
    expect(document.activeElement).toBe(within(dialog).getByTestId("confirm-sign-out"));
    // Staying keeps everything as it was.
    await user.click(within(dialog).getByTestId("cancel-sign-out"));
    expect(screen.queryByRole("alertdialog")).toBeNull();
    expect(screen.getByRole("timer")).toBeTruthy();
    // Keys and clicks tell the core the student is here, at most every 20 s.
    expect(noteActivity).toHaveBeenCalledTimes(1);
    syncStatus.progress.remaining = 0;
    await user.click(screen.getByTestId("sign-out"));
    expect((await screen.findByTestId("sign-out-what")).textContent).toContain(
      "Everything you did is on the Exam Bank server.",
    );
    await user.click(screen.getByTestId("cancel-sign-out"));
    // Once the exam is submitted, it is not "open" any more.
    progress.submission = {
      state: "delivered",
      submitted_at: "2025-03-12T04:00:00Z",
      answer_count: 1,
      local_digest: "ab",
      receipt_id: "r-1",
      receipt_digest: "ab",
      delivered_at: "2025-03-12T04:00:01Z",
      late: false,
      error: null,
      refusal: null,
    };
    try {
      await user.click(screen.getByTestId("sign-out"));
      const what = await screen.findByRole("alertdialog", { name: "Sign out?" });
      expect(what.textContent).not.toContain("Your exam stays open");
    } finally {
      progress.submission = null;
    }
  });

  it("the connection button opens the sync drawer; Escape closes it and returns focus", async () => {
    currentAttempt.mockResolvedValue(ok(null));
    const user = userEvent.setup();
    render(App);
    const connection = await screen.findByRole("button", { name: /Online/ });
    const drawer = screen.getByTestId("sync-drawer");
    expect(drawer.hidden).toBe(true);
    await user.click(connection);
    expect(drawer.hidden).toBe(false);
    expect(connection.getAttribute("aria-expanded")).toBe("true");
    expect(await within(drawer).findByRole("heading", { name: "Connection and sync" })).toBeTruthy();
    expect(screen.getByRole("complementary", { name: "Connection and sync" })).toBe(drawer);
    await user.keyboard("{Escape}");
    expect(drawer.hidden).toBe(true);
    expect(document.activeElement).toBe(connection);
  });
});
