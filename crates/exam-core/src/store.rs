//! The client's SQLite database (`<data_dir>/exam-desktop.db`): opened once, migrated at
//! start with the schema in the repository's `migrations/`, WAL with `synchronous=FULL` so a
//! committed write survives a power cut.

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
    ])
}

/// The schema version this build writes.
pub fn schema_version() -> usize {
    4
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
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`. A database from a
    /// newer schema is refused untouched.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
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
        conn.set_prepared_statement_cache_capacity(64);
        migrations().to_latest(&mut conn).map_err(|e| match e {
            rusqlite_migration::Error::RusqliteError { err, .. } => StoreError::sqlite(path, err),
            other => StoreError::Corrupt {
                path: path.into(),
                message: other.to_string(),
            },
        })?;
        Ok(Self {
            path: path.into(),
            conn: Mutex::new(conn),
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
            conn.pragma_update(None, "user_version", 7).unwrap();
            conn.execute_batch("CREATE TABLE future (x)").unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let error = Store::open(&path).err().unwrap();
        let message = error.to_string();
        assert!(message.contains("newer version"), "{message}");
        assert!(message.contains("schema 7"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let error = Store::open(&path).err().unwrap();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
        assert!(error.to_string().contains(&path.display().to_string()));
    }
}
