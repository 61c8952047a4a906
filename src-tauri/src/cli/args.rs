//! The command line of the tools: what was asked, and the configuration flags that go on to
//! the settings (`--server`, `--data-dir`, as the app itself takes them).

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    /// Every reason code the doctor gives.
    Codes,
    Doctor {
        json: bool,
    },
    Purge {
        yes: bool,
        force: bool,
    },
    QueueList {
        json: bool,
    },
    QueueExport {
        out: String,
    },
    QueueRetry {
        id: Option<i64>,
    },
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub command: Command,
    /// The configuration flags, as the settings' command-line layer reads them.
    pub config_args: Vec<String>,
}

/// Whether the arguments (without the program's name) are the tools' rather than the app's.
pub fn is_tool(args: &[String]) -> bool {
    matches!(
        args.first().map(String::as_str),
        Some("doctor" | "queue" | "help" | "--help" | "-h")
    )
}

/// The flags the settings take from a command line.
const CONFIG_FLAGS: [&str; 2] = ["--server", "--data-dir"];

/// Parses the tools' arguments (without the program's name); the error is what to say.
pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut words = Vec::new();
    let mut flags = Vec::new();
    let mut config_args = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        if CONFIG_FLAGS.contains(&flag) || flag == "--out" {
            let value = inline
                .or_else(|| iter.next().cloned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{flag} needs a value"))?;
            if flag == "--out" {
                flags.push(format!("--out={value}"));
            } else {
                config_args.push(flag.to_string());
                config_args.push(value);
            }
        } else if flag.starts_with('-') {
            if inline.is_some() {
                return Err(format!("{flag} takes no value"));
            }
            flags.push(flag.to_string());
        } else {
            words.push(arg.as_str());
        }
    }
    let has = |name: &str| flags.iter().any(|f| f == name);
    let out = flags
        .iter()
        .find_map(|f| f.strip_prefix("--out="))
        .map(str::to_string);
    let allowed = |known: &[&str]| -> Result<(), String> {
        match flags.iter().find(|f| {
            !known
                .iter()
                .any(|k| f.as_str() == *k || f.starts_with(&format!("{k}=")))
        }) {
            Some(other) => Err(format!(
                "unknown option {}",
                other.split('=').next().unwrap_or(other)
            )),
            None => Ok(()),
        }
    };
    let command = match words.as_slice() {
        _ if has("--help") || has("-h") || words == ["help"] => Command::Help,
        ["doctor"] if has("--codes") => {
            allowed(&["--codes"])?;
            Command::Codes
        }
        ["doctor"] if has("--purge") => {
            allowed(&["--purge", "--yes", "--force"])?;
            Command::Purge {
                yes: has("--yes"),
                force: has("--force"),
            }
        }
        ["doctor"] => {
            allowed(&["--json"])?;
            Command::Doctor {
                json: has("--json"),
            }
        }
        ["queue", "list"] => {
            allowed(&["--json"])?;
            Command::QueueList {
                json: has("--json"),
            }
        }
        ["queue", "export"] => {
            allowed(&["--out"])?;
            Command::QueueExport {
                out: out.ok_or("queue export needs --out FILE")?,
            }
        }
        ["queue", "retry", id] => {
            allowed(&[])?;
            Command::QueueRetry {
                id: Some(
                    id.parse()
                        .map_err(|_| format!("`{id}` is not an item's id"))?,
                ),
            }
        }
        ["queue", "retry"] if has("--all") => {
            allowed(&["--all"])?;
            Command::QueueRetry { id: None }
        }
        ["queue", "retry"] => return Err("queue retry needs an item's id, or --all".into()),
        ["queue"] => return Err("queue needs list, export or retry".into()),
        other => return Err(format!("unknown command `{}`", other.join(" "))),
    };
    Ok(Parsed {
        command,
        config_args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Result<Parsed, String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        parse(&args)
    }

    fn command(line: &str) -> Result<Command, String> {
        parsed(line).map(|p| p.command)
    }

    #[test]
    fn commands_as_a_table() {
        let table = [
            ("doctor", Ok(Command::Doctor { json: false })),
            ("doctor --json", Ok(Command::Doctor { json: true })),
            ("doctor --codes", Ok(Command::Codes)),
            (
                "doctor --purge",
                Ok(Command::Purge {
                    yes: false,
                    force: false,
                }),
            ),
            (
                "doctor --purge --yes --force",
                Ok(Command::Purge {
                    yes: true,
                    force: true,
                }),
            ),
            ("queue list --json", Ok(Command::QueueList { json: true })),
            (
                "queue export --out x.json",
                Ok(Command::QueueExport {
                    out: "x.json".into(),
                }),
            ),
            (
                "queue export --out=x.json",
                Ok(Command::QueueExport {
                    out: "x.json".into(),
                }),
            ),
            ("queue retry 42", Ok(Command::QueueRetry { id: Some(42) })),
            ("queue retry --all", Ok(Command::QueueRetry { id: None })),
            ("help", Ok(Command::Help)),
            ("--help", Ok(Command::Help)),
            ("doctor --help", Ok(Command::Help)),
            (
                "queue export",
                Err("queue export needs --out FILE".to_string()),
            ),
            (
                "queue retry",
                Err("queue retry needs an item's id, or --all".to_string()),
            ),
            ("queue retry x", Err("`x` is not an item's id".to_string())),
            ("doctor --yes", Err("unknown option --yes".to_string())),
            (
                "doctor --json --purge",
                Err("unknown option --json".to_string()),
            ),
            ("queue list --all", Err("unknown option --all".to_string())),
            (
                "queue",
                Err("queue needs list, export or retry".to_string()),
            ),
            (
                "doctor now",
                Err("unknown command `doctor now`".to_string()),
            ),
        ];
        for (line, want) in table {
            assert_eq!(command(line), want, "{line}");
        }
    }

    #[test]
    fn configuration_flags_go_to_the_settings_and_nothing_else_does() {
        let p = parsed("doctor --json --server https://exams.example --data-dir=/tmp/d").unwrap();
        assert_eq!(p.command, Command::Doctor { json: true });
        assert_eq!(
            p.config_args,
            ["--server", "https://exams.example", "--data-dir", "/tmp/d"]
        );
        assert!(parsed("queue export --out x.json")
            .unwrap()
            .config_args
            .is_empty());
        assert_eq!(
            command("doctor --server"),
            Err("--server needs a value".into())
        );
    }

    #[test]
    fn only_the_tools_first_words_leave_the_app() {
        let args =
            |line: &str| -> Vec<String> { line.split_whitespace().map(str::to_string).collect() };
        assert!(is_tool(&args("doctor")));
        assert!(is_tool(&args("queue list")));
        assert!(is_tool(&args("--help")));
        assert!(!is_tool(&args("")));
        assert!(!is_tool(&args("--server https://x.example")));
        assert!(!is_tool(&args("--data-dir /tmp doctor")));
    }
}
