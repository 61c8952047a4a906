//! Where "now" comes from, in one place. The wall clock (ms since the Unix epoch, and RFC
//! 3339 for the API) is for what people read, for what is stored and for what is compared
//! with the server's times; anything that waits runs on the monotonic clock
//! (`std::time::Instant`), so a wrong or jumping wall clock on a lab machine can make nothing
//! late. The [`Clock`] trait lets the queue and the monitor be driven by a test clock
//! (`testing::ManualClock`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wall clock, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// This computer's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// This computer's wall clock now (ms since the epoch; 0 before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `ms` since the epoch as RFC 3339 UTC with milliseconds (the API's time format).
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// An RFC 3339 time as ms since the epoch (`Z` or no offset; the API always sends UTC).
pub fn parse_ms(text: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(text.trim().trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_rfc3339() {
        for ms in [0, 1_764_307_627_123, 4_102_444_800_000] {
            assert_eq!(parse_ms(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
        }
        assert_eq!(rfc3339(1_764_307_627_123), "2025-11-28T05:27:07.123Z");
        assert_eq!(parse_ms("not a time"), None);
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}
