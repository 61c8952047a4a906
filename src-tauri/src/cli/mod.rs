//! `exam-desktop doctor` and `exam-desktop queue …`: IT's tools, in the app's own binary so
//! they read the same settings, data folder and keychain the app does. `main` hands the
//! command line here when its first word is a tool's, before anything of the app starts: no
//! window, no Tauri app, no single-instance check, no log file, no network but the doctor's
//! one request to the server.
//!
//! The checks and the tools are the core's (`exam_core::doctor`); this module parses the
//! command line, supplies what only the shell knows (the webview's version, the keychain of
//! the app's service), prints and returns the exit status.

mod args;

use std::io::Write as _;
use std::path::Path;

use exam_core::config::{self, ConfigInputs, LoadedConfig};
use exam_core::doctor::{self, purge, queue};

pub use args::{is_tool, parse, Command, Parsed};

/// The exit status of a command line that was not understood (BSD's `EX_USAGE`).
pub const EXIT_USAGE: i32 = 64;
/// The exit status of a tool that refused or failed.
pub const EXIT_REFUSED: i32 = 2;

pub const USAGE: &str = "\
Exam Bank Desktop: tools for IT (no window opens)

Usage:
  exam-desktop doctor [--json]            check this computer before an exam
  exam-desktop doctor --codes             list the doctor's reason codes
  exam-desktop doctor --purge [--yes] [--force]
                                          remove what uninstalling leaves behind
  exam-desktop queue list [--json]        the work waiting to be sent, by id
  exam-desktop queue export --out FILE    write the items the server refused to a new FILE
  exam-desktop queue retry (ID | --all)   send refused items again, each as its own student
  exam-desktop help                       this text

Options:
  --json          one JSON object (doctor: version, generated_at, worst, took_ms, findings)
  --server URL    use this server instead of the configured one
  --data-dir DIR  use this data folder instead of the configured one
  --yes           with --purge: remove; without it, only say what would be removed
  --force         with --purge: remove even work not yet delivered (export it first)

The doctor runs its checks at once: about 2 s with the server reachable, at most 5 s
without. Students are never named: items are shown by their ids, and exports are scrubbed
of usernames; answers kept sealed stay sealed. `doctor` and `queue list` only read and work
while the app runs; `queue export`, `queue retry` and `--purge` refuse while it runs on the
data folder (it owns the queue then): quit it first.

Exit status:
  doctor          0 ready (every finding ok or info), 1 a warning, 2 a failure
  queue, --purge  0 done, or nothing to do; 2 refused or failed (the message says what,
                  if anything, was done)
  any             64 the command line was not understood
";

/// Writes to stdout, quietly giving up if it was closed (`| head`).
fn out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn err(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// The settings as the app would load them, with only the tools' configuration flags as its
/// command line (the tools' own words are not settings).
fn load(config_args: &[String]) -> LoadedConfig {
    let mut inputs = ConfigInputs::from_process();
    inputs.args = config_args.to_vec();
    config::load(&inputs)
}

/// A word for IT when the tools act on settings that have a problem.
fn warn_about_settings(loaded: &LoadedConfig) {
    if !loaded.problems.is_empty() {
        err(&format!(
            "note: the configuration has {} problem(s) (see `exam-desktop doctor`); the data \
             folder used is {}",
            loaded.problems.len(),
            loaded.settings.data_dir.display()
        ));
    }
}

/// Runs the tool the arguments (without the program's name) ask for; the exit status.
pub fn main(args: &[String]) -> i32 {
    let parsed = match args::parse(args) {
        Ok(parsed) => parsed,
        Err(problem) => {
            err(&format!("exam-desktop: {problem}\n\n{USAGE}"));
            return EXIT_USAGE;
        }
    };
    match parsed.command {
        Command::Help => {
            out(USAGE);
            0
        }
        Command::Codes => {
            out(&doctor::codes_text());
            0
        }
        Command::Doctor { json } => run_doctor(&load(&parsed.config_args), json),
        Command::Purge { yes, force } => run_purge(&load(&parsed.config_args), yes, force),
        Command::QueueList { json } => queue_list(&load(&parsed.config_args), json),
        Command::QueueExport { out: file } => queue_export(&load(&parsed.config_args), &file),
        Command::QueueRetry { id } => queue_retry(&load(&parsed.config_args), id),
    }
}

fn run_doctor(loaded: &LoadedConfig, json: bool) -> i32 {
    let platform = doctor::Platform {
        webview: tauri::webview_version().map_err(|e| e.to_string()),
        secrets: crate::os_keychain(),
    };
    let report = doctor::run(loaded, platform, &doctor::Options::default());
    if json {
        out(&doctor::json(&report));
        out("\n");
    } else {
        out(&doctor::human(&report));
    }
    report.exit_code()
}

fn run_purge(loaded: &LoadedConfig, yes: bool, force: bool) -> i32 {
    warn_about_settings(loaded);
    let secrets = crate::os_keychain();
    let plan = purge::plan(&loaded.settings, secrets.as_ref());
    out(&purge::describe(&plan, crate::KEYCHAIN_SERVICE));
    match purge::decide(&plan, yes, force) {
        purge::Verdict::Nothing => {
            out("Nothing of Exam Bank Desktop's is left on this computer for this account.\n");
            0
        }
        purge::Verdict::DryRun => {
            out("\nNothing was removed. To remove it: exam-desktop doctor --purge --yes\n");
            0
        }
        purge::Verdict::Refused(why) => {
            err(&format!("\n{why}"));
            EXIT_REFUSED
        }
        purge::Verdict::Go => match purge::carry_out(&plan, secrets.as_ref()) {
            Ok(done) => {
                out(&format!(
                    "\nRemoved {} keychain entries and {} item(s) of the data folder; the folder \
                     itself {}.\n",
                    done.keychain_entries,
                    done.removed.len(),
                    if done.folder_removed {
                        "too"
                    } else {
                        "stays (something else is in it)"
                    }
                ));
                0
            }
            Err(error) => {
                err(&format!("exam-desktop: {error}"));
                EXIT_REFUSED
            }
        },
    }
}

fn queue_list(loaded: &LoadedConfig, json: bool) -> i32 {
    warn_about_settings(loaded);
    let data_dir = &loaded.settings.data_dir;
    match queue::list(data_dir, exam_core::clock::now_ms()) {
        Ok(items) if json => {
            let value = serde_json::json!({
                "version": exam_core::VERSION,
                "generated_at": exam_core::now_rfc3339(),
                "data_dir": data_dir.display().to_string(),
                "items": items,
            });
            out(&serde_json::to_string_pretty(&value).unwrap_or_default());
            out("\n");
            0
        }
        Ok(items) => {
            out(&queue::render_list(&items));
            0
        }
        Err(error) => {
            err(&format!("exam-desktop: {error}"));
            EXIT_REFUSED
        }
    }
}

fn queue_export(loaded: &LoadedConfig, file: &str) -> i32 {
    warn_about_settings(loaded);
    match queue::export(&loaded.settings.data_dir, Path::new(file)) {
        Ok(done) => {
            out(&format!(
                "Wrote {} refused item(s) to {} (readable by this account only; no student's \
                 name, no token; sealed answers stay sealed).\n",
                done.items,
                done.path.display()
            ));
            0
        }
        Err(error) => {
            err(&format!("exam-desktop: {error}. Nothing was written."));
            EXIT_REFUSED
        }
    }
}

fn queue_retry(loaded: &LoadedConfig, id: Option<i64>) -> i32 {
    warn_about_settings(loaded);
    let which = id.map_or(queue::Which::All, queue::Which::One);
    match queue::retry(&loaded.settings.data_dir, which) {
        Ok(done) => {
            if done.retried.is_empty() && done.unowned.is_empty() {
                out("No item was refused: nothing to retry.\n");
            } else if !done.retried.is_empty() {
                let ids: Vec<String> = done.retried.iter().map(i64::to_string).collect();
                out(&format!(
                    "Back in the queue: {}. The app sends each with its own student's \
                     credentials once it runs and the server can be reached.\n",
                    ids.join(", ")
                ));
            }
            if !done.unowned.is_empty() {
                let ids: Vec<String> = done.unowned.iter().map(i64::to_string).collect();
                out(&format!(
                    "Left as they were: {} (kept by an earlier version for no student: they can \
                     never be sent).\n",
                    ids.join(", ")
                ));
            }
            0
        }
        Err(error) => {
            err(&format!("exam-desktop: {error}"));
            EXIT_REFUSED
        }
    }
}
