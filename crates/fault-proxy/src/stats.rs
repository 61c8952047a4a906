//! Exact counters of what the proxy did, for assertions such as "the client really retried"
//! or "exactly one response was lost".

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the proxy's counters since [`FaultProxy::start`](crate::FaultProxy::start).
///
/// Every event is counted *before* its effect can be observed through a socket: when a client
/// has seen a byte, a reset or a refusal, the matching counter already includes it. (Byte
/// counters may therefore briefly include a write that is still in progress.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted from clients, whatever happened to them next. A client's
    /// `connect()` can return before the proxy's `accept()` (the kernel completes the
    /// handshake), so this may lag a connection that has not exchanged data yet.
    pub accepted: u64,
    /// Connections currently being served (accepted, not refused, not yet finished).
    /// Decremented after both sockets are closed, so it may lag the client's view slightly.
    pub open: u64,
    /// Bytes written to the upstream server.
    pub bytes_to_upstream: u64,
    /// Bytes from the upstream written back to clients (a portal's own replies are not
    /// included: see `portal_replies`).
    pub bytes_to_client: u64,
    /// New connections reset at accept because the link was [`Link::Refuse`](crate::Link::Refuse).
    pub refused: u64,
    /// Established connections reset because the link went `Refuse` or `Portal`, or because it
    /// changed again after they were opened (came back `Up` after they lived through a
    /// `Refuse`, `Blackhole` or `Portal` period, or left the portal that was answering them).
    pub reset_by_link: u64,
    /// Connections reset by the [`Faults::drop_request`](crate::Faults::drop_request) fault.
    pub dropped_requests: u64,
    /// Connections reset by the [`Faults::drop_response`](crate::Faults::drop_response) fault.
    pub dropped_responses: u64,
    /// Connections reset because the upstream could not be reached.
    pub upstream_unreachable: u64,
    /// HTTP requests answered by the proxy itself while the link was a
    /// [`Link::Portal`](crate::Link::Portal) (one per reply, several per keep-alive
    /// connection).
    pub portal_replies: u64,
}

impl ProxyStats {
    /// Connections lost to random faults: `dropped_requests + dropped_responses`.
    pub fn dropped_by_faults(&self) -> u64 {
        self.dropped_requests + self.dropped_responses
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) open: AtomicU64,
    pub(crate) bytes_to_upstream: AtomicU64,
    pub(crate) bytes_to_client: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) reset_by_link: AtomicU64,
    pub(crate) dropped_requests: AtomicU64,
    pub(crate) dropped_responses: AtomicU64,
    pub(crate) upstream_unreachable: AtomicU64,
    pub(crate) portal_replies: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::SeqCst);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ProxyStats {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        ProxyStats {
            accepted: get(&self.accepted),
            open: get(&self.open),
            bytes_to_upstream: get(&self.bytes_to_upstream),
            bytes_to_client: get(&self.bytes_to_client),
            refused: get(&self.refused),
            reset_by_link: get(&self.reset_by_link),
            dropped_requests: get(&self.dropped_requests),
            dropped_responses: get(&self.dropped_responses),
            upstream_unreachable: get(&self.upstream_unreachable),
            portal_replies: get(&self.portal_replies),
        }
    }
}
