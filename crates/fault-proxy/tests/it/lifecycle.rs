//! Dropping the proxy.

use std::io;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use fault_proxy::{FaultProxy, Link};

use crate::support::*;

#[test]
fn drop_closes_the_port_and_every_connection_even_blackholed_ones() {
    let (upstream, _seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    let addr = proxy.addr();
    let mut idle = connect(addr);
    echo(&mut idle, b"ping");
    proxy.set_link(Link::Blackhole);
    let mut stalled = connect(addr);
    expect_stall(&mut stalled, b"held");

    // Drop joins every thread; run it aside so a hang fails the test instead of wedging it.
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        drop(proxy);
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(HANG_GUARD)
        .expect("drop did not return: some thread was not stopped");

    assert_eq!(expect_dead(&mut idle, b"x"), 0);
    assert_eq!(expect_dead(&mut stalled, b"x"), 0);
    let err = TcpStream::connect(addr).expect_err("the port still accepts");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn drop_cancels_a_pending_cut_for_without_waiting_for_it() {
    let (upstream, _seen) = echo_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.cut_for(Duration::from_secs(3600), Link::Blackhole);
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        drop(proxy);
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(HANG_GUARD)
        .expect("drop waited for the cut_for timer");
}
