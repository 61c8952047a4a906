//! When a downloaded update may be installed: never while an exam is being taken on this
//! computer, never with answers or a submission still to deliver, never close to an exam the
//! server announced or inside a window IT froze — and, once it has waited past the policy's
//! deadline, at the next launch or quit rather than never.
//!
//! One pure function over what the app knows ([`Situation`]) under IT's policy
//! ([`GatePolicy`]), so every case is a row of a table test and the shell only carries the
//! decision out.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What IT decides (managed policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatePolicy {
    /// No install this long before an exam the server announced opens (nor while one is open).
    pub quiet_before_exam: Duration,
    /// An update deferred this long installs at the next launch or quit — still never during
    /// an attempt, an exam window or a freeze.
    pub deadline: Duration,
}

impl Default for GatePolicy {
    fn default() -> Self {
        Self {
            quiet_before_exam: Duration::from_secs(2 * 3600),
            deadline: Duration::from_secs(72 * 3600),
        }
    }
}

/// Whether the installed app can replace itself here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Installability {
    Yes,
    /// A per-machine install and the app runs without the rights to replace it: IT's
    /// deployment tool updates it; the app only reports.
    NeedsElevation,
    /// A kind of install the updater cannot apply (a package manager's, a development build).
    Unsupported,
}

/// When the decision is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// While the app runs (the background check found the app idle).
    Idle,
    /// The app is starting, before any window opens.
    Launch,
    /// The student or the system is quitting the app.
    Quit,
}

/// What the app knows at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Situation {
    pub moment: Moment,
    pub installability: Installability,
    /// An attempt in progress on this computer, whoever's it is.
    pub attempt_open: bool,
    /// Answers and submissions not yet delivered, any student's.
    pub work_waiting: u32,
    /// The soonest announced exam window from now: `Some(ZERO)` while one is open.
    pub next_exam_in: Option<Duration>,
    /// Inside a window IT froze updates in (exam season).
    pub frozen: bool,
    /// How long this update has been waiting to be installed.
    pub deferred_for: Duration,
    /// A student is signed in (an install restarts the app, which would sign them out).
    pub signed_in: bool,
}

/// Why an update waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Wait {
    AttemptOpen,
    WorkWaiting {
        items: u32,
    },
    ExamSoon {
        in_s: u32,
    },
    Frozen,
    /// Past the deadline: installs at the next launch or quit.
    UntilLaunchOrQuit,
    /// A student is using the app: it installs once they sign out or quit.
    InUse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Install,
    Defer(Wait),
    /// The app does not try; it reports the state (IT's tool installs it).
    CannotApply {
        installability: Installability,
    },
}

/// The decision for `situation` under `policy`.
pub fn decide(situation: &Situation, policy: &GatePolicy) -> Decision {
    if situation.installability != Installability::Yes {
        return Decision::CannotApply {
            installability: situation.installability,
        };
    }
    // Never mid-exam, whatever the deadline says.
    if situation.attempt_open {
        return Decision::Defer(Wait::AttemptOpen);
    }
    if situation.frozen {
        return Decision::Defer(Wait::Frozen);
    }
    if let Some(soon) = situation
        .next_exam_in
        .filter(|d| *d < policy.quiet_before_exam)
    {
        return Decision::Defer(Wait::ExamSoon {
            in_s: u32::try_from(soon.as_secs()).unwrap_or(u32::MAX),
        });
    }
    let overdue = situation.deferred_for >= policy.deadline;
    if situation.work_waiting > 0 {
        // Past the deadline the queue (kept across the update) no longer holds it back, but
        // only where nobody is working: at a launch or a quit.
        if !(overdue && situation.moment != Moment::Idle) {
            return Decision::Defer(Wait::WorkWaiting {
                items: situation.work_waiting,
            });
        }
    }
    match situation.moment {
        Moment::Idle if overdue => Decision::Defer(Wait::UntilLaunchOrQuit),
        Moment::Idle if situation.signed_in => Decision::Defer(Wait::InUse),
        _ => Decision::Install,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    fn idle() -> Situation {
        Situation {
            moment: Moment::Idle,
            installability: Installability::Yes,
            attempt_open: false,
            work_waiting: 0,
            next_exam_in: None,
            frozen: false,
            deferred_for: Duration::ZERO,
            signed_in: false,
        }
    }

    #[test]
    fn the_gate_as_a_table() {
        let p = GatePolicy::default();
        let hours = |h: u64| Duration::from_secs(h * H);
        type Change = fn(&mut Situation);
        let table: &[(&str, Change, Decision)] = &[
            ("idle, nothing near", |_| {}, Decision::Install),
            (
                "idle but a student is signed in: not restarted under them",
                |s| s.signed_in = true,
                Decision::Defer(Wait::InUse),
            ),
            (
                "a student signed in at quit: installs as the app closes",
                |s| {
                    s.signed_in = true;
                    s.moment = Moment::Quit;
                },
                Decision::Install,
            ),
            (
                "at launch",
                |s| s.moment = Moment::Launch,
                Decision::Install,
            ),
            (
                "an attempt open",
                |s| s.attempt_open = true,
                Decision::Defer(Wait::AttemptOpen),
            ),
            (
                "an attempt open at quit, past the deadline: still not mid-exam",
                |s| {
                    s.attempt_open = true;
                    s.moment = Moment::Quit;
                    s.deferred_for = Duration::from_secs(500 * H);
                },
                Decision::Defer(Wait::AttemptOpen),
            ),
            (
                "answers waiting",
                |s| s.work_waiting = 3,
                Decision::Defer(Wait::WorkWaiting { items: 3 }),
            ),
            (
                "answers waiting at launch, before the deadline",
                |s| {
                    s.work_waiting = 3;
                    s.moment = Moment::Launch;
                },
                Decision::Defer(Wait::WorkWaiting { items: 3 }),
            ),
            (
                "answers waiting at quit past the deadline: the queue survives the update",
                |s| {
                    s.work_waiting = 3;
                    s.moment = Moment::Quit;
                    s.deferred_for = Duration::from_secs(72 * H);
                },
                Decision::Install,
            ),
            (
                "answers waiting while idle past the deadline",
                |s| {
                    s.work_waiting = 3;
                    s.deferred_for = Duration::from_secs(80 * H);
                },
                Decision::Defer(Wait::WorkWaiting { items: 3 }),
            ),
            (
                "idle past the deadline: at the next launch or quit",
                |s| s.deferred_for = Duration::from_secs(72 * H),
                Decision::Defer(Wait::UntilLaunchOrQuit),
            ),
            (
                "an exam opens in 90 minutes",
                |s| s.next_exam_in = Some(Duration::from_secs(90 * 60)),
                Decision::Defer(Wait::ExamSoon { in_s: 5400 }),
            ),
            (
                "an exam open now, at launch past the deadline",
                |s| {
                    s.next_exam_in = Some(Duration::ZERO);
                    s.moment = Moment::Launch;
                    s.deferred_for = Duration::from_secs(100 * H);
                },
                Decision::Defer(Wait::ExamSoon { in_s: 0 }),
            ),
            (
                "an exam opens in 3 hours",
                |s| s.next_exam_in = Some(Duration::from_secs(3 * H)),
                Decision::Install,
            ),
            (
                "frozen by IT",
                |s| {
                    s.frozen = true;
                    s.moment = Moment::Quit;
                    s.deferred_for = Duration::from_secs(1000 * H);
                },
                Decision::Defer(Wait::Frozen),
            ),
            (
                "a per-machine install without elevation",
                |s| {
                    s.installability = Installability::NeedsElevation;
                    s.attempt_open = true;
                },
                Decision::CannotApply {
                    installability: Installability::NeedsElevation,
                },
            ),
        ];
        for (what, change, expected) in table {
            let mut situation = idle();
            change(&mut situation);
            assert_eq!(decide(&situation, &p), *expected, "{what}");
        }
        // The quiet time before an exam is IT's.
        let short = GatePolicy {
            quiet_before_exam: Duration::from_secs(30 * 60),
            ..p
        };
        let mut s = idle();
        s.next_exam_in = Some(hours(1));
        assert_eq!(decide(&s, &short), Decision::Install);
    }
}
