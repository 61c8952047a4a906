//! The server's SQLite database: one connection behind a mutex, WAL, migrations at open — and
//! a second, read-only connection ([`Db::open_reader`]) for the long read-only queries of the
//! analytics (`routes::Route::reader`), so that one of them never holds up a student's write:
//! in WAL mode a reader and the writer do not wait for each other.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{Migrations, M};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot migrate the database {path}: {source}")]
    Migrate {
        path: String,
        source: rusqlite_migration::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/0001_init.sql")),
        M::up(include_str!("../migrations/0002_events_per_student.sql")),
        M::up(include_str!("../migrations/0003_sealed.sql")),
        M::up(include_str!("../migrations/0004_alerts.sql")),
        M::up(include_str!("../migrations/0005_alerts_by_device.sql")),
        M::up(include_str!("../migrations/0006_metric_minutes.sql")),
        M::up(include_str!("../migrations/0007_disk_free.sql")),
        M::up(include_str!("../migrations/0008_readiness.sql")),
    ])
}

pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let shown = path.display().to_string();
        let mut conn = Connection::open(path).map_err(|source| DbError::Open {
            path: shown.clone(),
            source,
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: an answer the server said it stored survives a power cut, or the client
        // would drop it from its queue and it would be lost.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        migrations()
            .to_latest(&mut conn)
            .map_err(|source| DbError::Migrate {
                path: shown,
                source,
            })?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// A read-only connection to the database at `path`, which [`Db::open`] has migrated.
    pub fn open_reader(path: &Path) -> Result<Self, DbError> {
        let shown = path.display().to_string();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| DbError::Open {
            path: shown,
            source,
        })?;
        conn.pragma_update(None, "query_only", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The connection, for one short synchronous piece of work (never held across `.await`).
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
