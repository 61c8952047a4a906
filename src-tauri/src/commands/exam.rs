//! The exam screens: list, download, attempt, answers, submission. Thin: each converts
//! its arguments, calls the core's [`exam_core::exam::ExamService`] and maps the error.

use exam_core::exam::ledger::FairTime;
use exam_core::exam::readiness::ExamReadiness;
use exam_core::exam::{
    AnswerState, AnswerValue, AttemptProgress, AttemptView, ExamList, ExamService, ExamSummary,
    SubmissionView,
};

use crate::error::IpcError;
use crate::state::AppState;

fn exams(state: &AppState) -> Result<&ExamService, IpcError> {
    Ok(state.core.exams()?)
}

#[tauri::command]
#[specta::specta]
pub async fn exam_list(state: tauri::State<'_, AppState>) -> Result<ExamList, IpcError> {
    Ok(exams(&state)?.list().await?)
}

/// The readiness card of a downloaded exam: each line (the package, the server, the disk,
/// the clock, prohibited programs, this app's version) with how to fix what is not ready.
#[tauri::command]
#[specta::specta]
pub async fn exam_readiness(
    state: tauri::State<'_, AppState>,
    exam_id: String,
) -> Result<ExamReadiness, IpcError> {
    Ok(state.core.exam_readiness(&exam_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn download_exam(
    state: tauri::State<'_, AppState>,
    exam_id: String,
) -> Result<ExamSummary, IpcError> {
    Ok(exams(&state)?.download(&exam_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn start_attempt(
    state: tauri::State<'_, AppState>,
    exam_id: String,
) -> Result<AttemptView, IpcError> {
    Ok(exams(&state)?.start(&exam_id).await?)
}

/// Starts an attempt whose sealed package opens with the start code the proctor read out
/// (a room without a network).
#[tauri::command]
#[specta::specta]
pub async fn start_attempt_with_code(
    state: tauri::State<'_, AppState>,
    exam_id: String,
    code: String,
) -> Result<AttemptView, IpcError> {
    Ok(exams(&state)?.start_with_code(&exam_id, &code).await?)
}

/// The attempt to come back to after a restart (in progress, or submitted and not yet
/// closed), if any.
#[tauri::command]
#[specta::specta]
pub async fn current_attempt(
    state: tauri::State<'_, AppState>,
) -> Result<Option<AttemptView>, IpcError> {
    Ok(exams(&state)?.current()?)
}

#[tauri::command]
#[specta::specta]
pub async fn attempt_view(
    state: tauri::State<'_, AppState>,
    attempt_id: String,
) -> Result<AttemptView, IpcError> {
    Ok(exams(&state)?.view(&attempt_id)?)
}

/// Saves an answer on this computer (durably, before returning) and queues it.
#[tauri::command]
#[specta::specta]
pub async fn save_answer(
    state: tauri::State<'_, AppState>,
    attempt_id: String,
    question_id: String,
    value: AnswerValue,
) -> Result<AnswerState, IpcError> {
    Ok(exams(&state)?.save_answer(&attempt_id, &question_id, value)?)
}

#[tauri::command]
#[specta::specta]
pub async fn set_flag(
    state: tauri::State<'_, AppState>,
    attempt_id: String,
    question_id: String,
    flagged: bool,
) -> Result<(), IpcError> {
    Ok(exams(&state)?.set_flag(&attempt_id, &question_id, flagged)?)
}

#[tauri::command]
#[specta::specta]
pub async fn set_current_question(
    state: tauri::State<'_, AppState>,
    attempt_id: String,
    question_id: String,
) -> Result<(), IpcError> {
    Ok(exams(&state)?.set_current(&attempt_id, &question_id)?)
}

/// Cheap: save states, submission and time left, for polling after sync events.
#[tauri::command]
#[specta::specta]
pub async fn attempt_progress(
    state: tauri::State<'_, AppState>,
    attempt_id: String,
) -> Result<AttemptProgress, IpcError> {
    Ok(exams(&state)?.progress(&attempt_id)?)
}

#[tauri::command]
#[specta::specta]
pub async fn submit_attempt(
    state: tauri::State<'_, AppState>,
    attempt_id: String,
) -> Result<SubmissionView, IpcError> {
    Ok(exams(&state)?.submit(&attempt_id)?)
}

/// The time an attempt lost to the network and to the app not running (the fair-time
/// ledger), for the submission screen.
#[tauri::command]
#[specta::specta]
pub async fn attempt_fair_time(
    state: tauri::State<'_, AppState>,
    attempt_id: String,
) -> Result<FairTime, IpcError> {
    Ok(exams(&state)?.fair_time(&attempt_id)?)
}

/// Back to the exam list after a delivered submission (the attempt stays on record).
#[tauri::command]
#[specta::specta]
pub async fn close_attempt(
    state: tauri::State<'_, AppState>,
    attempt_id: String,
) -> Result<(), IpcError> {
    Ok(exams(&state)?.close(&attempt_id)?)
}
