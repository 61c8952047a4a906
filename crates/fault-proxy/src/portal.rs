//! [`Link::Portal`](crate::Link::Portal): the proxy answers HTTP requests itself, in the
//! server's place.
//!
//! This is what a client meets when the school Wi-Fi comes back behind a captive portal, or
//! when a web proxy answers with its own error page: the TCP connection works, HTTP works, and
//! the answer is not the server's. A client must not take such an answer for the server's
//! (a `200 OK` login page is not a successful save) and must retry once the real server is
//! back.
//!
//! The proxy reads each HTTP/1.1 request head itself (up to the blank line that ends it,
//! [`MAX_HEAD`] at most), skips a `Content-Length` body, and answers with the portal's reply:
//! `Content-Length` framed, no `Date`, `Connection: keep-alive`, so a pooled client reuses the
//! connection for its next request as it would with the server. What it cannot frame (a
//! `Transfer-Encoding` body, `Expect: 100-continue`, `CONNECT`, a head that is too long or not
//! HTTP at all) is answered all the same, with `Connection: close`, and the connection is
//! closed after it. The client's `Connection: close` (or HTTP/1.0 without keep-alive) is
//! honoured the same way.
//!
//! Replies are written at once, whatever [latency](crate::FaultProxy::set_latency) is set: the
//! portal is next to the client, the long part of the path is behind it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::conn::{arm_reset, link_verdict, retryable, Verdict, CHUNK};
use crate::shared::Shared;
use crate::stats::bump;

/// The host of the portal's sign-in page: [`Portal::Redirect`] sends clients to
/// `http://login.portal.test/login?continue=<the URL they asked for>`. The `.test` top-level
/// domain is reserved, so the name never resolves to anything real.
pub const PORTAL_HOST: &str = "login.portal.test";

/// What answers in the server's place while the link is [`Link::Portal`](crate::Link::Portal).
///
/// Every reply has `Content-Type: text/html`, a `Content-Length`, `Cache-Control: no-store`, no
/// `Date`, and a body unless the request was a `HEAD`. It says `Connection: keep-alive` and the
/// connection stays open for the next request, unless the request asked for `close` or could
/// not be framed (a chunked body, `Expect: 100-continue`, not HTTP/1.x at all): then it says
/// `Connection: close` and the connection is closed after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Portal {
    /// Every HTTP request gets `302 Found` with
    /// `Location: http://login.portal.test/login?continue=...` (the requested URL,
    /// percent-encoded; without `?continue=` when the request did not say) and a small HTML
    /// body linking there.
    Redirect,
    /// Every HTTP request gets `200 OK` with an HTML login page ("Sign in to the school
    /// network"): the case a client that only looks at the status mistakes for success.
    LoginPage,
    /// Every HTTP request gets this status (e.g. 502, 503, 504) with the proxy's own HTML
    /// error page and a `Via: 1.1 school-proxy` header. Meant for 4xx and 5xx: the status is
    /// written as given, and a reply with a body would be wrong for 1xx, 204 or 304.
    ProxyError(u16),
}

/// The longest request head the portal reads; a longer one is answered, then closed.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// How long the portal keeps reading (and discarding) after answering with
/// `Connection: close`, so that a body still on its way does not turn the close into a reset
/// that could destroy the reply before the client reads it.
const LINGER: Duration = Duration::from_secs(1);

/// The name the error pages and the `Via` header give the proxy.
const PROXY_NAME: &str = "school-proxy";

/// Serves one connection accepted while the link was a portal, until the client closes, the
/// request cannot be framed, the link changes or the proxy stops. Runs on the connection's own
/// thread; `client` is already prepared (blocking, 50 ms timeouts).
pub(crate) fn serve(shared: &Shared, client: TcpStream, birth: u64) {
    let mut session = Session {
        shared,
        client: &client,
        birth,
        pending: Vec::new(),
        buf: vec![0; CHUNK],
    };
    match session.run().and_then(|()| session.linger()) {
        // Answered and closed, or the client closed first: an orderly close (FIN).
        Ok(()) | Err(Stop::Eof) => {}
        Err(Stop::Link) => {
            bump(&shared.counters.reset_by_link);
            arm_reset(&client);
        }
        Err(Stop::Shutdown | Stop::Peer) => arm_reset(&client),
    }
}

/// Why a portal session ends early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// The link left the portal this connection was born in: reset, counted.
    Link,
    /// The proxy is being dropped: reset, not counted.
    Shutdown,
    /// A socket error: reset, not counted.
    Peer,
    /// The client closed its side: closed in turn.
    Eof,
}

struct Session<'a> {
    shared: &'a Shared,
    client: &'a TcpStream,
    birth: u64,
    /// Bytes read but not consumed yet: a partial head, or pipelined requests.
    pending: Vec<u8>,
    buf: Vec<u8>,
}

impl Session<'_> {
    /// The portal answering this connection, or why it must stop.
    fn portal(&self) -> Result<Portal, Stop> {
        match link_verdict(self.shared, self.birth) {
            Verdict::Portal(portal) => Ok(portal),
            Verdict::Shutdown => Err(Stop::Shutdown),
            _ => Err(Stop::Link),
        }
    }

    /// Answers requests until one says the connection must close.
    fn run(&mut self) -> Result<(), Stop> {
        loop {
            // Empty lines before a request line are to be ignored (RFC 9112, section 2.2).
            let blank = self
                .pending
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n');
            let blank = blank.count();
            self.pending.drain(..blank);
            match parse(&self.pending) {
                Parsed::Incomplete => self.fill()?,
                Parsed::Bad => return self.answer(None, false),
                Parsed::Complete { len, request } => {
                    self.pending.drain(..len);
                    let Body::Length(length) = request.body else {
                        return self.answer(Some(&request), false);
                    };
                    self.skip(length)?;
                    self.answer(Some(&request), request.keep_alive)?;
                    if !request.keep_alive {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Reads once more into `pending`, waiting as long as the link stays this portal.
    fn fill(&mut self) -> Result<(), Stop> {
        loop {
            self.portal()?;
            match self.client.read(&mut self.buf) {
                Ok(0) => return Err(Stop::Eof),
                Ok(n) => {
                    self.pending.extend_from_slice(&self.buf[..n]);
                    return Ok(());
                }
                Err(e) if retryable(&e) => {}
                Err(_) => return Err(Stop::Peer),
            }
        }
    }

    /// Consumes a request body of `length` bytes, without keeping it.
    fn skip(&mut self, mut length: u64) -> Result<(), Stop> {
        while length > 0 {
            if self.pending.is_empty() {
                self.fill()?;
            }
            let take =
                usize::try_from(length).map_or(self.pending.len(), |l| l.min(self.pending.len()));
            self.pending.drain(..take);
            length -= take as u64;
        }
        Ok(())
    }

    /// Writes the current portal's reply to `request` (`None`: a request it could not read).
    fn answer(&mut self, request: Option<&Request>, keep_alive: bool) -> Result<(), Stop> {
        let reply = reply(self.portal()?, request, keep_alive);
        // Counted before the client can see it, like every other counter.
        bump(&self.shared.counters.portal_replies);
        let mut data = reply.as_slice();
        while !data.is_empty() {
            match self.client.write(data) {
                Ok(0) => return Err(Stop::Peer),
                Ok(k) => data = &data[k..],
                Err(e) if retryable(&e) => {
                    self.portal()?;
                }
                Err(_) => return Err(Stop::Peer),
            }
        }
        Ok(())
    }

    /// After a reply with `Connection: close`: sends the FIN, then discards what the client
    /// still sends for a while (a lingering close, as HTTP servers do).
    fn linger(&mut self) -> Result<(), Stop> {
        let _ = self.client.shutdown(Shutdown::Write);
        let until = Instant::now() + LINGER;
        while Instant::now() < until {
            self.portal()?;
            match self.client.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if retryable(&e) => {}
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    }
}

/// What the portal needs to know about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Request {
    /// `HEAD`: the reply has no body.
    head: bool,
    /// The URL the client asked for, when the head says (origin-form target and `Host`, or an
    /// absolute-form target).
    url: Option<String>,
    body: Body,
    keep_alive: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// `Content-Length` bytes follow the head (0 without the header).
    Length(u64),
    /// The request's end cannot be found: answer, then close.
    Unframeable,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// The head is not complete yet.
    Incomplete,
    /// Not an HTTP/1.x request head (or too long): answer, then close.
    Bad,
    /// A head of `len` bytes, blank line included.
    Complete { len: usize, request: Request },
}

fn parse(buf: &[u8]) -> Parsed {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() <= MAX_HEAD && plausible_start(buf) {
            Parsed::Incomplete
        } else {
            Parsed::Bad
        };
    };
    let len = end + 4;
    if len > MAX_HEAD {
        return Parsed::Bad;
    }
    match std::str::from_utf8(&buf[..end]).ok().and_then(parse_head) {
        Some(request) => Parsed::Complete { len, request },
        None => Parsed::Bad,
    }
}

/// False as soon as the bytes so far cannot start an HTTP/1.x request, so that a client
/// speaking something else (TLS, a test's echo) gets its answer at once instead of waiting
/// for a blank line that never comes.
fn plausible_start(buf: &[u8]) -> bool {
    if let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") {
        return std::str::from_utf8(&buf[..eol])
            .ok()
            .and_then(request_line)
            .is_some();
    }
    let method = buf.split(|&b| b == b' ').next().unwrap_or_default();
    method.len() <= 32 && method.iter().all(u8::is_ascii_uppercase)
}

/// Method, target and whether the version is HTTP/1.1 (as opposed to 1.0).
fn request_line(line: &str) -> Option<(&str, &str, bool)> {
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || target.is_empty()
        || !target.bytes().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return None,
    };
    Some((method, target, http11))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_head(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let (method, target, http11) = request_line(lines.next()?)?;
    let mut host = None;
    let mut length: Option<u64> = None;
    let mut framing_ok = method != "CONNECT";
    let mut expect_continue = false;
    let (mut close, mut keep_alive) = (false, false);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if !is_token(name) {
            return None;
        }
        let value = value.trim_matches([' ', '\t']);
        let is = |header: &str| name.eq_ignore_ascii_case(header);
        if is("host") {
            host = Some(value);
        } else if is("content-length") {
            let parsed = value
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| value.parse::<u64>().ok())
                .flatten();
            match (parsed, length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(previous)) if n == previous => {}
                _ => framing_ok = false,
            }
        } else if is("transfer-encoding") {
            framing_ok = false;
        } else if is("expect") {
            expect_continue |= value.eq_ignore_ascii_case("100-continue");
        } else if is("connection") {
            for option in value.split(',').map(str::trim) {
                close |= option.eq_ignore_ascii_case("close");
                keep_alive |= option.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let length = length.unwrap_or(0);
    // The client waits for a `100 Continue` the portal will not send; answering at once and
    // closing is what a server that refuses the body does.
    if expect_continue && length > 0 {
        framing_ok = false;
    }
    let lower = target.to_ascii_lowercase();
    let url = if lower.starts_with("http://") || lower.starts_with("https://") {
        Some(target.to_owned())
    } else if target.starts_with('/') {
        host.map(|host| format!("http://{host}{target}"))
    } else if target == "*" {
        host.map(|host| format!("http://{host}/"))
    } else {
        None
    };
    Some(Request {
        head: method == "HEAD",
        url,
        body: if framing_ok {
            Body::Length(length)
        } else {
            Body::Unframeable
        },
        keep_alive: !close && (http11 || keep_alive),
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a query value.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The sign-in URL a redirect points to, carrying the URL the client wanted.
fn login_url(continue_to: Option<&str>) -> String {
    match continue_to {
        Some(url) => format!(
            "http://{PORTAL_HOST}/login?continue={}",
            percent_encode(url)
        ),
        None => format!("http://{PORTAL_HOST}/login"),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        511 => "Network Authentication Required",
        _ => "Error",
    }
}

const LOGIN_PAGE: &str = "<!DOCTYPE html>\n\
<html><head><meta charset=\"utf-8\"><title>Sign in to the school network</title></head>\n\
<body><h1>Sign in to the school network</h1>\n\
<form method=\"post\" action=\"http://login.portal.test/login\">\n\
<label>User name <input name=\"user\"></label>\n\
<label>Password <input name=\"password\" type=\"password\"></label>\n\
<button>Sign in</button></form></body></html>\n";

/// The whole reply, head and body, of `portal` to `request`.
fn reply(portal: Portal, request: Option<&Request>, keep_alive: bool) -> Vec<u8> {
    let (status, extra, body) = match portal {
        Portal::Redirect => {
            let location = login_url(request.and_then(|r| r.url.as_deref()));
            // Percent-encoded: nothing in it needs HTML escaping.
            let body = format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>302 Found</title></head>\n\
                 <body><p>Sign in to the school network: <a href=\"{location}\">continue</a>.</p></body></html>\n"
            );
            (302, format!("Location: {location}\r\n"), body)
        }
        Portal::LoginPage => (200, String::new(), LOGIN_PAGE.to_owned()),
        Portal::ProxyError(status) => {
            let explanation = match status {
                502 => "The proxy got no valid answer from the server.",
                503 => "The service is not available right now. Please try again later.",
                504 => "The server did not answer the proxy in time.",
                _ => "The proxy could not complete the request.",
            };
            let title = format!("{status} {}", reason(status));
            let body = format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
                 <body><h1>{title}</h1><p>{explanation}</p><hr><address>{PROXY_NAME}</address></body></html>\n"
            );
            (status, format!("Via: 1.1 {PROXY_NAME}\r\n"), body)
        }
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut out = format!(
        "HTTP/1.1 {status:03} {reason}\r\n{extra}Content-Type: text/html\r\n\
         Content-Length: {length}\r\nCache-Control: no-store\r\nConnection: {connection}\r\n\r\n",
        reason = reason(status),
        length = body.len(),
    );
    if !request.is_some_and(|r| r.head) {
        out.push_str(&body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn complete(raw: &str) -> (usize, Request) {
        match parse(raw.as_bytes()) {
            Parsed::Complete { len, request } => (len, request),
            other => panic!("{raw:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn a_plain_get_is_framed_with_its_url() {
        let raw = "GET /v1/ping?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\nGET /next";
        let (len, request) = complete(raw);
        assert_eq!(len, raw.find("GET /next").unwrap());
        assert_eq!(
            request,
            Request {
                head: false,
                url: Some("http://127.0.0.1:8080/v1/ping?x=1".into()),
                body: Body::Length(0),
                keep_alive: true,
            }
        );
    }

    #[test]
    fn bodies_and_connection_options_are_read() {
        let (_, post) = complete("POST /a HTTP/1.1\r\nhost: h\r\ncontent-length:  12 \r\n\r\n");
        assert_eq!(post.body, Body::Length(12));
        let (_, chunked) =
            complete("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(chunked.body, Body::Unframeable);
        let (_, conflicting) =
            complete("POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(conflicting.body, Body::Unframeable);
        let (_, expect) =
            complete("PUT /a HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(expect.body, Body::Unframeable);
        let (_, close) = complete("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(!close.keep_alive);
        let (_, old) = complete("GET / HTTP/1.0\r\n\r\n");
        assert!(!old.keep_alive);
        let (_, old_kept) = complete("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(old_kept.keep_alive);
        let (_, head) = complete("HEAD http://example.test/x HTTP/1.1\r\n\r\n");
        assert!(head.head);
        assert_eq!(head.url.as_deref(), Some("http://example.test/x"));
    }

    #[test]
    fn what_is_not_http_is_refused_early_and_a_partial_head_waits() {
        assert_eq!(parse(b""), Parsed::Incomplete);
        assert_eq!(parse(b"GE"), Parsed::Incomplete);
        assert_eq!(
            parse(b"GET /v1/ping HTTP/1.1\r\nHost: x"),
            Parsed::Incomplete
        );
        assert_eq!(parse(b"hello"), Parsed::Bad);
        assert_eq!(parse(&[0x16, 0x03, 0x01, 0x02, 0x00]), Parsed::Bad);
        assert_eq!(parse(b"GET /v1/ping SPDY/3\r\n"), Parsed::Bad);
        assert_eq!(parse(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), Parsed::Bad);
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_HEAD + 1, b'a');
        assert_eq!(parse(&huge), Parsed::Bad);
    }

    #[test]
    fn replies_are_framed_and_a_head_reply_has_no_body() {
        let (_, get) = complete("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
        let text = String::from_utf8(reply(Portal::Redirect, Some(&get), true)).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 302 Found\r\n"), "{head}");
        assert!(head.contains(
            "\r\nLocation: http://login.portal.test/login?continue=http%3A%2F%2Fh%2Fa\r\n"
        ));
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
        assert!(head.contains("\r\nConnection: keep-alive"));
        assert!(!head.contains("Date:"));

        let (_, head_request) = complete("HEAD / HTTP/1.1\r\n\r\n");
        let text =
            String::from_utf8(reply(Portal::ProxyError(504), Some(&head_request), false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"));
        assert!(text.contains("\r\nVia: 1.1 school-proxy\r\n"));
        assert!(text.ends_with("Connection: close\r\n\r\n"), "{text}");
        assert!(!text.contains("\r\nContent-Length: 0\r\n"));
    }
}
