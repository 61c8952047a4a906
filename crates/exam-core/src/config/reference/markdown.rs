//! `docs/policies/README.md`: every key, where and how to set it, and the order of the layers.

use std::fmt::Write;

use super::{default_value, describe, example, sections, Json, REGENERATE};
use crate::config::policy::{POLICY_DIR, PREFERENCE_DOMAIN, REGISTRY_KEY};
use crate::config::specs::{KeySpec, KeyType};

pub(super) fn render() -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Exam Bank Desktop: configuration and policies\n\n\
         <!-- Generated from crates/exam-core/src/config/specs.rs; do not edit. Regenerate with\n     \
         {REGENERATE} -->\n"
    );
    md.push_str(INTRO);
    let _ = writeln!(md, "\n## Every key\n");
    let _ = writeln!(md, "| key | type | default |\n|---|---|---|");
    for (_, _, keys) in sections() {
        for spec in keys {
            let _ = writeln!(
                md,
                "| [`{}`](#{}) | {} | {} |",
                spec.name,
                anchor(spec.name),
                cell(&short_type(&spec.ty)),
                cell(&default_text(spec)),
            );
        }
    }
    for (section, title, keys) in sections() {
        let table = if section == "general" {
            "top level".to_string()
        } else {
            format!("`[{section}]`")
        };
        let _ = writeln!(md, "\n## {title} ({table})");
        for spec in keys {
            key(&mut md, spec);
        }
    }
    md
}

const INTRO: &str = "\
Every key below can be set in a TOML file and in the policies of each platform. The app checks
every value the same way wherever it comes from: a value of the wrong type or out of range, or a
key that does not exist, is a problem that names the file (or registry key), line, column and key;
that source is then ignored as a whole, and the problem is shown in the app's diagnostics window
until it is fixed. The diagnostics window (and the doctor) also list every key's value and where
it came from.

## Where settings come from

From lowest to highest precedence:

| | layer | where | |
|---|---|---|---|
| 1 | built-in defaults | in the app | |
| 2 | managed file | Linux `/etc/exam-desktop/config.toml`, Windows `%ProgramData%\\ExamDesktop\\config.toml`, macOS `/Library/Application Support/ExamDesktop/config.toml` (TOML) | may `locked = [\"key\", …]` |
| 3 | policies | Linux: every `*.json` file of `/etc/exam-desktop/policies/`, by name (`10-school.json` before `20-lab.json`; a later file wins per key). Windows: `HKEY_CURRENT_USER\\Software\\Policies\\ExamDesktop`, then `HKEY_LOCAL_MACHINE\\Software\\Policies\\ExamDesktop` (the computer wins). macOS: the managed preferences of `org.exambank.desktop`, `/Library/Managed Preferences/org.exambank.desktop.plist`, then `/Library/Managed Preferences/<user>/org.exambank.desktop.plist` (the user's forced preferences win) | every key set is forced |
| 4 | user file | `~/.config/exam-desktop/config.toml` or its platform equivalent, or the file `EXAM_DESKTOP_CONFIG` names | |
| 5 | environment | `EXAM_DESKTOP_SERVER`, `EXAM_DESKTOP_DATA_DIR` | |
| 6 | command line | `--server URL`, `--data-dir PATH` | |

A key the managed file locks, or that a policy sets, cannot be changed by layers 4 to 6: what
they try is ignored and listed in the diagnostics. Policies are above the managed file, so a
policy also wins over it.

## How a key is written in each place

- **TOML** (managed and user files): the part before the dot is the table, `[update]` then
  `pin = \"1.4.\"`; top-level keys come before any table.
- **JSON policy**: the same shape, `{\"update\": {\"pin\": \"1.4.\"}}`. `locked` is refused
  there: everything a policy sets is forced already. See
  [`linux/policies.example.json`](linux/policies.example.json) and the schema
  [`exam-desktop.schema.json`](exam-desktop.schema.json).
- **Windows registry** (Group Policy): one value per key under `Software\\Policies\\ExamDesktop`,
  named by the dotted key (`update.pin`): REG_SZ for text, REG_DWORD for integers and yes/no
  (1 or 0), REG_QWORD for integers beyond 4294967295, REG_MULTI_SZ for lists of text, and REG_SZ
  holding JSON for tables. The templates [`windows/ExamDesktop.admx`](windows/ExamDesktop.admx)
  and [`windows/en-US/ExamDesktop.adml`](windows/en-US/ExamDesktop.adml) write exactly these
  (copy them to `PolicyDefinitions` and `PolicyDefinitions\\en-US`; the policies are under
  Administrative Templates › Exam Bank Desktop, for the computer or the user).
- **macOS** (configuration profile): keys are the dotted names, values plist strings, integers,
  booleans, arrays and dictionaries (a date may be a plist date), forced
  (`com.apple.ManagedClient.preferences`) for the domain `org.exambank.desktop`. See
  [`macos/org.exambank.desktop.mobileconfig`](macos/org.exambank.desktop.mobileconfig).
";

fn key(md: &mut String, spec: &KeySpec) {
    let value = example(spec);
    let _ = writeln!(md, "\n### `{}`\n", spec.name);
    let _ = writeln!(md, "**{}.** {}\n", spec.title, spec.description);
    let _ = writeln!(md, "- Type: {}", describe(&spec.ty));
    let fields = match &spec.ty {
        KeyType::Record(fields)
        | KeyType::List {
            item: KeyType::Record(fields),
            ..
        } => *fields,
        _ => &[],
    };
    for f in fields {
        let _ = writeln!(
            md,
            "  - `{}`{}: {} — {}",
            f.name,
            if f.required { " (required)" } else { "" },
            describe(&f.ty),
            f.description
        );
    }
    let _ = writeln!(md, "- Default: {}", default_text(spec));
    let toml_line = format!("{} = {}", spec.leaf(), toml_inline(&value));
    match spec.name.split_once('.') {
        Some((section, _)) => {
            let _ = writeln!(md, "- TOML file: `{toml_line}` in `[{section}]`");
        }
        None => {
            let _ = writeln!(md, "- TOML file: `{toml_line}`");
        }
    }
    let _ = writeln!(
        md,
        "- JSON policy (`{POLICY_DIR}/*.json`): `{}`",
        Json::from_value(&super::nest(spec.name, value.clone())).compact()
    );
    let _ = writeln!(
        md,
        "- Windows policy: value `{}` ({}) under `{REGISTRY_KEY}`, e.g. `{}`",
        spec.name,
        spec.ty.registry_type(),
        registry_data(&spec.ty, &value)
    );
    let _ = writeln!(
        md,
        "- macOS policy: key `{}` ({}) of `{PREFERENCE_DOMAIN}`, e.g. `{}`",
        spec.name,
        spec.ty.plist_type(),
        plist_fragment(&value)
    );
}

fn anchor(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn default_text(spec: &KeySpec) -> String {
    match default_value(spec) {
        None if spec.name == "data_dir" => "the account's local application data folder".into(),
        None => "not set".into(),
        Some(serde_json::Value::String(s)) => format!("`{s}`"),
        Some(value) => format!("`{}`", Json::from_value(&value).compact()),
    }
}

fn short_type(ty: &KeyType) -> String {
    match ty {
        KeyType::Text { .. } => "text".into(),
        KeyType::Url { .. } => "URL".into(),
        KeyType::Path => "path".into(),
        KeyType::DateTime => "date and time".into(),
        KeyType::Integer { min, max, unit } => format!("{min} to {max} {unit}"),
        KeyType::Boolean => "true/false".into(),
        KeyType::Choice(words) => words.join(" / "),
        KeyType::List { .. } if ty.is_table() => "list of tables".into(),
        KeyType::List { .. } => "list".into(),
        KeyType::Record(_) | KeyType::Map { .. } => "table".into(),
    }
}

/// A TOML value on one line (inline tables, keys sorted).
fn toml_inline(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // A JSON string literal is a TOML basic string.
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_inline).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .filter_map(|k| map.get(k).map(|v| format!("{k} = {}", toml_inline(v))))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
    }
}

/// The registry data for `value`.
fn registry_data(ty: &KeyType, value: &serde_json::Value) -> String {
    use serde_json::Value;
    match (ty, value) {
        (KeyType::Boolean, Value::Bool(b)) => u8::from(*b).to_string(),
        // Absolute on Windows means a drive or a share.
        (KeyType::Path, _) => r"D:\ExamDesktop".to_string(),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Array(items)) if !ty.is_table() => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(" ⏎ "),
        (_, other) => Json::from_value(other).compact(),
    }
}

/// `value` as plist XML on one line.
fn plist_fragment(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "<string></string>".into(),
        Value::Bool(true) => "<true/>".into(),
        Value::Bool(false) => "<false/>".into(),
        Value::Number(n) => format!("<integer>{n}</integer>"),
        Value::String(s) => format!("<string>{}</string>", super::xml_escape(s)),
        Value::Array(items) => format!(
            "<array>{}</array>",
            items.iter().map(plist_fragment).collect::<String>()
        ),
        Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            let fields: String = keys
                .into_iter()
                .filter_map(|k| {
                    map.get(k)
                        .map(|v| format!("<key>{k}</key>{}", plist_fragment(v)))
                })
                .collect();
            format!("<dict>{fields}</dict>")
        }
    }
}

#[cfg(test)]
pub(super) fn toml_example(spec: &KeySpec) -> String {
    let line = format!("{} = {}", spec.leaf(), toml_inline(&example(spec)));
    match spec.name.split_once('.') {
        Some((section, _)) => format!("[{section}]\n{line}\n"),
        None => format!("{line}\n"),
    }
}
