//! Linux policies: the `*.json` files of `/etc/exam-desktop/policies/`, each an object shaped
//! like the TOML file, applied in the order of their names (`10-school.json` before
//! `20-lab.json`), as browsers read theirs. Errors name the file, line, column and key.

use std::path::Path;

use super::{position, Located, PolicyRead, LOCKED_IN_POLICY};
use crate::config::file::Partial;

/// Every policy file of `dir`, by name, read; or the directory itself, absent.
pub(super) fn read_dir(dir: &Path) -> Vec<(String, PolicyRead)> {
    let origin = dir.display().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return vec![(origin, PolicyRead::Absent)];
        }
        Err(e) => {
            return vec![(
                origin,
                PolicyRead::Invalid(Located::message(format!(
                    "cannot read the policy directory: {e}"
                ))),
            )];
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json") && path.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return vec![(origin, PolicyRead::Absent)];
    }
    files
        .into_iter()
        .map(|path| (path.display().to_string(), read_file(&path)))
        .collect()
}

fn read_file(path: &Path) -> PolicyRead {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => PolicyRead::from_result(parse(&text)),
            Err(e) => {
                let text = String::from_utf8_lossy(e.as_bytes());
                let (line, column) = position(&text, e.utf8_error().valid_up_to());
                PolicyRead::Invalid(Located {
                    line: Some(line),
                    column: Some(column),
                    ..Located::message("the file is not UTF-8 text")
                })
            }
        },
        // Removed between listing and reading: as if it had never been there.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => PolicyRead::Absent,
        Err(e) => PolicyRead::Invalid(Located::message(format!("cannot read the file: {e}"))),
    }
}

/// One policy file's text as the parser's values.
pub(super) fn parse(text: &str) -> Result<Partial, Located> {
    // Syntax first, over the whole text, so a broken file is reported where it breaks.
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| located(&e, None))?;
    let Some(map) = doc.as_object() else {
        return Err(Located {
            line: Some(1),
            column: Some(1),
            ..Located::message(super::not_an_object(&doc))
        });
    };
    if map.contains_key("locked") {
        let (line, column) = text.find("\"locked\"").map_or((None, None), |at| {
            let (l, c) = position(text, at);
            (Some(l), Some(c))
        });
        return Err(Located {
            line,
            column,
            key: Some("locked".into()),
            message: LOCKED_IN_POLICY.into(),
        });
    }
    // Then the values, from the text again so that errors keep their place.
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let key = super::key_of(&e.path().to_string(), &e.inner().to_string());
        let mut at = located(e.inner(), key);
        // serde_json places an error in a value at the end of the table holding it: point at
        // the value itself, as for TOML.
        if let Some(offset) = at.key.as_deref().and_then(|key| value_offset(text, key)) {
            let (line, column) = position(text, offset);
            at.line = Some(line);
            at.column = Some(column);
        }
        at
    })
}

/// Where the value at `path` (`update.pin`, `update.freeze[0]`) starts in a JSON text that
/// parsed. A small scanner rather than a second parser: it only follows keys and indexes.
pub(super) fn value_offset(text: &str, path: &str) -> Option<usize> {
    #[derive(PartialEq)]
    enum Step {
        Key(String),
        Index(usize),
    }
    let mut target = Vec::new();
    for part in path.split('.') {
        let (name, indexes) = part
            .split_once('[')
            .map_or((part, ""), |(n, rest)| (n, rest));
        target.push(Step::Key(name.to_string()));
        for index in indexes.split('[') {
            let index = index.trim_end_matches(']');
            if !index.is_empty() {
                target.push(Step::Index(index.parse().ok()?));
            }
        }
    }
    // The path to the value about to start, and for each open container whether it is a table
    // (whose next string is a key) and, for a list, its next index.
    let mut current: Vec<Step> = Vec::new();
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut expect_key = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let value_starts = !b.is_ascii_whitespace() && !matches!(b, b',' | b':' | b'}' | b']');
        if value_starts && !expect_key && current == target {
            return Some(i);
        }
        match b {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if expect_key {
                    let key: String = serde_json::from_str(text.get(start - 1..=i)?).ok()?;
                    current.push(Step::Key(key));
                    expect_key = false;
                }
            }
            b'{' => {
                open.push(None);
                expect_key = true;
            }
            b'[' => {
                open.push(Some(0));
                current.push(Step::Index(0));
            }
            b',' => match open.last_mut() {
                Some(None) => {
                    current.pop();
                    expect_key = true;
                }
                Some(Some(index)) => {
                    *index += 1;
                    current.pop();
                    current.push(Step::Index(*index));
                }
                None => {}
            },
            b'}' => {
                // An empty table has no key to pop.
                if !expect_key {
                    current.pop();
                }
                expect_key = false;
                open.pop();
            }
            b']' => {
                current.pop();
                open.pop();
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn located(e: &serde_json::Error, key: Option<String>) -> Located {
    // serde_json says where in its own words; the problem has fields for that.
    let text = e.to_string();
    let message = match text.rsplit_once(" at line ") {
        Some((message, _)) if e.line() > 0 => message.to_string(),
        _ => text,
    };
    Located {
        line: (e.line() > 0).then(|| u32::try_from(e.line()).unwrap_or(u32::MAX)),
        column: (e.line() > 0).then(|| u32::try_from(e.column()).unwrap_or(u32::MAX)),
        key,
        message,
    }
}
