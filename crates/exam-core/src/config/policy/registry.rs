//! Windows policies: Group Policy's `Software\Policies\ExamDesktop`, in `HKEY_CURRENT_USER`
//! and then `HKEY_LOCAL_MACHINE` (the machine wins, as in browsers). One value per key, named
//! by the dotted key: REG_SZ for text, REG_DWORD for integers and yes/no (1/0), REG_QWORD for
//! integers beyond 32 bits, REG_MULTI_SZ for lists of text, and a REG_SZ holding JSON for the
//! tables (`security.add_programs`, `analytics.insights`, `update.freeze`) — the shapes the
//! generated ADMX template writes.
//!
//! [`registry_document`] turns the values into the document the parser reads, on every
//! platform; only [`read_hive`] touches the registry.

use super::{insert_dotted, parse_document, Located, PolicyRead};
use crate::config::specs::{spec, KeyType};

/// The policy key, under either hive.
pub const REGISTRY_KEY: &str = r"Software\Policies\ExamDesktop";

/// A registry value as the policy reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryValue {
    /// REG_SZ or REG_EXPAND_SZ (not expanded: no key holds a path to expand).
    String(String),
    Dword(u32),
    Qword(u64),
    MultiString(Vec<String>),
    /// Any other type, by name (REG_BINARY…): refused.
    Other(String),
}

/// Where policies are read from, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hive {
    CurrentUser,
    LocalMachine,
}

impl Hive {
    /// The full path of the policy key, as diagnostics show it.
    pub fn origin(self) -> String {
        let hive = match self {
            Hive::CurrentUser => "HKEY_CURRENT_USER",
            Hive::LocalMachine => "HKEY_LOCAL_MACHINE",
        };
        format!(r"{hive}\{REGISTRY_KEY}")
    }
}

/// The values of the policy key as a policy document. Err: the value name and what is wrong
/// with it. Names are matched without regard to case, as the registry does.
pub fn registry_document(
    values: &[(String, RegistryValue)],
) -> Result<serde_json::Value, (String, String)> {
    let mut doc = serde_json::Map::new();
    for (name, value) in values {
        let spec = spec(&name.to_ascii_lowercase());
        let key = spec.map_or(name.as_str(), |s| s.name);
        let converted = convert(key, spec.map(|s| &s.ty), value)
            .map_err(|message| (key.to_string(), message))?;
        insert_dotted(&mut doc, key, converted);
    }
    Ok(serde_json::Value::Object(doc))
}

fn convert(
    key: &str,
    ty: Option<&KeyType>,
    value: &RegistryValue,
) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match (ty, value) {
        (Some(KeyType::Boolean), RegistryValue::Dword(n)) => match n {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            n => return Err(format!("REG_DWORD {n}: a yes/no value is 1 or 0")),
        },
        (Some(ty), RegistryValue::String(text)) if ty.is_table() => serde_json::from_str(text)
            .map_err(|e| {
                format!("this REG_SZ holds the table {key} as JSON, which is malformed: {e}")
            })?,
        (_, RegistryValue::String(text)) => Value::String(text.clone()),
        (_, RegistryValue::Dword(n)) => Value::from(*n),
        (_, RegistryValue::Qword(n)) => Value::from(*n),
        (_, RegistryValue::MultiString(items)) => Value::Array(
            items
                .iter()
                // The registry editor leaves an empty string for a blank line.
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.clone()))
                .collect(),
        ),
        (_, RegistryValue::Other(kind)) => {
            return Err(format!(
                "{kind} is not read; use REG_SZ, REG_DWORD, REG_QWORD or REG_MULTI_SZ as the ADMX \
                 template does"
            ))
        }
    })
}

/// One hive's values as a policy source.
pub(super) fn from_values(values: &[(String, RegistryValue)]) -> PolicyRead {
    let doc = match registry_document(values) {
        Ok(doc) => doc,
        Err((key, message)) => {
            return PolicyRead::Invalid(Located {
                key: Some(key),
                ..Located::message(message)
            })
        }
    };
    PolicyRead::from_result(parse_document(doc))
}

/// Both hives, lowest first.
pub(super) fn read_all() -> Vec<(String, PolicyRead)> {
    [Hive::CurrentUser, Hive::LocalMachine]
        .into_iter()
        .map(|hive| {
            let read = match read_hive(hive) {
                Ok(None) => PolicyRead::Absent,
                Ok(Some(values)) => from_values(&values),
                Err(e) => PolicyRead::Invalid(Located::message(format!(
                    "cannot read the registry key: {e}"
                ))),
            };
            (hive.origin(), read)
        })
        .collect()
}

/// The values of the policy key of `hive`; None when there is no such key.
#[cfg(windows)]
fn read_hive(hive: Hive) -> std::io::Result<Option<Vec<(String, RegistryValue)>>> {
    use winreg::enums::{RegType, KEY_READ};
    use winreg::types::FromRegValue;
    let root = match hive {
        Hive::CurrentUser => winreg::HKCU,
        Hive::LocalMachine => winreg::HKLM,
    };
    let key = match root.open_subkey_with_flags(REGISTRY_KEY, KEY_READ) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut values = Vec::new();
    for item in key.enum_values() {
        let (name, raw) = item?;
        let value = match raw.vtype {
            RegType::REG_SZ | RegType::REG_EXPAND_SZ => {
                RegistryValue::String(String::from_reg_value(&raw)?)
            }
            RegType::REG_DWORD => RegistryValue::Dword(u32::from_reg_value(&raw)?),
            RegType::REG_QWORD => RegistryValue::Qword(u64::from_reg_value(&raw)?),
            RegType::REG_MULTI_SZ => {
                RegistryValue::MultiString(Vec::<String>::from_reg_value(&raw)?)
            }
            ref other => RegistryValue::Other(format!("{other:?}")),
        };
        values.push((name, value));
    }
    Ok(Some(values))
}

/// No registry here: both hives are absent.
#[cfg(not(windows))]
fn read_hive(_hive: Hive) -> std::io::Result<Option<Vec<(String, RegistryValue)>>> {
    Ok(None)
}
