//! Desktop notifications for what matters while the main window is not in front: the
//! connection lost or back, a submission delivered. Through the OS notification service
//! (notify-rust: D-Bus on Linux), in the language the UI was last set to.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use exam_core::app::Core;
use exam_core::bus::CoreEvent;
use exam_core::exam::{SubmissionState, SubmissionView};
use exam_core::network::NetState;
use tauri::{AppHandle, Manager, Runtime};
use tokio::sync::broadcast::error::RecvError;

/// A notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub summary: String,
    pub body: String,
}

/// The UI's language, for notifications (`en` or `vi`).
#[derive(Clone, Default)]
pub struct Language(Arc<Mutex<String>>);

impl Language {
    pub fn set(&self, language: &str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = language.to_string();
    }

    fn vietnamese(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .starts_with("vi")
    }
}

/// Decides what deserves a notification (no repeats, no noise at start).
#[derive(Default)]
pub struct Notifier {
    reachable: Option<bool>,
    delivered: HashSet<String>,
}

impl Notifier {
    pub fn on_network(&mut self, state: NetState, vi: bool) -> Option<Note> {
        let reachable = match state {
            NetState::Online | NetState::Degraded => true,
            NetState::Offline | NetState::CaptivePortal | NetState::ServerDown => false,
            NetState::Unknown => return None,
        };
        let before = self.reachable.replace(reachable);
        // The first state seen is where the app started: nothing changed for the student.
        match (before, reachable) {
            (Some(true), false) => Some(if vi {
                Note {
                    summary: "Mất kết nối".into(),
                    body:
                        "Bài làm của bạn vẫn được lưu trên máy này và sẽ được gửi khi có kết nối."
                            .into(),
                }
            } else {
                Note {
                    summary: "Connection lost".into(),
                    body: "Your answers are kept on this computer and will be sent when the connection is back."
                        .into(),
                }
            }),
            (Some(false), true) => Some(if vi {
                Note {
                    summary: "Đã có kết nối trở lại".into(),
                    body: "Các câu trả lời đã lưu đang được gửi lên máy chủ.".into(),
                }
            } else {
                Note {
                    summary: "Connection back".into(),
                    body: "Your saved answers are being sent to the server.".into(),
                }
            }),
            _ => None,
        }
    }

    pub fn on_submission(
        &mut self,
        attempt_id: &str,
        submission: &SubmissionView,
        vi: bool,
    ) -> Option<Note> {
        if submission.state != SubmissionState::Delivered
            || !self.delivered.insert(attempt_id.to_string())
        {
            return None;
        }
        let receipt = submission.receipt_id.clone().unwrap_or_default();
        Some(if vi {
            Note {
                summary: "Bài thi đã được nộp".into(),
                body: format!("Máy chủ đã nhận bài. Mã biên nhận: {receipt}"),
            }
        } else {
            Note {
                summary: "Submission delivered".into(),
                body: format!("The server has your exam. Receipt: {receipt}"),
            }
        })
    }
}

fn show(note: &Note) {
    let shown = notify_rust::Notification::new()
        .appname("Exam Bank Desktop")
        .summary(&note.summary)
        .body(&note.body)
        .show();
    match shown {
        Ok(_) => tracing::info!(summary = %note.summary, "desktop notification shown"),
        Err(error) => tracing::warn!(%error, "no desktop notification service"),
    }
}

/// Watches the bus; notifies while the main window is not focused.
pub fn watch<R: Runtime>(app: AppHandle<R>, core: &Core, language: Language) {
    let mut rx = core.bus().subscribe();
    let exams = core.exams().ok().cloned();
    core.workers()
        .spawn("notifications", move |stop| async move {
            let mut notifier = Notifier::default();
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => break,
                    received = rx.recv() => received,
                };
                let event = match received {
                    Ok(event) => event,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                };
                let vi = language.vietnamese();
                let note = match &event {
                    CoreEvent::NetworkChanged { status } => notifier.on_network(status.state, vi),
                    CoreEvent::ExamChanged { attempt_id } => exams
                        .as_ref()
                        .and_then(|e| e.progress(attempt_id).ok())
                        .and_then(|p| p.submission)
                        .and_then(|s| notifier.on_submission(attempt_id, &s, vi)),
                    _ => None,
                };
                let Some(note) = note else { continue };
                // Only when the student is looking elsewhere (the window shows it already).
                let focused = app
                    .get_webview_window("main")
                    .map(|w| w.is_focused().unwrap_or(true));
                if focused == Some(false) {
                    // A D-Bus call that may wait for the notification service: off the
                    // runtime's workers, so events keep flowing to the windows meanwhile.
                    tokio::task::spawn_blocking(move || show(&note));
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(state: SubmissionState) -> SubmissionView {
        SubmissionView {
            state,
            submitted_at: "2026-11-28T10:00:00Z".into(),
            answer_count: 3,
            local_digest: "d".into(),
            receipt_id: Some("r-1".into()),
            receipt_digest: Some("d".into()),
            delivered_at: None,
            late: Some(false),
            error: None,
            refusal: None,
        }
    }

    #[test]
    fn only_changes_of_the_connection_are_announced_once_each() {
        let mut n = Notifier::default();
        assert_eq!(n.on_network(NetState::Unknown, false), None);
        assert_eq!(
            n.on_network(NetState::Online, false),
            None,
            "the start is no change"
        );
        assert_eq!(n.on_network(NetState::Degraded, false), None);
        let lost = n.on_network(NetState::Offline, false).unwrap();
        assert_eq!(lost.summary, "Connection lost");
        assert_eq!(n.on_network(NetState::ServerDown, false), None);
        let back = n.on_network(NetState::Online, true).unwrap();
        assert_eq!(back.summary, "Đã có kết nối trở lại");
    }

    #[test]
    fn a_delivered_submission_is_announced_once_with_its_receipt() {
        let mut n = Notifier::default();
        assert_eq!(
            n.on_submission("a", &submission(SubmissionState::Queued), false),
            None
        );
        let note = n
            .on_submission("a", &submission(SubmissionState::Delivered), false)
            .unwrap();
        assert!(note.body.contains("r-1"));
        assert_eq!(
            n.on_submission("a", &submission(SubmissionState::Delivered), false),
            None
        );
    }
}
