// Tallies for the question list, the overview and the review. What counts as answered is the
// core's verdict (`answered` on each question and save, by the rule the server counts with);
// here it is only counted.
import type { QuestionView } from "../bindings";

export type Counts = { total: number; answered: number; unanswered: number; flagged: number };

export function countAnswers(
  questions: Pick<QuestionView, "id">[],
  answered: Record<string, boolean>,
  flags: Record<string, boolean>,
): Counts {
  const n = questions.filter((q) => answered[q.id]).length;
  return {
    total: questions.length,
    answered: n,
    unanswered: questions.length - n,
    flagged: questions.filter((q) => flags[q.id]).length,
  };
}
