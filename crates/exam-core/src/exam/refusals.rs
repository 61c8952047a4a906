//! What the server refused, as the student knows it: "question 5 of General knowledge", not
//! `PUT /v1/attempts/60377d73-…/answers/q05`; and why, as the server's stable code, which the
//! screens put in the student's language. Only the server's own replies get here: a portal's
//! or a proxy's never makes an entry refused ([`crate::http::judge`]).

use serde::Serialize;

use super::{ExamError, ExamService};
use crate::queue::{DeadLetter, EntryState, Kind};
pub use crate::reason::Refusal;

/// Why the server refused an entry, from its stored reply and the queue's note.
pub(crate) fn refusal_of(state: &EntryState) -> Refusal {
    Refusal::from_reply(
        state.response_status,
        state.response_body.as_deref(),
        state.error.as_deref(),
    )
}

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum RefusedWhat {
    Answer,
    /// Starting the attempt.
    Start,
    Submission,
    Other,
}

/// A refused item, named as the student knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct RefusedItem {
    /// The queue entry (to retry it).
    pub id: f64,
    pub what: RefusedWhat,
    pub exam_title: Option<String>,
    /// The question's number in its exam (1-based) and how many there are.
    pub question_number: Option<u32>,
    pub question_count: Option<u32>,
    pub refusal: Refusal,
    pub refused_at_ms: f64,
}

/// The question id at the end of an answer save's path, as it was before it was escaped.
fn question_of(path: &str) -> Option<String> {
    let (_, last) = path.rsplit_once("/answers/")?;
    url::form_urlencoded::parse(last.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
}

impl ExamService {
    /// The dead letters of the queue, newest first, each named by its exam and question.
    pub fn refused_items(&self, limit: u32) -> Result<Vec<RefusedItem>, ExamError> {
        let letters = self.inner.queue.dead_letters_for(&self.owner()?, limit)?;
        letters.iter().map(|l| self.name(l)).collect()
    }

    fn name(&self, letter: &DeadLetter) -> Result<RefusedItem, ExamError> {
        let what = match letter.kind {
            Kind::Answer => RefusedWhat::Answer,
            Kind::Attempt => RefusedWhat::Start,
            Kind::Submission => RefusedWhat::Submission,
            _ => RefusedWhat::Other,
        };
        let attempt = letter
            .stream
            .strip_prefix("attempt:")
            .and_then(|id| self.attempt(id).ok());
        let package = attempt.as_ref().and_then(|a| {
            self.package(&a.owner, &a.exam_id, Some(a.exam_version))
                .ok()
        });
        let question_number = (what == RefusedWhat::Answer)
            .then(|| question_of(&letter.path))
            .flatten()
            .and_then(|q| package.as_ref()?.questions.iter().position(|p| p.id == q))
            .and_then(|i| u32::try_from(i + 1).ok());
        Ok(RefusedItem {
            id: letter.id,
            what,
            exam_title: package.as_ref().map(|p| p.title.clone()),
            question_number,
            question_count: package
                .as_ref()
                .and_then(|p| u32::try_from(p.questions.len()).ok()),
            refusal: Refusal::from_reply(
                letter.response_status,
                letter.response_body.as_deref(),
                letter.error.as_deref(),
            ),
            refused_at_ms: letter.died_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_comes_back_from_its_escaped_path() {
        assert_eq!(
            question_of("/v1/attempts/a1/answers/q05").as_deref(),
            Some("q05")
        );
        let escaped = format!(
            "/v1/attempts/a1/answers/{}",
            crate::queue::segment("q 5/b+c?")
        );
        assert_eq!(question_of(&escaped).as_deref(), Some("q 5/b+c?"));
        assert_eq!(question_of("/v1/attempts/a1/submit"), None);
    }

    #[test]
    fn a_refusal_keeps_the_servers_code_and_words() {
        let r = Refusal::from_reply(
            Some(409),
            Some(r#"{"status":409,"code":"attempt_closed","detail":"submitted at 10:02"}"#),
            Some("refused by the server (409 attempt_closed)"),
        );
        assert_eq!(r.code.as_deref(), Some("attempt_closed"));
        assert_eq!(r.detail.as_deref(), Some("submitted at 10:02"));
        let oauth = Refusal::from_reply(Some(400), Some(r#"{"error":"invalid_grant"}"#), None);
        assert_eq!(oauth.code.as_deref(), Some("invalid_grant"));
        let here = Refusal::from_reply(None, None, Some("the answer key is not this one"));
        assert_eq!((here.status, here.code), (None, None));
        assert_eq!(
            here.detail.as_deref(),
            Some("the answer key is not this one")
        );
    }
}
