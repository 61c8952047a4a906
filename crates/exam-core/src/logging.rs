//! Logs: `tracing` to stderr and to a size-capped, rotating file in the data directory.
//!
//! Lab machines run for months and disks fill up, so the file is capped by size and only a
//! few old files are kept (`exam-desktop.log`, `.log.1`, … `.log.{max_files-1}`). Secrets
//! never reach a log because they travel as [`crate::secret::Secret`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer, Registry};

use crate::config::LogSettings;

pub const LOG_FILE_NAME: &str = "exam-desktop.log";

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot open the log file in {dir}: {source}")]
    OpenFile { dir: PathBuf, source: io::Error },
    #[error("logging was already set up in this process")]
    AlreadySet,
}

/// A file that starts over in a new file when it would grow past `max_bytes`,
/// keeping at most `max_files` files in all.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_files: u32,
    file: File,
    written: u64,
}

impl RotatingFile {
    pub fn open(dir: &Path, max_bytes: u64, max_files: u32) -> io::Result<Self> {
        crate::files::private_dir(dir)?;
        let path = dir.join(LOG_FILE_NAME);
        let file = crate::files::private_options()
            .create(true)
            .append(true)
            .open(&path)?;
        crate::files::private_file(&path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path,
            max_bytes: max_bytes.max(1),
            max_files: max_files.max(1),
            file,
            written,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let oldest = self.max_files - 1;
        if oldest == 0 {
            self.file = crate::files::private_options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&self.path)?;
        } else {
            match fs::remove_file(self.numbered(oldest)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            for n in (1..oldest).rev() {
                let from = self.numbered(n);
                if from.exists() {
                    fs::rename(&from, self.numbered(n + 1))?;
                }
            }
            fs::rename(&self.path, self.numbered(1))?;
            self.file = crate::files::private_options()
                .create(true)
                .append(true)
                .open(&self.path)?;
        }
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len() as u64;
        if self.written > 0 && self.written + len > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.written += len;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// What [`init`] set up.
#[derive(Debug)]
pub struct LogOutcome {
    /// The current log file, when the file could be opened.
    pub file: Option<PathBuf>,
    /// Why there is no log file (logs then go to stderr only).
    pub file_error: Option<LoggingError>,
}

/// The filter: `RUST_LOG` when set (developers), else the configured level.
fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::builder().parse(level))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The file layer, shared by [`init`] and the tests so they check the real format.
pub fn file_layer<S>(file: RotatingFile) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer().with_ansi(false).with_writer(Mutex::new(file))
}

/// Sets up process-wide logging to stderr and to the rotating file in `dir`.
/// A file that cannot be opened does not stop the app: logs then go to stderr only.
pub fn init(settings: &LogSettings, dir: &Path) -> Result<LogOutcome, LoggingError> {
    let (file, file_error) =
        match RotatingFile::open(dir, settings.max_file_bytes, settings.max_files) {
            Ok(f) => (Some(f), None),
            Err(source) => (
                None,
                Some(LoggingError::OpenFile {
                    dir: dir.to_path_buf(),
                    source,
                }),
            ),
        };
    let path = file.as_ref().map(|f| f.path().to_path_buf());
    Registry::default()
        .with(filter(&settings.level))
        .with(fmt::layer().with_writer(io::stderr))
        .with(file.map(file_layer))
        .try_init()
        .map_err(|_| LoggingError::AlreadySet)?;
    Ok(LogOutcome {
        file: path,
        file_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn rotation_caps_size_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = RotatingFile::open(dir.path(), 100, 3).unwrap();
        for i in 0..50 {
            writeln!(file, "line {i:04} of the log, about forty bytes").unwrap();
        }
        file.flush().unwrap();
        assert_eq!(
            files_in(dir.path()),
            [
                "exam-desktop.log",
                "exam-desktop.log.1",
                "exam-desktop.log.2"
            ]
        );
        for name in files_in(dir.path()) {
            let len = fs::metadata(dir.path().join(&name)).unwrap().len();
            assert!(len <= 100, "{name} has {len} bytes");
        }
        let newest = fs::read_to_string(dir.path().join(LOG_FILE_NAME)).unwrap();
        assert!(newest.contains("line 0049"), "{newest}");
        let older = fs::read_to_string(dir.path().join("exam-desktop.log.1")).unwrap();
        assert!(older.contains("line 0047"), "{older}");
    }

    #[test]
    fn reopening_appends_and_counts_existing_bytes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut file = RotatingFile::open(dir.path(), 60, 2).unwrap();
            file.write_all(&[b'a'; 50]).unwrap();
        }
        let mut file = RotatingFile::open(dir.path(), 60, 2).unwrap();
        file.write_all(&[b'b'; 20]).unwrap();
        assert_eq!(
            files_in(dir.path()),
            ["exam-desktop.log", "exam-desktop.log.1"]
        );
        assert_eq!(
            fs::read(dir.path().join("exam-desktop.log.1")).unwrap(),
            [b'a'; 50]
        );
    }

    #[test]
    fn a_secret_logged_through_the_file_layer_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let file = RotatingFile::open(dir.path(), 1 << 20, 2).unwrap();
        let subscriber = Registry::default().with(file_layer(file));
        let token = Secret::new("rt-5f1c0ffee-very-secret".to_string());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(user = "student1", refresh_token = ?token, "refreshed");
            tracing::warn!("token now {token}");
        });
        let text = fs::read_to_string(dir.path().join(LOG_FILE_NAME)).unwrap();
        assert!(
            text.contains("student1") && text.contains("<redacted>"),
            "{text}"
        );
        assert!(!text.contains("rt-5f1c0ffee"), "{text}");
    }
}
