//! The offline queue as IT sees it, owner-safe: how much waits and since when, each item by
//! its ids (never its student), the refused ones exported for the school, and put back to be
//! sent once the cause is fixed.
//!
//! Reading works whether or not the app runs (a read-only snapshot). Exporting and retrying
//! go through the queue's own code ([`Queue::export_dead`], [`Queue::retry_dead`]), and the
//! queue belongs to one process at a time: opening it hands back entries a crashed run left
//! in flight and moves saves from the inbox, which would pull work from under a running app.
//! So they refuse while the app runs — quitting it takes a second and loses nothing. A retried
//! entry keeps its student: the app sends it with that student's own credentials, never
//! anyone else's.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::Serialize;

use super::{databases, Finding, Level};
use crate::analytics::insights::Thresholds;
use crate::queue::{DeadLetter, Limits, Queue, QueueError};

/// Why a tool did not do what it was asked. Nothing was changed in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "Exam Bank Desktop is running on {0}: quit it first (while it runs the queue is its \
         own; its status window can retry the signed-in student's refused work)"
    )]
    AppRunning(PathBuf),
    #[error("there is no queue on this computer: {0} does not exist")]
    NoDatabase(PathBuf),
    #[error(
        "the database {path} is damaged ({problem}); run `exam-desktop doctor` and keep the \
         file for IT"
    )]
    Damaged { path: PathBuf, problem: String },
    #[error("{0} already exists: choose another file name")]
    Exists(PathBuf),
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("there is no refused item {0} (see `exam-desktop queue list`)")]
    NoSuchDeadLetter(i64),
    #[error(
        "item {0} belongs to no student (kept by an earlier version): it can never be sent, so \
         it is not retried"
    )]
    Unowned(i64),
    #[error("the database {path}: {error}")]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error(
        "the OS keychain refused to remove an entry after {removed} were removed ({error}); \
         nothing else was removed: run it again once the keychain works"
    )]
    Keychain {
        removed: usize,
        error: crate::keychain::KeychainError,
    },
    #[error("cannot remove {path}: {error}")]
    Remove {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// One waiting item, as IT's list shows it: ids, never its student.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueItem {
    pub id: i64,
    pub kind: String,
    /// `pending`, `in_flight` or `dead` (refused by the server).
    pub state: String,
    pub exam_id: Option<String>,
    pub attempt_id: Option<String>,
    /// Times it was sent.
    pub tries: u32,
    /// Seconds since it was saved.
    pub age_s: u64,
    pub bytes: u64,
    /// The server's status when it refused it.
    pub refused_with: Option<u16>,
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> ToolError + '_ {
    move |error| ToolError::Sqlite {
        path: path.to_path_buf(),
        error,
    }
}

fn age_s(now_ms: i64, created_ms: i64) -> u64 {
    u64::try_from(now_ms.saturating_sub(created_ms).max(0) / 1000).unwrap_or(0)
}

/// The attempt of a stream (`attempt:<id>`).
fn attempt_of(stream: &str) -> Option<String> {
    stream.strip_prefix("attempt:").map(str::to_string)
}

/// The exam an attempt's creation names in its path (`/v1/exams/{exam}/attempts`).
fn exam_in_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/exams/")?;
    let (exam, tail) = rest.split_once('/')?;
    (tail == "attempts").then(|| exam.to_string())
}

/// Everything waiting in the app's database at `data_dir`, oldest first (none when there is
/// no database yet). Read-only: the app may be running.
pub fn list(data_dir: &Path, now_ms: i64) -> Result<Vec<QueueItem>, ToolError> {
    let path = data_dir.join(crate::store::FILE_NAME);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let (conn, _) = databases::open_for_reading(&path).map_err(sqlite(&path))?;
    let exams = exams_of_attempts(&conn);
    let mut items = Vec::new();
    {
        let mut stmt = conn
            .prepare(
                "SELECT id, kind, status, stream, path, attempts, created_at, bytes, response_status
                 FROM queue WHERE status IN ('pending', 'in_flight', 'dead')
                 ORDER BY created_at, id",
            )
            .map_err(sqlite(&path))?;
        let rows = stmt
            .query_map([], |r| {
                let stream: String = r.get(3)?;
                let request: String = r.get(4)?;
                let attempt = attempt_of(&stream);
                let exam = attempt
                    .as_ref()
                    .and_then(|a| exams.get(a).cloned())
                    .or_else(|| exam_in_path(&request));
                let state: String = r.get(2)?;
                let refused_with = r
                    .get::<_, Option<i64>>(8)?
                    .filter(|_| state == "dead")
                    .and_then(|s| u16::try_from(s).ok());
                Ok(QueueItem {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    state,
                    exam_id: exam,
                    attempt_id: attempt,
                    tries: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                    age_s: age_s(now_ms, r.get(6)?),
                    bytes: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                    refused_with,
                })
            })
            .map_err(sqlite(&path))?;
        for row in rows {
            items.push(row.map_err(sqlite(&path))?);
        }
    }
    for (created, entry) in inbox_entries(&conn).map_err(sqlite(&path))? {
        let attempt = attempt_of(&entry.stream);
        items.push(QueueItem {
            id: entry.id,
            kind: entry.kind,
            state: "pending".into(),
            exam_id: attempt.as_ref().and_then(|a| exams.get(a).cloned()),
            attempt_id: attempt,
            tries: 0,
            age_s: age_s(now_ms, created),
            bytes: entry.bytes,
            refused_with: None,
        });
    }
    items.sort_by_key(|i| (std::cmp::Reverse(i.age_s), i.id));
    Ok(items)
}

fn exams_of_attempts(conn: &Connection) -> HashMap<String, String> {
    let Ok(mut stmt) = conn.prepare("SELECT attempt_id, exam_id FROM attempts") else {
        return HashMap::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

/// Saves still in the inbox (they join the queue when it next opens), with when each was
/// saved.
fn inbox_entries(
    conn: &Connection,
) -> rusqlite::Result<Vec<(i64, crate::queue::inbox::InboxEntry)>> {
    let mut stmt = conn.prepare("SELECT created_at, entries FROM inbox ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            crate::queue::inbox::decode_column(r, 1)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (created, entries) = row?;
        out.extend(entries.into_iter().map(|e| (created, e)));
    }
    Ok(out)
}

/// Seconds as people read an age.
fn age(seconds: u64) -> String {
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=7_199 => format!("{} min", seconds / 60),
        7_200..=172_799 => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
        _ => format!("{} days", seconds / 86_400),
    }
}

/// The list as a table (or a line saying there is nothing).
pub fn render_list(items: &[QueueItem]) -> String {
    if items.is_empty() {
        return "Nothing waits to be sent.\n".into();
    }
    let header = [
        "ID", "KIND", "STATE", "EXAM", "ATTEMPT", "TRIES", "AGE", "SIZE",
    ];
    let rows: Vec<[String; 8]> = items
        .iter()
        .map(|i| {
            let state = match i.refused_with {
                Some(status) => format!("{} ({status})", i.state),
                None => i.state.clone(),
            };
            [
                i.id.to_string(),
                i.kind.clone(),
                state,
                i.exam_id.clone().unwrap_or_else(|| "-".into()),
                i.attempt_id.clone().unwrap_or_else(|| "-".into()),
                i.tries.to_string(),
                age(i.age_s),
                format!("{} B", i.bytes),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(&header.map(str::to_string));
    for row in &rows {
        line(row);
    }
    let dead = items.iter().filter(|i| i.state == "dead").count();
    let _ = writeln!(
        out,
        "\n{} waiting, {dead} refused by the server. Each is sent by the app with its own \
         student's credentials.",
        items.len() - dead
    );
    out
}

/// The queue's findings for the doctor.
pub fn summary(data_dir: &Path, now_ms: i64, thresholds: &Thresholds) -> Vec<Finding> {
    let items = match list(data_dir, now_ms) {
        Ok(items) => items,
        Err(error) => {
            return vec![Finding::new(
                "queue.unreadable",
                Level::Warn,
                "The waiting work could not be read",
            )
            .detail(format!("{error}. See the databases' findings above."))];
        }
    };
    let students = students_waiting(data_dir).unwrap_or(0);
    let mut findings = summarise(&items, students, thresholds);
    findings.extend(unowned_finding(data_dir));
    findings
}

/// How many students have work waiting (a count: never who).
fn students_waiting(data_dir: &Path) -> Option<u64> {
    let path = data_dir.join(crate::store::FILE_NAME);
    let conn = databases::open_read_only(&path).ok()?;
    conn.query_row(
        "SELECT COUNT(*) FROM (
             SELECT origin, student FROM queue
             WHERE status IN ('pending', 'in_flight', 'dead') AND kind <> 'telemetry'
               AND student IS NOT NULL
             UNION SELECT origin, student FROM inbox WHERE student IS NOT NULL)",
        [],
        |r| r.get::<_, i64>(0),
    )
    .ok()
    .and_then(|n| u64::try_from(n).ok())
}

/// The findings of a list of waiting items.
pub(super) fn summarise(
    items: &[QueueItem],
    students: u64,
    thresholds: &Thresholds,
) -> Vec<Finding> {
    let is_telemetry = |i: &&QueueItem| i.kind == "telemetry";
    let waiting: Vec<&QueueItem> = items
        .iter()
        .filter(|i| i.state != "dead" && !is_telemetry(i))
        .collect();
    let dead: Vec<&QueueItem> = items.iter().filter(|i| i.state == "dead").collect();
    let telemetry = items
        .iter()
        .filter(|i| i.state != "dead" && is_telemetry(i))
        .count();
    let by_state_and_kind = {
        let mut map: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for item in items {
            *map.entry(item.state.as_str())
                .or_default()
                .entry(item.kind.as_str())
                .or_default() += 1;
        }
        map
    };
    let mut findings = Vec::new();
    if waiting.is_empty() && dead.is_empty() {
        findings.push(
            Finding::new("queue.empty", Level::Ok, "Nothing waits to be sent")
                .with("by_state", &by_state_and_kind),
        );
    }
    if !waiting.is_empty() {
        let oldest = waiting.iter().map(|i| i.age_s).max().unwrap_or(0);
        let backlog = oldest as f64 >= thresholds.backlog_s;
        let kinds = kinds(&waiting);
        let (code, level) = if backlog {
            ("queue.backlog", Level::Warn)
        } else {
            ("queue.waiting", Level::Info)
        };
        findings.push(
            Finding::new(
                code,
                level,
                format!(
                    "{} waiting to be sent ({kinds}), the oldest for {}",
                    plural(waiting.len(), "item"),
                    age(oldest)
                ),
            )
            .detail(format!(
                "{}The app sends each item with its own student's credentials once the server can \
                 be reached{}. Do not remove the data folder or reinstall before they are sent; \
                 `exam-desktop queue list` shows them.",
                if backlog {
                    "This is longer than work should wait: check the server findings above. "
                } else {
                    ""
                },
                match students {
                    0 => String::new(),
                    n => format!(" ({} of this computer)", plural(n as usize, "student")),
                }
            ))
            .with("by_state", &by_state_and_kind)
            .with("oldest_waiting_s", oldest)
            .with("students", students)
            .with("bytes", waiting.iter().map(|i| i.bytes).sum::<u64>()),
        );
    }
    if !dead.is_empty() {
        findings.push(
            Finding::new(
                "queue.dead_letters",
                Level::Warn,
                format!(
                    "{} refused by the server ({})",
                    plural(dead.len(), "item"),
                    kinds(&dead)
                ),
            )
            .detail(
                "They stay on this computer, and nothing after them is held back. Export them for \
                 the school with `exam-desktop queue export --out FILE`; once the cause is fixed, \
                 `exam-desktop queue retry --all` sends them again, each as its own student.",
            )
            .with("ids", dead.iter().map(|i| i.id).collect::<Vec<_>>())
            .with(
                "statuses",
                dead.iter().map(|i| i.refused_with).collect::<Vec<_>>(),
            ),
        );
    }
    if telemetry > 0 {
        findings.push(Finding::new(
            "queue.telemetry",
            Level::Info,
            format!(
                "{} of telemetry waiting (sent when possible, the first to go when space runs short)",
                plural(telemetry, "item")
            ),
        ));
    }
    findings
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// "3 answer, 1 submission" of some items.
fn kinds(items: &[&QueueItem]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for item in items {
        *counts.entry(item.kind.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Items no student owns (kept by an earlier version): never sent, counted for IT.
fn unowned_finding(data_dir: &Path) -> Option<Finding> {
    let path = data_dir.join(crate::store::FILE_NAME);
    let conn = databases::open_read_only(&path).ok()?;
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM queue WHERE student IS NULL AND status IN ('pending', 'dead')",
            [],
            |r| r.get(0),
        )
        .ok()?;
    (n > 0).then(|| {
        Finding::new(
            "queue.unowned",
            Level::Info,
            format!(
                "{} kept by an earlier version belong to no student",
                plural(n as usize, "item")
            ),
        )
        .detail("They are never sent (no student's credentials may carry them).")
        .with("items", n)
    })
}

/// Opens the queue for a tool that changes it or reads through it: refused while the app
/// runs, and on a damaged database (the queue would set it aside and start an empty one —
/// the app's decision, at its start, with IT told).
fn open_queue(data_dir: &Path) -> Result<Queue, ToolError> {
    let path = data_dir.join(crate::store::FILE_NAME);
    if !path.exists() {
        return Err(ToolError::NoDatabase(path));
    }
    match databases::open_alone(&path) {
        Ok(None) => return Err(ToolError::AppRunning(data_dir.to_path_buf())),
        Ok(Some(conn)) => {
            if let Some(problem) = databases::damage(&conn).map_err(sqlite(&path))? {
                return Err(ToolError::Damaged { path, problem });
            }
        }
        Err(error) if databases::is_damage(&error) => {
            return Err(ToolError::Damaged {
                path,
                problem: error.to_string(),
            })
        }
        Err(error) => return Err(sqlite(&path)(error)),
    }
    if databases::app_running(data_dir) {
        return Err(ToolError::AppRunning(data_dir.to_path_buf()));
    }
    Ok(Queue::open(&path, Limits::default())?)
}

/// Every student name this computer's database knows (to scrub exports with).
pub(super) fn known_students(conn: &Connection) -> Vec<String> {
    let queries = [
        "SELECT student FROM queue",
        "SELECT student FROM inbox",
        "SELECT username FROM attempts",
        "SELECT username FROM exam_list",
        "SELECT username FROM opened_packages",
        "SELECT student FROM security_reports",
        "SELECT student FROM outages",
    ];
    let mut names: Vec<String> = Vec::new();
    for sql in queries {
        // A table an older schema lacks has no names.
        let Ok(mut stmt) = conn.prepare(&format!("{sql} WHERE 1 GROUP BY 1")) else {
            continue;
        };
        let found: Vec<String> = match stmt.query_map([], |r| r.get::<_, Option<String>>(0)) {
            Ok(rows) => rows.flatten().flatten().collect(),
            Err(_) => Vec::new(),
        };
        names.extend(found.into_iter().filter(|n| !n.is_empty()));
    }
    names.sort();
    names.dedup();
    // Longest first, so a name is never replaced inside a longer one before it.
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')
}

/// `text` with each whole-word occurrence of `names` replaced by `<student>`.
pub(super) fn scrub(text: &str, names: &[String]) -> String {
    let mut text = text.to_string();
    for name in names {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find(name.as_str()) {
            let before = rest[..at].chars().next_back();
            let after = rest[at + name.len()..].chars().next();
            out.push_str(&rest[..at]);
            if before.is_some_and(is_name_char) || after.is_some_and(is_name_char) {
                out.push_str(name);
            } else {
                out.push_str("<student>");
            }
            rest = &rest[at + name.len()..];
        }
        out.push_str(rest);
        text = out;
    }
    text
}

fn scrub_letter(mut letter: DeadLetter, names: &[String]) -> DeadLetter {
    let clean = |s: &mut String| *s = scrub(s, names);
    clean(&mut letter.path);
    clean(&mut letter.stream);
    for field in [
        &mut letter.error,
        &mut letter.response_body,
        &mut letter.body,
    ] {
        if let Some(text) = field.as_mut() {
            clean(text);
        }
    }
    letter
}

/// What `export` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub path: PathBuf,
    pub items: usize,
}

/// Writes every refused item (the app's dead-letter export, every student's) to a new
/// owner-only file `out`: no student's name, no token; answers the queue keeps sealed stay
/// sealed (their students' keys are not opened here).
pub fn export(data_dir: &Path, out: &Path) -> Result<Exported, ToolError> {
    if out.exists() {
        return Err(ToolError::Exists(out.to_path_buf()));
    }
    let queue = open_queue(data_dir)?;
    let letters = queue.dead_letters(u32::MAX)?;
    let names = known_students(&queue.store().lock());
    let letters: Vec<DeadLetter> = letters
        .into_iter()
        .map(|l| scrub_letter(l, &names))
        .collect();
    let json = serde_json::to_string_pretty(&letters)
        .map_err(|e| ToolError::Queue(QueueError::Body(e.to_string())))?;
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut file = crate::files::private_options()
            .write(true)
            .create_new(true)
            .open(out)?;
        file.write_all(json.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    };
    if let Err(error) = write() {
        // A file cut short is no export: it goes (unless it was never made).
        if error.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(out);
        }
        return Err(ToolError::Write {
            path: out.to_path_buf(),
            error,
        });
    }
    Ok(Exported {
        path: out.to_path_buf(),
        items: letters.len(),
    })
}

/// Which refused items to send again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    One(i64),
    All,
}

/// What `retry` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retried {
    /// Back in the queue, each with its own student.
    pub retried: Vec<i64>,
    /// Left as they were: no student owns them, so they can never be sent.
    pub unowned: Vec<i64>,
}

/// Puts refused items back in the queue (the queue's own retry), to be sent by the app with
/// each one's own student's credentials.
pub fn retry(data_dir: &Path, which: Which) -> Result<Retried, ToolError> {
    let queue = open_queue(data_dir)?;
    let path = queue.path().to_path_buf();
    let dead: Vec<(i64, bool)> = {
        let conn = queue.store().lock();
        let mut stmt = conn
            .prepare("SELECT id, student IS NOT NULL FROM queue WHERE status = 'dead' ORDER BY id")
            .map_err(sqlite(&path))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sqlite(&path))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(sqlite(&path))?
    };
    let chosen: Vec<(i64, bool)> = match which {
        Which::All => dead,
        Which::One(id) => match dead.into_iter().find(|(d, _)| *d == id) {
            Some((id, false)) => return Err(ToolError::Unowned(id)),
            Some(found) => vec![found],
            None => return Err(ToolError::NoSuchDeadLetter(id)),
        },
    };
    let mut outcome = Retried::default();
    for (id, owned) in chosen {
        if owned {
            queue.retry_dead(id)?;
            outcome.retried.push(id);
        } else {
            outcome.unowned.push(id);
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;
    use crate::doctor::tests::documented;
    use crate::owner::Owner;
    use crate::queue::{NewEntry, Outcome};

    const NOW: i64 = 1_750_000_000_000;

    fn item(id: i64, kind: &str, state: &str, age_s: u64) -> QueueItem {
        QueueItem {
            id,
            kind: kind.into(),
            state: state.into(),
            exam_id: Some("exam-1".into()),
            attempt_id: Some("att-1".into()),
            tries: 0,
            age_s,
            bytes: 100,
            refused_with: (state == "dead").then_some(422),
        }
    }

    /// Items, and the codes and levels of their findings.
    type Row = (Vec<QueueItem>, Vec<(&'static str, Level)>);

    #[test]
    fn waiting_backlogged_refused_and_telemetry_as_a_table() {
        let t = Thresholds::default(); // backlog after 10 min
        let table: Vec<Row> = vec![
            (vec![], vec![("queue.empty", Level::Ok)]),
            (
                vec![item(1, "telemetry", "pending", 9_000)],
                vec![("queue.empty", Level::Ok), ("queue.telemetry", Level::Info)],
            ),
            (
                vec![
                    item(1, "answer", "pending", 30),
                    item(2, "submission", "in_flight", 5),
                ],
                vec![("queue.waiting", Level::Info)],
            ),
            (
                vec![item(1, "answer", "pending", 601)],
                vec![("queue.backlog", Level::Warn)],
            ),
            (
                vec![item(1, "answer", "dead", 99_999)],
                vec![("queue.dead_letters", Level::Warn)],
            ),
        ];
        for (items, want) in table {
            let findings = summarise(&items, 2, &t);
            for f in &findings {
                documented(f);
            }
            let got: Vec<(&str, Level)> = findings
                .iter()
                .map(|f| (f.code.as_str(), f.level))
                .collect();
            assert_eq!(got, want, "{items:?}");
        }
        let findings = summarise(
            &[
                item(1, "answer", "pending", 30),
                item(2, "submission", "pending", 7_300),
            ],
            2,
            &t,
        );
        assert_eq!(
            findings[0].title,
            "2 items waiting to be sent (1 answer, 1 submission), the oldest for 2 h 1 min"
        );
        assert!(findings[0].detail.contains("(2 students of this computer)"));
        assert_eq!(findings[0].evidence["by_state"]["pending"]["answer"], 1);
    }

    #[test]
    fn names_are_scrubbed_as_whole_words_only() {
        let names = vec![
            "student12".to_string(),
            "student1".to_string(),
            "an".to_string(),
        ];
        assert_eq!(
            scrub(
                r#"{"detail":"attempt of student1 is closed","by":"student12","x":"student123"}"#,
                &names
            ),
            r#"{"detail":"attempt of <student> is closed","by":"<student>","x":"student123"}"#
        );
        assert_eq!(scrub("cannot an answer", &names), "cannot <student> answer");
        assert_eq!(
            scrub("/v1/users/student1/x", &names),
            "/v1/users/<student>/x"
        );
    }

    #[test]
    fn the_list_renders_ids_and_never_a_student() {
        let text = render_list(&[
            item(7, "answer", "dead", 4_000),
            item(8, "submission", "pending", 61),
        ]);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "ID  KIND        STATE       EXAM    ATTEMPT  TRIES  AGE     SIZE"
        );
        assert_eq!(
            lines.next().unwrap(),
            "7   answer      dead (422)  exam-1  att-1    0      66 min  100 B"
        );
        assert!(text.contains("1 waiting, 1 refused by the server"));
        assert_eq!(render_list(&[]), "Nothing waits to be sent.\n");
    }

    /// A queue with one refused attempt creation of `student1` (its reply names them) and one
    /// waiting answer of theirs.
    fn queue_with_a_dead_letter(dir: &Path) -> i64 {
        let queue = Queue::open(&dir.join(crate::store::FILE_NAME), Limits::default()).unwrap();
        let owner = Owner::new("http://127.0.0.1:8787", "student1");
        let start = queue
            .enqueue(
                NewEntry::start_attempt("exam-7", "att-9", "2025-01-01T00:00:00Z").owned_by(&owner),
            )
            .unwrap();
        let claimed = queue.claim(10).unwrap();
        assert_eq!(claimed.len(), 1);
        queue
            .complete(&[(
                start.id,
                Outcome::Dead {
                    status: 409,
                    body: r#"{"detail":"student1 already has an attempt"}"#.into(),
                    error: "refused for student1".into(),
                },
            )])
            .unwrap();
        queue
            .enqueue(
                NewEntry::answer(
                    "att-9",
                    "q1",
                    serde_json::json!("B"),
                    "2025-01-01T00:00:01Z",
                )
                .owned_by(&owner),
            )
            .unwrap();
        start.id
    }

    #[test]
    fn list_export_and_retry_never_name_the_student_and_keep_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let dead = queue_with_a_dead_letter(dir.path());
        let items = list(dir.path(), crate::clock::now_ms()).unwrap();
        assert_eq!(items.len(), 2, "{items:?}");
        let refused = items.iter().find(|i| i.id == dead).unwrap();
        assert_eq!(refused.state, "dead");
        assert_eq!(refused.exam_id.as_deref(), Some("exam-7"));
        assert_eq!(refused.attempt_id.as_deref(), Some("att-9"));
        assert_eq!(refused.refused_with, Some(409));
        assert!(!serde_json::to_string(&items).unwrap().contains("student1"));

        let out = dir.path().join("refused.json");
        let exported = export(dir.path(), &out).unwrap();
        assert_eq!(exported.items, 1);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(!text.contains("student1"), "{text}");
        assert!(text.contains("<student> already has an attempt"), "{text}");
        assert!(matches!(
            export(dir.path(), &out),
            Err(ToolError::Exists(_))
        ));

        assert!(matches!(
            retry(dir.path(), Which::One(dead + 100)),
            Err(ToolError::NoSuchDeadLetter(_))
        ));
        let retried = retry(dir.path(), Which::All).unwrap();
        assert_eq!(retried.retried, [dead]);
        let conn = Connection::open(dir.path().join(crate::store::FILE_NAME)).unwrap();
        let (status, student): (String, String) = conn
            .query_row(
                "SELECT status, student FROM queue WHERE id = ?1",
                params![dead],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((status.as_str(), student.as_str()), ("pending", "student1"));
    }

    #[test]
    fn tools_that_change_the_queue_refuse_while_the_app_runs_and_on_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            retry(dir.path(), Which::All),
            Err(ToolError::NoDatabase(_))
        ));
        queue_with_a_dead_letter(dir.path());
        let running = crate::store::Store::open_in(dir.path()).unwrap();
        assert!(matches!(
            retry(dir.path(), Which::All),
            Err(ToolError::AppRunning(_))
        ));
        // Reading still works.
        assert_eq!(list(dir.path(), NOW).unwrap().len(), 2);
        drop(running);
        std::fs::write(dir.path().join(crate::store::FILE_NAME), vec![0x5a; 8192]).unwrap();
        assert!(matches!(
            export(dir.path(), &dir.path().join("x.json")),
            Err(ToolError::Damaged { .. })
        ));
        // The damaged file was not set aside nor replaced.
        assert_eq!(
            std::fs::read(dir.path().join(crate::store::FILE_NAME)).unwrap(),
            vec![0x5a; 8192]
        );
    }
}
