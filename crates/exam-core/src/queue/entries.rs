//! What the queue holds: entries as the caller makes them ([`NewEntry`]), as they are handed
//! out ([`Claimed`]) and what became of them ([`Outcome`], [`EntryState`]). Requests of the
//! exam API are made by the exam module (`exam::requests`); the queue knows streams,
//! barriers, priorities and coalescing keys, not URLs.

use std::time::Duration;

use serde::Serialize;

use crate::owner::Owner;

/// Delivery priority: high before normal before low, then oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Priority {
    High = 0,
    Normal = 1,
    Low = 2,
}

impl Priority {
    pub(super) fn from_db(n: i64) -> Self {
        match n {
            0 => Self::High,
            1 => Self::Normal,
            _ => Self::Low,
        }
    }
}

/// What an entry is, which decides what the quota may do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Kind {
    Attempt,
    Answer,
    Submission,
    Event,
    /// The only kind the quota may evict.
    Telemetry,
    Other,
}

impl Kind {
    /// Kinds whose bodies are sealed at rest: answers hold what the student wrote, and a
    /// submission's digest would give multiple-choice answers away to a brute force.
    pub fn is_sealed(self) -> bool {
        matches!(self, Self::Answer | Self::Submission)
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Attempt => "attempt",
            Self::Answer => "answer",
            Self::Submission => "submission",
            Self::Event => "event",
            Self::Telemetry => "telemetry",
            Self::Other => "other",
        }
    }

    /// A barrier is delivered only after everything before it in its stream, and holds
    /// back everything after it (creating an attempt, submitting it). Other entries of a
    /// stream may travel in parallel: answer saves carry the stream's `seq` and the server
    /// keeps the highest, so the effect is the stream's order.
    pub fn is_barrier(self) -> bool {
        !matches!(self, Self::Answer | Self::Event | Self::Telemetry)
    }

    pub(super) fn from_db(s: &str) -> Self {
        match s {
            "attempt" => Self::Attempt,
            "answer" => Self::Answer,
            "submission" => Self::Submission,
            "event" => Self::Event,
            "telemetry" => Self::Telemetry,
            _ => Self::Other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Status {
    Pending,
    InFlight,
    Done,
    Dead,
}

impl Status {
    pub(super) fn from_db(s: &str) -> Self {
        match s {
            "in_flight" => Self::InFlight,
            "done" => Self::Done,
            "dead" => Self::Dead,
            _ => Self::Pending,
        }
    }
}

/// An operation to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub method: String,
    pub path: String,
    pub body: Option<serde_json::Value>,
    pub stream: String,
    pub priority: Priority,
    pub kind: Kind,
    pub coalesce_key: Option<String>,
    /// Writes the stream's sequence number into the body's `seq` (answer saves: the
    /// server keeps the highest `seq`, so the order of saves is the order of the queue).
    pub stamp_seq: bool,
    /// Whose work it is: it is sent only with this student's credentials. The sync engine
    /// never sends an entry without one.
    pub owner: Option<Owner>,
}

impl NewEntry {
    /// Telemetry events (low priority, evictable).
    pub fn telemetry(events: serde_json::Value) -> Self {
        Self {
            method: "POST".into(),
            path: "/v1/events".into(),
            body: Some(serde_json::json!({ "events": events })),
            stream: "telemetry".into(),
            priority: Priority::Low,
            kind: Kind::Telemetry,
            coalesce_key: None,
            stamp_seq: false,
            owner: None,
        }
    }

    /// Security events (findings and their clearing): delivered in order, never evicted
    /// by the telemetry quota.
    pub fn security_events(events: serde_json::Value) -> Self {
        Self {
            method: "POST".into(),
            path: "/v1/events".into(),
            body: Some(serde_json::json!({ "events": events })),
            stream: "security".into(),
            priority: Priority::Normal,
            kind: Kind::Event,
            coalesce_key: None,
            stamp_seq: false,
            owner: None,
        }
    }

    /// The same entry, belonging to `owner`.
    pub fn owned_by(mut self, owner: &Owner) -> Self {
        self.owner = Some(owner.clone());
        self
    }
}

/// An id as one URL path segment (ids are opaque: `/`, `?` or `#` in one must not change
/// the request).
pub fn segment(id: &str) -> std::borrow::Cow<'_, str> {
    if id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return std::borrow::Cow::Borrowed(id);
    }
    std::borrow::Cow::Owned(
        url::form_urlencoded::byte_serialize(id.as_bytes())
            .collect::<String>()
            .replace('+', "%20"),
    )
}

/// Where a queued entry stands (see [`Queue::entry_states`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EntryState {
    pub status: Status,
    pub completed_at_ms: Option<i64>,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    /// The last error (retries) or why it was refused (dead).
    pub error: Option<String>,
}

impl EntryState {
    /// The server's reply as JSON (`Null` when there is none or it is not JSON).
    pub fn reply(&self) -> serde_json::Value {
        self.response_body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or_default()
    }
}

/// Where a new entry went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub id: i64,
    pub seq: i64,
    pub idempotency_key: String,
    /// Telemetry entries evicted to make room.
    pub evicted: u32,
}

/// An entry handed out for sending.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: i64,
    pub method: String,
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub idempotency_key: String,
    pub stream: String,
    pub seq: i64,
    pub priority: Priority,
    pub kind: Kind,
    pub attempts: u32,
    /// Whose it is (`None`: kept by an earlier version, never sent).
    pub owner: Option<Owner>,
}

/// What became of a claimed entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The server took it (2xx).
    Done { status: u16, body: String },
    /// Worth retrying (network, timeout, 5xx, 408, 429, in flight elsewhere): back to
    /// pending after the backoff, or after `retry_after` if the server said so.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Not sent, or its result does not count (e.g. an earlier entry of its stream failed in
    /// the same batch): back to pending at once, no attempt counted.
    Release,
    /// A reply retrying cannot fix: kept as a dead letter with the reply.
    Dead {
        status: u16,
        body: String,
        error: String,
    },
}
