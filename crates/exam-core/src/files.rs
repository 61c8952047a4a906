//! Files the app writes on a shared computer: owner-only. The data directory, the database
//! (and its `-wal` and `-shm` files), logs and exports are readable by the OS account that
//! runs the app and nobody else: directories 0700, files 0600 on Unix. On Windows the data
//! directory is under the user's *local* application data (never roaming, so a database is
//! not copied to a server at sign-out), which only that user can read by default.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Creates `dir` (and its parents) if needed, and makes it owner-only.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    restrict(dir, 0o700)
}

/// Makes an existing file owner-only (nothing if it does not exist).
pub fn private_file(path: &Path) -> io::Result<()> {
    match restrict(path, 0o600) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Options that create a file owner-only (0600) from its first byte.
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Writes `contents` to a new owner-only file at `path` (replacing one that is there).
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file: File = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    private_file(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Removes the files of `dir` last changed more than `older_than` ago; how many.
pub fn remove_older_than(dir: &Path, older_than: Duration) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > older_than);
        if meta.is_file() && old && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path)?;
    if meta.permissions().mode() & 0o777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(path: &Path, _mode: u32) -> io::Result<()> {
    // The user's local application data is theirs alone by default; nothing to change.
    fs::metadata(path).map(drop)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_files_are_owner_only_even_when_they_were_not() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f");
        fs::write(&file, b"x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        write_private(&dir.join("g"), b"y").unwrap();
        assert_eq!(mode(&dir.join("g")), 0o600);
        private_file(&dir.join("missing")).unwrap();
    }

    #[test]
    fn old_files_are_removed_and_recent_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.json");
        let new = dir.path().join("new.json");
        fs::write(&old, b"1").unwrap();
        fs::write(&new, b"2").unwrap();
        let long_ago = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert_eq!(
            remove_older_than(dir.path(), Duration::from_secs(7 * 24 * 3600)).unwrap(),
            1
        );
        assert!(!old.exists() && new.exists());
        assert_eq!(
            remove_older_than(&dir.path().join("none"), Duration::ZERO).unwrap(),
            0
        );
    }
}
