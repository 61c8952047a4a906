//! Dead letters: entries the server refused with a reply retrying cannot fix. They are kept
//! with the reply, listed, exported for IT and retried by hand; none blocks the entries
//! behind it.

use super::*;

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

impl Queue {
    /// Dead letters of every student, newest first (tools and tests; screens and exports
    /// show one student's: [`Queue::dead_letters_for`]).
    pub fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, QueueError> {
        self.dead_letters_of(None, limit)
    }

    /// `owner`'s dead letters, newest first.
    pub fn dead_letters_for(
        &self,
        owner: &Owner,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        self.dead_letters_of(Some(owner), limit)
    }

    /// How many of `owner`'s entries the server refused.
    pub fn dead_count_for(&self, owner: &Owner) -> Result<u64, QueueError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT COUNT(*) FROM queue WHERE status = 'dead' AND origin = ?1 AND student = ?2",
            params![owner.origin, owner.student],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| self.err(e))
    }

    fn dead_letters_of(
        &self,
        owner: Option<&Owner>,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, method, path, kind, stream, seq, attempts, created_at, completed_at,
                        last_error, response_status, response_body, body, idempotency_key,
                        origin, student
                 FROM queue WHERE status = 'dead'
                   AND (?2 IS NULL OR (origin = ?2 AND student = ?3))
                 ORDER BY completed_at DESC, id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![
                    limit,
                    owner.map(|o| o.origin.as_str()),
                    owner.map(|o| o.student.as_str())
                ],
                |r| {
                    let key: String = r.get(13)?;
                    let whose = owner_at(r, 14)?;
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
                        response_body: self.reply_text(whose.as_ref(), &key, r.get(11)?),
                        body: r
                            .get::<_, Option<Vec<u8>>>(12)?
                            .map(|b| self.readable(whose.as_ref(), &key, &b)),
                    })
                },
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// A body as text for people (dead letters and their export): sealed ones opened with
    /// their student's key when it is at hand.
    fn readable(&self, owner: Option<&Owner>, key: &str, body: &[u8]) -> String {
        if !is_sealed(body) {
            return String::from_utf8_lossy(body).into_owned();
        }
        match self
            .sealer_for(owner)
            .ok()
            .flatten()
            .map(|s| s.open(key.as_bytes(), body))
        {
            Some(Ok(plain)) => String::from_utf8_lossy(&plain).into_owned(),
            Some(Err(error)) => format!("<encrypted: {error}>"),
            None => "<encrypted: this student's answer key is not at hand>".into(),
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

    /// `owner`'s dead letters as JSON, for IT (only the signed-in student's work is ever
    /// exported from their session).
    pub fn export_dead_for(&self, owner: &Owner) -> Result<String, QueueError> {
        let letters = self.dead_letters_for(owner, u32::MAX)?;
        serde_json::to_string_pretty(&letters).map_err(|e| QueueError::Body(e.to_string()))
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
}
