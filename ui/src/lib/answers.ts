// What counts as answered, for the question list, the overview and the review.
import type { AnswerValue, QuestionView } from "../bindings";

/** Blank text and an empty choice are not answers (the student may have cleared them). */
export function isAnswered(value: AnswerValue | null | undefined): boolean {
  if (value == null) return false;
  return typeof value === "string" ? value.trim().length > 0 : value.length > 0;
}

export type Counts = { total: number; answered: number; unanswered: number; flagged: number };

export function countAnswers(
  questions: Pick<QuestionView, "id">[],
  answers: Record<string, AnswerValue | null>,
  flags: Record<string, boolean>,
): Counts {
  const answered = questions.filter((q) => isAnswered(answers[q.id])).length;
  return {
    total: questions.length,
    answered,
    unanswered: questions.length - answered,
    flagged: questions.filter((q) => flags[q.id]).length,
  };
}
