//! Trends and predictions that matter on an exam day, each with its error measured on past
//! data (a backtest) so nobody trusts a number that would have been wrong yesterday:
//! - when this machine's queue will have drained at the current delivery rate;
//! - when the disk will be too full for the queue, from the free space's trend;
//! - whether a failure rate is rising (a lab's token refreshes failing more each hour);
//! - peak answer writes per second for an exam, from its number of students and past exams
//!   (capacity planning).
//!
//! Moving averages and Holt's linear trend (double exponential smoothing) are enough: the
//! series are short, noisy and without a season within the horizons asked (minutes to a
//! day); a seasonal model would need weeks of exam days the history rarely has.

use serde::Serialize;

/// Holt's linear trend: a level and a trend, each smoothed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Holt {
    alpha: f64,
    beta: f64,
    state: Option<(f64, f64)>,
    seen: u64,
}

impl Holt {
    /// `alpha` smooths the level, `beta` the trend (both 0..=1).
    pub fn new(alpha: f64, beta: f64) -> Self {
        Self {
            alpha: alpha.clamp(0.0, 1.0),
            beta: beta.clamp(0.0, 1.0),
            state: None,
            seen: 0,
        }
    }

    /// The first two values set the level and the trend (the usual start: no lag on a
    /// series that is a line from the beginning).
    pub fn add(&mut self, x: f64) {
        self.seen += 1;
        self.state = Some(match self.state {
            None => (x, 0.0),
            Some((level, _)) if self.seen == 2 => (x, x - level),
            Some((level, trend)) => {
                let next = self.alpha * x + (1.0 - self.alpha) * (level + trend);
                (next, self.beta * (next - level) + (1.0 - self.beta) * trend)
            }
        });
    }

    /// The value `steps` ahead (none before the first observation).
    pub fn forecast(&self, steps: f64) -> Option<f64> {
        self.state.map(|(level, trend)| level + steps * trend)
    }

    /// The trend per step.
    pub fn trend(&self) -> Option<f64> {
        self.state.map(|(_, trend)| trend)
    }
}

/// The mean of the last `window` values (all of them when fewer).
pub fn moving_average(values: &[f64], window: usize) -> Option<f64> {
    let tail = &values[values.len().saturating_sub(window.max(1))..];
    (!tail.is_empty()).then(|| tail.iter().sum::<f64>() / tail.len() as f64)
}

/// How wrong a model was on past data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Backtest {
    /// Forecasts checked.
    pub n: u32,
    /// Mean absolute error, in the series' unit.
    pub mae: f64,
    /// Mean absolute error relative to the actual values (%; actual zeros left out).
    pub mape: f64,
}

/// Forecasts `horizon` steps ahead by Holt's model over `series`, each made from the
/// values before it (at least `warm_up` of them), against what came.
pub fn backtest_holt(
    series: &[f64],
    alpha: f64,
    beta: f64,
    warm_up: usize,
    horizon: usize,
) -> Option<Backtest> {
    let horizon = horizon.max(1);
    let (mut n, mut abs, mut rel, mut rel_n) = (0u32, 0.0, 0.0, 0u32);
    for end in warm_up.max(2)..series.len().saturating_sub(horizon - 1) {
        let mut model = Holt::new(alpha, beta);
        for x in &series[..end] {
            model.add(*x);
        }
        let (Some(forecast), Some(actual)) = (
            model.forecast(horizon as f64),
            series.get(end + horizon - 1),
        ) else {
            continue;
        };
        n += 1;
        abs += (forecast - actual).abs();
        if actual.abs() > f64::EPSILON {
            rel += ((forecast - actual) / actual).abs();
            rel_n += 1;
        }
    }
    (n > 0).then(|| Backtest {
        n,
        mae: abs / f64::from(n),
        mape: if rel_n > 0 {
            100.0 * rel / f64::from(rel_n)
        } else {
            0.0
        },
    })
}

/// Seconds until the queue is empty: `depth` entries at the delivery rate of the last
/// `window` seconds (`delivered_per_s`, newest last). None while nothing is delivered (the
/// network may be down: no promise is better than a wrong one).
pub fn queue_drained_in_s(depth: f64, delivered_per_s: &[f64], window: usize) -> Option<f64> {
    if depth <= 0.0 {
        return Some(0.0);
    }
    let rate = moving_average(delivered_per_s, window)?;
    (rate > 0.0).then(|| depth / rate)
}

/// Seconds until the free space (`(seconds, bytes free)` samples, oldest first) falls to
/// `reserve`, from Holt's trend per second; none while it is not falling.
pub fn disk_full_in_s(samples: &[(f64, f64)], reserve: f64) -> Option<f64> {
    let (first, last) = (samples.first()?, samples.last()?);
    let span = last.0 - first.0;
    if samples.len() < 3 || span <= 0.0 {
        return None;
    }
    let step = span / (samples.len() - 1) as f64;
    let mut model = Holt::new(0.5, 0.3);
    for (_, free) in samples {
        model.add(*free);
    }
    let per_s = model.trend()? / step;
    let level = model.forecast(0.0)?;
    if per_s >= 0.0 {
        return None;
    }
    Some(((level - reserve) / -per_s).max(0.0))
}

/// Whether a rate (per window, oldest first) is rising: its Holt trend per window above
/// `min_rise`, and by how much.
pub fn rising(values: &[f64], min_rise: f64) -> Option<f64> {
    if values.len() < 4 {
        return None;
    }
    let mut model = Holt::new(0.5, 0.4);
    for v in values {
        model.add(*v);
    }
    model.trend().filter(|t| *t > min_rise)
}

/// A past exam, for capacity planning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PastExam {
    pub students: f64,
    pub peak_writes_per_s: f64,
}

/// The peak answer writes per second expected for `students`, from past exams' peaks per
/// student (the median ratio: one odd exam does not move it), and the error that rule
/// would have made on each past exam from the others (leave-one-out).
pub fn peak_writes(students: f64, past: &[PastExam]) -> Option<(f64, Option<Backtest>)> {
    let ratio = |exams: &[PastExam]| -> Option<f64> {
        let mut ratios: Vec<f64> = exams
            .iter()
            .filter(|e| e.students > 0.0)
            .map(|e| e.peak_writes_per_s / e.students)
            .collect();
        if ratios.is_empty() {
            return None;
        }
        ratios.sort_by(f64::total_cmp);
        let mid = ratios.len() / 2;
        Some(if ratios.len() % 2 == 1 {
            ratios[mid]
        } else {
            (ratios[mid - 1] + ratios[mid]) / 2.0
        })
    };
    let expected = ratio(past)? * students;
    let (mut n, mut abs, mut rel) = (0u32, 0.0, 0.0);
    for i in 0..past.len() {
        let others: Vec<PastExam> = past
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, e)| *e)
            .collect();
        let Some(r) = ratio(&others) else { continue };
        let (forecast, actual) = (r * past[i].students, past[i].peak_writes_per_s);
        n += 1;
        abs += (forecast - actual).abs();
        if actual > 0.0 {
            rel += ((forecast - actual) / actual).abs();
        }
    }
    let backtest = (n > 0).then(|| Backtest {
        n,
        mae: abs / f64::from(n),
        mape: 100.0 * rel / f64::from(n),
    });
    Some((expected, backtest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, within: f64) -> bool {
        (a - b).abs() <= within
    }

    #[test]
    fn holt_follows_a_line_exactly_and_forecasts_it() {
        let mut model = Holt::new(0.5, 0.5);
        for i in 0..50 {
            model.add(10.0 + 2.0 * f64::from(i));
        }
        // 49 → 108; 10 steps ahead → 128.
        assert!(
            close(model.forecast(10.0).unwrap(), 128.0, 0.01),
            "{model:?}"
        );
        assert!(close(model.trend().unwrap(), 2.0, 0.001));
        let bt = backtest_holt(
            &(0..50)
                .map(|i| 10.0 + 2.0 * f64::from(i))
                .collect::<Vec<_>>(),
            0.5,
            0.5,
            30,
            5,
        )
        .unwrap();
        assert!(bt.mae < 0.05, "{bt:?}");
        assert_eq!(bt.n, 16);
    }

    #[test]
    fn the_backtest_says_how_wrong_a_noisy_series_makes_it() {
        // A recorded queue depth, one a minute: it fills during an outage, then drains.
        let depth = [
            0.0, 2.0, 5.0, 9.0, 14.0, 18.0, 23.0, 27.0, 31.0, 36.0, 30.0, 22.0, 15.0, 8.0, 3.0,
            0.0, 0.0, 1.0, 0.0, 0.0,
        ];
        let bt = backtest_holt(&depth, 0.6, 0.3, 5, 1).unwrap();
        assert_eq!(bt.n, 15);
        // The known answer for this series and these parameters: about 5 entries off a
        // minute ahead while the queue turns (fills, then drains) — what a dashboard prints
        // next to the prediction, so nobody reads it as exact.
        assert!(close(bt.mae, 5.258_683_949_427_168, 1e-9), "{bt:?}");
        assert!(close(bt.mape, 109.126_598_768_553, 1e-6), "{bt:?}");
    }

    #[test]
    fn the_queue_drains_at_the_delivery_rate_and_no_promise_while_nothing_moves() {
        let table: &[(f64, &[f64], Option<f64>)] = &[
            (0.0, &[], Some(0.0)),
            (120.0, &[2.0, 2.0, 2.0], Some(60.0)),
            (120.0, &[0.0, 4.0, 2.0, 0.0, 4.0], Some(60.0)), // bursts of a batch
            (120.0, &[0.0, 0.0, 0.0], None),                 // offline
            (50.0, &[], None),
        ];
        for (depth, rate, expected) in table {
            assert_eq!(
                queue_drained_in_s(*depth, rate, 5),
                *expected,
                "{depth} {rate:?}"
            );
        }
    }

    #[test]
    fn the_disk_is_full_when_its_trend_says_and_never_while_it_is_not_falling() {
        // 1 GB free, losing 1 MB a second, sampled each 60 s for 10 minutes.
        let falling: Vec<(f64, f64)> = (0..=10)
            .map(|m| (f64::from(m) * 60.0, 1e9 - f64::from(m) * 60.0 * 1e6))
            .collect();
        let left = falling.last().unwrap().1;
        let eta = disk_full_in_s(&falling, 1e8).unwrap();
        assert!(close(eta, (left - 1e8) / 1e6, 1.0), "{eta}");
        let steady: Vec<(f64, f64)> = (0..10).map(|m| (f64::from(m) * 60.0, 5e9)).collect();
        assert_eq!(disk_full_in_s(&steady, 1e8), None);
        assert_eq!(disk_full_in_s(&falling[..2], 1e8), None, "too few samples");
    }

    #[test]
    fn a_failure_rate_rising_hour_by_hour_is_seen_a_flat_one_is_not() {
        assert!(rising(&[1.0, 2.0, 4.0, 6.0, 9.0, 12.0], 0.5).is_some());
        assert_eq!(rising(&[3.0, 2.0, 3.0, 3.0, 2.0, 3.0], 0.5), None);
        assert_eq!(rising(&[1.0, 5.0], 0.5), None, "too short to say");
    }

    #[test]
    fn peak_writes_come_from_past_exams_with_their_error() {
        let past = [
            PastExam {
                students: 100.0,
                peak_writes_per_s: 20.0,
            },
            PastExam {
                students: 200.0,
                peak_writes_per_s: 44.0,
            },
            PastExam {
                students: 400.0,
                peak_writes_per_s: 80.0,
            },
            PastExam {
                students: 50.0,
                peak_writes_per_s: 30.0,
            }, // an odd one
        ];
        let (expected, bt) = peak_writes(1000.0, &past).unwrap();
        // The median of 0.2, 0.22, 0.2, 0.6 is 0.21: 210 writes/s for 1,000 students.
        assert!(close(expected, 210.0, 1e-9), "{expected}");
        let bt = bt.unwrap();
        assert_eq!(bt.n, 4);
        assert!(bt.mape > 10.0, "the odd exam shows in the error: {bt:?}");
        assert_eq!(peak_writes(10.0, &[]), None);
    }
}
