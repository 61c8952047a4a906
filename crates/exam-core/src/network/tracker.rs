//! What the probes' results mean, apart from any I/O, so each rule can be tested step by
//! step: the round-trip estimate and the time after which a probe counts as lost ([`Rto`],
//! as TCP's retransmission timer, RFC 6298), and the visible state with its hysteresis
//! ([`Tracker`]).

use std::time::Duration;

use super::{LinkQuality, MonitorConfig, NetState, NetStatus};
use crate::reason::Reason;

/// What one probe (or one request of the app's) found.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Ok {
        rtt: Duration,
    },
    /// No reply within `after`: a probe is judged lost when its round-trip timeout passes,
    /// and it still counts if its reply comes later.
    Late {
        after: Duration,
    },
    /// Nothing can be reached: no route, the name cannot be looked up.
    Unreachable(Reason),
    /// Something answered, but not the server's health: refused, 5xx, a proxy's error…
    ServerFailed(Reason),
    /// A network sign-in page answers in the server's place.
    Portal(Reason),
}

impl Probe {
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok { .. })
    }
}

/// The retransmission timeout of RFC 6298, applied to probes: after `rto()` without a reply
/// a probe is suspected lost. It follows the link: a smoothed round trip plus four times its
/// variation (at least `VAR_FLOOR`, as Linux keeps at least 200 ms of slack), at least
/// `min`, doubled after each lost probe, never above `max` — the ceiling beyond which a link
/// is offline, however slow.
#[derive(Debug, Clone)]
pub struct Rto {
    srtt_ms: Option<f64>,
    rttvar_ms: f64,
    backoff: u32,
    min_ms: f64,
    initial_ms: f64,
    max_ms: f64,
}

/// The least slack above the smoothed round trip, so a steady link's normal jitter never
/// looks like a loss.
const VAR_FLOOR_MS: f64 = 100.0;

impl Rto {
    pub fn new(config: &MonitorConfig) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Self {
            srtt_ms: None,
            rttvar_ms: 0.0,
            backoff: 0,
            min_ms: ms(config.timeout),
            initial_ms: ms(config.initial_timeout),
            max_ms: ms(config.max_timeout).max(ms(config.timeout)),
        }
    }

    /// A measured round trip (RFC 6298 §2.2–2.3). Every probe is a request of its own, so a
    /// late reply is a valid sample too (no retransmission ambiguity, Karn's rule needs no
    /// exception). A new sample ends the backoff.
    pub fn sample(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64() * 1000.0;
        match self.srtt_ms {
            None => {
                self.srtt_ms = Some(r);
                self.rttvar_ms = r / 2.0;
            }
            Some(srtt) => {
                self.rttvar_ms = 0.75 * self.rttvar_ms + 0.25 * (srtt - r).abs();
                self.srtt_ms = Some(0.875 * srtt + 0.125 * r);
            }
        }
        self.backoff = 0;
    }

    /// A probe was lost: the next one gets twice as long (RFC 6298 §5.5).
    pub fn back_off(&mut self) {
        self.backoff = (self.backoff + 1).min(16);
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt_ms.map(|ms| Duration::from_secs_f64(ms / 1000.0))
    }

    /// How long to wait for a probe's reply before suspecting it lost.
    pub fn rto(&self) -> Duration {
        let base = match self.srtt_ms {
            None => self.initial_ms,
            Some(srtt) => srtt + (4.0 * self.rttvar_ms).max(VAR_FLOOR_MS),
        };
        let backed_off = base.max(self.min_ms) * f64::from(1u32 << self.backoff.min(16));
        Duration::from_secs_f64(backed_off.min(self.max_ms) / 1000.0)
    }

    /// The ceiling: a probe with no reply after this is over.
    pub fn ceiling(&self) -> Duration {
        Duration::from_secs_f64(self.max_ms / 1000.0)
    }
}

/// The state machine, separate from the I/O so it can be tested step by step.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub status: NetStatus,
    failures: u32,
    /// Consecutive failures that were not a portal (a portal is left only on two of them:
    /// the reset of its connections as it goes is not "server down").
    other_failures: u32,
    successes: u32,
    rto: Rto,
    /// When the current outage began (ms), if any.
    outage_start: Option<i64>,
    failures_to_flip: u32,
    successes_to_flip: u32,
    degraded_rtt_ms: f64,
}

/// A state change worth telling: the new status, and an outage that began or ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub status: NetStatus,
    pub outage_started: Option<(NetState, i64)>,
    pub outage_ended: Option<(i64, i64)>,
}

impl Tracker {
    pub fn new(config: &MonitorConfig, now_ms: i64) -> Self {
        Self {
            status: NetStatus {
                state: NetState::Unknown,
                quality: LinkQuality::None,
                rtt_ms: None,
                since_ms: now_ms as f64,
                reason: None,
                usable: false,
                probes: 0,
            },
            failures: 0,
            other_failures: 0,
            successes: 0,
            rto: Rto::new(config),
            outage_start: None,
            failures_to_flip: config.failures_to_flip.max(1),
            successes_to_flip: config.successes_to_flip.max(1),
            degraded_rtt_ms: config.degraded_rtt.as_secs_f64() * 1000.0,
        }
    }

    /// Whether the next probe should come soon (a flip is pending).
    pub fn in_doubt(&self) -> bool {
        let up = self.status.state.is_usable();
        (up && self.failures > 0) || (!up && self.successes > 0)
    }

    pub fn smoothed_rtt(&self) -> Option<Duration> {
        self.rto.srtt()
    }

    /// How long a probe sent now may take before it is suspected lost.
    pub fn rto(&self) -> Duration {
        self.rto.rto()
    }

    /// How long a probe may take at all.
    pub fn ceiling(&self) -> Duration {
        self.rto.ceiling()
    }

    fn srtt_ms(&self) -> Option<f64> {
        self.rto.srtt().map(|d| d.as_secs_f64() * 1000.0)
    }

    fn quality(&self) -> LinkQuality {
        match self.srtt_ms() {
            None => LinkQuality::None,
            Some(ms) if ms < 150.0 && self.failures == 0 => LinkQuality::Good,
            Some(ms) if ms < self.degraded_rtt_ms => LinkQuality::Fair,
            Some(_) => LinkQuality::Poor,
        }
    }

    /// Feeds one result; returns the change if the visible status changed.
    pub fn observe(&mut self, probe: Probe, now_ms: i64) -> Option<Change> {
        self.status.probes = self.status.probes.saturating_add(1);
        let before = self.status.clone();
        let was_up = before.state.is_usable();
        let mut outage_started = None;
        let mut outage_ended = None;
        match probe {
            Probe::Ok { rtt } => {
                self.rto.sample(rtt);
                self.failures = 0;
                self.other_failures = 0;
                self.successes += 1;
                let come_back = before.state == NetState::Unknown
                    || was_up
                    || self.successes >= self.successes_to_flip;
                if come_back {
                    let slow = self.srtt_ms().unwrap_or(0.0) > self.degraded_rtt_ms;
                    let (state, reason) = if slow {
                        (
                            NetState::Degraded,
                            Some(Reason::slow(self.rto.srtt().unwrap_or_default())),
                        )
                    } else {
                        (NetState::Online, None)
                    };
                    self.set(state, reason, now_ms);
                    if let Some(start) = self.outage_start.take() {
                        outage_ended = Some((start, now_ms));
                    }
                }
            }
            failure => {
                let late = matches!(failure, Probe::Late { .. });
                if late {
                    self.rto.back_off();
                }
                let (state, reason) = match failure {
                    Probe::Late { after } => (NetState::Offline, Reason::no_answer(after)),
                    Probe::Unreachable(r) => (NetState::Offline, r),
                    Probe::ServerFailed(r) => (NetState::ServerDown, r),
                    Probe::Portal(r) => (NetState::CaptivePortal, r),
                    Probe::Ok { .. } => (NetState::Online, Reason::NoNetwork),
                };
                self.successes = 0;
                self.failures += 1;
                self.other_failures = if state == NetState::CaptivePortal {
                    0
                } else {
                    self.other_failures + 1
                };
                let unknown = before.state == NetState::Unknown;
                let leaving_portal =
                    before.state == NetState::CaptivePortal && state != NetState::CaptivePortal;
                // A portal is certain at once, and so is a definite failure at the start;
                // a reply that is only late needs confirming, whatever the state, since a
                // slow link is not a dead one.
                let flip = (!was_up && !unknown && !leaving_portal)
                    || (leaving_portal && self.other_failures >= self.failures_to_flip)
                    || (unknown && !late)
                    || state == NetState::CaptivePortal
                    || (!leaving_portal && self.failures >= self.failures_to_flip);
                if flip {
                    if was_up || unknown {
                        outage_started = Some((state, now_ms));
                        self.outage_start = Some(now_ms);
                    }
                    self.set(state, Some(reason), now_ms);
                }
            }
        }
        self.status.rtt_ms = self.srtt_ms();
        self.status.usable = self.status.state.is_usable();
        self.status.quality = if self.status.state.is_usable() {
            self.quality()
        } else {
            LinkQuality::None
        };
        let changed = self.status.state != before.state
            || self.status.quality != before.quality
            || self.status.reason != before.reason;
        changed.then(|| Change {
            status: self.status.clone(),
            outage_started,
            outage_ended,
        })
    }

    fn set(&mut self, state: NetState, reason: Option<Reason>, now_ms: i64) {
        if self.status.state != state {
            self.status.since_ms = now_ms as f64;
        }
        self.status.state = state;
        self.status.reason = reason;
        self.status.usable = state.is_usable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    fn config() -> MonitorConfig {
        MonitorConfig::new(Url::parse("http://127.0.0.1:1/").unwrap())
    }

    fn tracker() -> Tracker {
        Tracker::new(&config(), 0)
    }

    fn ok(ms: u64) -> Probe {
        Probe::Ok {
            rtt: Duration::from_millis(ms),
        }
    }

    fn late(ms: u64) -> Probe {
        Probe::Late {
            after: Duration::from_millis(ms),
        }
    }

    #[test]
    fn one_lost_probe_does_not_flip_two_do_and_the_outage_is_timed() {
        let mut t = tracker();
        let first = t.observe(ok(2), 0).unwrap();
        assert_eq!(first.status.state, NetState::Online);
        assert_eq!(first.status.quality, LinkQuality::Good);
        let lost = t.observe(late(200), 100);
        assert_eq!(t.status.state, NetState::Online, "{lost:?}");
        assert!(t.in_doubt());
        let down = t.observe(late(400), 150).unwrap();
        assert_eq!(down.status.state, NetState::Offline);
        assert_eq!(down.outage_started, Some((NetState::Offline, 150)));
        assert_eq!(down.status.since_ms, 150.0);
        assert!(down
            .status
            .reason
            .unwrap()
            .to_string()
            .contains("does not answer"));
        // One success while offline is not enough either.
        assert!(t.observe(ok(2), 900).is_none());
        assert_eq!(t.status.state, NetState::Offline);
        let back = t.observe(ok(2), 950).unwrap();
        assert_eq!(back.status.state, NetState::Online);
        assert_eq!(back.outage_ended, Some((150, 950)));
    }

    #[test]
    fn a_late_reply_undoes_the_suspicion() {
        let mut t = tracker();
        t.observe(ok(2), 0);
        t.observe(late(200), 200);
        // The suspected probe answers after all: the link is slow, not gone.
        t.observe(ok(300), 300);
        t.observe(late(400), 700);
        assert_eq!(t.status.state, NetState::Online);
    }

    #[test]
    fn refused_is_server_down_and_a_portal_is_believed_at_once() {
        let mut t = tracker();
        t.observe(ok(1), 0);
        let portal = t
            .observe(
                Probe::Portal(Reason::PortalSignIn {
                    host: Some("login".into()),
                }),
                10,
            )
            .unwrap();
        assert_eq!(portal.status.state, NetState::CaptivePortal);
        assert!(portal.status.reason.unwrap().to_string().contains("login"));
        let mut t = tracker();
        t.observe(ok(1), 0);
        t.observe(Probe::ServerFailed(Reason::ServerNotRunning), 10);
        let down = t
            .observe(Probe::ServerFailed(Reason::ServerNotRunning), 20)
            .unwrap();
        assert_eq!(down.status.state, NetState::ServerDown);
    }

    #[test]
    fn a_portal_is_left_on_two_other_failures_not_on_the_reset_of_its_connections() {
        let mut t = tracker();
        t.observe(ok(1), 0);
        t.observe(Probe::Portal(Reason::PortalPage), 10);
        t.observe(Probe::Portal(Reason::PortalPage), 20);
        let cut = || Probe::ServerFailed(Reason::ConnectionCut);
        assert!(t.observe(cut(), 30).is_none());
        assert_eq!(t.status.state, NetState::CaptivePortal);
        // The portal goes: two successes, straight back online.
        t.observe(ok(1), 40);
        let back = t.observe(ok(1), 50).unwrap();
        assert_eq!(back.status.state, NetState::Online);
        // The portal goes and the server is really down: two failures say so.
        t.observe(Probe::Portal(Reason::PortalPage), 60);
        t.observe(cut(), 70);
        let down = t.observe(cut(), 80).unwrap();
        assert_eq!(down.status.state, NetState::ServerDown);
    }

    #[test]
    fn a_slow_link_is_degraded_and_quality_follows_rtt() {
        let mut t = tracker();
        t.observe(ok(100), 0);
        assert_eq!(t.status.state, NetState::Online);
        assert_eq!(t.status.quality, LinkQuality::Good);
        for i in 0..20 {
            t.observe(ok(300), i * 10);
        }
        assert_eq!(t.status.state, NetState::Degraded);
        assert_eq!(t.status.quality, LinkQuality::Poor);
        let reason = t.status.reason.clone().unwrap().to_string();
        assert!(
            reason.contains("slow") && reason.contains("0.3 s"),
            "{reason}"
        );
    }

    #[test]
    fn the_first_probe_decides_at_once_unless_it_is_only_late() {
        let mut t = tracker();
        let first = t.observe(Probe::Unreachable(Reason::NoNetwork), 5).unwrap();
        assert_eq!(first.status.state, NetState::Offline);
        assert_eq!(first.outage_started, Some((NetState::Offline, 5)));
        let mut t = tracker();
        assert!(t.observe(late(1500), 1500).is_none());
        assert_eq!(t.status.state, NetState::Unknown);
        let down = t.observe(late(3000), 4500).unwrap();
        assert_eq!(down.status.state, NetState::Offline);
        assert_eq!(down.outage_started, Some((NetState::Offline, 4500)));
    }

    /// RFC 6298 with our floor and ceiling, as a table: (samples, lost probes since) → RTO.
    #[test]
    fn the_timeout_follows_the_link_like_tcps() {
        let cases: &[(&[u64], u32, u64)] = &[
            // No sample yet: the initial timeout, doubled per loss, capped at the ceiling.
            (&[], 0, 1500),
            (&[], 1, 3000),
            (&[], 3, 8000),
            // A fast link: the floor.
            (&[2, 2, 2, 2, 2, 2, 2, 2], 0, 200),
            (&[2, 2, 2, 2, 2, 2, 2, 2], 1, 400),
            // 300 ms: the first sample's variance is large, then it settles above 300.
            (&[300], 0, 900),
            (&[300; 40], 0, 400),
            // 3 s round trips: within the ceiling, above the round trip.
            (&[3000; 40], 0, 3100),
            (&[3000], 0, 8000),
        ];
        for (samples, losses, want_ms) in cases {
            let mut rto = Rto::new(&config());
            for s in *samples {
                rto.sample(Duration::from_millis(*s));
            }
            for _ in 0..*losses {
                rto.back_off();
            }
            let got = rto.rto().as_millis() as u64;
            assert!(
                got.abs_diff(*want_ms) <= 2,
                "{samples:?} + {losses} losses: {got} ms, want {want_ms}"
            );
        }
    }
}
