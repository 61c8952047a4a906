//! Saving new work: a save lands in a small inbox row (one `synchronous=FULL` commit) and
//! joins the indexed queue in groups; the quota is checked on the way in (only telemetry is
//! ever evicted).

use super::*;

impl Queue {
    /// Writes a group of saves as one inbox row (one row however many: a grouped save
    /// costs little more than a single one).
    fn insert_inbox(
        &self,
        tx: &Transaction<'_>,
        group: &[Prepared],
        now: i64,
    ) -> Result<(), QueueError> {
        // One row per run of one owner's saves (a row has one owner).
        let mut start = 0;
        while start < group.len() {
            let owner = &group[start].owner;
            let end = group[start..]
                .iter()
                .position(|p| &p.owner != owner)
                .map_or(group.len(), |n| start + n);
            self.insert_inbox_row(tx, &group[start..end], now)?;
            start = end;
        }
        Ok(())
    }

    fn insert_inbox_row(
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
        let (origin, student) = match &first.owner {
            Some(o) => (Some(o.origin.as_str()), Some(o.student.as_str())),
            None => (None, None),
        };
        tx.prepare_cached(
            "INSERT INTO inbox (id, created_at, entries, origin, student)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut s| s.execute(params![first.id, now, data, origin, student]))
        .map_err(|e| self.err(e))?;
        Ok(())
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
        // Answers are sealed with their student's key (looked up before the database is
        // locked: finding or making a key reads it).
        let keys = self.keys();
        let mut sealers = Vec::with_capacity(entries.len());
        for entry in &entries {
            let sealer = match (&keys, &entry.owner) {
                (Some(keys), owner) if entry.kind.is_sealed() && entry.body.is_some() => {
                    let owner = owner.as_ref().ok_or_else(|| {
                        QueueError::Body("an answer must name its student".into())
                    })?;
                    Some(keys.sealer_to_seal(owner)?)
                }
                _ => None,
            };
            sealers.push(sealer);
        }
        let mut conn = self.inner.store.lock();
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut prepared = Vec::with_capacity(entries.len());
        for (entry, sealer) in entries.into_iter().zip(sealers) {
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
}

/// What an entry counts against the byte quota: its path and body, and a fixed share for
/// the rest of its row.
pub(super) fn entry_bytes(path: &str, body: Option<&[u8]>) -> u64 {
    (body.map_or(0, <[u8]>::len) + path.len() + 96) as u64
}

/// A save ready to be written: its sequence number given, its body encoded.
pub(super) struct Prepared {
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
    owner: Option<Owner>,
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

pub(super) fn prepare(
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
        (Some(plain), Some(sealer)) if entry.kind.is_sealed() => {
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
        owner: entry.owner,
    })
}

/// Moves every inbox row into the queue (same id), in order: a newer save of an answer
/// replaces its older never-sent saves; each stream's next number is kept.
pub(super) fn move_inbox(tx: &Transaction<'_>, totals: &mut Totals) -> rusqlite::Result<()> {
    while move_inbox_part(tx, totals, 4096)? > 0 {}
    Ok(())
}

/// Moves up to `limit` of the oldest inbox rows; how many.
pub(super) fn move_inbox_part(
    tx: &Transaction<'_>,
    totals: &mut Totals,
    limit: i64,
) -> rusqlite::Result<usize> {
    type Row = (
        i64,
        i64,
        Vec<inbox::InboxEntry>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, created_at, entries, origin, student FROM inbox ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                inbox::decode_column(r, 2)?,
                r.get(3)?,
                r.get(4)?,
            ))
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
    for (_, created_at, entries, origin, student) in rows {
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
                                    next_attempt_at, origin, student)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)",
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
                origin,
                student,
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
