//! What the sync engine tells windows: its state, its progress and its statistics. Plain
//! data with no dependency, so the event bus that carries it depends on nothing else.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum SyncState {
    /// Nothing to send.
    Idle,
    Syncing,
    /// Paused by the student.
    Paused,
    /// The server cannot be reached; work waits on this computer.
    WaitingForNetwork,
    /// Nobody is signed in; work waits on this computer.
    WaitingForSignIn,
    /// Work waits for its next retry.
    Retrying,
}

/// What the student sees while syncing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SyncProgress {
    pub state: SyncState,
    /// Delivered since this sync began.
    pub done: u32,
    /// The signed-in student's work not delivered yet (waiting or being sent).
    pub remaining: u32,
    /// The signed-in student's work refused by the server and kept here (dead letters):
    /// never "everything is sent" while any is left.
    pub refused: u32,
    /// Other students' work waiting on this computer (lab machines are shared): counted,
    /// never named. It is sent to their own accounts with their own credentials.
    pub others_waiting: u32,
    pub items_per_s: f64,
    /// What is being sent now.
    pub current: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SyncStats {
    /// Syncs begun (idle → syncing).
    pub syncs: u32,
    /// Entries delivered, retried later, dead-lettered.
    pub successes: u32,
    pub failures: u32,
    pub dead: u32,
    /// HTTP requests sent and how many were batches.
    pub requests: u32,
    pub batches: u32,
    pub avg_request_ms: f64,
    pub avg_sync_ms: f64,
}
