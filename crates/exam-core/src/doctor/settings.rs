//! The configuration as the app would run with it: each problem located (file, line, key),
//! the layers in effect with the keys each one set, and every key's value with its source
//! ([`effective_values`]), so IT sees which file or policy to change.

use crate::config::{effective_values, ConfigSource, Layer, LoadedConfig, SourceStatus};

use super::{Finding, Level};

fn layer_name(layer: Layer) -> &'static str {
    match layer {
        Layer::Defaults => "defaults",
        Layer::Managed => "managed file",
        Layer::Policy => "policy",
        Layer::User => "user file",
        Layer::Environment => "environment",
        Layer::CommandLine => "command line",
    }
}

fn status_name(status: SourceStatus) -> &'static str {
    match status {
        SourceStatus::Applied => "applied",
        SourceStatus::Absent => "absent",
        SourceStatus::Invalid => "invalid, ignored",
    }
}

/// One line per layer: what it is, where, and the keys it decided.
fn source_line(source: &ConfigSource) -> String {
    let keys = if source.effective.is_empty() {
        String::new()
    } else if source.layer == Layer::Defaults {
        // Most keys: the other layers' lists say what is not a default.
        " for every key no other layer sets".to_string()
    } else {
        format!(": {}", source.effective.join(", "))
    };
    format!(
        "{} ({}) — {}{keys}",
        layer_name(source.layer),
        source.origin,
        status_name(source.status)
    )
}

/// The configuration's findings.
pub fn check(loaded: &LoadedConfig) -> Vec<Finding> {
    let mut findings = Vec::new();
    for problem in &loaded.problems {
        let mut title = format!("Configuration problem in {}", problem.origin);
        if let Some(line) = problem.line {
            title.push_str(&format!(", line {line}"));
        }
        if let Some(key) = &problem.key {
            title.push_str(&format!(", key `{key}`"));
        }
        findings.push(
            Finding::new("config.problem", Level::Fail, title)
                .detail(format!(
                    "{}.\nUntil it is fixed the app sends nothing to the server (answers are still \
                     saved on this computer). Correct it and run the doctor again.",
                    problem.message.trim_end_matches('.')
                ))
                .with("origin", &problem.origin)
                .with("line", problem.line)
                .with("column", problem.column)
                .with("key", &problem.key)
                .with("message", &problem.message),
        );
    }
    let applied = loaded
        .sources
        .iter()
        .filter(|s| s.status == SourceStatus::Applied)
        .count();
    let settings = &loaded.settings;
    let level = if loaded.problems.is_empty() {
        Level::Ok
    } else {
        Level::Info
    };
    let mut detail: Vec<String> = loaded.sources.iter().map(source_line).collect();
    if !loaded.locked.is_empty() {
        detail.push(format!("locked by IT: {}", loaded.locked.join(", ")));
    }
    // Every key's value is in the evidence; people read the ones a layer set.
    let values = effective_values(loaded);
    for value in values.iter().filter(|v| v.layer != Layer::Defaults) {
        detail.push(format!(
            "{} = {} (from the {}{})",
            value.key,
            value.value,
            layer_name(value.layer),
            if value.locked { ", locked" } else { "" }
        ));
    }
    findings.push(
        Finding::new(
            "config.sources",
            level,
            format!(
                "Settings in effect: server {}, data folder {} ({applied} of {} layers applied)",
                settings.server_url,
                settings.data_dir.display(),
                loaded.sources.len()
            ),
        )
        .detail(detail.join("\n"))
        .with("server_url", settings.server_url.as_str())
        .with("data_dir", settings.data_dir.display().to_string())
        .with("sources", &loaded.sources)
        .with("locked", &loaded.locked)
        .with("values", &values),
    );
    for source in loaded
        .sources
        .iter()
        .filter(|s| !s.ignored_locked.is_empty())
    {
        findings.push(
            Finding::new(
                "config.locked_ignored",
                Level::Info,
                format!(
                    "The {} ({}) sets keys IT locks; IT's values apply",
                    layer_name(source.layer),
                    source.origin
                ),
            )
            .detail(format!(
                "Ignored: {}. Change them in the managed file or the policy instead, or remove \
                 them here.",
                source.ignored_locked.join(", ")
            ))
            .with("origin", &source.origin)
            .with("keys", &source.ignored_locked),
        );
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigInputs, PolicyInputs};
    use crate::doctor::tests::documented;

    fn load(user_file: &str) -> (tempfile::TempDir, LoadedConfig) {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("config.toml");
        std::fs::write(&user, user_file).unwrap();
        let inputs = ConfigInputs {
            managed_file: dir.path().join("managed.toml"),
            default_user_file: Some(user),
            default_data_dir: Some(dir.path().join("data")),
            env: Default::default(),
            args: vec!["doctor".into(), "--json".into()],
            cwd: dir.path().to_path_buf(),
            policies: PolicyInputs::default(),
        };
        let loaded = crate::config::load(&inputs);
        (dir, loaded)
    }

    #[test]
    fn a_malformed_file_is_a_located_failure_and_the_layers_are_still_shown() {
        let (dir, loaded) =
            load("server_url = \"https://exams.example\"\n[log]\nmax_files = \"x\"\n");
        let findings = check(&loaded);
        for f in &findings {
            documented(f);
        }
        let problem = &findings[0];
        assert_eq!(problem.code, "config.problem");
        assert_eq!(problem.level, Level::Fail);
        let path = dir.path().join("config.toml").display().to_string();
        assert!(problem.title.contains(&path), "{}", problem.title);
        assert!(problem.title.contains("line 3"), "{}", problem.title);
        assert!(problem.title.contains("log.max_files"), "{}", problem.title);
        assert_eq!(problem.evidence["line"], 3);
        let sources = findings
            .iter()
            .find(|f| f.code == "config.sources")
            .unwrap();
        assert_eq!(sources.level, Level::Info);
        assert!(sources.detail.contains("user file"), "{}", sources.detail);
        assert!(
            sources.detail.contains("invalid, ignored"),
            "{}",
            sources.detail
        );
    }

    #[test]
    fn the_doctors_own_words_are_not_taken_for_settings() {
        let (_dir, loaded) = load("server_url = \"https://exams.example\"\n");
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let findings = check(&loaded);
        let sources = &findings[0];
        assert_eq!(sources.code, "config.sources");
        assert_eq!(sources.level, Level::Ok);
        assert!(
            sources.title.contains("https://exams.example/"),
            "{}",
            sources.title
        );
        assert!(
            sources.detail.contains("user file") && sources.detail.contains("server_url"),
            "{}",
            sources.detail
        );
        assert!(
            sources
                .detail
                .contains("server_url = https://exams.example/ (from the user file)"),
            "{}",
            sources.detail
        );
        let values = sources.evidence["values"].as_array().unwrap();
        assert!(values
            .iter()
            .any(|v| v["key"] == "queue.max_entries" && v["layer"] == "defaults"));
    }
}
