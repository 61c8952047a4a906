//! Token-bucket rate limits, per user and per IP.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// `per_second` tokens are added each second up to `burst`; 0 per second turns it off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSpec {
    pub per_second: f64,
    pub burst: f64,
}

impl RateSpec {
    pub const OFF: RateSpec = RateSpec {
        per_second: 0.0,
        burst: 0.0,
    };

    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second,
            burst: burst.max(1.0),
        }
    }

    pub fn is_off(&self) -> bool {
        self.per_second <= 0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Buckets kept before full (idle) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

impl Limiter {
    /// Takes one token from `key`'s bucket; `Err(seconds)` to wait when it is empty.
    pub fn check(&self, key: &str, spec: RateSpec, now: Instant) -> Result<(), u64> {
        if spec.is_off() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| {
                let refill = now.duration_since(b.at).as_secs_f64() * spec.per_second;
                b.tokens + refill < spec.burst
            });
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: spec.burst,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * spec.per_second;
        bucket.tokens = (bucket.tokens + refill).min(spec.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / spec.per_second;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limiter = Limiter::default();
        let spec = RateSpec::new(2.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("u", spec, t0), Ok(()));
        }
        assert_eq!(limiter.check("u", spec, t0), Err(1));
        // Another key has its own bucket.
        assert_eq!(limiter.check("v", spec, t0), Ok(()));
        // Half a second at 2/s gives one token back.
        assert_eq!(
            limiter.check("u", spec, t0 + Duration::from_millis(500)),
            Ok(())
        );
        assert!(limiter
            .check("u", spec, t0 + Duration::from_millis(500))
            .is_err());
    }

    #[test]
    fn off_never_limits() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(limiter.check("u", RateSpec::OFF, t0), Ok(()));
        }
    }
}
