//! When to probe and what a probe's result counts for, apart from any I/O and on a clock of
//! its own, so that the whole behaviour on fast, slow, cut and intercepted links can be
//! played out in simulated time ([`tests`]).
//!
//! - **Online (or degraded):** one probe at a time, every `interval`. A probe that has not
//!   answered when the round-trip timeout passes counts as lost and a confirming probe
//!   leaves at once, with twice the timeout; the lost one is still listened to until the
//!   ceiling, and if it answers after all the link is slow, not gone. So a fast link is
//!   declared offline within about `interval + 3 × min timeout`, and a slow one adapts
//!   instead of going offline.
//! - **Not usable (offline, server down, portal):** a new probe every `offline_interval`
//!   however many are still waiting (at most `max_in_flight`, the oldest abandoned), so
//!   the return of a fast link is seen at once and a slow link's late replies still count.
//! - **Stale results:** a failure older than the newest result is ignored (the probe that
//!   was reset when the link came back says nothing about the link now); a success is never
//!   stale.

use std::collections::VecDeque;
use std::time::Duration;

use super::tracker::{Change, Probe, Tracker};
use super::{MonitorConfig, NetState};

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send probe `id`, giving up after `timeout` (the ceiling).
    Launch { id: u64, timeout: Duration },
    /// Stop waiting for probe `id`.
    Abort { id: u64 },
}

#[derive(Debug, Clone)]
struct Flight {
    id: u64,
    /// When it counts as lost (ms on the scheduler's clock).
    late_at: u64,
    rto: Duration,
    judged_late: bool,
}

#[derive(Debug, Clone)]
pub struct Scheduler {
    pub tracker: Tracker,
    interval: u64,
    offline_interval: u64,
    doubt_interval: u64,
    max_in_flight: usize,
    flights: VecDeque<Flight>,
    next_id: u64,
    /// When the next probe leaves, if one is due at all.
    next_launch: Option<u64>,
    /// The id of the newest probe whose result was taken.
    newest_result: Option<u64>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Scheduler {
    /// `now` on the scheduler's monotonic clock (ms), `wall_ms` for the times shown.
    pub fn new(config: &MonitorConfig, now: u64, wall_ms: i64) -> Self {
        Self {
            tracker: Tracker::new(config, wall_ms),
            interval: ms(config.interval),
            offline_interval: ms(config.offline_interval),
            doubt_interval: ms(config.doubt_interval),
            max_in_flight: config.max_in_flight.max(2),
            flights: VecDeque::new(),
            next_id: 0,
            next_launch: Some(now),
            newest_result: None,
        }
    }

    fn searching(&self) -> bool {
        let state = self.tracker.status.state;
        !state.is_usable() && state != NetState::Unknown
    }

    /// Judges the newest probe and launches one if due. `jitter` in [0, 1) spreads a lab's
    /// probes so they do not arrive in step.
    pub fn poll(&mut self, now: u64, wall_ms: i64, jitter: f64) -> (Vec<Action>, Option<Change>) {
        let mut actions = Vec::new();
        let mut change = None;
        if !self.searching() {
            if let Some(newest) = self.flights.back_mut() {
                if !newest.judged_late && now >= newest.late_at {
                    newest.judged_late = true;
                    let after = newest.rto;
                    change = self.tracker.observe(Probe::Late { after }, wall_ms);
                    self.next_launch = Some(now);
                }
            }
        }
        if self.next_launch.is_some_and(|t| now >= t) {
            if self.flights.len() >= self.max_in_flight {
                if let Some(oldest) = self.flights.pop_front() {
                    actions.push(Action::Abort { id: oldest.id });
                }
            }
            let id = self.next_id;
            self.next_id += 1;
            let rto = self.tracker.rto();
            self.flights.push_back(Flight {
                id,
                late_at: now.saturating_add(ms(rto)),
                rto,
                judged_late: false,
            });
            actions.push(Action::Launch {
                id,
                timeout: self.tracker.ceiling(),
            });
            self.next_launch = self
                .searching()
                .then(|| now + self.spread(self.offline_interval, jitter));
        }
        (actions, change)
    }

    fn spread(&self, base: u64, jitter: f64) -> u64 {
        (base as f64 * (0.9 + 0.2 * jitter.clamp(0.0, 1.0))) as u64
    }

    /// The result of probe `id`.
    pub fn on_result(
        &mut self,
        id: u64,
        probe: Probe,
        now: u64,
        wall_ms: i64,
        jitter: f64,
    ) -> Option<Change> {
        let index = self.flights.iter().position(|f| f.id == id)?;
        let flight = self.flights.remove(index)?;
        let newest = self.flights.iter().all(|f| f.id < id);
        let stale = self.newest_result.is_some_and(|n| n > id);
        let counted_already = flight.judged_late && matches!(probe, Probe::Late { .. });
        let ok = probe.is_ok();
        let change = if ok || !(stale || counted_already) {
            self.newest_result = Some(self.newest_result.map_or(id, |n| n.max(id)));
            self.tracker.observe(probe, wall_ms)
        } else {
            None
        };
        if self.searching() {
            // A failure while searching may be the old connections dying as the link comes
            // back: look again soon rather than at the next regular probe.
            if !ok {
                let soon = now + self.doubt_interval;
                self.next_launch = Some(self.next_launch.map_or(soon, |t| t.min(soon)));
            } else if self.tracker.in_doubt() {
                self.next_launch = Some(now + self.doubt_interval);
            }
        } else if newest && !flight.judged_late {
            let wait = if self.tracker.in_doubt() || self.tracker.status.state == NetState::Unknown
            {
                self.doubt_interval
            } else {
                self.spread(self.interval, jitter)
            };
            self.next_launch = Some(now + wait);
        } else if self.next_launch.is_none() && !self.flights.iter().any(|f| !f.judged_late) {
            // The state became usable through an older probe: resume the regular rhythm.
            self.next_launch = Some(now + self.doubt_interval);
        }
        change
    }

    /// What the app's own requests found (a portal's reply, a proxy's error): taken as a
    /// probe result, and a probe confirms it soon.
    pub fn on_report(&mut self, probe: Probe, now: u64, wall_ms: i64) -> Option<Change> {
        let change = self.tracker.observe(probe, wall_ms);
        self.probe_soon(now + self.doubt_interval);
        change
    }

    /// Probe at `at` at the latest (a request failed, the OS says an interface changed).
    pub fn probe_soon(&mut self, at: u64) {
        self.next_launch = Some(self.next_launch.map_or(at, |t| t.min(at)));
    }

    /// When `poll` has something to do next.
    pub fn next_wake(&self) -> Option<u64> {
        let late = if self.searching() {
            None
        } else {
            self.flights
                .back()
                .filter(|f| !f.judged_late)
                .map(|f| f.late_at)
        };
        match (self.next_launch, late) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Probes waiting for a reply.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }
}

/// The monitor's whole behaviour played out in simulated time against links that are
/// fast, slow, cut, blackholed, refused or intercepted, with every timing of the default
/// configuration. Deterministic: no clock, no sockets.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Reason;
    use url::Url;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Link {
        /// Replies after this round trip (ms).
        Up(u64),
        Blackhole,
        Refuse,
        Portal,
    }

    /// The link over time: (from ms, link) in order.
    struct Sim {
        schedule: Vec<(u64, Link)>,
        sched: Scheduler,
        /// (due ms, id, result)
        pending: Vec<(u64, u64, Probe)>,
        /// (ms, state) at each change
        states: Vec<(u64, NetState)>,
        now: u64,
        seed: u64,
    }

    impl Sim {
        fn new(schedule: Vec<(u64, Link)>) -> Self {
            let config = MonitorConfig::new(Url::parse("http://127.0.0.1:1/").unwrap());
            Self {
                schedule,
                sched: Scheduler::new(&config, 0, 0),
                pending: Vec::new(),
                states: vec![(0, NetState::Unknown)],
                now: 0,
                seed: 0x2545_F491_4F6C_DD1D,
            }
        }

        fn jitter(&mut self) -> f64 {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            (self.seed >> 11) as f64 / (1u64 << 53) as f64
        }

        fn link_at(&self, t: u64) -> Link {
            self.schedule
                .iter()
                .rev()
                .find(|(from, _)| *from <= t)
                .map(|(_, l)| *l)
                .unwrap_or(Link::Blackhole)
        }

        fn note(&mut self, change: Option<Change>) {
            if let Some(change) = change {
                if self.states.last().map(|s| s.1) != Some(change.status.state) {
                    self.states.push((self.now, change.status.state));
                }
            }
        }

        /// Runs until `until` ms, 1 ms at a time.
        fn run(&mut self, until: u64) {
            while self.now < until {
                let jitter = self.jitter();
                let (actions, change) = self.sched.poll(self.now, self.now as i64, jitter);
                self.note(change);
                for action in actions {
                    match action {
                        Action::Launch { id, timeout } => {
                            let ceiling = ms(timeout);
                            let (after, probe) = match self.link_at(self.now) {
                                Link::Up(rtt) if rtt < ceiling => (
                                    rtt,
                                    Probe::Ok {
                                        rtt: Duration::from_millis(rtt),
                                    },
                                ),
                                Link::Up(_) | Link::Blackhole => {
                                    (ceiling, Probe::Late { after: timeout })
                                }
                                Link::Refuse => (1, Probe::ServerFailed(Reason::ServerNotRunning)),
                                Link::Portal => (2, Probe::Portal(Reason::PortalPage)),
                            };
                            self.pending.push((self.now + after, id, probe));
                        }
                        Action::Abort { id } => self.pending.retain(|p| p.1 != id),
                    }
                }
                // Leaving a blackhole resets what was held (as the fault proxy does).
                let was = self.link_at(self.now.saturating_sub(1));
                if was == Link::Blackhole && self.link_at(self.now) != Link::Blackhole {
                    for p in &mut self.pending {
                        if matches!(p.2, Probe::Late { .. }) {
                            *p = (self.now, p.1, Probe::ServerFailed(Reason::ConnectionCut));
                        }
                    }
                }
                let (due, rest): (Vec<_>, Vec<_>) =
                    self.pending.drain(..).partition(|p| p.0 <= self.now);
                self.pending = rest;
                for (_, id, probe) in due {
                    let jitter = self.jitter();
                    let change = self
                        .sched
                        .on_result(id, probe, self.now, self.now as i64, jitter);
                    self.note(change);
                }
                assert!(self.sched.in_flight() <= 16);
                self.now += 1;
            }
        }

        fn state_at(&self, t: u64) -> NetState {
            self.states
                .iter()
                .rev()
                .find(|(at, _)| *at <= t)
                .map(|s| s.1)
                .unwrap_or(NetState::Unknown)
        }

        /// When the state first satisfied `pred` at or after `from`.
        fn first(&self, from: u64, pred: impl Fn(NetState) -> bool) -> Option<u64> {
            if pred(self.state_at(from)) {
                return Some(from);
            }
            self.states
                .iter()
                .find(|(at, s)| *at >= from && pred(*s))
                .map(|s| s.0)
        }

        fn changes_between(&self, from: u64, to: u64) -> usize {
            self.states
                .iter()
                .filter(|(at, _)| *at > from && *at <= to)
                .count()
        }
    }

    fn usable(s: NetState) -> bool {
        s.is_usable()
    }

    fn down(s: NetState) -> bool {
        !s.is_usable() && s != NetState::Unknown
    }

    #[test]
    fn a_fast_link_is_seen_cut_and_back_within_a_second_at_any_phase() {
        for phase in (0..400).step_by(23) {
            let cut = 3_000 + phase;
            let back = cut + 2_000;
            for how in [Link::Blackhole, Link::Refuse] {
                let mut sim = Sim::new(vec![(0, Link::Up(2)), (cut, how), (back, Link::Up(2))]);
                sim.run(back + 3_000);
                let offline = sim.first(cut, down).unwrap() - cut;
                let online = sim.first(back, usable).unwrap() - back;
                assert!(
                    offline <= 1_000,
                    "{how:?} at +{phase}: offline after {offline} ms"
                );
                assert!(
                    online <= 1_000,
                    "{how:?} at +{phase}: online after {online} ms"
                );
                assert_eq!(sim.changes_between(0, cut), 1, "{:?}", sim.states);
            }
        }
    }

    #[test]
    fn slow_links_from_the_start_are_usable_within_five_seconds_and_never_called_offline() {
        for rtt in [150, 300, 1_000, 3_000] {
            let mut sim = Sim::new(vec![(0, Link::Up(rtt))]);
            sim.run(60_000);
            let at = sim.first(0, usable).unwrap();
            assert!(
                at <= 5_000,
                "{rtt} ms: usable after {at} ms; {:?}",
                sim.states
            );
            assert!(
                !sim.states.iter().any(|s| down(s.1)),
                "{rtt} ms: {:?}",
                sim.states
            );
            let want = if rtt >= 300 {
                NetState::Degraded
            } else {
                NetState::Online
            };
            assert_eq!(sim.state_at(60_000), want, "{rtt} ms: {:?}", sim.states);
        }
    }

    #[test]
    fn a_link_that_slows_down_stays_usable_or_comes_back_within_seconds_and_settles() {
        // 2 ms, then 300 ms (a congested uplink), then 3 s (satellite).
        let mut sim = Sim::new(vec![
            (0, Link::Up(2)),
            (10_000, Link::Up(300)),
            (30_000, Link::Up(3_000)),
        ]);
        sim.run(120_000);
        // 2 → 300 ms: never offline.
        assert!(
            !sim.states
                .iter()
                .any(|(at, s)| (10_000..30_000).contains(at) && down(*s)),
            "{:?}",
            sim.states
        );
        assert_eq!(sim.state_at(29_999), NetState::Degraded, "{:?}", sim.states);
        // 300 ms → 3 s: usable again within a few seconds, then steady.
        let last_down = sim
            .states
            .iter()
            .rev()
            .find(|(at, s)| *at >= 30_000 && down(*s))
            .map(|s| s.0);
        if let Some(at) = last_down {
            let back = sim.first(at, usable).unwrap();
            assert!(back - 30_000 <= 10_000, "{:?}", sim.states);
        }
        assert_eq!(
            sim.state_at(120_000),
            NetState::Degraded,
            "{:?}",
            sim.states
        );
        assert_eq!(sim.changes_between(50_000, 120_000), 0, "{:?}", sim.states);
    }

    #[test]
    fn beyond_the_ceiling_a_link_is_offline_and_a_dead_start_is_told() {
        let mut sim = Sim::new(vec![(0, Link::Up(20_000))]);
        sim.run(30_000);
        assert_eq!(sim.state_at(30_000), NetState::Offline, "{:?}", sim.states);
        let mut sim = Sim::new(vec![(0, Link::Blackhole)]);
        sim.run(10_000);
        let at = sim.first(0, down).unwrap();
        assert!(at <= 5_000, "{:?}", sim.states);
    }

    #[test]
    fn a_portal_is_noticed_within_a_second_and_its_end_too() {
        for phase in (0..400).step_by(37) {
            let start = 2_000 + phase;
            let mut sim = Sim::new(vec![
                (0, Link::Up(2)),
                (start, Link::Portal),
                (start + 3_000, Link::Up(2)),
            ]);
            sim.run(start + 5_000);
            let noticed = sim.first(start, |s| s == NetState::CaptivePortal).unwrap();
            assert!(noticed - start <= 1_000, "{:?}", sim.states);
            let gone = sim.first(start + 3_000, usable).unwrap();
            assert!(gone - start - 3_000 <= 1_000, "{:?}", sim.states);
        }
    }

    #[test]
    fn a_report_from_a_request_is_believed_at_once_and_checked() {
        let config = MonitorConfig::new(Url::parse("http://127.0.0.1:1/").unwrap());
        let mut s = Scheduler::new(&config, 0, 0);
        let (actions, _) = s.poll(0, 0, 0.5);
        assert!(matches!(actions[..], [Action::Launch { id: 0, .. }]));
        s.on_result(
            0,
            Probe::Ok {
                rtt: Duration::from_millis(2),
            },
            2,
            2,
            0.5,
        );
        assert_eq!(s.tracker.status.state, NetState::Online);
        let change = s
            .on_report(
                Probe::Portal(Reason::PortalSignIn {
                    host: Some("login.portal.test".into()),
                }),
                10,
                10,
            )
            .unwrap();
        assert_eq!(change.status.state, NetState::CaptivePortal);
        assert_eq!(s.next_wake(), Some(10 + 40));
    }
}
