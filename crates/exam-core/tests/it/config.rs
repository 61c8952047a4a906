//! Configuration layering as IT deploys it: real files, environment, flags.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use exam_core::config::{self, ConfigInputs, Layer, LoadedConfig, SourceStatus};

struct Fixture {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    args: Vec<String>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: BTreeMap::new(),
            args: Vec::new(),
        }
    }
    fn managed(&self) -> PathBuf {
        self.dir.path().join("etc/config.toml")
    }
    fn user(&self) -> PathBuf {
        self.dir.path().join("home/config.toml")
    }
    fn write(&self, path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }
    fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self
    }
    fn load(&self) -> LoadedConfig {
        config::load(&ConfigInputs {
            managed_file: self.managed(),
            default_user_file: Some(self.user()),
            default_data_dir: Some(PathBuf::from("/default/data")),
            env: self.env.clone(),
            args: self.args.clone(),
            cwd: PathBuf::from("/work/dir"),
            policies: Default::default(),
        })
    }
}

fn source(cfg: &LoadedConfig, layer: Layer) -> &config::ConfigSource {
    cfg.sources.iter().find(|s| s.layer == layer).unwrap()
}

#[test]
fn defaults_apply_when_nothing_is_configured() {
    let cfg = Fixture::new().load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(cfg.settings.server_url.as_str(), config::DEFAULT_SERVER_URL);
    assert_eq!(cfg.settings.data_dir, PathBuf::from("/default/data"));
    assert_eq!(cfg.settings.log.max_files, 5);
    assert_eq!(source(&cfg, Layer::Managed).status, SourceStatus::Absent);
    assert_eq!(source(&cfg, Layer::User).status, SourceStatus::Absent);
    assert_eq!(
        source(&cfg, Layer::Defaults).effective.len(),
        config::KEYS.len()
    );
}

#[test]
fn each_layer_overrides_the_one_below() {
    let f = Fixture::new();
    f.write(
        &f.managed(),
        "server_url = \"https://managed.example\"\ndata_dir = \"/managed/data\"\n[log]\nlevel = \"warn\"\n",
    );
    f.write(
        &f.user(),
        "server_url = \"https://user.example\"\n[log]\nmax_files = 9\n",
    );
    let cfg = f.load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(cfg.settings.server_url.as_str(), "https://user.example/");
    assert_eq!(cfg.settings.data_dir, PathBuf::from("/managed/data"));
    assert_eq!(cfg.settings.log.level, "warn");
    assert_eq!(cfg.settings.log.max_files, 9);

    let f = f
        .env("EXAM_DESKTOP_SERVER", "https://env.example")
        .env("EXAM_DESKTOP_DATA_DIR", "relative/data");
    let cfg = f.load();
    assert_eq!(cfg.settings.server_url.as_str(), "https://env.example/");
    assert_eq!(
        cfg.settings.data_dir,
        PathBuf::from("/work/dir/relative/data")
    );

    let cfg = f
        .args(&["--server", "http://127.0.0.1:9999", "--data-dir=/flag/data"])
        .load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(cfg.settings.server_url.as_str(), "http://127.0.0.1:9999/");
    assert_eq!(cfg.settings.data_dir, PathBuf::from("/flag/data"));
    assert_eq!(
        source(&cfg, Layer::CommandLine).effective,
        ["data_dir", "server_url"]
    );
    assert_eq!(source(&cfg, Layer::Managed).effective, ["log.level"]);
    assert_eq!(source(&cfg, Layer::User).effective, ["log.max_files"]);
}

#[test]
fn a_locked_key_cannot_be_overridden_by_any_user_layer() {
    let f = Fixture::new();
    f.write(
        &f.managed(),
        "locked = [\"server_url\"]\nserver_url = \"https://exams.school.example\"\n",
    );
    f.write(&f.user(), "server_url = \"https://elsewhere.example\"\n");
    let cfg = f
        .env("EXAM_DESKTOP_SERVER", "https://env.example")
        .args(&[
            "--server",
            "https://flag.example",
            "--data-dir",
            "/flag/data",
        ])
        .load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(cfg.locked, ["server_url"]);
    assert_eq!(
        cfg.settings.server_url.as_str(),
        "https://exams.school.example/"
    );
    // Unlocked keys still follow the user layers.
    assert_eq!(cfg.settings.data_dir, PathBuf::from("/flag/data"));
    for layer in [Layer::User, Layer::Environment, Layer::CommandLine] {
        assert_eq!(
            source(&cfg, layer).ignored_locked,
            ["server_url"],
            "{layer:?}"
        );
    }
    assert_eq!(source(&cfg, Layer::Managed).effective, ["server_url"]);
}

#[test]
fn a_locked_key_without_a_managed_value_pins_the_default() {
    let f = Fixture::new();
    f.write(&f.managed(), "locked = [\"log.level\"]\n");
    f.write(&f.user(), "[log]\nlevel = \"trace\"\n");
    let cfg = f.load();
    assert_eq!(cfg.settings.log.level, "info");
    assert_eq!(source(&cfg, Layer::User).ignored_locked, ["log.level"]);
}

#[test]
fn a_malformed_file_names_file_line_and_key_and_contributes_nothing() {
    let f = Fixture::new();
    f.write(
        &f.user(),
        "data_dir = \"/user/data\"\n\n[log]\nmax_files = \"many\"\n",
    );
    let cfg = f.load();
    assert_eq!(cfg.problems.len(), 1);
    let p = &cfg.problems[0];
    assert_eq!(p.origin, f.user().display().to_string());
    assert_eq!(p.line, Some(4));
    assert_eq!(p.key.as_deref(), Some("log.max_files"));
    assert!(
        p.to_string()
            .contains(", line 4, column 13, key `log.max_files`: "),
        "{p}"
    );
    assert_eq!(source(&cfg, Layer::User).status, SourceStatus::Invalid);
    // Nothing from the broken file was applied.
    assert_eq!(cfg.settings.data_dir, PathBuf::from("/default/data"));
}

#[test]
fn bad_files_are_each_reported_clearly() {
    let table: &[(&str, u32, Option<&str>, &str)] = &[
        (
            "server_url = \"https://ok.example\"\nserver_url = \"x\"\n",
            2,
            Some("server_url"),
            "duplicate",
        ),
        (
            "sever_url = \"https://typo.example\"\n",
            1,
            Some("sever_url"),
            "unknown field",
        ),
        (
            "server_url = \"ftp://x.example\"\n",
            1,
            Some("server_url"),
            "http:// or https://",
        ),
        (
            "data_dir = \"relative\"\n",
            1,
            Some("data_dir"),
            "relative path",
        ),
        (
            "[log]\nlevel = \"loud=\"\n",
            2,
            Some("log.level"),
            "not a log level",
        ),
        (
            "[log]\nmax_file_bytes = 10\n",
            2,
            Some("log.max_file_bytes"),
            "out of range",
        ),
        ("server_url = \n", 1, Some("server_url"), ""),
        (
            "locked = [\"nope\"]\n",
            1,
            Some("locked"),
            "unknown key \"nope\"",
        ),
    ];
    for (text, line, key, fragment) in table {
        let f = Fixture::new();
        f.write(&f.user(), text);
        // `locked` in a user file is refused on its own: test the unknown key in the managed file.
        let path = if text.starts_with("locked") {
            f.managed()
        } else {
            f.user()
        };
        f.write(&path, text);
        let cfg = f.load();
        let p = cfg
            .problems
            .first()
            .unwrap_or_else(|| panic!("no problem for {text:?}"));
        assert_eq!(p.line, Some(*line), "{text:?}: {p}");
        assert_eq!(p.key.as_deref(), *key, "{text:?}: {p}");
        assert!(p.message.contains(fragment), "{text:?}: {p}");
    }
}

#[test]
fn locked_in_a_user_file_is_refused() {
    let f = Fixture::new();
    f.write(&f.user(), "locked = [\"server_url\"]\n");
    let cfg = f.load();
    assert_eq!(cfg.problems.len(), 1);
    assert_eq!(cfg.problems[0].key.as_deref(), Some("locked"));
    assert!(cfg.locked.is_empty());
}

#[test]
fn a_file_that_is_not_utf8_is_reported() {
    let f = Fixture::new();
    fs::create_dir_all(f.user().parent().unwrap()).unwrap();
    fs::write(
        f.user(),
        b"server_url = \"https://ok.example\"\n# \xff\xfe\n",
    )
    .unwrap();
    let cfg = f.load();
    assert_eq!(cfg.problems[0].line, Some(2));
    assert!(cfg.problems[0].message.contains("UTF-8"));
}

#[test]
fn exam_desktop_config_replaces_the_user_file() {
    let f = Fixture::new();
    let other = f.dir.path().join("elsewhere.toml");
    f.write(&other, "server_url = \"https://other.example\"\n");
    f.write(&f.user(), "server_url = \"https://user.example\"\n");
    let cfg = f.env("EXAM_DESKTOP_CONFIG", other.to_str().unwrap()).load();
    assert_eq!(cfg.settings.server_url.as_str(), "https://other.example/");
    assert_eq!(
        source(&cfg, Layer::User).origin,
        other.display().to_string()
    );
}

#[test]
fn bad_environment_and_flags_are_reported_and_the_good_ones_still_apply() {
    let cfg = Fixture::new()
        .env("EXAM_DESKTOP_SERVER", "not a url")
        .args(&["--data-dir", "/flag/data", "--server"])
        .load();
    let text: Vec<String> = cfg.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(cfg.problems.len(), 2, "{text:?}");
    assert!(
        text[0].starts_with("environment variable EXAM_DESKTOP_SERVER, key `server_url`"),
        "{text:?}"
    );
    assert!(text[1].contains("--server needs a value"), "{text:?}");
    assert_eq!(cfg.settings.data_dir, PathBuf::from("/flag/data"));
    assert_eq!(cfg.settings.server_url.as_str(), config::DEFAULT_SERVER_URL);
}

#[test]
fn unrelated_arguments_are_left_alone() {
    let cfg = Fixture::new()
        .args(&["--gtk-debug", "x", "-psn_0_1"])
        .load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(
        source(&cfg, Layer::CommandLine).status,
        SourceStatus::Absent
    );
}

#[test]
fn queue_and_sync_limits_are_configurable_lockable_and_checked() {
    let f = Fixture::new();
    f.write(
        &f.managed(),
        "locked = [\"queue.max_bytes\"]\n[queue]\nmax_bytes = 10485760\n[sync]\nbatch_max = 10\n",
    );
    f.write(
        &f.user(),
        "[queue]\nmax_entries = 5000\nmax_bytes = 99999999\n[sync]\nconcurrency = 2\nbatch_window_ms = 50\n",
    );
    let cfg = f.load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(cfg.settings.queue.max_entries, 5000);
    assert_eq!(
        cfg.settings.queue.max_bytes, 10_485_760,
        "locked by the school"
    );
    assert_eq!(
        (
            cfg.settings.sync.concurrency,
            cfg.settings.sync.batch_window_ms,
            cfg.settings.sync.batch_max
        ),
        (2, 50, 10)
    );

    let f = Fixture::new();
    f.write(&f.user(), "[sync]\nbatch_max = 500\n");
    let cfg = f.load();
    assert_eq!(cfg.problems.len(), 1);
    let problem = &cfg.problems[0];
    assert_eq!(problem.key.as_deref(), Some("sync.batch_max"));
    assert!(
        problem.message.contains("out of range (1 to 50)"),
        "{problem}"
    );
    assert_eq!(cfg.settings.sync.batch_max, 50, "the default stays");
}

#[test]
fn the_probe_timeout_ceiling_is_configurable_checked_and_reaches_the_monitor() {
    let f = Fixture::new();
    let cfg = f.load();
    assert_eq!(cfg.settings.network.probe_timeout_max_ms, 8000);
    f.write(&f.managed(), "[network]\nprobe_timeout_max_ms = 15000\n");
    let cfg = f.load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    let monitor = exam_core::network::MonitorConfig::from_settings(&cfg.settings);
    assert_eq!(monitor.max_timeout, std::time::Duration::from_secs(15));
    assert_eq!(monitor.server, cfg.settings.server_url);

    let f = Fixture::new();
    f.write(&f.user(), "[network]\nprobe_timeout_max_ms = 100\n");
    let cfg = f.load();
    assert_eq!(cfg.problems.len(), 1);
    let problem = &cfg.problems[0];
    assert_eq!(problem.key.as_deref(), Some("network.probe_timeout_max_ms"));
    assert!(
        problem.message.contains("out of range (1000 to 60000)"),
        "{problem}"
    );
    assert_eq!(cfg.settings.network.probe_timeout_max_ms, 8000);
}

#[test]
fn signing_out_on_quit_and_after_inactivity_is_on_by_default_and_the_school_can_lock_it() {
    let f = Fixture::new();
    let cfg = f.load();
    assert!(cfg.settings.session.sign_out_on_quit);
    assert_eq!(cfg.settings.session.idle_sign_out_min, 15);

    // The school sets and locks both; a student's own file cannot turn them off.
    f.write(
        &f.managed(),
        "locked = [\"session.sign_out_on_quit\", \"session.idle_sign_out_min\"]\n\
         [session]\nsign_out_on_quit = true\nidle_sign_out_min = 5\n",
    );
    f.write(
        &f.user(),
        "[session]\nsign_out_on_quit = false\nidle_sign_out_min = 0\n",
    );
    let cfg = f.load();
    assert!(cfg.settings.session.sign_out_on_quit);
    assert_eq!(cfg.settings.session.idle_sign_out_min, 5);

    // Out of range: a located problem, the default stays.
    let f = Fixture::new();
    f.write(&f.user(), "[session]\nidle_sign_out_min = 1000\n");
    let cfg = f.load();
    assert_eq!(cfg.problems.len(), 1, "{:?}", cfg.problems);
    assert_eq!(
        cfg.problems[0].key.as_deref(),
        Some("session.idle_sign_out_min")
    );
    assert_eq!(cfg.settings.session.idle_sign_out_min, 15);
}

#[test]
fn the_shipped_managed_configuration_loads_cleanly_and_locks_the_server() {
    let f = Fixture::new()
        .env("EXAM_DESKTOP_SERVER", "https://elsewhere.example")
        .args(&["--server", "http://127.0.0.1:9/"]);
    f.write(
        &f.managed(),
        &fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/managed-config.toml"
        ))
        .unwrap(),
    );
    f.write(
        &f.user(),
        "server_url = \"https://student.example\"\n[session]\nidle_sign_out_min = 0\n",
    );
    let cfg = f.load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(
        cfg.settings.server_url.as_str(),
        "https://exams.school.example/"
    );
    assert_eq!(cfg.settings.session.idle_sign_out_min, 15);
    assert!(cfg.settings.session.sign_out_on_quit);
    for key in [
        "server_url",
        "session.sign_out_on_quit",
        "session.idle_sign_out_min",
    ] {
        assert!(cfg.locked.iter().any(|k| k == key), "{key} is not locked");
    }
    // What the user layers tried is recorded for IT.
    assert!(source(&cfg, Layer::User)
        .ignored_locked
        .contains(&"server_url".to_string()));
    assert!(source(&cfg, Layer::CommandLine)
        .ignored_locked
        .contains(&"server_url".to_string()));
}

#[test]
fn plain_http_to_another_computer_is_refused_with_where_it_came_from() {
    let f = Fixture::new().env("EXAM_DESKTOP_SERVER", "http://exams.school.example/");
    let cfg = f.load();
    let problem = cfg.problems.first().expect("a problem");
    assert!(problem.message.contains("https://"), "{problem:?}");
    assert!(
        problem.origin.contains("EXAM_DESKTOP_SERVER"),
        "{problem:?}"
    );
    // Nothing is sent anywhere: the default server stays.
    assert_eq!(cfg.settings.server_url.as_str(), config::DEFAULT_SERVER_URL);
}

#[test]
fn it_sets_the_device_checks_policy_in_the_managed_file_and_locks_it() {
    use exam_core::security::{BeforeStart, Category, SecurityPolicy};
    let f = Fixture::new();
    f.write(
        &f.managed(),
        "locked = [\"security.refuse_before_start\", \"security.allow_programs\"]\n\
         [security]\n\
         refuse_before_start = [\"remote_control\", \"meetings_chat\"]\n\
         add_programs = { meetings_chat = [\"LabChat.exe\"] }\n\
         remove_programs = [\"skype\"]\n\
         allow_programs = [\"teams\"]\n\
         one_display = false\n",
    );
    // A student's own file cannot undo what IT locked.
    f.write(
        &f.user(),
        "[security]\nrefuse_before_start = []\nallow_programs = [\"anydesk\"]\n",
    );
    let cfg = f.load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    let policy = SecurityPolicy::from_settings(&cfg.settings.security);
    assert_eq!(
        policy.before_start[&Category::MeetingsChat],
        BeforeStart::Refuse
    );
    assert_eq!(
        policy.before_start[&Category::ScreenRecording],
        BeforeStart::Warn
    );
    assert_eq!(
        policy.categorise(&["labchat"]).map(|(c, _)| c),
        Some(Category::MeetingsChat)
    );
    assert_eq!(policy.categorise(&["skype"]), None);
    assert_eq!(policy.categorise(&["teams"]), None);
    assert!(
        policy.categorise(&["anydesk"]).is_some(),
        "the student's allowance is ignored"
    );
    assert!(!policy.one_display);
    assert_eq!(
        source(&cfg, Layer::User).ignored_locked,
        ["security.refuse_before_start", "security.allow_programs"]
    );
}

#[test]
fn a_wrong_security_policy_says_what_and_where() {
    let table: &[(&str, u32, &str)] = &[
        (
            "[security]\nrefuse_before_start = [\"remote_controll\"]\n",
            2,
            "is not a category of programs",
        ),
        (
            "[security]\nallow_programs = [\"C:/Tools/anydesk.exe\"]\n",
            2,
            "without a directory",
        ),
        ("[security]\none_display = \"yes\"\n", 2, "invalid type"),
        ("[security]\nblock_everything = true\n", 2, "unknown field"),
    ];
    for (text, line, words) in table {
        let f = Fixture::new();
        f.write(&f.managed(), text);
        let cfg = f.load();
        assert_eq!(cfg.problems.len(), 1, "{text}: {:?}", cfg.problems);
        let p = &cfg.problems[0];
        assert_eq!(p.line, Some(*line), "{text}: {p}");
        assert!(p.to_string().contains(words), "{text}: {p}");
    }
}

#[test]
fn the_lab_is_named_in_the_managed_file_and_a_bad_name_says_what_and_where() {
    let f = Fixture::new();
    assert_eq!(f.load().settings.analytics.lab, None);
    f.write(&f.managed(), "[analytics]\nlab = \"  Lab B2 \"\n");
    let cfg = f.load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(cfg.settings.analytics.lab.as_deref(), Some("Lab B2"));

    for (text, words) in [
        ("[analytics]\nlab = \"\"\n", "1 to 64 characters"),
        (
            "[analytics]\nlab = \"a\\u0007b\"\n",
            "without control characters",
        ),
        (
            &format!("[analytics]\nlab = \"{}\"\n", "x".repeat(65)) as &str,
            "1 to 64",
        ),
        ("[analytics]\nroom = \"B2\"\n", "unknown field"),
    ] {
        let f = Fixture::new();
        f.write(&f.managed(), text);
        let cfg = f.load();
        assert_eq!(cfg.problems.len(), 1, "{text}: {:?}", cfg.problems);
        let p = &cfg.problems[0];
        assert_eq!(p.line, Some(2), "{text}: {p}");
        assert!(p.to_string().contains(words), "{text}: {p}");
        assert_eq!(cfg.settings.analytics.lab, None);
    }
}

#[test]
fn insight_thresholds_are_tuned_per_layer_locked_by_it_and_checked() {
    use exam_core::analytics::insights::Thresholds;
    let f = Fixture::new();
    assert_eq!(f.load().settings.analytics.insights, Thresholds::default());

    // The managed file sets two; the user's file another (each left out keeps the one below).
    f.write(
        &f.managed(),
        "[analytics.insights]\nsave_p99_ms = 80\nbacklog_min = 5\n",
    );
    f.write(&f.user(), "[analytics.insights]\nclock_skew_s = 30\n");
    let cfg = f.load();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    let t = cfg.settings.analytics.insights;
    assert_eq!(t.save_p99_ms, 80.0);
    assert_eq!(t.backlog_s, 300.0);
    assert_eq!(t.clock_skew_s, 30.0);
    assert_eq!(t.outages_per_hour, Thresholds::default().outages_per_hour);

    // Locked by IT: the user's file no longer moves them.
    f.write(
        &f.managed(),
        "locked = [\"analytics.insights\"]\n[analytics.insights]\nsave_p99_ms = 80\n",
    );
    let t = f.load().settings.analytics.insights;
    assert_eq!(t.save_p99_ms, 80.0);
    assert_eq!(t.clock_skew_s, Thresholds::default().clock_skew_s);

    for (text, words) in [
        ("[analytics.insights]\nsave_p99_ms = 0\n", "out of range"),
        (
            "[analytics.insights]\ndisk_full_within_h = 9999\n",
            "out of range",
        ),
        ("[analytics.insights]\nsave_p99 = 50\n", "unknown field"),
        (
            "[analytics.insights]\nclock_skew_s = \"60\"\n",
            "invalid type",
        ),
    ] {
        let f = Fixture::new();
        f.write(&f.managed(), text);
        let cfg = f.load();
        assert_eq!(cfg.problems.len(), 1, "{text}: {:?}", cfg.problems);
        let p = &cfg.problems[0];
        assert_eq!(p.line, Some(2), "{text}: {p}");
        assert!(p.to_string().contains(words), "{text}: {p}");
        assert_eq!(cfg.settings.analytics.insights, Thresholds::default());
    }
}
