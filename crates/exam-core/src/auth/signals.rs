//! What sign-in and tokens tell the device checks: failed sign-ins on this computer, access
//! tokens the server refused long before their lifetime said, the server slowing this app
//! down (429), and a session the server ended because its refresh token was used twice.
//! Kept as timestamps in memory for a short window; the security rules
//! ([`crate::security::findings`]) turn the counts into findings.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::owner::Owner;

/// How far back failed sign-ins, early refusals and a reused session count.
pub const WINDOW: Duration = Duration::from_secs(600);
/// How far back the server's slow-downs count.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// An access token refused with less than this left is not early: clocks and margins.
pub const EARLY_BY_AT_LEAST: Duration = Duration::from_secs(30);
/// At most this many timestamps are kept of each kind (a flood cannot grow memory).
const KEEP: usize = 1_000;

#[derive(Default)]
struct Inner {
    sign_in_failures: VecDeque<Instant>,
    /// When, and how long the token had left.
    early: VecDeque<(Instant, Duration)>,
    rate_limited: VecDeque<Instant>,
    reused: Option<(Instant, Owner)>,
}

/// The recorder; one per token manager.
#[derive(Default)]
pub struct AuthSignals {
    inner: Mutex<Inner>,
}

/// The counts within their windows, as the rules read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalCounts {
    /// Failed sign-ins (wrong password, locked out) on this computer in [`WINDOW`].
    pub sign_in_failures: u32,
    /// Access tokens refused by the server at least [`EARLY_BY_AT_LEAST`] before they were
    /// due to expire, in [`WINDOW`]…
    pub early_refusals: u32,
    /// …and the most time one of them still had, in seconds.
    pub early_by_s: u64,
    /// Requests the server refused with 429 in [`RATE_WINDOW`].
    pub rate_limited: u32,
    /// The student whose session the server ended for refresh-token reuse, in [`WINDOW`].
    pub reused: Option<Owner>,
}

fn push<T>(list: &mut VecDeque<T>, item: T) {
    if list.len() >= KEEP {
        list.pop_front();
    }
    list.push_back(item);
}

impl AuthSignals {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    pub fn sign_in_failed(&self, at: Instant) {
        self.with(|i| push(&mut i.sign_in_failures, at));
    }

    /// A refused access token that had `left` before its expiry (ignored below
    /// [`EARLY_BY_AT_LEAST`]).
    pub fn refused_early(&self, at: Instant, left: Duration) {
        if left >= EARLY_BY_AT_LEAST {
            self.with(|i| push(&mut i.early, (at, left)));
        }
    }

    pub fn rate_limited(&self, at: Instant) {
        self.with(|i| push(&mut i.rate_limited, at));
    }

    pub fn session_reused(&self, at: Instant, owner: Owner) {
        self.with(|i| i.reused = Some((at, owner)));
    }

    /// The counts as of `now`; what fell out of its window is dropped.
    pub fn counts(&self, now: Instant) -> SignalCounts {
        let within = |at: Instant, window: Duration| now.saturating_duration_since(at) < window;
        self.with(|i| {
            i.sign_in_failures.retain(|at| within(*at, WINDOW));
            i.early.retain(|(at, _)| within(*at, WINDOW));
            i.rate_limited.retain(|at| within(*at, RATE_WINDOW));
            if i.reused
                .as_ref()
                .is_some_and(|(at, _)| !within(*at, WINDOW))
            {
                i.reused = None;
            }
            SignalCounts {
                sign_in_failures: u32::try_from(i.sign_in_failures.len()).unwrap_or(u32::MAX),
                early_refusals: u32::try_from(i.early.len()).unwrap_or(u32::MAX),
                early_by_s: i
                    .early
                    .iter()
                    .map(|(_, left)| left.as_secs())
                    .max()
                    .unwrap_or(0),
                rate_limited: u32::try_from(i.rate_limited.len()).unwrap_or(u32::MAX),
                reused: i.reused.as_ref().map(|(_, owner)| owner.clone()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_count_within_their_windows_only() {
        let signals = AuthSignals::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        for s in 0..5 {
            signals.sign_in_failed(at(s));
        }
        signals.refused_early(at(1), Duration::from_secs(10)); // within the margin: not early
        signals.refused_early(at(2), Duration::from_secs(240));
        signals.refused_early(at(3), Duration::from_secs(600));
        signals.rate_limited(at(4));
        let owner = Owner::new("http://127.0.0.1:1", "student1");
        signals.session_reused(at(5), owner.clone());

        let now = signals.counts(at(30));
        assert_eq!(
            now,
            SignalCounts {
                sign_in_failures: 5,
                early_refusals: 2,
                early_by_s: 600,
                rate_limited: 1,
                reused: Some(owner.clone()),
            }
        );
        // A minute on: the slow-down has aged out, the rest holds.
        let later = signals.counts(at(70));
        assert_eq!((later.rate_limited, later.sign_in_failures), (0, 5));
        // Ten minutes on: all gone.
        assert_eq!(signals.counts(at(700)), SignalCounts::default());
    }

    #[test]
    fn a_flood_keeps_a_bounded_number_of_timestamps() {
        let signals = AuthSignals::default();
        let now = Instant::now();
        for _ in 0..KEEP * 3 {
            signals.rate_limited(now);
        }
        assert_eq!(signals.counts(now).rate_limited as usize, KEEP);
    }
}
