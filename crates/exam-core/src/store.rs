//! The client's SQLite database (`<data_dir>/exam-desktop.db`): opened once, migrated at
//! start with the schema in the repository's `migrations/`, WAL with `synchronous=FULL` so a
//! committed write survives a power cut. Owner-only files ([`crate::files`]), and
//! `secure_delete`, so removed rows (a student's data once they left) are overwritten.
//!
//! A damaged database is not the end of the exams on this computer: it is set aside under a
//! name that says so and when (`exam-desktop.db.damaged-<time>`, with its `-wal` and `-shm`),
//! kept for IT, and a new one is started; [`Store::quarantined`] tells the app to say so.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

/// The database file inside the data directory.
pub const FILE_NAME: &str = "exam-desktop.db";

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../../migrations/0001_queue.sql")),
        M::up(include_str!("../../../migrations/0002_exam.sql")),
        M::up_with_hook(
            include_str!("../../../migrations/0003_replies_not_the_servers.sql"),
            revive_intercepted,
        ),
        M::up_with_hook(
            include_str!("../../../migrations/0004_owners.sql"),
            derive_owners,
        ),
        M::up(include_str!("../../../migrations/0005_retry_clock.sql")),
        M::up(include_str!("../../../migrations/0006_sealed_packages.sql")),
        M::up(include_str!(
            "../../../migrations/0007_security_reports.sql"
        )),
        M::up(include_str!(
            "../../../migrations/0008_outages_reported.sql"
        )),
        M::up(include_str!("../../../migrations/0009_fair_time.sql")),
    ])
}

/// The schema version this build writes.
pub fn schema_version() -> usize {
    9
}

/// Gives every queued row of an earlier version the student of the attempt it belongs to
/// (its stream is `attempt:<id>`), inbox rows included (their entries are read when the
/// queue opens; here each row takes the student of its first entry's attempt). Rows that
/// belong to no attempt keep no student: they are never sent.
fn derive_owners(tx: &rusqlite::Transaction) -> rusqlite_migration::HookResult {
    let queued = tx.execute(
        "UPDATE queue SET student = (
             SELECT a.username FROM attempts a WHERE 'attempt:' || a.attempt_id = queue.stream)
         WHERE student IS NULL",
        [],
    )?;
    // An inbox row's entries are one save or one group of saves of one attempt.
    let rows: Vec<(i64, Vec<crate::queue::inbox::InboxEntry>)> = {
        let mut stmt = tx.prepare("SELECT id, entries FROM inbox")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, crate::queue::inbox::decode_column(r, 1)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut inbox = 0;
    for (id, entries) in rows {
        let Some(first) = entries.first() else {
            continue;
        };
        inbox += tx.execute(
            "UPDATE inbox SET student = (
                 SELECT a.username FROM attempts a WHERE 'attempt:' || a.attempt_id = ?2)
             WHERE id = ?1",
            rusqlite::params![id, first.stream],
        )?;
    }
    tracing::info!(
        queued,
        inbox,
        "queued work now names its student (from its attempt)"
    );
    Ok(())
}

/// Puts back to pending every dead letter whose stored reply was not the server's
/// ([`crate::http::judge`]): a portal's redirect or page, a proxy's error. Entries that died
/// without a reply (a body that could not be opened, say) stay as they are.
fn revive_intercepted(tx: &rusqlite::Transaction) -> rusqlite_migration::HookResult {
    let dead: Vec<(i64, i64, Option<String>)> = {
        let mut stmt = tx.prepare(
            "SELECT id, response_status, response_body FROM queue
             WHERE status = 'dead' AND response_status IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut revived = 0;
    for (id, status, body) in dead {
        let Some(status) = u16::try_from(status)
            .ok()
            .and_then(|s| reqwest::StatusCode::from_u16(s).ok())
        else {
            continue;
        };
        let body = body.unwrap_or_default();
        if crate::http::judge(status, &reqwest::header::HeaderMap::new(), body.as_bytes()).is_none()
        {
            continue;
        }
        // Due at once (0: whatever this computer's clock says).
        revived += tx.execute(
            "UPDATE queue SET status = 'pending', attempts = 0, next_attempt_at = 0,
                    completed_at = NULL, response_status = NULL, response_body = NULL,
                    last_error = 'sent again: the earlier reply was not the server''s'
             WHERE id = ?1",
            rusqlite::params![id],
        )?;
    }
    if revived > 0 {
        tracing::info!(
            revived,
            "queued requests refused by a portal or a proxy are pending again"
        );
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the database {path} was written by a newer version of Exam Bank Desktop (schema {found}; \
         this version knows up to {known}). Install the newer version again; nothing was changed"
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    #[error("the database {path} is damaged or is not an Exam Bank database: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("the disk holding {path} is full: free some space; nothing already saved was lost")]
    DiskFull { path: PathBuf },
    #[error("the database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// Wraps an SQLite error of the database at `path`, recognising a full disk and damage.
    pub fn sqlite(path: &Path, source: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match source.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::DiskFull { path: path.into() },
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Self::Corrupt {
                path: path.into(),
                message: source.to_string(),
            },
            _ => Self::Sqlite {
                path: path.into(),
                source,
            },
        }
    }
}

/// One connection behind a mutex: every write is short and synchronous, and SQLite has one
/// writer anyway.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    quarantined: Option<Quarantined>,
}

/// A damaged database set aside at start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Quarantined {
    /// Where it is kept now.
    pub kept_as: String,
    /// What was wrong with it, as SQLite said.
    pub problem: String,
    /// When it was set aside (RFC 3339).
    pub at: String,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`. A database from a
    /// newer schema is refused untouched; a damaged one is set aside and a new one started
    /// ([`Store::quarantined`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        match Self::open_checked(path) {
            Err(StoreError::Corrupt { message, .. }) => {
                let at = crate::now_rfc3339();
                let kept = quarantine(path, &at).map_err(|error| StoreError::Corrupt {
                    path: path.into(),
                    message: format!("{message}; it could not be set aside: {error}"),
                })?;
                tracing::error!(
                    kept_as = %kept.display(),
                    problem = %message,
                    "the database was damaged: it is kept for IT and a new one is started"
                );
                let mut store = Self::open_checked(path)?;
                store.quarantined = Some(Quarantined {
                    kept_as: kept.display().to_string(),
                    problem: message,
                    at,
                });
                Ok(store)
            }
            other => other,
        }
    }

    /// The damaged database set aside when this one was opened, if any.
    pub fn quarantined(&self) -> Option<&Quarantined> {
        self.quarantined.as_ref()
    }

    fn open_checked(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            let _ = crate::files::private_dir(dir);
        }
        if !path.exists() {
            // Created owner-only from its first byte; SQLite gives `-wal` and `-shm` the
            // same permissions.
            let _ = crate::files::private_options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path);
        }
        let _ = crate::files::private_file(path);
        let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.into(),
            source,
        })?;
        let err = |e| StoreError::sqlite(path, e);
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        // Reading the version first also tells a damaged or foreign file apart.
        let found: usize = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(err)?;
        if found > schema_version() {
            return Err(StoreError::TooNew {
                path: path.into(),
                found,
                known: schema_version(),
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(err)?;
        // A truncated or overwritten file can open and still be damaged further in.
        let check: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(err)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: path.into(),
                message: check,
            });
        }
        conn.set_prepared_statement_cache_capacity(64);
        migrations().to_latest(&mut conn).map_err(|e| match e {
            rusqlite_migration::Error::RusqliteError { err, .. } => StoreError::sqlite(path, err),
            other => StoreError::Corrupt {
                path: path.into(),
                message: other.to_string(),
            },
        })?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            let _ = crate::files::private_file(Path::new(&side));
        }
        Ok(Self {
            path: path.into(),
            conn: Mutex::new(conn),
            quarantined: None,
        })
    }

    /// Opens `<data_dir>/exam-desktop.db`.
    pub fn open_in(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open(&data_dir.join(FILE_NAME))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for one short synchronous piece of work.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Maps an SQLite error of this database.
    pub fn error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, source)
    }
}

/// Renames the database at `path` (and its `-wal` and `-shm`) to `<name>.damaged-<time>`;
/// the new name of the database.
fn quarantine(path: &Path, at: &str) -> std::io::Result<PathBuf> {
    let stamp = at.replace(':', "-");
    let mut kept = path.as_os_str().to_owned();
    kept.push(format!(".damaged-{stamp}"));
    let kept = PathBuf::from(kept);
    for suffix in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut to = kept.as_os_str().to_owned();
        to.push(suffix);
        match std::fs::rename(&from, &to) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, &kept)?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid_and_the_version_is_known() {
        assert!(migrations().validate().is_ok());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let version: usize = store
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema_version());
        let mode: String = store
            .lock()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_newer_database_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
            conn.execute_batch("CREATE TABLE future (x)").unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let error = Store::open(&path).err().unwrap();
        let message = error.to_string();
        assert!(message.contains("newer version"), "{message}");
        assert!(message.contains("schema 99"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    /// Opens `path` after `damage` was done to it: the damaged file is kept, named, and a
    /// new database is in its place.
    fn set_aside(damage: impl FnOnce(&Path)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        damage(&path);
        let damaged = std::fs::read(&path).unwrap();
        let store = Store::open(&path).unwrap();
        let quarantined = store.quarantined().expect("set aside").clone();
        assert!(quarantined.kept_as.contains(".damaged-"), "{quarantined:?}");
        assert!(!quarantined.problem.is_empty());
        // Kept byte for byte, for IT.
        assert_eq!(std::fs::read(&quarantined.kept_as).unwrap(), damaged);
        // And a working database is in its place.
        let version: usize = store
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema_version());
        drop(store);
        assert!(Store::open(&path).unwrap().quarantined().is_none());
    }

    #[test]
    fn a_garbage_file_is_set_aside_and_a_new_database_started() {
        set_aside(|path| std::fs::write(path, vec![0x5a; 8192]).unwrap());
    }

    #[test]
    fn a_truncated_database_is_set_aside_and_a_new_database_started() {
        set_aside(|path| {
            {
                let store = Store::open(path).unwrap();
                let conn = store.lock();
                conn.execute_batch(
                    "CREATE TABLE filler (x BLOB);
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
                     INSERT INTO filler SELECT randomblob(1000) FROM n;
                     PRAGMA wal_checkpoint(TRUNCATE);",
                )
                .unwrap();
            }
            let bytes = std::fs::read(path).unwrap();
            assert!(bytes.len() > 100_000);
            std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
        });
    }

    #[cfg(unix)]
    #[test]
    fn the_database_and_its_directory_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        let store = Store::open_in(&dir).unwrap();
        store
            .lock()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
        assert_eq!(mode(&dir.join(format!("{FILE_NAME}-wal"))), 0o600);
        let secure: i64 = store
            .lock()
            .pragma_query_value(None, "secure_delete", |r| r.get(0))
            .unwrap();
        assert_eq!(secure, 1);
    }
}
