//! macOS policies: the managed preferences of the domain `org.exambank.desktop`, which a
//! configuration profile (`com.apple.ManagedClient.preferences`, "Forced") makes the system
//! write to `/Library/Managed Preferences/`. Keys are the dotted names; values are plist
//! strings, integers, booleans, arrays and dictionaries (a date is taken as its RFC 3339 text).
//! The file may be XML or binary: the `plist` crate reads both, here as on macOS.

use std::path::Path;

use super::{insert_dotted, parse_document, position, Located, PolicyRead};

pub(super) fn read(path: &Path) -> PolicyRead {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return PolicyRead::Absent,
        Err(e) => {
            return PolicyRead::Invalid(Located::message(format!("cannot read the file: {e}")))
        }
    };
    let value = match plist::Value::from_reader(std::io::Cursor::new(&bytes)) {
        Ok(value) => value,
        Err(e) => {
            return PolicyRead::Invalid(Located::message(format!(
                "the file is not a property list: {e}"
            )))
        }
    };
    let result = plist_document(&value)
        .map_err(|(key, message)| Located {
            key: Some(key),
            ..Located::message(message)
        })
        .and_then(parse_document);
    match result {
        Ok(partial) => PolicyRead::Read(Box::new(partial)),
        Err(mut at) => {
            // An XML file has lines: point at the key.
            if let (Ok(text), Some(key)) = (std::str::from_utf8(&bytes), at.key.as_deref()) {
                if let Some(offset) = key_offset(text, key) {
                    let (line, column) = position(text, offset);
                    at.line = Some(line);
                    at.column = Some(column);
                }
            }
            PolicyRead::Invalid(at)
        }
    }
}

/// Where `<key>` names `key` (or the table it is in) in an XML property list.
fn key_offset(text: &str, key: &str) -> Option<usize> {
    let mut candidate = key;
    loop {
        if let Some(at) = text.find(&format!("<key>{candidate}</key>")) {
            return Some(at);
        }
        // `update.freeze[0].to` → `update.freeze` → `update`.
        let cut = candidate.rfind(['.', '['])?;
        candidate = &candidate[..cut];
    }
}

/// A property list of managed preferences as a policy document. Err: the key and what is
/// wrong with its value.
pub fn plist_document(value: &plist::Value) -> Result<serde_json::Value, (String, String)> {
    let plist::Value::Dictionary(dict) = value else {
        return Err((
            String::new(),
            "the property list holds no dictionary of preferences".into(),
        ));
    };
    let mut doc = serde_json::Map::new();
    for (key, value) in dict {
        insert_dotted(&mut doc, key, convert(key, value)?);
    }
    Ok(serde_json::Value::Object(doc))
}

fn convert(key: &str, value: &plist::Value) -> Result<serde_json::Value, (String, String)> {
    use serde_json::Value;
    let refuse = |kind: &str| {
        Err((
            key.to_string(),
            format!(
                "a {kind} value is not read; use a string, integer, boolean, array or dictionary"
            ),
        ))
    };
    Ok(match value {
        plist::Value::String(s) => Value::String(s.clone()),
        plist::Value::Boolean(b) => Value::Bool(*b),
        plist::Value::Integer(i) => match (i.as_signed(), i.as_unsigned()) {
            (Some(n), _) => Value::from(n),
            (None, Some(n)) => Value::from(n),
            (None, None) => return refuse("integer"),
        },
        // Kept as a number: the parser says an integer was expected, with the key.
        plist::Value::Real(r) => {
            serde_json::Number::from_f64(*r).map_or(Value::Null, Value::Number)
        }
        plist::Value::Date(d) => Value::String(d.to_xml_format()),
        plist::Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| convert(key, item))
                .collect::<Result<_, _>>()?,
        ),
        plist::Value::Dictionary(dict) => {
            let mut map = serde_json::Map::new();
            for (k, v) in dict {
                map.insert(k.clone(), convert(&format!("{key}.{k}"), v)?);
            }
            Value::Object(map)
        }
        plist::Value::Data(_) => return refuse("data"),
        plist::Value::Uid(_) => return refuse("UID"),
        _ => return refuse("new kind of"),
    })
}
