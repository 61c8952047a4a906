//! What the updater is doing, kept in a small file of the data folder so the status window,
//! diagnostics and `exam-desktop doctor` (which runs without the app) all read the same
//! answer: the version installed, the last check, what was found and why it waits.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::gate::{Installability, Wait};

/// The file, inside the data folder.
pub const FILE_NAME: &str = "update.json";

/// Where the updater stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Not checked yet since this version was installed.
    NotChecked,
    /// IT turned updates off (`update.mode = "off"`): IT's own tool updates this computer.
    Off,
    Checking,
    /// The update server has nothing newer the policy accepts.
    UpToDate,
    /// Found and the policy allows it; only reported (`update.mode = "check"`).
    Available {
        version: String,
    },
    Downloading {
        version: String,
        received_kb: u32,
        total_kb: Option<u32>,
    },
    /// Downloaded and its signature verified; waits for the gate.
    Deferred {
        version: String,
        wait: Wait,
    },
    /// About to be installed (the app restarts).
    Installing {
        version: String,
    },
    /// Found, but this computer's app cannot replace itself: IT's deployment tool must.
    CannotApply {
        version: String,
        installability: Installability,
    },
    /// The last check or download failed; the next one retries.
    Failed {
        code: String,
        message: String,
    },
}

/// The updater's state as the file keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct UpdateStatus {
    /// The version running.
    pub current: String,
    pub phase: Phase,
    pub channel: String,
    pub pin: Option<String>,
    /// When the update server last answered (ms since the epoch).
    pub last_check_ms: Option<f64>,
    /// Since when the downloaded update has been waiting to be installed (ms since the epoch).
    pub waiting_since_ms: Option<f64>,
}

impl UpdateStatus {
    pub fn new(current: &str, channel: &str, pin: Option<&str>) -> Self {
        Self {
            current: current.to_string(),
            phase: Phase::NotChecked,
            channel: channel.to_string(),
            pin: pin.map(str::to_string),
            last_check_ms: None,
            waiting_since_ms: None,
        }
    }
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The saved status; `None` when there is none or it cannot be read (a status is
/// informative only: the updater writes a new one at its next step).
pub fn load(data_dir: &Path) -> Option<UpdateStatus> {
    let bytes = std::fs::read(path(data_dir)).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(status) => Some(status),
        Err(error) => {
            tracing::warn!(%error, "the update status file is unreadable; it will be rewritten");
            None
        }
    }
}

/// Saves `status` atomically (a reader never sees half a file).
pub fn save(data_dir: &Path, status: &UpdateStatus) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(status).map_err(io::Error::other)?;
    let target = path(data_dir);
    let partial = data_dir.join(format!("{FILE_NAME}.partial"));
    crate::files::write_private(&partial, &bytes)?;
    std::fs::rename(&partial, &target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_and_loaded_and_a_torn_file_is_no_status() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None);
        let mut status = UpdateStatus::new("1.4.2", "stable", Some("1.4."));
        status.phase = Phase::Deferred {
            version: "1.4.3".into(),
            wait: Wait::WorkWaiting { items: 2 },
        };
        save(dir.path(), &status).unwrap();
        assert_eq!(load(dir.path()), Some(status));
        std::fs::write(path(dir.path()), b"{\"current\":").unwrap();
        assert_eq!(load(dir.path()), None);
    }
}
