//! The state of the simulated network link, and the generation counter that lets every
//! connection tell whether the link stayed up for its whole life.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the simulated network does to traffic. Change it with
/// [`FaultProxy::set_link`](crate::FaultProxy::set_link) or
/// [`FaultProxy::cut_for`](crate::FaultProxy::cut_for); it applies at once to new and
/// existing connections.
///
/// A connection survives only if the link stayed [`Link::Up`] for its whole life: a connection
/// that lived through any `Refuse` or `Blackhole` period is reset, at the latest when the link
/// comes back up. Only connections opened after the link returned to `Up` carry traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Forward both ways (subject to the random [`Faults`](crate::Faults)).
    Up,
    /// Existing connections are reset (RST, via `SO_LINGER` 0) within about 50 ms. New
    /// connections complete the TCP handshake (the kernel does that) and are reset as soon as
    /// they are accepted: the client sees "connection reset" or EOF on its first read, or
    /// "broken pipe"/"reset" on a write.
    Refuse,
    /// Nothing is forwarded and nothing is closed: existing connections stall with their data
    /// held, new connections are accepted but never reach the upstream. The client only ever
    /// sees its own timeout. When the link leaves `Blackhole`, every connection that was alive
    /// during it (stalled or accepted meanwhile) is reset rather than resumed, as a NAT or
    /// load balancer that forgot the flow would do.
    Blackhole,
}

impl Link {
    fn code(self) -> u64 {
        match self {
            Link::Up => 0,
            Link::Refuse => 1,
            Link::Blackhole => 2,
        }
    }

    fn from_code(code: u64) -> Self {
        match code {
            1 => Link::Refuse,
            2 => Link::Blackhole,
            _ => Link::Up,
        }
    }
}

/// The link and its generation packed into one atomic, so a pump reads both consistently
/// without a lock: `generation << 2 | link`. The generation grows on every actual change.
#[derive(Debug)]
pub(crate) struct LinkCell(AtomicU64);

impl LinkCell {
    pub(crate) fn new() -> Self {
        Self(AtomicU64::new(Link::Up.code()))
    }

    /// The current link and its generation.
    pub(crate) fn get(&self) -> (Link, u64) {
        let packed = self.0.load(Ordering::SeqCst);
        (Link::from_code(packed & 0b11), packed >> 2)
    }

    /// Callers serialise changes (see `Shared::change_link`); setting the current value again is
    /// not a change, so it does not disturb existing connections.
    pub(crate) fn set(&self, link: Link) {
        let (current, generation) = self.get();
        if current != link {
            self.0
                .store(((generation + 1) << 2) | link.code(), Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_moves_only_on_real_changes() {
        let cell = LinkCell::new();
        assert_eq!(cell.get(), (Link::Up, 0));
        cell.set(Link::Up);
        assert_eq!(cell.get(), (Link::Up, 0));
        cell.set(Link::Blackhole);
        assert_eq!(cell.get(), (Link::Blackhole, 1));
        cell.set(Link::Blackhole);
        assert_eq!(cell.get(), (Link::Blackhole, 1));
        cell.set(Link::Refuse);
        cell.set(Link::Up);
        assert_eq!(cell.get(), (Link::Up, 3));
    }
}
