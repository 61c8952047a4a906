//! What the exam screens are given (over IPC, so they derive `specta::Type`).

use serde::{Deserialize, Serialize};

use super::package::{AnswerValue, ExamOption, QuestionKind};
use super::refusals::Refusal;
use crate::reason::Reason;

/// An exam as the server lists it (`GET /v1/exams`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExamInfo {
    pub id: String,
    pub title: String,
    pub version: u32,
    pub opens_at: String,
    pub closes_at: String,
    pub duration_s: u32,
    pub question_count: u32,
    /// When its package may be downloaded (a sealed exam: days ahead of `opens_at`).
    #[serde(default)]
    pub available_from: Option<String>,
    /// Its package is sealed: its questions open with the exam key once the exam opens.
    #[serde(default)]
    pub sealed: bool,
    /// The oldest app version that may take it (none: any).
    #[serde(default)]
    pub min_client_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ExamList {
    pub exams: Vec<ExamSummary>,
    pub fetched_at: Option<String>,
    /// Set when the list could not be fetched and the one kept on this computer is shown.
    pub offline_reason: Option<Reason>,
    /// In how many ms an exam of the list next opens or closes: the list should be read
    /// again then, since what may start changes.
    pub changes_in_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ExamSummary {
    pub id: String,
    pub title: String,
    pub version: u32,
    pub opens_at: String,
    pub closes_at: String,
    pub duration_s: u32,
    pub question_count: u32,
    /// The version downloaded to this computer, if any (ready to take offline).
    pub downloaded_version: Option<u32>,
    pub update_available: bool,
    pub active_attempt_id: Option<String>,
    pub submitted: bool,
    /// Why a new attempt may not start now, by the shared rule on the server's clock (none:
    /// it may; an attempt on this computer can always be reopened).
    pub start_block: Option<StartBlock>,
    /// Its package is sealed: the questions are unreadable until the exam opens.
    pub sealed: bool,
    /// The package cannot be downloaded before this time (the server's `available_from`,
    /// while it lies ahead on the server's clock).
    pub download_from: Option<String>,
    /// In how many ms the exam opens, on the server's clock (while it lies ahead): the
    /// list counts down from it.
    pub opens_in_ms: Option<f64>,
    /// What the start needs on this computer: nothing more (`Nothing`), or — for a sealed
    /// exam not opened here yet — the key from the server, or the start code the proctor
    /// reads out when the server cannot be reached.
    pub opening: Opening,
    /// The oldest app version that may take it (none: any).
    pub min_client_version: Option<String>,
    /// Set when this app is older than that, by the contract's rule
    /// ([`exam_contract::readiness::version_allowed`]): the list says so before the exam.
    pub version_needed: Option<VersionNeeded>,
}

/// An exam needs a newer app than this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct VersionNeeded {
    /// The exam's `min_client_version`.
    pub needed: String,
    /// This app's version.
    pub have: String,
}

impl VersionNeeded {
    /// What an exam needing `min` asks of this app (none: it may take it, or `min` cannot
    /// be read — the readiness card says so).
    pub fn of(min: Option<&str>) -> Option<Self> {
        use exam_contract::readiness::{version_allowed, VersionCheck};
        match version_allowed(crate::VERSION, min) {
            VersionCheck::TooOld => Some(Self {
                needed: min.unwrap_or_default().trim().to_string(),
                have: crate::VERSION.to_string(),
            }),
            VersionCheck::Allowed | VersionCheck::Unknown => None,
        }
    }
}

/// What opening an exam's questions needs on this computer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Opening {
    /// Nothing: not sealed, or already opened by this student here.
    Nothing,
    /// The exam key, fetched from the server at the start (a few seconds of network), or
    /// the proctor's start code when the server cannot be reached.
    KeyOrStartCode,
}

/// Why an exam may not start now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum StartBlock {
    AlreadySubmitted,
    NotYetOpen { opens_at: String },
    Closed { closes_at: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum AnswerSaveState {
    /// Saved on this computer, waiting to be sent.
    Local,
    /// The server confirmed its latest save.
    Server,
    /// The server refused its latest save (kept here; see the dead letters).
    Refused,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AnswerState {
    pub question_id: String,
    pub seq: f64,
    pub saved_local_at: String,
    pub saved_server_at: Option<String>,
    pub state: AnswerSaveState,
    /// Why the server refused the latest save (state `refused`).
    pub refusal: Option<Refusal>,
    /// Whether the saved value is an answer (`exam_contract::rules::is_blank`: a cleared text
    /// or no option chosen is not), where the value is at hand: a save's result, the view.
    pub answered: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct QuestionView {
    pub id: String,
    pub kind: QuestionKind,
    pub prompt: String,
    pub options: Vec<ExamOption>,
    pub max_length: Option<u32>,
    pub answer: Option<AnswerValue>,
    /// Whether `answer` is an answer, by the rule the server counts with.
    pub answered: bool,
    pub flagged: bool,
    pub save: Option<AnswerState>,
    /// An answer is saved here but cannot be opened (its key is missing, or the saved value
    /// is damaged): it is kept untouched, and `answer` is empty.
    pub unreadable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum AttemptStatus {
    InProgress,
    Submitted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum SubmissionState {
    /// Submitted on this computer; delivered automatically when the server can be reached.
    Queued,
    /// The server lacked some answers; they and the submission are being sent again.
    Resending,
    Delivered,
    Refused,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SubmissionView {
    pub state: SubmissionState,
    pub submitted_at: String,
    pub answer_count: u32,
    pub local_digest: String,
    pub receipt_id: Option<String>,
    pub receipt_digest: Option<String>,
    pub delivered_at: Option<String>,
    pub late: Option<bool>,
    /// What went wrong, for IT (English).
    pub error: Option<String>,
    /// Why the server refused it (state `refused`), for the screen to word.
    pub refusal: Option<Refusal>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AttemptProgress {
    pub answers: Vec<AnswerState>,
    pub submission: Option<SubmissionView>,
    pub deadline_at: String,
    pub deadline_confirmed: bool,
    pub remaining_ms: f64,
    /// Why the server refused to create this attempt, if it did (answers stay here): for IT
    /// (English), and as the server's code for the screen.
    pub start_error: Option<String>,
    pub start_refusal: Option<Refusal>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AttemptView {
    pub attempt_id: String,
    pub exam_id: String,
    pub title: String,
    pub instructions: String,
    pub status: AttemptStatus,
    pub started_at: String,
    pub questions: Vec<QuestionView>,
    pub current_question: Option<String>,
    /// Set when the app was started again during this attempt: how many saved answers
    /// came back.
    pub resumed_answers: Option<u32>,
    pub progress: AttemptProgress,
    /// Saved answers that cannot be opened on this computer (each question says which).
    pub unreadable_answers: u32,
    /// Why: the student's answer key is missing from the OS keychain (a profile reset, or
    /// a roaming profile not loaded yet). Nothing is changed until it is back.
    pub key_missing: bool,
}
