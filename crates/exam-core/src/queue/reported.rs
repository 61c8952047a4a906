//! What the app noted for the server (outages, time the app was not running) goes out the
//! same way: queued as the student's security events — never evicted — and only then marked
//! reported where it was noted, so a crash in between sends it again (the server
//! deduplicates by the event's id) and never loses it.

use crate::owner::Owner;

use super::{NewEntry, Queue};

/// Where a noted row lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// `outages`: the network monitor's.
    Outages,
    /// `app_downtime`: the fair-time ledger's.
    AppDowntime,
}

impl Noted {
    fn mark_sql(self) -> &'static str {
        match self {
            Noted::Outages => "UPDATE outages SET reported = 1 WHERE id = ?1",
            Noted::AppDowntime => "UPDATE app_downtime SET reported = 1 WHERE id = ?1",
        }
    }
}

/// Queues `events` (a JSON array) as `owner`'s, then marks `ids` of `noted` reported.
/// False when they could not be queued (logged, left to try again); an error when marking
/// failed (they are queued; a second report of them is one on the server).
pub fn send_noted(
    queue: &Queue,
    owner: &Owner,
    events: serde_json::Value,
    noted: Noted,
    ids: &[i64],
) -> rusqlite::Result<bool> {
    if let Err(error) = queue.enqueue(NewEntry::security_events(events).owned_by(owner)) {
        tracing::warn!(%error, ?noted, "could not be queued for the server; kept to try again");
        return Ok(false);
    }
    let conn = queue.store().lock();
    let mut stmt = conn.prepare_cached(noted.mark_sql())?;
    for id in ids {
        stmt.execute([id])?;
    }
    Ok(true)
}
