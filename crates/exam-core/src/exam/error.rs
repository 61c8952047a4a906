//! What can go wrong in the exam service, as data: each case one variant, so the screens
//! word it in the student's language (the `Display` words are for the log).

use serde::Serialize;

use super::package::BadPackage;
use super::views::StartBlock;
use crate::auth::AuthError;
use crate::queue::QueueError;
use crate::reason::{Reason, Refusal};
use crate::seal::SealError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ExamError {
    #[error("not signed in")]
    NotSignedIn,
    #[error("the Exam Bank server cannot be reached ({0})")]
    Offline(Reason),
    #[error("the server refused: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    BadPackage(#[from] BadPackage),
    #[error(
        "exam `{0}` has not been downloaded to this computer, and the server cannot be reached \
         to download it now"
    )]
    NotDownloaded(String),
    #[error("{0} was not found on this computer")]
    NotFound(Missing),
    /// The attempt was submitted: its answers can no longer change.
    #[error("this attempt has been submitted; its answers can no longer change")]
    AlreadySubmitted,
    /// The attempt was closed without a submission of this computer's.
    #[error("this attempt was closed")]
    AttemptClosed,
    /// The submission has not reached the server yet, so the attempt stays open.
    #[error("the submission has not reached the server yet; it stays open until it has")]
    NotYetDelivered,
    /// The answer breaks the exam's rules (the same rules the server applies).
    #[error("{0}")]
    AnswerRejected(AnswerProblem),
    /// An answer saved on this computer cannot be read back.
    #[error("the saved answer to question `{question}` cannot be read: {detail}")]
    UnreadableAnswer { question: String, detail: String },
    #[error(transparent)]
    Key(#[from] SealError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the session: {0}")]
    Auth(AuthError),
    /// The exam's package is sealed and the key cannot be fetched from the server now: the
    /// start code the proctor reads out opens it.
    #[error("exam `{exam_id}` is sealed and the server cannot be reached for its key: the start code is needed")]
    StartCodeNeeded { exam_id: String, title: String },
    /// The start code does not open the exam's package (a wrong code, another exam's, or a
    /// copy here that was altered); the next try waits `retry_in_ms`.
    #[error("the start code does not open exam `{exam_id}`")]
    StartCodeRefused {
        exam_id: String,
        title: String,
        retry_in_ms: u64,
    },
    /// Wrong start codes were typed on this computer: the next try waits `retry_in_ms`.
    #[error("wrong start codes were typed: the next try on this computer waits {retry_in_ms} ms")]
    StartCodeWait { exam_id: String, retry_in_ms: u64 },
    /// The exam's package does not open with the key from the server, even downloaded
    /// again (the copy here or on the way was altered); it is kept as it is.
    #[error("the package of exam `{exam_id}` does not open with the key from the server")]
    PackageDoesNotOpen { exam_id: String, title: String },
    /// Programs the school's policy does not allow at the start of an exam are running
    /// (each finding names one and says why); the start goes on once they are closed.
    #[error("programs not allowed at the start of an exam are running: {}", .0.iter().map(|f| f.evidence.as_str()).collect::<Vec<_>>().join("; "))]
    DeviceNotReady(Vec<crate::security::Finding>),
    /// The exam may not start now (not open yet, closed, already submitted).
    #[error("{0:?}")]
    StartRefused(StartBlock),
    /// Something that cannot happen unless this program is wrong (an answer that cannot be
    /// encoded, a record that vanished); the words are for the log.
    #[error("unexpected: {0}")]
    Unexpected(String),
}

/// What was looked for and not found on this computer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Missing {
    Exam { id: String },
    Attempt { id: String },
    Question { id: String },
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exam { id } => write!(f, "exam `{id}`"),
            Self::Attempt { id } => write!(f, "attempt `{id}`"),
            Self::Question { id } => write!(f, "question `{id}` of this exam"),
        }
    }
}

/// Why an answer breaks the exam's rules ([`exam_contract::rules::AnswerError`], as data the
/// screens word).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum AnswerProblem {
    NotAnOption {
        option: String,
    },
    ChosenTwice {
        option: String,
    },
    TooLong {
        chars: u32,
        max: u32,
    },
    /// Not of the question's shape (text, or a list of option ids).
    WrongShape,
}

impl From<exam_contract::rules::AnswerError> for AnswerProblem {
    fn from(error: exam_contract::rules::AnswerError) -> Self {
        use exam_contract::rules::AnswerError as A;
        match error {
            A::NotAnOption { option, .. } => Self::NotAnOption { option },
            A::ChosenTwice { option, .. } => Self::ChosenTwice { option },
            A::TooLong { chars, max, .. } => Self::TooLong {
                chars: u32::try_from(chars).unwrap_or(u32::MAX),
                max,
            },
            A::WrongShape { .. } => Self::WrongShape,
        }
    }
}

impl std::fmt::Display for AnswerProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAnOption { option } => write!(f, "`{option}` is not an option"),
            Self::ChosenTwice { option } => write!(f, "option `{option}` is chosen twice"),
            Self::TooLong { chars, max } => {
                write!(
                    f,
                    "the answer has {chars} characters; at most {max} are allowed"
                )
            }
            Self::WrongShape => f.write_str("the answer is not of this question's kind"),
        }
    }
}

impl From<AuthError> for ExamError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::NotSignedIn => Self::NotSignedIn,
            AuthError::Offline(message) => Self::Offline(message),
            other => Self::Auth(other),
        }
    }
}
