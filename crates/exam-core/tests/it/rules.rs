//! One copy of the exam rules: what the client accepts as an answer, the reference server
//! accepts, and the other way round — checked on random questions and values against the
//! server's own check. Also what counts as answered: the client's count and digest are the
//! server's, so a cleared answer never turns a submission into a digest mismatch.

use exam_core::exam::{AnswerValue, ExamOption, Question, QuestionKind};
use proptest::prelude::*;
use serde_json::{json, Value};

fn kinds() -> impl Strategy<Value = QuestionKind> {
    prop_oneof![
        Just(QuestionKind::Single),
        Just(QuestionKind::Multiple),
        Just(QuestionKind::Short),
        Just(QuestionKind::Essay),
    ]
}

fn kind_name(kind: QuestionKind) -> &'static str {
    match kind {
        QuestionKind::Single => "single",
        QuestionKind::Multiple => "multiple",
        QuestionKind::Short => "short",
        QuestionKind::Essay => "essay",
    }
}

/// Option ids, option-like strings that are not options, blanks, Vietnamese text.
fn words() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("o1".to_string()),
        Just("o2".to_string()),
        Just("o3".to_string()),
        Just("o9".to_string()),
        Just(String::new()),
        Just("   ".to_string()),
        "[a-zà-ỹ ]{0,12}",
    ]
}

fn values() -> impl Strategy<Value = AnswerValue> {
    prop_oneof![
        words().prop_map(AnswerValue::Text),
        prop::collection::vec(words(), 0..5).prop_map(AnswerValue::Choices),
    ]
}

fn client_question(kind: QuestionKind, options: usize, max: Option<u32>) -> Question {
    let with_options = matches!(kind, QuestionKind::Single | QuestionKind::Multiple);
    Question {
        id: "q1".into(),
        kind,
        prompt: "?".into(),
        options: if with_options {
            (1..=options)
                .map(|i| ExamOption {
                    id: format!("o{i}"),
                    text: format!("Option {i}"),
                })
                .collect()
        } else {
            Vec::new()
        },
        max_length: if with_options { None } else { max },
    }
}

fn server_question(q: &Question) -> exam_server::api::Question {
    serde_json::from_value(json!({
        "id": q.id,
        "kind": kind_name(q.kind),
        "options": q.options.iter().map(|o| json!({"id": o.id})).collect::<Vec<_>>(),
        "max_length": q.max_length,
    }))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn what_the_client_sends_the_server_accepts_and_what_the_server_accepts_the_client_does(
        kind in kinds(),
        options in 2usize..=3,
        max in prop::option::of(1u32..8),
        value in values(),
    ) {
        let client = client_question(kind, options, max);
        let server = server_question(&client);
        let raw = value.to_json();
        let server_takes_raw = exam_server::api::check_value(&server, &raw).is_ok();
        match client.accept(value) {
            Ok(sent) => {
                // What the client would send (normalised) is never refused.
                let verdict = exam_server::api::check_value(&server, &sent.to_json());
                prop_assert!(verdict.is_ok(), "{kind:?} {raw} sent as {} refused: {verdict:?}", sent.to_json());
            }
            Err(why) => {
                // What the client refuses, the server refuses too.
                prop_assert!(!server_takes_raw, "{kind:?} {raw}: the client refuses ({why}), the server accepts");
            }
        }
    }

    #[test]
    fn answered_and_the_digest_agree_on_blank_answers(
        texts in prop::collection::vec(words(), 0..6),
    ) {
        let values: Vec<(String, Value)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("q{i}"), json!(t)))
            .collect();
        let answered: Vec<&(String, Value)> =
            values.iter().filter(|(_, v)| !v.as_str().unwrap_or("").trim().is_empty()).collect();
        prop_assert_eq!(
            exam_contract::rules::answered_count(values.iter().map(|(_, v)| v)),
            answered.len()
        );
        prop_assert_eq!(
            exam_contract::answers_digest(values.iter().map(|(q, v)| (q.as_str(), v))),
            exam_contract::answers_digest(answered.iter().map(|(q, v)| (q.as_str(), v)))
        );
    }
}
