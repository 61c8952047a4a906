//! The data folder and the disk under it: answers are saved there before anything else, so a
//! full disk is the one thing that can stop a save. Free space is measured the way the app's
//! history samples it ([`crate::analytics::free_space_mb`]) against the reserve the insights
//! keep for the queue (`analytics.insights.disk_reserve_mb`).

use std::path::{Path, PathBuf};

use super::{Finding, Level};
use crate::analytics::insights::Thresholds;

/// Under this much free space a save may fail any moment: SQLite needs room for its
/// write-ahead log and a checkpoint on top of the answers themselves.
pub const ALMOST_FULL_MB: f64 = 64.0;

/// The folder itself if it exists, else the nearest parent that does (where it will be made).
fn existing(path: &Path) -> Option<PathBuf> {
    path.ancestors().find(|p| p.exists()).map(Path::to_path_buf)
}

/// The data folder's and the disk's findings.
pub fn check(data_dir: &Path, thresholds: &Thresholds) -> Vec<Finding> {
    let mut findings = Vec::new();
    let shown = data_dir.display().to_string();
    if !data_dir.exists() {
        findings.push(
            Finding::new(
                "data_dir.missing",
                Level::Info,
                format!("No data folder yet at {shown}"),
            )
            .detail("Nothing is stored on this computer yet; the app makes the folder when it first starts.")
            .with("path", &shown),
        );
    } else if let Some(mode) = shared_mode(data_dir) {
        findings.push(
            Finding::new(
                "data_dir.shared",
                Level::Warn,
                format!("Other accounts of this computer can read the data folder (mode {mode:o})"),
            )
            .detail(format!(
                "It holds students' saved work. The app makes it owner-only when it starts; to do \
                 it now: chmod 700 {shown}"
            ))
            .with("path", &shown)
            .with("mode", format!("{mode:o}")),
        );
    }
    let free = existing(data_dir).and_then(|p| crate::analytics::free_space_mb(&p));
    findings.push(space_finding(&shown, free, thresholds));
    findings
}

#[cfg(unix)]
fn shared_mode(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn shared_mode(_dir: &Path) -> Option<u32> {
    // The user's local application data is theirs alone by default (see `crate::files`).
    None
}

/// The free space's finding: `free_mb` on the disk of the data folder at `path`.
pub(super) fn space_finding(path: &str, free_mb: Option<f64>, thresholds: &Thresholds) -> Finding {
    let reserve_mb = thresholds.disk_reserve_bytes / 1_048_576.0;
    let Some(free) = free_mb else {
        return Finding::new(
            "disk.unknown",
            Level::Info,
            "The free space of the data folder's disk could not be measured",
        )
        .with("path", path);
    };
    let (code, level, detail) = if free < ALMOST_FULL_MB {
        (
            "disk.almost_full",
            Level::Fail,
            "Answers may soon not be saved. Free space on this disk before the next exam \
             (old files, the recycle bin, other accounts' downloads).",
        )
    } else if free < reserve_mb {
        (
            "disk.low_space",
            Level::Warn,
            "Less than the space kept for waiting work. Free some before the next exam.",
        )
    } else {
        ("disk.ok", Level::Ok, "")
    };
    Finding::new(
        code,
        level,
        format!("{} free on the data folder's disk", megabytes(free)),
    )
    .detail(detail)
    .with("path", path)
    .with("free_mb", free.round())
    .with("reserve_mb", reserve_mb.round())
    .with("almost_full_mb", ALMOST_FULL_MB)
}

fn megabytes(mb: f64) -> String {
    if mb >= 10_240.0 {
        format!("{:.0} GiB", mb / 1024.0)
    } else if mb >= 1024.0 {
        format!("{:.1} GiB", mb / 1024.0)
    } else {
        format!("{mb:.0} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::tests::documented;

    #[test]
    fn free_space_against_the_reserve_and_the_floor() {
        let thresholds = Thresholds::default(); // a 512 MiB reserve
        let table = [
            (Some(50_000.0), "disk.ok", Level::Ok),
            (Some(600.0), "disk.ok", Level::Ok),
            (Some(500.0), "disk.low_space", Level::Warn),
            (Some(63.0), "disk.almost_full", Level::Fail),
            (None, "disk.unknown", Level::Info),
        ];
        for (free, code, level) in table {
            let finding = space_finding("/data", free, &thresholds);
            documented(&finding);
            assert_eq!(
                (finding.code.as_str(), finding.level),
                (code, level),
                "{free:?}"
            );
        }
        assert!(space_finding("/d", Some(50_000.0), &thresholds)
            .title
            .starts_with("49 GiB free"));
    }

    #[test]
    fn a_missing_folder_is_measured_where_it_will_be() {
        let dir = tempfile::tempdir().unwrap();
        let findings = check(&dir.path().join("not/yet"), &Thresholds::default());
        assert_eq!(findings[0].code, "data_dir.missing");
        assert!(findings[1].code.starts_with("disk."), "{:?}", findings[1]);
        assert_ne!(findings[1].code, "disk.unknown");
        for f in &findings {
            documented(f);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_others_can_read_is_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let findings = check(dir.path(), &Thresholds::default());
        assert_eq!(findings[0].code, "data_dir.shared");
        assert_eq!(findings[0].evidence["mode"], "755");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check(dir.path(), &Thresholds::default())
            .iter()
            .all(|f| f.code != "data_dir.shared"));
    }
}
