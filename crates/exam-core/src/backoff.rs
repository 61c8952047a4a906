//! One backoff for everything that retries (queued requests, token refreshes): exponential
//! from `base` to `max`, with jitter so a lab of thirty clients that lost the network
//! together does not come back in step.

use std::time::Duration;

/// Exponential backoff with jitter between `base` and `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s doubling to 5 min.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempts + 1`: `base · 2^(attempts-1)` capped at `max`,
    /// then jittered to between half and all of it (`random` in [0, 1]).
    pub fn delay(&self, attempts: u32, random: f64) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exp).min(self.max);
        full.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_with_jitter_and_a_cap() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(b.delay(4, 1.0), Duration::from_secs(8));
        assert_eq!(b.delay(40, 1.0), Duration::from_secs(300));
        assert_eq!(b.delay(40, 0.0), Duration::from_secs(150));
        // Out-of-range randomness is clamped, never a zero or negative delay.
        assert_eq!(b.delay(1, -3.0), Duration::from_millis(500));
    }
}
