//! The one error type of IPC, tagged by kind so the UI can react to each.

use exam_core::auth::AuthError;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, specta::Type, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IpcError {
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("locked out for {retry_after_s} seconds")]
    LockedOut { retry_after_s: u32 },
    #[error("offline: {message}")]
    Offline { message: String },
    #[error("not signed in")]
    NotSignedIn,
    #[error("session ended: {reason}")]
    SessionEnded { reason: String },
    #[error("refused: {message}")]
    Refused { message: String },
    #[error("keychain: {message}")]
    Keychain { message: String },
    #[error("validation: {message}")]
    Validation { message: String },
    #[error("not found: {message}")]
    NotFound { message: String },
    /// The disk or the queue's quota is full: the answer was not saved.
    #[error("storage full: {message}")]
    StorageFull { message: String },
    #[error("{message}")]
    Exam { message: String },
    /// The exam may not start now; the UI words `block` in the student's language.
    #[error("the exam may not start now: {block:?}")]
    StartRefused { block: exam_core::exam::StartBlock },
    #[error("internal: {message}")]
    Internal { message: String },
}

impl From<exam_core::exam::ExamError> for IpcError {
    fn from(error: exam_core::exam::ExamError) -> Self {
        use exam_core::exam::ExamError as E;
        use exam_core::queue::QueueError;
        use exam_core::store::StoreError;
        let message = error.to_string();
        match error {
            E::NotSignedIn => Self::NotSignedIn,
            E::Offline(message) => Self::Offline { message },
            E::Auth(auth) => auth.into(),
            E::NotFound(_) => Self::NotFound { message },
            E::Invalid(_) => Self::Validation { message },
            E::Key(_) => Self::Keychain { message },
            E::Queue(QueueError::Full { .. })
            | E::Queue(QueueError::Store(StoreError::DiskFull { .. }))
            | E::Store(StoreError::DiskFull { .. }) => Self::StorageFull { message },
            E::Refused(_) => Self::Refused { message },
            E::StartRefused(block) => Self::StartRefused { block },
            E::BadPackage(_) | E::NotDownloaded(_) | E::Queue(_) | E::Store(_) => {
                Self::Exam { message }
            }
        }
    }
}

impl From<exam_core::app::CoreError> for IpcError {
    fn from(error: exam_core::app::CoreError) -> Self {
        use exam_core::app::CoreError as C;
        match error {
            C::Auth(auth) => auth.into(),
            C::Exam(exam) => exam.into(),
            C::Queue(queue) => exam_core::exam::ExamError::Queue(queue).into(),
            C::Settings => Self::Validation {
                message: "the settings on this computer have a problem; see the main window".into(),
            },
            other => Self::Internal {
                message: other.to_string(),
            },
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
            AuthError::Offline(message) => Self::Offline { message },
            AuthError::NotSignedIn => Self::NotSignedIn,
            AuthError::SessionEnded(reason) => Self::SessionEnded { reason },
            AuthError::Refused(message) => Self::Refused { message },
            AuthError::Keychain(message) => Self::Keychain { message },
        }
    }
}

impl From<tauri::Error> for IpcError {
    fn from(error: tauri::Error) -> Self {
        Self::Internal {
            message: error.to_string(),
        }
    }
}
