//! The core's event bus: the core publishes what changed, the shell subscribes once and
//! forwards each event to every window. It replaces the browser's BroadcastChannel: the
//! core holds the truth, and a window that missed events asks for a snapshot.

use serde::Serialize;
use tokio::sync::broadcast;

// Only plain data: the bus depends on no service.
use crate::auth::snapshot::AuthSnapshot;
use crate::network::status::NetStatus;
use crate::reason::Reason;
use crate::sync::progress::SyncProgress;

/// Everything windows are told about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum CoreEvent {
    /// The auth state changed; carries the whole new snapshot (its version only grows).
    AuthChanged {
        snapshot: AuthSnapshot,
    },
    RefreshStarted {
        version: u32,
    },
    RefreshCompleted {
        version: u32,
    },
    RefreshFailed {
        version: u32,
        reason: Reason,
        transient: bool,
    },
    /// The session is over (the server said so); every window shows sign-in with `reason`.
    SessionEnded {
        version: u32,
        reason: Reason,
    },
    /// The network monitor's view changed.
    NetworkChanged {
        status: NetStatus,
    },
    /// Sync progress: state, delivered, remaining, rate (at most ten a second).
    SyncProgress {
        progress: SyncProgress,
    },
    /// Something about an attempt changed on the server's side (an answer delivered, the
    /// deadline confirmed, the submission delivered or refused): windows showing it ask
    /// for its progress.
    ExamChanged {
        attempt_id: String,
    },
    /// The device checks found something new, or something stopped.
    SecurityChanged {
        security: crate::security::SecuritySnapshot,
    },
    /// A second of the history just finished: its charted figures, for live dashboards.
    HistoryTick {
        at_ms: f64,
        values: Vec<crate::analytics::TickValue>,
    },
    /// A delivery probe: every window answers it at once, so the core can measure how long
    /// its events take to reach the windows (the diagnostics window and the benchmark).
    Ping {
        id: u32,
        /// When the core sent it, ms since the Unix epoch.
        sent_ms: f64,
        /// How long a window waits before answering, so answers do not compete with the
        /// delivery to the other windows (0: answer at once, for the round trip).
        answer_after_ms: u32,
    },
}

/// Many publishers, many subscribers. A slow subscriber that falls more than `capacity`
/// events behind is told it lagged and should take a snapshot.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<CoreEvent>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }

    /// Publishes to whoever listens now; nobody listening is fine.
    pub fn publish(&self, event: CoreEvent) {
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<CoreEvent> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(256)
    }
}
