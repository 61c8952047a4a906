use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::config::{
    self, effective_values, ConfigInputs, ConfigSource, FreezeWindow, LoadedConfig, SourceStatus,
    UpdateMode,
};

struct Fixture {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    args: Vec<String>,
    plists: Vec<PathBuf>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: BTreeMap::new(),
            args: Vec::new(),
            plists: Vec::new(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn policies(&self) -> PathBuf {
        self.path("policies")
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }
    fn inputs(&self) -> ConfigInputs {
        ConfigInputs {
            managed_file: self.path("managed.toml"),
            default_user_file: Some(self.path("user.toml")),
            default_data_dir: Some(PathBuf::from("/default/data")),
            env: self.env.clone(),
            args: self.args.clone(),
            cwd: PathBuf::from("/work/dir"),
            policies: PolicyInputs {
                json_dir: Some(self.policies()),
                plist_files: self.plists.clone(),
                registry: false,
            },
        }
    }
    fn load(&self) -> LoadedConfig {
        config::load(&self.inputs())
    }
}

fn sources(cfg: &LoadedConfig, layer: Layer) -> Vec<&ConfigSource> {
    cfg.sources.iter().filter(|s| s.layer == layer).collect()
}

fn source(cfg: &LoadedConfig, layer: Layer) -> &ConfigSource {
    sources(cfg, layer)[0]
}

#[test]
fn a_json_policy_forces_its_keys_over_the_user_file_environment_and_command_line() {
    let mut f = Fixture::new();
    f.write(
        "managed.toml",
        "server_url = \"https://managed.example\"\n[update]\nchannel = \"beta\"\n",
    );
    f.write(
        "policies/10-school.json",
        r#"{"server_url": "https://exams.school.example", "update": {"pin": "1.4."}}"#,
    );
    f.write(
        "user.toml",
        "server_url = \"https://student.example\"\n[update]\npin = \"2.\"\nchannel = \"nightly\"\n",
    );
    f.env
        .insert(config::ENV_SERVER.into(), "https://env.example".into());
    f.args = vec!["--server".into(), "https://flag.example".into()];
    let cfg = f.load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(
        cfg.settings.server_url.as_str(),
        "https://exams.school.example/"
    );
    assert_eq!(cfg.settings.update.pin.as_deref(), Some("1.4."));
    // Not in the policy: the user's file still chooses it.
    assert_eq!(cfg.settings.update.channel, "nightly");
    assert_eq!(cfg.locked, ["server_url", "update.pin"]);

    let policy = source(&cfg, Layer::Policy);
    assert_eq!(policy.status, SourceStatus::Applied);
    assert_eq!(
        policy.origin,
        f.policies().join("10-school.json").display().to_string()
    );
    assert_eq!(policy.effective, ["server_url", "update.pin"]);
    assert_eq!(
        source(&cfg, Layer::User).ignored_locked,
        ["server_url", "update.pin"]
    );
    assert_eq!(source(&cfg, Layer::User).effective, ["update.channel"]);
    for layer in [Layer::Environment, Layer::CommandLine] {
        assert_eq!(
            source(&cfg, layer).ignored_locked,
            ["server_url"],
            "{layer:?}"
        );
    }
    // The managed file's value is overridden by the policy, so it sets nothing that wins.
    assert!(source(&cfg, Layer::Managed).effective.is_empty());

    let values = effective_values(&cfg);
    let pin = values.iter().find(|v| v.key == "update.pin").unwrap();
    assert_eq!(
        (pin.value.as_str(), pin.layer, pin.locked),
        ("1.4.", Layer::Policy, true)
    );
    assert_eq!(pin.origin, policy.origin);
    let channel = values.iter().find(|v| v.key == "update.channel").unwrap();
    assert_eq!(
        (channel.value.as_str(), channel.layer, channel.locked),
        ("nightly", Layer::User, false)
    );
    assert_eq!(values.len(), config::KEYS.len());
}

#[test]
fn policy_files_apply_in_the_order_of_their_names() {
    let f = Fixture::new();
    f.write(
        "policies/20-lab.json",
        r#"{"update": {"channel": "lab-b2"}, "analytics": {"lab": "B2"}}"#,
    );
    f.write(
        "policies/10-school.json",
        r#"{"update": {"channel": "stable", "pin": "1.4."}}"#,
    );
    f.write("policies/README.txt", "not a policy");
    f.write(
        "policies/30-off.json.disabled",
        "{\"update\": {\"mode\": \"off\"}}",
    );
    let cfg = f.load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(cfg.settings.update.channel, "lab-b2");
    assert_eq!(cfg.settings.update.pin.as_deref(), Some("1.4."));
    assert_eq!(cfg.settings.update.mode, UpdateMode::Auto);
    let policy = sources(&cfg, Layer::Policy);
    assert_eq!(policy.len(), 2);
    assert!(policy[0].origin.ends_with("10-school.json"));
    assert_eq!(policy[0].effective, ["update.pin"]);
    assert!(policy[1].origin.ends_with("20-lab.json"));
    assert_eq!(policy[1].effective, ["analytics.lab", "update.channel"]);
}

#[test]
fn without_policies_the_layer_is_listed_as_absent() {
    let f = Fixture::new();
    let cfg = f.load();
    let policy = sources(&cfg, Layer::Policy);
    assert_eq!(policy.len(), 1);
    assert_eq!(policy[0].status, SourceStatus::Absent);
    assert_eq!(policy[0].origin, f.policies().display().to_string());

    fs::create_dir_all(f.policies()).unwrap();
    assert_eq!(
        source(&f.load(), Layer::Policy).status,
        SourceStatus::Absent
    );

    let cfg = config::load(&ConfigInputs {
        policies: PolicyInputs::default(),
        ..f.inputs()
    });
    assert_eq!(source(&cfg, Layer::Policy).status, SourceStatus::Absent);
    // The layers stay in precedence order in the diagnostics.
    let order: Vec<Layer> = cfg.sources.iter().map(|s| s.layer).collect();
    assert_eq!(
        order,
        [
            Layer::Defaults,
            Layer::Managed,
            Layer::Policy,
            Layer::User,
            Layer::Environment,
            Layer::CommandLine
        ]
    );
}

#[test]
fn a_malformed_policy_file_is_located_and_contributes_nothing() {
    let f = Fixture::new();
    f.write(
        "policies/10-school.json",
        "{\n  \"server_url\": \"https://exams.school.example\",\n  \"update\": {\"pin\": \"1.4.\",}\n}\n",
    );
    f.write("policies/20-lab.json", r#"{"analytics": {"lab": "B2"}}"#);
    let cfg = f.load();
    assert_eq!(cfg.problems.len(), 1, "{:?}", cfg.problems);
    let p = &cfg.problems[0];
    assert!(p.origin.ends_with("10-school.json"), "{p}");
    assert_eq!((p.line, p.column), (Some(3), Some(28)), "{p}");
    assert!(!p.message.contains("at line"), "{p}");
    assert_eq!(cfg.settings.server_url.as_str(), config::DEFAULT_SERVER_URL);
    assert_eq!(cfg.settings.update.pin, None);
    // The other file still applies.
    assert_eq!(cfg.settings.analytics.lab.as_deref(), Some("B2"));
    let policy = sources(&cfg, Layer::Policy);
    assert_eq!(policy[0].status, SourceStatus::Invalid);
    assert_eq!(policy[1].status, SourceStatus::Applied);
    assert_eq!(cfg.locked, ["analytics.lab"]);
}

#[test]
fn a_bad_policy_value_names_file_line_column_and_key() {
    let table: &[(&str, (u32, u32), &str, &str)] = &[
        (
            "{\n  \"update\": {\n    \"pin\": \"abc\"\n  }\n}\n",
            (3, 12),
            "update.pin",
            "not a version prefix",
        ),
        (
            "{\n  \"update\": {\n    \"check_every_min\": 1\n  }\n}\n",
            (3, 24),
            "update.check_every_min",
            "out of range (5 to 10080)",
        ),
        (
            "{\"server_url\": \"https://x.example\",\n \"sever_url\": 1}",
            (2, 15),
            "sever_url",
            "unknown field",
        ),
        (
            "{\"update\": {\n\"channel\": \"stable\", \"chanel\": \"beta\"}}",
            (2, 32),
            "update.chanel",
            "unknown field",
        ),
        (
            "{\"update\": {\"freeze\": [\n{\"from\": \"2026-12-20T00:00:00Z\", \"to\": \"2026-12-14T00:00:00Z\"}]}}",
            (2, 1),
            "update.freeze[0]",
            "must end after it starts",
        ),
        (
            "{\"session\": {\"sign_out_on_quit\": 1}}",
            (1, 34),
            "session.sign_out_on_quit",
            "invalid type",
        ),
        (
            "{\n\"locked\": [\"server_url\"]}",
            (2, 1),
            "locked",
            "no meaning in a policy",
        ),
        ("[1, 2]", (1, 1), "", "not a list"),
    ];
    for (text, line, key, words) in table {
        let f = Fixture::new();
        f.write("policies/10-school.json", text);
        let cfg = f.load();
        assert_eq!(cfg.problems.len(), 1, "{text}: {:?}", cfg.problems);
        let p = &cfg.problems[0];
        assert_eq!(
            (p.line, p.column),
            (Some(line.0), Some(line.1)),
            "{text}: {p}"
        );
        assert_eq!(p.key.as_deref().unwrap_or(""), *key, "{text}: {p}");
        assert!(p.message.contains(words), "{text}: {p}");
        assert!(cfg.locked.is_empty());
        assert_eq!(source(&cfg, Layer::Policy).status, SourceStatus::Invalid);
    }
}

#[test]
fn the_update_section_is_typed_and_checked() {
    let text = "[update]\nmode = \"check\"\nendpoints = [\"https://updates.school.example/{{channel}}/{{target}}/{{arch}}/{{current_version}}?pin={{pin}}\", \"http://127.0.0.1:9000/latest.json\"]\nchannel = \"beta-2\"\npin = \"1.4.2\"\nallow_downgrade = true\ncheck_every_min = 60\ndeadline_h = 0\nquiet_before_exam_min = 1440\nfreeze = [{ from = \"2026-12-14T00:00:00+07:00\", to = 2026-12-20T00:00:00+07:00 }]\n";
    let f = Fixture::new();
    f.write("managed.toml", text);
    let cfg = f.load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    let u = &cfg.settings.update;
    assert_eq!(u.mode, UpdateMode::Check);
    assert_eq!(u.endpoints.len(), 2);
    assert_eq!(
        u.filled_endpoints()[0],
        "https://updates.school.example/beta-2/{{target}}/{{arch}}/{{current_version}}?pin=1.4.2"
    );
    assert_eq!(u.channel, "beta-2");
    assert_eq!(u.pin.as_deref(), Some("1.4.2"));
    assert!(u.allow_downgrade);
    assert_eq!(
        (u.check_every_min, u.deadline_h, u.quiet_before_exam_min),
        (60, 0, 1440)
    );
    // 2026-12-14T00:00:00+07:00 is 2026-12-13T17:00:00Z.
    let from = 1_797_181_200_000;
    assert_eq!(
        u.freeze,
        [FreezeWindow {
            from_ms: from,
            to_ms: from + 6 * 86_400_000
        }]
    );
    assert!(u.frozen_at(from) && u.frozen_at(from + 1) && !u.frozen_at(from - 1));
    assert!(!u.frozen_at(from + 6 * 86_400_000));

    let defaults = Fixture::new().load().settings.update;
    assert_eq!(defaults, config::UpdateSettings::default());
    assert_eq!(
        (
            defaults.mode,
            defaults.channel.as_str(),
            defaults.check_every_min,
            defaults.deadline_h,
            defaults.quiet_before_exam_min
        ),
        (UpdateMode::Auto, "stable", 240, 72, 120)
    );
}

#[test]
fn bad_update_values_are_refused_where_they_are() {
    let table: &[(&str, &str)] = &[
        ("mode = \"sometimes\"", "not an update mode"),
        ("endpoints = [\"http://updates.school.example/x\"]", "plain http://"),
        ("endpoints = [\"https://u.example/{{version}}\"]", "placeholder"),
        ("endpoints = [\"updates.example\"]", "not a URL"),
        ("channel = \"Beta\"", "not a channel name"),
        ("channel = \"\"", "not a channel name"),
        ("pin = \"1..4\"", "not a version prefix"),
        ("pin = \".4\"", "not a version prefix"),
        ("pin = \"v1.4\"", "not a version prefix"),
        ("check_every_min = 4", "out of range (5 to 10080)"),
        ("deadline_h = 2161", "out of range (0 to 2160)"),
        ("quiet_before_exam_min = -1", "out of range (0 to 1440)"),
        ("freeze = [{ from = \"2026-12-14T00:00:00\", to = \"2026-12-20T00:00:00+07:00\" }]", "with an offset"),
        ("freeze = [{ from = 2026-12-14T00:00:00, to = 2026-12-20T00:00:00 }]", "with an offset"),
        ("freeze = [{ from = \"2026-12-14T00:00:00Z\", to = \"2026-12-14T00:00:00Z\" }]", "must end after it starts"),
        ("freeze = [{ from = \"2026-12-14T00:00:00Z\" }]", "missing field `to`"),
        ("freeze = [{ from = \"2026-12-14T00:00:00Z\", to = \"2026-12-15T00:00:00Z\", why = \"x\" }]", "unknown field"),
        ("allow_downgrade = \"yes\"", "invalid type"),
    ];
    for (line, words) in table {
        let f = Fixture::new();
        f.write("user.toml", &format!("[update]\n{line}\n"));
        let cfg = f.load();
        assert_eq!(cfg.problems.len(), 1, "{line}: {:?}", cfg.problems);
        let p = &cfg.problems[0];
        assert_eq!(p.line, Some(2), "{line}: {p}");
        assert!(
            p.key.as_deref().is_some_and(|k| k.starts_with("update.")),
            "{line}: {p}"
        );
        assert!(p.message.contains(words), "{line}: {p}");
        assert_eq!(cfg.settings.update, config::UpdateSettings::default());
    }
    let windows: Vec<String> = (0..51)
        .map(|d| {
            format!(
                "{{ from = \"2026-01-01T00:00:00Z\", to = \"2026-02-{:02}T00:00:00Z\" }}",
                d % 28 + 1
            )
        })
        .collect();
    let f = Fixture::new();
    f.write(
        "user.toml",
        &format!("[update]\nfreeze = [{}]\n", windows.join(", ")),
    );
    let cfg = f.load();
    assert!(
        cfg.problems[0].message.contains("at most 50"),
        "{:?}",
        cfg.problems
    );
}

#[test]
fn freeze_windows_include_their_start_and_not_their_end() {
    let w = FreezeWindow {
        from_ms: 10,
        to_ms: 20,
    };
    for (now, inside) in [(9, false), (10, true), (19, true), (20, false)] {
        assert_eq!(w.contains(now), inside, "{now}");
    }
}

#[test]
fn registry_values_become_the_document_the_parser_reads() {
    use serde_json::json;
    use RegistryValue::*;
    let s = |t: &str| String(t.to_string());
    let table: Vec<(&str, RegistryValue, Result<serde_json::Value, &str>)> = vec![
        (
            "server_url",
            s("https://exams.school.example"),
            Ok(json!({"server_url": "https://exams.school.example"})),
        ),
        (
            "update.pin",
            s("1.4."),
            Ok(json!({"update": {"pin": "1.4."}})),
        ),
        // Value names are not case sensitive in the registry.
        (
            "Update.Channel",
            s("beta"),
            Ok(json!({"update": {"channel": "beta"}})),
        ),
        (
            "update.check_every_min",
            Dword(60),
            Ok(json!({"update": {"check_every_min": 60}})),
        ),
        (
            "queue.max_bytes",
            Qword(10_737_418_240),
            Ok(json!({"queue": {"max_bytes": 10_737_418_240_u64}})),
        ),
        (
            "session.sign_out_on_quit",
            Dword(0),
            Ok(json!({"session": {"sign_out_on_quit": false}})),
        ),
        (
            "update.allow_downgrade",
            Dword(1),
            Ok(json!({"update": {"allow_downgrade": true}})),
        ),
        ("update.allow_downgrade", Dword(2), Err("1 or 0")),
        (
            "security.allow_programs",
            MultiString(vec!["teams".into(), "".into(), "zoom".into()]),
            Ok(json!({"security": {"allow_programs": ["teams", "zoom"]}})),
        ),
        (
            "update.freeze",
            s(r#"[{"from": "2026-12-14T00:00:00+07:00", "to": "2026-12-20T00:00:00+07:00"}]"#),
            Ok(
                json!({"update": {"freeze": [{"from": "2026-12-14T00:00:00+07:00", "to": "2026-12-20T00:00:00+07:00"}]}}),
            ),
        ),
        (
            "security.add_programs",
            s(r#"{"meetings_chat": ["LabChat.exe"]}"#),
            Ok(json!({"security": {"add_programs": {"meetings_chat": ["LabChat.exe"]}}})),
        ),
        (
            "analytics.insights",
            s("{save_p99_ms: 80}"),
            Err("malformed"),
        ),
        (
            "update.mode",
            Other("REG_BINARY".into()),
            Err("REG_BINARY is not read"),
        ),
        // Unknown names go through, for the parser to refuse with the others.
        ("update.nope", Dword(1), Ok(json!({"update": {"nope": 1}}))),
    ];
    for (name, value, expected) in table {
        let result = registry_document(&[(name.to_string(), value.clone())]);
        match (result, expected) {
            (Ok(doc), Ok(expected)) => assert_eq!(doc, expected, "{name}"),
            (Err((key, message)), Err(words)) => {
                assert_eq!(key.to_ascii_lowercase(), name.to_ascii_lowercase());
                assert!(message.contains(words), "{name}: {message}");
            }
            (result, expected) => panic!("{name} {value:?}: {result:?}, expected {expected:?}"),
        }
    }
}

/// What `load` does, with the two hives' values in place of the registry.
fn load_with_registry(
    f: &Fixture,
    user: &[(&str, RegistryValue)],
    machine: &[(&str, RegistryValue)],
) -> LoadedConfig {
    let own = |values: &[(&str, RegistryValue)]| -> Vec<(std::string::String, RegistryValue)> {
        values
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    };
    let inputs = ConfigInputs {
        policies: PolicyInputs::default(),
        ..f.inputs()
    };
    let mut builder = crate::config::layers::Builder::new(&inputs);
    builder.file_layer(Layer::Managed, &inputs.managed_file);
    builder.policy_source(
        Hive::CurrentUser.origin(),
        registry::from_values(&own(user)),
    );
    builder.policy_source(
        Hive::LocalMachine.origin(),
        registry::from_values(&own(machine)),
    );
    if let Some(user_file) = &inputs.default_user_file {
        builder.file_layer(Layer::User, user_file);
    }
    builder.env_layer(&inputs.env, &inputs.cwd);
    builder.args_layer(&inputs.args, &inputs.cwd);
    builder.finish()
}

#[test]
fn the_machines_registry_policy_wins_over_the_users_and_both_are_forced() {
    use RegistryValue::*;
    let f = Fixture::new();
    f.write(
        "user.toml",
        "[update]\nmode = \"off\"\ncheck_every_min = 30\n",
    );
    let cfg = load_with_registry(
        &f,
        &[
            ("update.channel", String("beta".into())),
            ("update.mode", String("check".into())),
        ],
        &[
            ("update.channel", String("stable".into())),
            ("update.pin", String("1.4.".into())),
        ],
    );
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(cfg.settings.update.channel, "stable");
    assert_eq!(cfg.settings.update.mode, UpdateMode::Check);
    assert_eq!(cfg.settings.update.pin.as_deref(), Some("1.4."));
    assert_eq!(cfg.settings.update.check_every_min, 30);
    let policy = sources(&cfg, Layer::Policy);
    assert_eq!(
        policy[0].origin,
        r"HKEY_CURRENT_USER\Software\Policies\ExamDesktop"
    );
    assert_eq!(policy[0].effective, ["update.mode"]);
    assert_eq!(
        policy[1].origin,
        r"HKEY_LOCAL_MACHINE\Software\Policies\ExamDesktop"
    );
    assert_eq!(policy[1].effective, ["update.channel", "update.pin"]);
    assert_eq!(source(&cfg, Layer::User).ignored_locked, ["update.mode"]);

    // A bad value: that hive contributes nothing, and the problem names the value.
    let cfg = load_with_registry(
        &f,
        &[],
        &[
            ("update.deadline_h", Dword(9999)),
            ("update.pin", String("1.4.".into())),
        ],
    );
    assert_eq!(cfg.problems.len(), 1);
    let p = &cfg.problems[0];
    assert_eq!(
        p.origin,
        r"HKEY_LOCAL_MACHINE\Software\Policies\ExamDesktop"
    );
    assert_eq!(p.key.as_deref(), Some("update.deadline_h"));
    assert!(p.message.contains("out of range (0 to 2160)"), "{p}");
    assert_eq!(cfg.settings.update.pin, None);
}

#[test]
fn on_this_platform_the_registry_is_absent() {
    if cfg!(windows) {
        return;
    }
    let f = Fixture::new();
    let cfg = config::load(&ConfigInputs {
        policies: PolicyInputs {
            registry: true,
            ..PolicyInputs::default()
        },
        ..f.inputs()
    });
    let policy = sources(&cfg, Layer::Policy);
    assert_eq!(policy.len(), 2);
    assert!(policy.iter().all(|s| s.status == SourceStatus::Absent));
}

const XML_PLIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>server_url</key>
	<string>https://exams.school.example</string>
	<key>update.pin</key>
	<string>1.4.</string>
	<key>update.check_every_min</key>
	<integer>60</integer>
	<key>update.freeze</key>
	<array>
		<dict>
			<key>from</key>
			<date>2026-12-13T17:00:00Z</date>
			<key>to</key>
			<string>2026-12-20T00:00:00+07:00</string>
		</dict>
	</array>
	<key>session</key>
	<dict>
		<key>sign_out_on_quit</key>
		<true/>
	</dict>
	<key>security.allow_programs</key>
	<array>
		<string>teams</string>
	</array>
</dict>
</plist>
"#;

#[test]
fn managed_preferences_in_xml_and_binary_load_as_settings() {
    let mut f = Fixture::new();
    let xml = f.write("Managed Preferences/org.exambank.desktop.plist", XML_PLIST);
    // The user's own forced preferences, in binary, win over the computer's.
    let mut user = plist::Dictionary::new();
    user.insert("update.pin".into(), "1.5.".into());
    user.insert("update.allow_downgrade".into(), true.into());
    let binary = f.path("Managed Preferences/ana/org.exambank.desktop.plist");
    fs::create_dir_all(binary.parent().unwrap()).unwrap();
    plist::Value::Dictionary(user)
        .to_file_binary(&binary)
        .unwrap();
    assert!(fs::read(&binary).unwrap().starts_with(b"bplist"));
    f.plists = vec![
        xml.clone(),
        binary.clone(),
        f.path("Managed Preferences/absent.plist"),
    ];
    f.write("user.toml", "[update]\ncheck_every_min = 5\n");

    let cfg = f.load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    let s = &cfg.settings;
    assert_eq!(s.server_url.as_str(), "https://exams.school.example/");
    assert_eq!(s.update.pin.as_deref(), Some("1.5."));
    assert!(s.update.allow_downgrade);
    assert_eq!(s.update.check_every_min, 60, "forced over the user's file");
    assert_eq!(s.update.freeze.len(), 1);
    assert_eq!(s.update.freeze[0].from_ms, 1_797_181_200_000);
    assert!(s.session.sign_out_on_quit);
    assert_eq!(s.security.allow_programs, ["teams"]);
    let plists: Vec<_> = sources(&cfg, Layer::Policy)
        .into_iter()
        .filter(|s| s.origin.ends_with(".plist"))
        .collect();
    assert_eq!(plists.len(), 3);
    assert_eq!(plists[0].origin, xml.display().to_string());
    assert!(plists[0].effective.contains(&"update.freeze".to_string()));
    assert_eq!(
        plists[1].effective,
        ["update.allow_downgrade", "update.pin"]
    );
    assert_eq!(plists[2].status, SourceStatus::Absent);
    assert_eq!(
        source(&cfg, Layer::User).ignored_locked,
        ["update.check_every_min"]
    );
}

#[test]
fn a_bad_managed_preference_is_located_at_its_key() {
    let mut f = Fixture::new();
    let xml = f.write(
        "prefs.plist",
        &XML_PLIST.replace("<integer>60</integer>", "<integer>1</integer>"),
    );
    let garbage = f.write("garbage.plist", "<plist><dict><key>x</key>");
    let data = f.write(
        "data.plist",
        &XML_PLIST.replace("<string>1.4.</string>", "<data>AAEC</data>"),
    );
    f.plists = vec![xml, garbage, data];
    let cfg = f.load();
    assert_eq!(cfg.problems.len(), 3, "{:?}", cfg.problems);
    let p = &cfg.problems[0];
    assert_eq!(p.key.as_deref(), Some("update.check_every_min"));
    assert_eq!(p.line, Some(9), "{p}");
    assert!(p.message.contains("out of range"), "{p}");
    assert!(
        cfg.problems[1].message.contains("not a property list"),
        "{}",
        cfg.problems[1]
    );
    assert_eq!(cfg.problems[2].key.as_deref(), Some("update.pin"));
    assert!(
        cfg.problems[2].message.contains("data value"),
        "{}",
        cfg.problems[2]
    );
    assert_eq!(cfg.settings.server_url.as_str(), config::DEFAULT_SERVER_URL);
    assert!(cfg.locked.is_empty());
}

#[test]
fn managed_preference_paths_follow_the_user() {
    let machine = Path::new("/Library/Managed Preferences/org.exambank.desktop.plist");
    assert_eq!(
        managed_preference_paths(Some("ana")),
        [
            machine.to_path_buf(),
            PathBuf::from("/Library/Managed Preferences/ana/org.exambank.desktop.plist")
        ]
    );
    for user in [None, Some(""), Some(".."), Some("a/b")] {
        assert_eq!(
            managed_preference_paths(user),
            [machine.to_path_buf()],
            "{user:?}"
        );
    }
}

#[test]
fn dotted_keys_and_tables_merge_into_one_document() {
    let mut doc = serde_json::Map::new();
    insert_dotted(&mut doc, "update.pin", "1.4.".into());
    insert_dotted(&mut doc, "update", serde_json::json!({"channel": "beta"}));
    insert_dotted(&mut doc, "server_url", "https://x.example".into());
    assert_eq!(
        serde_json::Value::Object(doc),
        serde_json::json!({"update": {"pin": "1.4.", "channel": "beta"}, "server_url": "https://x.example"})
    );
}

#[test]
fn a_json_value_is_found_by_its_path() {
    let text = "{\"a\": {\"b\": [1, {\"c\": \"x,}\\\"\"}], \"d\": {}, \"e\": []},\n \"f\": 2}";
    for (path, start) in [
        ("a", "{\"b\""),
        ("a.b", "[1"),
        ("a.b[0]", "1,"),
        ("a.b[1]", "{\"c\""),
        ("a.b[1].c", "\"x,}"),
        ("a.d", "{}"),
        ("a.e", "[]"),
        ("f", "2}"),
    ] {
        let offset = json::value_offset(text, path).unwrap_or_else(|| panic!("{path}"));
        assert!(
            text[offset..].starts_with(start),
            "{path}: {}",
            &text[offset..]
        );
    }
    for path in ["a.z", "a.b[2]", "a.e[0]", "g"] {
        assert_eq!(json::value_offset(text, path), None, "{path}");
    }
}
