//! `Link` states and `cut_for`.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::Duration;

use fault_proxy::{FaultProxy, Link};

use crate::support::*;

#[test]
fn up_forwards_both_ways_and_counts_bytes() {
    let (upstream, seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    assert_eq!(proxy.link(), Link::Up);
    assert_eq!(
        proxy.url(),
        format!("http://127.0.0.1:{}", proxy.addr().port())
    );

    let mut client = connect(proxy.addr());
    echo(&mut client, b"hello");
    echo(&mut client, b"world!");
    // A half-close travels through: the echo server sees EOF and closes, so do we.
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    assert_eq!(seen.bytes(), 11);
    wait_until("the connection to finish", || proxy.stats().open == 0);
    let stats = proxy.stats();
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.bytes_to_upstream, 11);
    assert_eq!(stats.bytes_to_client, 11);
    assert_eq!(
        stats.refused + stats.reset_by_link + stats.dropped_by_faults(),
        0
    );
}

#[test]
fn up_carries_a_megabyte_each_way_with_backpressure() {
    let (upstream, seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    let client = connect(proxy.addr());
    let data: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();

    let mut writer = client.try_clone().unwrap();
    let sent = data.clone();
    let writing = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    let mut reader = client;
    reader.read_to_end(&mut back).unwrap();
    writing.join().unwrap();

    assert!(back == data, "the echoed stream differs");
    assert_eq!(seen.bytes(), data.len());
    let stats = proxy.stats();
    assert_eq!(stats.bytes_to_upstream, data.len() as u64);
    assert_eq!(stats.bytes_to_client, data.len() as u64);
}

#[test]
fn refuse_resets_new_connections_at_once() {
    let (upstream, seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_link(Link::Refuse);
    assert_eq!(proxy.link(), Link::Refuse);

    let mut client = connect(proxy.addr());
    assert_eq!(expect_dead(&mut client, b"hello"), 0);

    let stats = proxy.stats();
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.refused, 1);
    assert_eq!(stats.bytes_to_upstream, 0);
    assert_eq!(
        seen.connections(),
        0,
        "a refused connection never reaches the upstream"
    );
}

#[test]
fn refuse_resets_an_existing_connection_and_up_serves_new_ones() {
    let (upstream, seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    let mut before = connect(proxy.addr());
    echo(&mut before, b"ping");

    proxy.set_link(Link::Refuse);
    assert_eq!(expect_dead(&mut before, b"lost"), 0);
    assert_eq!(proxy.stats().reset_by_link, 1);

    proxy.set_link(Link::Up);
    let mut after = connect(proxy.addr());
    echo(&mut after, b"pong");
    assert_eq!(
        seen.bytes(),
        8,
        "nothing sent during the outage reached the upstream"
    );
    assert_eq!(proxy.stats().refused, 0);
}

#[test]
fn blackhole_stalls_existing_and_new_connections_then_up_resets_them_and_serves_new_ones() {
    let (upstream, seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    let mut existing = connect(proxy.addr());
    echo(&mut existing, b"ping");

    proxy.set_link(Link::Blackhole);
    expect_stall(&mut existing, b"held");
    let mut born_in_the_dark = connect(proxy.addr());
    expect_stall(&mut born_in_the_dark, b"never");
    assert_eq!(
        seen.connections(),
        1,
        "a blackholed connection never reaches the upstream"
    );
    let stats = proxy.stats();
    assert_eq!(stats.reset_by_link, 0, "a blackhole closes nothing");
    assert_eq!(stats.bytes_to_upstream, 4);

    proxy.set_link(Link::Up);
    let mut fresh = connect(proxy.addr());
    echo(&mut fresh, b"pong");
    // Documented choice: connections that lived through the blackhole are reset, not resumed.
    assert_eq!(expect_dead(&mut existing, b"x"), 0);
    assert_eq!(expect_dead(&mut born_in_the_dark, b"x"), 0);

    let stats = proxy.stats();
    assert_eq!(stats.reset_by_link, 2);
    assert_eq!(stats.accepted, 3);
    assert_eq!(
        seen.bytes(),
        8,
        "held bytes were dropped, not delivered late"
    );
}

#[test]
fn setting_the_same_link_again_disturbs_nothing() {
    let (upstream, _seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    let mut client = connect(proxy.addr());
    echo(&mut client, b"one");
    proxy.set_link(Link::Up);
    echo(&mut client, b"two");
    assert_eq!(proxy.stats().reset_by_link, 0);
}

#[test]
fn cut_for_returns_to_up_by_itself() {
    let (upstream, _seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.cut_for(Duration::from_millis(200), Link::Refuse);
    assert_eq!(proxy.link(), Link::Refuse);
    let mut during = connect(proxy.addr());
    // The cut may already be over on a very slow machine; only check when it is not.
    if proxy.link() == Link::Refuse {
        expect_dead(&mut during, b"x");
    }

    wait_until("the link to come back up", || proxy.link() == Link::Up);
    let mut after = connect(proxy.addr());
    echo(&mut after, b"back");
}

#[test]
fn a_later_set_link_cancels_the_cut_for_restore() {
    let (upstream, _seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.cut_for(Duration::from_millis(50), Link::Blackhole);
    proxy.set_link(Link::Refuse);
    // Not a timing assertion: a slow machine can only make this pass vacuously.
    thread::sleep(Duration::from_millis(300));
    assert_eq!(proxy.link(), Link::Refuse);
}
