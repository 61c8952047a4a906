// What to tell the student when something goes wrong, in words they understand.
import type { IpcError } from "../bindings";
import { blockReason } from "./exams";
import { t } from "./i18n.svelte";
import { sentence } from "./sync";

export function describeError(error: IpcError): string {
  switch (error.kind) {
    case "wrong_credentials":
      return t("errors.wrong_credentials");
    case "locked_out":
      return error.retry_after_s < 90
        ? t("errors.locked_out_seconds", { n: error.retry_after_s })
        : t("errors.locked_out_minutes", { n: Math.ceil(error.retry_after_s / 60) });
    case "offline":
      return t("errors.offline");
    case "not_signed_in":
      return t("errors.not_signed_in");
    case "session_ended":
      return error.reason;
    case "refused":
      return t("errors.refused", { message: error.message });
    case "keychain":
      return t("errors.keychain", { message: error.message });
    case "validation":
      return error.message;
    case "not_found":
      return t("errors.not_found", { message: error.message });
    case "storage_full":
      return t("errors.storage_full", { message: error.message });
    case "start_refused": {
      const r = blockReason(error.block);
      return t(r.key, r.params);
    }
    case "exam":
      // The core words exam rules for students ("the exam closed at 10:00").
      return sentence(error.message);
    case "internal":
      return t("errors.internal", { message: error.message });
  }
}
