//! Every key's value as the app runs with it, and where it came from: what the doctor and the
//! diagnostics window show IT when a computer does not do what its policies say.

use serde::Serialize;

use super::{Layer, LoadedConfig, Settings, KEYS};

/// One key's effective value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct EffectiveValue {
    pub key: String,
    /// As the reference writes values: text as is, lists and tables as JSON, empty when not
    /// set. Control characters are escaped, so it can be shown anywhere.
    pub value: String,
    /// The layer that set it.
    pub layer: Layer,
    /// The file, registry key, variables or flags of that layer (`built-in` for defaults).
    pub origin: String,
    /// The user layers cannot change it (the managed file locks it or a policy forces it).
    pub locked: bool,
}

/// Every key of [`KEYS`], in that order.
pub fn effective_values(loaded: &LoadedConfig) -> Vec<EffectiveValue> {
    KEYS.iter()
        .map(|key| {
            let source = loaded
                .sources
                .iter()
                .find(|s| s.effective.iter().any(|k| k == key));
            let (layer, origin) = source.map_or((Layer::Defaults, "built-in".to_string()), |s| {
                (s.layer, s.origin.clone())
            });
            EffectiveValue {
                key: (*key).to_string(),
                value: display_safe(&render(&loaded.settings, key)),
                layer,
                origin,
                locked: loaded.locked.iter().any(|k| k == key),
            }
        })
        .collect()
}

fn display_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of `key` in `settings`, as text.
pub(super) fn render(settings: &Settings, key: &str) -> String {
    use serde_json::{json, Value};
    let list = |items: &[String]| Value::from(items.to_vec()).to_string();
    let s = settings;
    match key {
        "server_url" => s.server_url.to_string(),
        "data_dir" => s.data_dir.display().to_string(),
        "log.level" => s.log.level.clone(),
        "log.max_file_bytes" => s.log.max_file_bytes.to_string(),
        "log.max_files" => s.log.max_files.to_string(),
        "queue.max_entries" => s.queue.max_entries.to_string(),
        "queue.max_bytes" => s.queue.max_bytes.to_string(),
        "sync.concurrency" => s.sync.concurrency.to_string(),
        "sync.batch_window_ms" => s.sync.batch_window_ms.to_string(),
        "sync.batch_max" => s.sync.batch_max.to_string(),
        "network.probe_timeout_max_ms" => s.network.probe_timeout_max_ms.to_string(),
        "session.sign_out_on_quit" => s.session.sign_out_on_quit.to_string(),
        "session.idle_sign_out_min" => s.session.idle_sign_out_min.to_string(),
        // Not set means the shipped policy: show what it is, not that nothing was said.
        "security.refuse_before_start" => {
            let policy = crate::security::SecurityPolicy::from_settings(&s.security);
            let refused: Vec<String> = policy
                .before_start
                .iter()
                .filter(|(_, action)| **action == crate::security::BeforeStart::Refuse)
                .map(|(category, _)| category.as_str().to_string())
                .collect();
            list(&refused)
        }
        "security.add_programs" => Value::Object(
            s.security
                .add_programs
                .iter()
                .map(|(category, names)| {
                    (category.as_str().to_string(), Value::from(names.clone()))
                })
                .collect(),
        )
        .to_string(),
        "security.remove_programs" => list(&s.security.remove_programs),
        "security.allow_programs" => list(&s.security.allow_programs),
        "security.one_display" => crate::security::SecurityPolicy::from_settings(&s.security)
            .one_display
            .to_string(),
        "analytics.lab" => s.analytics.lab.clone().unwrap_or_default(),
        "analytics.insights" => {
            let t = &s.analytics.insights;
            // In the units the configuration uses, whole numbers without a decimal point.
            let n = |v: f64| {
                if v.fract() == 0.0 && v.abs() < 9e15 {
                    Value::from(v as i64)
                } else {
                    Value::from(v)
                }
            };
            json!({
                "refreshes_per_hour": n(t.refreshes_per_hour),
                "clock_skew_s": n(t.clock_skew_s),
                "outages_per_hour": n(t.outages_per_hour),
                "backlog_min": n(t.backlog_s / 60.0),
                "save_p99_ms": n(t.save_p99_ms),
                "disk_reserve_mb": n(t.disk_reserve_bytes / 1_048_576.0),
                "disk_full_within_h": n(t.disk_full_within_s / 3600.0),
                "drain_longer_than_min": n(t.drain_longer_than_s / 60.0),
            })
            .to_string()
        }
        "update.mode" => s.update.mode.as_str().to_string(),
        "update.endpoints" => list(&s.update.endpoints),
        "update.channel" => s.update.channel.clone(),
        "update.pin" => s.update.pin.clone().unwrap_or_default(),
        "update.allow_downgrade" => s.update.allow_downgrade.to_string(),
        "update.check_every_min" => s.update.check_every_min.to_string(),
        "update.deadline_h" => s.update.deadline_h.to_string(),
        "update.quiet_before_exam_min" => s.update.quiet_before_exam_min.to_string(),
        "update.freeze" => Value::Array(
            s.update
                .freeze
                .iter()
                .map(|w| json!({ "from": rfc3339(w.from_ms), "to": rfc3339(w.to_ms) }))
                .collect(),
        )
        .to_string(),
        // Only reached if a key is added to KEYS and not here; a test holds every key to it.
        _ => String::new(),
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(display_safe("Lab\u{7}B2\n"), "Lab\\u{7}B2\\n");
        assert_eq!(display_safe("Phòng B2"), "Phòng B2");
    }
}
