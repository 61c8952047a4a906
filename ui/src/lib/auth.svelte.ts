// The auth state every window shares. The core holds the truth: a window takes a snapshot
// when it opens and then follows the core's events, keeping only what is newer (versions
// only grow), so a window opened late or hidden for a while is never behind.
import { commands, events, type AuthSnapshot, type CoreEvent, type Reason } from "../bindings";

export function isNewer(current: AuthSnapshot | null, next: AuthSnapshot): boolean {
  return current === null || next.version > current.version;
}

/** The snapshot an event carries, if any. */
export function snapshotOf(event: CoreEvent): AuthSnapshot | null {
  return event.type === "auth_changed" ? event.snapshot : null;
}

class AuthStore {
  snapshot = $state<AuthSnapshot | null>(null);
  /** The last session-ended reason, kept for the sign-in screen. */
  endedReason = $state<Reason | null>(null);

  apply(next: AuthSnapshot) {
    if (isNewer(this.snapshot, next)) {
      this.snapshot = next;
      // Why the last session ended (the school, or a time without activity), for the
      // sign-in screen.
      if ((next.status === "session_ended" || next.status === "signed_out") && next.reason) {
        this.endedReason = next.reason;
      }
      if (next.status === "signed_in") this.endedReason = null;
    }
  }

  /** Follows the core's sign-in. The listener and the first snapshot are asked for
   * together (one round trip): snapshots carry versions, so whichever arrives first, the
   * newest wins. */
  async start(): Promise<void> {
    const [, snapshot] = await Promise.all([
      events.coreEventMessage.listen((event) => {
        const next = snapshotOf(event.payload);
        if (next) this.apply(next);
      }),
      commands.authSnapshot(),
    ]);
    this.apply(snapshot);
  }
}

export const auth = new AuthStore();
