//! Random faults while the link is up, drawn from a small seeded PRNG so a failing run can be
//! replayed with the same seed (no `rand` dependency for a test tool).

use std::time::Duration;

/// Random faults applied while the link is [`Link::Up`](crate::Link::Up). Set them with
/// [`FaultProxy::set_faults`](crate::FaultProxy::set_faults); `Faults::default()` means none.
///
/// Decisions are made per *chunk*: whatever one `read()` on a socket returned, which for a
/// small HTTP request or response on loopback is usually the whole message. A large body may
/// arrive in several chunks, each of which gets its own draw.
///
/// The draws come from one PRNG shared by all connections and reseeded by every `set_faults`,
/// so a test that sends its requests one after another sees the same sequence of faults for
/// the same seed. Concurrent connections draw in whatever order the threads run.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Seed of the PRNG (any value, 0 included).
    pub seed: u64,
    /// Probability (0.0–1.0) per client→server chunk that the response is lost: the chunk is
    /// forwarded upstream, and the connection is reset as soon as the upstream starts to
    /// answer, before any byte of the answer reaches the client. Because the reset waits for
    /// the upstream's first response bytes, the server has really received and handled the
    /// request: the "applied on the server, never heard by the client" case. (If the upstream
    /// closes without answering, the close is passed on and nothing is counted.)
    pub drop_response: f64,
    /// Probability (0.0–1.0) per client→server chunk that the connection is reset instead of
    /// forwarding that chunk. Earlier chunks of the same request may already have gone
    /// upstream, so the server sees nothing or a truncated request, never a complete one.
    pub drop_request: f64,
    /// Lower bound of the extra latency added before forwarding each chunk, both directions.
    pub delay_min: Duration,
    /// Upper bound of that latency; the delay is uniform in `[delay_min, delay_max]`
    /// (just `delay_min` when `delay_max <= delay_min`).
    pub delay_max: Duration,
}

/// What to do with one chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) delay: Duration,
    pub(crate) drop_request: bool,
    pub(crate) drop_response: bool,
}

/// The configured faults and the PRNG they draw from, behind one lock.
#[derive(Debug)]
pub(crate) struct FaultState {
    faults: Faults,
    rng: Rng,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = Rng::new(faults.seed);
        Self { faults, rng }
    }

    /// Draws the fate of one chunk. Every chunk consumes the same number of draws for its
    /// direction whatever the probabilities, so changing one probability does not shift the
    /// sequence seen by the others.
    pub(crate) fn plan(&mut self, to_upstream: bool) -> Plan {
        let f = &self.faults;
        let span = f.delay_max.saturating_sub(f.delay_min);
        let delay = f.delay_min + span.mul_f64(self.rng.unit());
        if !to_upstream {
            return Plan {
                delay,
                ..Plan::default()
            };
        }
        let drop_request = self.rng.chance(f.drop_request);
        let drop_response = self.rng.chance(f.drop_response);
        Plan {
            delay,
            drop_request,
            drop_response,
        }
    }
}

/// xorshift64* seeded through splitmix64 (so seed 0 and nearby seeds are fine).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // xorshift must never hold 0.
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`: never for `p <= 0` (or NaN), always for `p >= 1`.
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn same_seed_same_sequence_and_seed_zero_works() {
        let mut a = Rng::new(0);
        let mut b = Rng::new(0);
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|&x| x != 0));
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn unit_is_in_range_and_chance_respects_extremes() {
        let mut rng = Rng::new(42);
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(rng.chance(1.0));
            assert!(!rng.chance(0.0));
            assert!(!rng.chance(f64::NAN));
        }
    }

    #[test]
    fn chance_is_roughly_fair() {
        let mut rng = Rng::new(7);
        let hits = (0..10_000).filter(|_| rng.chance(0.25)).count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
    }

    #[test]
    fn delay_stays_within_bounds_and_inverted_bounds_mean_min() {
        let mut state = FaultState::new(Faults {
            seed: 3,
            delay_min: Duration::from_millis(5),
            delay_max: Duration::from_millis(9),
            ..Faults::default()
        });
        for _ in 0..1_000 {
            let plan = state.plan(true);
            assert!(plan.delay >= Duration::from_millis(5));
            assert!(plan.delay <= Duration::from_millis(9));
            assert!(!plan.drop_request && !plan.drop_response);
        }
        let mut inverted = FaultState::new(Faults {
            delay_min: Duration::from_millis(5),
            delay_max: Duration::from_millis(1),
            ..Faults::default()
        });
        assert_eq!(inverted.plan(false).delay, Duration::from_millis(5));
    }

    #[test]
    fn responses_are_never_dropped_on_the_way_back() {
        let mut state = FaultState::new(Faults {
            drop_request: 1.0,
            drop_response: 1.0,
            ..Faults::default()
        });
        let back = state.plan(false);
        assert!(!back.drop_request && !back.drop_response);
        let out = state.plan(true);
        assert!(out.drop_request && out.drop_response);
    }
}
