// Whether an exam in the list can be downloaded or started now, and if not, why (the
// button is disabled and the reason is shown next to it). The core checks again: these only
// spare the student a button that would fail.
import type { ExamSummary } from "../bindings";
import { formatDateTime, type MessageKey, type Params } from "./i18n.svelte";

export type Reason = { key: MessageKey; params?: Params };

export function downloadBlock(exam: ExamSummary, offline: boolean): Reason | null {
  if (exam.submitted) return { key: "exams.why.submitted" };
  if (exam.downloaded_version !== null && !exam.update_available) return { key: "exams.why.downloaded" };
  if (offline) return { key: "exams.why.offlineDownload" };
  return null;
}

/** `now`: ms since the epoch in the server's time (this computer's clock plus its offset). */
export function startBlock(exam: ExamSummary, offline: boolean, now: number): Reason | null {
  if (exam.active_attempt_id) return null; // an attempt on this computer can always be reopened
  if (exam.submitted) return { key: "exams.why.submitted" };
  if (now < Date.parse(exam.opens_at)) return { key: "exams.why.notOpen", params: { time: formatDateTime(exam.opens_at) } };
  if (now > Date.parse(exam.closes_at)) return { key: "exams.why.closed", params: { time: formatDateTime(exam.closes_at) } };
  if (offline && exam.downloaded_version === null) return { key: "exams.why.needsDownload" };
  return null;
}
