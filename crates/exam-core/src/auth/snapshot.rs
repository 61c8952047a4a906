//! What every window knows about the sign-in: plain data, carried by the event bus, with no
//! dependency on the token manager that makes it.

use serde::Serialize;

use crate::reason::Reason;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum AuthStatus {
    SignedOut,
    SignedIn,
    /// Signed in, but the server cannot be reached: tokens are kept, work is queued.
    Offline,
    /// The server ended the session; local data and queued work are kept until the student
    /// signs in again.
    SessionEnded,
}

impl AuthStatus {
    /// A student's session is held (tokens kept, work is sent as them): the one place this
    /// is decided, for sync, the refresher and (through [`AuthSnapshot::has_session`]) the
    /// windows.
    pub fn has_session(self) -> bool {
        matches!(self, Self::SignedIn | Self::Offline)
    }
}

/// What every window knows about auth. `version` only grows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AuthSnapshot {
    pub version: u32,
    pub status: AuthStatus,
    /// [`AuthStatus::has_session`]: the exam screens are shown.
    pub has_session: bool,
    pub user: Option<String>,
    /// When the access token expires, in the server's time (RFC 3339).
    pub expires_at: Option<String>,
    pub refreshing: bool,
    /// Why the session ended or why the app is offline, as a code the screens word.
    pub reason: Option<Reason>,
    /// Server clock minus this computer's clock, in seconds.
    pub clock_offset_s: f64,
}
