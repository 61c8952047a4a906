import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AnswerState, AnswerValue } from "../bindings";
import { Autosave, saveStatusText, type SaveResult } from "./autosave";
import { i18n } from "./i18n.svelte";

const state = (question_id: string, seq: number, over: Partial<AnswerState> = {}): AnswerState => ({
  question_id,
  seq,
  saved_local_at: "2025-03-12T10:40:00Z",
  saved_server_at: null,
  state: "local",
  refusal: null,
  answered: true,
  ...over,
});

/** A save the test answers by hand, to see what is in flight. */
function manualSave() {
  const calls: { id: string; value: AnswerValue; resolve: (r: SaveResult) => void }[] = [];
  let seq = 0;
  const save = vi.fn(
    (id: string, value: AnswerValue) =>
      new Promise<SaveResult>((resolve) => calls.push({ id, value, resolve })),
  );
  const ok = (i: number) => calls[i].resolve({ status: "ok", data: state(calls[i].id, ++seq) });
  return { save, calls, ok };
}

describe("autosave", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    i18n.lang = "en";
  });
  afterEach(() => vi.useRealTimers());

  it("saves 300 ms after the last change, once, with the last value", async () => {
    const { save, ok } = manualSave();
    const a = new Autosave(save);
    a.change("q1", "H");
    await vi.advanceTimersByTimeAsync(200);
    a.change("q1", "Hà");
    await vi.advanceTimersByTimeAsync(200);
    a.change("q1", "Hà Nội");
    await vi.advanceTimersByTimeAsync(299);
    expect(save).not.toHaveBeenCalled();
    expect(a.summary().kind).toBe("saving");
    await vi.advanceTimersByTimeAsync(1);
    expect(save).toHaveBeenCalledTimes(1);
    expect(save).toHaveBeenCalledWith("q1", "Hà Nội");
    ok(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(a.summary()).toEqual({ kind: "local" });
  });

  it("measures from the last change to the core's answer, only for the latest value", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance", "Date"] });
    const { save, calls, ok } = manualSave();
    const a = new Autosave(save);
    a.change("q1", "x");
    await vi.advanceTimersByTimeAsync(100);
    a.change("q1", "xy");
    await vi.advanceTimersByTimeAsync(300);
    await vi.advanceTimersByTimeAsync(12);
    expect(a.lastLatencyMs).toBeNull();
    // A newer value typed while the save is in flight: that answer does not count.
    a.change("q1", "xyz");
    ok(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(a.lastLatencyMs).toBeNull();
    await vi.advanceTimersByTimeAsync(300);
    await vi.advanceTimersByTimeAsync(5);
    expect(calls[1].value).toBe("xyz");
    ok(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(a.lastLatencyMs).toBe(305);
    expect(save).toHaveBeenCalledTimes(2);
  });

  it("debounces each question on its own", async () => {
    const { save } = manualSave();
    const a = new Autosave(save);
    a.change("q1", "a");
    await vi.advanceTimersByTimeAsync(250);
    a.change("q2", "b");
    await vi.advanceTimersByTimeAsync(50);
    expect(save.mock.calls).toEqual([["q1", "a"]]);
    await vi.advanceTimersByTimeAsync(250);
    expect(save.mock.calls).toEqual([["q1", "a"], ["q2", "b"]]);
  });

  it("saves choices at once when asked", async () => {
    const { save } = manualSave();
    const a = new Autosave(save);
    a.change("q1", "opt-b", { immediate: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(save).toHaveBeenCalledWith("q1", "opt-b");
  });

  it("never saves while an input method composes, and saves the finished word", async () => {
    const { save } = manualSave();
    const a = new Autosave(save);
    // Telex: "tieengs" becomes "tiếng" while composing.
    a.compositionStart("q1");
    for (const partial of ["t", "ti", "tie", "tiê", "tiên", "tiến", "tiếng"]) {
      a.change("q1", partial);
      await vi.advanceTimersByTimeAsync(400);
    }
    expect(save).not.toHaveBeenCalled();
    expect(a.summary().kind).toBe("saving");
    a.compositionEnd("q1", "tiếng");
    await vi.advanceTimersByTimeAsync(300);
    expect(save.mock.calls).toEqual([["q1", "tiếng"]]);
  });

  it("a composition that starts during the wait holds the save back", async () => {
    const { save } = manualSave();
    const a = new Autosave(save);
    a.change("q1", "Xin ");
    await vi.advanceTimersByTimeAsync(200);
    a.compositionStart("q1");
    await vi.advanceTimersByTimeAsync(1000);
    expect(save).not.toHaveBeenCalled();
    a.compositionEnd("q1", "Xin chào");
    await vi.advanceTimersByTimeAsync(300);
    expect(save.mock.calls).toEqual([["q1", "Xin chào"]]);
  });

  it("keeps one save in flight per question; the latest value goes next and wins", async () => {
    const { save, calls, ok } = manualSave();
    const a = new Autosave(save);
    a.change("q1", "one");
    await vi.advanceTimersByTimeAsync(300);
    a.change("q1", "two");
    await vi.advanceTimersByTimeAsync(300);
    a.change("q1", "three");
    await vi.advanceTimersByTimeAsync(300);
    // "one" is still with the core: nothing else is sent meanwhile.
    expect(calls.map((c) => c.value)).toEqual(["one"]);
    ok(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.value)).toEqual(["one", "three"]);
    ok(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(a.summary()).toEqual({ kind: "local" });
  });

  it("flush sends what waits now and resolves when the core has it", async () => {
    const { save, calls, ok } = manualSave();
    const a = new Autosave(save);
    a.change("q1", "draft");
    a.change("q2", ["a", "c"]);
    const done = vi.fn();
    void a.flush().then(done);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => [c.id, c.value])).toEqual([
      ["q1", "draft"],
      ["q2", ["a", "c"]],
    ]);
    expect(done).not.toHaveBeenCalled();
    ok(0);
    ok(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toHaveBeenCalledWith(true);
    // The debounce timers were cancelled: nothing is sent twice.
    await vi.advanceTimersByTimeAsync(1000);
    expect(save).toHaveBeenCalledTimes(2);
  });

  it("flush of one question leaves the others to their timers", async () => {
    const { save } = manualSave();
    const a = new Autosave(save);
    a.change("q1", "a");
    a.change("q2", "b");
    void a.flush("q1");
    await vi.advanceTimersByTimeAsync(0);
    expect(save.mock.calls).toEqual([["q1", "a"]]);
    await vi.advanceTimersByTimeAsync(300);
    expect(save.mock.calls).toEqual([["q1", "a"], ["q2", "b"]]);
  });

  it("says when a save failed, retries it, and recovers", async () => {
    const save = vi
      .fn<(id: string, v: AnswerValue) => Promise<SaveResult>>()
      .mockResolvedValueOnce({ status: "error", error: { kind: "storage_full" } })
      .mockResolvedValue({ status: "ok", data: state("q1", 2) });
    const a = new Autosave(save, undefined, 300, 3000);
    a.change("q1", "answer");
    await vi.advanceTimersByTimeAsync(300);
    const s = a.summary();
    expect(s.kind).toBe("error");
    expect(saveStatusText(s)).toMatch(/^Not saved: .*disk is full/);
    expect(await a.flush().then((r) => r)).toBe(true);
    expect(save).toHaveBeenLastCalledWith("q1", "answer");
    expect(a.summary()).toEqual({ kind: "local" });
  });

  it("retries a failed save by itself after a while", async () => {
    const save = vi
      .fn<(id: string, v: AnswerValue) => Promise<SaveResult>>()
      .mockResolvedValueOnce({ status: "error", error: { kind: "storage_full" } })
      .mockResolvedValue({ status: "ok", data: state("q1", 1) });
    const a = new Autosave(save, undefined, 300, 3000);
    a.change("q1", "x");
    await vi.advanceTimersByTimeAsync(300);
    expect(save).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(3000);
    expect(save).toHaveBeenCalledTimes(2);
    expect(a.summary().kind).toBe("local");
  });

  it("takes server confirmations from progress, newest by seq", () => {
    const a = new Autosave(vi.fn());
    a.seed("q1", state("q1", 3));
    a.seed("q2", state("q2", 1));
    expect(a.summary()).toEqual({ kind: "local" });
    a.applyProgress([
      state("q1", 3, { state: "server", saved_server_at: "2025-03-12T10:41:00Z" }),
      state("q2", 1, { state: "server", saved_server_at: "2025-03-12T10:42:30Z" }),
    ]);
    expect(a.summary()).toEqual({ kind: "server", at: "2025-03-12T10:42:30Z" });
    // An older report does not undo a newer state.
    a.applyProgress([state("q1", 2, { state: "local" })]);
    expect(a.summary().kind).toBe("server");
  });

  it("a state without a seq never hides one with a seq, and is replaced by any", () => {
    const a = new Autosave(vi.fn());
    a.seed("q1", state("q1", 0, { seq: null }));
    a.applyProgress([state("q1", 1, { state: "server", saved_server_at: "2025-03-12T10:41:00Z" })]);
    expect(a.summary().kind).toBe("server");
    a.applyProgress([state("q1", 0, { seq: null, state: "local" })]);
    expect(a.summary().kind).toBe("server");
  });

  it("reports a refused answer in the student's language, with what to do", () => {
    const a = new Autosave(vi.fn());
    const refusal = { status: 409, code: "attempt_closed", detail: "submitted at 10:02" };
    a.applyProgress([state("q1", 4, { state: "refused", refusal })]);
    i18n.lang = "en";
    expect(saveStatusText(a.summary())).toBe(
      "The server did not accept an answer (the exam was already submitted). It is kept on this computer — please tell a proctor.",
    );
    i18n.lang = "vi";
    expect(saveStatusText(a.summary())).toBe(
      "Máy chủ không nhận một câu trả lời (bài thi đã được nộp). Câu trả lời vẫn được giữ trên máy này — vui lòng báo cho giám thị.",
    );
    // A code the app does not know: its status, never the server's English words.
    a.applyProgress([state("q1", 5, { state: "refused", refusal: { status: 422, code: "new_rule", detail: "English" } })]);
    expect(saveStatusText(a.summary())).toContain("máy chủ từ chối, mã 422");
    expect(saveStatusText(a.summary())).not.toContain("English");
    i18n.lang = "en";
  });
});

describe("save status words", () => {
  it("says the truth in both languages", () => {
    i18n.lang = "en";
    expect(saveStatusText({ kind: "saving" })).toBe("Saving…");
    expect(saveStatusText({ kind: "local" })).toBe("Saved on this computer");
    const at = new Date(2025, 2, 12, 10, 42).toISOString();
    expect(saveStatusText({ kind: "server", at })).toBe("Saved on the server at 10:42");
    expect(saveStatusText({ kind: "error", error: "disk full" })).toBe("Not saved: disk full");
    i18n.lang = "vi";
    expect(saveStatusText({ kind: "server", at })).toBe("Đã lưu lên máy chủ lúc 10:42");
    expect(saveStatusText({ kind: "local" })).toBe("Đã lưu trên máy này");
    i18n.lang = "en";
  });
});
