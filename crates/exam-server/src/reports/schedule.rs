//! Reports on a schedule: crontab-style lines, each a cron expression ([`super::cron`], in the
//! server's local time zone, as cron's are) and the report to make:
//!
//! ```text
//! # m  h  dom mon dow  report              formats   range
//! 0    18 *   *   1-5  exam:midterm-2026   pdf,csv
//! 30   7  *   *   mon  lab:"Phòng máy 3"   pdf       week
//! @daily               security            csv,json
//! ```
//!
//! `report` is `exam:ID`, `lab:NAME` (quoted when it has spaces; a subnet such as
//! `lab:10.1.2.0/24` for machines without a lab name) or `security`; `formats` a list of
//! `json`, `csv`, `pdf` (default `pdf,csv`); `range` `day`, `week` or, for an exam, `exam`
//! (default: `exam` for an exam, `day` otherwise). Each run covers the period up to the time
//! it was due, writes one file per format into the reports folder — atomically: a reader of
//! the folder never sees half a file — and, when mail is set up, hands one e-mail with the
//! files attached to the [`mail::Outbox`].
//!
//! The schedule runs on a background task that stops with the server ([`start`] and
//! [`Running::join`]); a run that fails is logged and never stops the others or the server.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};
use tokio::sync::watch;

use super::cron::Cron;
use super::mail::{self, Backoff, MailSettings, Outbox};
use super::{Format, Kind, Range, Request};
use crate::AppState;

/// One line of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub cron: Cron,
    pub kind: Kind,
    pub subject: Option<String>,
    pub formats: Vec<Format>,
    pub range: Option<Range>,
    /// The line as written, for the logs.
    pub line: String,
}

/// Splits at whitespace, keeping what is within double quotes together (without them).
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut started) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if quoted {
        return Err("a quote is not closed".into());
    }
    if started {
        words.push(word);
    }
    Ok(words)
}

impl FromStr for Job {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        let line = line.trim();
        let words = words(line)?;
        let cron_fields = if words.first().is_some_and(|w| w.starts_with('@')) {
            1
        } else {
            5
        };
        if words.len() < cron_fields + 1 {
            return Err(format!(
                "`{line}`: expected a cron expression and a report (exam:ID, lab:NAME or security)"
            ));
        }
        let cron: Cron = words[..cron_fields]
            .join(" ")
            .parse()
            .map_err(|e| format!("`{line}`: {e}"))?;
        let (kind, subject) = match words[cron_fields].split_once(':') {
            Some(("exam", id)) if !id.is_empty() => (Kind::Exam, Some(id.to_string())),
            Some(("lab", name)) if !name.is_empty() => (Kind::Lab, Some(name.to_string())),
            None if words[cron_fields] == "security" => (Kind::Security, None),
            _ => {
                return Err(format!(
                    "`{line}`: the report `{}` is not exam:ID, lab:NAME or security",
                    words[cron_fields]
                ))
            }
        };
        let mut formats = Vec::new();
        let mut range = None;
        for word in &words[cron_fields + 1..] {
            if let Some(r) = Range::parse(word).filter(|r| *r != Range::Custom) {
                if r == Range::Exam && kind != Kind::Exam {
                    return Err(format!("`{line}`: range exam is for exam reports"));
                }
                range = Some(r);
                continue;
            }
            for name in word.split(',') {
                let format = Format::parse(name).ok_or_else(|| {
                    format!(
                        "`{line}`: `{word}` is neither formats (json, csv, pdf) nor a range \
                         (day, week, exam)"
                    )
                })?;
                if !formats.contains(&format) {
                    formats.push(format);
                }
            }
        }
        if formats.is_empty() {
            formats = vec![Format::Pdf, Format::Csv];
        }
        Ok(Self {
            cron,
            kind,
            subject,
            formats,
            range,
            line: line.to_string(),
        })
    }
}

/// The schedule's lines from a crontab-style file: one per line, `#` comments and blank lines
/// left out; an error names the line.
pub fn parse_file(text: &str) -> Result<Vec<Job>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| l.parse().map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Now, as the schedule sees it (tests set one ahead of the real clock).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    pub fn new(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new(crate::now)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// The schedule, where its files go, and how they are mailed.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub jobs: Vec<Job>,
    pub dir: Option<PathBuf>,
    pub mail: Option<MailSettings>,
    pub backoff: Backoff,
    pub clock: Clock,
}

impl Settings {
    /// Checks at start what would fail at the first run, and makes the folder.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(mail) = &self.mail {
            mail.check()?;
        }
        if self.jobs.is_empty() {
            return Ok(());
        }
        let Some(dir) = &self.dir else {
            anyhow::bail!("a report schedule needs --reports-dir, the folder its files go to");
        };
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot make the reports folder {}: {e}", dir.display())
        })?;
        Ok(())
    }
}

/// Writes `bytes` as `dir/name` atomically: a temporary file in the same folder, flushed to
/// disk, then renamed over the name.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    let path = dir.join(name);
    let temporary = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    // The rename itself survives a power cut once the folder is flushed (best effort).
    if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(path)
}

/// The schedule running in the background.
pub struct Running {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Waits until the tasks have stopped (after `stop` turned true or was dropped).
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the schedule of `state`'s configuration, if it has one.
pub fn start(state: Arc<AppState>, stop: watch::Receiver<bool>) -> Option<Running> {
    let settings = state.config.reports.clone();
    if settings.jobs.is_empty() {
        return None;
    }
    let mut tasks = Vec::new();
    let outbox = settings.mail.clone().map(|mail| {
        let (outbox, task) = Outbox::start(mail, settings.backoff, stop.clone());
        tasks.push(task);
        outbox
    });
    for job in &settings.jobs {
        tracing::info!(schedule = %job.line, "report scheduled");
    }
    tasks.push(tokio::spawn(run_schedule(state, settings, outbox, stop)));
    Some(Running { tasks })
}

/// A local wall-clock time as an instant; `None` for one a clock change skips.
fn instant(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    Local
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// A run this many minutes overdue (the computer slept through it) is skipped.
const MISSED_AFTER_MIN: i64 = 5;

/// The longest sleep between two looks at the clock (so a clock change is noticed).
const LOOK_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

async fn run_schedule(
    state: Arc<AppState>,
    settings: Settings,
    outbox: Option<Outbox>,
    mut stop: watch::Receiver<bool>,
) {
    let clock = settings.clock.clone();
    // The runs due after this local minute are still to come.
    let mut after = clock.now().with_timezone(&Local).naive_local();
    loop {
        let next = settings
            .jobs
            .iter()
            .filter_map(|job| job.cron.next_after(after))
            .min();
        let Some(next) = next else {
            tracing::warn!("no report schedule will fire again");
            let _ = stop.wait_for(|stopped| *stopped).await;
            return;
        };
        let Some(due) = instant(next) else {
            // A local time a clock change skips: on to the next one.
            after = next;
            continue;
        };
        let wait = (due - clock.now()).to_std().unwrap_or_default();
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait.min(LOOK_EVERY)) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            if clock.now() < due {
                continue;
            }
        }
        if clock.now() - due > chrono::Duration::minutes(MISSED_AFTER_MIN) {
            // Asleep or suspended past it: a report of then, made now, would not be wanted.
            tracing::warn!(due = %crate::rfc3339(due), "scheduled reports missed");
        } else {
            for job in settings.jobs.iter().filter(|j| j.cron.matches(next)) {
                run_job(&state, &settings, outbox.as_ref(), job, due).await;
            }
        }
        after = next;
    }
}

/// One run of `job`, due at `due`: the files, then the letter.
async fn run_job(
    state: &Arc<AppState>,
    settings: &Settings,
    outbox: Option<&Outbox>,
    job: &Job,
    due: DateTime<Utc>,
) {
    let Some(dir) = settings.dir.clone() else {
        return;
    };
    let made = {
        let state = state.clone();
        let job = job.clone();
        tokio::task::spawn_blocking(move || make_files(&state, &job, &dir, due)).await
    };
    let (title, files) = match made {
        Ok(Ok(made)) => made,
        Ok(Err(e)) => {
            tracing::error!(schedule = %job.line, error = %e, "a scheduled report could not be made");
            return;
        }
        Err(e) => {
            tracing::error!(schedule = %job.line, error = %e, "a scheduled report stopped");
            return;
        }
    };
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    tracing::info!(schedule = %job.line, files = %names.join(", "), "scheduled report written");
    if let Some(outbox) = outbox {
        outbox.post(mail::Letter {
            subject: format!("Exam Bank: {title}"),
            text: format!(
                "{title}\n\nAttached: {}.\nMade by the Exam Bank server for the schedule \
                 \"{}\"; the files are also in its reports folder.\n",
                files
                    .iter()
                    .map(|(_, f)| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                job.line
            ),
            files: files.into_iter().map(|(_, f)| f).collect(),
        });
    }
}

/// Builds the report as of `due` and writes its files; the report's title and, per file, its
/// path and content.
fn make_files(
    state: &AppState,
    job: &Job,
    dir: &Path,
    due: DateTime<Utc>,
) -> Result<(String, Vec<(String, mail::File)>), String> {
    let report = {
        let conn = state.reader.lock();
        super::build(
            &conn,
            &Request::new(job.kind, job.subject.clone(), job.range),
            due,
        )
        .map_err(|e| e.to_string())?
    };
    let mut files = Vec::new();
    for format in &job.formats {
        let bytes = super::render(&report, *format).map_err(|e| e.to_string())?;
        let name = super::filename(&report, *format);
        let path = write_atomic(dir, &name, &bytes)
            .map_err(|e| format!("cannot write {}: {e}", dir.join(&name).display()))?;
        files.push((
            path.display().to_string(),
            mail::File {
                name,
                content_type: format.content_type(),
                bytes,
            },
        ));
    }
    Ok((
        format!("{}, {}", report.title, report.sheet().subtitle),
        files,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn schedule_lines_name_a_report_its_formats_and_range() {
        type Want = (Kind, Option<&'static str>, Vec<Format>, Option<Range>);
        let table: Vec<(&str, Result<Want, &str>)> = vec![
            (
                "0 18 * * 1-5 exam:midterm-2026 pdf,csv",
                Ok((
                    Kind::Exam,
                    Some("midterm-2026"),
                    vec![Format::Pdf, Format::Csv],
                    None,
                )),
            ),
            (
                "30 7 * * mon lab:\"Phòng máy 3\" pdf week",
                Ok((
                    Kind::Lab,
                    Some("Phòng máy 3"),
                    vec![Format::Pdf],
                    Some(Range::Week),
                )),
            ),
            (
                "@daily security csv json",
                Ok((Kind::Security, None, vec![Format::Csv, Format::Json], None)),
            ),
            (
                "0 7 * * * lab:10.1.2.0/24",
                Ok((
                    Kind::Lab,
                    Some("10.1.2.0/24"),
                    vec![Format::Pdf, Format::Csv],
                    None,
                )),
            ),
            (
                "0 18 * * 1-5",
                Err("expected a cron expression and a report"),
            ),
            (
                "0 18 * * exam:x",
                Err("expected a cron expression and a report"),
            ),
            ("0 18 * * fri-mon exam:x", Err("day of week `fri-mon`")),
            ("0 18 * * * room:4", Err("`room:4` is not exam:ID")),
            ("0 18 * * * exam:", Err("`exam:` is not exam:ID")),
            ("0 18 * * * security docx", Err("`docx` is neither formats")),
            (
                "0 18 * * * security exam",
                Err("range exam is for exam reports"),
            ),
            ("0 18 * * * lab:\"Lab A", Err("a quote is not closed")),
        ];
        for (line, want) in table {
            match (line.parse::<Job>(), want) {
                (Ok(job), Ok((kind, subject, formats, range))) => assert_eq!(
                    (job.kind, job.subject.as_deref(), job.formats, job.range),
                    (kind, subject, formats, range),
                    "{line}"
                ),
                (Err(e), Err(said)) => assert!(e.contains(said), "{line}: {e}"),
                (got, want) => panic!("{line}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_schedule_file_leaves_out_comments_and_names_a_wrong_line() {
        let jobs =
            parse_file("# reports\n\n0 18 * * 1-5 security\n  # indented comment\n@weekly lab:A\n")
                .unwrap();
        assert_eq!(jobs.len(), 2);
        let error = parse_file("@daily security\n0 25 * * * security\n").unwrap_err();
        assert!(error.starts_with("line 2: "), "{error}");
    }

    #[test]
    fn files_are_written_whole_and_leave_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_atomic(dir.path(), "r.csv", b"one").unwrap();
        write_atomic(dir.path(), "r.csv", b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["r.csv"]);
    }
}
