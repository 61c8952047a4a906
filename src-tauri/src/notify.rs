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
    /// Findings announced, while they hold (announced again only after they stopped).
    findings: HashSet<(exam_core::security::Code, Option<String>)>,
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

impl Notifier {
    /// A finding the student should act on, once while it holds: what was seen and what to
    /// do (the banner in the window says the same).
    pub fn on_security(
        &mut self,
        security: &exam_core::security::SecuritySnapshot,
        vi: bool,
    ) -> Option<Note> {
        use exam_core::security::{Category, Code, Severity};
        let now: HashSet<_> = security.findings.iter().map(|f| f.key()).collect();
        self.findings.retain(|k| now.contains(k));
        let finding = security
            .findings
            .iter()
            .find(|f| f.severity == Severity::Warning && !self.findings.contains(&f.key()))?;
        self.findings.insert(finding.key());
        let name = finding.subject.clone().unwrap_or_default();
        let (summary, body) = match (finding.code, finding.category, vi) {
            (Code::ProhibitedProgram, Some(Category::RemoteControl), false) => (
                format!("Close {name}"),
                format!("{name} is running: someone else could see or control this computer. Close {name} to continue."),
            ),
            (Code::ProhibitedProgram, Some(Category::RemoteControl), true) => (
                format!("Hãy đóng {name}"),
                format!("{name} đang chạy: người khác có thể xem hoặc điều khiển máy này. Hãy đóng {name} để tiếp tục."),
            ),
            (Code::ProhibitedProgram, _, false) => (
                format!("Close {name}"),
                format!("{name} is running. Close it while you take the exam; the proctor can see this."),
            ),
            (Code::ProhibitedProgram, _, true) => (
                format!("Hãy đóng {name}"),
                format!("{name} đang chạy. Hãy đóng trong khi làm bài; giám thị có thể thấy thông báo này."),
            ),
            (_, _, false) => (
                "Check this computer".into(),
                "Something on this computer needs a look: see the app's window.".into(),
            ),
            (_, _, true) => (
                "Kiểm tra máy tính này".into(),
                "Có điều cần xem trên máy này: hãy xem cửa sổ ứng dụng.".into(),
            ),
        };
        Some(Note { summary, body })
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
                    CoreEvent::SecurityChanged { security } => notifier.on_security(security, vi),
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
    fn a_program_to_close_is_announced_once_while_it_runs() {
        use exam_core::security::{
            Category, Code, Confidence, Finding, SecuritySnapshot, Severity,
        };
        let anydesk = Finding {
            code: Code::ProhibitedProgram,
            severity: Severity::Warning,
            confidence: Confidence::High,
            subject: Some("anydesk".into()),
            category: Some(Category::RemoteControl),
            evidence: "process `anydesk` (pid 1)".into(),
            blocks_start: true,
        };
        let vm = Finding {
            code: Code::VirtualMachine,
            severity: Severity::Info,
            confidence: Confidence::Medium,
            subject: None,
            category: None,
            evidence: "QEMU".into(),
            blocks_start: false,
        };
        let snapshot = |findings: Vec<Finding>| SecuritySnapshot {
            findings,
            checked_at: None,
        };
        let mut n = Notifier::default();
        assert_eq!(
            n.on_security(&snapshot(vec![vm.clone()]), false),
            None,
            "information only"
        );
        let note = n
            .on_security(&snapshot(vec![vm.clone(), anydesk.clone()]), false)
            .unwrap();
        assert_eq!(note.summary, "Close anydesk");
        assert!(note.body.contains("Close anydesk to continue"), "{note:?}");
        assert_eq!(
            n.on_security(&snapshot(vec![anydesk.clone()]), false),
            None,
            "once"
        );
        assert_eq!(n.on_security(&snapshot(vec![]), false), None);
        let again = n.on_security(&snapshot(vec![anydesk]), true).unwrap();
        assert_eq!(again.summary, "Hãy đóng anydesk");
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
