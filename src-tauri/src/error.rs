//! The one error type of IPC, tagged by kind. Every variant is data the UI words in the
//! student's language (`ui/src/lib/errors.ts`); none carries English words for the screen.
//! Details that only IT can use (a keychain's message, a path inside a database error) go
//! to the log when the error is made, never to a window.

use std::fmt::Display;

use exam_core::app::CoreError;
use exam_core::auth::AuthError;
use exam_core::exam::{AnswerProblem, ExamError, Missing, StartBlock};
use exam_core::queue::QueueError;
use exam_core::reason::{Reason, Refusal};
use exam_core::store::StoreError;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, specta::Type, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IpcError {
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("locked out for {retry_after_s} seconds")]
    LockedOut { retry_after_s: u32 },
    /// The server cannot be reached now; `reason` says why.
    #[error("offline: {reason}")]
    Offline { reason: Reason },
    #[error("not signed in")]
    NotSignedIn,
    #[error("session ended: {reason}")]
    SessionEnded { reason: Reason },
    /// The server refused; the UI words its code (`refusal.code`).
    #[error("refused: {refusal}")]
    Refused { refusal: Refusal },
    /// The computer's keychain could not be used (its message is in the log).
    #[error("the keychain could not be used")]
    Keychain,
    /// The settings on this computer have a problem; the main window lists them.
    #[error("the settings on this computer have a problem")]
    Settings,
    #[error("not found: {missing}")]
    NotFound { missing: Missing },
    /// The exam is not on this computer and the server cannot be reached to download it.
    #[error("exam {exam_id} is not downloaded")]
    NotDownloaded { exam_id: String },
    /// The disk or the queue's quota is full: the answer was not saved.
    #[error("storage full")]
    StorageFull,
    /// This computer's storage failed otherwise (the detail is in the log).
    #[error("storage failed")]
    StorageFailed,
    /// The attempt was submitted; answers can no longer change.
    #[error("already submitted")]
    AlreadySubmitted,
    #[error("attempt closed")]
    AttemptClosed,
    /// The submission has not reached the server yet.
    #[error("the submission is not delivered yet")]
    NotYetDelivered,
    /// The answer breaks the exam's rules (the same rules the server applies).
    #[error("answer rejected: {problem}")]
    AnswerRejected { problem: AnswerProblem },
    /// An answer saved on this computer cannot be read back (the detail is in the log).
    #[error("the saved answer to {question} cannot be read")]
    UnreadableAnswer { question: String },
    /// The exam's package from the server cannot be used: `detail` says what and where (for
    /// IT, English; also in the log).
    #[error("the package of exam {exam_id} cannot be used: {detail}")]
    BadPackage { exam_id: String, detail: String },
    /// The key that protects answers on this computer cannot be used.
    #[error("the answer key cannot be used")]
    AnswerKey,
    /// The student's answer key is missing from the OS keychain while `sealed` saved values
    /// of theirs are here: they are kept untouched and no new key is made (IT restores the
    /// profile or keychain; the answers read again once it is back).
    #[error("the answer key is missing while {sealed} sealed values are here")]
    AnswerKeyMissing { sealed: u32 },
    /// The exam's package is sealed and its key cannot be fetched now (no network): the
    /// start code the proctor reads out opens it.
    #[error("exam {exam_id} needs its start code")]
    StartCodeNeeded { exam_id: String, title: String },
    /// The start code typed does not open the exam (wrong, another exam's, or the copy here
    /// was altered); the next try may be made in `retry_in_ms`.
    #[error("the start code does not open exam {exam_id}")]
    StartCodeRefused {
        exam_id: String,
        title: String,
        retry_in_ms: u32,
    },
    /// Wrong start codes were typed on this computer: the next try waits `retry_in_ms`.
    #[error("wait {retry_in_ms} ms before the next start code")]
    StartCodeWait { exam_id: String, retry_in_ms: u32 },
    /// The exam's package does not open with the key from the server, even downloaded again.
    #[error("the package of exam {exam_id} does not open with the server's key")]
    PackageDoesNotOpen { exam_id: String, title: String },
    /// Programs the policy does not allow at the start are running: each finding names one;
    /// the start goes on once they are closed.
    #[error("programs not allowed at the start are running")]
    DeviceNotReady {
        findings: Vec<exam_core::security::Finding>,
    },
    /// The exam may not start now; the UI words `block`.
    #[error("the exam may not start now: {block:?}")]
    StartRefused { block: StartBlock },
    /// The offline queue, sync and exams could not start (the main window shows why).
    #[error("the offline queue is not available")]
    Unavailable,
    /// A file could not be written (an export).
    #[error("cannot write {path}")]
    CannotWrite { path: String },
    /// Something this program did not expect (the detail is in the log).
    #[error("internal error")]
    Internal,
}

impl IpcError {
    /// [`IpcError::Internal`], with what happened written to the log.
    pub fn internal(what: impl Display) -> Self {
        tracing::error!(error = %what, "internal error");
        Self::Internal
    }

    /// A variant without the detail, with the detail written to the log.
    fn logged(self, detail: impl Display) -> Self {
        tracing::warn!(error = %detail, kind = ?self, "a command failed");
        self
    }
}

impl From<ExamError> for IpcError {
    fn from(error: ExamError) -> Self {
        use ExamError as E;
        match error {
            E::NotSignedIn => Self::NotSignedIn,
            E::Offline(reason) => Self::Offline { reason },
            E::Auth(auth) => auth.into(),
            E::NotFound(missing) => Self::NotFound { missing },
            E::NotDownloaded(exam_id) => Self::NotDownloaded { exam_id },
            E::AlreadySubmitted => Self::AlreadySubmitted,
            E::AttemptClosed => Self::AttemptClosed,
            E::NotYetDelivered => Self::NotYetDelivered,
            E::AnswerRejected(problem) => Self::AnswerRejected { problem },
            E::Refused(refusal) => Self::Refused { refusal },
            E::StartRefused(block) => Self::StartRefused { block },
            E::DeviceNotReady(findings) => Self::DeviceNotReady { findings },
            E::UnreadableAnswer {
                ref question,
                ref detail,
            } => Self::UnreadableAnswer {
                question: question.clone(),
            }
            .logged(detail),
            E::BadPackage(ref bad) => Self::BadPackage {
                exam_id: bad.exam.clone(),
                detail: bad.reason.clone(),
            }
            .logged(&error),
            E::StartCodeNeeded { exam_id, title } => Self::StartCodeNeeded { exam_id, title },
            E::StartCodeRefused {
                exam_id,
                title,
                retry_in_ms,
            } => Self::StartCodeRefused {
                exam_id,
                title,
                retry_in_ms: u32::try_from(retry_in_ms).unwrap_or(u32::MAX),
            },
            E::StartCodeWait {
                exam_id,
                retry_in_ms,
            } => Self::StartCodeWait {
                exam_id,
                retry_in_ms: u32::try_from(retry_in_ms).unwrap_or(u32::MAX),
            },
            E::PackageDoesNotOpen {
                ref exam_id,
                ref title,
            } => Self::PackageDoesNotOpen {
                exam_id: exam_id.clone(),
                title: title.clone(),
            }
            .logged(&error),
            E::Key(exam_core::seal::SealError::KeyMissing { sealed }) => Self::AnswerKeyMissing {
                sealed: u32::try_from(sealed).unwrap_or(u32::MAX),
            },
            E::Key(ref e) => Self::AnswerKey.logged(e),
            E::Queue(queue) => queue.into(),
            E::Store(store) => store.into(),
            E::Unexpected(what) => Self::internal(what),
        }
    }
}

impl From<QueueError> for IpcError {
    fn from(error: QueueError) -> Self {
        match error {
            QueueError::Full { .. } => Self::StorageFull.logged(&error),
            QueueError::Store(store) => store.into(),
            QueueError::Seal(exam_core::seal::SealError::KeyMissing { sealed }) => {
                Self::AnswerKeyMissing {
                    sealed: u32::try_from(sealed).unwrap_or(u32::MAX),
                }
            }
            QueueError::Seal(ref e) => Self::AnswerKey.logged(e),
            other => Self::StorageFailed.logged(other),
        }
    }
}

impl From<StoreError> for IpcError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::DiskFull { .. } => Self::StorageFull.logged(&error),
            other => Self::StorageFailed.logged(other),
        }
    }
}

impl From<CoreError> for IpcError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::Auth(auth) => auth.into(),
            CoreError::Exam(exam) => exam.into(),
            CoreError::Queue(queue) => queue.into(),
            CoreError::Settings => Self::Settings,
            CoreError::Unavailable(ref why) => Self::Unavailable.logged(why),
            CoreError::History(ref error) => Self::Unavailable.logged(error.to_string()),
            CoreError::Write { ref path, .. } => Self::CannotWrite {
                path: path.display().to_string(),
            }
            .logged(&error),
        }
    }
}

impl From<AuthError> for IpcError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::WrongCredentials => Self::WrongCredentials,
            AuthError::LockedOut { retry_after_s } => Self::LockedOut {
                retry_after_s: u32::try_from(retry_after_s).unwrap_or(u32::MAX),
            },
            AuthError::Offline(reason) => Self::Offline { reason },
            AuthError::NotSignedIn => Self::NotSignedIn,
            AuthError::SessionEnded(reason) => Self::SessionEnded { reason },
            AuthError::Refused(refusal) => Self::Refused { refusal },
            AuthError::Keychain(message) => Self::Keychain.logged(message),
        }
    }
}

impl From<tauri::Error> for IpcError {
    fn from(error: tauri::Error) -> Self {
        Self::internal(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_variant_carries_words_for_the_screen() {
        // The details that are only words go to the log; what reaches a window is data.
        let keychain: IpcError =
            AuthError::Keychain("org.freedesktop.Secret: locked".into()).into();
        assert_eq!(
            serde_json::to_value(&keychain).unwrap(),
            serde_json::json!({"kind": "keychain"})
        );
        let offline: IpcError = AuthError::Offline(Reason::TimedOut).into();
        assert_eq!(
            serde_json::to_value(&offline).unwrap(),
            serde_json::json!({"kind": "offline", "reason": {"code": "timed_out"}})
        );
        let rejected: IpcError =
            ExamError::AnswerRejected(AnswerProblem::TooLong { chars: 12, max: 10 }).into();
        assert_eq!(
            serde_json::to_value(&rejected).unwrap(),
            serde_json::json!({"kind": "answer_rejected",
                               "problem": {"problem": "too_long", "chars": 12, "max": 10}})
        );
        let internal: IpcError = ExamError::Unexpected("encoding".into()).into();
        assert_eq!(internal, IpcError::Internal);
    }
}
