//! This app's behaviour, minute by minute, against its own baselines: requests sent, token
//! refreshes, failed requests and network outages per minute, each scored by hour of the
//! week ([`super::score::Baseline`]; kept in the database, so weeks of history count) — once
//! against this computer's usual and once against the signed-in student's (a student's
//! baseline follows them across the lab's computers only as far as this one has seen them).
//! A measure that stays far from its usual for k of n minutes is a finding (information for
//! the proctor); a refresh storm — several refreshes in one minute when one per access-token
//! lifetime is normal — and a request burst are findings at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::params;

use super::findings::{Code, Confidence, Finding, Severity};
use super::score::Baseline;
use crate::owner::Owner;
use crate::store::Store;

/// Refreshes in one minute that are a storm.
pub const REFRESH_STORM: u64 = 6;
/// Requests in one minute that are a burst: an exam's saves are batched, so even a fast
/// typist's minute is a few dozen.
pub const REQUEST_BURST: u64 = 600;

/// Running totals of what the app did since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub refreshes: u64,
    pub failures: u64,
    /// Network outages begun (this computer's, all time).
    pub outages: u64,
}

/// The minute-by-minute scorer.
pub struct Activity {
    store: Arc<Store>,
    last: Option<Totals>,
    /// By key: the measure for this computer, `<measure> of <origin> <student>` for a
    /// student. Loaded from the database the first time a key is used.
    baselines: BTreeMap<String, Baseline>,
}

const MEASURES: [&str; 4] = [
    "requests_per_minute",
    "refreshes_per_minute",
    "failures_per_minute",
    "outages_per_minute",
];

impl Activity {
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            last: None,
            baselines: BTreeMap::new(),
        }
    }

    fn baseline(&mut self, key: &str) -> &mut Baseline {
        if !self.baselines.contains_key(key) {
            let state: Option<String> = self
                .store
                .lock()
                .query_row(
                    "SELECT state FROM activity_baselines WHERE measure = ?1",
                    params![key],
                    |r| r.get(0),
                )
                .ok();
            let baseline = state
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            self.baselines.insert(key.to_string(), baseline);
        }
        self.baselines.entry(key.to_string()).or_default()
    }

    fn save(&self, keys: &[String]) {
        let conn = self.store.lock();
        for (measure, baseline) in self.baselines.iter().filter(|(k, _)| keys.contains(k)) {
            let Ok(state) = serde_json::to_string(baseline) else {
                continue;
            };
            if let Err(error) = conn.execute(
                "INSERT INTO activity_baselines (measure, state) VALUES (?1, ?2)
                 ON CONFLICT (measure) DO UPDATE SET state = ?2",
                params![measure, state],
            ) {
                tracing::warn!(error = %self.store.error(error), "a behaviour baseline could not be kept");
            }
        }
    }

    /// Takes the totals at the end of a minute (`at_ms`, this computer's clock) and who was
    /// signed in: scores the minute's counts against this computer's baselines and the
    /// student's, and learns them. The first call only sets the starting point.
    pub fn minute(&mut self, totals: Totals, at_ms: i64, student: Option<&Owner>) -> Vec<Finding> {
        let Some(last) = self.last.replace(totals) else {
            return Vec::new();
        };
        let counts = [
            totals.requests.saturating_sub(last.requests),
            totals.refreshes.saturating_sub(last.refreshes),
            totals.failures.saturating_sub(last.failures),
            totals.outages.saturating_sub(last.outages),
        ];
        let mut findings = Vec::new();
        let mut keys = Vec::new();
        let scopes: Vec<(String, Option<&Owner>)> = std::iter::once((String::new(), None))
            .chain(student.map(|o| (format!(" of {} {}", o.origin, o.student), Some(o))))
            .collect();
        for (suffix, whose) in &scopes {
            for (measure, count) in MEASURES.into_iter().zip(counts) {
                let key = format!("{measure}{suffix}");
                let score = self.baseline(&key).observe(at_ms, count as f64);
                keys.push(key);
                if !score.alert {
                    continue;
                }
                let usual = match whose {
                    Some(owner) => format!("{}'s usual", owner.student),
                    None => "this computer's usual".to_string(),
                };
                findings.push(Finding {
                    code: Code::UnusualActivity,
                    severity: Severity::Info,
                    confidence: Confidence::Medium,
                    subject: Some(match whose {
                        Some(_) => format!("{measure} (student)"),
                        None => measure.to_string(),
                    }),
                    category: None,
                    evidence: format!(
                        "{count} {} in the last minute, far from {usual} for this hour of the \
                         week (modified z = {:.1}, trend {:.1}); unusual for several minutes",
                        measure.replace('_', " ").replace(" per minute", ""),
                        score.z.unwrap_or_default(),
                        score.ewma
                    ),
                    blocks_start: false,
                });
            }
        }
        if counts[0] >= REQUEST_BURST {
            findings.push(Finding {
                code: Code::RequestBurst,
                severity: Severity::Info,
                confidence: Confidence::High,
                subject: Some("requests".into()),
                category: None,
                evidence: format!(
                    "{} requests in one minute from this app (an exam needs a few dozen)",
                    counts[0]
                ),
                blocks_start: false,
            });
        }
        if counts[1] >= REFRESH_STORM {
            findings.push(Finding {
                code: Code::RefreshStorm,
                severity: Severity::Warning,
                confidence: Confidence::High,
                subject: None,
                category: None,
                evidence: format!(
                    "{} token refreshes in one minute (one per access-token lifetime is normal)",
                    counts[1]
                ),
                blocks_start: false,
            });
        }
        self.save(&keys);
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_storm_is_a_finding_at_once_and_baselines_outlive_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
        let mut activity = Activity::new(store.clone());
        let minute = 60_000;
        assert!(
            activity.minute(Totals::default(), 0, None).is_empty(),
            "a starting point"
        );
        let mut totals = Totals::default();
        for i in 1..=10 {
            totals.requests += 40;
            totals.refreshes += u64::from(i % 5 == 0);
            assert!(
                activity.minute(totals, i * minute, None).is_empty(),
                "minute {i}"
            );
        }
        totals.refreshes += 8;
        let storm = activity.minute(totals, 11 * minute, None);
        assert_eq!(storm.len(), 1, "{storm:?}");
        assert_eq!(storm[0].code, Code::RefreshStorm);
        assert!(
            storm[0].evidence.starts_with("8 token refreshes"),
            "{}",
            storm[0].evidence
        );
        totals.requests += 5_000;
        let burst = activity.minute(totals, 12 * minute, None);
        assert!(
            burst
                .iter()
                .any(|f| f.code == Code::RequestBurst && f.evidence.starts_with("5000 requests")),
            "{burst:?}"
        );

        // Started again: the baseline learnt so far is still there.
        let mut again = Activity::new(store);
        let kept = serde_json::to_string(again.baseline("requests_per_minute")).unwrap();
        assert!(kept.contains("40.0"), "{kept}");
    }

    /// A student whose app is always quiet, then busy for minutes on end on a computer whose
    /// usual is busy: only the student's baseline says it is unusual.
    #[test]
    fn a_student_is_scored_against_their_own_usual_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
        let mut activity = Activity::new(store);
        let quiet = Owner::new("http://exam.test", "student1");
        let busy = Owner::new("http://exam.test", "student2");
        let hour = 3_600_000_i64;
        let week = 168 * hour;
        let mut totals = Totals::default();
        let mut at = 0;
        activity.minute(totals, at, None);
        // Ten weeks of the same hour: the busy student's 100 requests a minute and the
        // quiet one's 5, alternating minutes on the same computer.
        for w in 0..10 {
            for m in 0..6 {
                at = w * week + m * 60_000 + 60_000;
                let (who, n) = if m % 2 == 0 {
                    (&busy, 100)
                } else {
                    (&quiet, 5)
                };
                totals.requests += n;
                let found = activity.minute(totals, at, Some(who));
                assert!(
                    !found.iter().any(|f| f
                        .subject
                        .as_deref()
                        .is_some_and(|s| s.contains("(student)"))),
                    "week {w} minute {m}: {found:?}"
                );
            }
        }
        // The quiet student now sends 100 a minute, for several minutes.
        let mut flagged = Vec::new();
        for m in 0..5 {
            at = 10 * week + m * 60_000 + 60_000;
            totals.requests += 100;
            flagged.extend(activity.minute(totals, at, Some(&quiet)));
        }
        let student: Vec<_> = flagged
            .iter()
            .filter(|f| f.subject.as_deref() == Some("requests_per_minute (student)"))
            .collect();
        assert!(!student.is_empty(), "{flagged:?}");
        assert!(
            student[0].evidence.contains("student1's usual"),
            "{}",
            student[0].evidence
        );
    }
}
