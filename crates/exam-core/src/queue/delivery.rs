//! Handing work out and taking back what the server did with it: claims in stream order
//! (barriers alone, answers of one stretch together), sealed bodies opened only to be sent,
//! and the outcome of each entry recorded in one transaction, with the backoff of a retry.

use super::*;

impl Queue {
    /// Hands out up to `max` entries that may be sent now, marking them in flight: by
    /// priority then age, and for each stream only a stretch starting at its first open
    /// entry (so a stream's entries are delivered in order, a stretch at a time).
    pub fn claim(&self, max: usize) -> Result<Vec<Claimed>, QueueError> {
        self.claim_up_to(max, u64::MAX)
    }

    /// Like [`Queue::claim`], stopping before the entries' bytes pass `max_bytes` (one
    /// entry is always handed out, however big), so a batch stays under the server's body
    /// limit.
    ///
    /// Whatever its owner: for tools and for tests of the queue's own rules. The sync
    /// engine claims one student's entries at a time ([`Queue::claim_for`]).
    pub fn claim_up_to(&self, max: usize, max_bytes: u64) -> Result<Vec<Claimed>, QueueError> {
        self.claim_scoped(None, max, max_bytes)
    }

    /// Like [`Queue::claim_up_to`], only `owner`'s entries: they are sent with that student's
    /// credentials, and nobody else's work travels with them.
    pub fn claim_for(
        &self,
        owner: &Owner,
        max: usize,
        max_bytes: u64,
    ) -> Result<Vec<Claimed>, QueueError> {
        self.claim_scoped(Some(owner), max, max_bytes)
    }

    fn claim_scoped(
        &self,
        owner: Option<&Owner>,
        max: usize,
        max_bytes: u64,
    ) -> Result<Vec<Claimed>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        let mut conn = self.conn()?;
        relaxed(&mut conn, |conn| {
            self.claim_in(conn, owner, max, max_bytes, now)
        })
    }

    fn claim_in(
        &self,
        conn: &mut rusqlite::Connection,
        owner: Option<&Owner>,
        max: usize,
        max_bytes: u64,
        now: i64,
    ) -> Result<Vec<Claimed>, QueueError> {
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut accepted: Vec<i64> = Vec::with_capacity(max);
        {
            let mut scan = tx
                .prepare_cached(match owner {
                    None => {
                        "SELECT id, stream, seq, next_attempt_at, kind, bytes,
                                COALESCE(scheduled_at, created_at) FROM queue
                         WHERE status = 'pending' AND ?1 IS NULL AND ?2 IS NULL
                         ORDER BY priority, created_at, id"
                    }
                    Some(_) => {
                        "SELECT id, stream, seq, next_attempt_at, kind, bytes,
                                COALESCE(scheduled_at, created_at) FROM queue
                         WHERE status = 'pending' AND origin = ?1 AND student = ?2
                         ORDER BY priority, created_at, id"
                    }
                })
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
            let mut rows = scan
                .query(params![
                    owner.map(|o| o.origin.as_str()),
                    owner.map(|o| o.student.as_str())
                ])
                .map_err(|e| self.err(e))?;
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
                let scheduled: i64 = row.get(6).map_err(|e| self.err(e))?;
                // Not due yet — unless it was scheduled on a clock since set back.
                if due > now && scheduled <= now {
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
                               kind, attempts, origin, student",
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
                            owner: owner_at(r, 10)?,
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
        let mut kept = Vec::with_capacity(claimed.len());
        for mut c in claimed.drain(..) {
            let Some(body) = c.body.as_deref().filter(|b| is_sealed(b)) else {
                kept.push(c);
                continue;
            };
            let opened = self
                .sealer_for(c.owner.as_ref())
                .ok()
                .flatten()
                .map(|s| s.open(c.idempotency_key.as_bytes(), body));
            match opened {
                Some(Ok(plain)) => {
                    c.body = Some(plain);
                    kept.push(c);
                }
                None => {
                    tx.execute(
                        "UPDATE queue SET status = 'pending', next_attempt_at = ?2,
                                scheduled_at = ?3,
                                last_error = 'waiting for the answer key from the OS keychain'
                         WHERE id = ?1",
                        params![c.id, now + 60_000, now],
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
                    let body = self.stored_reply(&tx, *id, body)?;
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
                                last_error = ?4, scheduled_at = ?5
                         WHERE id = ?1 AND status = 'in_flight'",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            id,
                            attempts,
                            now.saturating_add(ms(delay)),
                            error,
                            now
                        ])
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
                    let body = self.stored_reply(&tx, *id, body)?;
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

    /// When `owner`'s next waiting entry is due (ms since the epoch), if any.
    /// (Now, for one scheduled on a clock since set back.)
    pub fn next_due_ms_for(&self, owner: &Owner) -> Result<Option<i64>, QueueError> {
        let now = self.now_ms();
        let conn = self.conn()?;
        conn.query_row(
            "SELECT MIN(CASE WHEN COALESCE(scheduled_at, created_at) > ?3 THEN ?3
                             ELSE next_attempt_at END) FROM queue
             WHERE status = 'pending' AND origin = ?1 AND student = ?2",
            params![owner.origin, owner.student, now],
            |r| r.get(0),
        )
        .map_err(|e| self.err(e))
    }

    /// The students with work waiting to be sent (pending or in flight; telemetry is not
    /// work), with how many entries each; `None` stands for entries of an earlier version
    /// that belong to nobody known (never sent).
    pub fn waiting_by_owner(&self) -> Result<Vec<(Option<Owner>, u64)>, QueueError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT origin, student, COUNT(*) FROM queue
                 WHERE status IN ('pending', 'in_flight') AND kind <> 'telemetry'
                 GROUP BY origin, student ORDER BY origin, student",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let n: i64 = r.get(2)?;
                Ok((owner_at(r, 0)?, u64::try_from(n).unwrap_or(0)))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The students with entries waiting to be sent (pending), one index seek each: the
    /// cost follows the number of students, not of entries (a queue may hold a million).
    pub fn pending_owners(&self) -> Result<Vec<Owner>, QueueError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT origin, student FROM queue
                 WHERE status = 'pending' AND origin IS NOT NULL AND student IS NOT NULL
                   AND (origin, student) > (?1, ?2)
                 ORDER BY origin, student LIMIT 1",
            )
            .map_err(|e| self.err(e))?;
        let mut owners: Vec<Owner> = Vec::new();
        loop {
            let after = owners
                .last()
                .map(|o| (o.origin.clone(), o.student.clone()))
                .unwrap_or_default();
            let next: Option<(String, String)> = stmt
                .query_row(params![after.0, after.1], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(|e| self.err(e))?;
            match next {
                Some((origin, student)) => owners.push(Owner::new(origin, student)),
                None => return Ok(owners),
            }
        }
    }

    /// Gives rows kept by an earlier version, which know their student but not their
    /// server, the server the app is set up for now (migration `0004`). Returns how many
    /// rows took it.
    pub fn adopt_unowned(&self, origin: &str) -> Result<u64, QueueError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let mut n = 0usize;
        for sql in [
            "UPDATE queue SET origin = ?1 WHERE origin IS NULL AND student IS NOT NULL",
            "UPDATE attempts SET origin = ?1 WHERE origin IS NULL",
            "UPDATE exam_list SET origin = ?1 WHERE origin IS NULL",
        ] {
            n += tx.execute(sql, params![origin]).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        if n > 0 {
            tracing::info!(rows = n, origin, "work kept by an earlier version adopted");
        }
        Ok(n as u64)
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
}
