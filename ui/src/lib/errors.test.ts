import { afterEach, describe, expect, it } from "vitest";
import type { AuthSnapshot, IpcError, Reason } from "../bindings";
import { isNewer, snapshotOf } from "./auth.svelte";
import { describeError } from "./errors";
import { en } from "./i18n/en";
import { i18n, type Lang } from "./i18n.svelte";
import { describeReason, reasonSentence } from "./reasons";

// One of every kind the core can report. A `Record` over the generated union: a kind added
// in Rust and not here fails `npm run check`, so no kind can go unworded.
const EVERY_ERROR: Record<IpcError["kind"], IpcError> = {
  wrong_credentials: { kind: "wrong_credentials" },
  locked_out: { kind: "locked_out", retry_after_s: 42 },
  offline: { kind: "offline", reason: { code: "timed_out" } },
  not_signed_in: { kind: "not_signed_in" },
  session_ended: { kind: "session_ended", reason: { code: "session_reused" } },
  refused: { kind: "refused", refusal: { status: 409, code: "attempt_closed", detail: "submitted" } },
  keychain: { kind: "keychain" },
  settings: { kind: "settings" },
  not_found: { kind: "not_found", missing: { what: "question", id: "q9" } },
  not_downloaded: { kind: "not_downloaded", exam_id: "demo-mixed" },
  storage_full: { kind: "storage_full" },
  storage_failed: { kind: "storage_failed" },
  already_submitted: { kind: "already_submitted" },
  attempt_closed: { kind: "attempt_closed" },
  not_yet_delivered: { kind: "not_yet_delivered" },
  answer_rejected: { kind: "answer_rejected", problem: { problem: "too_long", chars: 12, max: 10 } },
  unreadable_answer: { kind: "unreadable_answer", question: "q3" },
  bad_package: {
    kind: "bad_package",
    exam_id: "demo-mixed",
    detail: "question 3 (`q3`): it has 1 options (2 to 50 allowed)",
  },
  start_code_needed: { kind: "start_code_needed", exam_id: "final", title: "Final exam" },
  start_code_refused: { kind: "start_code_refused", exam_id: "final", title: "Final exam", retry_in_ms: 2000 },
  start_code_wait: { kind: "start_code_wait", exam_id: "final", retry_in_ms: 3500 },
  package_does_not_open: { kind: "package_does_not_open", exam_id: "final", title: "Final exam" },
  device_not_ready: {
    kind: "device_not_ready",
    findings: [
      {
        code: "prohibited_program",
        severity: "warning",
        confidence: "high",
        subject: "anydesk",
        category: "remote_control",
        evidence: "process `anydesk` (pid 4242) is remote_control program `anydesk`",
        blocks_start: true,
      },
    ],
  },
  answer_key: { kind: "answer_key" },
  answer_key_missing: { kind: "answer_key_missing", sealed: 12 },
  start_refused: { kind: "start_refused", block: { reason: "already_submitted" } },
  unavailable: { kind: "unavailable" },
  cannot_write: { kind: "cannot_write", path: "/tmp/export.json" },
  internal: { kind: "internal" },
};

const EVERY_REASON: Record<Reason["code"], Reason> = {
  no_answer: { code: "no_answer", after_ms: 1500 },
  timed_out: { code: "timed_out" },
  no_network: { code: "no_network" },
  name_not_found: { code: "name_not_found" },
  server_not_running: { code: "server_not_running" },
  connection_cut: { code: "connection_cut" },
  reply_cut: { code: "reply_cut" },
  reply_too_large: { code: "reply_too_large", limit: 1024 },
  unreadable_reply: { code: "unreadable_reply", status: 200 },
  certificate_intercepted: { code: "certificate_intercepted" },
  portal_sign_in: { code: "portal_sign_in", host: "login.example" },
  portal_page: { code: "portal_page" },
  proxy_answers: { code: "proxy_answers" },
  server_error: { code: "server_error", status: 503 },
  bad_address: { code: "bad_address" },
  slow: { code: "slow", rtt_ms: 310 },
  server_asks_to_wait: { code: "server_asks_to_wait", retry_after_s: 30 },
  refused_by_server: { code: "refused_by_server", status: 403, server_code: "invalid_client" },
  keychain_failed: { code: "keychain_failed" },
  idle_sign_out: { code: "idle_sign_out", minutes: 15 },
  session_reused: { code: "session_reused" },
  session_ended_by_school: { code: "session_ended_by_school" },
  session_expired: { code: "session_expired" },
  step_up_required: { code: "step_up_required" },
};

const ENGLISH = new Set(Object.values(en));

function wordedIn(lang: Lang, words: () => string): string {
  i18n.lang = lang;
  return words();
}

describe("every error and every reason is worded in both languages", () => {
  afterEach(() => {
    i18n.lang = "en";
  });

  const cases: [string, () => string][] = [
    ...Object.entries(EVERY_ERROR).map(([kind, e]): [string, () => string] => [kind, () => describeError(e)]),
    ...Object.entries(EVERY_REASON).map(([code, r]): [string, () => string] => [
      `reason ${code}`,
      () => describeReason(r),
    ]),
  ];

  it.each(cases)("%s", (_name, words) => {
    const english = wordedIn("en", words);
    const vietnamese = wordedIn("vi", words);
    for (const text of [english, vietnamese]) {
      expect(text.trim()).not.toBe("");
      expect(text).not.toMatch(/[{}]|undefined|null|\[object/);
    }
    // No English reaches a Vietnamese screen: the words differ, and none is an English text.
    expect(vietnamese).not.toBe(english);
    expect(ENGLISH.has(vietnamese as never)).toBe(false);
  });

  it("says how long a lockout lasts", () => {
    expect(describeError({ kind: "locked_out", retry_after_s: 42 })).toContain("42 seconds");
    expect(describeError({ kind: "locked_out", retry_after_s: 290 })).toContain("5 minutes");
  });

  it("tells a wrong password apart from a network problem, and says why", () => {
    expect(describeError({ kind: "wrong_credentials" })).toContain("not right");
    const offline = describeError({ kind: "offline", reason: { code: "portal_sign_in", host: "login.lab" } });
    expect(offline).toContain("cannot be reached");
    expect(offline).toContain("login.lab");
  });

  it("writes numbers the way the language does", () => {
    expect(describeReason({ code: "slow", rtt_ms: 310 })).toContain("0.3 s");
    i18n.lang = "vi";
    expect(describeReason({ code: "slow", rtt_ms: 310 })).toContain("0,3 giây");
    expect(reasonSentence({ code: "timed_out" })).toBe("Máy chủ không trả lời kịp.");
  });

  it("names the answer's problem with its figures", () => {
    expect(describeError(EVERY_ERROR.answer_rejected)).toBe(
      "The answer is too long: 12 characters, at most 10 are allowed.",
    );
  });
});

const snap = (version: number): AuthSnapshot => ({
  version,
  status: "signed_in",
  has_session: true,
  user: "student1",
  expires_at: null,
  refreshing: false,
  reason: null,
  clock_offset_s: 0,
});

describe("auth snapshots", () => {
  it("only ever move forward", () => {
    expect(isNewer(null, snap(1))).toBe(true);
    expect(isNewer(snap(2), snap(3))).toBe(true);
    expect(isNewer(snap(3), snap(3))).toBe(false);
    expect(isNewer(snap(4), snap(3))).toBe(false);
  });
  it("come from auth_changed events only", () => {
    expect(snapshotOf({ type: "auth_changed", snapshot: snap(5) })?.version).toBe(5);
    expect(snapshotOf({ type: "refresh_started", version: 6 })).toBeNull();
  });
});

describe("an error that is not the core's", () => {
  it("is still put in words", () => {
    i18n.lang = "en";
    const foreign = "command start_attempt_with_code not allowed" as unknown as IpcError;
    expect(describeError(foreign)).toBe(en["errors.internal"]);
  });
});
