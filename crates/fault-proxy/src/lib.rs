//! A fault-injecting TCP proxy for integration tests.
//!
//! The sync engine promises that an answer is never lost and never applied twice, whatever
//! the network does. Tests prove it by putting a [`FaultProxy`] between the HTTP client and a
//! real server on 127.0.0.1, then changing what the network does:
//!
//! - the [`Link`] ([`FaultProxy::set_link`], [`FaultProxy::cut_for`]): up, refusing
//!   connections, blackholing them, or a [`Portal`] answering in the server's place (the school
//!   Wi-Fi's sign-in page, a redirect to it, or a web proxy's own error page), so the client
//!   meets well-formed HTTP that is not the server's;
//! - random faults while it is up ([`FaultProxy::set_faults`]): lost requests, lost responses
//!   (the server applied the request, the client never heard) and random per-chunk delays;
//! - a fixed latency per direction ([`FaultProxy::set_latency`]), as on a long or congested
//!   link: everything arrives later, but chunks in flight overlap, so it costs time per round
//!   trip, not per chunk.
//!
//! [`FaultProxy::stats`] then says exactly what happened.
//!
//! ```no_run
//! # fn server_addr() -> std::net::SocketAddr { unimplemented!() }
//! use std::time::Duration;
//! use fault_proxy::{FaultProxy, Faults, Link, Portal};
//!
//! let proxy = FaultProxy::start(server_addr())?;
//! let base_url = proxy.url(); // give this to the client instead of the server's URL
//! proxy.set_faults(Faults { seed: 7, drop_response: 0.3, ..Faults::default() });
//! proxy.set_latency(Duration::from_millis(150), Duration::from_millis(150));
//! proxy.cut_for(Duration::from_secs(2), Link::Blackhole);
//! // ... drive the client, then compare the server's state with what the client believes ...
//! proxy.cut_for(Duration::from_secs(2), Link::Portal(Portal::LoginPage));
//! // ... the client must not take the login page for the server's answer ...
//! assert_eq!(proxy.stats().dropped_requests, 0);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Plain blocking sockets and threads (no async runtime), so it works the same under tokio,
//! a blocking client or a Tauri app. Everything stops when the proxy is dropped.

mod conn;
mod delay_line;
mod faults;
mod link;
mod portal;
mod shared;
mod stats;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub use faults::Faults;
pub use link::Link;
pub use portal::{Portal, PORTAL_HOST};
pub use stats::ProxyStats;

use shared::Shared;
use stats::bump;

/// How often the accept loop looks for new connections (and for shutdown).
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// A running proxy from `127.0.0.1:<random port>` to one upstream address.
///
/// Each accepted connection opens its own connection to the upstream (so HTTP keep-alive works
/// as usual) and is served by two threads, one per direction; a connection accepted while the
/// link is a [`Link::Portal`] is answered by the proxy itself on one thread and never reaches
/// the upstream. The link starts [`Link::Up`] with no [`Faults`] and no latency.
///
/// Dropping the proxy stops it: the listener closes (the port refuses connections), every open
/// connection is reset, even blackholed ones, and all threads are joined before `drop`
/// returns (typically within ~50 ms).
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy listening on `127.0.0.1:0` that forwards to `upstream`.
    ///
    /// The upstream is only contacted when a client connects; if it cannot be reached then,
    /// the client's connection is reset (counted in [`ProxyStats::upstream_unreachable`]).
    pub fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        // Non-blocking so the accept loop can notice shutdown.
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(upstream));
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("fault-proxy-accept".into())
                .spawn(move || accept_loop(&shared, &listener))?
        };
        Ok(Self {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    /// The address clients should connect to (always on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash: the base URL to give the client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the link now, for new and existing connections (existing ones notice within
    /// about 50 ms). Setting the current value again changes nothing. Cancels a pending
    /// [`cut_for`](Self::cut_for) restore. See [`Link`] for what each state does, in
    /// particular that connections which lived through a `Refuse`, `Blackhole` or `Portal` are
    /// reset.
    pub fn set_link(&self, link: Link) {
        self.shared.change_link(link);
    }

    /// The current link.
    pub fn link(&self) -> Link {
        self.shared.link.get().0
    }

    /// Sets the link to `how` now and back to [`Link::Up`] after `d`, in the background.
    ///
    /// Any later [`set_link`](Self::set_link) or `cut_for` wins: the restore only happens if
    /// the link was not changed through the proxy in the meantime. Poll [`link`](Self::link)
    /// to wait for the end of the cut. Dropping the proxy cancels the restore. (Should the OS
    /// refuse to start the timer thread, this call blocks for `d` and restores the link
    /// itself.)
    pub fn cut_for(&self, d: Duration, how: Link) {
        let token = self.shared.change_link(how);
        let shared = Arc::clone(&self.shared);
        let timer = thread::Builder::new()
            .name("fault-proxy-cut".into())
            .spawn(move || {
                if !shared.pause(d) {
                    shared.restore_up(token);
                }
            });
        match timer {
            Ok(timer) => self.shared.track(timer),
            Err(_) => {
                thread::sleep(d);
                self.shared.restore_up(token);
            }
        }
    }

    /// Replaces the random faults applied while the link is up, and reseeds the PRNG with
    /// `faults.seed`. Takes effect from the next chunk on every connection.
    /// `Faults::default()` turns them all off.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// Sets a fixed one-way latency for each direction, as on a long or congested link
    /// (`Duration::ZERO` for none, the default; values above an hour count as an hour).
    ///
    /// Every chunk read from one side is written to the other side `to_upstream` (client to
    /// server) or `to_client` (server to client) after it was read, so a request/response
    /// round trip takes at least `to_upstream + to_client` more. Unlike the random
    /// [`Faults`] delays, which sleep before each chunk, chunks in flight overlap: a burst of
    /// ten chunks arrives about one latency later, not ten. The latency does not throttle a
    /// burst; only past 1 MiB in flight per direction and connection (the link's window) does
    /// the proxy stop reading, so a bulk transfer runs at about 1 MiB per latency. Order is
    /// preserved, and the end of a stream (FIN) arrives after the data, with the same delay.
    ///
    /// A change applies to chunks read after it, on new and existing connections; a chunk
    /// never overtakes one read before it, so after lowering the latency new chunks may only
    /// catch up. [`Faults`] are applied when a chunk comes due (a random delay then adds to
    /// the latency). The link rules are unchanged: a [`Link::Blackhole`] holds the chunks in
    /// flight as well (and they are dropped with the reset when the link comes back), a
    /// `Refuse` or a portal resets at once, and so does dropping the proxy.
    ///
    /// Not delayed: the TCP handshake (the kernel accepts the connection and the proxy connects
    /// to the upstream at once, so a new connection costs no extra round trip), resets (they
    /// are immediate, as without latency) and [`Link::Portal`] replies (a portal sits next to
    /// the client).
    pub fn set_latency(&self, to_upstream: Duration, to_client: Duration) {
        self.shared.set_latency(to_upstream, to_client);
    }

    /// The current latency, `(to_upstream, to_client)`, as set by
    /// [`set_latency`](Self::set_latency) (after capping).
    pub fn latency(&self) -> (Duration, Duration) {
        (self.shared.latency(true), self.shared.latency(false))
    }

    /// A snapshot of the counters; see [`ProxyStats`] for exactly when each one moves.
    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("link", &self.link())
            .finish_non_exhaustive()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop();
        // The accept thread owns the listener: once joined, the port is closed and no new
        // connection thread can appear.
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for thread in self.shared.take_threads() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    while !shared.is_stopping() {
        match listener.accept() {
            Ok((stream, _)) => admit(shared, stream),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // WouldBlock, or a transient failure such as running out of descriptors.
            Err(_) => {
                shared.pause(ACCEPT_POLL);
            }
        }
    }
}

/// Decides the fate of a newly accepted client connection.
fn admit(shared: &Arc<Shared>, client: TcpStream) {
    bump(&shared.counters.accepted);
    let (link, birth) = shared.link.get();
    if link == Link::Refuse || conn::prepare(&client).is_err() {
        if link == Link::Refuse {
            bump(&shared.counters.refused);
        }
        conn::arm_reset(&client);
        return;
    }
    bump(&shared.counters.open);
    let thread = {
        let shared = Arc::clone(shared);
        thread::Builder::new()
            .name("fault-proxy-conn".into())
            .spawn(move || {
                conn::serve(Arc::clone(&shared), client, birth);
                shared.counters.open.fetch_sub(1, Ordering::SeqCst);
            })
    };
    match thread {
        Ok(thread) => shared.track(thread),
        // The closure (and the client socket, without linger armed) is gone; the client sees
        // an orderly close.
        Err(_) => {
            shared.counters.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
