// Whether an exam in the list can be downloaded or started now, and if not, why (the
// button is disabled and the reason is shown next to it). The exam rules (submitted, not yet
// open, closed) are the core's: `exam.start_block`; here they are only put in words.
import type { ExamSummary, StartBlock } from "../bindings";
import { formatDateTime, type MessageKey, type Params } from "./i18n.svelte";

export type Reason = { key: MessageKey; params?: Params };

export function downloadBlock(exam: ExamSummary, offline: boolean): Reason | null {
  if (exam.submitted) return { key: "exams.why.submitted" };
  if (exam.downloaded_version !== null && !exam.update_available) return { key: "exams.why.downloaded" };
  if (offline) return { key: "exams.why.offlineDownload" };
  return null;
}

/** The core's verdict in words. */
export function blockReason(block: StartBlock): Reason {
  switch (block.reason) {
    case "already_submitted":
      return { key: "exams.why.submitted" };
    case "not_yet_open":
      return { key: "exams.why.notOpen", params: { time: formatDateTime(block.opens_at) } };
    case "closed":
      return { key: "exams.why.closed", params: { time: formatDateTime(block.closes_at) } };
  }
}

export function startBlock(exam: ExamSummary, offline: boolean): Reason | null {
  if (exam.active_attempt_id) return null; // an attempt on this computer can always be reopened
  if (exam.start_block) return blockReason(exam.start_block);
  if (offline && exam.downloaded_version === null) return { key: "exams.why.needsDownload" };
  return null;
}
