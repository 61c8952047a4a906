//! The exam API's requests, as queued entries: where each goes, its stream (the attempt, so
//! an attempt is created before its answers and submitted after them), its priority and
//! what replaces what. The queue itself knows no URL.

use serde_json::Value;

use crate::queue::{segment, Kind, NewEntry, Priority};

impl NewEntry {
    /// An answer save: `PUT /v1/attempts/{attempt}/answers/{question}` with
    /// `{value, seq, saved_at}`, in the attempt's stream, coalesced per question.
    pub fn answer(attempt: &str, question: &str, value: Value, saved_at: &str) -> Self {
        Self {
            method: "PUT".into(),
            path: format!(
                "/v1/attempts/{}/answers/{}",
                segment(attempt),
                segment(question)
            ),
            body: Some(serde_json::json!({"value": value, "saved_at": saved_at})),
            stream: format!("attempt:{attempt}"),
            priority: Priority::Normal,
            kind: Kind::Answer,
            coalesce_key: Some(format!("answer:{attempt}:{question}")),
            stamp_seq: true,
            owner: None,
        }
    }

    /// Creating an attempt on the server (it may have begun offline).
    pub fn start_attempt(exam: &str, attempt: &str, started_at: &str) -> Self {
        Self {
            method: "POST".into(),
            path: format!("/v1/exams/{}/attempts", segment(exam)),
            body: Some(serde_json::json!({"attempt_id": attempt, "started_at": started_at})),
            stream: format!("attempt:{attempt}"),
            priority: Priority::High,
            kind: Kind::Attempt,
            coalesce_key: None,
            stamp_seq: false,
            owner: None,
        }
    }

    /// Submitting an attempt: `{answer_count, answers_digest}` (a barrier: delivered after
    /// every save before it).
    pub fn submit(attempt: &str, answer_count: usize, answers_digest: &str) -> Self {
        Self {
            method: "POST".into(),
            path: format!("/v1/attempts/{}/submit", segment(attempt)),
            body: Some(
                serde_json::json!({"answer_count": answer_count, "answers_digest": answers_digest}),
            ),
            stream: format!("attempt:{attempt}"),
            priority: Priority::High,
            kind: Kind::Submission,
            coalesce_key: None,
            stamp_seq: false,
            owner: None,
        }
    }
}
