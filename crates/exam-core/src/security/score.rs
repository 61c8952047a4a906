//! Scores against a behaviour baseline, with robust statistics so one odd minute neither
//! raises an alarm nor spoils the baseline: the modified z-score of a value against the
//! median and the median absolute deviation (MAD) of the same hour of the week, an EWMA for
//! the trend, and an alert only when k of the last n windows are anomalous. Deterministic:
//! the same series gives the same scores (no clock, no randomness).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Values kept per hour-of-week bucket.
pub const BUCKET_WINDOW: usize = 32;
/// Values a bucket needs before it scores anything.
pub const MIN_HISTORY: usize = 8;
/// A modified z-score above this is anomalous (Iglewicz and Hoaglin's 3.5).
pub const Z_THRESHOLD: f64 = 3.5;

/// The hour of the week (0 = Monday 00:00 UTC … 167) of a time in ms since the epoch.
pub fn hour_of_week(ms: i64) -> usize {
    // 1970-01-01 was a Thursday: Monday-based, it is day 3.
    let hours = ms.div_euclid(3_600_000);
    usize::try_from((hours + 3 * 24).rem_euclid(168)).unwrap_or(0)
}

/// The median of `values` (sorted in place); 0 when empty.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The modified z-score of `x` against `history`: 0.6745 (x − median) / MAD. A history
/// without spread (MAD 0) uses the mean absolute deviation (× 1.2533); without any spread at
/// all, any difference counts as far out and none as nothing.
pub fn modified_z(history: &[f64], x: f64) -> f64 {
    let mut sorted: Vec<f64> = history.to_vec();
    let med = median(&mut sorted);
    let mut deviations: Vec<f64> = history.iter().map(|v| (v - med).abs()).collect();
    let mad = median(&mut deviations);
    if mad > 0.0 {
        return 0.6745 * (x - med) / mad;
    }
    let mean_ad = deviations.iter().sum::<f64>() / deviations.len().max(1) as f64;
    if mean_ad > 0.0 {
        return (x - med) / (1.2533 * mean_ad);
    }
    if (x - med).abs() < f64::EPSILON {
        0.0
    } else {
        f64::INFINITY.copysign(x - med)
    }
}

/// An exponentially weighted moving average.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    alpha: f64,
    value: Option<f64>,
}

impl Ewma {
    pub fn new(alpha: f64) -> Self {
        Self {
            alpha: alpha.clamp(0.0, 1.0),
            value: None,
        }
    }

    pub fn add(&mut self, x: f64) -> f64 {
        let next = match self.value {
            None => x,
            Some(v) => v + self.alpha * (x - v),
        };
        self.value = Some(next);
        next
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// "k of the last n windows were anomalous".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KOfN {
    k: usize,
    n: usize,
    recent: VecDeque<bool>,
}

impl KOfN {
    pub fn new(k: usize, n: usize) -> Self {
        let n = n.max(1);
        Self {
            k: k.clamp(1, n),
            n,
            recent: VecDeque::with_capacity(n),
        }
    }

    /// Adds a window's verdict; whether k of the last n were anomalous.
    pub fn add(&mut self, anomalous: bool) -> bool {
        if self.recent.len() == self.n {
            self.recent.pop_front();
        }
        self.recent.push_back(anomalous);
        self.recent.iter().filter(|a| **a).count() >= self.k
    }
}

/// The score of one observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The modified z-score against its hour of the week (none while the baseline is too
    /// short to say).
    pub z: Option<f64>,
    /// The trend over every observation.
    pub ewma: f64,
    pub anomalous: bool,
    /// k of the last n windows were anomalous: worth an alert.
    pub alert: bool,
}

/// One measure's baseline (a device's request rate per minute, a student's refresh cadence,
/// a failure rate, outages per hour): per hour of the week, so Monday 9:00 is compared with
/// Mondays at 9:00. Kept across restarts (serialised).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    buckets: Vec<VecDeque<f64>>,
    trend: Ewma,
    alerts: KOfN,
}

impl Default for Baseline {
    fn default() -> Self {
        Self::new(3, 5)
    }
}

impl Baseline {
    /// A baseline that alerts after `k` anomalous windows of the last `n`.
    pub fn new(k: usize, n: usize) -> Self {
        Self {
            buckets: vec![VecDeque::with_capacity(BUCKET_WINDOW); 168],
            trend: Ewma::new(0.2),
            alerts: KOfN::new(k, n),
        }
    }

    /// Scores `x` observed at `at_ms`, then learns it. Anomalous values are learnt too (the
    /// median and MAD shrug off a few), so a lasting change becomes the new normal.
    pub fn observe(&mut self, at_ms: i64, x: f64) -> Score {
        let bucket = &mut self.buckets[hour_of_week(at_ms)];
        let z = (bucket.len() >= MIN_HISTORY).then(|| {
            let (a, b) = bucket.as_slices();
            if b.is_empty() {
                modified_z(a, x)
            } else {
                modified_z(&[a, b].concat(), x)
            }
        });
        let anomalous = z.is_some_and(|z| z.abs() > Z_THRESHOLD);
        if bucket.len() == BUCKET_WINDOW {
            bucket.pop_front();
        }
        bucket.push_back(x);
        let ewma = self.trend.add(x);
        let alert = self.alerts.add(anomalous);
        Score {
            z,
            ewma,
            anomalous,
            alert,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_of_the_week_start_on_monday() {
        assert_eq!(hour_of_week(0), 72); // Thursday 1970-01-01 00:00 UTC
        assert_eq!(hour_of_week(4 * 86_400_000), 0); // Monday 1970-01-05
        assert_eq!(hour_of_week(4 * 86_400_000 + 9 * 3_600_000), 9);
        assert_eq!(hour_of_week(-3_600_000), 71);
    }

    #[test]
    fn modified_z_scores_against_median_and_mad() {
        // (history, value, expected z)
        let table: &[(&[f64], f64, f64)] = &[
            (&[10.0, 11.0, 9.0, 10.0, 12.0, 10.0, 8.0, 10.0], 10.0, 0.0),
            // median 10, MAD 0.5 (deviations 0 0 0 0 1 1 2 2) → 0.6745 × 20 / 0.5
            (&[10.0, 11.0, 9.0, 10.0, 12.0, 10.0, 8.0, 10.0], 30.0, 26.98),
            (&[10.0, 11.0, 9.0, 10.0, 12.0, 10.0, 8.0, 10.0], 8.0, -2.698),
            // One wild value in the history does not move the baseline.
            (
                &[10.0, 11.0, 9.0, 10.0, 500.0, 10.0, 8.0, 10.0],
                30.0,
                26.98,
            ),
        ];
        for (history, x, expected) in table {
            let z = modified_z(history, *x);
            assert!((z - expected).abs() < 1e-3, "{history:?} {x}: {z}");
        }
        // No spread at all: equal is 0, anything else is far out.
        assert_eq!(modified_z(&[5.0; 8], 5.0), 0.0);
        assert!(modified_z(&[5.0; 8], 6.0).is_infinite());
    }

    #[test]
    fn k_of_n_windows_make_an_alert_a_single_one_does_not() {
        let mut rule = KOfN::new(3, 5);
        let verdicts = [
            true, false, false, true, false, true, true, false, false, false,
        ];
        let alerts: Vec<bool> = verdicts.iter().map(|v| rule.add(*v)).collect();
        assert_eq!(
            alerts,
            [false, false, false, false, false, false, true, true, false, false]
        );
    }

    #[test]
    fn a_recorded_series_alerts_on_a_lasting_burst_only() {
        // Requests per minute of one device at Monday 09:00 over eight weeks (the baseline),
        // then a lesson on the ninth Monday: one odd minute, then a burst of six minutes.
        let week = 7 * 86_400_000i64;
        let monday_9 = 4 * 86_400_000 + 9 * 3_600_000;
        let mut baseline = Baseline::new(3, 5);
        let history = [42.0, 40.0, 45.0, 39.0, 41.0, 44.0, 40.0, 43.0, 41.0, 42.0];
        for (i, x) in history.iter().enumerate() {
            let score = baseline.observe(monday_9 + (i as i64 % 8) * week + i as i64 * 60_000, *x);
            assert!(!score.alert);
        }
        let lesson = monday_9 + 8 * week;
        let minutes = [
            41.0, 95.0, 43.0, 40.0, 180.0, 190.0, 200.0, 185.0, 175.0, 190.0,
        ];
        let scores: Vec<Score> = minutes
            .iter()
            .enumerate()
            .map(|(i, x)| baseline.observe(lesson + i as i64 * 60_000, *x))
            .collect();
        let anomalous: Vec<bool> = scores.iter().map(|s| s.anomalous).collect();
        let alerts: Vec<bool> = scores.iter().map(|s| s.alert).collect();
        assert_eq!(
            anomalous,
            [false, true, false, false, true, true, true, true, true, true]
        );
        assert_eq!(
            alerts,
            [false, false, false, false, false, true, true, true, true, true]
        );
        // The trend follows, smoothed.
        assert!(
            scores[9].ewma > 100.0 && scores[9].ewma < 190.0,
            "{:?}",
            scores[9]
        );
    }

    #[test]
    fn no_score_before_the_baseline_has_enough_history() {
        let mut baseline = Baseline::default();
        for i in 0..MIN_HISTORY {
            let score = baseline.observe(i as i64 * 60_000, 1_000.0 * i as f64);
            assert_eq!(score.z, None);
            assert!(!score.anomalous);
        }
    }
}
