//! The SQLite files of the data folder (the app's database with the queue and the exams,
//! and the history of its measurements): each one checked with `PRAGMA quick_check`, and
//! whether the app holds it open — how the doctor and the tools that change data know the
//! app is running on this folder.
//!
//! The app keeps its databases open in WAL mode for as long as it runs, and an open WAL
//! connection holds a shared lock on its file. A connection that asks for the file alone
//! (`locking_mode = EXCLUSIVE`) is refused while any other holds it: that refusal is the
//! sign the app is there. When the app holds a file, it is read through a read-only
//! connection, which never blocks the app; when nobody does, the connection that got it alone
//! checks it, with `query_only` on and no checkpoint of a log the app left, so nothing is
//! written either way and a damaged file stays exactly as it was for IT.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::ffi::ErrorCode;
use rusqlite::{Connection, OpenFlags};

use super::{Finding, Level};

/// The app's own databases, in the data folder.
pub const APP_FILES: [&str; 2] = [
    crate::store::FILE_NAME,
    crate::analytics::history::FILE_NAME,
];

/// What stands between the doctor and a database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Nobody has it open: it was taken for this process alone.
    Nobody,
    /// Another process (the app) has it open.
    Another,
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

pub(super) fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Opens `path` for this process alone, never writing: `None` when another process holds it
/// open. A file that is not a database is an error.
pub fn open_alone(path: &Path) -> rusqlite::Result<Option<Connection>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // A log left by the app stays as it was (a checkpoint at close would write it into the
    // file); one this connection makes is empty, and removed at close.
    let mut log = path.as_os_str().to_owned();
    log.push("-wal");
    if Path::new(&log).exists() {
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    }
    conn.busy_timeout(Duration::ZERO)?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    conn.pragma_update(None, "query_only", true)?;
    match conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(Some(conn)),
        Err(error) if is_busy(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// A read-only connection that never blocks the app holding the file.
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(1))?;
    Ok(conn)
}

/// A connection to read `path` with, and who else holds it.
pub fn open_for_reading(path: &Path) -> rusqlite::Result<(Connection, Holder)> {
    match open_alone(path)? {
        Some(conn) => Ok((conn, Holder::Nobody)),
        None => Ok((open_read_only(path)?, Holder::Another)),
    }
}

/// Whether the app runs on `data_dir`: it holds one of its databases open. A file that
/// cannot be told (damaged, unreadable) does not count: the app sets a damaged database aside
/// at its start, so it never runs on one.
pub fn app_running(data_dir: &Path) -> bool {
    APP_FILES.iter().any(|name| {
        let path = data_dir.join(name);
        path.exists() && matches!(open_alone(&path), Ok(None))
    })
}

/// The database files of `data_dir`: the app's (whether there or not) and any other `*.db`,
/// then those the app set aside as damaged.
fn files(data_dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut databases: Vec<PathBuf> = APP_FILES.iter().map(|n| data_dir.join(n)).collect();
    let mut set_aside = Vec::new();
    if let Ok(entries) = std::fs::read_dir(data_dir) {
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            if name.contains(".damaged-") {
                if !name.ends_with("-wal") && !name.ends_with("-shm") {
                    set_aside.push(data_dir.join(name));
                }
            } else if name.ends_with(".db") && !APP_FILES.contains(&name.as_str()) {
                databases.push(data_dir.join(name));
            }
        }
    }
    (databases, set_aside)
}

/// Every database's finding, and whether the app holds one open.
pub fn check(data_dir: &Path, deadline: Instant) -> Vec<Finding> {
    let (databases, set_aside) = files(data_dir);
    let mut findings = Vec::new();
    let mut held = false;
    for path in &databases {
        let (finding, holder) = check_one(path, deadline);
        held |= holder == Some(Holder::Another);
        findings.push(finding);
    }
    for path in set_aside {
        findings.push(
            Finding::new(
                "database.set_aside",
                Level::Warn,
                format!("A damaged database was set aside: {}", path.display()),
            )
            .detail(
                "The app found it damaged at a start, kept it for IT and started a new one. It \
                 may hold answers that were never delivered: keep it, and send it to whoever \
                 supports the app at the school before removing it.",
            )
            .with("path", path.display().to_string())
            .with("bytes", std::fs::metadata(&path).map(|m| m.len()).ok()),
        );
    }
    if held {
        findings.insert(
            0,
            Finding::new(
                "app.running",
                Level::Info,
                "Exam Bank Desktop is running on this data folder",
            )
            .detail(
                "Its databases were read without disturbing it. `queue export`, `queue retry` and \
                 `doctor --purge` wait until it is closed.",
            )
            .with("data_dir", data_dir.display().to_string()),
        );
    }
    findings
}

/// One database's finding, and who held it (none when it could not be opened).
fn check_one(path: &Path, deadline: Instant) -> (Finding, Option<Holder>) {
    let shown = path.display().to_string();
    let size = std::fs::metadata(path).map(|m| m.len()).ok();
    if !path.exists() {
        let finding = Finding::new(
            "database.missing",
            Level::Info,
            format!("{} has not been created yet", file_name(path)),
        )
        .with("path", &shown);
        return (finding, None);
    }
    let (conn, holder) = match open_for_reading(path) {
        Ok(opened) => opened,
        Err(error) => return (failure(path, &error), None),
    };
    if path.file_name().and_then(|n| n.to_str()) == Some(crate::store::FILE_NAME) {
        let version = conn.pragma_query_value(None, "user_version", |r| r.get::<_, usize>(0));
        match version {
            Ok(found) if found > crate::store::schema_version() => {
                let finding = Finding::new(
                    "database.too_new",
                    Level::Fail,
                    format!("{shown} was written by a newer version of the app"),
                )
                .detail(format!(
                    "Its schema is {found}; this version knows up to {}. Install the newer \
                     version again: this one will not open it (nothing is changed).",
                    crate::store::schema_version()
                ))
                .with("path", &shown)
                .with("schema", found);
                return (finding, Some(holder));
            }
            Ok(_) => {}
            Err(error) => return (failure(path, &error), Some(holder)),
        }
    }
    let finding = match quick_check(&conn, deadline) {
        Ok(lines) if lines.first().map(String::as_str) == Some("ok") => Finding::new(
            "database.ok",
            Level::Ok,
            format!("{} is sound", file_name(path)),
        )
        .with("path", &shown)
        .with("bytes", size)
        .with("read_only", holder == Holder::Another),
        Ok(lines) => corrupt(path, &lines.join("; ")),
        Err(error) if error.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) => {
            Finding::new(
                "database.not_checked",
                Level::Info,
                format!(
                    "{} is too large to check in the doctor's time",
                    file_name(path)
                ),
            )
            .detail("The app checks it every time it starts.")
            .with("path", &shown)
            .with("bytes", size)
        }
        Err(error) => failure(path, &error),
    };
    (finding, Some(holder))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn failure(path: &Path, error: &rusqlite::Error) -> Finding {
    if is_damage(error) {
        return corrupt(path, &error.to_string());
    }
    Finding::new(
        "database.unreadable",
        Level::Fail,
        format!("{} cannot be opened", path.display()),
    )
    .detail(format!(
        "SQLite says: {error}. Check that this account owns the data folder and its files."
    ))
    .with("path", path.display().to_string())
    .with("error", error.to_string())
}

fn corrupt(path: &Path, problem: &str) -> Finding {
    Finding::new(
        "database.corrupt",
        Level::Fail,
        format!("The database {} is damaged", path.display()),
    )
    .detail(format!(
        "SQLite says: {problem}.\nAt its next start the app sets it aside (kept for IT as \
         {}.damaged-<time>) and starts a new one. Work in it that was not delivered stays in the \
         set-aside file: keep it for IT.",
        file_name(path)
    ))
    .with("path", path.display().to_string())
    .with("problem", problem)
}

/// What `PRAGMA quick_check` finds wrong with the database of `conn`, however long it takes
/// (none: nothing).
pub fn damage(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let lines = quick_check(conn, Instant::now() + Duration::from_secs(24 * 3600))?;
    Ok((lines.first().map(String::as_str) != Some("ok")).then(|| lines.join("; ")))
}

/// `PRAGMA quick_check`'s first lines, cut short at `deadline` (an interrupted check is an
/// `OperationInterrupted` error).
fn quick_check(conn: &Connection, deadline: Instant) -> rusqlite::Result<Vec<String>> {
    if Instant::now() >= deadline {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
            None,
        ));
    }
    let interrupt = conn.get_interrupt_handle();
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(left) {
            interrupt.interrupt();
        }
    });
    let lines = conn.prepare("PRAGMA quick_check(5)").and_then(|mut stmt| {
        stmt.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()
    });
    drop(done);
    let _ = watchdog.join();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::tests::documented;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    fn codes(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn sound_missing_damaged_and_set_aside_files() {
        let dir = tempfile::tempdir().unwrap();
        let findings = check(dir.path(), far());
        assert_eq!(codes(&findings), ["database.missing", "database.missing"]);
        drop(crate::store::Store::open_in(dir.path()).unwrap());
        std::fs::write(dir.path().join("exam-desktop-history.db"), vec![0x5a; 8192]).unwrap();
        std::fs::write(
            dir.path()
                .join("exam-desktop.db.damaged-2025-01-01T00-00-00.000Z"),
            b"x",
        )
        .unwrap();
        let before = std::fs::read(dir.path().join("exam-desktop-history.db")).unwrap();
        let findings = check(dir.path(), far());
        for f in &findings {
            documented(f);
        }
        assert_eq!(
            codes(&findings),
            ["database.ok", "database.corrupt", "database.set_aside"]
        );
        assert_eq!(findings[0].evidence["read_only"], false);
        let damaged = dir
            .path()
            .join("exam-desktop-history.db")
            .display()
            .to_string();
        assert!(
            findings[1].title.contains(&damaged),
            "{}",
            findings[1].title
        );
        // Nothing was changed, nothing was added.
        assert_eq!(
            std::fs::read(dir.path().join("exam-desktop-history.db")).unwrap(),
            before
        );
        assert!(!dir.path().join("exam-desktop-history.db-wal").exists());
    }

    #[test]
    fn a_database_the_app_holds_is_read_without_blocking_it_and_says_the_app_runs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!app_running(dir.path()));
        let store = crate::store::Store::open_in(dir.path()).unwrap();
        assert!(app_running(dir.path()));
        let findings = check(dir.path(), far());
        assert_eq!(
            codes(&findings),
            ["app.running", "database.ok", "database.missing"]
        );
        assert_eq!(findings[1].evidence["read_only"], true);
        // The app writes on, undisturbed.
        store
            .lock()
            .execute_batch(
                "CREATE TABLE after_the_doctor (x); INSERT INTO after_the_doctor VALUES (1);",
            )
            .unwrap();
        drop(store);
        assert!(!app_running(dir.path()));
        let (conn, holder) = open_for_reading(&dir.path().join(crate::store::FILE_NAME)).unwrap();
        assert_eq!(holder, Holder::Nobody);
        // The doctor's own connection never writes.
        assert!(conn
            .execute_batch("CREATE TABLE by_the_doctor (x)")
            .is_err());
    }

    #[test]
    fn a_database_of_a_newer_version_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::store::FILE_NAME);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let findings = check(dir.path(), far());
        assert_eq!(findings[0].code, "database.too_new");
        documented(&findings[0]);
    }

    #[test]
    fn a_check_past_its_deadline_is_cut_short_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::store::FILE_NAME);
        {
            let store = crate::store::Store::open(&path).unwrap();
            store
                .lock()
                .execute_batch(
                    "CREATE TABLE filler (x BLOB);
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                     INSERT INTO filler SELECT randomblob(1000) FROM n;",
                )
                .unwrap();
        }
        let findings = check(dir.path(), Instant::now());
        assert_eq!(
            findings[0].code, "database.not_checked",
            "{:?}",
            findings[0]
        );
        documented(&findings[0]);
    }
}
