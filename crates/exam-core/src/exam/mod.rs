//! The exam itself, offline-first: the exam list and downloaded packages (kept up to date
//! with ETags, so an exam starts with no network), attempts begun on this computer (created
//! on the server later through the queue, with their idempotency key), answers saved
//! sealed next to their queued save in one transaction, the deadline from the server's
//! clock, submission with the answers digest, and the receipt.
//!
//! What the server did with each queued operation comes back through the queue (the reply
//! kept with each delivered or refused entry); [`ExamService::reconcile`] reads it: answers
//! "saved on the server", the deadline confirmed, the receipt — and a digest mismatch is
//! resolved by sending the answers the server lacks again, never by dropping any.

mod attempt;
mod catalog;
mod error;
pub mod ledger;

/// `owner`'s attempt in progress on this computer, if any: (attempt, exam). What the device
/// checks and the minute summaries name.
pub fn attempt_in_progress(conn: &rusqlite::Connection, owner: &Owner) -> Option<(String, String)> {
    conn.query_row(
        "SELECT attempt_id, exam_id FROM attempts
         WHERE origin = ?1 AND username = ?2 AND status = 'in_progress'
         ORDER BY rowid DESC LIMIT 1",
        params![owner.origin, owner.student],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}
mod opening;
mod package;
pub mod readiness;
mod reconcile;
mod refusals;
mod requests;
pub mod sealed;
mod views;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rusqlite::{params, OptionalExtension};

pub use error::{AnswerProblem, ExamError, Missing};
pub use package::{AnswerValue, BadPackage, ExamOption, Package, Question, QuestionKind};
pub use refusals::{Refusal, RefusedItem, RefusedWhat};
pub use views::*;

use crate::auth::TokenManager;
use crate::bus::EventBus;
pub(crate) use crate::clock::{now_ms as local_now_ms, parse_ms, rfc3339};
use crate::clock::{since_boot_ms, ServerClock};
use crate::keychain::SecretStore;
use crate::keys::AnswerKeys;
use crate::owner::Owner;
use crate::queue::{NewEntry, Queue, Status};
use crate::seal::{AnswerKey, Sealer};
use crate::store::Store;

/// Digest rounds after which a still-differing server is reported instead of tried again.
const MAX_RESEND_ROUNDS: i64 = 3;

/// Associated data of a saved answer: it opens only in its own place.
fn answer_ad(exam: &str, attempt: &str, question: &str) -> Vec<u8> {
    format!("answer\0{exam}\0{attempt}\0{question}").into_bytes()
}

/// An opened package in memory: (whose — none for one in clear —, exam, version).
type PackageId = (Option<Owner>, String, u32);

struct Inner {
    store: Arc<Store>,
    queue: Queue,
    auth: TokenManager,
    keys: AnswerKeys,
    bus: EventBus,
    /// Server clock minus this computer's, learned from `Date` headers.
    /// The server's clock: this computer's plus an offset learned from `Date` headers, kept
    /// right through a jump of this computer's clock; `true` when a re-learned offset is
    /// still to be saved.
    clock: Mutex<(ServerClock, bool)>,
    /// Packages opened (exam, version): in clear for everyone (no owner), or sealed ones
    /// opened by their student.
    packages: Mutex<HashMap<PackageId, Arc<Package>>>,
    /// The device checks: what stops an attempt from starting (set once by the core).
    security: std::sync::OnceLock<crate::security::SecurityMonitor>,
    /// Where an answer save's time goes (the history).
    recorder: std::sync::OnceLock<crate::analytics::Recorder>,
    /// Start codes are tried one at a time (the wait after wrong ones is per computer).
    code_tries: tokio::sync::Mutex<()>,
    /// Attempts opened since this process started (to tell a resumed one).
    opened: Mutex<HashSet<String>>,
}

/// The exams of the signed-in student. Cheap to clone.
#[derive(Clone)]
pub struct ExamService {
    inner: Arc<Inner>,
}

/// One row of `attempts`.
#[derive(Debug, Clone)]
struct AttemptRow {
    attempt_id: String,
    exam_id: String,
    exam_version: u32,
    started_at: String,
    deadline_at: String,
    deadline_confirmed: bool,
    start_entry: Option<i64>,
    start_error: Option<String>,
    status: String,
    current_question: Option<String>,
    submitted_at: Option<String>,
    submit_entry: Option<i64>,
    answer_count: Option<i64>,
    /// The digests, opened ([`ExamService::open_digests`]); kept sealed in the database.
    local_digest: Option<String>,
    receipt_id: Option<String>,
    receipt_digest: Option<String>,
    sealed_digests: [Option<Vec<u8>>; 2],
    receipt_late: Option<bool>,
    delivered_at: Option<String>,
    submit_error: Option<String>,
    resends: i64,
    /// Whose attempt it is (its queued work is sent with that student's credentials only).
    owner: Owner,
}

const ATTEMPT_COLUMNS: &str = "attempt_id, exam_id, exam_version, started_at, deadline_at,
    deadline_confirmed, start_entry, start_error, status, current_question, submitted_at,
    submit_entry, answer_count, local_digest, receipt_id, receipt_digest, receipt_late,
    delivered_at, submit_error, resends, origin, username";

fn attempt_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttemptRow> {
    Ok(AttemptRow {
        attempt_id: r.get(0)?,
        exam_id: r.get(1)?,
        exam_version: r.get(2)?,
        started_at: r.get(3)?,
        deadline_at: r.get(4)?,
        deadline_confirmed: r.get(5)?,
        start_entry: r.get(6)?,
        start_error: r.get(7)?,
        status: r.get(8)?,
        current_question: r.get(9)?,
        submitted_at: r.get(10)?,
        submit_entry: r.get(11)?,
        answer_count: r.get(12)?,
        local_digest: text(r.get(13)?),
        receipt_id: r.get(14)?,
        receipt_digest: text(r.get(15)?),
        sealed_digests: [blob(r.get(13)?), blob(r.get(15)?)],
        receipt_late: r.get(16)?,
        delivered_at: r.get(17)?,
        submit_error: r.get(18)?,
        resends: r.get(19)?,
        owner: Owner::new(
            r.get::<_, Option<String>>(20)?.unwrap_or_default(),
            r.get::<_, String>(21)?,
        ),
    })
}

fn text(value: rusqlite::types::Value) -> Option<String> {
    match value {
        rusqlite::types::Value::Text(text) => Some(text),
        _ => None,
    }
}

fn blob(value: rusqlite::types::Value) -> Option<Vec<u8>> {
    match value {
        rusqlite::types::Value::Blob(bytes) => Some(bytes),
        _ => None,
    }
}

/// Associated data of an attempt's digest (`which`: `local` or `receipt`).
fn digest_ad(attempt: &str, which: &str) -> Vec<u8> {
    format!("digest\0{attempt}\0{which}").into_bytes()
}

/// A digest as the database keeps it: sealed with the student's key when there is one (an
/// attempt without a single saved answer has none, and its digest gives nothing away).
fn stored_digest(
    key: Option<&AnswerKey>,
    attempt: &str,
    which: &str,
    digest: &str,
) -> rusqlite::types::Value {
    match key {
        Some(key) => {
            rusqlite::types::Value::Blob(key.seal(&digest_ad(attempt, which), digest.as_bytes()))
        }
        None => rusqlite::types::Value::Text(digest.to_string()),
    }
}

/// One row of `answers`, its value still sealed.
struct AnswerRow {
    question_id: String,
    value: Option<Vec<u8>>,
    seq: Option<i64>,
    entry_id: Option<i64>,
    saved_at: Option<String>,
    server_saved_at: Option<String>,
    flagged: bool,
}

impl ExamService {
    /// The service on the client database (the queue's store). Each student's answer key is
    /// read from `secrets` (the OS keychain) when first needed ([`crate::keys`]); the queue
    /// seals and opens with the same keys.
    pub fn new(
        queue: Queue,
        auth: TokenManager,
        secrets: Arc<dyn SecretStore>,
        bus: EventBus,
    ) -> Result<Self, ExamError> {
        let store = queue.store().clone();
        let offset: Option<i64> = store
            .lock()
            .query_row("SELECT offset_ms FROM server_clock WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| store.error(e))?;
        let keys = AnswerKeys::new(secrets, store.clone());
        queue.set_keys(Arc::new(keys.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                queue,
                auth,
                keys,
                bus,
                clock: Mutex::new((ServerClock::new(offset.unwrap_or(0)), false)),
                packages: Mutex::new(HashMap::new()),
                code_tries: tokio::sync::Mutex::new(()),
                security: std::sync::OnceLock::new(),
                recorder: std::sync::OnceLock::new(),
                opened: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// Opens the sealed digests of an attempt read from the database (with its student's
    /// key; without it they stay unknown).
    fn open_digests(&self, mut row: AttemptRow) -> AttemptRow {
        if row.sealed_digests.iter().all(Option::is_none) {
            return row;
        }
        let key = self.inner.keys.existing(&row.owner).ok().flatten();
        let open = |sealed: &Option<Vec<u8>>, which: &str| -> Option<String> {
            let plain = key
                .as_ref()?
                .open(&digest_ad(&row.attempt_id, which), sealed.as_deref()?)
                .ok()?;
            String::from_utf8(plain).ok()
        };
        let local = open(&row.sealed_digests[0], "local");
        let receipt = open(&row.sealed_digests[1], "receipt");
        row.local_digest = row.local_digest.take().or(local);
        row.receipt_digest = row.receipt_digest.take().or(receipt);
        row
    }

    /// Sets the device checks that may stop an attempt from starting.
    pub fn set_security(&self, security: crate::security::SecurityMonitor) {
        let _ = self.inner.security.set(security);
    }

    /// Answer saves are timed into the history.
    pub fn set_recorder(&self, recorder: crate::analytics::Recorder) {
        let _ = self.inner.recorder.set(recorder);
    }

    /// The students' answer keys.
    pub fn keys(&self) -> &AnswerKeys {
        &self.inner.keys
    }

    /// The server's time now, as best known (this computer's clock may be wrong).
    pub fn server_now_ms(&self) -> i64 {
        let mut clock = self.inner.clock.lock().unwrap_or_else(|p| p.into_inner());
        let before = clock.0.offset_ms();
        let (now, relearned) = clock.0.now(local_now_ms(), since_boot_ms());
        if relearned {
            tracing::warn!(
                offset_ms = clock.0.offset_ms(),
                "this computer's clock jumped; the server's time was re-learned"
            );
            clock.1 = true;
            // The device checks report it (information: exam times follow the server).
            if let Some(security) = self.inner.security.get() {
                // The offset moves opposite to this computer's clock.
                security.note_clock_jump((before - clock.0.offset_ms()) / 1000);
            }
        }
        now
    }

    /// The offset of the server's clock now (this computer's clock jumps accounted for).
    fn offset_ms(&self) -> i64 {
        self.server_now_ms();
        self.inner
            .clock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .offset_ms()
    }

    /// Saves an offset re-learned after a jump of this computer's clock, so the next start
    /// begins from it (called where the database is not locked).
    fn save_relearned_offset(&self) {
        let offset = {
            let mut clock = self.inner.clock.lock().unwrap_or_else(|p| p.into_inner());
            if !std::mem::take(&mut clock.1) {
                return;
            }
            clock.0.offset_ms()
        };
        let _ = self.inner.store.lock().execute(
            "INSERT INTO server_clock (id, offset_ms, seen_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET offset_ms = ?1, seen_at = ?2",
            params![offset, local_now_ms()],
        );
    }

    fn err(&self, e: rusqlite::Error) -> ExamError {
        ExamError::Store(self.inner.store.error(e))
    }

    /// The signed-in student, whose exams, attempts and lists are the only ones shown.
    fn owner(&self) -> Result<Owner, ExamError> {
        self.inner.auth.owner().ok_or(ExamError::NotSignedIn)
    }

    // ---- Attempts ----

    fn attempt(&self, attempt_id: &str) -> Result<AttemptRow, ExamError> {
        let owner = self.owner()?;
        self.inner
            .store
            .lock()
            .query_row(
                &format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM attempts
                     WHERE attempt_id = ?1 AND origin = ?2 AND username = ?3"
                ),
                params![attempt_id, owner.origin, owner.student],
                attempt_row,
            )
            .optional()
            .map_err(|e| self.err(e))?
            .map(|row| self.open_digests(row))
            .ok_or_else(|| {
                ExamError::NotFound(Missing::Attempt {
                    id: attempt_id.to_string(),
                })
            })
    }

    fn open_attempt_of(
        &self,
        owner: &Owner,
        exam_id: Option<&str>,
    ) -> Result<Option<String>, ExamError> {
        self.inner
            .store
            .lock()
            .query_row(
                "SELECT attempt_id FROM attempts
                 WHERE origin = ?1 AND username = ?2 AND (?3 IS NULL OR exam_id = ?3)
                   AND status IN ('in_progress', 'submitted')
                 ORDER BY rowid DESC LIMIT 1",
                params![owner.origin, owner.student, exam_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Starts an attempt — on this computer first, so it works offline: the attempt gets
    /// its id here and is created on the server through the queue (before any answer of
    /// it). An attempt already open for this exam is resumed instead. A sealed package is
    /// opened with the key from the server; with the server out of reach this is
    /// [`ExamError::StartCodeNeeded`] ([`Self::start_with_code`]).
    pub async fn start(&self, exam_id: &str) -> Result<AttemptView, ExamError> {
        self.start_opening(exam_id, None).await
    }

    /// Starts an attempt whose sealed package opens with the start code the proctor read
    /// out (a room without a network). A wrong code is [`ExamError::StartCodeRefused`];
    /// after a few, tries wait a little ([`ExamError::StartCodeWait`]).
    pub async fn start_with_code(
        &self,
        exam_id: &str,
        code: &str,
    ) -> Result<AttemptView, ExamError> {
        self.start_opening(exam_id, Some(code)).await
    }

    async fn start_opening(
        &self,
        exam_id: &str,
        code: Option<&str>,
    ) -> Result<AttemptView, ExamError> {
        let owner = self.owner()?;
        if let Some(open) = self.open_attempt_of(&owner, Some(exam_id))? {
            return self.view(&open);
        }
        // The start window, as the server checks it (`exam_contract::rules::may_start`), on
        // the server's clock; an exam the list kept here does not know is left to the server.
        let summary = self
            .kept_list(&owner)?
            .0
            .into_iter()
            .find(|e| e.id == exam_id);
        if let Some(block) = summary.as_ref().and_then(|s| self.start_block(s)) {
            return Err(ExamError::StartRefused(block));
        }
        // Programs the policy refuses, checked afresh: the start goes on once they are
        // closed. (An attempt in progress was resumed above: nothing stops that.)
        if let Some(security) = self.inner.security.get().cloned() {
            let refusals = tokio::task::spawn_blocking(move || security.start_refusals())
                .await
                .map_err(|e| ExamError::Unexpected(format!("checking the device: {e}")))?;
            if !refusals.is_empty() {
                tracing::warn!(
                    exam = exam_id,
                    findings = refusals.len(),
                    "start refused by the device checks"
                );
                return Err(ExamError::DeviceNotReady(refusals));
            }
        }
        // The timer starts now, when the questions are open — not at the download.
        let package = self.ready_package(&owner, exam_id, code).await?;
        self.inner.keys.for_sealing(&owner)?;
        let closes_ms = summary.and_then(|e| parse_ms(&e.closes_at));
        let attempt_id = uuid::Uuid::new_v4().to_string();
        let started_ms = self.server_now_ms();
        let mut deadline_ms = started_ms + i64::from(package.duration_s) * 1000;
        if let Some(closes) = closes_ms {
            deadline_ms = deadline_ms.min(closes);
        }
        let (started_at, deadline_at) = (rfc3339(started_ms), rfc3339(deadline_ms));
        let first = package.questions.first().map(|q| q.id.clone());
        self.inner.queue.enqueue_many_with(
            vec![NewEntry::start_attempt(exam_id, &attempt_id, &started_at).owned_by(&owner)],
            |tx, queued| {
                tx.execute(
                    "INSERT INTO attempts (attempt_id, exam_id, username, exam_version, started_at,
                                           deadline_at, start_entry, current_question, opened_count,
                                           origin)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9)",
                    params![
                        attempt_id,
                        exam_id,
                        owner.student,
                        package.version,
                        started_at,
                        deadline_at,
                        queued.first().map(|q| q.id),
                        first,
                        owner.origin
                    ],
                )
                .map(drop)
            },
        )?;
        self.inner
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(attempt_id.clone());
        tracing::info!(exam = exam_id, attempt = %attempt_id, "attempt started on this computer");
        self.view(&attempt_id)
    }

    /// Whether the signed-in student has an attempt in progress here (not submitted).
    pub fn has_exam_in_progress(&self) -> Result<bool, ExamError> {
        let Ok(owner) = self.owner() else {
            return Ok(false);
        };
        self.inner
            .store
            .lock()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM attempts
                 WHERE origin = ?1 AND username = ?2 AND status = 'in_progress')",
                params![owner.origin, owner.student],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The id of the attempt to come back to, if any (cheap: no view is built).
    pub fn current_id(&self) -> Result<Option<String>, ExamError> {
        let owner = self.owner()?;
        self.open_attempt_of(&owner, None)
    }

    /// The attempt to come back to (in progress, or submitted and kept until closed).
    pub fn current(&self) -> Result<Option<AttemptView>, ExamError> {
        let owner = self.owner()?;
        match self.open_attempt_of(&owner, None)? {
            Some(id) => self.view(&id).map(Some),
            None => Ok(None),
        }
    }

    fn answers(&self, attempt_id: &str) -> Result<Vec<AnswerRow>, ExamError> {
        let conn = self.inner.store.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT question_id, value, seq, entry_id, saved_at, server_saved_at, flagged
                 FROM answers WHERE attempt_id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![attempt_id], |r| {
                Ok(AnswerRow {
                    question_id: r.get(0)?,
                    value: r.get(1)?,
                    seq: r.get(2)?,
                    entry_id: r.get(3)?,
                    saved_at: r.get(4)?,
                    server_saved_at: r.get(5)?,
                    flagged: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    fn open_value(
        &self,
        key: &AnswerKey,
        attempt: &AttemptRow,
        question: &str,
        sealed: &[u8],
    ) -> Result<AnswerValue, ExamError> {
        let plain = key.open(
            &answer_ad(&attempt.exam_id, &attempt.attempt_id, question),
            sealed,
        )?;
        serde_json::from_slice(&plain).map_err(|e| ExamError::UnreadableAnswer {
            question: question.to_string(),
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn service(dir: &std::path::Path) -> ExamService {
        let bus = EventBus::default();
        let auth = TokenManager::new(
            crate::auth::AuthConfig::new("http://127.0.0.1:9/".parse().unwrap()),
            crate::http::HttpClient::new("tests").unwrap(),
            Arc::new(crate::testing::MemoryStore::default()),
            bus.clone(),
        );
        let queue = Queue::open(
            &dir.join("exam-desktop.db"),
            crate::queue::Limits::default(),
        )
        .unwrap();
        ExamService::new(
            queue,
            auth,
            Arc::new(crate::testing::MemoryStore::default()),
            bus,
        )
        .unwrap()
    }

    fn reply_dated(at: SystemTime) -> reqwest::Response {
        reqwest::Response::from(
            ::http::Response::builder()
                .header("date", httpdate::fmt_http_date(at))
                .body("")
                .unwrap(),
        )
    }

    #[test]
    fn time_is_the_servers_even_when_this_computers_clock_is_wrong_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let exams = service(dir.path());
        // The server is 90 minutes ahead of this computer's (wrong) clock.
        let server_now = SystemTime::now() + Duration::from_secs(90 * 60);
        exams.observe_date(&reply_dated(server_now));
        let ahead = exams.server_now_ms() - local_now_ms();
        assert!((ahead - 90 * 60 * 1000).abs() < 2000, "{ahead}");
        // Started again offline: the offset learned is kept.
        drop(exams);
        let again = service(dir.path());
        let ahead = again.server_now_ms() - local_now_ms();
        assert!((ahead - 90 * 60 * 1000).abs() < 2000, "{ahead}");
    }
}
