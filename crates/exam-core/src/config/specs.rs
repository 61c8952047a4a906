//! Every key IT can set, described once: its type and range, its default, what it does in
//! plain words, and an example. The reference in `docs/policies/` (key list, JSON Schema,
//! Windows ADMX template, macOS profile) is generated from this table, and the registry reader
//! takes each value's type from it, so the documentation cannot drift from what the parser
//! accepts: tests hold the table to the parser (same keys, same ranges, examples accepted,
//! defaults as loaded).

/// One key of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// The dotted name: in TOML `[section] key`, the JSON policy's nesting, the registry value
    /// name and the macOS preference key.
    pub name: &'static str,
    /// A few words for the ADMX policy list and the headings.
    pub title: &'static str,
    pub ty: KeyType,
    /// The value when nothing sets it, as the diagnostics show it (empty: not set).
    pub default: &'static str,
    /// One paragraph for IT.
    pub description: &'static str,
    /// An example value, as JSON.
    pub example: &'static str,
}

impl KeySpec {
    /// The section (the TOML table) the key is in; top-level keys are in `general`.
    pub fn section(&self) -> &'static str {
        match self.name.split_once('.') {
            Some((section, _)) => section,
            None => "general",
        }
    }

    /// The key within its section.
    pub fn leaf(&self) -> &'static str {
        self.name
            .split_once('.')
            .map_or(self.name, |(_, leaf)| leaf)
    }
}

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Text; `pattern` (for the JSON Schema, ECMA-262) when its form is fixed.
    Text {
        min_len: u32,
        max_len: Option<u32>,
        pattern: Option<&'static str>,
    },
    /// A server address: `https://`, or `http://` to this computer only; with
    /// `placeholders`, `{{target}}`, `{{arch}}`, `{{current_version}}`, `{{bundle_type}}`,
    /// `{{channel}}` and `{{pin}}` may appear.
    Url {
        placeholders: bool,
    },
    /// An absolute path.
    Path,
    /// An RFC 3339 date and time with its offset.
    DateTime,
    Integer {
        min: i64,
        max: i64,
        unit: &'static str,
    },
    Boolean,
    /// One of these words.
    Choice(&'static [&'static str]),
    List {
        item: &'static KeyType,
        max_items: Option<u32>,
    },
    /// A table with these fields.
    Record(&'static [FieldSpec]),
    /// A table whose keys are among `keys`, each holding a `value`.
    Map {
        keys: &'static [&'static str],
        value: &'static KeyType,
    },
}

impl KeyType {
    /// Held in a table (JSON in a registry string) rather than a plain value or a list of text.
    pub fn is_table(&self) -> bool {
        match self {
            KeyType::Record(_) | KeyType::Map { .. } => true,
            KeyType::List { item, .. } => item.is_table(),
            _ => false,
        }
    }

    /// The Windows registry type of the value.
    pub fn registry_type(&self) -> &'static str {
        match self {
            KeyType::Integer { max, .. } if *max > i64::from(u32::MAX) => "REG_QWORD",
            KeyType::Integer { .. } | KeyType::Boolean => "REG_DWORD",
            KeyType::List { .. } if !self.is_table() => "REG_MULTI_SZ",
            _ => "REG_SZ",
        }
    }

    /// The macOS property list type of the value.
    pub fn plist_type(&self) -> &'static str {
        match self {
            KeyType::Integer { .. } => "integer",
            KeyType::Boolean => "boolean",
            KeyType::List { .. } => "array",
            KeyType::Record(_) | KeyType::Map { .. } => "dict",
            _ => "string",
        }
    }
}

/// A field of a [`KeyType::Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: KeyType,
    pub required: bool,
    pub description: &'static str,
}

/// The sections, in the order the reference lists them, with their titles.
pub const SECTIONS: &[(&str, &str)] = &[
    ("general", "Server and data"),
    ("session", "Sessions on shared computers"),
    ("security", "Device checks"),
    ("update", "Updates"),
    ("network", "Network"),
    ("sync", "Sending"),
    ("queue", "Work waiting to be sent"),
    ("log", "Logging"),
    ("analytics", "Analytics"),
];

const CATEGORIES: &[&str] = &["remote_control", "meetings_chat", "screen_recording"];

const PROGRAM: KeyType = KeyType::Text {
    min_len: 1,
    max_len: Some(100),
    pattern: Some("^[^/\\\\]+$"),
};
const PROGRAMS: KeyType = KeyType::List {
    item: &PROGRAM,
    max_items: Some(500),
};
const CATEGORY: KeyType = KeyType::Choice(CATEGORIES);
const ENDPOINT: KeyType = KeyType::Url { placeholders: true };

const fn int(min: i64, max: i64, unit: &'static str) -> KeyType {
    KeyType::Integer { min, max, unit }
}

const fn field(name: &'static str, ty: KeyType, description: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: false,
        description,
    }
}

const INSIGHTS: &[FieldSpec] = &[
    field(
        "refreshes_per_hour",
        int(1, 3600, "refreshes"),
        "Sign-in token refreshes in an hour above which the access lifetime is too short.",
    ),
    field(
        "clock_skew_s",
        int(1, 86_400, "seconds"),
        "This computer's clock off the server's by more than this.",
    ),
    field(
        "outages_per_hour",
        int(1, 3600, "outages"),
        "Network outages in an hour above which the link is unreliable.",
    ),
    field(
        "backlog_min",
        int(1, 1440, "minutes"),
        "Work waiting this long without a delivery is a backlog.",
    ),
    field(
        "save_p99_ms",
        int(1, 60_000, "ms"),
        "A 99th-percentile save slower than this means a slow disk.",
    ),
    field(
        "disk_reserve_mb",
        int(0, 1_048_576, "MiB"),
        "Free disk space kept for the work waiting to be sent.",
    ),
    field(
        "disk_full_within_h",
        int(1, 720, "hours"),
        "Warn when the disk would reach the reserve within this many hours.",
    ),
    field(
        "drain_longer_than_min",
        int(1, 1440, "minutes"),
        "Warn when the waiting work would take longer than this to send.",
    ),
];

const FREEZE_WINDOW: KeyType = KeyType::Record(&[
    FieldSpec {
        name: "from",
        ty: KeyType::DateTime,
        required: true,
        description: "When the freeze starts (included).",
    },
    FieldSpec {
        name: "to",
        ty: KeyType::DateTime,
        required: true,
        description: "When it ends (excluded); after `from`.",
    },
]);

/// Every key, in the order of [`super::KEYS`].
pub const SPECS: &[KeySpec] = &[
    KeySpec {
        name: "server_url",
        title: "Exam Bank server",
        ty: KeyType::Url {
            placeholders: false,
        },
        default: "http://127.0.0.1:8787/",
        description:
            "The Exam Bank server this computer signs in to and sends answers to. It must \
            start with https://; plain http:// is accepted only for this computer (127.0.0.1, ::1, \
            localhost), because on a network anyone could read the passwords and answers. A user \
            name or password in the address is refused.",
        example: r#""https://exams.school.example/""#,
    },
    KeySpec {
        name: "data_dir",
        title: "Data folder",
        ty: KeyType::Path,
        default: "",
        description: "Where the app keeps its database, logs and exports. Not set: the local \
            (never roaming) application data folder of the signed-in account. In a file or a \
            policy the path must be absolute. Keep it on a local disk: it holds answers that \
            have not reached the server yet.",
        example: r#""/var/lib/exam-desktop""#,
    },
    KeySpec {
        name: "log.level",
        title: "Log level",
        ty: KeyType::Text {
            min_len: 1,
            max_len: None,
            pattern: None,
        },
        default: "info",
        description: "How much the app writes to its log: off, error, warn, info, debug or trace, \
            or target=level pairs separated by commas (exam_core=debug,info). Anything else is \
            refused, so a typo cannot silently turn logging off.",
        example: r#""info""#,
    },
    KeySpec {
        name: "log.max_file_bytes",
        title: "Log file size",
        ty: int(65_536, 1_073_741_824, "bytes"),
        default: "5242880",
        description: "The size at which a log file is closed and a new one started.",
        example: "5242880",
    },
    KeySpec {
        name: "log.max_files",
        title: "Log files kept",
        ty: int(1, 100, "files"),
        default: "5",
        description: "How many log files are kept, the current one included; older ones are \
            deleted.",
        example: "5",
    },
    KeySpec {
        name: "queue.max_entries",
        title: "Most items waiting",
        ty: int(100, 100_000_000, "items"),
        default: "200000",
        description: "The most pieces of work (answers, submissions, usage figures) that may wait \
            to be sent. When full, usage figures are dropped first; an answer is refused with a \
            clear \"storage full\" message, never dropped.",
        example: "200000",
    },
    KeySpec {
        name: "queue.max_bytes",
        title: "Most bytes waiting",
        ty: int(1_048_576, 68_719_476_736, "bytes"),
        default: "536870912",
        description: "The most disk space the work waiting to be sent may take, under the same \
            rule as the number of items.",
        example: "536870912",
    },
    KeySpec {
        name: "sync.concurrency",
        title: "Requests at once",
        ty: int(1, 16, "requests"),
        default: "3",
        description: "How many requests to the server may be in flight at once.",
        example: "3",
    },
    KeySpec {
        name: "sync.batch_window_ms",
        title: "Batch wait",
        ty: int(0, 1000, "ms"),
        default: "25",
        description: "How long ready requests wait for others, so that they travel together in \
            one batch.",
        example: "25",
    },
    KeySpec {
        name: "sync.batch_max",
        title: "Batch size",
        ty: int(1, 50, "requests"),
        default: "50",
        description: "Requests per batch; 1 turns batching off.",
        example: "50",
    },
    KeySpec {
        name: "network.probe_timeout_max_ms",
        title: "Slowest usable link",
        ty: int(1000, 60_000, "ms"),
        default: "8000",
        description: "The longest round trip the network monitor waits for the server. A link \
            slower than this counts as offline; anything faster is used, and shown as degraded \
            when slow.",
        example: "8000",
    },
    KeySpec {
        name: "session.sign_out_on_quit",
        title: "Sign out on quit",
        ty: KeyType::Boolean,
        default: "true",
        description: "Quitting the app with no exam in progress signs the student out, so the \
            next student at a shared computer starts signed out. An exam in progress keeps its \
            student's session, so a crash or a quit in the middle resumes it.",
        example: "true",
    },
    KeySpec {
        name: "session.idle_sign_out_min",
        title: "Sign out when idle",
        ty: int(0, 480, "minutes"),
        default: "15",
        description: "Minutes without a key press or a click, outside an exam, after which the \
            student is signed out; 0: never.",
        example: "15",
    },
    KeySpec {
        name: "security.refuse_before_start",
        title: "Programs that stop an exam from starting",
        ty: KeyType::List {
            item: &CATEGORY,
            max_items: None,
        },
        default: r#"["remote_control"]"#,
        description: "The categories of programs (remote_control, meetings_chat, \
            screen_recording) that keep an exam from starting while one of their programs runs; \
            the student is told which program to close. The other categories only warn. Nothing \
            here ever stops an exam in progress: what is found is shown to the student and \
            reported to the proctor.",
        example: r#"["remote_control", "meetings_chat"]"#,
    },
    KeySpec {
        name: "security.add_programs",
        title: "Programs added to a category",
        ty: KeyType::Map {
            keys: CATEGORIES,
            value: &PROGRAMS,
        },
        default: "{}",
        description: "Programs added to the shipped lists, by category: file names, `.exe` \
            optional, at most 500 per category.",
        example: r#"{"meetings_chat": ["LabChat.exe"]}"#,
    },
    KeySpec {
        name: "security.remove_programs",
        title: "Programs taken off the lists",
        ty: PROGRAMS,
        default: "[]",
        description: "Programs taken off every shipped list (file names, at most 500).",
        example: r#"["zoom"]"#,
    },
    KeySpec {
        name: "security.allow_programs",
        title: "Programs always allowed",
        ty: PROGRAMS,
        default: "[]",
        description: "Programs allowed whatever the lists say (file names, at most 500).",
        example: r#"["teams"]"#,
    },
    KeySpec {
        name: "security.one_display",
        title: "Report a second display",
        ty: KeyType::Boolean,
        default: "true",
        description: "Whether more than one display is reported to the student and the proctor.",
        example: "true",
    },
    KeySpec {
        name: "analytics.lab",
        title: "Lab name",
        ty: KeyType::Text {
            min_len: 1,
            max_len: Some(64),
            pattern: Some("^[^\\u0000-\\u001f\\u007f]+$"),
        },
        default: "",
        description: "The school's name for this computer's lab, which groups computers in the \
            fleet's figures (1 to 64 characters). Not set: the server groups them by the subnet \
            it sees them from.",
        example: r#""Lab B2""#,
    },
    KeySpec {
        name: "analytics.insights",
        title: "When insights speak up",
        ty: KeyType::Record(INSIGHTS),
        default: r#"{"backlog_min":10,"clock_skew_s":60,"disk_full_within_h":24,"disk_reserve_mb":512,"drain_longer_than_min":10,"outages_per_hour":6,"refreshes_per_hour":12,"save_p99_ms":50}"#,
        description: "The thresholds at which the Analytics panel's insights speak up. Each one \
            left out keeps the value of the layer below (in files; a policy forces the whole \
            table).",
        example: r#"{"save_p99_ms": 80, "backlog_min": 5}"#,
    },
    KeySpec {
        name: "update.mode",
        title: "Update mode",
        ty: KeyType::Choice(&["auto", "check", "off"]),
        default: "auto",
        description: "auto: check, download, and install when it is safe (never during an \
            attempt, with answers still to send, near an exam or in a freeze; while a student \
            is signed in it waits for the sign-out or the quit, since installing restarts the \
            app). check: check and report only. off: no check at all, for computers whose \
            updates IT's own tool installs.",
        example: r#""auto""#,
    },
    KeySpec {
        name: "update.endpoints",
        title: "Update servers",
        ty: KeyType::List {
            item: &ENDPOINT,
            max_items: Some(10),
        },
        default: "[]",
        description: "The addresses the updater asks for new versions, tried in order: https://, \
            or http:// to this computer only. They may hold {{target}}, {{arch}}, \
            {{current_version}}, {{bundle_type}}, {{channel}} and {{pin}} (empty without a pin), \
            filled in by the app. Empty: the Exam Bank server's own update address. Updates are signed, and an update that is not is refused whatever \
            its address.",
        example: r#"["https://updates.school.example/{{channel}}/{{target}}/{{arch}}/{{current_version}}"]"#,
    },
    KeySpec {
        name: "update.channel",
        title: "Update channel",
        ty: KeyType::Text {
            min_len: 1,
            max_len: Some(32),
            pattern: Some("^[a-z0-9-]{1,32}$"),
        },
        default: "stable",
        description: "Which release line this computer follows (stable, beta…): 1 to 32 \
            lowercase letters, digits and hyphens.",
        example: r#""stable""#,
    },
    KeySpec {
        name: "update.pin",
        title: "Version pin",
        ty: KeyType::Text {
            min_len: 1,
            max_len: Some(32),
            pattern: Some("^[0-9]+(\\.[0-9]+)*\\.?$"),
        },
        default: "",
        description: "Only versions that start with this are taken: \"1.4.\" for any 1.4 \
            release, \"1.4.2\" for that one. End it with a dot: \"1.4\" would also match 1.40. \
            Not set: any newer version.",
        example: r#""1.4.""#,
    },
    KeySpec {
        name: "update.allow_downgrade",
        title: "Allow a rollback",
        ty: KeyType::Boolean,
        default: "false",
        description: "Take a version older than the installed one: a rollback IT orders. Only \
            honoured together with a pin, which says which version to go back to.",
        example: "false",
    },
    KeySpec {
        name: "update.check_every_min",
        title: "Check for updates every",
        ty: int(5, 10_080, "minutes"),
        default: "240",
        description: "Minutes between two checks for a new version.",
        example: "240",
    },
    KeySpec {
        name: "update.deadline_h",
        title: "Install deadline",
        ty: int(0, 2160, "hours"),
        default: "72",
        description: "Hours a downloaded update may wait for a safe moment; past that it installs \
            at the next launch or quit, still never during an attempt, near an exam or in a \
            freeze.",
        example: "72",
    },
    KeySpec {
        name: "update.quiet_before_exam_min",
        title: "Quiet time before an exam",
        ty: int(0, 1440, "minutes"),
        default: "120",
        description: "No update is installed this many minutes before an exam the server \
            announced, nor while one is open.",
        example: "120",
    },
    KeySpec {
        name: "update.freeze",
        title: "Update freezes",
        ty: KeyType::List {
            item: &FREEZE_WINDOW,
            max_items: Some(50),
        },
        default: "[]",
        description: "Windows in which no update is installed, such as an exam season: each \
            from and to an RFC 3339 date and time with its offset, to after from; at most 50.",
        example: r#"[{"from": "2026-12-14T00:00:00+07:00", "to": "2026-12-20T00:00:00+07:00"}]"#,
    },
];

/// The description of `name`, if it is a key.
pub(super) fn spec(name: &str) -> Option<&'static KeySpec> {
    SPECS.iter().find(|s| s.name == name)
}
