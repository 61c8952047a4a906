// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, within } from "@testing-library/svelte";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AnswerState, AttemptProgress, AttemptView, CoreEvent, SubmissionView } from "../bindings";

const saveAnswer = vi.fn();
const setFlag = vi.fn();
const setCurrentQuestion = vi.fn();
const attemptProgress = vi.fn();
const submitAttempt = vi.fn();
const closeAttempt = vi.fn();
const attemptFairTime = vi.fn();
let emit: (event: CoreEvent) => void = () => {};
vi.mock("../bindings", () => ({
  commands: {
    saveAnswer: (...a: unknown[]) => saveAnswer(...a),
    setFlag: (...a: unknown[]) => setFlag(...a),
    setCurrentQuestion: (...a: unknown[]) => setCurrentQuestion(...a),
    attemptProgress: (...a: unknown[]) => attemptProgress(...a),
    submitAttempt: (...a: unknown[]) => submitAttempt(...a),
    closeAttempt: (...a: unknown[]) => closeAttempt(...a),
    attemptFairTime: (...a: unknown[]) => attemptFairTime(...a),
  },
  events: {
    coreEventMessage: {
      listen: async (cb: (e: { payload: CoreEvent }) => void) => {
        emit = (payload) => cb({ payload });
        return () => {};
      },
    },
  },
}));

import ExamTaking from "./ExamTaking.svelte";
import { i18n } from "./i18n.svelte";

const answerState = (question_id: string, seq: number, over: Partial<AnswerState> = {}): AnswerState => ({
  question_id,
  seq,
  saved_local_at: "2025-03-12T03:40:00Z",
  saved_server_at: null,
  state: "local",
  refusal: null,
  answered: true,
  ...over,
});

const progress = (over: Partial<AttemptProgress> = {}): AttemptProgress => ({
  answers: [],
  submission: null,
  deadline_at: "2025-03-12T05:00:00Z",
  deadline_confirmed: true,
  remaining_ms: 90 * 60_000,
  start_error: null,
  start_refusal: null,
  ...over,
});

const submission = (over: Partial<SubmissionView> = {}): SubmissionView => ({
  state: "queued",
  submitted_at: "2025-03-12T04:00:00Z",
  answer_count: 2,
  local_digest: "sha256:1111",
  receipt_id: null,
  receipt_digest: null,
  delivered_at: null,
  late: null,
  error: null,
  refusal: null,
  ...over,
});

const view = (over: Partial<AttemptView> = {}): AttemptView => ({
  attempt_id: "att-1",
  exam_id: "math",
  title: "Toán 10",
  instructions: "",
  status: "in_progress",
  started_at: "2025-03-12T03:30:00Z",
  current_question: null,
  resumed_answers: null,
  unreadable_answers: 0,
  key_missing: false,
  progress: progress(),
  questions: [
    { id: "q1", kind: "single", prompt: "2 + 2 = ?", options: [{ id: "a", text: "4" }, { id: "b", text: "5" }], max_length: null, answer: null, answered: false, flagged: false, save: null, unreadable: false },
    { id: "q2", kind: "essay", prompt: "Tả Hà Nội.", options: [], max_length: 5000, answer: null, answered: false, flagged: false, save: null, unreadable: false },
    { id: "q3", kind: "short", prompt: "Thủ đô?", options: [], max_length: 40, answer: null, answered: false, flagged: false, save: null, unreadable: false },
  ],
  ...over,
});

function setup(v: AttemptView = view()) {
  const onClose = vi.fn();
  render(ExamTaking, { view: v, onClose });
  return onClose;
}

const status = () => screen.getByTestId("save-status").textContent?.trim();
const ok = (data: unknown) => ({ status: "ok", data });

describe("ExamTaking", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    i18n.lang = "en";
    for (const f of [saveAnswer, setFlag, setCurrentQuestion, attemptProgress, submitAttempt, closeAttempt, attemptFairTime]) f.mockReset();
    attemptFairTime.mockResolvedValue(ok({ attempt_id: "att-1", items: [], offline_ms: 0, not_running_ms: 0, total_ms: 0 }));
    let seq = 0;
    saveAnswer.mockImplementation(async (_a: string, q: string) => ok(answerState(q, ++seq)));
    setFlag.mockResolvedValue(ok(null));
    setCurrentQuestion.mockResolvedValue(ok(null));
    attemptProgress.mockResolvedValue(ok(progress()));
  });
  afterEach(() => {
    cleanup();
    vi.useRealTimers();
  });

  it("shows the title, the time left and a polite save status", () => {
    setup();
    expect(screen.getByRole("heading", { level: 2 }).textContent).toBe("Toán 10");
    const timer = screen.getByRole("timer");
    expect(timer.textContent?.trim()).toBe("1:30:00");
    expect(timer.getAttribute("aria-live")).toBe("off");
    const live = screen.getByTestId("save-status");
    expect(live.getAttribute("role")).toBe("status");
    expect(live.getAttribute("aria-live")).toBe("polite");
    expect(status()).toBe("Your answers are saved as you go.");
  });

  it("saves a typed answer 300 ms after the last key, then says where it is", async () => {
    setup(view({ current_question: "q2" }));
    const area = screen.getByTestId("answer-text") as HTMLTextAreaElement;
    area.value = "Hà Nội có";
    await fireEvent.input(area);
    expect(status()).toBe("Saving…");
    await vi.advanceTimersByTimeAsync(299);
    expect(saveAnswer).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(saveAnswer).toHaveBeenCalledWith("att-1", "q2", "Hà Nội có");
    await vi.advanceTimersByTimeAsync(0);
    expect(status()).toBe("Saved on this computer");
  });

  it("does not save while an input method composes", async () => {
    setup(view({ current_question: "q2" }));
    const area = screen.getByTestId("answer-text") as HTMLTextAreaElement;
    await fireEvent.compositionStart(area);
    for (const v of ["V", "Vi", "Viê", "Việt"]) {
      area.value = v;
      await fireEvent.input(area);
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(saveAnswer).not.toHaveBeenCalled();
    expect(area.value).toBe("Việt");
    await fireEvent.compositionEnd(area);
    await vi.advanceTimersByTimeAsync(300);
    expect(saveAnswer.mock.calls).toEqual([["att-1", "q2", "Việt"]]);
  });

  it("tells the server's confirmation after an exam_changed event (at most every 500 ms)", async () => {
    setup(view({ current_question: "q2" }));
    // The screen asks once when it opens.
    await vi.advanceTimersByTimeAsync(0);
    expect(attemptProgress).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(500);
    attemptProgress.mockClear();
    const at = new Date(2025, 2, 12, 10, 42).toISOString();
    attemptProgress.mockResolvedValue(ok(progress({ answers: [answerState("q2", 1, { state: "server", saved_server_at: at })] })));
    const area = screen.getByTestId("answer-text") as HTMLTextAreaElement;
    area.value = "x";
    await fireEvent.input(area);
    await vi.advanceTimersByTimeAsync(300);
    expect(status()).toBe("Saved on this computer");
    emit({ type: "exam_changed", attempt_id: "other-attempt" });
    await vi.advanceTimersByTimeAsync(0);
    expect(attemptProgress).not.toHaveBeenCalled();
    emit({ type: "exam_changed", attempt_id: "att-1" });
    for (let i = 0; i < 5; i++) emit({ type: "sync_progress", progress: { state: "syncing", done: i, remaining: 5 - i, refused: 0, others_waiting: 0, items_per_s: 10, current: null, last_error: null } });
    await vi.advanceTimersByTimeAsync(0);
    expect(attemptProgress).toHaveBeenCalledTimes(1);
    expect(attemptProgress).toHaveBeenCalledWith("att-1");
    expect(status()).toBe("Saved on the server at 10:42");
    // More events soon after: one more call, 500 ms after the first.
    emit({ type: "exam_changed", attempt_id: "att-1" });
    await vi.advanceTimersByTimeAsync(400);
    expect(attemptProgress).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(attemptProgress).toHaveBeenCalledTimes(2);
  });

  it("says plainly when an answer could not be saved", async () => {
    saveAnswer.mockResolvedValue({ status: "error", error: { kind: "storage_full" } });
    setup(view({ current_question: "q3" }));
    const field = screen.getByTestId("answer-text") as HTMLInputElement;
    field.value = "Hà Nội";
    await fireEvent.input(field);
    await vi.advanceTimersByTimeAsync(300);
    expect(status()).toBe(
      "Not saved: This computer's disk is full. Your earlier answers are safe. Please tell a proctor.",
    );
  });

  it("takes the welcome-back away when the first error shows, and keeps it away", async () => {
    const refusal = { status: 409, code: "attempt_closed", detail: null };
    const refused = answerState("q1", 2, { state: "refused", refusal });
    const resumed = view({ resumed_answers: 3 });
    resumed.questions[0].save = refused;
    setup(resumed);
    expect(screen.queryByTestId("resumed")).toBeNull();
    expect(status()).toContain("the exam was already submitted");
    expect(status()).toContain("please tell a proctor");
  });

  it("says when saved answers are locked because their key is missing, and offers to try again", () => {
    const locked = view({ unreadable_answers: 2, key_missing: true, resumed_answers: 2 });
    locked.questions[0].unreadable = true;
    setup(locked);
    const banner = screen.getByTestId("answers-unreadable");
    expect(banner.getAttribute("role")).toBe("alert");
    expect(banner.textContent).toContain("2 of your saved answers are locked on this computer");
    expect(banner.textContent).toContain("Nothing was deleted.");
    expect(screen.getByTestId("retry-key").textContent).toContain("Try again");
    expect(screen.getByTestId("answer-unreadable").textContent).toContain("It has not been deleted.");
    // "Nothing was lost" never stands next to it.
    expect(screen.queryByTestId("resumed")).toBeNull();
  });

  it("says when saved answers are damaged, without offering a key retry", () => {
    setup(view({ unreadable_answers: 1, key_missing: false }));
    expect(screen.getByTestId("answers-unreadable").textContent).toContain("A saved answer cannot be read on this computer");
    expect(screen.queryByTestId("retry-key")).toBeNull();
  });

  it("welcomes the student back with the number of saved answers; the banner can be closed", async () => {
    setup(view({ resumed_answers: 3 }));
    const banner = screen.getByTestId("resumed");
    expect(banner.textContent).toContain("Welcome back. Your 3 saved answers are here; nothing was lost.");
    await fireEvent.click(within(banner).getByRole("button"));
    expect(screen.queryByTestId("resumed")).toBeNull();
  });

  it("marks a question answered as the core says: a cleared answer is not one", async () => {
    setup(view({ current_question: "q3" }));
    const field = screen.getByTestId("answer-text") as HTMLInputElement;
    saveAnswer.mockImplementation(async (_a: string, q: string, value: unknown) =>
      ok(answerState(q, 7, { answered: value !== "   " })),
    );
    field.value = "Hà Nội";
    await fireEvent.input(field);
    await vi.advanceTimersByTimeAsync(300);
    expect(screen.getByTestId("nav-q3").getAttribute("aria-label")).toBe("Question 3, answered");
    // Spaces are not an answer; the UI does not decide that, the core's reply does.
    field.value = "   ";
    await fireEvent.input(field);
    await vi.advanceTimersByTimeAsync(300);
    expect(screen.getByTestId("nav-q3").getAttribute("aria-label")).toBe("Question 3, not answered");
  });

  it("moves between questions by list, buttons and Alt+arrows, saving what waits first", async () => {
    setup(view({ current_question: "q2" }));
    expect(screen.getByTestId("nav-q2").getAttribute("aria-current")).toBe("step");
    expect(screen.getByRole("navigation", { name: "Questions" })).toBeTruthy();
    const area = screen.getByTestId("answer-text") as HTMLTextAreaElement;
    area.value = "draft";
    await fireEvent.input(area);
    await fireEvent.click(screen.getByTestId("next"));
    // Saved at once, not 300 ms later.
    await vi.advanceTimersByTimeAsync(0);
    expect(saveAnswer).toHaveBeenCalledWith("att-1", "q2", "draft");
    expect(setCurrentQuestion).toHaveBeenLastCalledWith("att-1", "q3");
    expect(screen.getByTestId("nav-q3").getAttribute("aria-current")).toBe("step");
    expect(screen.getByTestId("nav-q2").getAttribute("aria-label")).toBe("Question 2, answered");
    await fireEvent.keyDown(window, { key: "ArrowLeft", altKey: true });
    expect(screen.getByTestId("nav-q2").getAttribute("aria-current")).toBe("step");
    expect((screen.getByTestId("answer-text") as HTMLTextAreaElement).value).toBe("draft");
    await fireEvent.click(screen.getByTestId("nav-q1"));
    expect(screen.getByTestId("question-prompt").textContent).toBe("2 + 2 = ?");
    expect((screen.getByTestId("prev") as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.keyDown(window, { key: "ArrowRight", altKey: true });
    expect(setCurrentQuestion).toHaveBeenLastCalledWith("att-1", "q2");
    // A shortcut takes focus to the new question, so it is not lost with the old one.
    await vi.advanceTimersByTimeAsync(0);
    expect(document.activeElement?.textContent).toBe("Question 2 of 3");
  });

  it("every control has a name and none is taken out of the Tab order", () => {
    for (const current_question of ["q1", "q2", "q3"]) {
      setup(view({ current_question, resumed_answers: 1 }));
      for (const role of ["button", "radio", "textbox"] as const) {
        const all = screen.queryAllByRole(role);
        expect(screen.queryAllByRole(role, { name: /\S/ })).toEqual(all);
        for (const el of all) expect(el.getAttribute("tabindex")).not.toBe("-1");
      }
      expect(screen.getByRole("navigation", { name: "Questions" })).toBeTruthy();
      cleanup();
    }
  });

  it("flags a question for review, in the list too", async () => {
    setup();
    await fireEvent.click(screen.getByTestId("flag"));
    expect(setFlag).toHaveBeenCalledWith("att-1", "q1", true);
    expect(screen.getByTestId("nav-q1").getAttribute("aria-label")).toBe("Question 1, not answered, flagged for review");
    expect(screen.getByTestId("overview").textContent).toBe("0 of 3 answered, 1 flagged for review");
  });

  it("reviews, submits after saving everything, and follows the submission to delivery", async () => {
    const onClose = setup();
    await fireEvent.click(screen.getByTestId("option-a"));
    await fireEvent.click(screen.getByTestId("review"));
    expect(screen.getByTestId("review-answered").textContent).toBe("1");
    expect(screen.getByTestId("review-unanswered").textContent).toBe("2");
    submitAttempt.mockResolvedValue(ok(submission()));
    await fireEvent.click(screen.getByTestId("submit"));
    expect(screen.getByTestId("confirm-step").textContent).toContain("2 questions are not answered");
    await fireEvent.click(screen.getByTestId("confirm-submit"));
    await vi.advanceTimersByTimeAsync(0);
    expect(saveAnswer).toHaveBeenCalledWith("att-1", "q1", "a");
    expect(saveAnswer.mock.invocationCallOrder[0]).toBeLessThan(submitAttempt.mock.invocationCallOrder[0]);
    expect(screen.getByTestId("submission-state").textContent).toContain("Submitted on this computer");
    expect(screen.queryByTestId("close-attempt")).toBeNull();
    expect(screen.queryByRole("timer")).toBeNull();

    attemptProgress.mockResolvedValue(
      ok(progress({ submission: submission({ state: "delivered", receipt_id: "R-2025-0042", receipt_digest: "sha256:abcdef0123456789", delivered_at: "2025-03-12T04:05:00Z" }) })),
    );
    emit({ type: "exam_changed", attempt_id: "att-1" });
    await vi.advanceTimersByTimeAsync(500);
    expect(screen.getByTestId("submission-state").textContent).toContain("Delivered");
    expect(screen.getByTestId("receipt-id").textContent).toBe("R-2025-0042");
    expect(screen.getByTestId("receipt-digest").textContent).toBe("sha256:abcdef0123456789");
    closeAttempt.mockResolvedValue(ok(null));
    await fireEvent.click(screen.getByTestId("close-attempt"));
    await vi.advanceTimersByTimeAsync(0);
    expect(closeAttempt).toHaveBeenCalledWith("att-1");
    expect(onClose).toHaveBeenCalled();
  });

  it("after submitting, says what time was lost to a restart and to the network, in plain words", async () => {
    const lost = { attempt_id: "att-1", items: [], offline_ms: 125_000, not_running_ms: 200_000, total_ms: 300_000 };
    attemptFairTime.mockResolvedValue(ok(lost));
    setup();
    submitAttempt.mockResolvedValue(ok(submission()));
    await fireEvent.click(screen.getByTestId("review"));
    await fireEvent.click(screen.getByTestId("submit"));
    await fireEvent.click(screen.getByTestId("confirm-submit"));
    await vi.advanceTimersByTimeAsync(0);
    expect(attemptFairTime).toHaveBeenCalledWith("att-1");
    expect(screen.getByTestId("fair-time-restart").textContent).toBe(
      "You lost 3 min 20 s to a restart (the app was not running). Your proctor can see this and can give you the time back.",
    );
    expect(screen.getByTestId("fair-time-offline").textContent).toContain("for 2 min 5 s");
  });

  it("says nothing about lost time when none was lost", async () => {
    attemptFairTime.mockResolvedValue(ok({ attempt_id: "att-1", items: [], offline_ms: 400, not_running_ms: 0, total_ms: 400 }));
    setup();
    submitAttempt.mockResolvedValue(ok(submission()));
    await fireEvent.click(screen.getByTestId("review"));
    await fireEvent.click(screen.getByTestId("submit"));
    await fireEvent.click(screen.getByTestId("confirm-submit"));
    await vi.advanceTimersByTimeAsync(0);
    expect(screen.queryByTestId("fair-time")).toBeNull();
  });

  it("says when the server did not accept the attempt, and that the answers are kept", () => {
    const start_refusal = { status: 403, code: "exam_closed", detail: "closed at 10:00" };
    setup(view({ progress: progress({ start_error: "refused by the server (403 exam_closed)", start_refusal }) }));
    expect(screen.getByTestId("start-error").textContent).toBe(
      "The Exam Bank server did not accept this attempt (the exam is closed). Your answers are kept on this computer. Please tell a proctor.",
    );
  });

  it("shows no time until the core knows it, and keeps counting when it briefly does not", async () => {
    setup(view({ progress: progress({ remaining_ms: null }) }));
    expect(screen.getByRole("timer").textContent?.trim()).toBe("–:––:––");
    expect(screen.queryByTestId("time-up")).toBeNull();
    attemptProgress.mockResolvedValue(ok(progress({ remaining_ms: 600_000 })));
    emit({ type: "exam_changed", attempt_id: "att-1" });
    await vi.advanceTimersByTimeAsync(1000);
    expect(screen.getByRole("timer").textContent?.trim()).toBe("0:09:59");
    attemptProgress.mockResolvedValue(ok(progress({ remaining_ms: null })));
    emit({ type: "exam_changed", attempt_id: "att-1" });
    await vi.advanceTimersByTimeAsync(1000);
    expect(screen.getByRole("timer").textContent?.trim()).toBe("0:09:58");
  });

  it("a refused submission says what happened and to tell a proctor", () => {
    const refusal = { status: 409, code: "digest_mismatch", detail: "the server holds 3 answers" };
    setup(view({ status: "submitted", progress: progress({ submission: submission({ state: "refused", error: "English for IT", refusal }) }) }));
    const state = screen.getByTestId("submission-state").textContent ?? "";
    expect(state).toContain("The server did not accept the submission (the server's copy of the answers differs).");
    expect(state).not.toContain("English for IT");
    expect(screen.getByTestId("submission").textContent).toContain("tell a proctor");
    expect(screen.queryByTestId("close-attempt")).toBeNull();
  });

  it("a submission being completed says the missing answers are sent again", () => {
    setup(view({ status: "submitted", progress: progress({ submission: submission({ state: "resending" }) }) }));
    expect(screen.getByTestId("submission-state").textContent).toContain("being sent again");
  });

  it("announces the last minute and says when time is up, keeping the answers", async () => {
    // The core's own count, if the screen asks meanwhile (every 30 s).
    const end = performance.now() + 61_000;
    attemptProgress.mockImplementation(async () => ok(progress({ remaining_ms: Math.max(0, end - performance.now()) })));
    setup(view({ progress: progress({ remaining_ms: 61_000 }) }));
    expect(screen.getByTestId("timer-announcement").textContent).toBe("");
    await vi.advanceTimersByTimeAsync(1500);
    expect(screen.getByTestId("timer-announcement").textContent).toBe("1 minute left.");
    expect(screen.queryByTestId("time-up")).toBeNull();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(screen.getByRole("timer").textContent?.trim()).toBe("0:00:00");
    expect(screen.getByTestId("time-up").textContent).toContain("Everything you answered is saved");
  });

  it("counts down every second on its own, then re-anchors on progress from the core", async () => {
    setup();
    await vi.advanceTimersByTimeAsync(5000);
    expect(screen.getByRole("timer").textContent?.trim()).toBe("1:29:55");
    attemptProgress.mockResolvedValue(ok(progress({ remaining_ms: 20 * 60_000 })));
    emit({ type: "exam_changed", attempt_id: "att-1" });
    await vi.advanceTimersByTimeAsync(300);
    expect(screen.getByRole("timer").textContent?.trim()).toBe("0:20:00");
  });
});
