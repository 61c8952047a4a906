//! A JSON Schema (draft 2020-12) of the document a policy or a TOML file holds, for editors and
//! IT's own checks before deployment. The app's parser stays the authority: the schema cannot
//! say, for instance, that a freeze ends after it starts.

use super::{default_value, example, sections, Json};
use crate::config::specs::KeyType;

/// The server URL rule, as near as a regular expression gets: https://, or http:// to a
/// loopback name or address; no user name or password.
const URL_PATTERN: &str = r"^(https://[^/?#@]+|http://(([^/?#@:]+\.)?localhost|127(\.[0-9]{1,3}){3}|\[::1\])(:[0-9]+)?)([/?#].*)?$";
/// Absolute: from the root, a drive letter or a network share.
const PATH_PATTERN: &str = r"^(/|[A-Za-z]:[\\/]|\\\\)";

pub(super) fn render() -> String {
    let mut properties = Vec::new();
    for (section, title, keys) in sections() {
        if section == "general" {
            for spec in keys {
                properties.push((spec.name.to_string(), key_schema(spec)));
            }
            continue;
        }
        let fields = keys
            .iter()
            .map(|spec| (spec.leaf().to_string(), key_schema(spec)))
            .collect();
        properties.push((
            section.to_string(),
            Json::Object(vec![
                ("title".into(), Json::str(title)),
                ("type".into(), Json::str("object")),
                ("additionalProperties".into(), Json::Bool(false)),
                ("properties".into(), Json::Object(fields)),
            ]),
        ));
    }
    properties.push((
        "locked".into(),
        Json::object([
            (
                "description",
                Json::str(
                    "Only in the managed TOML file: the keys the user's file, the environment and \
                     the command line cannot change. Refused in a policy, where every key set is \
                     forced.",
                ),
            ),
            ("type", Json::str("array")),
            (
                "items",
                Json::object([(
                    "enum",
                    Json::Array(crate::config::KEYS.iter().map(|k| Json::str(*k)).collect()),
                )]),
            ),
        ]),
    ));
    Json::object([
        (
            "$schema",
            Json::str("https://json-schema.org/draft/2020-12/schema"),
        ),
        ("$id", Json::str("urn:exambank:exam-desktop:policies")),
        (
            "title",
            Json::str("Exam Bank Desktop configuration and policies"),
        ),
        (
            "description",
            Json::str(
                "The keys of a JSON policy (/etc/exam-desktop/policies/*.json) and, in TOML, of \
                 the managed and user configuration files. Generated from the app's own table of \
                 keys; see README.md beside this file.",
            ),
        ),
        ("type", Json::str("object")),
        ("additionalProperties", Json::Bool(false)),
        ("properties", Json::Object(properties)),
    ])
    .pretty()
}

fn key_schema(spec: &crate::config::KeySpec) -> Json {
    let Json::Object(mut fields) = type_schema(&spec.ty) else {
        return type_schema(&spec.ty);
    };
    let mut head = vec![
        ("title".to_string(), Json::str(spec.title)),
        ("description".to_string(), Json::str(spec.description)),
    ];
    if let Some(default) = default_value(spec) {
        fields.push(("default".into(), Json::from_value(&default)));
    }
    fields.push((
        "examples".into(),
        Json::Array(vec![Json::from_value(&example(spec))]),
    ));
    head.append(&mut fields);
    Json::Object(head)
}

fn type_schema(ty: &KeyType) -> Json {
    let mut fields: Vec<(String, Json)> = Vec::new();
    let mut put = |k: &str, v: Json| fields.push((k.to_string(), v));
    match ty {
        KeyType::Text {
            min_len,
            max_len,
            pattern,
        } => {
            put("type", Json::str("string"));
            put("minLength", Json::int(i64::from(*min_len)));
            if let Some(max) = max_len {
                put("maxLength", Json::int(i64::from(*max)));
            }
            if let Some(pattern) = pattern {
                put("pattern", Json::str(*pattern));
            }
        }
        KeyType::Url { placeholders } => {
            put("type", Json::str("string"));
            // `{{…}}` is not valid in a URI, so an endpoint is not one until filled.
            if !placeholders {
                put("format", Json::str("uri"));
            }
            put("pattern", Json::str(URL_PATTERN));
        }
        KeyType::Path => {
            put("type", Json::str("string"));
            put("pattern", Json::str(PATH_PATTERN));
        }
        KeyType::DateTime => {
            put("type", Json::str("string"));
            put("format", Json::str("date-time"));
        }
        KeyType::Integer { min, max, .. } => {
            put("type", Json::str("integer"));
            put("minimum", Json::int(*min));
            put("maximum", Json::int(*max));
        }
        KeyType::Boolean => put("type", Json::str("boolean")),
        KeyType::Choice(words) => {
            put("type", Json::str("string"));
            put(
                "enum",
                Json::Array(words.iter().map(|w| Json::str(*w)).collect()),
            );
        }
        KeyType::List { item, max_items } => {
            put("type", Json::str("array"));
            put("items", type_schema(item));
            if let Some(max) = max_items {
                put("maxItems", Json::int(i64::from(*max)));
            }
        }
        KeyType::Record(record) => {
            put("type", Json::str("object"));
            put("additionalProperties", Json::Bool(false));
            let properties = record
                .iter()
                .map(|f| {
                    let Json::Object(mut schema) = type_schema(&f.ty) else {
                        return (f.name.to_string(), type_schema(&f.ty));
                    };
                    schema.insert(0, ("description".into(), Json::str(f.description)));
                    (f.name.to_string(), Json::Object(schema))
                })
                .collect();
            put("properties", Json::Object(properties));
            let required: Vec<Json> = record
                .iter()
                .filter(|f| f.required)
                .map(|f| Json::str(f.name))
                .collect();
            if !required.is_empty() {
                put("required", Json::Array(required));
            }
        }
        KeyType::Map { keys, value } => {
            put("type", Json::str("object"));
            put("additionalProperties", Json::Bool(false));
            put(
                "properties",
                Json::Object(
                    keys.iter()
                        .map(|k| (k.to_string(), type_schema(value)))
                        .collect(),
                ),
            );
        }
    }
    Json::Object(fields)
}
