//! The offline request queue: every operation for the server is written to SQLite (durably,
//! `synchronous=FULL`) before the student is told "saved", and stays there until the server
//! has taken it.
//!
//! - **Order.** Each entry belongs to a stream (e.g. one attempt) and gets the stream's next
//!   sequence number. Barriers (creating the attempt, submitting it) are delivered after
//!   everything before them and before everything after them; answer saves between two
//!   barriers may travel in parallel, since the server keeps the save with the highest `seq`
//!   (the effect is the stream's order). Across streams: priority, then age.
//! - **Idempotency.** The key is made when the entry is written and sent on every retry, so
//!   at-least-once sending takes effect exactly once.
//! - **Coalescing.** A newer entry with the same `coalesce_key` (the same answer) replaces the
//!   older ones that were never sent; one being sent, or one whose sending may have reached
//!   the server (a lost reply), is left alone and the newer one follows it — so what the
//!   server applied is always known exactly.
//! - **Quota.** Limits by count and bytes of the entries not yet delivered. When full, only
//!   low-priority telemetry is evicted, oldest first, counted; an answer or a submission is
//!   refused with [`QueueError::Full`] instead, never evicted.
//! - **Dead letters.** A reply that retrying cannot fix moves its entry to `dead`, kept with
//!   the reply, listed, exportable and retryable by hand; it never blocks the entries behind.
//! - **Crash safety.** Entries left in flight by a crash are pending again at the next open.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

pub use crate::backoff::Backoff;
use crate::clock::{Clock, SystemClock};
use crate::seal::{is_sealed, Sealer};
use crate::store::{Store, StoreError};

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
    fn from_db(n: i64) -> Self {
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
    fn as_str(self) -> &'static str {
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

    fn from_db(s: &str) -> Self {
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
    fn from_db(s: &str) -> Self {
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
}

impl NewEntry {
    /// An answer save: `PUT /v1/attempts/{attempt}/answers/{question}` with
    /// `{value, seq, saved_at}`, in the attempt's stream, coalesced per question.
    pub fn answer(attempt: &str, question: &str, value: serde_json::Value, saved_at: &str) -> Self {
        Self {
            method: "PUT".into(),
            path: format!(
                "/v1/attempts/{}/answers/{}",
                segment(attempt),
                segment(question)
            ),
            body: Some(serde_json::json!({"value": value, "saved_at": saved_at})),
            stream: format!("attempt:{attempt}"),
            priority: Priority::Normal,
            kind: Kind::Answer,
            coalesce_key: Some(format!("answer:{attempt}:{question}")),
            stamp_seq: true,
        }
    }

    /// Creating an attempt on the server (it may have begun offline).
    pub fn start_attempt(exam: &str, attempt: &str, started_at: &str) -> Self {
        Self {
            method: "POST".into(),
            path: format!("/v1/exams/{}/attempts", segment(exam)),
            body: Some(serde_json::json!({"attempt_id": attempt, "started_at": started_at})),
            stream: format!("attempt:{attempt}"),
            priority: Priority::High,
            kind: Kind::Attempt,
            coalesce_key: None,
            stamp_seq: false,
        }
    }

    /// Submitting an attempt: `{answer_count, answers_digest}` (a barrier: delivered after
    /// every save before it).
    pub fn submit(attempt: &str, answer_count: usize, answers_digest: &str) -> Self {
        Self {
            method: "POST".into(),
            path: format!("/v1/attempts/{}/submit", segment(attempt)),
            body: Some(
                serde_json::json!({"answer_count": answer_count, "answers_digest": answers_digest}),
            ),
            stream: format!("attempt:{attempt}"),
            priority: Priority::High,
            kind: Kind::Submission,
            coalesce_key: None,
            stamp_seq: false,
        }
    }

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
        }
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

/// Quota limits on the entries not yet delivered (pending, in flight, dead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: u64,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 200_000,
            max_bytes: 512 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(
        "storage for unsent work is full ({entries} entries, {bytes} bytes; limits {max_entries} \
         and {max_bytes}): this {kind} was not queued. Reconnect to deliver what is waiting"
    )]
    Full {
        kind: &'static str,
        entries: u64,
        bytes: u64,
        max_entries: u64,
        max_bytes: u64,
    },
    #[error("queue entry {0} does not exist")]
    NoSuchEntry(i64),
    #[error("the request body cannot be stored: {0}")]
    Body(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counts for the sync panel and the quota.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct QueueCounts {
    pub pending: u32,
    pub in_flight: u32,
    pub dead: u32,
    pub done: u32,
    /// Bytes of the entries counted against the quota.
    pub bytes: f64,
    pub evicted: u32,
    pub coalesced: u32,
}

/// A dead letter, as listed and exported.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct DeadLetter {
    pub id: f64,
    pub method: String,
    pub path: String,
    pub kind: Kind,
    pub stream: String,
    pub seq: f64,
    pub attempts: u32,
    pub created_at_ms: f64,
    pub died_at_ms: f64,
    pub error: Option<String>,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    /// The request body as queued (JSON text).
    pub body: Option<String>,
}

/// Totals of the entries counted against the quota, kept in memory (rebuilt at open), so a
/// save never scans the table.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    entries: u64,
    bytes: u64,
}

/// How many pending rows one claim looks at, at most, beyond what it hands out.
const SCAN_SLACK: usize = 512;

/// What the queue keeps in memory (rebuilt at open): quota totals, each stream's next
/// sequence number, and how many saves wait in the inbox.
#[derive(Debug, Default)]
struct State {
    totals: Totals,
    next_seq: HashMap<String, i64>,
    inbox: u64,
    /// The next entry id (ids are kept in memory so a save touches no counter row).
    next_id: i64,
}

struct Inner {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    limits: Mutex<Limits>,
    backoff: Backoff,
    state: Mutex<State>,
    /// Seals answer bodies at rest (see [`crate::seal`]); set once the key is known.
    sealer: std::sync::RwLock<Option<Arc<dyn Sealer>>>,
    /// Woken whenever work is added (the sync engine waits on it when idle).
    added: Arc<tokio::sync::Notify>,
}

/// The queue. Cheap to clone; every clone is the same queue.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

impl Queue {
    /// Opens the queue in the client database at `path`; entries a crash left in flight
    /// are pending again.
    pub fn open(path: &Path, limits: Limits) -> Result<Self, QueueError> {
        Self::open_with(Arc::new(Store::open(path)?), limits, Arc::new(SystemClock))
    }

    pub fn open_with(
        store: Arc<Store>,
        limits: Limits,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, QueueError> {
        let state = {
            let conn = store.lock();
            let recovered = conn
                .execute(
                    "UPDATE queue SET status = 'pending' WHERE status = 'in_flight'",
                    [],
                )
                .map_err(|e| store.error(e))?;
            if recovered > 0 {
                tracing::info!(
                    recovered,
                    "entries left in flight by a crash are pending again"
                );
            }
            read_state(&conn).map_err(|e| store.error(e))?
        };
        let queue = Self {
            inner: Arc::new(Inner {
                store,
                clock,
                limits: Mutex::new(limits),
                backoff: Backoff::default(),
                state: Mutex::new(state),
                sealer: std::sync::RwLock::new(None),
                added: Arc::new(tokio::sync::Notify::new()),
            }),
        };
        // Saves a crash left in the inbox join the queue now.
        drop(queue.conn()?);
        Ok(queue)
    }

    pub fn path(&self) -> &Path {
        self.inner.store.path()
    }

    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// From now on answer saves are queued sealed (their bodies hold what the student
    /// wrote), and sealed bodies are opened when they are handed out for sending.
    pub fn set_sealer(&self, sealer: Arc<dyn Sealer>) {
        *self.inner.sealer.write().unwrap_or_else(|p| p.into_inner()) = Some(sealer);
    }

    /// Notified whenever work is added or made due (a permit is kept if nobody waits).
    pub fn added(&self) -> Arc<tokio::sync::Notify> {
        self.inner.added.clone()
    }

    fn sealer(&self) -> Option<Arc<dyn Sealer>> {
        self.inner
            .sealer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_limits(&self, limits: Limits) {
        *self.inner.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    /// Writes a group of saves as one inbox row (one row however many: a grouped save
    /// costs little more than a single one).
    fn insert_inbox(
        &self,
        tx: &Transaction<'_>,
        group: &[Prepared],
        now: i64,
    ) -> Result<(), QueueError> {
        let Some(first) = group.first() else {
            return Ok(());
        };
        let size: usize = group
            .iter()
            .map(|p| {
                inbox::FIXED_BYTES
                    + p.path.len()
                    + p.stream.len()
                    + p.body.as_ref().map_or(0, Vec::len)
                    + p.coalesce_key.as_ref().map_or(0, String::len)
            })
            .sum();
        let data = inbox::encode(group.iter().map(Prepared::as_inbox), size);
        tx.prepare_cached("INSERT INTO inbox (id, created_at, entries) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![first.id, now, data]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn err(&self, e: rusqlite::Error) -> QueueError {
        QueueError::Store(self.inner.store.error(e))
    }

    /// Writes one entry durably. When this returns `Ok`, the entry survives a crash or a
    /// power cut.
    pub fn enqueue(&self, entry: NewEntry) -> Result<Enqueued, QueueError> {
        let mut out = self.enqueue_many(vec![entry])?;
        out.pop()
            .ok_or_else(|| QueueError::Body("nothing was queued".into()))
    }

    /// Writes several entries in one transaction (all or none).
    ///
    /// A save is one small row in the inbox, committed with `synchronous=FULL`; the indexed
    /// queue takes it over in groups before anything reads the queue ([`Queue::conn`]). Only
    /// when the quota would be exceeded does a save take the slow path: move the inbox, make
    /// room (evicting telemetry only) or refuse, all in one transaction.
    pub fn enqueue_many(&self, entries: Vec<NewEntry>) -> Result<Vec<Enqueued>, QueueError> {
        self.enqueue_many_with(entries, |_, _| Ok(()))
    }

    /// [`Queue::enqueue_many`], with `also` writing the caller's own rows in the same
    /// transaction (e.g. the saved answer next to its queued save: both or neither).
    pub fn enqueue_many_with(
        &self,
        entries: Vec<NewEntry>,
        also: impl FnOnce(&Transaction<'_>, &[Enqueued]) -> rusqlite::Result<()>,
    ) -> Result<Vec<Enqueued>, QueueError> {
        let now = self.now_ms();
        let limits = *self.inner.limits.lock().unwrap_or_else(|p| p.into_inner());
        let mut conn = self.inner.store.lock();
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let sealer = self.sealer();
        let mut prepared = Vec::with_capacity(entries.len());
        for entry in entries {
            let id = state.next_id;
            state.next_id += 1;
            prepared.push(prepare(id, entry, &mut state.next_seq, sealer.as_deref())?);
        }
        let added: u64 = prepared.iter().map(|p| p.bytes).sum();
        let count = prepared.len() as u64;
        let fits = state.totals.entries + count <= limits.max_entries
            && state.totals.bytes + added <= limits.max_bytes;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(prepared.len());
        let mut totals = state.totals;
        let mut evicted_total = 0u32;
        if fits {
            self.insert_inbox(&tx, &prepared, now)?;
            out.extend(prepared.iter().map(|p| p.enqueued(p.id, 0)));
            also(&tx, &out).map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))?;
            state.totals.entries += count;
            state.totals.bytes += added;
            state.inbox += count;
            self.inner.added.notify_one();
            return Ok(out);
        }
        // Slow path: exact accounting in the queue itself.
        move_inbox(&tx, &mut totals).map_err(|e| self.err(e))?;
        for p in &prepared {
            let mut evicted = 0u32;
            while totals.entries + 1 > limits.max_entries
                || totals.bytes + p.bytes > limits.max_bytes
            {
                let victim: Option<(i64, i64)> = tx
                    .prepare_cached(
                        "SELECT id, bytes FROM queue WHERE status = 'pending' AND kind = 'telemetry'
                         ORDER BY created_at, id LIMIT 1",
                    )
                    .and_then(|mut s| {
                        s.query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                            .optional()
                    })
                    .map_err(|e| self.err(e))?;
                let Some((id, b)) = victim else {
                    return Err(QueueError::Full {
                        kind: p.kind.as_str(),
                        entries: totals.entries,
                        bytes: totals.bytes,
                        max_entries: limits.max_entries,
                        max_bytes: limits.max_bytes,
                    });
                };
                tx.execute("DELETE FROM queue WHERE id = ?1", params![id])
                    .map_err(|e| self.err(e))?;
                evicted += 1;
                totals.entries = totals.entries.saturating_sub(1);
                totals.bytes = totals.bytes.saturating_sub(u64::try_from(b).unwrap_or(0));
            }
            self.insert_inbox(&tx, std::slice::from_ref(p), now)?;
            totals.entries += 1;
            totals.bytes += p.bytes;
            move_inbox(&tx, &mut totals).map_err(|e| self.err(e))?;
            evicted_total += evicted;
            out.push(p.enqueued(p.id, evicted));
        }
        if evicted_total > 0 {
            bump(&tx, "evicted", evicted_total).map_err(|e| self.err(e))?;
        }
        also(&tx, &out).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        state.totals = totals;
        state.inbox = 0;
        self.inner.added.notify_one();
        Ok(out)
    }

    /// Moves saves waiting in the inbox into the indexed queue now (every read does it
    /// anyway; useful before reading the tables directly).
    pub fn flush(&self) -> Result<(), QueueError> {
        self.conn().map(drop)
    }

    /// The connection with the inbox moved into the queue, for anything that reads or
    /// changes the queue.
    fn conn(&self) -> Result<std::sync::MutexGuard<'_, rusqlite::Connection>, QueueError> {
        let mut conn = self.inner.store.lock();
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.inbox > 0 {
            let mut totals = state.totals;
            // Moving is not a save: if a power cut loses it, the inbox rows are still there.
            // In parts, each its own transaction, so memory and the WAL stay small.
            relaxed(&mut conn, |conn| -> rusqlite::Result<()> {
                loop {
                    let tx = conn.transaction()?;
                    let moved = move_inbox_part(&tx, &mut totals, 4096)?;
                    tx.commit()?;
                    if moved == 0 {
                        return Ok(());
                    }
                }
            })
            .map_err(|e| self.err(e))?;
            state.totals = totals;
            state.inbox = 0;
        }
        drop(state);
        Ok(conn)
    }

    /// Hands out up to `max` entries that may be sent now, marking them in flight: by
    /// priority then age, and for each stream only a stretch starting at its first open
    /// entry (so a stream's entries are delivered in order, a stretch at a time).
    pub fn claim(&self, max: usize) -> Result<Vec<Claimed>, QueueError> {
        self.claim_up_to(max, u64::MAX)
    }

    /// Like [`Queue::claim`], stopping before the entries' bytes pass `max_bytes` (one
    /// entry is always handed out, however big), so a batch stays under the server's body
    /// limit.
    pub fn claim_up_to(&self, max: usize, max_bytes: u64) -> Result<Vec<Claimed>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        let mut conn = self.conn()?;
        relaxed(&mut conn, |conn| self.claim_in(conn, max, max_bytes, now))
    }

    fn claim_in(
        &self,
        conn: &mut rusqlite::Connection,
        max: usize,
        max_bytes: u64,
        now: i64,
    ) -> Result<Vec<Claimed>, QueueError> {
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut accepted: Vec<i64> = Vec::with_capacity(max);
        {
            let mut scan = tx
                .prepare_cached(
                    "SELECT id, stream, seq, next_attempt_at, kind, bytes FROM queue
                     WHERE status = 'pending' ORDER BY priority, created_at, id",
                )
                .map_err(|e| self.err(e))?;
            // The open entries before a barrier, nearest first.
            let mut open_before = tx
                .prepare_cached(
                    "SELECT id FROM queue
                     WHERE stream = ?1 AND seq < ?2 AND status IN ('pending', 'in_flight')
                     ORDER BY seq DESC LIMIT ?3",
                )
                .map_err(|e| self.err(e))?;
            // The nearest open barrier before an entry.
            let mut barrier_before = tx
                .prepare_cached(
                    "SELECT id FROM queue
                     WHERE stream = ?1 AND seq < ?2 AND status IN ('pending', 'in_flight')
                       AND kind NOT IN ('answer', 'event', 'telemetry')
                     ORDER BY seq DESC LIMIT 1",
                )
                .map_err(|e| self.err(e))?;
            let mut rows = scan.query([]).map_err(|e| self.err(e))?;
            let mut taken: HashSet<i64> = HashSet::new();
            let mut looked = 0usize;
            let mut bytes_taken = 0u64;
            while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                looked += 1;
                if accepted.len() >= max || looked > max + SCAN_SLACK {
                    break;
                }
                let id: i64 = row.get(0).map_err(|e| self.err(e))?;
                let stream: String = row.get(1).map_err(|e| self.err(e))?;
                let seq: i64 = row.get(2).map_err(|e| self.err(e))?;
                let due: i64 = row.get(3).map_err(|e| self.err(e))?;
                let kind = Kind::from_db(&row.get::<_, String>(4).map_err(|e| self.err(e))?);
                let bytes =
                    u64::try_from(row.get::<_, i64>(5).map_err(|e| self.err(e))?).unwrap_or(0);
                if due > now {
                    continue;
                }
                if !accepted.is_empty() && bytes_taken + bytes > max_bytes {
                    break;
                }
                let free = if kind.is_barrier() {
                    // Everything before it is delivered, or goes first in this request.
                    let limit = i64::try_from(taken.len() + 1).unwrap_or(i64::MAX);
                    let before = open_before
                        .query_map(params![stream, seq, limit], |r| r.get::<_, i64>(0))
                        .map_err(|e| self.err(e))?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| self.err(e))?;
                    before.iter().all(|p| taken.contains(p))
                } else {
                    // Only a barrier before it holds it back.
                    let barrier: Option<i64> = barrier_before
                        .query_row(params![stream, seq], |r| r.get(0))
                        .optional()
                        .map_err(|e| self.err(e))?;
                    barrier.is_none_or(|b| taken.contains(&b))
                };
                if free {
                    taken.insert(id);
                    accepted.push(id);
                    bytes_taken += bytes;
                }
            }
        }
        let mut claimed = Vec::with_capacity(accepted.len());
        {
            let mut take = tx
                .prepare_cached(
                    "UPDATE queue SET status = 'in_flight' WHERE id = ?1
                     RETURNING id, method, path, body, idempotency_key, stream, seq, priority,
                               kind, attempts",
                )
                .map_err(|e| self.err(e))?;
            for id in &accepted {
                let entry = take
                    .query_row(params![id], |r| {
                        Ok(Claimed {
                            id: r.get(0)?,
                            method: r.get(1)?,
                            path: r.get(2)?,
                            body: r.get(3)?,
                            idempotency_key: r.get(4)?,
                            stream: r.get(5)?,
                            seq: r.get(6)?,
                            priority: Priority::from_db(r.get(7)?),
                            kind: Kind::from_db(&r.get::<_, String>(8)?),
                            attempts: count(r.get(9)?),
                        })
                    })
                    .map_err(|e| self.err(e))?;
                claimed.push(entry);
            }
        }
        self.open_sealed(&tx, &mut claimed, now)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(claimed)
    }

    /// Opens the sealed bodies of claimed entries. One that cannot be opened is not sent:
    /// without the key (the keychain not available yet) it waits a minute; with a key that
    /// does not open it, it becomes a dead letter saying so (kept, never dropped).
    fn open_sealed(
        &self,
        tx: &Transaction<'_>,
        claimed: &mut Vec<Claimed>,
        now: i64,
    ) -> Result<(), QueueError> {
        if !claimed
            .iter()
            .any(|c| c.body.as_deref().is_some_and(is_sealed))
        {
            return Ok(());
        }
        let sealer = self.sealer();
        let mut kept = Vec::with_capacity(claimed.len());
        for mut c in claimed.drain(..) {
            let Some(body) = c.body.as_deref().filter(|b| is_sealed(b)) else {
                kept.push(c);
                continue;
            };
            let opened = sealer
                .as_deref()
                .map(|s| s.open(c.idempotency_key.as_bytes(), body));
            match opened {
                Some(Ok(plain)) => {
                    c.body = Some(plain);
                    kept.push(c);
                }
                None => {
                    tx.execute(
                        "UPDATE queue SET status = 'pending', next_attempt_at = ?2,
                                last_error = 'waiting for the answer key from the OS keychain'
                         WHERE id = ?1",
                        params![c.id, now + 60_000],
                    )
                    .map_err(|e| self.err(e))?;
                }
                Some(Err(error)) => {
                    tracing::error!(id = c.id, %error, "a queued answer cannot be opened");
                    tx.execute(
                        "UPDATE queue SET status = 'dead', last_error = ?2, completed_at = ?3
                         WHERE id = ?1",
                        params![c.id, error.to_string(), now],
                    )
                    .map_err(|e| self.err(e))?;
                }
            }
        }
        *claimed = kept;
        Ok(())
    }

    /// Records what became of claimed entries, in one transaction.
    pub fn complete(&self, results: &[(i64, Outcome)]) -> Result<(), QueueError> {
        let now = self.now_ms();
        let mut conn = self.conn()?;
        let freed = relaxed(&mut conn, |conn| self.complete_in(conn, results, now))?;
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        state.totals.entries = state.totals.entries.saturating_sub(freed.entries);
        state.totals.bytes = state.totals.bytes.saturating_sub(freed.bytes);
        Ok(())
    }

    fn complete_in(
        &self,
        conn: &mut rusqlite::Connection,
        results: &[(i64, Outcome)],
        now: i64,
    ) -> Result<Totals, QueueError> {
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut freed = Totals::default();
        for (id, outcome) in results {
            match outcome {
                Outcome::Done { status, body } => {
                    let bytes: Option<i64> = tx
                        .prepare_cached(
                            "UPDATE queue SET status = 'done', response_status = ?2,
                                    response_body = ?3, completed_at = ?4, last_error = NULL,
                                    attempts = attempts + 1
                             WHERE id = ?1 AND status = 'in_flight' RETURNING bytes",
                        )
                        .and_then(|mut s| {
                            s.query_row(params![id, status, body, now], |r| r.get(0))
                                .optional()
                        })
                        .map_err(|e| self.err(e))?;
                    if let Some(b) = bytes {
                        freed.entries += 1;
                        freed.bytes += u64::try_from(b).unwrap_or(0);
                    }
                }
                Outcome::Retry { error, retry_after } => {
                    let attempts: Option<i64> = tx
                        .query_row(
                            "SELECT attempts FROM queue WHERE id = ?1",
                            params![id],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(|e| self.err(e))?;
                    let Some(attempts) = attempts else { continue };
                    let attempts = count(attempts) + 1;
                    let delay = self
                        .inner
                        .backoff
                        .delay(attempts, rand::random::<f64>())
                        .max(retry_after.unwrap_or_default());
                    tx.prepare_cached(
                        "UPDATE queue SET status = 'pending', attempts = ?2, next_attempt_at = ?3,
                                last_error = ?4
                         WHERE id = ?1 AND status = 'in_flight'",
                    )
                    .and_then(|mut s| {
                        s.execute(params![id, attempts, now.saturating_add(ms(delay)), error])
                    })
                    .map_err(|e| self.err(e))?;
                }
                Outcome::Release => {
                    tx.prepare_cached(
                        "UPDATE queue SET status = 'pending' WHERE id = ?1 AND status = 'in_flight'",
                    )
                    .and_then(|mut s| s.execute(params![id]))
                    .map_err(|e| self.err(e))?;
                }
                Outcome::Dead {
                    status,
                    body,
                    error,
                } => {
                    tx.prepare_cached(
                        "UPDATE queue SET status = 'dead', response_status = ?2, response_body = ?3,
                                last_error = ?4, completed_at = ?5, attempts = attempts + 1
                         WHERE id = ?1 AND status = 'in_flight'",
                    )
                    .and_then(|mut s| s.execute(params![id, status, body, error, now]))
                    .map_err(|e| self.err(e))?;
                    tracing::warn!(id, status, %error, "a queued request was refused; kept as a dead letter");
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(freed)
    }

    /// When the earliest waiting entry becomes due (ms since the epoch), if any is waiting.
    pub fn next_due_ms(&self) -> Result<Option<i64>, QueueError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT MIN(next_attempt_at) FROM queue WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| self.err(e))
    }

    /// Makes every waiting entry due now ("sync now").
    pub fn make_due_now(&self) -> Result<u32, QueueError> {
        let now = self.now_ms();
        let conn = self.conn()?;
        conn.execute(
            "UPDATE queue SET next_attempt_at = ?1 WHERE status = 'pending' AND next_attempt_at > ?1",
            params![now],
        )
        .map(|n| count(n as i64))
        .map_err(|e| self.err(e))
    }

    pub fn counts(&self) -> Result<QueueCounts, QueueError> {
        let conn = self.conn()?;
        let mut counts = QueueCounts::default();
        let mut stmt = conn
            .prepare_cached("SELECT status, COUNT(*) FROM queue GROUP BY status")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (status, n) = row.map_err(|e| self.err(e))?;
            match Status::from_db(&status) {
                Status::Pending => counts.pending = count(n),
                Status::InFlight => counts.in_flight = count(n),
                Status::Done => counts.done = count(n),
                Status::Dead => counts.dead = count(n),
            }
        }
        drop(stmt);
        let counters = read_counters(&conn).map_err(|e| self.err(e))?;
        counts.evicted = count(counters.get("evicted").copied().unwrap_or(0));
        counts.coalesced = count(counters.get("coalesced").copied().unwrap_or(0));
        counts.bytes = self
            .inner
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .totals
            .bytes as f64;
        Ok(counts)
    }

    /// Cheap counts for progress: entries not yet delivered (pending + in flight).
    pub fn remaining(&self) -> Result<u64, QueueError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT COUNT(*) FROM queue WHERE status IN ('pending', 'in_flight')",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| self.err(e))
    }

    /// How many dead letters there are (cheap: their own index).
    pub fn dead_count(&self) -> Result<u64, QueueError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT COUNT(*) FROM queue WHERE status = 'dead'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| self.err(e))
    }

    /// Dead letters, newest first.
    pub fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, QueueError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, method, path, kind, stream, seq, attempts, created_at, completed_at,
                        last_error, response_status, response_body, body, idempotency_key
                 FROM queue WHERE status = 'dead' ORDER BY completed_at DESC, id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![limit], |r| {
                let key: String = r.get(13)?;
                Ok(DeadLetter {
                    id: r.get::<_, i64>(0)? as f64,
                    method: r.get(1)?,
                    path: r.get(2)?,
                    kind: Kind::from_db(&r.get::<_, String>(3)?),
                    stream: r.get(4)?,
                    seq: r.get::<_, i64>(5)? as f64,
                    attempts: count(r.get(6)?),
                    created_at_ms: r.get::<_, i64>(7)? as f64,
                    died_at_ms: r.get::<_, Option<i64>>(8)?.unwrap_or(0) as f64,
                    error: r.get(9)?,
                    response_status: r
                        .get::<_, Option<i64>>(10)?
                        .and_then(|s| u16::try_from(s).ok()),
                    response_body: r.get(11)?,
                    body: r
                        .get::<_, Option<Vec<u8>>>(12)?
                        .map(|b| self.readable(&key, &b)),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// A body as text for people (dead letters and their export): sealed ones opened when
    /// the key is at hand.
    fn readable(&self, key: &str, body: &[u8]) -> String {
        if !is_sealed(body) {
            return String::from_utf8_lossy(body).into_owned();
        }
        match self.sealer().map(|s| s.open(key.as_bytes(), body)) {
            Some(Ok(plain)) => String::from_utf8_lossy(&plain).into_owned(),
            Some(Err(error)) => format!("<encrypted: {error}>"),
            None => "<encrypted: the answer key is not loaded>".into(),
        }
    }

    /// Puts a dead letter back in the queue (by hand, after the cause was fixed).
    pub fn retry_dead(&self, id: i64) -> Result<(), QueueError> {
        let now = self.now_ms();
        let conn = self.conn()?;
        let changed = conn
            .execute(
                "UPDATE queue SET status = 'pending', attempts = 0, next_attempt_at = ?2,
                        completed_at = NULL
                 WHERE id = ?1 AND status = 'dead'",
                params![id, now],
            )
            .map_err(|e| self.err(e))?;
        if changed == 0 {
            return Err(QueueError::NoSuchEntry(id));
        }
        self.inner.added.notify_one();
        Ok(())
    }

    /// Every dead letter as pretty JSON, for IT or the school.
    pub fn export_dead(&self) -> Result<String, QueueError> {
        let letters = self.dead_letters(u32::MAX)?;
        serde_json::to_string_pretty(&letters).map_err(|e| QueueError::Body(e.to_string()))
    }

    /// Where each of `ids` stands, with the server's reply once there is one (entries
    /// pruned or coalesced away are absent).
    pub fn entry_states(&self, ids: &[i64]) -> Result<HashMap<i64, EntryState>, QueueError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT status, completed_at, response_status, response_body, last_error
                 FROM queue WHERE id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let mut out = HashMap::with_capacity(ids.len());
        for &id in ids {
            let state = stmt
                .query_row(params![id], |r| {
                    Ok(EntryState {
                        status: Status::from_db(&r.get::<_, String>(0)?),
                        completed_at_ms: r.get(1)?,
                        response_status: r
                            .get::<_, Option<i64>>(2)?
                            .and_then(|s| u16::try_from(s).ok()),
                        response_body: r.get(3)?,
                        error: r.get(4)?,
                    })
                })
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(state) = state {
                out.insert(id, state);
            }
        }
        Ok(out)
    }

    /// Marks a dead letter as dealt with by the caller (e.g. a refused submission sent
    /// again under a new key): kept with its reply, no longer listed as refused.
    pub fn resolve_dead(&self, id: i64, note: &str) -> Result<(), QueueError> {
        let now = self.now_ms();
        let conn = self.conn()?;
        let bytes: Option<i64> = conn
            .query_row(
                "UPDATE queue SET status = 'done', last_error = ?2, completed_at = ?3
                 WHERE id = ?1 AND status = 'dead' RETURNING bytes",
                params![id, note, now],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(bytes) = bytes else {
            return Err(QueueError::NoSuchEntry(id));
        };
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        state.totals.entries = state.totals.entries.saturating_sub(1);
        state.totals.bytes = state
            .totals
            .bytes
            .saturating_sub(u64::try_from(bytes).unwrap_or(0));
        Ok(())
    }

    /// Deletes delivered entries completed before `older_than` ago; how many.
    pub fn prune_done(&self, older_than: Duration) -> Result<u32, QueueError> {
        let cutoff = self.now_ms().saturating_sub(ms(older_than));
        let conn = self.conn()?;
        conn.execute(
            "DELETE FROM queue WHERE status = 'done' AND completed_at < ?1",
            params![cutoff],
        )
        .map(|n| count(n as i64))
        .map_err(|e| self.err(e))
    }

    /// The state of one entry (tests, the exam screens).
    pub fn status_of(&self, id: i64) -> Result<Option<Status>, QueueError> {
        Ok(self.entry_states(&[id])?.remove(&id).map(|s| s.status))
    }

    /// The store underneath (for the outage log and other tables of the client database).
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }
}

/// What an entry counts against the byte quota: its path and body, and a fixed share for
/// the rest of its row.
fn entry_bytes(path: &str, body: Option<&[u8]>) -> u64 {
    (body.map_or(0, <[u8]>::len) + path.len() + 96) as u64
}

/// A save ready to be written: its sequence number given, its body encoded.
struct Prepared {
    id: i64,
    method: String,
    path: String,
    body: Option<Vec<u8>>,
    key: uuid::Uuid,
    stream: String,
    seq: i64,
    priority: Priority,
    kind: Kind,
    coalesce_key: Option<String>,
    bytes: u64,
}

impl Prepared {
    fn enqueued(&self, id: i64, evicted: u32) -> Enqueued {
        Enqueued {
            id,
            seq: self.seq,
            idempotency_key: self.key.to_string(),
            evicted,
        }
    }

    fn as_inbox(&self) -> inbox::EntryRef<'_> {
        inbox::EntryRef {
            id: self.id,
            seq: self.seq,
            priority: self.priority,
            key: &self.key,
            method: &self.method,
            kind: self.kind,
            stream: &self.stream,
            coalesce_key: self.coalesce_key.as_deref(),
            path: &self.path,
            body: self.body.as_deref(),
        }
    }
}

fn prepare(
    id: i64,
    entry: NewEntry,
    next_seq: &mut HashMap<String, i64>,
    sealer: Option<&dyn Sealer>,
) -> Result<Prepared, QueueError> {
    let next = next_seq.entry(entry.stream.clone()).or_insert(1);
    let seq = *next;
    *next += 1;
    let mut body = entry.body;
    if entry.stamp_seq {
        if let Some(serde_json::Value::Object(map)) = body.as_mut() {
            map.insert("seq".into(), seq.into());
        }
    }
    let body = body
        .map(|b| serde_json::to_vec(&b))
        .transpose()
        .map_err(|e| QueueError::Body(e.to_string()))?;
    let bytes = entry_bytes(&entry.path, body.as_deref());
    // Time-ordered keys append to the unique index instead of landing at random in it.
    let key = uuid::Uuid::now_v7();
    let body = match (body, sealer) {
        (Some(plain), Some(sealer)) if entry.kind == Kind::Answer => {
            Some(sealer.seal(key.hyphenated().to_string().as_bytes(), &plain))
        }
        (body, _) => body,
    };
    Ok(Prepared {
        id,
        method: entry.method,
        path: entry.path,
        body,
        key,
        stream: entry.stream,
        seq,
        priority: entry.priority,
        kind: entry.kind,
        coalesce_key: entry.coalesce_key,
        bytes,
    })
}

/// Moves every inbox row into the queue (same id), in order: a newer save of an answer
/// replaces its older never-sent saves; each stream's next number is kept.
fn move_inbox(tx: &Transaction<'_>, totals: &mut Totals) -> rusqlite::Result<()> {
    while move_inbox_part(tx, totals, 4096)? > 0 {}
    Ok(())
}

/// Moves up to `limit` of the oldest inbox rows; how many.
fn move_inbox_part(
    tx: &Transaction<'_>,
    totals: &mut Totals,
    limit: i64,
) -> rusqlite::Result<usize> {
    let rows: Vec<(i64, i64, Vec<inbox::InboxEntry>)> = {
        let mut stmt =
            tx.prepare_cached("SELECT id, created_at, entries FROM inbox ORDER BY id LIMIT ?1")?;
        let rows = stmt.query_map([limit], |r| {
            Ok((r.get(0)?, r.get(1)?, inbox::decode_column(r, 2)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let Some(last) = rows.last().map(|r| r.0) else {
        return Ok(0);
    };
    let mut moved = 0usize;
    let mut max_id = 0i64;
    let mut superseded = 0u32;
    let mut next: HashMap<String, i64> = HashMap::new();
    for (_, created_at, entries) in rows {
        for e in entries {
            if let Some(key) = &e.coalesce_key {
                let mut stmt = tx.prepare_cached(
                    "DELETE FROM queue
                     WHERE coalesce_key = ?1 AND status = 'pending' AND attempts = 0
                     RETURNING bytes",
                )?;
                let freed = stmt
                    .query_map(params![key], |row| row.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                for b in freed {
                    superseded += 1;
                    totals.entries = totals.entries.saturating_sub(1);
                    totals.bytes = totals.bytes.saturating_sub(u64::try_from(b).unwrap_or(0));
                }
            }
            tx.prepare_cached(
                "INSERT INTO queue (id, method, path, body, idempotency_key, stream, seq,
                                    priority, kind, coalesce_key, bytes, created_at,
                                    next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
            )?
            .execute(params![
                e.id,
                e.method,
                e.path,
                e.body,
                e.key.to_string(),
                e.stream,
                e.seq,
                e.priority,
                e.kind,
                e.coalesce_key,
                i64::try_from(e.bytes).unwrap_or(i64::MAX),
                created_at,
            ])?;
            let n = next.entry(e.stream).or_insert(0);
            *n = (*n).max(e.seq + 1);
            max_id = max_id.max(e.id);
            moved += 1;
        }
    }
    tx.prepare_cached("DELETE FROM inbox WHERE id <= ?1")?
        .execute(params![last])?;
    // Ids are never reused, even after delivered entries are pruned.
    tx.prepare_cached(
        "INSERT INTO counters (name, value) VALUES ('max_id', ?1)
         ON CONFLICT (name) DO UPDATE SET value = max(value, ?1)",
    )?
    .execute(params![max_id])?;
    for (stream, n) in next {
        tx.prepare_cached(
            "INSERT INTO streams (stream, next_seq) VALUES (?1, ?2)
             ON CONFLICT (stream) DO UPDATE SET next_seq = max(next_seq, ?2)",
        )?
        .execute(params![stream, n])?;
    }
    if superseded > 0 {
        bump(tx, "coalesced", superseded)?;
    }
    Ok(moved.max(1))
}

/// Totals, next sequence numbers and the inbox size, from the database.
fn read_state(conn: &rusqlite::Connection) -> rusqlite::Result<State> {
    let mut state = State::default();
    let (entries, bytes, max_id): (i64, i64, i64) = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM queue WHERE status <> 'done'),
                (SELECT COALESCE(SUM(bytes), 0) FROM queue WHERE status <> 'done'),
                max((SELECT COALESCE(MAX(id), 0) FROM queue),
                    (SELECT COALESCE(MAX(value), 0) FROM counters WHERE name = 'max_id'))",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    state.totals = Totals {
        entries: u64::try_from(entries).unwrap_or(0),
        bytes: u64::try_from(bytes).unwrap_or(0),
    };
    state.next_id = max_id + 1;
    let mut stmt = conn.prepare("SELECT stream, next_seq FROM streams")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (stream, next) = row?;
        state.next_seq.insert(stream, next);
    }
    // Saves a crash left in the inbox count too (they join the queue right after).
    let mut stmt = conn.prepare("SELECT entries FROM inbox")?;
    for entries in stmt.query_map([], |r| inbox::decode_column(r, 0))? {
        for e in entries? {
            state.totals.entries += 1;
            state.totals.bytes += e.bytes;
            state.inbox += 1;
            state.next_id = state.next_id.max(e.id + 1);
            let next = state.next_seq.entry(e.stream).or_insert(1);
            *next = (*next).max(e.seq + 1);
        }
    }
    Ok(state)
}

/// Runs `work` with `synchronous=NORMAL`, then restores FULL. Marking entries in flight or
/// delivered need not reach the disk before the call returns: if a power cut loses such a
/// mark, the entry is sent again and the server's idempotency makes the repeat harmless.
/// Only saving new work must be `synchronous=FULL`.
fn relaxed<T>(
    conn: &mut rusqlite::Connection,
    work: impl FnOnce(&mut rusqlite::Connection) -> T,
) -> T {
    let _ = conn.pragma_update(None, "synchronous", "NORMAL");
    let result = work(conn);
    if let Err(error) = conn.pragma_update(None, "synchronous", "FULL") {
        tracing::error!(%error, "could not restore synchronous=FULL");
    }
    result
}

fn bump(tx: &Transaction<'_>, name: &str, by: u32) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO counters (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = value + ?2",
    )?
    .execute(params![name, by])?;
    Ok(())
}

fn read_counters(conn: &rusqlite::Connection) -> rusqlite::Result<HashMap<String, i64>> {
    let mut stmt = conn.prepare_cached("SELECT name, value FROM counters")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub mod inbox;
#[cfg(test)]
mod tests;
