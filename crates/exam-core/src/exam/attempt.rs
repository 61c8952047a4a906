//! An attempt on this computer: what the exam screen shows, answers saved sealed with their
//! queued save in one transaction, flags and the current question, and the submission
//! with its digest.

use std::collections::HashMap;

use rusqlite::params;

use super::*;

impl ExamService {
    /// Everything the exam screen shows.
    pub fn view(&self, attempt_id: &str) -> Result<AttemptView, ExamError> {
        self.reconcile(attempt_id)?;
        let attempt = self.attempt(attempt_id)?;
        let package = self.package(&attempt.owner, &attempt.exam_id, Some(attempt.exam_version))?;
        // A key that cannot be read costs the answers it seals, one by one, never the view.
        let key = match self.inner.keys.existing(&attempt.owner) {
            Ok(key) => key,
            Err(error) => {
                tracing::error!(%error, "the answer key cannot be read");
                None
            }
        };
        let answers = self.answers(attempt_id)?;
        let mut unreadable_answers = 0u32;
        let mut by_question: HashMap<&str, &AnswerRow> = HashMap::new();
        for a in &answers {
            by_question.insert(a.question_id.as_str(), a);
        }
        let errors = self.answer_errors(&answers)?;
        let mut questions = Vec::with_capacity(package.questions.len());
        for q in &package.questions {
            let row = by_question.get(q.id.as_str());
            let (answer, unreadable) = match row.and_then(|r| r.value.as_deref()) {
                Some(sealed) => match key
                    .as_deref()
                    .map(|k| self.open_value(k, &attempt, &q.id, sealed))
                {
                    Some(Ok(value)) => (Some(value), false),
                    Some(Err(error)) => {
                        tracing::error!(question = %q.id, %error, "a saved answer cannot be opened");
                        (None, true)
                    }
                    None => (None, true),
                },
                None => (None, false),
            };
            if unreadable {
                unreadable_answers += 1;
            }
            questions.push(QuestionView {
                id: q.id.clone(),
                kind: q.kind,
                prompt: q.prompt.clone(),
                options: q.options.clone(),
                max_length: q.max_length,
                answered: unreadable || answer.as_ref().is_some_and(is_answer),
                answer,
                unreadable,
                flagged: row.is_some_and(|r| r.flagged),
                save: row.and_then(|r| answer_state(r, errors.get(&r.question_id))),
            });
        }
        let first_time_here = self
            .inner
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(attempt_id.to_string());
        let resumed_answers = if first_time_here {
            // Opened before by an earlier run of the app: the student is coming back.
            let before: i64 = {
                let conn = self.inner.store.lock();
                let before = conn
                    .query_row(
                        "SELECT opened_count FROM attempts WHERE attempt_id = ?1",
                        params![attempt_id],
                        |r| r.get(0),
                    )
                    .map_err(|e| self.err(e))?;
                conn.execute(
                    "UPDATE attempts SET opened_count = opened_count + 1 WHERE attempt_id = ?1",
                    params![attempt_id],
                )
                .map_err(|e| self.err(e))?;
                before
            };
            (before > 0).then(|| {
                u32::try_from(answers.iter().filter(|a| a.value.is_some()).count())
                    .unwrap_or(u32::MAX)
            })
        } else {
            None
        };
        let progress = self.progress_of(&attempt, &answers, &errors);
        Ok(AttemptView {
            attempt_id: attempt.attempt_id.clone(),
            exam_id: attempt.exam_id.clone(),
            title: package.title.clone(),
            instructions: package.instructions.clone(),
            status: if attempt.status == "in_progress" {
                AttemptStatus::InProgress
            } else {
                AttemptStatus::Submitted
            },
            started_at: attempt.started_at.clone(),
            questions,
            current_question: attempt.current_question.clone(),
            resumed_answers,
            progress,
            unreadable_answers,
            key_missing: unreadable_answers > 0 && key.is_none(),
        })
    }

    /// Why answers' latest saves were refused, by question.
    fn answer_errors(&self, answers: &[AnswerRow]) -> Result<HashMap<String, Refusal>, ExamError> {
        let pending: Vec<i64> = answers
            .iter()
            .filter(|a| a.server_saved_at.is_none())
            .filter_map(|a| a.entry_id)
            .collect();
        if pending.is_empty() {
            return Ok(HashMap::new());
        }
        let states = self.inner.queue.entry_states(&pending)?;
        Ok(answers
            .iter()
            .filter_map(|a| {
                let state = states.get(&a.entry_id?)?;
                (state.status == Status::Dead)
                    .then(|| (a.question_id.clone(), refusals::refusal_of(state)))
            })
            .collect())
    }

    /// The server's refusal of a queued entry, as kept with it.
    fn refusal_of(&self, entry: Option<i64>) -> Option<Refusal> {
        let id = entry?;
        let state = self.inner.queue.entry_states(&[id]).ok()?.remove(&id)?;
        Some(refusals::refusal_of(&state))
    }

    fn progress_of(
        &self,
        attempt: &AttemptRow,
        answers: &[AnswerRow],
        errors: &HashMap<String, Refusal>,
    ) -> AttemptProgress {
        let deadline_ms = parse_ms(&attempt.deadline_at).unwrap_or(0);
        AttemptProgress {
            answers: answers
                .iter()
                .filter_map(|a| answer_state(a, errors.get(&a.question_id)))
                .collect(),
            submission: submission_view(attempt).map(|mut s| {
                if s.state == SubmissionState::Refused && s.refusal.is_none() {
                    s.refusal = self.refusal_of(attempt.submit_entry);
                }
                s
            }),
            deadline_at: attempt.deadline_at.clone(),
            deadline_confirmed: attempt.deadline_confirmed,
            remaining_ms: (deadline_ms - self.server_now_ms()).max(0) as f64,
            start_error: attempt.start_error.clone(),
            start_refusal: attempt
                .start_error
                .as_ref()
                .and_then(|_| self.refusal_of(attempt.start_entry)),
        }
    }

    /// Save states, submission and time left (cheap; the screen polls it after sync events).
    pub fn progress(&self, attempt_id: &str) -> Result<AttemptProgress, ExamError> {
        self.reconcile(attempt_id)?;
        let attempt = self.attempt(attempt_id)?;
        let answers = self.answers(attempt_id)?;
        let errors = self.answer_errors(&answers)?;
        Ok(self.progress_of(&attempt, &answers, &errors))
    }

    /// Saves an answer on this computer (sealed) and queues it for the server, in one
    /// transaction committed with `synchronous=FULL`: when this returns, it is on disk.
    pub fn save_answer(
        &self,
        attempt_id: &str,
        question_id: &str,
        value: AnswerValue,
    ) -> Result<AnswerState, ExamError> {
        let started = std::time::Instant::now();
        let attempt = self.attempt(attempt_id)?;
        if attempt.status != "in_progress" {
            return Err(ExamError::AlreadySubmitted);
        }
        let package = self.package(&attempt.owner, &attempt.exam_id, Some(attempt.exam_version))?;
        let question = package.question(question_id).ok_or_else(|| {
            ExamError::NotFound(Missing::Question {
                id: question_id.to_string(),
            })
        })?;
        let value = question
            .accept(value)
            .map_err(|e| ExamError::AnswerRejected(e.into()))?;
        let answered = is_answer(&value);
        let key = self.inner.keys.for_sealing(&attempt.owner)?;
        let json = serde_json::to_value(&value)
            .map_err(|e| ExamError::Unexpected(format!("the answer cannot be encoded: {e}")))?;
        let plain = serde_json::to_vec(&json)
            .map_err(|e| ExamError::Unexpected(format!("the answer cannot be encoded: {e}")))?;
        let sealed = key.seal(
            &answer_ad(&attempt.exam_id, attempt_id, question_id),
            &plain,
        );
        let saved_at = rfc3339(self.server_now_ms());
        let mut seq = 0;
        self.inner.queue.enqueue_many_with(
            vec![
                NewEntry::answer(attempt_id, question_id, json, &saved_at).owned_by(&attempt.owner)
            ],
            |tx, queued| {
                let q = queued.first().ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                seq = q.seq;
                tx.prepare_cached(
                    "INSERT INTO answers (attempt_id, question_id, value, seq, entry_id, saved_at,
                                          server_saved_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)
                     ON CONFLICT (attempt_id, question_id) DO UPDATE SET value = ?3, seq = ?4,
                         entry_id = ?5, saved_at = ?6, server_saved_at = NULL",
                )?
                .execute(params![
                    attempt_id,
                    question_id,
                    sealed,
                    q.seq,
                    q.id,
                    saved_at
                ])
                .map(drop)
            },
        )?;
        if let Some(recorder) = self.inner.recorder.get() {
            recorder.record(
                crate::analytics::Metric::SaveMs,
                started.elapsed().as_secs_f64() * 1e3,
            );
        }
        Ok(AnswerState {
            question_id: question_id.to_string(),
            seq: seq as f64,
            saved_local_at: saved_at,
            saved_server_at: None,
            state: AnswerSaveState::Local,
            refusal: None,
            answered: Some(answered),
        })
    }

    /// Marks a question for review (or not).
    pub fn set_flag(
        &self,
        attempt_id: &str,
        question_id: &str,
        flagged: bool,
    ) -> Result<(), ExamError> {
        self.attempt(attempt_id)?;
        self.inner
            .store
            .lock()
            .execute(
                "INSERT INTO answers (attempt_id, question_id, flagged) VALUES (?1, ?2, ?3)
                 ON CONFLICT (attempt_id, question_id) DO UPDATE SET flagged = ?3",
                params![attempt_id, question_id, flagged],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Remembers the question on screen (a restart comes back to it).
    pub fn set_current(&self, attempt_id: &str, question_id: &str) -> Result<(), ExamError> {
        self.attempt(attempt_id)?;
        self.inner
            .store
            .lock()
            .execute(
                "UPDATE attempts SET current_question = ?2 WHERE attempt_id = ?1",
                params![attempt_id, question_id],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The saved answers, opened: `(question, value, seq)` of every answered question.
    pub(super) fn saved_values(
        &self,
        attempt: &AttemptRow,
    ) -> Result<Vec<(String, serde_json::Value, Option<i64>)>, ExamError> {
        let answers = self.answers(&attempt.attempt_id)?;
        let sealed = answers.iter().filter(|a| a.value.is_some()).count() as u64;
        if sealed == 0 {
            return Ok(Vec::new());
        }
        let key = self
            .inner
            .keys
            .existing(&attempt.owner)?
            .ok_or(crate::seal::SealError::KeyMissing { sealed })?;
        let mut out = Vec::new();
        for a in answers {
            if let Some(sealed) = a.value.as_deref() {
                let value = self.open_value(&key, attempt, &a.question_id, sealed)?;
                let json = serde_json::to_value(&value).unwrap_or(serde_json::Value::Null);
                out.push((a.question_id, json, a.seq));
            }
        }
        Ok(out)
    }

    /// Submits: queued behind every answer save (a barrier), with the digest of the
    /// answers as saved here. Offline it waits in the queue like everything else.
    pub fn submit(&self, attempt_id: &str) -> Result<SubmissionView, ExamError> {
        let attempt = self.attempt(attempt_id)?;
        if attempt.status != "in_progress" {
            return submission_view(&attempt).ok_or(ExamError::AttemptClosed);
        }
        let values = self.saved_values(&attempt)?;
        let digest = exam_contract::answers_digest(values.iter().map(|(q, v, _)| (q.as_str(), v)));
        // What counts as answered is the contract's, on both sides (a cleared answer is none).
        let answered = exam_contract::rules::answered_count(values.iter().map(|(_, v, _)| v));
        let submitted_at = rfc3339(self.server_now_ms());
        // The submission's body and the digest kept here are sealed like the answers.
        let key = self.inner.keys.for_sealing(&attempt.owner)?;
        let kept_digest = stored_digest(Some(&key), attempt_id, "local", &digest);
        self.inner.queue.enqueue_many_with(
            vec![NewEntry::submit(attempt_id, answered, &digest).owned_by(&attempt.owner)],
            |tx, queued| {
                tx.execute(
                    "UPDATE attempts SET status = 'submitted', submitted_at = ?2, answer_count = ?3,
                            local_digest = ?4, submit_entry = ?5
                     WHERE attempt_id = ?1",
                    params![
                        attempt_id,
                        submitted_at,
                        answered as i64,
                        kept_digest,
                        queued.first().map(|q| q.id)
                    ],
                )
                .map(drop)
            },
        )?;
        tracing::info!(
            attempt = attempt_id,
            answers = values.len(),
            "attempt submitted on this computer"
        );
        submission_view(&self.attempt(attempt_id)?)
            .ok_or_else(|| ExamError::Unexpected("the submission was not recorded".into()))
    }

    /// Back to the exam list once the submission was delivered (the attempt stays on record).
    pub fn close(&self, attempt_id: &str) -> Result<(), ExamError> {
        let attempt = self.attempt(attempt_id)?;
        if attempt.receipt_id.is_none() {
            return Err(ExamError::NotYetDelivered);
        }
        self.inner
            .store
            .lock()
            .execute(
                "UPDATE attempts SET status = 'closed' WHERE attempt_id = ?1",
                params![attempt_id],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }
}

fn answer_state(row: &AnswerRow, refusal: Option<&Refusal>) -> Option<AnswerState> {
    let saved_at = row.saved_at.clone()?;
    Some(AnswerState {
        question_id: row.question_id.clone(),
        seq: row.seq.unwrap_or(0) as f64,
        saved_local_at: saved_at,
        saved_server_at: row.server_saved_at.clone(),
        state: match (&row.server_saved_at, refusal) {
            (Some(_), _) => AnswerSaveState::Server,
            (None, Some(_)) => AnswerSaveState::Refused,
            (None, None) => AnswerSaveState::Local,
        },
        refusal: refusal.filter(|_| row.server_saved_at.is_none()).cloned(),
        answered: None,
    })
}

fn submission_view(a: &AttemptRow) -> Option<SubmissionView> {
    let submitted_at = a.submitted_at.clone()?;
    Some(SubmissionView {
        state: if a.receipt_id.is_some() {
            SubmissionState::Delivered
        } else if a.submit_error.is_some() {
            SubmissionState::Refused
        } else if a.resends > 0 {
            SubmissionState::Resending
        } else {
            SubmissionState::Queued
        },
        submitted_at,
        answer_count: u32::try_from(a.answer_count.unwrap_or(0)).unwrap_or(0),
        local_digest: a.local_digest.clone().unwrap_or_default(),
        receipt_id: a.receipt_id.clone(),
        receipt_digest: a.receipt_digest.clone(),
        delivered_at: a.delivered_at.clone(),
        late: a.receipt_late,
        error: a.submit_error.clone(),
        refusal: (a.submit_error.as_deref() == Some(RECEIPT_FOR_ANOTHER_ACCOUNT)).then(|| {
            Refusal::local(
                RECEIPT_FOR_ANOTHER_ACCOUNT,
                "the server filed the submission under another account",
            )
        }),
    })
}

/// Why a submission is not delivered although the server answered: its receipt names
/// another account (the contract's `student`).
pub(super) const RECEIPT_FOR_ANOTHER_ACCOUNT: &str = "receipt_for_another_account";

/// Whether a value is an answer: the contract's rule, the one the server counts with.
fn is_answer(value: &AnswerValue) -> bool {
    !exam_contract::rules::is_blank(&value.to_json())
}
