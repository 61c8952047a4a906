//! The exam rules both sides apply, written once: what an answer may be, what counts as
//! answered, and when an attempt may start. The client's core checks them before it queues
//! anything (so nothing it accepts becomes a refusal later) and the reference server checks
//! them when it receives it; a property test in each crate holds them to it.

use std::fmt;

use serde_json::Value;

/// The longest text answer when a question sets no `max_length` (characters).
pub const MAX_ANSWER_CHARS: u32 = 200_000;

/// A question's kind, as the package names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Single,
    Multiple,
    Short,
    Essay,
}

impl Kind {
    pub fn parse(kind: &str) -> Option<Self> {
        match kind {
            "single" => Some(Self::Single),
            "multiple" => Some(Self::Multiple),
            "short" => Some(Self::Short),
            "essay" => Some(Self::Essay),
            _ => None,
        }
    }
}

/// What an answer is checked against.
#[derive(Debug, Clone, Copy)]
pub struct QuestionRule<'a> {
    pub id: &'a str,
    pub kind: Kind,
    pub options: &'a [&'a str],
    pub max_length: Option<u32>,
}

/// Why an answer is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    NotAnOption {
        question: String,
        option: String,
    },
    ChosenTwice {
        question: String,
        option: String,
    },
    TooLong {
        question: String,
        chars: usize,
        max: u32,
    },
    /// The value is not of the question's shape (text, or a list of option ids).
    WrongShape {
        question: String,
        expected: &'static str,
    },
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnOption { question, option } => {
                write!(f, "`{option}` is not an option of question `{question}`")
            }
            Self::ChosenTwice { question, option } => {
                write!(f, "option `{option}` of question `{question}` is chosen twice")
            }
            Self::TooLong {
                question,
                chars,
                max,
            } => write!(
                f,
                "the answer to question `{question}` is {chars} characters; at most {max} are allowed"
            ),
            Self::WrongShape { question, expected } => {
                write!(f, "question `{question}` takes {expected} as its answer")
            }
        }
    }
}

impl std::error::Error for AnswerError {}

/// Checks an answer value (as the API carries it) against its question. A single choice is
/// one of the options (an empty choice is not one); a multiple choice is a list of distinct
/// options (possibly empty: nothing chosen); a text is at most `max_length` characters.
pub fn check_answer(question: &QuestionRule<'_>, value: &Value) -> Result<(), AnswerError> {
    let is_option = |id: &str| question.options.contains(&id);
    let qid = || question.id.to_string();
    match (question.kind, value) {
        (Kind::Single, Value::String(id)) if is_option(id) => Ok(()),
        (Kind::Single, Value::String(id)) => Err(AnswerError::NotAnOption {
            question: qid(),
            option: id.clone(),
        }),
        (Kind::Multiple, Value::Array(ids)) => {
            let mut seen = std::collections::HashSet::new();
            for id in ids {
                let Some(id) = id.as_str() else {
                    return Err(AnswerError::WrongShape {
                        question: qid(),
                        expected: "a list of option ids",
                    });
                };
                if !is_option(id) {
                    return Err(AnswerError::NotAnOption {
                        question: qid(),
                        option: id.to_string(),
                    });
                }
                if !seen.insert(id) {
                    return Err(AnswerError::ChosenTwice {
                        question: qid(),
                        option: id.to_string(),
                    });
                }
            }
            Ok(())
        }
        (Kind::Short | Kind::Essay, Value::String(text)) => {
            let max = question.max_length.unwrap_or(MAX_ANSWER_CHARS);
            let chars = text.chars().count();
            if chars > max as usize {
                return Err(AnswerError::TooLong {
                    question: qid(),
                    chars,
                    max,
                });
            }
            Ok(())
        }
        (Kind::Multiple, _) => Err(AnswerError::WrongShape {
            question: qid(),
            expected: "a list of option ids",
        }),
        (_, _) => Err(AnswerError::WrongShape {
            question: qid(),
            expected: "text",
        }),
    }
}

/// A saved value that is not an answer: text with nothing but spaces, or no option chosen.
/// Not answered: not counted, not in the digest.
pub fn is_blank(value: &Value) -> bool {
    match value {
        Value::String(text) => text.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

/// How many of `values` are answers.
pub fn answered_count<'a>(values: impl IntoIterator<Item = &'a Value>) -> usize {
    values.into_iter().filter(|v| !is_blank(v)).count()
}

/// Why an attempt may not start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRefusal {
    /// The student already submitted this exam.
    AlreadySubmitted,
    /// It opens at `opens_at_ms`.
    NotYetOpen { opens_at_ms: i64 },
    /// It closed at `closes_at_ms`.
    Closed { closes_at_ms: i64 },
}

impl fmt::Display for StartRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadySubmitted => f.write_str("this exam was already submitted"),
            Self::NotYetOpen { .. } => f.write_str("this exam is not open yet"),
            Self::Closed { .. } => f.write_str("this exam is closed"),
        }
    }
}

/// Whether a new attempt may start at `now_ms` (the server's time): not after a submission,
/// not before the exam opens, not after it closes (both ends inclusive).
pub fn may_start(
    now_ms: i64,
    opens_at_ms: i64,
    closes_at_ms: i64,
    submitted: bool,
) -> Result<(), StartRefusal> {
    if submitted {
        Err(StartRefusal::AlreadySubmitted)
    } else if now_ms < opens_at_ms {
        Err(StartRefusal::NotYetOpen { opens_at_ms })
    } else if now_ms > closes_at_ms {
        Err(StartRefusal::Closed { closes_at_ms })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    const OPTIONS: &[&str] = &["o1", "o2", "o3"];

    fn rule(kind: Kind, max_length: Option<u32>) -> QuestionRule<'static> {
        QuestionRule {
            id: "q1",
            kind,
            options: OPTIONS,
            max_length,
        }
    }

    #[test]
    fn answers_as_a_table() {
        let cases = [
            (Kind::Single, json!("o2"), true),
            (Kind::Single, json!(""), false),
            (Kind::Single, json!("o9"), false),
            (Kind::Single, json!(["o1"]), false),
            (Kind::Multiple, json!(["o1", "o3"]), true),
            (Kind::Multiple, json!([]), true),
            (Kind::Multiple, json!(["o1", "o1"]), false),
            (Kind::Multiple, json!(["o1", 2]), false),
            (Kind::Multiple, json!("o1"), false),
            (Kind::Short, json!("Hà Nội"), true),
            (Kind::Short, json!(""), true),
            (Kind::Short, json!(12), false),
            (Kind::Essay, json!(null), false),
        ];
        for (kind, value, ok) in cases {
            assert_eq!(
                check_answer(&rule(kind, None), &value).is_ok(),
                ok,
                "{kind:?} {value}"
            );
        }
        let short = rule(Kind::Short, Some(5));
        assert!(
            check_answer(&short, &json!("Việt!")).is_ok(),
            "5 characters, 8 bytes"
        );
        let long = check_answer(&short, &json!("Việt!!")).unwrap_err();
        assert!(long.to_string().contains("at most 5"), "{long}");
        let unlimited = rule(Kind::Essay, None);
        let text = "x".repeat(MAX_ANSWER_CHARS as usize + 1);
        assert!(check_answer(&unlimited, &json!(text)).is_err());
    }

    #[test]
    fn blank_is_not_answered() {
        for blank in [json!(""), json!("  \n"), json!([]), json!(null)] {
            assert!(is_blank(&blank), "{blank}");
        }
        for answer in [json!("0"), json!(" a "), json!(["o1"])] {
            assert!(!is_blank(&answer), "{answer}");
        }
        let values = [json!("a"), json!(""), json!(["o1"]), json!([])];
        assert_eq!(answered_count(values.iter()), 2);
    }

    #[test]
    fn the_start_window_as_a_table() {
        assert_eq!(may_start(50, 10, 100, false), Ok(()));
        assert_eq!(may_start(10, 10, 100, false), Ok(()));
        assert_eq!(may_start(100, 10, 100, false), Ok(()));
        assert_eq!(
            may_start(9, 10, 100, false),
            Err(StartRefusal::NotYetOpen { opens_at_ms: 10 })
        );
        assert_eq!(
            may_start(101, 10, 100, false),
            Err(StartRefusal::Closed { closes_at_ms: 100 })
        );
        assert_eq!(
            may_start(50, 10, 100, true),
            Err(StartRefusal::AlreadySubmitted)
        );
    }
}
