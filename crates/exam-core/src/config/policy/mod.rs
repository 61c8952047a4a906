//! The platform's policies: configuration the way IT already manages it — JSON files on Linux
//! (as browsers read them from `/etc`), Group Policy on Windows, managed preferences
//! (configuration profiles) on macOS.
//!
//! Each source becomes the same document a TOML file is (a tree of tables, keyed as the dotted
//! names say) and goes through the same typed parser, so a value is checked identically
//! wherever it comes from. A source applies whole or not at all, like a file: a bad value makes
//! it a located [`super::ConfigProblem`] and it contributes nothing. Every key a source sets is
//! forced — the user file, the environment and the command line cannot change it — the way
//! browsers treat enterprise policies; `locked` therefore has no meaning here and is refused.
//!
//! Only the reading of the registry is Windows code, and only the choice of the plist paths is
//! macOS code: the conversions are plain functions, tested everywhere.

use std::path::PathBuf;

use super::file::Partial;
use super::layers::Builder;
use super::Layer;

mod json;
mod managed_prefs;
mod registry;
#[cfg(test)]
mod tests;

pub use managed_prefs::plist_document;
pub use registry::{registry_document, Hive, RegistryValue, REGISTRY_KEY};

/// The Linux directory of JSON policies.
pub const POLICY_DIR: &str = "/etc/exam-desktop/policies";
/// The macOS preference domain of the managed preferences.
pub const PREFERENCE_DOMAIN: &str = "org.exambank.desktop";
const MANAGED_PREFERENCES: &str = "/Library/Managed Preferences";

/// Where loading looks for policies. The default is none at all, so that a test never reads
/// the policies of the computer it runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyInputs {
    /// Every `*.json` file of this directory, by name (later files win per key).
    pub json_dir: Option<PathBuf>,
    /// Property lists of managed preferences, lowest first (later files win per key).
    pub plist_files: Vec<PathBuf>,
    /// `HKCU` then `HKLM` `\Software\Policies\ExamDesktop` (the machine wins). Read on
    /// Windows only; elsewhere both are reported absent.
    pub registry: bool,
}

impl PolicyInputs {
    /// The policy sources of the platform this runs on.
    pub fn for_this_platform() -> Self {
        if cfg!(windows) {
            Self {
                registry: true,
                ..Self::default()
            }
        } else if cfg!(target_os = "macos") {
            // The account's own forced preferences. Changing USER can only name another
            // account's, which are just as managed.
            let user = std::env::var("USER").ok();
            Self {
                plist_files: managed_preference_paths(user.as_deref()),
                ..Self::default()
            }
        } else {
            Self {
                json_dir: Some(policy_dir_path()),
                ..Self::default()
            }
        }
    }
}

/// The Linux directory of JSON policies.
pub fn policy_dir_path() -> PathBuf {
    PathBuf::from(POLICY_DIR)
}

/// The macOS managed preference files, lowest first: the computer's, then `user`'s (which wins,
/// as forced preferences for that user do).
pub fn managed_preference_paths(user: Option<&str>) -> Vec<PathBuf> {
    let base = PathBuf::from(MANAGED_PREFERENCES);
    let file = format!("{PREFERENCE_DOMAIN}.plist");
    let mut paths = vec![base.join(&file)];
    // A name that could leave the directory is not a user's.
    if let Some(user) =
        user.filter(|u| !u.is_empty() && !u.contains(['/', '\\', '\0']) && *u != "." && *u != "..")
    {
        paths.push(base.join(user).join(file));
    }
    paths
}

/// What is wrong with a source, and where.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Located {
    pub(super) line: Option<u32>,
    pub(super) column: Option<u32>,
    pub(super) key: Option<String>,
    pub(super) message: String,
}

impl Located {
    fn message(message: impl Into<String>) -> Self {
        Located {
            message: message.into(),
            ..Located::default()
        }
    }
}

/// One source, read.
#[derive(Debug)]
pub(super) enum PolicyRead {
    Absent,
    Invalid(Located),
    Read(Box<Partial>),
}

impl PolicyRead {
    fn from_result(result: Result<Partial, Located>) -> Self {
        match result {
            Ok(partial) => PolicyRead::Read(Box::new(partial)),
            Err(at) => PolicyRead::Invalid(at),
        }
    }
}

/// Applies every policy source of `inputs`, in order, to the Policy layer.
pub(super) fn apply(builder: &mut Builder, inputs: &PolicyInputs) {
    let mut sources = Vec::new();
    if let Some(dir) = &inputs.json_dir {
        sources.extend(json::read_dir(dir));
    }
    for path in &inputs.plist_files {
        sources.push((path.display().to_string(), managed_prefs::read(path)));
    }
    if inputs.registry {
        sources.extend(registry::read_all());
    }
    if sources.is_empty() {
        builder.absent(Layer::Policy, "no policy source on this platform".into());
    }
    for (origin, read) in sources {
        builder.policy_source(origin, read);
    }
}

const LOCKED_IN_POLICY: &str = "\"locked\" has no meaning in a policy: every key a policy sets \
    is forced already (lock keys in the managed TOML file)";

/// A policy document (the JSON shape of the TOML file) as the parser's values.
pub(super) fn parse_document(doc: serde_json::Value) -> Result<Partial, Located> {
    match doc.as_object() {
        None => return Err(Located::message(not_an_object(&doc))),
        Some(map) if map.contains_key("locked") => {
            return Err(Located {
                key: Some("locked".into()),
                ..Located::message(LOCKED_IN_POLICY)
            })
        }
        Some(_) => {}
    }
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let message = e.inner().to_string();
        Located {
            key: key_of(&e.path().to_string(), &message),
            ..Located::message(message)
        }
    })
}

fn not_an_object(doc: &serde_json::Value) -> String {
    let found = match doc {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    };
    format!("a policy holds one object of keys and values (like the TOML file), not {found}")
}

/// The dotted key a parser error is about: its path, plus the field it did not know.
fn key_of(path: &str, message: &str) -> Option<String> {
    let mut key = match path {
        "." | "?" => String::new(),
        path => path.to_string(),
    };
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    if let Some(field) = unknown {
        if !key.ends_with(field) {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(field);
        }
    }
    (!key.is_empty()).then_some(key)
}

/// Puts `value` at the dotted `key` of `doc`, merging with tables already there (so
/// `update.pin` and a dictionary `update` both land in `update`).
pub(super) fn insert_dotted(
    doc: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    value: serde_json::Value,
) {
    match key.split_once('.') {
        None => match (doc.get_mut(key), value) {
            (Some(serde_json::Value::Object(existing)), serde_json::Value::Object(more)) => {
                for (k, v) in more {
                    insert_dotted(existing, &k, v);
                }
            }
            (_, value) => {
                doc.insert(key.to_string(), value);
            }
        },
        Some((head, rest)) => {
            let entry = doc
                .entry(head.to_string())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            // Anything but a table there is the parser's to refuse.
            if let serde_json::Value::Object(table) = entry {
                insert_dotted(table, rest, value);
            }
        }
    }
}

/// Line and column (from 1) of a byte offset.
fn position(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}
