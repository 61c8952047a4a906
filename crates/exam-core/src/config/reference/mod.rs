//! The reference IT reads, generated from [`super::SPECS`]: `docs/policies/README.md` (every
//! key, where to set it, the layers' order), a JSON Schema of the policy document, the Windows
//! ADMX/ADML templates, a macOS configuration profile and a Linux policy file. A test writes
//! them when `UPDATE_POLICY_DOCS=1` and otherwise fails when the committed copy differs, so the
//! documentation changes in the same commit as the keys.
//!
//! Output is byte-for-byte stable: JSON goes through [`Json`], whose objects keep the order
//! they are built in (serde_json's map order depends on a feature other crates of the
//! workspace switch on).

use super::specs::{KeySpec, KeyType};

mod admx;
mod examples;
mod markdown;
mod schema;
#[cfg(test)]
mod tests;

/// Where the generated files go, from the root of the repository.
pub const DOCS_DIR: &str = "docs/policies";
/// How to regenerate them.
pub const REGENERATE: &str = "UPDATE_POLICY_DOCS=1 cargo test -p exam-core --lib config::reference";

/// Every generated file: its path from the root of the repository, and its contents.
pub fn render_all() -> Vec<(String, String)> {
    let (admx, adml) = admx::render();
    [
        ("README.md", markdown::render()),
        ("exam-desktop.schema.json", schema::render()),
        ("windows/ExamDesktop.admx", admx),
        ("windows/en-US/ExamDesktop.adml", adml),
        (
            "macos/org.exambank.desktop.mobileconfig",
            examples::mobileconfig(),
        ),
        ("linux/policies.example.json", examples::linux_policy()),
    ]
    .into_iter()
    .map(|(path, contents)| (format!("{DOCS_DIR}/{path}"), contents))
    .collect()
}

/// A JSON value whose objects keep their order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json {
    Bool(bool),
    /// Already in JSON form.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub(super) fn str(text: impl Into<String>) -> Json {
        Json::String(text.into())
    }

    pub(super) fn int(n: i64) -> Json {
        Json::Number(n.to_string())
    }

    pub(super) fn object<const N: usize>(fields: [(&str, Json); N]) -> Json {
        Json::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    /// `value` with its objects' keys sorted, whatever order serde_json kept.
    pub(super) fn from_value(value: &serde_json::Value) -> Json {
        use serde_json::Value;
        match value {
            Value::Null => Json::Number("null".into()),
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.to_string()),
            Value::String(s) => Json::String(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Json::from_value).collect()),
            Value::Object(map) => {
                let mut fields: Vec<_> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), Json::from_value(v)))
                    .collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                Json::Object(fields)
            }
        }
    }

    /// On one line, with a space after `:` and `,` (for prose).
    pub(super) fn compact(&self) -> String {
        match self {
            Json::Bool(b) => b.to_string(),
            Json::Number(n) => n.clone(),
            Json::String(s) => quote(s),
            Json::Array(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(Json::compact)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Json::Object(fields) => format!(
                "{{{}}}",
                fields
                    .iter()
                    .map(|(k, v)| format!("{}: {}", quote(k), v.compact()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Indented by two spaces, ending with a newline.
    pub(super) fn pretty(&self) -> String {
        let mut out = String::new();
        self.write_pretty(&mut out, 0);
        out.push('\n');
        out
    }

    fn write_pretty(&self, out: &mut String, depth: usize) {
        let pad = |depth: usize| "  ".repeat(depth);
        match self {
            Json::Array(items) if !items.is_empty() => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    item.write_pretty(out, depth + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push(']');
            }
            Json::Object(fields) if !fields.is_empty() => {
                out.push_str("{\n");
                for (i, (key, value)) in fields.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    out.push_str(&quote(key));
                    out.push_str(": ");
                    value.write_pretty(out, depth + 1);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push('}');
            }
            other => out.push_str(&other.compact()),
        }
    }
}

/// A JSON string literal.
fn quote(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// The example value of `spec`.
pub(super) fn example(spec: &KeySpec) -> serde_json::Value {
    serde_json::from_str(spec.example).unwrap_or_else(|_| spec.example.into())
}

/// The default of `spec` as a value (None: not set).
pub(super) fn default_value(spec: &KeySpec) -> Option<serde_json::Value> {
    if spec.default.is_empty() {
        return None;
    }
    let text_like = matches!(
        spec.ty,
        KeyType::Text { .. } | KeyType::Url { .. } | KeyType::Path | KeyType::Choice(_)
    );
    if text_like {
        Some(spec.default.into())
    } else {
        serde_json::from_str(spec.default).ok()
    }
}

/// `doc` with `value` put at the dotted `key`.
pub(super) fn nest(key: &str, value: serde_json::Value) -> serde_json::Value {
    let mut doc = serde_json::Map::new();
    super::policy::insert_dotted(&mut doc, key, value);
    serde_json::Value::Object(doc)
}

/// The sections in the reference's order, each with its keys.
pub(super) fn sections() -> Vec<(&'static str, &'static str, Vec<&'static KeySpec>)> {
    super::specs::SECTIONS
        .iter()
        .map(|(section, title)| {
            let keys = super::SPECS
                .iter()
                .filter(|s| s.section() == *section)
                .collect();
            (*section, *title, keys)
        })
        .collect()
}

/// Text for XML content and attribute values.
pub(super) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The type of a key in words, for IT.
pub(super) fn describe(ty: &KeyType) -> String {
    match ty {
        KeyType::Text {
            min_len,
            max_len,
            pattern,
        } => {
            let mut text = match max_len {
                Some(max) => format!("text of {min_len} to {max} characters"),
                None => "text".to_string(),
            };
            if let Some(pattern) = pattern {
                text.push_str(&format!(" matching `{pattern}`"));
            }
            text
        }
        KeyType::Url { placeholders } => {
            let mut text =
                "URL: https://, or http:// to this computer only (127.0.0.1, ::1, localhost)"
                    .to_string();
            if *placeholders {
                text.push_str(
                    ", which may hold {{target}}, {{arch}}, {{current_version}}, {{bundle_type}}, \
                     {{channel}} and {{pin}}",
                );
            }
            text
        }
        KeyType::Path => "absolute path".into(),
        KeyType::DateTime => {
            "RFC 3339 date and time with its offset (2026-12-14T00:00:00+07:00)".into()
        }
        KeyType::Integer { min, max, unit } => format!("integer, {min} to {max} {unit}"),
        KeyType::Boolean => "true or false".into(),
        KeyType::Choice(words) => format!(
            "one of {}",
            words
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        KeyType::List { item, max_items } => {
            let mut text = format!("list of {}", describe(item));
            if let Some(max) = max_items {
                text.push_str(&format!(" (at most {max})"));
            }
            text
        }
        KeyType::Record(fields) => format!(
            "table of {}",
            fields
                .iter()
                .map(|f| format!("`{}`", f.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        KeyType::Map { keys, value } => format!(
            "table whose keys are among {}, each a {}",
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            describe(value)
        ),
    }
}
