//! The server's requests minute by minute, for the last [`KEEP_MINUTES`] (since it started):
//! counts by outcome and a latency histogram per minute, so the fleet view can show the
//! server's own figures for the same period as the apps' (`GET /v1/admin/fleet`).
//!
//! Invariants:
//! - Memory is bounded: at most [`KEEP_MINUTES`] minutes, and only minutes with requests.
//! - Latencies go into log-linear buckets ([`SUB_BUCKETS`] per power of two of microseconds),
//!   so a percentile is the middle of its bucket: within about 6 % of the true value.
//! - Nothing is kept across a restart: [`Window::figures`] says which part of a period it
//!   covers (`from`, `to`), and `None` for both when it covers none of it.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{json, Value};

/// A day of minutes.
pub const KEEP_MINUTES: i64 = 24 * 60;
const MINUTE_MS: i64 = 60_000;
/// Buckets per power of two.
pub const SUB_BUCKETS: u32 = 8;
/// Powers of two of microseconds: 1 µs to 2^28 µs (about 4.5 min); longer goes in the last.
const POWERS: u32 = 28;
const BUCKETS: usize = (POWERS * SUB_BUCKETS) as usize;

/// One minute's requests.
#[derive(Debug, Clone)]
struct Minute {
    /// The minute's start, ms since the epoch (server clock).
    start_ms: i64,
    requests: u64,
    /// 5xx.
    errors: u64,
    /// 4xx but 429.
    client_errors: u64,
    /// 429.
    rate_limited: u64,
    latency: Box<[u32; BUCKETS]>,
}

impl Minute {
    fn new(start_ms: i64) -> Self {
        Self {
            start_ms,
            requests: 0,
            errors: 0,
            client_errors: 0,
            rate_limited: 0,
            latency: Box::new([0; BUCKETS]),
        }
    }
}

/// The bucket of a latency of `micros` µs.
pub fn bucket(micros: u64) -> usize {
    if micros == 0 {
        return 0;
    }
    let power = 63 - micros.leading_zeros();
    let shift = SUB_BUCKETS.trailing_zeros();
    // The bits right below the leading one say where in the power of two it lies.
    let sub = if power >= shift {
        (micros >> (power - shift)) as u32 & (SUB_BUCKETS - 1)
    } else {
        (micros << (shift - power)) as u32 & (SUB_BUCKETS - 1)
    };
    ((power * SUB_BUCKETS + sub) as usize).min(BUCKETS - 1)
}

/// The middle of bucket `index`, in ms.
pub fn bucket_middle_ms(index: usize) -> f64 {
    let power = index as u32 / SUB_BUCKETS;
    let sub = f64::from(index as u32 % SUB_BUCKETS);
    let low = f64::from(1u32 << power.min(31)) * (1.0 + sub / f64::from(SUB_BUCKETS));
    let width = f64::from(1u32 << power.min(31)) / f64::from(SUB_BUCKETS);
    (low + width / 2.0) / 1000.0
}

/// The server's figures for a period (see [`Window::figures`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// The part of the period the window covers (minute starts), if any.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub requests: u64,
    pub errors: u64,
    pub client_errors: u64,
    pub rate_limited: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Figures {
    pub fn to_json(&self) -> Value {
        let time = |ms: Option<i64>| {
            ms.and_then(chrono::DateTime::from_timestamp_millis)
                .map(crate::rfc3339)
        };
        // Two decimals: the buckets are not finer than that.
        let round = |ms: Option<f64>| ms.map(|v| (v * 100.0).round() / 100.0);
        json!({
            "basis": "window",
            "from": time(self.from_ms),
            "to": time(self.to_ms),
            "requests": self.requests,
            "errors": self.errors,
            "client_errors": self.client_errors,
            "rate_limited": self.rate_limited,
            "p50_ms": round(self.p50_ms),
            "p99_ms": round(self.p99_ms),
        })
    }
}

/// The minutes (see the module's documentation).
#[derive(Debug)]
pub struct Window {
    /// When the server started counting, ms since the epoch.
    started_ms: i64,
    minutes: VecDeque<Minute>,
}

impl Window {
    pub fn new(started_ms: i64) -> Self {
        Self {
            started_ms,
            minutes: VecDeque::new(),
        }
    }

    /// Counts a request answered `status` at `now_ms` after `elapsed`.
    pub fn record(&mut self, now_ms: i64, status: u16, elapsed: Duration) {
        let start_ms = now_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        while self
            .minutes
            .front()
            .is_some_and(|m| m.start_ms <= start_ms - KEEP_MINUTES * MINUTE_MS)
        {
            self.minutes.pop_front();
        }
        // Requests finish nearly in order; one that began in the previous minute and ended in
        // this one counts in this one.
        if self.minutes.back().is_none_or(|m| m.start_ms < start_ms) {
            self.minutes.push_back(Minute::new(start_ms));
        }
        let Some(minute) = self.minutes.back_mut() else {
            return;
        };
        minute.requests += 1;
        match status {
            429 => minute.rate_limited += 1,
            400..=499 => minute.client_errors += 1,
            500..=599 => minute.errors += 1,
            _ => {}
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = &mut minute.latency[bucket(micros)];
        *slot = slot.saturating_add(1);
    }

    /// The requests of the minutes starting in `[from_ms, to_ms)`, as far as the window (the
    /// last [`KEEP_MINUTES`] before `now_ms`, since the server started) covers it.
    pub fn figures(&self, from_ms: i64, to_ms: i64, now_ms: i64) -> Figures {
        let kept_from = self
            .started_ms
            .div_euclid(MINUTE_MS)
            .max(now_ms.div_euclid(MINUTE_MS) - KEEP_MINUTES + 1)
            * MINUTE_MS;
        let covered_from = from_ms.max(kept_from);
        let covered_to = to_ms.min(now_ms);
        if covered_from >= covered_to {
            return Figures::default();
        }
        let mut figures = Figures {
            from_ms: Some(covered_from),
            to_ms: Some(covered_to),
            ..Figures::default()
        };
        let mut latency = [0u64; BUCKETS];
        for minute in self
            .minutes
            .iter()
            .filter(|m| m.start_ms >= from_ms && m.start_ms < to_ms)
        {
            figures.requests += minute.requests;
            figures.errors += minute.errors;
            figures.client_errors += minute.client_errors;
            figures.rate_limited += minute.rate_limited;
            for (sum, n) in latency.iter_mut().zip(minute.latency.iter()) {
                *sum += u64::from(*n);
            }
        }
        figures.p50_ms = percentile(&latency, 0.50);
        figures.p99_ms = percentile(&latency, 0.99);
        figures
    }
}

/// The middle of the bucket holding the `q` quantile, in ms; `None` without requests.
fn percentile(buckets: &[u64; BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    // The rank of the quantile, 1-based: the smallest value with at least q of all at or
    // below it.
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (index, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(bucket_middle_ms(index));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_falls_in_a_bucket_whose_middle_is_close_to_it() {
        for micros in [
            1u64, 2, 3, 7, 100, 999, 1_000, 1_234, 45_678, 1_000_000, 9_999_999,
        ] {
            let middle_us = bucket_middle_ms(bucket(micros)) * 1000.0;
            let error = (middle_us - micros as f64).abs() / micros as f64;
            assert!(error <= 0.0625, "{micros} µs → {middle_us} µs ({error})");
        }
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        // In order.
        let mut last = 0;
        for micros in 1..100_000u64 {
            let b = bucket(micros);
            assert!(b >= last, "{micros}");
            last = b;
        }
    }

    const T0: i64 = 1_800_000_000_000; // a minute's start

    #[test]
    fn figures_count_the_minutes_of_the_period_the_window_covers() {
        let mut window = Window::new(T0);
        let ms = Duration::from_millis;
        for (at, status, took) in [
            (T0, 200, ms(2)),
            (T0 + 59_999, 201, ms(2)),
            (T0 + 60_000, 500, ms(40)),
            (T0 + 61_000, 429, ms(1)),
            (T0 + 120_000, 404, ms(3)),
        ] {
            window.record(at, status, took);
        }
        let now = T0 + 130_000;
        let all = window.figures(T0 - 3_600_000, now, now);
        assert_eq!((all.from_ms, all.to_ms), (Some(T0), Some(now)));
        assert_eq!(
            (
                all.requests,
                all.errors,
                all.client_errors,
                all.rate_limited
            ),
            (5, 1, 1, 1)
        );
        let p50 = all.p50_ms.unwrap();
        assert!((1.9..=2.1).contains(&p50), "{p50}");
        let p99 = all.p99_ms.unwrap();
        assert!((37.0..=43.0).contains(&p99), "{p99}");
        // The second minute alone.
        let second = window.figures(T0 + 60_000, T0 + 120_000, now);
        assert_eq!((second.requests, second.errors), (2, 1));
        // Before the server started: nothing covered.
        assert_eq!(window.figures(T0 - 120_000, T0, now), Figures::default());
    }

    #[test]
    fn the_window_keeps_a_day() {
        let mut window = Window::new(T0);
        window.record(T0, 200, Duration::from_millis(1));
        let later = T0 + KEEP_MINUTES * MINUTE_MS;
        window.record(later, 200, Duration::from_millis(1));
        assert_eq!(window.minutes.len(), 1, "the first minute is a day old");
        let figures = window.figures(T0, later + 1, later + 1);
        assert_eq!(figures.requests, 1);
        assert_eq!(figures.from_ms, Some(T0 + MINUTE_MS));
    }
}
