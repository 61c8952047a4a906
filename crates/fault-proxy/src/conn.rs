//! One proxied connection: two pump threads (client→server on the connection's own thread,
//! server→client on a second one) and the rules that decide, chunk by chunk, whether bytes are
//! forwarded, held or the connection is reset. A connection accepted while the link is a
//! portal is handed to [`crate::portal`] instead and never gets an upstream.
//!
//! Each pump reads a chunk, passes it through its [`DelayLine`] (the configured latency; with
//! none, the chunk is due at once) and writes it when due, applying the random faults then.
//!
//! All sockets have 50 ms read and write timeouts (shorter while a delayed chunk is about to
//! come due), so a pump blocked on a quiet socket notices a link change, a reset by its
//! sibling or shutdown within about 50 ms.
//! A reset sets `SO_LINGER` to 0 on both sockets and lets the pumps exit; the last one to drop
//! the connection closes the sockets, which sends the RST.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::delay_line::{DelayLine, Item};
use crate::link::Link;
use crate::portal::{self, Portal};
use crate::shared::Shared;
use crate::stats::bump;

const IO_TIMEOUT: Duration = Duration::from_millis(50);
/// The shortest read timeout used to wake up for a delayed chunk (zero would mean "none").
const MIN_TIMEOUT: Duration = Duration::from_millis(1);
const HOLD_POLL: Duration = Duration::from_millis(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const CHUNK: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    ToUpstream,
    ToClient,
}

/// What the link says a connection born in generation `birth` may do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Forward,
    Hold,
    /// Answered by this portal (only for a connection accepted during it).
    Portal(Portal),
    /// Already reset by the other pump.
    Gone,
    ResetByLink,
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    Link,
    DroppedRequest,
    DroppedResponse,
    /// The proxy is being dropped; not counted.
    Shutdown,
    /// A socket error on either side, propagated to the other; not counted.
    Peer,
}

pub(crate) fn link_verdict(shared: &Shared, birth: u64) -> Verdict {
    if shared.is_stopping() {
        return Verdict::Shutdown;
    }
    match shared.link.get() {
        (Link::Blackhole, _) => Verdict::Hold,
        (Link::Refuse, _) => Verdict::ResetByLink,
        (Link::Portal(portal), generation) if generation == birth => Verdict::Portal(portal),
        // A portal took over the flows that existed before it.
        (Link::Portal(_), _) => Verdict::ResetByLink,
        // Up, but not the same Up the connection was born in: it lived through an outage.
        (Link::Up, generation) if generation != birth => Verdict::ResetByLink,
        (Link::Up, _) => Verdict::Forward,
    }
}

/// Blocking mode with short timeouts, so the pumps can poll the link.
pub(crate) fn prepare(stream: &TcpStream) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)
}

/// Makes the coming close send an RST instead of a FIN.
pub(crate) fn arm_reset(stream: &TcpStream) {
    // If this fails the peer sees an orderly close instead, which tests accept as well.
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

pub(crate) fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Serves one accepted client connection until both directions are finished. Runs on the
/// connection's own thread; `birth` is the link generation at accept.
pub(crate) fn serve(shared: Arc<Shared>, client: TcpStream, birth: u64) {
    // Connections accepted during a blackhole wait here and never reach the upstream.
    loop {
        match link_verdict(&shared, birth) {
            Verdict::Forward => break,
            Verdict::Portal(_) => {
                portal::serve(&shared, client, birth);
                return;
            }
            Verdict::Hold => {
                shared.pause(HOLD_POLL);
            }
            Verdict::ResetByLink => {
                bump(&shared.counters.reset_by_link);
                arm_reset(&client);
                return;
            }
            Verdict::Shutdown | Verdict::Gone => {
                arm_reset(&client);
                return;
            }
        }
    }
    let upstream = match TcpStream::connect_timeout(&shared.upstream, CONNECT_TIMEOUT)
        .and_then(|s| prepare(&s).map(|()| s))
    {
        Ok(upstream) => upstream,
        Err(_) => {
            bump(&shared.counters.upstream_unreachable);
            arm_reset(&client);
            return;
        }
    };
    let conn = Arc::new(Conn {
        client,
        upstream,
        birth,
        dead: AtomicBool::new(false),
        lose_response: AtomicBool::new(false),
    });
    let back = {
        let shared = Arc::clone(&shared);
        let conn = Arc::clone(&conn);
        thread::Builder::new()
            .name("fault-proxy-pump".into())
            .spawn(move || conn.pump(&shared, Dir::ToClient))
    };
    match back {
        Ok(back) => {
            conn.pump(&shared, Dir::ToUpstream);
            let _ = back.join();
        }
        Err(_) => conn.reset(&shared, Reason::Peer),
    }
}

struct Conn {
    client: TcpStream,
    upstream: TcpStream,
    birth: u64,
    /// Set once by whoever resets the connection; the other pump exits when it sees it.
    dead: AtomicBool,
    /// Set by a `drop_response` draw before the request chunk is written upstream, so the
    /// server→client pump cannot miss it however fast the server answers.
    lose_response: AtomicBool,
}

impl Conn {
    fn verdict(&self, shared: &Shared) -> Verdict {
        if self.dead.load(Ordering::SeqCst) {
            Verdict::Gone
        } else {
            link_verdict(shared, self.birth)
        }
    }

    /// Resets the connection (once: the first reason wins and is the one counted).
    fn reset(&self, shared: &Shared, reason: Reason) {
        if self.dead.swap(true, Ordering::SeqCst) {
            return;
        }
        let counters = &shared.counters;
        match reason {
            Reason::Link => bump(&counters.reset_by_link),
            Reason::DroppedRequest => bump(&counters.dropped_requests),
            Reason::DroppedResponse => bump(&counters.dropped_responses),
            Reason::Shutdown | Reason::Peer => {}
        }
        arm_reset(&self.client);
        arm_reset(&self.upstream);
    }

    /// Waits while the link is blackholed; false when this pump must stop (the connection has
    /// been reset, by this call or before).
    fn wait_until_forwarding(&self, shared: &Shared) -> bool {
        loop {
            match self.verdict(shared) {
                Verdict::Forward => return true,
                Verdict::Hold => {
                    shared.pause(HOLD_POLL);
                }
                Verdict::Gone => return false,
                // A connection with an upstream was born in an `Up` generation, so a portal is
                // always a change for it.
                Verdict::ResetByLink | Verdict::Portal(_) => {
                    self.reset(shared, Reason::Link);
                    return false;
                }
                Verdict::Shutdown => {
                    self.reset(shared, Reason::Shutdown);
                    return false;
                }
            }
        }
    }

    fn pump(&self, shared: &Shared, dir: Dir) {
        let (mut src, dst) = match dir {
            Dir::ToUpstream => (&self.client, &self.upstream),
            Dir::ToClient => (&self.upstream, &self.client),
        };
        let to_upstream = dir == Dir::ToUpstream;
        let mut buf = vec![0u8; CHUNK];
        let mut line = DelayLine::default();
        let mut read_timeout = IO_TIMEOUT;
        let mut eof = false;
        loop {
            // No reading and no writing while blackholed: the data stays in kernel buffers (or
            // in the delay line) and the sender's window fills up, as on a dead path.
            if !self.wait_until_forwarding(shared) {
                return;
            }
            let now = Instant::now();
            match line.pop_due(now) {
                Some(Item::Data(chunk)) => {
                    if !self.forward(shared, dir, dst, &chunk) {
                        return;
                    }
                    continue;
                }
                Some(Item::Eof) => {
                    // Half-close: pass the FIN on, keep the other direction running.
                    let _ = dst.shutdown(Shutdown::Write);
                    return;
                }
                None => {}
            }
            let until_due = line
                .next_due()
                .map(|due| due.saturating_duration_since(now));
            if eof || line.is_full() {
                // Nothing (more) to read for now: wait for the next chunk to come due.
                shared.pause(until_due.unwrap_or(HOLD_POLL).min(HOLD_POLL));
                continue;
            }
            // Wake up in time for the next chunk due, else as usual to poll the link.
            let timeout = until_due.map_or(IO_TIMEOUT, |d| d.clamp(MIN_TIMEOUT, IO_TIMEOUT));
            if timeout != read_timeout && src.set_read_timeout(Some(timeout)).is_ok() {
                read_timeout = timeout;
            }
            match src.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    line.push(Instant::now(), shared.latency(to_upstream), Item::Eof);
                }
                Ok(n) => {
                    let chunk = Item::Data(buf[..n].to_vec());
                    line.push(Instant::now(), shared.latency(to_upstream), chunk);
                }
                Err(e) if retryable(&e) => {}
                Err(_) => {
                    self.reset(shared, Reason::Peer);
                    return;
                }
            }
        }
    }

    /// Applies the faults to one chunk and writes it; false when the connection is over.
    fn forward(&self, shared: &Shared, dir: Dir, dst: &TcpStream, chunk: &[u8]) -> bool {
        if !self.wait_until_forwarding(shared) {
            return false;
        }
        if dir == Dir::ToClient && self.lose_response.load(Ordering::SeqCst) {
            self.reset(shared, Reason::DroppedResponse);
            return false;
        }
        let plan = shared.plan(dir == Dir::ToUpstream);
        if !plan.delay.is_zero() && !self.delay(shared, plan.delay) {
            return false;
        }
        if plan.drop_request {
            self.reset(shared, Reason::DroppedRequest);
            return false;
        }
        if plan.drop_response {
            self.lose_response.store(true, Ordering::SeqCst);
        }
        let counter = match dir {
            Dir::ToUpstream => &shared.counters.bytes_to_upstream,
            Dir::ToClient => &shared.counters.bytes_to_client,
        };
        self.write_all(shared, dst, chunk, counter)
    }

    /// Sleeps `d` in short steps, still honouring blackholes, resets and shutdown.
    fn delay(&self, shared: &Shared, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if !self.wait_until_forwarding(shared) {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            shared.pause((until - now).min(HOLD_POLL));
        }
    }

    /// Writes all of `data`, counting bytes before they can reach the peer (and un-counting
    /// what the kernel did not take), so a test never sees bytes that the stats miss.
    fn write_all(
        &self,
        shared: &Shared,
        mut dst: &TcpStream,
        mut data: &[u8],
        counter: &AtomicU64,
    ) -> bool {
        while !data.is_empty() {
            if !self.wait_until_forwarding(shared) {
                return false;
            }
            let len = data.len() as u64;
            counter.fetch_add(len, Ordering::SeqCst);
            match dst.write(data) {
                Ok(0) => {
                    counter.fetch_sub(len, Ordering::SeqCst);
                    self.reset(shared, Reason::Peer);
                    return false;
                }
                Ok(k) => {
                    counter.fetch_sub(len - k as u64, Ordering::SeqCst);
                    data = &data[k..];
                }
                Err(e) if retryable(&e) => {
                    counter.fetch_sub(len, Ordering::SeqCst);
                }
                Err(_) => {
                    counter.fetch_sub(len, Ordering::SeqCst);
                    self.reset(shared, Reason::Peer);
                    return false;
                }
            }
        }
        true
    }
}
