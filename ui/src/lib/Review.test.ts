// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { QuestionView } from "../bindings";
import { i18n } from "./i18n.svelte";
import Review from "./Review.svelte";

const q = (id: string): QuestionView => ({
  id,
  kind: "short",
  prompt: id,
  options: [],
  max_length: null,
  answer: null,
  answered: false,
  flagged: false,
  save: null,
  unreadable: false,
});

const questions = ["q1", "q2", "q3", "q4", "q5"].map(q);

/** `answered`: the core's verdict on each question's saved value. */
function setup(answered: Record<string, boolean>, flags: Record<string, boolean> = {}) {
  const props = { questions, answered, flags, submitting: false, error: null, onGo: vi.fn(), onBack: vi.fn(), onSubmit: vi.fn() };
  render(Review, props);
  return props;
}

describe("Review", () => {
  beforeEach(() => {
    i18n.lang = "en";
  });
  afterEach(cleanup);

  it("counts what the core says is answered, unanswered and flagged", () => {
    setup({ q1: true, q2: false, q3: true, q4: false, q5: false }, { q2: true, q3: true });
    expect(screen.getByTestId("review-answered").textContent).toBe("2");
    expect(screen.getByTestId("review-unanswered").textContent).toBe("3");
    expect(screen.getByTestId("review-flagged").textContent).toBe("2");
  });

  it("links back to each question", async () => {
    const props = setup({ q1: true });
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Question 4" }));
    expect(props.onGo).toHaveBeenCalledWith("q4");
  });

  it("asks once more before submitting and says how many are unanswered", async () => {
    const props = setup({ q1: true, q2: true, q3: true });
    const user = userEvent.setup();
    await user.click(screen.getByTestId("submit"));
    expect(props.onSubmit).not.toHaveBeenCalled();
    expect(screen.getByTestId("confirm-unanswered").textContent).toBe(
      "2 questions are not answered; they will count as unanswered.",
    );
    expect(document.activeElement?.textContent).toBe("Submit your exam now?");
    await user.click(screen.getByTestId("confirm-submit"));
    expect(props.onSubmit).toHaveBeenCalledTimes(1);
  });

  it("says nothing about unanswered questions when all are answered, and can be called off", async () => {
    setup({ q1: true, q2: true, q3: true, q4: true, q5: true });
    const user = userEvent.setup();
    await user.click(screen.getByTestId("submit"));
    expect(screen.queryByTestId("confirm-unanswered")).toBeNull();
    await user.click(screen.getByTestId("cancel-submit"));
    expect(screen.queryByTestId("confirm-step")).toBeNull();
    expect(document.activeElement).toBe(screen.getByTestId("submit"));
  });
});
