//! `Link::Portal`: the proxy answers HTTP itself, in the server's place.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use fault_proxy::{FaultProxy, Link, Portal, PORTAL_HOST};

use crate::support::*;

/// One HTTP response as the client sees it.
#[derive(Debug)]
struct Reply {
    status_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn status(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {:?}", self.status_line))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads exactly one `Content-Length`-framed response (byte by byte for the head, so nothing
/// of a following response is consumed).
fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.trim_end().split("\r\n");
    let status_line = lines.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    let mut reply = Reply {
        status_line,
        headers,
        body: String::new(),
    };
    let length: usize = reply.header("Content-Length").unwrap().parse().unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    reply.body = String::from_utf8(body).unwrap();
    reply
}

/// Sends `request` and reads one reply.
fn ask(stream: &mut TcpStream, request: &[u8]) -> Reply {
    stream.write_all(request).unwrap();
    read_reply(stream)
}

/// What every portal reply has, whichever the portal.
fn assert_portal_framing(reply: &Reply) {
    assert!(
        reply.status_line.starts_with("HTTP/1.1 "),
        "{}",
        reply.status_line
    );
    assert_eq!(reply.header("Content-Type"), Some("text/html"));
    assert_eq!(reply.header("Connection"), Some("keep-alive"));
    assert_eq!(reply.header("Date"), None, "portal replies carry no Date");
    assert!(reply.body.contains("<html"), "{}", reply.body);
}

fn portal_proxy(portal: Portal) -> (FaultProxy, Seen) {
    let (upstream, seen) = http_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_link(Link::Portal(portal));
    assert_eq!(proxy.link(), Link::Portal(portal));
    (proxy, seen)
}

#[test]
fn redirect_sends_every_request_to_the_sign_in_page() {
    let (proxy, seen) = portal_proxy(Portal::Redirect);
    let mut client = connect(proxy.addr());
    let reply = ask(&mut client, REQUEST);

    assert_portal_framing(&reply);
    assert_eq!(reply.status_line, "HTTP/1.1 302 Found");
    let location = format!("http://{PORTAL_HOST}/login?continue=http%3A%2F%2Fexam%2Fv1%2Fping");
    assert_eq!(reply.header("Location"), Some(location.as_str()));
    assert!(reply.body.contains(&location), "{}", reply.body);

    assert_eq!(seen.connections(), 0, "the upstream saw nothing");
    let stats = proxy.stats();
    assert_eq!(stats.portal_replies, 1);
    assert_eq!(stats.bytes_to_upstream, 0);
    assert_eq!(stats.bytes_to_client, 0, "nothing came from the upstream");
}

#[test]
fn login_page_answers_200_with_the_sign_in_form() {
    let (proxy, seen) = portal_proxy(Portal::LoginPage);
    let mut client = connect(proxy.addr());
    let reply = ask(&mut client, REQUEST);

    assert_portal_framing(&reply);
    assert_eq!(reply.status_line, "HTTP/1.1 200 OK");
    assert_eq!(reply.header("Location"), None);
    assert!(
        reply.body.contains("Sign in to the school network"),
        "{}",
        reply.body
    );
    assert_eq!(seen.connections(), 0);
    assert_eq!(proxy.stats().portal_replies, 1);
}

#[test]
fn proxy_error_answers_with_its_status_and_its_own_page() {
    for (status, reason) in [
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
    ] {
        let (proxy, seen) = portal_proxy(Portal::ProxyError(status));
        let mut client = connect(proxy.addr());
        let reply = ask(&mut client, REQUEST);

        assert_portal_framing(&reply);
        assert_eq!(reply.status(), status);
        assert_eq!(reply.status_line, format!("HTTP/1.1 {status} {reason}"));
        assert_eq!(reply.header("Via"), Some("1.1 school-proxy"));
        assert!(
            reply.body.contains(&format!("{status} {reason}")),
            "{}",
            reply.body
        );
        assert_eq!(seen.connections(), 0);
        assert_eq!(proxy.stats().portal_replies, 1);
    }
}

#[test]
fn several_requests_on_one_keep_alive_connection_are_all_answered() {
    let (proxy, seen) = portal_proxy(Portal::LoginPage);
    let mut client = connect(proxy.addr());
    let first = ask(&mut client, REQUEST);
    let second = ask(&mut client, REQUEST);
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    assert_eq!(first.body, second.body);

    // Pipelined in one write, and a HEAD: its reply has the length but no body.
    let head = b"HEAD /v1/ping HTTP/1.1\r\nHost: exam\r\n\r\n";
    let pipelined = [head.as_slice(), REQUEST].concat();
    client.write_all(&pipelined).unwrap();
    let mut head_reply = String::new();
    let mut byte = [0u8; 1];
    while !head_reply.ends_with("\r\n\r\n") {
        client.read_exact(&mut byte).unwrap();
        head_reply.push(char::from(byte[0]));
    }
    assert!(
        head_reply.starts_with("HTTP/1.1 200 OK\r\n"),
        "{head_reply}"
    );
    assert!(head_reply.contains(&format!("Content-Length: {}\r\n", first.body.len())));
    let after_head = read_reply(&mut client);
    assert_eq!(after_head.body, first.body);

    assert_eq!(proxy.stats().portal_replies, 4);
    assert_eq!(proxy.stats().accepted, 1, "all on one connection");
    assert_eq!(seen.connections(), 0);
}

#[test]
fn a_request_body_is_skipped_and_the_next_request_is_answered_too() {
    let (proxy, seen) = portal_proxy(Portal::Redirect);
    let mut client = connect(proxy.addr());
    let body = "x".repeat(40_000);
    let post = format!(
        "POST /v1/answers HTTP/1.1\r\nHost: exam\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    // The body arrives in pieces, after the head.
    client.write_all(post.as_bytes()).unwrap();
    thread::sleep(Duration::from_millis(20));
    client.write_all(&body.as_bytes()[..10_000]).unwrap();
    thread::sleep(Duration::from_millis(20));
    client.write_all(&body.as_bytes()[10_000..]).unwrap();
    let reply = read_reply(&mut client);
    assert_eq!(reply.status(), 302);
    assert_eq!(
        reply.header("Location"),
        Some("http://login.portal.test/login?continue=http%3A%2F%2Fexam%2Fv1%2Fanswers")
    );

    let next = ask(&mut client, REQUEST);
    assert_eq!(next.status(), 302);
    assert_eq!(
        next.header("Location"),
        Some("http://login.portal.test/login?continue=http%3A%2F%2Fexam%2Fv1%2Fping"),
        "the body was not taken for the next request"
    );
    assert_eq!(proxy.stats().portal_replies, 2);
    assert_eq!(seen.connections(), 0);
}

#[test]
fn a_chunked_request_is_answered_then_the_connection_closes() {
    let (proxy, _seen) = portal_proxy(Portal::ProxyError(503));
    let mut client = connect(proxy.addr());
    let chunked = b"POST /v1/answers HTTP/1.1\r\nHost: exam\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5\r\nhello\r\n0\r\n\r\n";
    client.write_all(chunked).unwrap();
    let reply = read_reply(&mut client);
    assert_eq!(reply.status(), 503);
    assert_eq!(reply.header("Connection"), Some("close"));
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "an orderly close after the reply");
    assert_eq!(proxy.stats().portal_replies, 1);
}

#[test]
fn what_is_not_http_gets_the_reply_then_a_close() {
    let (proxy, _seen) = portal_proxy(Portal::LoginPage);
    let mut client = connect(proxy.addr());
    client.write_all(b"hello").unwrap();
    let reply = read_reply(&mut client);
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.header("Connection"), Some("close"));
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn connections_open_before_the_portal_are_reset() {
    let (upstream, seen) = http_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    let mut pooled = connect(proxy.addr());
    get(&mut pooled);

    proxy.set_link(Link::Portal(Portal::LoginPage));
    assert_eq!(expect_dead(&mut pooled, REQUEST), 0);
    let stats = proxy.stats();
    assert_eq!(stats.reset_by_link, 1);
    assert_eq!(stats.portal_replies, 0);
    assert_eq!(
        seen.requests(),
        1,
        "the request after the change never arrived"
    );
}

#[test]
fn up_after_a_portal_reaches_the_upstream_and_resets_the_portal_connection() {
    let (proxy, seen) = portal_proxy(Portal::Redirect);
    let mut captive = connect(proxy.addr());
    assert_eq!(ask(&mut captive, REQUEST).status(), 302);

    proxy.set_link(Link::Up);
    let mut fresh = connect(proxy.addr());
    get(&mut fresh);
    assert_eq!(expect_dead(&mut captive, REQUEST), 0);

    assert_eq!(seen.requests(), 1);
    let stats = proxy.stats();
    assert_eq!(stats.portal_replies, 1);
    assert_eq!(stats.reset_by_link, 1);
}

#[test]
fn changing_the_portal_resets_its_connections_too() {
    let (proxy, _seen) = portal_proxy(Portal::Redirect);
    let mut captive = connect(proxy.addr());
    assert_eq!(ask(&mut captive, REQUEST).status(), 302);

    proxy.set_link(Link::Portal(Portal::ProxyError(504)));
    assert_eq!(expect_dead(&mut captive, REQUEST), 0);
    let mut fresh = connect(proxy.addr());
    assert_eq!(ask(&mut fresh, REQUEST).status(), 504);
}

#[test]
fn cut_for_with_a_portal_restores_up() {
    let (upstream, seen) = http_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.cut_for(Duration::from_millis(300), Link::Portal(Portal::LoginPage));
    assert_eq!(proxy.link(), Link::Portal(Portal::LoginPage));
    let mut during = connect(proxy.addr());
    // The cut may already be over on a very slow machine; only check when it is not.
    let captive = proxy.link() == Link::Portal(Portal::LoginPage);
    if captive {
        assert_eq!(ask(&mut during, REQUEST).status(), 200);
    }

    wait_until("the link to come back up", || proxy.link() == Link::Up);
    let mut after = connect(proxy.addr());
    get(&mut after);
    assert_eq!(seen.requests(), 1);
    if captive {
        assert_eq!(expect_dead(&mut during, REQUEST), 0);
    }
}
