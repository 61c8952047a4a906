//! The facts of readiness, gathered from the running services: the package kept here (read
//! back and checked again, a sealed one as far as it can be before it opens), the list kept
//! for the student (the exam's current version and minimum app version), whether the server
//! can be reached, the disk of the data folder, the server's clock as learnt from its `Date`
//! headers, the device checks' findings, the keychain and the work waiting.
//!
//! Blocking (SQLite, the disk, possibly one process scan): the shell calls it off the async
//! runtime's threads.

use std::path::PathBuf;

use exam_contract::readiness::{DeviceReadiness, Waiting};
use rusqlite::OptionalExtension;

use super::{
    check_report, exam_card, exam_report, machine_checks, ExamFacts, ExamReadiness, MachineFacts,
    PackageFact, Thresholds,
};
use crate::auth::TokenManager;
use crate::exam::opening::Kept;
use crate::exam::{ExamError, ExamService};
use crate::network::NetworkView;
use crate::owner::Owner;
use crate::queue::Queue;
use crate::security::{Code, SecurityMonitor};

/// Where the facts come from: handles of the core's services (cheap to clone).
#[derive(Clone)]
pub struct Sources {
    pub exams: ExamService,
    pub security: SecurityMonitor,
    pub network: NetworkView,
    pub queue: Queue,
    pub auth: TokenManager,
    /// The data folder, whose disk's free space counts.
    pub data_dir: PathBuf,
    /// The lab this computer is configured in (`[analytics] lab`).
    pub lab: Option<String>,
    pub thresholds: Thresholds,
}

impl Sources {
    /// The machine's facts now.
    pub fn machine(&self) -> MachineFacts {
        let online = self.network.status.borrow().usable;
        let learnt: Option<i64> = self
            .exams
            .inner
            .store
            .lock()
            .query_row("SELECT seen_at FROM server_clock WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .ok()
            .flatten();
        let clock_offset_s = learnt.map(|_| self.exams.offset_ms() as f64 / 1000.0);
        // The device checks' latest findings (every 2 s); scanned now when they have never
        // looked (device checks off, or the app just started).
        let snapshot = self.security.snapshot();
        let findings = match snapshot.checked_at {
            Some(_) => snapshot.findings,
            None => self.security.check_now(),
        };
        let prohibited = findings
            .iter()
            .filter(|f| f.code == Code::ProhibitedProgram)
            .map(|f| (f.subject.clone().unwrap_or_default(), f.blocks_start))
            .collect();
        let extra_displays = findings.iter().any(|f| f.code == Code::ExtraDisplay);
        let keychain_failures = self
            .auth
            .metrics()
            .errors
            .get("keychain")
            .copied()
            .unwrap_or(0);
        MachineFacts {
            online,
            free_mb: crate::analytics::free_space_mb(&self.data_dir),
            clock_offset_s,
            apps_checked: true,
            prohibited,
            displays: self.security.displays(),
            extra_displays,
            keychain_failures,
            keychain_problem: self.keychain_problem(),
            app_version: crate::VERSION.to_string(),
        }
    }

    /// The keychain cannot be read for the signed-in student, or their answer key is missing
    /// while answers sealed with it are here (the answer key is read once and kept).
    fn keychain_problem(&self) -> Option<String> {
        let owner = self.auth.signed_in_owner()?;
        let keys = self.exams.keys();
        match keys.existing(&owner) {
            Err(error) => Some(error.to_string()),
            Ok(Some(_)) => None,
            Ok(None) => match keys.sealed_count(&owner) {
                Ok(0) | Err(_) => None,
                Ok(n) => Some(format!(
                    "the signed-in student's answer key is missing while {n} sealed values are \
                     here"
                )),
            },
        }
    }

    /// `exam_id` as its card needs it; `owner`'s list and opened packages (none: the list
    /// says nothing).
    pub fn exam(&self, owner: Option<&Owner>, exam_id: &str) -> Result<ExamFacts, ExamError> {
        let (package, kept_sealed) = match self.exams.kept(exam_id) {
            Ok(Kept::Open(package)) => (
                PackageFact::Checked {
                    version: package.version,
                },
                Some(false),
            ),
            Ok(Kept::Sealed(sealed)) => (
                match sealed.check_seal() {
                    Ok(()) => PackageFact::Checked {
                        version: sealed.version,
                    },
                    Err(bad) => PackageFact::Damaged {
                        version: Some(sealed.version),
                        detail: bad.reason,
                    },
                },
                Some(true),
            ),
            Err(ExamError::NotDownloaded(_)) => (PackageFact::Missing, None),
            Err(ExamError::BadPackage(bad)) => (
                PackageFact::Damaged {
                    version: None,
                    detail: bad.reason,
                },
                None,
            ),
            Err(other) => return Err(other),
        };
        let listed = match owner {
            Some(owner) => self
                .exams
                .kept_list(owner)?
                .0
                .into_iter()
                .find(|e| e.id == exam_id),
            None => None,
        };
        let opened_here = match (owner, &package) {
            (Some(owner), PackageFact::Checked { version }) => {
                self.exams.opened_here(owner, exam_id, *version)?
            }
            _ => false,
        };
        Ok(ExamFacts {
            exam_id: exam_id.to_string(),
            sealed: kept_sealed
                .or(listed.as_ref().map(|e| e.sealed))
                .unwrap_or(false),
            opened_here,
            listed_version: listed.as_ref().map(|e| e.version),
            min_client_version: listed.and_then(|e| e.min_client_version),
            package,
        })
    }

    /// The readiness card of `exam_id` for the signed-in student.
    pub fn card(&self, exam_id: &str) -> Result<ExamReadiness, ExamError> {
        let owner = self.exams.owner()?;
        let exam = self.exam(Some(&owner), exam_id)?;
        let machine = self.machine();
        Ok(exam_card(
            &exam,
            &machine,
            &self.thresholds,
            crate::now_rfc3339(),
        ))
    }

    /// This machine's report (`device.readiness`): its lines, every exam package kept here
    /// judged with the signed-in student's list, and the work waiting (counts only).
    pub fn report(&self, device: &str) -> Result<DeviceReadiness, ExamError> {
        let owner = self.auth.signed_in_owner();
        let machine = self.machine();
        let kept: Vec<String> = {
            let conn = self.exams.inner.store.lock();
            let mut stmt = conn
                .prepare("SELECT exam_id FROM exam_packages ORDER BY exam_id")
                .map_err(|e| self.exams.err(e))?;
            let ids = stmt
                .query_map([], |r| r.get(0))
                .and_then(Iterator::collect::<rusqlite::Result<Vec<String>>>)
                .map_err(|e| self.exams.err(e))?;
            ids
        };
        let mut exams = Vec::with_capacity(kept.len());
        for id in kept {
            let facts = self.exam(owner.as_ref(), &id)?;
            exams.push(exam_report(&facts, &machine));
        }
        let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let waiting = Waiting {
            items: count(self.queue.remaining()?),
            refused: self.queue.counts()?.dead,
            students: count(
                self.queue
                    .waiting_by_owner()?
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .count() as u64,
            ),
        };
        Ok(DeviceReadiness {
            device: device.to_string(),
            lab: self.lab.clone(),
            app_version: machine.app_version.clone(),
            checked_at: crate::now_rfc3339(),
            checks: machine_checks(&machine, &self.thresholds)
                .iter()
                .map(check_report)
                .collect(),
            exams,
            waiting,
        })
    }
}
