// Autosave: every change reaches the core (which keeps it on this computer and queues it for
// the server) shortly after the student stops typing. Rules, per question:
// - a change is saved `delayMs` after the last one (choices may ask to be saved at once);
// - nothing is saved while an input method composes a word (Vietnamese Telex/VNI): the
//   half-typed syllable is not an answer yet; the save follows `compositionEnd`;
// - one save in flight; a newer value waits for it and then goes, so the latest value wins
//   and the core sees the values in the order they were typed;
// - `flush` sends what waits now (moving to another question, reviewing, leaving);
// - a failed save (disk full…) is kept and tried again until it succeeds or a newer value
//   replaces it, and the save status says so meanwhile.
import type { AnswerState, AnswerValue, IpcError, Refusal } from "../bindings";
import { describeError } from "./errors";
import { formatTime, t } from "./i18n.svelte";
import { refusalReason } from "./refusals";

export type SaveResult = { status: "ok"; data: AnswerState } | { status: "error"; error: IpcError };
export type SaveFn = (questionId: string, value: AnswerValue) => Promise<SaveResult>;

/** What the save-status line says, most pressing first. */
export type SaveSummary =
  | { kind: "error"; error: string }
  | { kind: "saving" }
  | { kind: "refused"; refusal: Refusal }
  | { kind: "local" }
  | { kind: "server"; at: string }
  | { kind: "idle" };

type Entry = {
  /** The student's latest value. */
  value: AnswerValue | null;
  /** `value` has not reached the core yet. */
  dirty: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  composing: boolean;
  sending: Promise<void> | null;
  /** The core's latest word on this answer (from a save or from progress). */
  state: AnswerState | null;
  /** Why the last save failed, until one succeeds. */
  error: string | null;
  /** When `value` last changed (performance.now()). */
  changedAt: number;
};

export class Autosave {
  private entries = new Map<string, Entry>();
  /**
   * From the last change of a value to the core saying it is on disk, for the latest save
   * (ms; the 300 ms wait included). Shown on the save status for measurements.
   */
  lastLatencyMs: number | null = null;
  /** How many saves `lastLatencyMs` has measured. */
  measured = 0;

  constructor(
    private readonly save: SaveFn,
    private readonly onChange: () => void = () => {},
    private readonly delayMs = 300,
    private readonly retryMs = 3000,
  ) {}

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (!e) {
      e = {
        value: null,
        dirty: false,
        timer: undefined,
        composing: false,
        sending: null,
        state: null,
        error: null,
        changedAt: 0,
      };
      this.entries.set(id, e);
    }
    return e;
  }

  /** The save state the attempt came with. */
  seed(id: string, state: AnswerState | null): void {
    this.entry(id).state = state;
  }

  change(id: string, value: AnswerValue, { immediate = false } = {}): void {
    const e = this.entry(id);
    e.value = value;
    e.dirty = true;
    e.changedAt = performance.now();
    if (e.composing) return this.onChange();
    this.schedule(id, e, immediate ? 0 : this.delayMs);
  }

  compositionStart(id: string): void {
    const e = this.entry(id);
    e.composing = true;
    clearTimeout(e.timer);
    e.timer = undefined;
  }

  /** The word is finished: `value` is the field's text now. */
  compositionEnd(id: string, value?: AnswerValue): void {
    const e = this.entry(id);
    e.composing = false;
    if (value !== undefined) this.change(id, value);
    else if (e.dirty) this.schedule(id, e, this.delayMs);
  }

  /**
   * Sends what waits for one question, or all, now; resolves when the core has answered.
   * True when every value reached the core. A composition in progress is sent as it stands:
   * the student is leaving the field, and its end (if it comes) saves the final word.
   */
  async flush(id?: string): Promise<boolean> {
    const ids = id === undefined ? [...this.entries.keys()] : [id];
    await Promise.all(
      ids.map((qid) => {
        const e = this.entries.get(qid);
        if (!e) return undefined;
        clearTimeout(e.timer);
        e.timer = undefined;
        e.composing = false;
        return this.pump(qid, e);
      }),
    );
    return ids.every((qid) => !this.entries.get(qid)?.error);
  }

  /** Save states from `attemptProgress`: newer ones (by seq) replace what is known. */
  applyProgress(answers: AnswerState[]): void {
    for (const a of answers) {
      const e = this.entry(a.question_id);
      if (isNewer(a, e.state)) e.state = a;
    }
    this.onChange();
  }

  summary(): SaveSummary {
    let saving = false;
    let error: string | null = null;
    let refused: Refusal | null = null;
    let local = false;
    let server: string | null = null;
    for (const e of this.entries.values()) {
      if (e.error) error ??= e.error;
      else if (e.dirty || e.sending) saving = true;
      const s = e.state;
      if (!s) continue;
      if (s.state === "refused") refused ??= s.refusal ?? { status: null, code: null, detail: null };
      else if (s.state === "local") local = true;
      else if (s.saved_server_at && (!server || Date.parse(s.saved_server_at) > Date.parse(server))) {
        server = s.saved_server_at;
      }
    }
    if (error !== null) return { kind: "error", error };
    if (saving) return { kind: "saving" };
    if (refused !== null) return { kind: "refused", refusal: refused };
    if (local) return { kind: "local" };
    if (server !== null) return { kind: "server", at: server };
    return { kind: "idle" };
  }

  dispose(): void {
    for (const e of this.entries.values()) clearTimeout(e.timer);
  }

  private schedule(id: string, e: Entry, delay: number): void {
    clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = undefined;
      void this.pump(id, e);
    }, delay);
    this.onChange();
  }

  private ready(e: Entry): boolean {
    return e.dirty && e.value !== null && e.timer === undefined && !e.composing;
  }

  /** Sends while there is something ready; one save in flight per question. */
  private pump(id: string, e: Entry): Promise<void> {
    if (e.sending) return e.sending;
    if (!this.ready(e)) return Promise.resolve();
    e.sending = (async () => {
      while (this.ready(e)) {
        const value = e.value as AnswerValue;
        const changedAt = e.changedAt;
        e.dirty = false;
        this.onChange();
        let result: SaveResult;
        try {
          result = await this.save(id, value);
        } catch (err) {
          console.error("saving an answer failed", err);
          result = { status: "error", error: { kind: "internal" } };
        }
        if (result.status === "ok") {
          e.error = null;
          if (isNewer(result.data, e.state)) e.state = result.data;
          if (!e.dirty) {
            this.lastLatencyMs = performance.now() - changedAt;
            this.measured += 1;
          }
        } else {
          e.error = describeError(result.error);
          if (!e.dirty) {
            // Nothing newer to send: try this value again in a while.
            e.dirty = true;
            e.timer = setTimeout(() => {
              e.timer = undefined;
              void this.pump(id, e);
            }, this.retryMs);
          }
        }
      }
      e.sending = null;
      this.onChange();
    })();
    return e.sending;
  }
}

/** Whether `next` is at least as recent as `known` (a missing seq counts as the oldest). */
function isNewer(next: AnswerState, known: AnswerState | null): boolean {
  return !known || (next.seq ?? -Infinity) >= (known.seq ?? -Infinity);
}

/** The words of the save-status line. */
export function saveStatusText(s: SaveSummary): string {
  switch (s.kind) {
    case "error":
      return t("save.error", { error: s.error });
    case "saving":
      return t("save.saving");
    case "refused":
      return t("save.refused", { reason: refusalReason(s.refusal) });
    case "local":
      return t("save.local");
    case "server":
      return t("save.server", { time: formatTime(s.at) });
    case "idle":
      return t("save.idle");
  }
}
