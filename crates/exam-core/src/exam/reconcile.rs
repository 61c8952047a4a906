//! What the server did with an attempt's queued operations, read back from the queue: answers
//! saved on the server, the deadline confirmed, the receipt — and a digest mismatch resolved
//! by sending the answers the server lacks again. A watcher thread does it as sync goes on.

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::{params, OptionalExtension};

use super::{
    answer_ad, attempt_row, local_now_ms, rfc3339, stored_digest, AttemptRow, ExamError,
    ExamService, ATTEMPT_COLUMNS, MAX_RESEND_ROUNDS,
};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::attempt::RECEIPT_FOR_ANOTHER_ACCOUNT;
use crate::bus::CoreEvent;
use crate::lifecycle::Workers;
use crate::queue::{EntryState, NewEntry, Status};
use crate::seal::Sealer;

impl ExamService {
    /// Attempts of anyone on this computer that still wait for the server.
    fn unsettled(&self) -> Result<Vec<String>, ExamError> {
        let conn = self.inner.store.lock();
        let mut stmt = conn
            .prepare(
                "SELECT attempt_id FROM attempts WHERE status = 'in_progress'
                 OR (status = 'submitted' AND receipt_id IS NULL AND submit_error IS NULL)
                 OR deadline_confirmed = 0
                 OR EXISTS (SELECT 1 FROM answers a WHERE a.attempt_id = attempts.attempt_id
                              AND a.server_saved_at IS NULL AND a.entry_id IS NOT NULL)",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Reads what the server did with this attempt's queued operations; whether anything
    /// changed. Does not need the student to be signed in.
    pub fn reconcile(&self, attempt_id: &str) -> Result<bool, ExamError> {
        let attempt: Option<AttemptRow> = self
            .inner
            .store
            .lock()
            .query_row(
                &format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE attempt_id = ?1"),
                params![attempt_id],
                attempt_row,
            )
            .optional()
            .map_err(|e| self.err(e))?
            .map(|row| self.open_digests(row));
        let Some(attempt) = attempt else {
            return Ok(false);
        };
        // Its student's key, to seal the receipt's digest (read before the database is locked).
        let key = self.inner.keys.existing(&attempt.owner).ok().flatten();
        let answers = self.answers(attempt_id)?;
        let mut ids: Vec<i64> = answers
            .iter()
            .filter(|a| a.server_saved_at.is_none())
            .filter_map(|a| a.entry_id)
            .collect();
        if !attempt.deadline_confirmed && attempt.start_error.is_none() {
            ids.extend(attempt.start_entry);
        }
        if attempt.receipt_id.is_none() && attempt.submit_error.is_none() {
            ids.extend(attempt.submit_entry);
        }
        if ids.is_empty() {
            return Ok(false);
        }
        let states = self.inner.queue.entry_states(&ids)?;
        let offset = self.offset_ms();
        let mut changed = false;
        let conn = self.inner.store.lock();
        // Answers: delivered (or delivered and pruned since).
        for a in &answers {
            let Some(entry) = a.entry_id.filter(|_| a.server_saved_at.is_none()) else {
                continue;
            };
            let at = match states.get(&entry) {
                Some(EntryState {
                    status: Status::Done,
                    completed_at_ms,
                    ..
                }) => completed_at_ms.unwrap_or_else(local_now_ms) + offset,
                None => local_now_ms() + offset,
                Some(_) => continue,
            };
            conn.execute(
                "UPDATE answers SET server_saved_at = ?3
                 WHERE attempt_id = ?1 AND question_id = ?2 AND entry_id = ?4",
                params![attempt_id, a.question_id, rfc3339(at), entry],
            )
            .map_err(|e| self.err(e))?;
            changed = true;
        }
        // The attempt created on the server: its deadline is the server's.
        if let Some(state) = attempt.start_entry.and_then(|id| states.get(&id)) {
            match state.status {
                Status::Done => {
                    let reply = state.reply();
                    let deadline = reply["deadline_at"]
                        .as_str()
                        .unwrap_or(&attempt.deadline_at);
                    let started = reply["started_at"].as_str().unwrap_or(&attempt.started_at);
                    conn.execute(
                        "UPDATE attempts SET deadline_at = ?2, started_at = ?3, deadline_confirmed = 1
                         WHERE attempt_id = ?1",
                        params![attempt_id, deadline, started],
                    )
                    .map_err(|e| self.err(e))?;
                    changed = true;
                }
                Status::Dead => {
                    let why = state.error.clone().unwrap_or_else(|| "refused".into());
                    conn.execute(
                        "UPDATE attempts SET start_error = ?2 WHERE attempt_id = ?1",
                        params![attempt_id, why],
                    )
                    .map_err(|e| self.err(e))?;
                    changed = true;
                }
                _ => {}
            }
        }
        // The submission: a receipt, or answers to send again.
        let mut resend = None;
        if let Some((entry, state)) = attempt
            .submit_entry
            .and_then(|id| states.get(&id).map(|s| (id, s)))
        {
            match state.status {
                Status::Done
                    if state.reply()["student"].as_str() != Some(&attempt.owner.student) =>
                {
                    // A receipt filed under another account is no delivery: never shown as
                    // one, and an alarm for IT.
                    let reply = state.reply();
                    tracing::error!(
                        attempt = attempt_id,
                        filed_under = reply["student"].as_str().unwrap_or("(not said)"),
                        "the server filed this submission under another account"
                    );
                    conn.execute(
                        "UPDATE attempts SET submit_error = ?2 WHERE attempt_id = ?1",
                        params![attempt_id, RECEIPT_FOR_ANOTHER_ACCOUNT],
                    )
                    .map_err(|e| self.err(e))?;
                    changed = true;
                }
                Status::Done => {
                    let reply = state.reply();
                    let delivered =
                        rfc3339(state.completed_at_ms.unwrap_or_else(local_now_ms) + offset);
                    conn.execute(
                        "UPDATE attempts SET receipt_id = ?2, receipt_digest = ?3, receipt_late = ?4,
                                delivered_at = ?5, submit_error = NULL
                         WHERE attempt_id = ?1",
                        params![
                            attempt_id,
                            reply["receipt_id"].as_str().unwrap_or("(no receipt id)"),
                            reply["answers_digest"].as_str().map(|d| stored_digest(
                                key.as_deref(),
                                attempt_id,
                                "receipt",
                                d
                            )),
                            reply["late"].as_bool(),
                            delivered
                        ],
                    )
                    .map_err(|e| self.err(e))?;
                    // The receipt is kept (its digest sealed): the server's reply, with the
                    // digest in clear, is not.
                    conn.execute(
                        "UPDATE queue SET response_body = NULL WHERE id = ?1",
                        params![entry],
                    )
                    .map_err(|e| self.err(e))?;
                    tracing::info!(attempt = attempt_id, "submission delivered; receipt kept");
                    changed = true;
                }
                Status::Dead => {
                    let reply = state.reply();
                    if reply["code"] == "digest_mismatch" && attempt.resends < MAX_RESEND_ROUNDS {
                        resend = Some((entry, reply));
                    } else {
                        let why = match reply["code"].as_str() {
                            Some("digest_mismatch") => format!(
                                "the server's copy of the answers still differs after {MAX_RESEND_ROUNDS} \
                                 attempts to send them again; every answer is kept on this computer"
                            ),
                            _ => state.error.clone().unwrap_or_else(|| "refused".into()),
                        };
                        conn.execute(
                            "UPDATE attempts SET submit_error = ?2 WHERE attempt_id = ?1",
                            params![attempt_id, why],
                        )
                        .map_err(|e| self.err(e))?;
                    }
                    changed = true;
                }
                _ => {}
            }
        }
        drop(conn);
        if let Some((entry, reply)) = resend {
            self.resend(&attempt, entry, &reply)?;
        }
        Ok(changed)
    }

    /// The server's digest differs: sends again every answer whose latest save it does not
    /// hold (by `seq`), then the submission under a new key.
    fn resend(
        &self,
        attempt: &AttemptRow,
        dead_entry: i64,
        reply: &serde_json::Value,
    ) -> Result<(), ExamError> {
        let server: HashMap<String, i64> = reply["answers"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(q, s)| Some((q.clone(), s.as_i64()?)))
                    .collect()
            })
            .unwrap_or_default();
        let values = self.saved_values(attempt)?;
        let saved_at = rfc3339(self.server_now_ms());
        let missing: Vec<&(String, serde_json::Value, Option<i64>)> = values
            .iter()
            .filter(|(q, _, seq)| server.get(q) != seq.as_ref())
            .collect();
        let digest = exam_contract::answers_digest(values.iter().map(|(q, v, _)| (q.as_str(), v)));
        let mut entries: Vec<NewEntry> = missing
            .iter()
            .map(|(q, v, _)| {
                NewEntry::answer(&attempt.attempt_id, q, v.clone(), &saved_at)
                    .owned_by(&attempt.owner)
            })
            .collect();
        entries.push(
            NewEntry::submit(&attempt.attempt_id, values.len(), &digest).owned_by(&attempt.owner),
        );
        let key = self.inner.keys.existing(&attempt.owner)?.ok_or(
            crate::seal::SealError::KeyMissing {
                sealed: values.len() as u64,
            },
        )?;
        let attempt_id = attempt.attempt_id.clone();
        let count = missing.len();
        self.inner.queue.enqueue_many_with(entries, |tx, queued| {
            for ((q, v, _), e) in missing.iter().zip(queued) {
                let plain = serde_json::to_vec(v).unwrap_or_default();
                let sealed = key.seal(&answer_ad(&attempt.exam_id, &attempt_id, q), &plain);
                tx.execute(
                    "UPDATE answers SET value = ?3, seq = ?4, entry_id = ?5, saved_at = ?6,
                            server_saved_at = NULL
                     WHERE attempt_id = ?1 AND question_id = ?2",
                    params![attempt_id, q, sealed, e.seq, e.id, saved_at],
                )?;
            }
            tx.execute(
                "UPDATE attempts SET submit_entry = ?2, resends = resends + 1, answer_count = ?3,
                        local_digest = ?4
                 WHERE attempt_id = ?1",
                params![
                    attempt_id,
                    queued.last().map(|q| q.id),
                    values.len() as i64,
                    stored_digest(Some(&key), &attempt_id, "local", &digest)
                ],
            )
            .map(drop)
        })?;
        self.inner.queue.resolve_dead(
            dead_entry,
            "sent again: the server lacked some answers (digest mismatch)",
        )?;
        // Its reply carried the server's digest in clear; the mismatch is settled.
        self.inner
            .store
            .lock()
            .execute(
                "UPDATE queue SET response_body = NULL WHERE id = ?1",
                params![dead_entry],
            )
            .map_err(|e| self.err(e))?;
        tracing::warn!(
            attempt = %attempt_id,
            resent = count,
            "the server's answers digest differed; missing answers and the submission sent again"
        );
        Ok(())
    }

    /// Reconciles every attempt still waiting for the server; publishes `ExamChanged` for
    /// each that changed.
    pub fn reconcile_all(&self) -> Result<(), ExamError> {
        self.save_relearned_offset();
        for attempt_id in self.unsettled()? {
            if self.reconcile(&attempt_id)? {
                self.inner
                    .bus
                    .publish(CoreEvent::ExamChanged { attempt_id });
            }
        }
        Ok(())
    }

    /// Follows sync progress as one of `workers` and reconciles attempts as their
    /// operations are delivered (SQLite and the keychain off the async threads).
    pub fn spawn_watcher(&self, workers: &Workers) {
        let service = self.clone();
        let mut events = self.inner.bus.subscribe();
        workers.spawn("exam watcher", move |stop| async move {
            let mut dirty = true;
            loop {
                if dirty {
                    let service = service.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Err(error) = service.reconcile_all() {
                            tracing::warn!(%error, "could not read what the server did with queued work");
                        }
                    })
                    .await;
                    dirty = false;
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    event = events.recv() => match event {
                        Ok(CoreEvent::SyncProgress { .. }) | Err(RecvError::Lagged(_)) => {}
                        Ok(_) => continue,
                        Err(RecvError::Closed) => break,
                    },
                }
                // Progress comes in bursts while sync runs: read the outcome once per burst.
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                while !matches!(events.try_recv(), Err(TryRecvError::Empty | TryRecvError::Closed)) {}
                dirty = true;
            }
        });
    }
}
