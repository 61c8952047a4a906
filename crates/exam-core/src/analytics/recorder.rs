//! What the app measures, as it happens: each observation is folded into its metric's
//! aggregate for the current second (count, sum, min, max) in memory — a lock and a map
//! update, nothing written — and the history worker takes the finished seconds away
//! ([`Recorder::take`]). So recording costs an answer save nothing it would notice, and a
//! burst of observations costs memory per second and metric, not per observation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Every series the app keeps. The name is what the history and the dashboards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// An answer saved on this computer: how long the save took (ms).
    SaveMs,
    /// Entries the server confirmed (per second: the count).
    Delivered,
    /// Entries in one request to the server.
    BatchSize,
    /// Work waiting to be sent (sampled each second).
    QueueDepth,
    /// A probe's or request's round trip to the server (ms).
    RttMs,
    /// Seconds the network was in each state (one observation a second, value 1 when so).
    #[serde(rename = "online_s")]
    Online,
    #[serde(rename = "offline_s")]
    Offline,
    #[serde(rename = "degraded_s")]
    Degraded,
    /// Sign-in (the password check), a token from the cache, a refresh (ms).
    SignInMs,
    TokenCacheMs,
    RefreshMs,
    /// A token that had to be fetched (not in the cache): with `TokenCacheMs`'s count, the
    /// cache's hit ratio.
    TokenCacheMisses,
    /// Failed token requests by cause: the network, the server refused the grant (a session
    /// ended), the server asked to wait, anything else.
    RefreshFailures,
    FailuresNetwork,
    FailuresRejected,
    FailuresRateLimited,
    /// Outages begun (the server became unusable).
    Outages,
    /// Requests sent and connections opened (per second).
    Requests,
    Connections,
    /// Free space on the disk that holds the data folder (MiB, sampled once a minute).
    DiskFreeMb,
}

impl Metric {
    pub const ALL: [Metric; exam_contract::metrics::NAMES.len()] = [
        Self::SaveMs,
        Self::Delivered,
        Self::BatchSize,
        Self::QueueDepth,
        Self::RttMs,
        Self::Online,
        Self::Offline,
        Self::Degraded,
        Self::SignInMs,
        Self::TokenCacheMs,
        Self::RefreshMs,
        Self::TokenCacheMisses,
        Self::RefreshFailures,
        Self::FailuresNetwork,
        Self::FailuresRejected,
        Self::FailuresRateLimited,
        Self::Outages,
        Self::Requests,
        Self::Connections,
        Self::DiskFreeMb,
    ];

    /// Its name in the contract (`exam_contract::metrics::NAMES`), which its serde name is too.
    pub fn name(self) -> &'static str {
        exam_contract::metrics::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Count, sum, min and max of the observations in one bucket: enough for rates, means and
/// ranges at every resolution (two aggregates merge into the aggregate of both).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Aggregate {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Aggregate {
    pub fn of(value: f64) -> Self {
        Self {
            count: 1,
            sum: value,
            min: value,
            max: value,
        }
    }

    pub fn add(&mut self, value: f64) {
        self.merge(&Self::of(value));
    }

    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// Observations not yet taken by the history, by (metric, second).
#[derive(Clone, Default)]
pub struct Recorder {
    pending: Arc<Mutex<BTreeMap<(Metric, i64), Aggregate>>>,
}

/// At most this many (metric, second) aggregates wait in memory; beyond, the oldest go
/// (the history worker takes them every few seconds, so only a stalled worker gets here).
const MAX_PENDING: usize = 64 * 1024;

impl Recorder {
    /// Notes `value` of `metric` now.
    pub fn record(&self, metric: Metric, value: f64) {
        self.record_at(metric, crate::clock::now_ms(), value);
    }

    /// Notes `value` of `metric` at `at_ms` (ms since the epoch).
    pub fn record_at(&self, metric: Metric, at_ms: i64, value: f64) {
        if !value.is_finite() {
            return;
        }
        let second = at_ms.div_euclid(1000) * 1000;
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.get_mut(&(metric, second)) {
            Some(aggregate) => aggregate.add(value),
            None => {
                if pending.len() >= MAX_PENDING {
                    pending.pop_first();
                }
                pending.insert((metric, second), Aggregate::of(value));
            }
        }
    }

    /// The aggregates of the second beginning at `second_ms`, left in place (live views).
    pub fn peek(&self, second_ms: i64) -> Vec<(Metric, Aggregate)> {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending
            .iter()
            .filter(|((_, second), _)| *second == second_ms)
            .map(|((metric, _), aggregate)| (*metric, *aggregate))
            .collect()
    }

    /// Takes every aggregate of a second before `before_ms` (the current second stays, so
    /// it is written whole).
    pub fn take(&self, before_ms: i64) -> Vec<(Metric, i64, Aggregate)> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let keep: Vec<((Metric, i64), Aggregate)> = pending
            .iter()
            .filter(|((_, second), _)| *second + 1000 > before_ms)
            .map(|(k, v)| (*k, *v))
            .collect();
        let taken = std::mem::take(&mut *pending);
        pending.extend(keep);
        taken
            .into_iter()
            .filter(|((_, second), _)| *second + 1000 <= before_ms)
            .map(|((metric, second), aggregate)| (metric, second, aggregate))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_contracts_and_serde_says_the_same() {
        assert_eq!(Metric::ALL.len(), exam_contract::metrics::NAMES.len());
        for (i, metric) in Metric::ALL.into_iter().enumerate() {
            assert_eq!(metric as usize, i, "{metric:?} out of order");
            assert_eq!(metric.name(), exam_contract::metrics::NAMES[i]);
            assert_eq!(
                serde_json::to_value(metric).ok(),
                Some(serde_json::Value::from(metric.name()))
            );
            assert_eq!(Metric::from_name(metric.name()), Some(metric));
        }
    }

    #[test]
    fn observations_fold_into_seconds_and_only_finished_seconds_are_taken() {
        let recorder = Recorder::default();
        for (at, v) in [(1_000, 2.0), (1_500, 4.0), (1_999, 9.0), (2_000, 1.0)] {
            recorder.record_at(Metric::SaveMs, at, v);
        }
        recorder.record_at(Metric::SaveMs, 2_100, f64::NAN);
        let taken = recorder.take(2_500);
        assert_eq!(
            taken,
            vec![(
                Metric::SaveMs,
                1_000,
                Aggregate {
                    count: 3,
                    sum: 15.0,
                    min: 2.0,
                    max: 9.0
                }
            )]
        );
        // The second under way is taken once it is over.
        let later = recorder.take(3_000);
        assert_eq!(later, vec![(Metric::SaveMs, 2_000, Aggregate::of(1.0))]);
        assert!(recorder.take(10_000).is_empty());
    }

    #[test]
    fn names_round_trip() {
        for metric in Metric::ALL {
            assert_eq!(Metric::from_name(metric.name()), Some(metric));
            // The same name everywhere: the history, the server, the windows.
            assert_eq!(
                serde_json::to_value(metric).unwrap(),
                serde_json::json!(metric.name())
            );
        }
        assert_eq!(Metric::from_name("nope"), None);
    }
}
