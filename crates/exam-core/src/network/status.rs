//! What the network monitor tells windows: plain data, carried by the event bus, with no
//! dependency on the monitor that makes it.

use serde::Serialize;

use crate::reason::Reason;

/// What the student can rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum NetState {
    /// Not probed yet.
    Unknown,
    Online,
    /// Reachable, but slow or losing probes.
    Degraded,
    /// The server cannot be reached at all (no network, or the link times out).
    Offline,
    /// A network login page intercepts requests.
    CaptivePortal,
    /// The network works but the server refuses or fails (connection refused, 5xx).
    ServerDown,
}

impl NetState {
    /// Whether requests may be sent.
    pub fn is_usable(self) -> bool {
        matches!(self, Self::Online | Self::Degraded)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Online => "online",
            Self::Degraded => "degraded",
            Self::Offline => "offline",
            Self::CaptivePortal => "captive_portal",
            Self::ServerDown => "server_down",
        }
    }
}

/// Link quality from the smoothed round-trip time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum LinkQuality {
    Good,
    Fair,
    Poor,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct NetStatus {
    pub state: NetState,
    pub quality: LinkQuality,
    /// Smoothed round-trip time of the probes (ms).
    pub rtt_ms: Option<f64>,
    /// When the state last changed (ms since the epoch).
    pub since_ms: f64,
    /// Why, when not online (or slow), as a code the screens word.
    pub reason: Option<Reason>,
    /// Whether requests may be sent ([`NetState::is_usable`]): decided here, so no window
    /// decides it again.
    pub usable: bool,
    /// Probes sent since start (diagnostics).
    pub probes: u32,
}
