//! Insights: rules over this computer's history that say what is wrong or about to be, with
//! the evidence (figures) and a recommendation. Each insight is a code plus numbers; the
//! app words it in the student's or IT's language (English and Vietnamese), the console in
//! English. Thresholds are data ([`Thresholds`]), so a school can change them and the rules
//! are table-tested.

use serde::Serialize;

use super::history::History;
use super::predict;
use super::recorder::Metric;

/// What the rules read, gathered from the history and the app's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// Token refreshes in the last hour.
    pub refreshes_last_hour: f64,
    /// The access token's lifetime as the server gives it (s), when known.
    pub access_lifetime_s: Option<f64>,
    /// This computer's clock against the server's (s; positive: ahead).
    pub clock_offset_s: f64,
    /// Outages begun in the last hour.
    pub outages_last_hour: f64,
    /// Work waiting now, and deliveries per second over the last minutes (newest last).
    pub queue_depth: f64,
    pub delivered_per_s: Vec<f64>,
    /// How long work has been waiting without a delivery (s).
    pub waiting_without_delivery_s: f64,
    /// The slowest answer save of each second in the last hour (ms).
    pub save_max_ms: Vec<f64>,
    /// Keychain errors since the app started.
    pub keychain_errors: f64,
    /// Free space on the data folder's disk, sampled over time: (s, bytes).
    pub free_bytes: Vec<(f64, f64)>,
}

/// When a rule speaks up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Refreshes more often than once per this fraction of the access lifetime mean the
    /// lifetime is too short for the cadence.
    pub refreshes_per_hour: f64,
    pub clock_skew_s: f64,
    pub outages_per_hour: f64,
    /// Work waiting this long without a delivery is a backlog.
    pub backlog_s: f64,
    /// A 99th-percentile save slower than this is a slow disk.
    pub save_p99_ms: f64,
    /// Warn when the queue's disk fills within this long.
    pub disk_full_within_s: f64,
    /// Free space kept for the queue.
    pub disk_reserve_bytes: f64,
    /// Warn when the waiting work takes longer than this to send at the current rate.
    pub drain_longer_than_s: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            refreshes_per_hour: 12.0,
            clock_skew_s: 60.0,
            outages_per_hour: 6.0,
            backlog_s: 600.0,
            save_p99_ms: 50.0,
            disk_full_within_s: 86_400.0,
            disk_reserve_bytes: 512.0 * 1024.0 * 1024.0,
            drain_longer_than_s: 600.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum InsightCode {
    /// Access tokens expire too fast for the refresh cadence.
    ShortTokenLifetime,
    ClockSkew,
    FrequentOutages,
    Backlog,
    SlowDisk,
    KeychainErrors,
    /// Predictive: the disk will be too full for the queue.
    DiskFillingUp,
    /// Predictive: the waiting work takes long to send at the current rate.
    SlowDrain,
}

/// One insight: what, the figures that show it, and how sure (a prediction comes with the
/// error its method made on past data, when known).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Insight {
    pub code: InsightCode,
    /// The main figure, in the unit the code says (refreshes/h, s, outages/h, ms, bytes…).
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// For IT, in English: the figures behind it.
    pub evidence: String,
}

/// The 99th percentile of `values` (nearest rank).
fn p99(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = ((0.99 * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1);
    Some(sorted[rank])
}

/// Every insight `inputs` give under `thresholds`, in a stable order.
pub fn evaluate(inputs: &Inputs, thresholds: &Thresholds) -> Vec<Insight> {
    let mut found = Vec::new();
    let mut push = |code, value: f64, threshold: f64, evidence: String| {
        found.push(Insight {
            code,
            value,
            threshold,
            evidence,
        });
    };
    if inputs.refreshes_last_hour > thresholds.refreshes_per_hour {
        push(
            InsightCode::ShortTokenLifetime,
            inputs.refreshes_last_hour,
            thresholds.refreshes_per_hour,
            format!(
                "{:.0} token refreshes in the last hour{}; each costs a request and a keychain write — \
                 a longer access-token lifetime (15 min or more) would do",
                inputs.refreshes_last_hour,
                inputs
                    .access_lifetime_s
                    .map(|s| format!(" (access tokens last {:.0} s)", s))
                    .unwrap_or_default()
            ),
        );
    }
    if inputs.clock_offset_s.abs() > thresholds.clock_skew_s {
        push(
            InsightCode::ClockSkew,
            inputs.clock_offset_s,
            thresholds.clock_skew_s,
            format!(
                "this computer's clock is {:.0} s {} the server's; exam times follow the server, \
                 but logs and reports read better with the clock set (NTP)",
                inputs.clock_offset_s.abs(),
                if inputs.clock_offset_s > 0.0 {
                    "ahead of"
                } else {
                    "behind"
                }
            ),
        );
    }
    if inputs.outages_last_hour >= thresholds.outages_per_hour {
        push(
            InsightCode::FrequentOutages,
            inputs.outages_last_hour,
            thresholds.outages_per_hour,
            format!(
                "{:.0} network outages in the last hour (one every {:.0} min); answers are kept, \
                 but the lab's network should be checked",
                inputs.outages_last_hour,
                60.0 / inputs.outages_last_hour.max(1.0)
            ),
        );
    }
    if inputs.queue_depth > 0.0 && inputs.waiting_without_delivery_s >= thresholds.backlog_s {
        push(
            InsightCode::Backlog,
            inputs.waiting_without_delivery_s,
            thresholds.backlog_s,
            format!(
                "{:.0} items have waited {:.0} min without a delivery; this computer should be \
                 online before the next exam",
                inputs.queue_depth,
                inputs.waiting_without_delivery_s / 60.0
            ),
        );
    }
    if let Some(p99) = p99(&inputs.save_max_ms).filter(|p| *p > thresholds.save_p99_ms) {
        push(
            InsightCode::SlowDisk,
            p99,
            thresholds.save_p99_ms,
            format!(
                "answer saves took up to {p99:.0} ms (99th percentile of each second's slowest) — \
                 a slow or failing disk; answers are still safe"
            ),
        );
    }
    if inputs.keychain_errors > 0.0 {
        push(
            InsightCode::KeychainErrors,
            inputs.keychain_errors,
            0.0,
            format!(
                "{:.0} keychain error(s) since the app started; sign-in may not be kept — check \
                 the computer's keychain (Secret Service, Credential Manager, Keychain)",
                inputs.keychain_errors
            ),
        );
    }
    if let Some(eta) = predict::disk_full_in_s(&inputs.free_bytes, thresholds.disk_reserve_bytes)
        .filter(|eta| *eta < thresholds.disk_full_within_s)
    {
        push(
            InsightCode::DiskFillingUp,
            eta,
            thresholds.disk_full_within_s,
            format!(
                "at the trend of the last samples the disk keeps less than {:.0} MiB free for the \
                 queue in {:.1} h",
                thresholds.disk_reserve_bytes / 1_048_576.0,
                eta / 3600.0
            ),
        );
    }
    if let Some(eta) = predict::queue_drained_in_s(inputs.queue_depth, &inputs.delivered_per_s, 300)
        .filter(|eta| *eta > thresholds.drain_longer_than_s)
    {
        push(
            InsightCode::SlowDrain,
            eta,
            thresholds.drain_longer_than_s,
            format!(
                "{:.0} items waiting at {:.2} delivered per second: about {:.0} min to send them all",
                inputs.queue_depth,
                inputs.queue_depth / eta,
                eta / 60.0
            ),
        );
    }
    found
}

impl Inputs {
    /// The history's part of the inputs, as of `now_ms`: the last hour's refreshes,
    /// outages and slowest saves; the last 5 minutes' deliveries; the queue now and how
    /// long it has waited without a delivery.
    pub fn from_history(
        history: &History,
        now_ms: i64,
    ) -> Result<Self, super::history::HistoryError> {
        let hour_ago = now_ms - 3_600_000;
        let series = |metric| history.series(metric, hour_ago, now_ms, now_ms);
        let total = |metric| -> Result<f64, super::history::HistoryError> {
            Ok(series(metric)?.points.iter().map(|p| p.sum).sum())
        };
        let saves = series(Metric::SaveMs)?;
        let delivered = history.series(Metric::Delivered, now_ms - 300_000, now_ms, now_ms)?;
        let depth = history.series(Metric::QueueDepth, now_ms - 3_600_000, now_ms, now_ms)?;
        let delivered_hour = series(Metric::Delivered)?;
        let queue_depth = depth.points.last().map_or(0.0, |p| p.max);
        // Since the last second anything was delivered (or the hour's start), while work waited.
        let last_delivery = delivered_hour
            .points
            .iter()
            .rev()
            .find(|p| p.sum > 0.0)
            .map_or(hour_ago as f64, |p| p.at_ms);
        let first_waiting = depth
            .points
            .iter()
            .find(|p| p.at_ms >= last_delivery && p.max > 0.0)
            .map(|p| p.at_ms);
        Ok(Self {
            refreshes_last_hour: f64::from(
                series(Metric::RefreshMs)?
                    .points
                    .iter()
                    .map(|p| p.count)
                    .sum::<u32>(),
            ),
            outages_last_hour: total(Metric::Outages)?,
            queue_depth,
            delivered_per_s: delivered.points.iter().map(|p| p.sum).collect(),
            waiting_without_delivery_s: first_waiting
                .filter(|_| queue_depth > 0.0)
                .map_or(0.0, |at| (now_ms as f64 - at) / 1000.0),
            save_max_ms: saves.points.iter().map(|p| p.max).collect(),
            // The last six hours of minute samples: long enough for a trend, short enough that
            // yesterday's clean-up does not hide today's filling.
            free_bytes: history
                .series(Metric::DiskFreeMb, now_ms - 6 * 3_600_000, now_ms, now_ms)?
                .points
                .iter()
                .filter(|p| p.count > 0)
                .map(|p| (p.at_ms / 1000.0, p.min * 1_048_576.0))
                .collect(),
            ..Self::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_speaks_up_past_its_threshold_only() {
        let t = Thresholds::default();
        let quiet = Inputs {
            refreshes_last_hour: 4.0,
            clock_offset_s: -3.0,
            outages_last_hour: 1.0,
            queue_depth: 2.0,
            delivered_per_s: vec![1.0; 10],
            waiting_without_delivery_s: 5.0,
            save_max_ms: vec![1.0; 3600],
            free_bytes: (0..10).map(|m| (f64::from(m) * 60.0, 5e10)).collect(),
            ..Inputs::default()
        };
        assert_eq!(evaluate(&quiet, &t), vec![], "a healthy machine");
        let mut slow_saves = vec![2.0; 3600];
        slow_saves[..60].fill(120.0); // a bad minute: 60 of 3,600 seconds
                                      // (what, inputs, the codes expected)
        let table: Vec<(&str, Inputs, Vec<InsightCode>)> = vec![
            (
                "refreshes every 2 min",
                Inputs {
                    refreshes_last_hour: 30.0,
                    access_lifetime_s: Some(120.0),
                    ..quiet.clone()
                },
                vec![InsightCode::ShortTokenLifetime],
            ),
            (
                "a clock 5 min behind",
                Inputs {
                    clock_offset_s: -300.0,
                    ..quiet.clone()
                },
                vec![InsightCode::ClockSkew],
            ),
            (
                "an outage every 5 min",
                Inputs {
                    outages_last_hour: 12.0,
                    ..quiet.clone()
                },
                vec![InsightCode::FrequentOutages],
            ),
            (
                "work waiting 20 min, nothing delivered",
                Inputs {
                    queue_depth: 40.0,
                    delivered_per_s: vec![0.0; 300],
                    waiting_without_delivery_s: 1200.0,
                    ..quiet.clone()
                },
                vec![InsightCode::Backlog],
            ),
            (
                "a slow minute of saves",
                Inputs {
                    save_max_ms: slow_saves,
                    ..quiet.clone()
                },
                vec![InsightCode::SlowDisk],
            ),
            (
                "keychain errors",
                Inputs {
                    keychain_errors: 2.0,
                    ..quiet.clone()
                },
                vec![InsightCode::KeychainErrors],
            ),
            (
                "the disk filling 1 MB/s with 10 GB free",
                Inputs {
                    free_bytes: (0..10)
                        .map(|m| (f64::from(m) * 60.0, 1e10 - f64::from(m) * 6e7))
                        .collect(),
                    ..quiet.clone()
                },
                vec![InsightCode::DiskFillingUp],
            ),
            (
                "3,000 items at 2 a second",
                Inputs {
                    queue_depth: 3000.0,
                    delivered_per_s: vec![2.0; 300],
                    ..quiet.clone()
                },
                vec![InsightCode::SlowDrain],
            ),
        ];
        for (what, inputs, expected) in table {
            let found: Vec<InsightCode> = evaluate(&inputs, &t).iter().map(|i| i.code).collect();
            assert_eq!(found, expected, "{what}");
        }
        let slow = &evaluate(
            &Inputs {
                queue_depth: 3000.0,
                delivered_per_s: vec![2.0; 300],
                ..quiet.clone()
            },
            &t,
        )[0];
        assert_eq!(slow.value, 1500.0);
        assert!(slow.evidence.contains("about 25 min"), "{}", slow.evidence);
        // Thresholds are the school's: a stricter one speaks earlier.
        let strict = Thresholds {
            outages_per_hour: 1.0,
            ..t
        };
        assert_eq!(
            evaluate(&quiet, &strict)[0].code,
            InsightCode::FrequentOutages
        );
    }

    #[test]
    fn the_inputs_come_from_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open(dir.path(), super::super::Recorder::default()).unwrap();
        let now = 1_000 * 3_600_000;
        let r = history.recorder();
        for s in 0..600 {
            let at = now - 600_000 + s * 1000;
            r.record_at(Metric::QueueDepth, at, 7.0);
            r.record_at(Metric::Delivered, at, 0.0);
            r.record_at(Metric::SaveMs, at, if s == 10 { 80.0 } else { 1.0 });
        }
        for m in 0..20 {
            r.record_at(Metric::RefreshMs, now - m * 120_000 - 500, 30.0);
        }
        r.record_at(Metric::Outages, now - 1_000_000, 1.0);
        history.flush(now).unwrap();
        let inputs = Inputs::from_history(&history, now).unwrap();
        assert_eq!(inputs.refreshes_last_hour, 20.0);
        assert_eq!(inputs.outages_last_hour, 1.0);
        assert_eq!(inputs.queue_depth, 7.0);
        assert!(
            (inputs.waiting_without_delivery_s - 600.0).abs() < 1.5,
            "{inputs:?}"
        );
        assert_eq!(inputs.save_max_ms.len(), 600);
        let codes: Vec<InsightCode> = evaluate(&inputs, &Thresholds::default())
            .iter()
            .map(|i| i.code)
            .collect();
        assert_eq!(
            codes,
            vec![InsightCode::ShortTokenLifetime, InsightCode::Backlog]
        );
    }
}
