// What the server refused, in the student's words: the server's stable code is worded in
// the UI's language; a code we do not know falls back to its status, never to the server's
// English text (that stays for IT, in the export).
import type { Refusal, RefusedItem } from "../bindings";
import { en, type MessageKey } from "./i18n/en";
import { t } from "./i18n.svelte";

/** Why, in a few words: "the exam was already submitted". */
export function refusalReason(r: Refusal | null | undefined): string {
  const key = `refusal.${r?.code ?? ""}`;
  if (r?.code && key in en) return t(key as MessageKey);
  if (r?.status != null) return t("refusal.status", { status: r.status });
  return t("refusal.here");
}

/** What was refused: "Question 5 of General knowledge". */
export function refusedSubject(item: RefusedItem): string {
  const exam = item.exam_title ?? t("panel.item.someExam");
  switch (item.what) {
    case "answer":
      return item.question_number != null
        ? t("panel.item.answer", { n: item.question_number, exam })
        : t("panel.item.answerUnknown", { exam });
    case "start":
      return t("panel.item.start", { exam });
    case "submission":
      return t("panel.item.submission", { exam });
    case "other":
      return t("panel.item.other");
  }
}
