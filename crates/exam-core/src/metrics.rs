//! Latency histograms shared by the core's monitors: a bounded window of the newest
//! samples and its percentiles.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

/// Samples kept per histogram (the newest).
pub const WINDOW: usize = 4096;

/// The newest [`WINDOW`] durations, in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples(VecDeque<u64>);

impl Samples {
    pub fn record(&mut self, d: Duration) {
        if self.0.len() == WINDOW {
            self.0.pop_front();
        }
        self.0
            .push_back(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn summary(&self) -> LatencySummary {
        let mut sorted: Vec<u64> = self.0.iter().copied().collect();
        LatencySummary::of_nanos(&mut sorted)
    }
}

/// Percentiles of a set of durations, in microseconds (zero when there is no sample).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct LatencySummary {
    pub count: u32,
    pub p50_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl LatencySummary {
    /// Summarises nanosecond samples (sorted in place), nearest-rank percentiles.
    pub fn of_nanos(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        let pick = |p: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
            samples[rank.min(samples.len() - 1)] as f64 / 1000.0
        };
        Self {
            count: u32::try_from(samples.len()).unwrap_or(u32::MAX),
            p50_us: pick(50.0),
            p95_us: pick(95.0),
            p99_us: pick(99.0),
            max_us: pick(100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_set() {
        let mut samples: Vec<u64> = (1..=100).rev().map(|n| n * 1000).collect();
        let s = LatencySummary::of_nanos(&mut samples);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_us, 51.0);
        assert_eq!(s.p95_us, 95.0);
        assert_eq!(s.p99_us, 99.0);
        assert_eq!(s.max_us, 100.0);
    }

    #[test]
    fn the_window_keeps_the_newest() {
        let mut samples = Samples::default();
        for n in 0..(WINDOW as u64 + 10) {
            samples.record(Duration::from_nanos(n));
        }
        assert_eq!(samples.len(), WINDOW);
        assert_eq!(samples.summary().max_us, (WINDOW as f64 + 9.0) / 1000.0);
        assert!(LatencySummary::of_nanos(&mut []).count == 0);
    }
}
