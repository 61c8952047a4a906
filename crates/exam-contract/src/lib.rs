//! What the Exam Bank API contract (`API.md`) makes both sides compute the same way: the
//! RFC 8785 canonical JSON and the answers digest a submission carries. Shared by the
//! desktop client's core and the reference server, so they cannot drift apart.

pub mod metrics;
pub mod predict;
pub mod readiness;
pub mod rules;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// RFC 8785 ordering: keys compared as UTF-16 code units.
pub fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// RFC 8785 canonical JSON for the values this API carries (strings, integers, booleans,
/// arrays, objects): keys sorted, no whitespace. Written out here rather than relying on
/// `serde_json`'s map order, which a feature elsewhere in a build can change.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| utf16_cmp(a, b));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Hex SHA-256 of the canonical JSON of `{question_id: value}` over every answered question
/// (a blank value is not an answer: [`rules::is_blank`]), a multiple-choice value being its
/// option ids sorted.
pub fn answers_digest<'a>(answers: impl IntoIterator<Item = (&'a str, &'a Value)>) -> String {
    let object: Map<String, Value> = answers
        .into_iter()
        .filter(|(_, value)| !rules::is_blank(value))
        .map(|(id, value)| {
            let value = match value {
                Value::Array(items) => {
                    let mut ids: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                    ids.sort_by(|a, b| utf16_cmp(a, b));
                    Value::Array(
                        ids.into_iter()
                            .map(|s| Value::String(s.to_string()))
                            .collect(),
                    )
                }
                other => other.clone(),
            };
            (id.to_string(), value)
        })
        .collect();
    let canonical = canonical_json(&Value::Object(object));
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn digest_is_canonical_whatever_the_order() {
        let a = json!(["c", "a"]);
        let b = json!("x");
        let one = answers_digest([("q2", &a), ("q1", &b)]);
        let sorted = json!(["a", "c"]);
        let two = answers_digest([("q1", &b), ("q2", &sorted)]);
        assert_eq!(one, two);
        // The canonical text is {"q1":"x","q2":["a","c"]}.
        assert_eq!(
            one,
            hex::encode(Sha256::digest(br#"{"q1":"x","q2":["a","c"]}"#))
        );
        assert_eq!(
            answers_digest(std::iter::empty()),
            hex::encode(Sha256::digest(b"{}"))
        );
        // A cleared answer is no answer: the same digest as without it.
        let blank = json!("  ");
        assert_eq!(
            answers_digest([("q1", &b), ("q2", &sorted), ("q3", &blank)]),
            two
        );
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let value = json!({"b": 1, "a": {"d": [1, "x\n"], "c": true}, "é": null});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":true,"d":[1,"x\n"]},"b":1,"é":null}"#
        );
    }
}
