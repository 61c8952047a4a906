use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::config::file::Partial;
use crate::config::policy::parse_document;
use crate::config::{self, ConfigInputs, PolicyInputs, KEYS, SPECS};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn generated(name: &str) -> String {
    render_all()
        .into_iter()
        .find(|(path, _)| path.ends_with(name))
        .map(|(_, contents)| contents)
        .unwrap_or_else(|| panic!("{name} is not generated"))
}

/// Like the bindings check: the committed reference is what the code says.
#[test]
fn generated_policy_docs_are_up_to_date() {
    let root = repo_root();
    let update = std::env::var("UPDATE_POLICY_DOCS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, contents) in render_all() {
        let file = root.join(&path);
        if update {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &contents).unwrap();
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(contents.as_str()) {
            stale.push(path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale or missing: {}\nregenerate with: {REGENERATE}",
        stale.join(", ")
    );
}

#[test]
fn specs_describe_exactly_the_keys() {
    let names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
    assert_eq!(names, KEYS);
    for spec in SPECS {
        assert!(
            crate::config::specs::SECTIONS
                .iter()
                .any(|(s, _)| *s == spec.section()),
            "{} has no section",
            spec.name
        );
        assert!(!spec.description.is_empty() && !spec.title.is_empty());
    }
}

fn parses(doc: Value) -> Result<Partial, String> {
    parse_document(doc).map_err(|at| format!("{:?}: {}", at.key, at.message))
}

#[test]
fn every_example_is_accepted_by_the_parser_in_json_and_toml() {
    let mut all = serde_json::Map::new();
    for spec in SPECS {
        let value = example(spec);
        parses(nest(spec.name, value.clone())).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        let toml_text = markdown::toml_example(spec);
        toml::from_str::<Partial>(&toml_text)
            .unwrap_or_else(|e| panic!("{}: {toml_text}\n{e}", spec.name));
        crate::config::policy::insert_dotted(&mut all, spec.name, value);
    }
    parses(Value::Object(all)).unwrap();
}

/// Every path to an integer of the spec table, with its range.
fn integers() -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for spec in SPECS {
        match &spec.ty {
            KeyType::Integer { min, max, .. } => out.push((spec.name.to_string(), *min, *max)),
            KeyType::Record(fields) => {
                for f in *fields {
                    if let KeyType::Integer { min, max, .. } = f.ty {
                        out.push((format!("{}.{}", spec.name, f.name), min, max));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn the_ranges_in_the_reference_are_the_parsers() {
    let table = integers();
    assert!(table.len() >= 20);
    for (key, min, max) in table {
        for (value, ok) in [(min, true), (max, true), (min - 1, false), (max + 1, false)] {
            let result = parses(nest(&key, json!(value)));
            assert_eq!(result.is_ok(), ok, "{key} = {value}: {result:?}");
        }
    }
}

#[test]
fn the_choices_in_the_reference_are_the_parsers() {
    for spec in SPECS {
        let (words, wrap): (&[&str], fn(&str) -> Value) = match &spec.ty {
            KeyType::Choice(words) => (words, |w| json!(w)),
            KeyType::List {
                item: KeyType::Choice(words),
                ..
            } => (words, |w| json!([w])),
            _ => continue,
        };
        for word in words {
            parses(nest(spec.name, wrap(word))).unwrap_or_else(|e| panic!("{word}: {e}"));
        }
        assert!(parses(nest(spec.name, wrap("nonsense"))).is_err());
    }
}

#[test]
fn the_defaults_in_the_reference_are_what_loading_gives() {
    let loaded = config::load(&ConfigInputs {
        managed_file: PathBuf::from("/nonexistent/config.toml"),
        default_user_file: None,
        default_data_dir: Some(PathBuf::from("/data")),
        env: Default::default(),
        args: Vec::new(),
        cwd: PathBuf::from("/"),
        policies: PolicyInputs::default(),
    });
    for (spec, effective) in SPECS.iter().zip(config::effective_values(&loaded)) {
        assert_eq!(spec.name, effective.key);
        if spec.name == "data_dir" {
            continue;
        }
        let expected = default_value(spec);
        let actual: Value = match &expected {
            Some(Value::String(_)) | None => json!(effective.value),
            Some(_) => serde_json::from_str(&effective.value).unwrap(),
        };
        assert_eq!(
            actual,
            expected.unwrap_or(json!("")),
            "{}: the reference says {:?}",
            spec.name,
            spec.default
        );
    }
}

/// The subset of JSON Schema the generated schema uses (patterns and formats aside).
fn validate(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let fail = |why: &str| Err(format!("{at}: {why}"));
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let ok = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            _ => false,
        };
        if !ok {
            return fail(&format!("not {ty}"));
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        if !choices.contains(value) {
            return fail("not among the choices");
        }
    }
    if let (Some(n), Some(min)) = (
        value.as_i64(),
        schema.get("minimum").and_then(Value::as_i64),
    ) {
        if n < min {
            return fail("below the minimum");
        }
    }
    if let (Some(n), Some(max)) = (
        value.as_i64(),
        schema.get("maximum").and_then(Value::as_i64),
    ) {
        if n > max {
            return fail("above the maximum");
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
            || schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
        {
            return fail("length");
        }
    }
    if let Some(items) = value.as_array() {
        if schema
            .get("maxItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| items.len() as u64 > m)
        {
            return fail("too many items");
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(item_schema, item, &format!("{at}[{i}]"))?;
            }
        }
    }
    if let Some(map) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for (k, v) in map {
            match properties.and_then(|p| p.get(k)) {
                Some(s) => validate(s, v, &format!("{at}.{k}"))?,
                None if schema.get("additionalProperties") == Some(&json!(false)) => {
                    return fail(&format!("unknown property {k}"))
                }
                None => {}
            }
        }
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !map.contains_key(required.as_str().unwrap_or_default()) {
                return fail(&format!("missing {required}"));
            }
        }
    }
    Ok(())
}

#[test]
fn the_schema_is_json_and_accepts_what_the_parser_accepts() {
    let schema: Value = serde_json::from_str(&generated("exam-desktop.schema.json")).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let mut all = serde_json::Map::new();
    for spec in SPECS {
        crate::config::policy::insert_dotted(&mut all, spec.name, example(spec));
    }
    let all = Value::Object(all);
    validate(&schema, &all, "").unwrap();
    let linux: Value = serde_json::from_str(&generated("policies.example.json")).unwrap();
    validate(&schema, &linux, "").unwrap();

    // And refuses what the parser refuses.
    for bad in [
        json!({"sever_url": "https://x.example"}),
        json!({"update": {"check_every_min": 1}}),
        json!({"update": {"mode": "sometimes"}}),
        json!({"update": {"freeze": [{"from": "2026-12-14T00:00:00Z"}]}}),
        json!({"analytics": {"insights": {"save_p99": 5}}}),
        json!({"security": {"add_programs": {"games": ["x"]}}}),
    ] {
        assert!(validate(&schema, &bad, "").is_err(), "{bad}");
        assert!(parse_document(bad.clone()).is_err(), "{bad}");
    }
}

fn well_formed(xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "not well-formed at {}: {e}\n{}",
                reader.buffer_position(),
                &xml[..usize::try_from(reader.buffer_position())
                    .unwrap()
                    .min(xml.len())]
            ),
        }
    }
}

#[test]
fn the_admx_and_adml_are_well_formed_and_agree() {
    let admx = generated("ExamDesktop.admx");
    let adml = generated("ExamDesktop.adml");
    well_formed(&admx);
    well_formed(&adml);
    // Every string and presentation the template names is in the language file.
    for (prefix, declared) in [
        ("$(string.", "<string id=\""),
        ("$(presentation.", "<presentation id=\""),
    ] {
        for part in admx.split(prefix).skip(1) {
            let id = part.split(')').next().unwrap();
            assert!(
                adml.contains(&format!("{declared}{id}\"")),
                "{id} is not in the ADML"
            );
        }
    }
    for spec in SPECS {
        assert!(
            admx.contains(&format!("valueName=\"{}\"", spec.name)),
            "no policy writes {}",
            spec.name
        );
    }
    assert!(admx.contains(r#"class="Both""#));
    assert!(admx.contains(r#"key="Software\Policies\ExamDesktop""#));
}

#[test]
fn the_profile_is_a_plist_whose_preferences_load() {
    let text = generated("org.exambank.desktop.mobileconfig");
    let profile = plist::Value::from_reader(std::io::Cursor::new(text.as_bytes())).unwrap();
    let settings = profile.as_dictionary().unwrap()["PayloadContent"]
        .as_array()
        .unwrap()[0]
        .as_dictionary()
        .unwrap()["PayloadContent"]
        .as_dictionary()
        .unwrap()["org.exambank.desktop"]
        .as_dictionary()
        .unwrap()["Forced"]
        .as_array()
        .unwrap()[0]
        .as_dictionary()
        .unwrap()["mcx_preference_settings"]
        .clone();
    // What the system would write to /Library/Managed Preferences, in its binary form.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("org.exambank.desktop.plist");
    settings.to_file_binary(&file).unwrap();
    let loaded = config::load(&ConfigInputs {
        managed_file: dir.path().join("none.toml"),
        default_user_file: None,
        default_data_dir: Some(PathBuf::from("/data")),
        env: Default::default(),
        args: Vec::new(),
        cwd: PathBuf::from("/"),
        policies: PolicyInputs {
            plist_files: vec![file],
            ..PolicyInputs::default()
        },
    });
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(loaded.settings.update.pin.as_deref(), Some("1.4."));
    assert_eq!(loaded.settings.update.freeze.len(), 1);
    assert_eq!(
        loaded.settings.server_url.as_str(),
        "https://exams.school.example/"
    );
    for key in examples::PROFILE_KEYS {
        assert!(
            loaded.locked.iter().any(|k| k == key),
            "{key} is not forced"
        );
    }
}

#[test]
fn the_linux_example_loads_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("10-school.json"),
        generated("policies.example.json"),
    )
    .unwrap();
    let loaded = config::load(&ConfigInputs {
        managed_file: dir.path().join("none.toml"),
        default_user_file: None,
        default_data_dir: Some(PathBuf::from("/data")),
        env: Default::default(),
        args: Vec::new(),
        cwd: PathBuf::from("/"),
        policies: PolicyInputs {
            json_dir: Some(policies),
            ..PolicyInputs::default()
        },
    });
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let mut forced = loaded.locked.clone();
    forced.sort();
    let mut expected: Vec<String> = examples::LINUX_KEYS.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(forced, expected);
}

#[test]
fn the_readme_covers_every_key_and_layer() {
    let md = generated("README.md");
    for spec in SPECS {
        assert!(
            md.contains(&format!("### `{}`", spec.name)),
            "{}",
            spec.name
        );
    }
    for word in [
        "managed file",
        "policies",
        "user file",
        "environment",
        "command line",
    ] {
        assert!(md.contains(word), "{word}");
    }
}
