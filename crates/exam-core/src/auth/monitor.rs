//! The auth monitor: latency histograms of token retrieval from cache, validation and
//! refresh; cache hits and misses; errors by category. The diagnostics window shows them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

pub use crate::metrics::LatencySummary;
use crate::metrics::Samples;

#[derive(Default)]
struct Inner {
    cache: Samples,
    validation: Samples,
    refresh: Samples,
    refreshes: u64,
    hits: u64,
    misses: u64,
    errors: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct AuthMonitor {
    inner: Mutex<Inner>,
    /// The history's recorder, once the app has one: latencies go there too.
    recorder: std::sync::OnceLock<crate::analytics::Recorder>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AuthMetrics {
    pub cache: LatencySummary,
    pub validation: LatencySummary,
    pub refresh: LatencySummary,
    pub cache_hits: u32,
    pub cache_misses: u32,
    /// Refreshes since the app started (not capped like the histogram's count).
    pub refreshes: u32,
    /// Errors by category: network, server, invalid_grant, keychain, rate_limited…
    pub errors: BTreeMap<String, u32>,
}

impl AuthMonitor {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner);
    }

    pub fn set_recorder(&self, recorder: crate::analytics::Recorder) {
        let _ = self.recorder.set(recorder);
    }

    fn history(&self, metric: crate::analytics::Metric, took: Duration) {
        if let Some(recorder) = self.recorder.get() {
            recorder.record(metric, took.as_secs_f64() * 1e3);
        }
    }

    pub fn cache_hit(&self, took: Duration) {
        self.with(|i| {
            i.hits += 1;
            i.cache.record(took);
        });
        self.history(crate::analytics::Metric::TokenCacheMs, took);
    }

    pub fn cache_miss(&self) {
        self.with(|i| i.misses += 1);
        if let Some(recorder) = self.recorder.get() {
            recorder.record(crate::analytics::Metric::TokenCacheMisses, 1.0);
        }
    }

    pub fn validation(&self, took: Duration) {
        self.with(|i| i.validation.record(took));
        self.history(crate::analytics::Metric::SignInMs, took);
    }

    pub fn refresh(&self, took: Duration) {
        self.with(|i| {
            i.refresh.record(took);
            i.refreshes += 1;
        });
        self.history(crate::analytics::Metric::RefreshMs, took);
    }

    pub fn error(&self, category: &'static str) {
        self.with(|i| *i.errors.entry(category).or_default() += 1);
    }

    pub fn metrics(&self) -> AuthMetrics {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        AuthMetrics {
            cache: inner.cache.summary(),
            validation: inner.validation.summary(),
            refresh: inner.refresh.summary(),
            cache_hits: clamp(inner.hits),
            cache_misses: clamp(inner.misses),
            refreshes: clamp(inner.refreshes),
            errors: inner
                .errors
                .iter()
                .map(|(k, v)| ((*k).to_string(), clamp(*v)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::WINDOW;

    #[test]
    fn percentiles_come_from_the_recorded_samples() {
        let monitor = AuthMonitor::default();
        for us in 1..=100 {
            monitor.refresh(Duration::from_micros(us));
        }
        monitor.cache_hit(Duration::from_nanos(500));
        monitor.cache_miss();
        monitor.error("network");
        monitor.error("network");
        let m = monitor.metrics();
        assert_eq!(m.refresh.count, 100);
        assert_eq!(m.refresh.p50_us, 51.0);
        assert_eq!(m.refresh.p99_us, 99.0);
        assert_eq!(m.cache.p50_us, 0.5);
        assert_eq!((m.cache_hits, m.cache_misses), (1, 1));
        assert_eq!(m.errors["network"], 2);
    }

    #[test]
    fn only_the_newest_samples_are_kept() {
        let monitor = AuthMonitor::default();
        for _ in 0..WINDOW + 10 {
            monitor.validation(Duration::from_micros(1));
        }
        assert_eq!(monitor.metrics().validation.count as usize, WINDOW);
    }
}
