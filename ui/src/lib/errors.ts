// What to tell the student when something goes wrong, in words they understand and in their
// language. Every IpcError kind is worded here (errors.test.ts checks each in English and in
// Vietnamese); the core sends data, never English words for the screen.
import type { AnswerProblem, IpcError } from "../bindings";
import { blockReason } from "./exams";
import { t } from "./i18n.svelte";
import { describeReason, reasonSentence } from "./reasons";
import { refusalReason } from "./refusals";
import { findingSentence } from "./security";

function answerProblem(p: AnswerProblem): string {
  switch (p.problem) {
    case "not_an_option":
      return t("errors.answer.not_an_option");
    case "chosen_twice":
      return t("errors.answer.chosen_twice");
    case "too_long":
      return t("errors.answer.too_long", { chars: p.chars, max: p.max });
    case "wrong_shape":
      return t("errors.answer.wrong_shape");
  }
}

export function describeError(error: IpcError): string {
  switch (error.kind) {
    case "wrong_credentials":
      return t("errors.wrong_credentials");
    case "locked_out":
      return error.retry_after_s < 90
        ? t("errors.locked_out_seconds", { n: error.retry_after_s })
        : t("errors.locked_out_minutes", { n: Math.ceil(error.retry_after_s / 60) });
    case "offline":
      return t("errors.offline", { reason: describeReason(error.reason) });
    case "not_signed_in":
      return t("errors.not_signed_in");
    case "session_ended":
      return t("errors.session_ended", { reason: reasonSentence(error.reason) });
    case "refused":
      return t("errors.refused", { reason: refusalReason(error.refusal) });
    case "keychain":
      return t("errors.keychain");
    case "settings":
      return t("errors.settings");
    case "not_found":
      return t(`errors.not_found.${error.missing.what}`);
    case "not_downloaded":
      return t("errors.not_downloaded");
    case "storage_full":
      return t("errors.storage_full");
    case "storage_failed":
      return t("errors.storage_failed");
    case "already_submitted":
      return t("errors.already_submitted");
    case "attempt_closed":
      return t("errors.attempt_closed");
    case "not_yet_delivered":
      return t("errors.not_yet_delivered");
    case "answer_rejected":
      return answerProblem(error.problem);
    case "unreadable_answer":
      return t("errors.unreadable_answer");
    case "bad_package":
      return t("errors.bad_package", { exam: error.exam_id, detail: error.detail });
    case "start_code_needed":
      return t("errors.start_code_needed", { title: error.title });
    case "start_code_refused":
      return t("errors.start_code_refused", { title: error.title });
    case "start_code_wait":
      return t("errors.start_code_wait", { n: Math.ceil(error.retry_in_ms / 1000) });
    case "package_does_not_open":
      return t("errors.package_does_not_open", { title: error.title });
    case "answer_key":
      return t("errors.answer_key");
    case "answer_key_missing":
      return t("errors.answer_key_missing", { n: error.sealed });
    case "device_not_ready":
      return t("errors.device_not_ready", { what: error.findings.map(findingSentence).join(" ") });
    case "start_refused": {
      const r = blockReason(error.block);
      return t(r.key, r.params);
    }
    case "unavailable":
      return t("errors.unavailable");
    case "cannot_write":
      return t("errors.cannot_write", { path: error.path });
    case "internal":
      return t("errors.internal");
  }
  // Not an error of the core's (a command the window may not call, say): still words.
  return t("errors.internal");
}
