//! `set_latency`: a long link. Lower bounds are what the latency guarantees; the upper bounds
//! are loose functional checks (chunks overlap, portals are not delayed), not benchmarks.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fault_proxy::{FaultProxy, Faults, Link, Portal};

use crate::support::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn latency_reads_back_and_is_capped() {
    let (upstream, _seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    assert_eq!(proxy.latency(), (Duration::ZERO, Duration::ZERO));
    proxy.set_latency(ms(30), ms(70));
    assert_eq!(proxy.latency(), (ms(30), ms(70)));
    proxy.set_latency(Duration::MAX, Duration::ZERO);
    assert_eq!(proxy.latency(), (Duration::from_secs(3600), Duration::ZERO));
}

#[test]
fn a_round_trip_takes_at_least_both_latencies() {
    let (upstream, seen) = http_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    let (to_upstream, to_client) = (ms(150), ms(100));
    proxy.set_latency(to_upstream, to_client);

    let mut client = connect(proxy.addr());
    for _ in 0..2 {
        let start = Instant::now();
        get(&mut client);
        let took = start.elapsed();
        assert!(
            took >= to_upstream + to_client,
            "a round trip took {took:?}"
        );
    }
    assert_eq!(seen.requests(), 2);
    assert_eq!(proxy.stats().bytes_to_client, 2 * RESPONSE.len() as u64);
}

#[test]
fn a_burst_of_chunks_overlaps_in_flight_and_keeps_its_order() {
    let (upstream, seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_latency(ms(200), ms(200));
    let mut client = connect(proxy.addr());
    client.set_nodelay(true).unwrap();

    let chunks: Vec<String> = (0..10).map(|i| format!("chunk-{i:02};")).collect();
    let start = Instant::now();
    for chunk in &chunks {
        client.write_all(chunk.as_bytes()).unwrap();
        // Apart enough to be read as separate chunks by the proxy.
        thread::sleep(ms(10));
    }
    let expected = chunks.concat();
    let mut back = vec![0u8; expected.len()];
    client.read_exact(&mut back).unwrap();
    let took = start.elapsed();

    assert_eq!(
        String::from_utf8(back).unwrap(),
        expected,
        "order preserved"
    );
    assert!(took >= ms(400), "faster than the latency: {took:?}");
    // One chunk at a time would take 10 × 400 ms.
    assert!(
        took < Duration::from_secs(2),
        "chunks did not overlap: {took:?}"
    );
    assert_eq!(seen.bytes(), expected.len());
}

#[test]
fn lowering_the_latency_applies_to_later_chunks_without_reordering() {
    let (upstream, _seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_latency(ms(300), Duration::ZERO);
    let mut client = connect(proxy.addr());
    client.write_all(b"slow;").unwrap();
    thread::sleep(ms(20));
    proxy.set_latency(Duration::ZERO, Duration::ZERO);
    client.write_all(b"fast;").unwrap();
    let mut back = [0u8; 10];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"slow;fast;", "the fast chunk did not overtake");

    let start = Instant::now();
    echo(&mut client, b"now");
    assert!(start.elapsed() < ms(300), "the old latency still applied");
}

#[test]
fn blackhole_holds_chunks_in_flight_and_up_still_resets() {
    let (upstream, seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_latency(ms(200), ms(200));
    let mut existing = connect(proxy.addr());
    echo(&mut existing, b"ping");

    // In flight when the blackhole starts; it comes due during it and is held, not delivered.
    existing.write_all(b"held").unwrap();
    proxy.set_link(Link::Blackhole);
    expect_stall(&mut existing, b"");
    let mut born_in_the_dark = connect(proxy.addr());
    expect_stall(&mut born_in_the_dark, b"never");
    assert_eq!(proxy.stats().reset_by_link, 0, "a blackhole closes nothing");

    proxy.set_link(Link::Up);
    assert_eq!(expect_dead(&mut existing, b"x"), 0);
    assert_eq!(expect_dead(&mut born_in_the_dark, b"x"), 0);
    let mut fresh = connect(proxy.addr());
    echo(&mut fresh, b"pong");

    assert_eq!(proxy.stats().reset_by_link, 2);
    assert_eq!(
        seen.bytes(),
        8,
        "held bytes were dropped, not delivered late"
    );
}

#[test]
fn refuse_resets_at_once_whatever_is_in_flight() {
    let (upstream, seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_latency(Duration::from_secs(2), Duration::from_secs(2));
    let mut client = connect(proxy.addr());
    client.write_all(b"in flight").unwrap();
    thread::sleep(ms(20));

    let start = Instant::now();
    proxy.set_link(Link::Refuse);
    assert_eq!(expect_dead(&mut client, b""), 0);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the reset waited for the latency"
    );
    assert_eq!(seen.bytes(), 0);
    assert_eq!(proxy.stats().reset_by_link, 1);
}

#[test]
fn faults_still_apply_with_latency() {
    let (upstream, seen) = http_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_latency(ms(100), ms(100));
    proxy.set_faults(Faults {
        drop_response: 1.0,
        ..Faults::default()
    });
    let mut client = connect(proxy.addr());
    assert_eq!(expect_dead(&mut client, REQUEST), 0);
    assert_eq!(seen.requests(), 1, "the server handled the request");
    let stats = proxy.stats();
    assert_eq!(stats.dropped_responses, 1);
    assert_eq!(stats.bytes_to_client, 0);
}

#[test]
fn portal_replies_are_not_delayed() {
    let (upstream, _seen) = http_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_latency(Duration::from_secs(1), Duration::from_secs(1));
    proxy.set_link(Link::Portal(Portal::ProxyError(502)));
    let mut client = connect(proxy.addr());
    let start = Instant::now();
    client.write_all(REQUEST).unwrap();
    let mut status = [0u8; 12];
    client.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"HTTP/1.1 502");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "the portal reply waited for the latency"
    );
}

#[test]
fn drop_with_chunks_in_flight_returns_promptly() {
    let (upstream, _seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_latency(Duration::from_secs(60), Duration::from_secs(60));
    let mut client = connect(proxy.addr());
    client.write_all(b"in flight").unwrap();
    thread::sleep(ms(20));

    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        drop(proxy);
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(HANG_GUARD)
        .expect("drop waited for the chunks in flight");
    assert_eq!(expect_dead(&mut client, b""), 0);
}
