//! Exam packages as the server sends them, checked before anything is stored: the content
//! is untrusted (hostile prompts are shown as text by the UI; here sizes, ids and kinds are
//! checked so a bad package is refused with a message that says what and where, and the
//! package already on this computer is kept).

use std::collections::HashSet;

use exam_contract::rules::{self, MAX_ANSWER_CHARS};
use serde::{Deserialize, Serialize};

/// The largest package accepted (bytes of JSON).
pub const MAX_PACKAGE_BYTES: usize = 8 * 1024 * 1024;
const MAX_QUESTIONS: usize = 1000;
const MAX_ID_CHARS: usize = 200;
const MAX_TITLE_CHARS: usize = 500;
const MAX_TEXT_CHARS: usize = 50_000;
const MAX_OPTIONS: usize = 50;

/// What kind of answer a question takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum QuestionKind {
    Single,
    Multiple,
    Short,
    Essay,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ExamOption {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub id: String,
    pub kind: QuestionKind,
    pub prompt: String,
    #[serde(default)]
    pub options: Vec<ExamOption>,
    #[serde(default)]
    pub max_length: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub duration_s: u32,
    #[serde(default)]
    pub instructions: String,
    pub questions: Vec<Question>,
}

/// Why a package was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the package of exam `{exam}` from the server was refused: {reason}")]
pub struct BadPackage {
    pub exam: String,
    pub reason: String,
}

impl Package {
    /// Parses and checks a package for `exam_id`.
    pub fn parse(exam_id: &str, bytes: &[u8]) -> Result<Self, BadPackage> {
        let bad = |reason: String| BadPackage {
            exam: exam_id.to_string(),
            reason,
        };
        if bytes.len() > MAX_PACKAGE_BYTES {
            return Err(bad(format!(
                "it is {} bytes, more than the {MAX_PACKAGE_BYTES} allowed",
                bytes.len()
            )));
        }
        let package: Package = serde_json::from_slice(bytes).map_err(|e| {
            bad(format!(
                "it is not a valid package (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        package.check(exam_id).map_err(bad)?;
        Ok(package)
    }

    fn check(&self, exam_id: &str) -> Result<(), String> {
        if self.id != exam_id {
            return Err(format!("it is the package of exam `{}`", self.id));
        }
        text("title", &self.title, MAX_TITLE_CHARS)?;
        text("instructions", &self.instructions, MAX_TEXT_CHARS)?;
        if self.duration_s == 0 {
            return Err("its duration is 0 seconds".into());
        }
        if self.questions.is_empty() || self.questions.len() > MAX_QUESTIONS {
            return Err(format!(
                "it has {} questions (1 to {MAX_QUESTIONS} allowed)",
                self.questions.len()
            ));
        }
        let mut ids = HashSet::new();
        for (n, q) in self.questions.iter().enumerate() {
            let at = |what: &str| format!("question {} (`{}`): {what}", n + 1, q.id);
            id("id", &q.id).map_err(|e| at(&e))?;
            if !ids.insert(q.id.as_str()) {
                return Err(at("its id is used twice"));
            }
            text("prompt", &q.prompt, MAX_TEXT_CHARS).map_err(|e| at(&e))?;
            match q.kind {
                QuestionKind::Single | QuestionKind::Multiple => {
                    if q.options.len() < 2 || q.options.len() > MAX_OPTIONS {
                        return Err(at(&format!(
                            "it has {} options (2 to {MAX_OPTIONS} allowed)",
                            q.options.len()
                        )));
                    }
                    let mut options = HashSet::new();
                    for o in &q.options {
                        id("option id", &o.id).map_err(|e| at(&e))?;
                        if !options.insert(o.id.as_str()) {
                            return Err(at(&format!("option `{}` appears twice", o.id)));
                        }
                        text("option text", &o.text, MAX_TEXT_CHARS).map_err(|e| at(&e))?;
                    }
                }
                QuestionKind::Short | QuestionKind::Essay => {
                    if !q.options.is_empty() {
                        return Err(at("a written answer has options"));
                    }
                    if q.max_length.is_some_and(|m| m == 0 || m > MAX_ANSWER_CHARS) {
                        return Err(at(&format!(
                            "its max_length must be 1 to {MAX_ANSWER_CHARS}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }
}

fn text(what: &str, value: &str, max: usize) -> Result<(), String> {
    let chars = value.chars().count();
    if chars > max {
        return Err(format!("its {what} is {chars} characters (at most {max})"));
    }
    Ok(())
}

fn id(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.chars().count() > MAX_ID_CHARS {
        return Err(format!("its {what} must be 1 to {MAX_ID_CHARS} characters"));
    }
    if value.chars().any(|c| c.is_control() || c == '/') {
        return Err(format!(
            "its {what} `{}` contains a control character or `/`",
            value.escape_debug()
        ));
    }
    Ok(())
}

/// An answer's value as the API carries it: text (short, essay, or the chosen option of a
/// single-choice question) or the chosen option ids (multiple choice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum AnswerValue {
    Text(String),
    Choices(Vec<String>),
}

impl Question {
    /// Checks a value against this question with the rule the server applies too
    /// ([`exam_contract::rules::check_answer`]); the value to store and send (choices sorted
    /// and deduplicated first, so the digest is the server's).
    pub fn accept(&self, value: AnswerValue) -> Result<AnswerValue, rules::AnswerError> {
        let value = match value {
            AnswerValue::Choices(mut ids) => {
                ids.sort();
                ids.dedup();
                AnswerValue::Choices(ids)
            }
            text => text,
        };
        let options: Vec<&str> = self.options.iter().map(|o| o.id.as_str()).collect();
        let rule = rules::QuestionRule {
            id: &self.id,
            kind: match self.kind {
                QuestionKind::Single => rules::Kind::Single,
                QuestionKind::Multiple => rules::Kind::Multiple,
                QuestionKind::Short => rules::Kind::Short,
                QuestionKind::Essay => rules::Kind::Essay,
            },
            options: &options,
            max_length: self.max_length,
        };
        rules::check_answer(&rule, &value.to_json())?;
        Ok(value)
    }
}

impl AnswerValue {
    /// As the API carries it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Text(text) => serde_json::Value::String(text.clone()),
            Self::Choices(ids) => serde_json::Value::Array(
                ids.iter()
                    .map(|id| serde_json::Value::String(id.clone()))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(questions: serde_json::Value) -> Vec<u8> {
        serde_json::json!({
            "id": "e1", "version": 3, "title": "T", "duration_s": 600,
            "instructions": "Read carefully", "questions": questions
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_good_package_is_accepted_with_hostile_text_kept_as_text() {
        let p = Package::parse(
            "e1",
            &package(serde_json::json!([
                {"id": "q1", "kind": "single", "prompt": "<img src=x onerror=alert(1)>",
                 "options": [{"id": "a", "text": "<script>x</script>"}, {"id": "b", "text": "B"}]},
                {"id": "q2", "kind": "essay", "prompt": "Viết", "max_length": 5000}
            ])),
        )
        .unwrap();
        assert_eq!(p.questions[0].prompt, "<img src=x onerror=alert(1)>");
        assert_eq!(p.version, 3);
    }

    #[test]
    fn bad_packages_are_refused_saying_what_and_where() {
        let table: Vec<(Vec<u8>, &str)> = vec![
            (b"{not json".to_vec(), "line 1, column 2"),
            (package(serde_json::json!([])), "0 questions"),
            (
                package(serde_json::json!([{"id": "q1", "kind": "poll", "prompt": "?"}])),
                "unknown variant `poll`",
            ),
            (
                package(serde_json::json!([
                    {"id": "q1", "kind": "short", "prompt": "a"},
                    {"id": "q1", "kind": "short", "prompt": "b"}])),
                "question 2 (`q1`): its id is used twice",
            ),
            (
                package(
                    serde_json::json!([{"id": "q1", "kind": "single", "prompt": "a",
                    "options": [{"id": "a", "text": "x"}]}]),
                ),
                "1 options",
            ),
            (
                package(serde_json::json!([{"id": "../q", "kind": "short", "prompt": "a"}])),
                "contains a control character or `/`",
            ),
            (
                package(
                    serde_json::json!([{"id": "q1", "kind": "essay", "prompt": "a", "max_length": 0}]),
                ),
                "max_length",
            ),
            (vec![b' '; MAX_PACKAGE_BYTES + 1], "more than the"),
        ];
        for (bytes, expected) in table {
            let err = Package::parse("e1", &bytes).unwrap_err().to_string();
            assert!(err.contains("exam `e1`"), "{err}");
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
        let other = Package::parse(
            "e2",
            &package(serde_json::json!([{"id": "q", "kind": "short", "prompt": "a"}])),
        );
        assert!(other
            .unwrap_err()
            .to_string()
            .contains("package of exam `e1`"));
    }

    #[test]
    fn values_are_checked_against_their_question() {
        let q = |kind, max_length| Question {
            id: "q".into(),
            kind,
            prompt: String::new(),
            options: vec![
                ExamOption {
                    id: "b".into(),
                    text: "B".into(),
                },
                ExamOption {
                    id: "a".into(),
                    text: "A".into(),
                },
            ],
            max_length,
        };
        let text = |s: &str| AnswerValue::Text(s.into());
        let choices = |v: &[&str]| AnswerValue::Choices(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            q(QuestionKind::Single, None).accept(text("a")),
            Ok(text("a"))
        );
        assert!(q(QuestionKind::Single, None).accept(text("z")).is_err());
        assert_eq!(
            q(QuestionKind::Multiple, None).accept(choices(&["b", "a", "b"])),
            Ok(choices(&["a", "b"]))
        );
        assert!(q(QuestionKind::Multiple, None).accept(text("a")).is_err());
        assert!(q(QuestionKind::Short, Some(3)).accept(text("ngã")).is_ok());
        assert!(q(QuestionKind::Short, Some(3))
            .accept(text("ngày"))
            .is_err());
        assert!(q(QuestionKind::Essay, None)
            .accept(choices(&["a"]))
            .is_err());
    }
}
