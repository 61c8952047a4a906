// Whether an exam in the list can be downloaded or started now, and if not, why (the
// button is disabled and the reason is shown next to it). The exam rules (submitted, not yet
// open, closed) are the core's: `exam.start_block`; here they are only put in words.
import type { ExamSummary, StartBlock } from "../bindings";
import { formatDateTime, type MessageKey, type Params } from "./i18n.svelte";

export type Reason = { key: MessageKey; params?: Params };

export function downloadBlock(exam: ExamSummary, offline: boolean): Reason | null {
  if (exam.submitted) return { key: "exams.why.submitted" };
  if (exam.download_from) return { key: "exams.why.notAvailable", params: { time: formatDateTime(exam.download_from) } };
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

/** "4:05", "1:04:05": what is left before an exam opens (digits read the same in every language). */
export function formatCountdown(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

/** A start code as it is read out: upper case, grouped by four ("abcd efgh" → "ABCD-EFGH"). */
export function formatStartCode(typed: string): string {
  const plain = typed.toUpperCase().replace(/[^A-Z0-9]/g, "").slice(0, 12);
  return plain.match(/.{1,4}/g)?.join("-") ?? "";
}
