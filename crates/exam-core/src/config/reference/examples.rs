//! Ready-to-adapt policy files: a macOS configuration profile and a Linux policy file, with
//! values taken from the keys' examples (so the tests that load them also check the examples).

use super::{example, Json};
use crate::config::specs::spec;

/// The keys the macOS profile forces.
pub(super) const PROFILE_KEYS: &[&str] = &[
    "server_url",
    "update.pin",
    "update.channel",
    "update.freeze",
];
/// The keys the Linux example sets.
pub(super) const LINUX_KEYS: &[&str] = &[
    "server_url",
    "session.sign_out_on_quit",
    "session.idle_sign_out_min",
    "security.refuse_before_start",
    "update.mode",
    "update.channel",
    "update.pin",
    "update.quiet_before_exam_min",
    "update.freeze",
];

// Fixed, so that the file is the same at every generation; a school replaces them with its own.
const PROFILE_UUID: &str = "8A3E5C1F-2B4D-4E6A-9C7B-1D2E3F4A5B6C";
const PAYLOAD_UUID: &str = "5F0B7D2A-9E1C-4B3D-8A6F-7C8D9E0F1A2B";

fn example_of(key: &str) -> serde_json::Value {
    spec(key).map_or(serde_json::Value::Null, example)
}

/// `com.apple.ManagedClient.preferences` forcing a few keys for `org.exambank.desktop`.
pub(super) fn mobileconfig() -> String {
    use plist::{Dictionary, Value};
    let mut settings = Dictionary::new();
    for key in PROFILE_KEYS {
        settings.insert((*key).to_string(), to_plist(&example_of(key)));
    }
    let mut forced = Dictionary::new();
    forced.insert(
        "mcx_preference_settings".into(),
        Value::Dictionary(settings),
    );
    let mut domain = Dictionary::new();
    domain.insert(
        "Forced".into(),
        Value::Array(vec![Value::Dictionary(forced)]),
    );
    let mut content = Dictionary::new();
    content.insert(
        crate::config::policy::PREFERENCE_DOMAIN.into(),
        Value::Dictionary(domain),
    );

    let mut payload = Dictionary::new();
    payload.insert("PayloadContent".into(), Value::Dictionary(content));
    payload.insert(
        "PayloadDisplayName".into(),
        "Exam Bank Desktop preferences".into(),
    );
    payload.insert(
        "PayloadIdentifier".into(),
        "org.exambank.desktop.policies.preferences".into(),
    );
    payload.insert(
        "PayloadType".into(),
        "com.apple.ManagedClient.preferences".into(),
    );
    payload.insert("PayloadUUID".into(), PAYLOAD_UUID.into());
    payload.insert("PayloadVersion".into(), Value::Integer(1.into()));
    payload.insert("PayloadEnabled".into(), Value::Boolean(true));

    let mut profile = Dictionary::new();
    profile.insert(
        "PayloadContent".into(),
        Value::Array(vec![Value::Dictionary(payload)]),
    );
    profile.insert(
        "PayloadDescription".into(),
        "Forces the server, update channel, version pin and update freeze of Exam Bank \
         Desktop. Replace the values and both PayloadUUIDs with your own."
            .into(),
    );
    profile.insert(
        "PayloadDisplayName".into(),
        "Exam Bank Desktop policies".into(),
    );
    profile.insert(
        "PayloadIdentifier".into(),
        "org.exambank.desktop.policies".into(),
    );
    profile.insert("PayloadOrganization".into(), "Example School".into());
    profile.insert("PayloadScope".into(), "System".into());
    profile.insert("PayloadType".into(), "Configuration".into());
    profile.insert("PayloadUUID".into(), PROFILE_UUID.into());
    profile.insert("PayloadVersion".into(), Value::Integer(1.into()));

    let mut out = Vec::new();
    match Value::Dictionary(profile).to_writer_xml(&mut out) {
        Ok(()) => {
            let mut text = String::from_utf8_lossy(&out).into_owned();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text
        }
        // Writing to memory does not fail; should it, the test comparing files says so.
        Err(e) => format!("<!-- cannot write the profile: {e} -->\n"),
    }
}

fn to_plist(value: &serde_json::Value) -> plist::Value {
    use serde_json::Value;
    match value {
        Value::Null => plist::Value::String(String::new()),
        Value::Bool(b) => plist::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => plist::Value::Integer(i.into()),
            None => plist::Value::Real(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => plist::Value::String(s.clone()),
        Value::Array(items) => plist::Value::Array(items.iter().map(to_plist).collect()),
        Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            let mut dict = plist::Dictionary::new();
            for key in keys {
                if let Some(v) = map.get(key) {
                    dict.insert(key.clone(), to_plist(v));
                }
            }
            plist::Value::Dictionary(dict)
        }
    }
}

/// `/etc/exam-desktop/policies/10-school.json`, shaped like the TOML file.
pub(super) fn linux_policy() -> String {
    let mut sections: Vec<(String, Json)> = Vec::new();
    for key in LINUX_KEYS {
        let value = Json::from_value(&example_of(key));
        match key.split_once('.') {
            None => sections.push((key.to_string(), value)),
            Some((section, leaf)) => {
                let position = sections.iter().position(|(name, _)| name == section);
                let index = position.unwrap_or_else(|| {
                    sections.push((section.to_string(), Json::Object(Vec::new())));
                    sections.len() - 1
                });
                if let Json::Object(fields) = &mut sections[index].1 {
                    fields.push((leaf.to_string(), value));
                }
            }
        }
    }
    Json::Object(sections).pretty()
}
