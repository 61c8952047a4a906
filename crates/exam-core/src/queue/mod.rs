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
//!
//! Its parts: `entries` (what is queued and what became of it), `enqueue` (saving, the
//! inbox, the quota), `delivery` (claims, outcomes, retries), `dead` (dead letters),
//! [`inbox`] (the inbox rows' encoding); this file opens the queue and keeps its state.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

pub use crate::backoff::Backoff;
use crate::clock::{Clock, SystemClock};
use crate::owner::Owner;
use crate::seal::{is_sealed, Sealer};

/// The answer keys the queue seals and opens bodies with, one per student.
pub trait Keys: Send + Sync {
    /// The sealer of `owner`'s data when their key is on this computer (never made here).
    fn sealer_for(&self, owner: &Owner) -> Option<Arc<dyn Sealer>>;
    /// The sealer for `owner`'s new data: made if they have none and nothing sealed here.
    fn sealer_to_seal(&self, owner: &Owner) -> Result<Arc<dyn Sealer>, crate::seal::SealError>;
}

/// The owner a row names in its `origin` and `student` columns, at `at` and `at + 1` (none
/// for a row an earlier version kept without one).
fn owner_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<Owner>> {
    let origin: Option<String> = r.get(at)?;
    let student: Option<String> = r.get(at + 1)?;
    Ok(origin.zip(student).map(|(o, s)| Owner::new(o, s)))
}

/// Associated data of a sealed reply: it opens only as the reply to its own request.
fn reply_ad(idempotency_key: &str) -> Vec<u8> {
    format!("reply\0{idempotency_key}").into_bytes()
}

/// One sealer for everyone: tests and tools.
struct OneKey(Arc<dyn Sealer>);

impl Keys for OneKey {
    fn sealer_for(&self, _owner: &Owner) -> Option<Arc<dyn Sealer>> {
        Some(self.0.clone())
    }
    fn sealer_to_seal(&self, _owner: &Owner) -> Result<Arc<dyn Sealer>, crate::seal::SealError> {
        Ok(self.0.clone())
    }
}
use crate::store::{Store, StoreError};

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
    #[error("this answer cannot be stored sealed: {0}")]
    Seal(#[from] crate::seal::SealError),
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
    keys: std::sync::RwLock<Option<Arc<dyn Keys>>>,
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
                keys: std::sync::RwLock::new(None),
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

    /// From now on answer saves are queued sealed with their student's key (their bodies
    /// hold what the student wrote), and sealed bodies are opened with it when they are
    /// handed out for sending.
    pub fn set_keys(&self, keys: Arc<dyn Keys>) {
        *self.inner.keys.write().unwrap_or_else(|p| p.into_inner()) = Some(keys);
    }

    /// [`Queue::set_keys`] with one sealer for every student (tests and tools).
    pub fn set_sealer(&self, sealer: Arc<dyn Sealer>) {
        self.set_keys(Arc::new(OneKey(sealer)));
    }

    /// Notified whenever work is added or made due (a permit is kept if nobody waits).
    pub fn added(&self) -> Arc<tokio::sync::Notify> {
        self.inner.added.clone()
    }

    fn keys(&self) -> Option<Arc<dyn Keys>> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The sealer of `owner`'s entries: `Ok(None)` when the queue seals nothing (no keys
    /// were given), `Err(())` when it does but that student's key is not at hand.
    fn sealer_for(&self, owner: Option<&Owner>) -> Result<Option<Arc<dyn Sealer>>, ()> {
        match (self.keys(), owner) {
            (None, _) => Ok(None),
            (Some(keys), Some(owner)) => keys.sealer_for(owner).map(Some).ok_or(()),
            (Some(_), None) => Err(()),
        }
    }

    pub fn set_limits(&self, limits: Limits) {
        *self.inner.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    fn err(&self, e: rusqlite::Error) -> QueueError {
        QueueError::Store(self.inner.store.error(e))
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

    pub fn counts(&self) -> Result<QueueCounts, QueueError> {
        let conn = self.conn()?;
        let mut counts = self.status_counts(&conn, None)?;
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

    /// `owner`'s entries by status.
    pub fn counts_for(&self, owner: &Owner) -> Result<QueueCounts, QueueError> {
        let conn = self.conn()?;
        self.status_counts(&conn, Some(owner))
    }

    /// Entries by status: every student's, or `owner`'s.
    fn status_counts(
        &self,
        conn: &rusqlite::Connection,
        owner: Option<&Owner>,
    ) -> Result<QueueCounts, QueueError> {
        let mut counts = QueueCounts::default();
        let mut stmt = conn
            .prepare_cached(
                "SELECT status, COUNT(*) FROM queue
                 WHERE ?1 IS NULL OR (origin = ?1 AND student = ?2) GROUP BY status",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![
                    owner.map(|o| o.origin.as_str()),
                    owner.map(|o| o.student.as_str())
                ],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
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
        Ok(counts)
    }

    /// `owner`'s work still to send (pending or in flight; telemetry is not work).
    pub fn remaining_for(&self, owner: &Owner) -> Result<u64, QueueError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT COUNT(*) FROM queue
             WHERE status IN ('pending', 'in_flight') AND kind <> 'telemetry'
               AND origin = ?1 AND student = ?2",
            params![owner.origin, owner.student],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| self.err(e))
    }

    /// Cheap counts for progress: work not yet delivered (pending + in flight). Telemetry is
    /// not work: it is sent when it can be, evicted first, and never shown as waiting nor
    /// keeps a student's credentials here.
    pub fn remaining(&self) -> Result<u64, QueueError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT COUNT(*) FROM queue
             WHERE status IN ('pending', 'in_flight') AND kind <> 'telemetry'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| self.err(e))
    }

    /// A server's reply as the database keeps it: a submission's, which carries the answers'
    /// digest, sealed with its student's key (an answer save's reply says only its `seq`).
    pub(super) fn stored_reply(
        &self,
        tx: &rusqlite::Transaction<'_>,
        id: i64,
        body: &str,
    ) -> Result<rusqlite::types::Value, QueueError> {
        let row: Option<(String, Option<Owner>, String)> = tx
            .prepare_cached(
                "SELECT kind, origin, student, idempotency_key FROM queue WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row(params![id], |r| Ok((r.get(0)?, owner_at(r, 1)?, r.get(3)?)))
                    .optional()
            })
            .map_err(|e| self.err(e))?;
        let plain = rusqlite::types::Value::Text(body.to_string());
        let Some((kind, owner, key)) = row else {
            return Ok(plain);
        };
        match self.sealer_for(owner.as_ref()) {
            Ok(Some(sealer)) if Kind::from_db(&kind) == Kind::Submission => Ok(
                rusqlite::types::Value::Blob(sealer.seal(&reply_ad(&key), body.as_bytes())),
            ),
            _ => Ok(plain),
        }
    }

    /// A reply read back from the database: opened with its student's key if sealed.
    pub(super) fn reply_text(
        &self,
        owner: Option<&Owner>,
        key: &str,
        stored: rusqlite::types::Value,
    ) -> Option<String> {
        match stored {
            rusqlite::types::Value::Text(text) => Some(text),
            rusqlite::types::Value::Blob(bytes) if is_sealed(&bytes) => {
                let sealer = self.sealer_for(owner).ok().flatten()?;
                String::from_utf8(sealer.open(&reply_ad(key), &bytes).ok()?).ok()
            }
            rusqlite::types::Value::Blob(bytes) => String::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// Where each of `ids` stands, with the server's reply once there is one (entries
    /// pruned or coalesced away are absent).
    pub fn entry_states(&self, ids: &[i64]) -> Result<HashMap<i64, EntryState>, QueueError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT status, completed_at, response_status, response_body, last_error,
                        origin, student, idempotency_key
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
                        response_body: self.reply_text(
                            owner_at(r, 5)?.as_ref(),
                            &r.get::<_, String>(7)?,
                            r.get(3)?,
                        ),
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

mod dead;
mod delivery;
mod enqueue;
mod entries;
pub mod inbox;
pub mod reported;
#[cfg(test)]
mod tests;

pub use dead::DeadLetter;
use enqueue::{entry_bytes, move_inbox_part};
pub use entries::*;
