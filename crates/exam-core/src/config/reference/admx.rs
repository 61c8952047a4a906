//! The Windows Group Policy templates: `ExamDesktop.admx` (the policies, for
//! `PolicyDefinitions\`) and `en-US\ExamDesktop.adml` (their words). One policy per key, for
//! the computer and the user alike, writing the value the registry reader expects under
//! `Software\Policies\ExamDesktop`: named by the dotted key, REG_DWORD 1/0 for yes/no,
//! REG_DWORD or REG_QWORD for integers, REG_MULTI_SZ for lists, REG_SZ for the rest (tables
//! as JSON).

use std::fmt::Write;

use super::{describe, sections, xml_escape as x};
use crate::config::policy::REGISTRY_KEY;
use crate::config::specs::{KeySpec, KeyType};

const NAMESPACE: &str = "ExamBank.Policies.ExamDesktop";
const ROOT: &str = "ExamDesktop";
const SUPPORTED: &str = "SUPPORTED_ExamDesktop";
const XMLNS: &str = r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" revision="1.0" schemaVersion="1.0" xmlns="http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions""#;
/// (An XML comment may not hold "--", so not the command itself.)
const GENERATED: &str = "<!-- Generated from crates/exam-core/src/config/specs.rs: do not edit; \
    docs/policies/README.md says how to regenerate. -->";
/// What a text box may hold: a table's JSON or a URL can be long.
const LONG_TEXT: u32 = 32_767;

fn id(spec: &KeySpec) -> String {
    spec.name.replace('.', "_")
}

/// (ADMX, ADML).
pub(super) fn render() -> (String, String) {
    let mut admx = String::new();
    let mut strings: Vec<(String, String)> = vec![
        (ROOT.into(), "Exam Bank Desktop".into()),
        (
            SUPPORTED.into(),
            "Exam Bank Desktop, versions that read policies".into(),
        ),
    ];
    let mut presentations = String::new();

    let _ = writeln!(admx, r#"<?xml version="1.0" encoding="utf-8"?>"#);
    let _ = writeln!(admx, "{GENERATED}");
    let _ = writeln!(admx, "<policyDefinitions {XMLNS}>");
    let _ = writeln!(admx, "  <policyNamespaces>");
    let _ = writeln!(
        admx,
        r#"    <target prefix="examdesktop" namespace="{NAMESPACE}" />"#
    );
    let _ = writeln!(admx, "  </policyNamespaces>");
    let _ = writeln!(admx, r#"  <resources minRequiredRevision="1.0" />"#);
    let _ = writeln!(admx, "  <supportedOn>\n    <definitions>");
    let _ = writeln!(
        admx,
        r#"      <definition name="{SUPPORTED}" displayName="$(string.{SUPPORTED})" />"#
    );
    let _ = writeln!(admx, "    </definitions>\n  </supportedOn>");
    let _ = writeln!(admx, "  <categories>");
    let _ = writeln!(
        admx,
        r#"    <category name="{ROOT}" displayName="$(string.{ROOT})" />"#
    );
    for (section, title, _) in sections() {
        let name = format!("{ROOT}_{section}");
        let _ = writeln!(
            admx,
            r#"    <category name="{name}" displayName="$(string.{name})">"#
        );
        let _ = writeln!(admx, r#"      <parentCategory ref="{ROOT}" />"#);
        let _ = writeln!(admx, "    </category>");
        strings.push((name, title.to_string()));
    }
    let _ = writeln!(admx, "  </categories>");
    let _ = writeln!(admx, "  <policies>");
    for (section, _, keys) in sections() {
        for spec in keys {
            policy(&mut admx, &mut presentations, &mut strings, section, spec);
        }
    }
    let _ = writeln!(admx, "  </policies>");
    let _ = writeln!(admx, "</policyDefinitions>");

    let mut adml = String::new();
    let _ = writeln!(adml, r#"<?xml version="1.0" encoding="utf-8"?>"#);
    let _ = writeln!(adml, "{GENERATED}");
    let _ = writeln!(adml, "<policyDefinitionResources {XMLNS}>");
    let _ = writeln!(adml, "  <displayName>Exam Bank Desktop</displayName>");
    let _ = writeln!(
        adml,
        "  <description>Policies of Exam Bank Desktop, the offline-first exam client.</description>"
    );
    let _ = writeln!(adml, "  <resources>\n    <stringTable>");
    for (name, text) in &strings {
        let _ = writeln!(adml, r#"      <string id="{name}">{}</string>"#, x(text));
    }
    let _ = writeln!(adml, "    </stringTable>\n    <presentationTable>");
    adml.push_str(&presentations);
    let _ = writeln!(adml, "    </presentationTable>\n  </resources>");
    let _ = writeln!(adml, "</policyDefinitionResources>");
    (admx, adml)
}

fn policy(
    admx: &mut String,
    presentations: &mut String,
    strings: &mut Vec<(String, String)>,
    section: &str,
    spec: &KeySpec,
) {
    let id = id(spec);
    let name = spec.name;
    strings.push((id.clone(), format!("{} ({name})", spec.title)));
    strings.push((format!("{id}_Explain"), explain(spec)));
    let common = format!(
        r#"name="{id}" class="Both" displayName="$(string.{id})" explainText="$(string.{id}_Explain)" key="{REGISTRY_KEY}""#
    );
    let head = |admx: &mut String| {
        let _ = writeln!(admx, r#"      <parentCategory ref="{ROOT}_{section}" />"#);
        let _ = writeln!(admx, r#"      <supportedOn ref="{SUPPORTED}" />"#);
    };
    if spec.ty == KeyType::Boolean {
        // Enabled writes 1, Disabled 0, Not configured nothing: a yes/no is the policy itself.
        let _ = writeln!(admx, r#"    <policy {common} valueName="{name}">"#);
        head(admx);
        let _ = writeln!(
            admx,
            r#"      <enabledValue><decimal value="1" /></enabledValue>"#
        );
        let _ = writeln!(
            admx,
            r#"      <disabledValue><decimal value="0" /></disabledValue>"#
        );
        let _ = writeln!(admx, "    </policy>");
        return;
    }
    let _ = writeln!(
        admx,
        r#"    <policy {common} presentation="$(presentation.{id})">"#
    );
    head(admx);
    let _ = writeln!(admx, "      <elements>");
    let label = x(spec.title);
    let default = x(spec.default);
    let _ = writeln!(presentations, r#"      <presentation id="{id}">"#);
    match &spec.ty {
        KeyType::Integer { min, max, .. } => {
            let (element, textbox) = if *max > i64::from(u32::MAX) {
                ("longDecimal", "longDecimalTextBox")
            } else {
                ("decimal", "decimalTextBox")
            };
            let _ = writeln!(
                admx,
                r#"        <{element} id="{id}" valueName="{name}" minValue="{min}" maxValue="{max}" required="true" />"#
            );
            let _ = writeln!(
                presentations,
                r#"        <{textbox} refId="{id}" defaultValue="{default}">{label}</{textbox}>"#
            );
        }
        KeyType::Choice(words) => {
            let _ = writeln!(
                admx,
                r#"        <enum id="{id}" valueName="{name}" required="true">"#
            );
            for word in *words {
                let item = format!("{id}_{word}");
                let _ = writeln!(
                    admx,
                    r#"          <item displayName="$(string.{item})"><value><string>{word}</string></value></item>"#
                );
                strings.push((item, word.to_string()));
            }
            let _ = writeln!(admx, "        </enum>");
            let default_item = words.iter().position(|w| *w == spec.default).unwrap_or(0);
            let _ = writeln!(
                presentations,
                r#"        <dropdownList refId="{id}" noSort="true" defaultItem="{default_item}">{label}</dropdownList>"#
            );
        }
        KeyType::List { .. } if !spec.ty.is_table() => {
            let _ = writeln!(
                admx,
                r#"        <multiText id="{id}" valueName="{name}" required="true" />"#
            );
            let _ = writeln!(
                presentations,
                r#"        <multiTextBox refId="{id}">{label} (one per line)</multiTextBox>"#
            );
        }
        ty => {
            let max = match ty {
                KeyType::Text {
                    max_len: Some(max), ..
                } => *max,
                _ => LONG_TEXT,
            };
            let _ = writeln!(
                admx,
                r#"        <text id="{id}" valueName="{name}" maxLength="{max}" required="true" />"#
            );
            let suffix = if ty.is_table() { " (JSON)" } else { "" };
            let _ = writeln!(presentations, r#"        <textBox refId="{id}">"#);
            let _ = writeln!(presentations, "          <label>{label}{suffix}</label>");
            if !spec.default.is_empty() {
                let _ = writeln!(
                    presentations,
                    "          <defaultValue>{default}</defaultValue>"
                );
            }
            let _ = writeln!(presentations, "        </textBox>");
        }
    }
    let _ = writeln!(presentations, "      </presentation>");
    let _ = writeln!(admx, "      </elements>");
    let _ = writeln!(admx, "    </policy>");
}

/// The help text beside a policy.
fn explain(spec: &KeySpec) -> String {
    let default = if spec.default.is_empty() {
        "not set"
    } else {
        spec.default
    };
    let mut text = format!(
        "{}\n\nValue: {} ({}).\nDefault: {default}.\nRegistry: {} value \"{}\" under {REGISTRY_KEY}.",
        spec.description,
        describe(&spec.ty),
        spec.name,
        spec.ty.registry_type(),
        spec.name,
    );
    if spec.ty.is_table() {
        text.push_str("\nWrite the table as JSON, for example: ");
        text.push_str(&super::Json::from_value(&super::example(spec)).compact());
    }
    text.push_str(
        "\n\nA policy is forced: the user's settings file, environment variables and command-line \
         flags cannot change it. The computer's policy wins over the user's.",
    );
    text
}
