// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { QuestionView } from "../bindings";
import { i18n } from "./i18n.svelte";
import Question from "./Question.svelte";

const question = (over: Partial<QuestionView>): QuestionView => ({
  id: "q1",
  kind: "single",
  prompt: "Which city is the capital of Việt Nam?",
  options: [
    { id: "a", text: "Huế" },
    { id: "b", text: "Hà Nội" },
    { id: "c", text: "Đà Nẵng" },
  ],
  max_length: null,
  answer: null,
  answered: false,
  flagged: false,
  save: null,
  unreadable: false,
  ...over,
});

function setup(over: Partial<QuestionView> = {}) {
  const props = {
    question: question(over),
    number: 2,
    total: 5,
    value: over.answer ?? null,
    flagged: over.flagged ?? false,
    onchange: vi.fn(),
    oncompositionstart: vi.fn(),
    oncompositionend: vi.fn(),
    onflag: vi.fn(),
  };
  render(Question, props);
  return props;
}

describe("Question", () => {
  beforeEach(() => {
    i18n.lang = "en";
  });
  afterEach(cleanup);

  it("shows a hostile prompt as text: no element is made from it", () => {
    const hostile = '<img src=x onerror="window.__pwned=1">Pick <b>one</b>\n<script>alert(1)</script>';
    setup({ prompt: hostile, options: [{ id: "a", text: "<i onmouseover=alert(1)>A</i>" }] });
    const prompt = screen.getByTestId("question-prompt");
    expect(prompt.textContent).toBe(hostile);
    expect(prompt.children.length).toBe(0);
    expect(document.querySelector("img, b, script, i")).toBeNull();
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
    expect(screen.getByText("<i onmouseover=alert(1)>A</i>")).toBeTruthy();
  });

  it("single choice: a radio group in a fieldset; a choice is saved at once as its id", async () => {
    const props = setup({ kind: "single" });
    const user = userEvent.setup();
    expect(screen.getByRole("group", { name: "Choose one answer" })).toBeTruthy();
    await user.click(screen.getByLabelText("Hà Nội"));
    expect(props.onchange).toHaveBeenLastCalledWith("q1", "b", true);
    expect((screen.getByTestId("option-b") as HTMLInputElement).checked).toBe(true);
  });

  it("multiple choice: checkboxes; the value lists the chosen ids in the author's order", async () => {
    const props = setup({ kind: "multiple", answer: ["c"] });
    const user = userEvent.setup();
    expect((screen.getByTestId("option-c") as HTMLInputElement).checked).toBe(true);
    await user.click(screen.getByTestId("option-a"));
    expect(props.onchange).toHaveBeenLastCalledWith("q1", ["a", "c"], true);
    await user.click(screen.getByTestId("option-c"));
    expect(props.onchange).toHaveBeenLastCalledWith("q1", ["a"], true);
  });

  it("short answer: a text field limited to max_length, with a counter", async () => {
    const props = setup({ kind: "short", options: [], max_length: 20, answer: "Hà" });
    const user = userEvent.setup();
    const field = screen.getByLabelText("Your answer") as HTMLInputElement;
    expect(field.tagName).toBe("INPUT");
    expect(field.maxLength).toBe(20);
    expect(field.value).toBe("Hà");
    expect(screen.getByTestId("char-count").textContent).toBe("2 / 20 characters");
    await user.type(field, " Nội");
    expect(props.onchange).toHaveBeenLastCalledWith("q1", "Hà Nội", false);
    expect(screen.getByTestId("char-count").textContent).toBe("6 / 20 characters");
    expect(field.getAttribute("aria-describedby")).toContain(screen.getByTestId("char-count").id);
  });

  it("essay: a textarea with a character counter, with or without a limit", async () => {
    setup({ kind: "essay", options: [], max_length: 5000 });
    const user = userEvent.setup();
    const area = screen.getByTestId("answer-text");
    expect(area.tagName).toBe("TEXTAREA");
    expect(screen.getByTestId("char-count").textContent).toBe("0 / 5000 characters");
    await user.type(area, "Xin chào");
    expect(screen.getByTestId("char-count").textContent).toBe("8 / 5000 characters");
    cleanup();
    setup({ kind: "essay", options: [], answer: "A" });
    expect(screen.getByTestId("char-count").textContent).toBe("1 character");
  });

  it("keeps line breaks of an essay and counts them", async () => {
    const props = setup({ kind: "essay", options: [] });
    const user = userEvent.setup();
    await user.type(screen.getByTestId("answer-text"), "a{Enter}b");
    expect(props.onchange).toHaveBeenLastCalledWith("q1", "a\nb", false);
    expect(screen.getByTestId("char-count").textContent).toBe("3 characters");
  });

  it("passes input-method composition through and never rewrites the field", async () => {
    const props = setup({ kind: "essay", options: [] });
    const area = screen.getByTestId("answer-text") as HTMLTextAreaElement;
    await fireEvent.compositionStart(area);
    expect(props.oncompositionstart).toHaveBeenCalledWith("q1");
    area.value = "tiê";
    await fireEvent.input(area);
    area.value = "tiếng";
    await fireEvent.input(area);
    await fireEvent.compositionEnd(area, { data: "tiếng" });
    expect(props.oncompositionend).toHaveBeenCalledWith("q1", "tiếng");
    expect(area.value).toBe("tiếng");
  });

  it("flag for review is a toggle button", async () => {
    const props = setup({ flagged: true });
    const user = userEvent.setup();
    const flag = screen.getByRole("button", { name: /Flag for review/ });
    expect(flag.getAttribute("aria-pressed")).toBe("true");
    await user.click(flag);
    expect(props.onflag).toHaveBeenCalledWith("q1", false);
  });

  it("is headed with its number, in Vietnamese too", () => {
    i18n.lang = "vi";
    setup({ kind: "multiple" });
    expect(screen.getByRole("heading", { name: "Câu 2/5" })).toBeTruthy();
    expect(screen.getByRole("group", { name: "Chọn tất cả các đáp án phù hợp" })).toBeTruthy();
  });
});
