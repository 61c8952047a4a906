//! The state of the simulated network link, and the generation counter that lets every
//! connection tell whether the link stayed the same for its whole life.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::portal::Portal;

/// What the simulated network does to traffic. Change it with
/// [`FaultProxy::set_link`](crate::FaultProxy::set_link) or
/// [`FaultProxy::cut_for`](crate::FaultProxy::cut_for); it applies at once to new and
/// existing connections.
///
/// Every actual change starts a new *generation* of the link, and a connection only lives
/// within the generation it was accepted in: a connection to the upstream survives only if the
/// link stayed [`Link::Up`] for its whole life, and a connection answered by a
/// [`Link::Portal`] only as long as that portal stays. A connection that lived through any
/// change is reset, at the latest when the link comes back up. Only connections opened after
/// the link returned to `Up` carry traffic to the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Forward both ways (subject to the random [`Faults`](crate::Faults) and the
    /// [latency](crate::FaultProxy::set_latency)).
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
    /// Something else answers in the server's place: the captive portal of a school Wi-Fi
    /// that came back behind a sign-in page, or a proxy that reports its own error. The client
    /// gets well-formed HTTP answers that are not the server's.
    ///
    /// Existing connections are reset within about 50 ms, as for `Refuse` (the gateway
    /// diverts the flows, so a client's pooled connections die). New connections never reach
    /// the upstream: the proxy reads each HTTP/1.1 request on them itself and answers it with
    /// the [`Portal`]'s reply, keeping the connection alive for the next request. Those
    /// connections are reset in turn when the link changes away from this portal. Replies
    /// are counted in [`ProxyStats::portal_replies`](crate::ProxyStats::portal_replies) and
    /// are not delayed by the [latency](crate::FaultProxy::set_latency): a portal sits next
    /// to the client.
    Portal(Portal),
}

/// Bits of the packed word that hold the link itself (a 4-bit kind, then a 16-bit status
/// for [`Portal::ProxyError`]); the generation takes the 44 bits above them.
const CODE_BITS: u32 = 20;
const CODE_MASK: u64 = (1 << CODE_BITS) - 1;
const KIND_MASK: u64 = 0xF;
const STATUS_SHIFT: u32 = 4;

impl Link {
    fn code(self) -> u64 {
        match self {
            Link::Up => 0,
            Link::Refuse => 1,
            Link::Blackhole => 2,
            Link::Portal(Portal::Redirect) => 3,
            Link::Portal(Portal::LoginPage) => 4,
            Link::Portal(Portal::ProxyError(status)) => 5 | (u64::from(status) << STATUS_SHIFT),
        }
    }

    fn from_code(code: u64) -> Self {
        match code & KIND_MASK {
            1 => Link::Refuse,
            2 => Link::Blackhole,
            3 => Link::Portal(Portal::Redirect),
            4 => Link::Portal(Portal::LoginPage),
            5 => {
                let status = u16::try_from((code & CODE_MASK) >> STATUS_SHIFT).unwrap_or(502);
                Link::Portal(Portal::ProxyError(status))
            }
            _ => Link::Up,
        }
    }
}

/// The link and its generation packed into one atomic, so a pump reads both consistently
/// without a lock: `generation << 20 | link`. The generation grows on every actual change.
#[derive(Debug)]
pub(crate) struct LinkCell(AtomicU64);

impl LinkCell {
    pub(crate) fn new() -> Self {
        Self(AtomicU64::new(Link::Up.code()))
    }

    /// The current link and its generation.
    pub(crate) fn get(&self) -> (Link, u64) {
        let packed = self.0.load(Ordering::SeqCst);
        (Link::from_code(packed & CODE_MASK), packed >> CODE_BITS)
    }

    /// Callers serialise changes (see `Shared::change_link`); setting the current value again is
    /// not a change, so it does not disturb existing connections.
    pub(crate) fn set(&self, link: Link) {
        let (current, generation) = self.get();
        if current != link {
            self.0.store(
                ((generation + 1) << CODE_BITS) | link.code(),
                Ordering::SeqCst,
            );
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

    #[test]
    fn every_link_survives_packing_and_portals_are_distinct_generations() {
        let links = [
            Link::Up,
            Link::Refuse,
            Link::Blackhole,
            Link::Portal(Portal::Redirect),
            Link::Portal(Portal::LoginPage),
            Link::Portal(Portal::ProxyError(0)),
            Link::Portal(Portal::ProxyError(502)),
            Link::Portal(Portal::ProxyError(504)),
            Link::Portal(Portal::ProxyError(u16::MAX)),
        ];
        let cell = LinkCell::new();
        for (i, link) in links
            .into_iter()
            .cycle()
            .skip(1)
            .take(3 * links.len())
            .enumerate()
        {
            cell.set(link);
            assert_eq!(cell.get(), (link, i as u64 + 1));
            cell.set(link);
            assert_eq!(
                cell.get(),
                (link, i as u64 + 1),
                "same portal again is no change"
            );
        }
        // A different status is a different portal, hence a change.
        cell.set(Link::Portal(Portal::ProxyError(503)));
        let (_, generation) = cell.get();
        cell.set(Link::Portal(Portal::ProxyError(504)));
        assert_eq!(
            cell.get(),
            (Link::Portal(Portal::ProxyError(504)), generation + 1)
        );
    }
}
