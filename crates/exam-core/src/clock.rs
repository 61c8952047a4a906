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

/// A wall-clock change bigger than this between two readings is a jump (someone set the
/// clock, NTP stepped it), not the drift NTP slews away.
const JUMP_MS: i64 = 2_000;

/// The server's clock as learned from its `Date` headers: this computer's clock plus an
/// offset. When this computer's clock jumps (set by hand, stepped by NTP), the offset is
/// re-learned at once from the time since boot — which counts on through a suspend and is
/// never set — instead of being wrong by the jump until the next reply from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerClock {
    offset_ms: i64,
    /// (wall clock, time since boot) at the last reading.
    anchor: Option<(i64, i64)>,
}

impl ServerClock {
    /// Starts from an offset saved earlier (0 when none).
    pub fn new(offset_ms: i64) -> Self {
        Self {
            offset_ms,
            anchor: None,
        }
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    /// The server said it is `server_ms` when this computer's clock said `wall_ms`.
    pub fn learn(&mut self, server_ms: i64, wall_ms: i64, since_boot_ms: Option<i64>) {
        self.offset_ms = server_ms - wall_ms;
        self.anchor = since_boot_ms.map(|boot| (wall_ms, boot));
    }

    /// The server's time when this computer's clock says `wall_ms`, `since_boot_ms` after
    /// boot; and whether the offset was re-learned (the wall clock jumped since the last
    /// reading).
    pub fn now(&mut self, wall_ms: i64, since_boot_ms: Option<i64>) -> (i64, bool) {
        let mut relearned = false;
        if let Some(boot) = since_boot_ms {
            if let Some((wall0, boot0)) = self.anchor {
                let jump = (wall_ms - wall0) - (boot - boot0);
                if jump.abs() > JUMP_MS {
                    self.offset_ms -= jump;
                    relearned = true;
                }
            }
            self.anchor = Some((wall_ms, boot));
        }
        (wall_ms + self.offset_ms, relearned)
    }
}

/// Milliseconds since this computer booted, suspended time included (Linux: `/proc/uptime`,
/// the boot-time clock); `None` where it cannot be read, and jumps then wait for the
/// server's next reply.
pub fn since_boot_ms() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let seconds: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some((seconds * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_clock_jump_is_noticed_and_the_servers_time_stays_right() {
        let mut clock = ServerClock::new(0);
        // The server is 90 s ahead of this computer.
        clock.learn(1_000_090_000, 1_000_000_000, Some(5_000));
        assert_eq!(
            clock.now(1_000_010_000, Some(15_000)),
            (1_000_100_000, false)
        );
        // Someone sets the clock back an hour: the server's time goes on as before.
        let (server, relearned) = clock.now(1_000_020_000 - 3_600_000, Some(25_000));
        assert!(relearned);
        assert_eq!(server, 1_000_110_000);
        // NTP steps it forward 10 minutes: the same.
        let (server, relearned) = clock.now(1_000_030_000 - 3_600_000 + 600_000, Some(35_000));
        assert!(relearned);
        assert_eq!(server, 1_000_120_000);
        // Small drift is not a jump; a suspend moves both clocks alike.
        assert_eq!(
            clock.now(1_000_040_500 - 3_000_000, Some(45_000)),
            (1_000_130_500, false)
        );
        assert_eq!(
            clock.now(1_008_040_500 - 3_000_000, Some(8_045_000)),
            (1_008_130_500, false)
        );
        // Without a time since boot nothing can be told: the offset stays.
        let mut blind = ServerClock::new(90_000);
        assert_eq!(blind.now(1_000, None), (91_000, false));
        assert!(since_boot_ms().is_none_or(|ms| ms > 0));
    }

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
