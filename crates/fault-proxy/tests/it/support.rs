//! Tiny upstream servers and client helpers. Timeouts here only keep a broken test from
//! hanging; nothing asserts on timing.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Generous: only there so a broken proxy fails the test instead of hanging it.
pub const HANG_GUARD: Duration = Duration::from_secs(5);
/// How long a read must block for the tests to call the connection stalled.
pub const STALL: Duration = Duration::from_millis(300);

pub const REQUEST: &[u8] = b"GET /v1/ping HTTP/1.1\r\nHost: exam\r\n\r\n";
pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// What an upstream server saw.
#[derive(Clone, Default)]
pub struct Seen {
    pub connections: Arc<AtomicUsize>,
    pub bytes: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
}

impl Seen {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::SeqCst)
    }
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Serves each connection on its own (detached) thread; the servers live until the test
/// binary exits.
fn serve(handler: fn(TcpStream, &Seen)) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let accept_seen = seen.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            accept_seen.connections.fetch_add(1, Ordering::SeqCst);
            let seen = accept_seen.clone();
            thread::spawn(move || handler(stream, &seen));
        }
    });
    (addr, seen)
}

/// Echoes everything back; closes after the client's EOF.
pub fn echo_server() -> (SocketAddr, Seen) {
    serve(|mut stream, seen| {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    seen.bytes.fetch_add(n, Ordering::SeqCst);
                    if stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// Answers every `\r\n\r\n`-terminated request with [`RESPONSE`] (keep-alive). Counts the
/// request *before* answering, as a server that applied it would.
pub fn http_server() -> (SocketAddr, Seen) {
    serve(|mut stream, seen| {
        let mut pending = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    seen.bytes.fetch_add(n, Ordering::SeqCst);
                    pending.extend_from_slice(&buf[..n]);
                }
            }
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                pending.drain(..end + 4);
                seen.requests.fetch_add(1, Ordering::SeqCst);
                if stream.write_all(RESPONSE).is_err() {
                    return;
                }
            }
        }
    })
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    stream.set_write_timeout(Some(HANG_GUARD)).unwrap();
    stream
}

/// Sends `msg` and expects it back verbatim.
pub fn echo(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

/// Sends [`REQUEST`] and expects [`RESPONSE`].
pub fn get(stream: &mut TcpStream) {
    stream.write_all(REQUEST).unwrap();
    let mut back = vec![0u8; RESPONSE.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, RESPONSE);
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Sends `msg` (a failing write already counts as dead) and reads until the connection ends
/// with EOF or a reset; returns how many bytes arrived before that. Panics if the connection
/// is still open after [`HANG_GUARD`].
pub fn expect_dead(stream: &mut TcpStream, msg: &[u8]) -> usize {
    if let Err(e) = stream.write_all(msg) {
        assert!(is_reset(&e), "write failed with {e:?}, not a reset");
        return 0;
    }
    let mut received = 0;
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return received,
            Ok(n) => received += n,
            Err(e) if is_reset(&e) => return received,
            Err(e) => panic!("connection still alive or odd error: {e:?}"),
        }
    }
}

/// Sends `msg` and expects nothing back within [`STALL`].
pub fn expect_stall(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).unwrap();
    stream.set_read_timeout(Some(STALL)).unwrap();
    let mut buf = [0u8; 64];
    let err = match stream.read(&mut buf) {
        Ok(n) => panic!("expected a stall, got {n} bytes (0 = EOF)"),
        Err(e) => e,
    };
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "expected a timeout, got {err:?}"
    );
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
}

/// Polls `cond` until it holds; panics after a generous guard.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}
