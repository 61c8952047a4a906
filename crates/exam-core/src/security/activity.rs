//! This app's behaviour, minute by minute, against its own baseline: requests sent, token
//! refreshes and failed requests per minute, each scored by hour of the week
//! ([`super::score::Baseline`]; kept in the database, so weeks of history count). A measure
//! that stays far from its usual for k of n minutes is a finding (information for the
//! proctor); a refresh storm — several refreshes in one minute when one per access-token
//! lifetime is normal — is one at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::params;

use super::findings::{Code, Confidence, Finding, Severity};
use super::score::Baseline;
use crate::store::Store;

/// Refreshes in one minute that are a storm.
pub const REFRESH_STORM: u64 = 6;

/// Running totals of what the app did since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub refreshes: u64,
    pub failures: u64,
}

/// The minute-by-minute scorer.
pub struct Activity {
    store: Arc<Store>,
    last: Option<Totals>,
    baselines: BTreeMap<&'static str, Baseline>,
    loaded: bool,
}

const MEASURES: [&str; 3] = [
    "requests_per_minute",
    "refreshes_per_minute",
    "failures_per_minute",
];

impl Activity {
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            last: None,
            baselines: BTreeMap::new(),
            loaded: false,
        }
    }

    fn load(&mut self) {
        if self.loaded {
            return;
        }
        self.loaded = true;
        let conn = self.store.lock();
        for measure in MEASURES {
            let state: Option<String> = conn
                .query_row(
                    "SELECT state FROM activity_baselines WHERE measure = ?1",
                    params![measure],
                    |r| r.get(0),
                )
                .ok();
            let baseline = state
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            self.baselines.insert(measure, baseline);
        }
    }

    fn save(&self) {
        let conn = self.store.lock();
        for (measure, baseline) in &self.baselines {
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

    /// Takes the totals at the end of a minute (`at_ms`, this computer's clock): scores the
    /// minute's counts and learns them. The first call only sets the starting point.
    pub fn minute(&mut self, totals: Totals, at_ms: i64) -> Vec<Finding> {
        self.load();
        let Some(last) = self.last.replace(totals) else {
            return Vec::new();
        };
        let counts = [
            totals.requests.saturating_sub(last.requests),
            totals.refreshes.saturating_sub(last.refreshes),
            totals.failures.saturating_sub(last.failures),
        ];
        let mut findings = Vec::new();
        for (measure, count) in MEASURES.into_iter().zip(counts) {
            let baseline = self.baselines.entry(measure).or_default();
            let score = baseline.observe(at_ms, count as f64);
            if score.alert {
                findings.push(Finding {
                    code: Code::UnusualActivity,
                    severity: Severity::Info,
                    confidence: Confidence::Medium,
                    subject: Some(measure.to_string()),
                    category: None,
                    evidence: format!(
                        "{count} {} in the last minute, far from the usual for this hour of the \
                         week (modified z = {:.1}, trend {:.1}); unusual for several minutes",
                        measure.replace('_', " ").replace(" per minute", ""),
                        score.z.unwrap_or_default(),
                        score.ewma
                    ),
                    blocks_start: false,
                });
            }
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
        self.save();
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
            activity.minute(Totals::default(), 0).is_empty(),
            "a starting point"
        );
        let mut totals = Totals::default();
        for i in 1..=10 {
            totals.requests += 40;
            totals.refreshes += u64::from(i % 5 == 0);
            assert!(activity.minute(totals, i * minute).is_empty(), "minute {i}");
        }
        totals.refreshes += 8;
        let storm = activity.minute(totals, 11 * minute);
        assert_eq!(storm.len(), 1, "{storm:?}");
        assert_eq!(storm[0].code, Code::RefreshStorm);
        assert!(
            storm[0].evidence.starts_with("8 token refreshes"),
            "{}",
            storm[0].evidence
        );

        // Started again: the baseline learnt so far is still there.
        let mut again = Activity::new(store);
        again.load();
        let kept = serde_json::to_string(&again.baselines["requests_per_minute"]).unwrap();
        assert!(kept.contains("40.0"), "{kept}");
    }
}
