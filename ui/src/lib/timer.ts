// Time left in the attempt. The core says how much is left (`remaining_ms`); between its
// answers the screen counts down on its own from a monotonic anchor (`performance.now()`),
// so changing the wall clock does not change the time left. Every answer re-anchors it.

/** "1:05:09": hours, then minutes and seconds with two digits. Rounds up, so 0:00:00 means over. */
export function formatRemaining(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}

export class Countdown {
  private left: number | null = null;
  private at = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /**
   * The core said `remainingMs` are left, as of now. It may not know (null: the figure
   * could not be computed); then the count goes on from the last figure it gave.
   */
  anchor(remainingMs: number | null): void {
    if (remainingMs === null) return;
    this.left = remainingMs;
    this.at = this.now();
  }

  /** Null until the core has given a figure. */
  remaining(): number | null {
    return this.left === null ? null : Math.max(0, this.left - (this.now() - this.at));
  }
}

/** Minutes before the end at which a screen reader is told the time left. */
export const ANNOUNCE_AT_MINUTES = [1, 5, 10] as const;

/**
 * The announcement due when the time left goes from `before` to `after` (ms), if any: the
 * most urgent threshold crossed, so a jump (a re-anchor) does not announce stale news.
 */
export function crossedMinutes(before: number, after: number): number | null {
  for (const minutes of ANNOUNCE_AT_MINUTES) {
    const at = minutes * 60_000;
    if (before > at && after <= at) return minutes;
  }
  return null;
}
