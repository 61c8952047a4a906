//! Random faults while the link is up.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use fault_proxy::{FaultProxy, Faults};

use crate::support::*;

#[test]
fn drop_response_lets_the_server_apply_the_request_but_the_client_hears_nothing() {
    let (upstream, seen) = http_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_faults(Faults {
        drop_response: 1.0,
        ..Faults::default()
    });

    let mut client = connect(proxy.addr());
    let received = expect_dead(&mut client, REQUEST);

    assert_eq!(received, 0, "not a single byte of the response may arrive");
    assert_eq!(seen.requests(), 1, "the server handled the request");
    let stats = proxy.stats();
    assert_eq!(stats.dropped_responses, 1);
    assert_eq!(stats.dropped_requests, 0);
    assert_eq!(stats.bytes_to_upstream, REQUEST.len() as u64);
    assert_eq!(stats.bytes_to_client, 0);
}

#[test]
fn drop_request_resets_before_the_server_sees_anything() {
    let (upstream, seen) = http_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_faults(Faults {
        drop_request: 1.0,
        ..Faults::default()
    });

    let mut client = connect(proxy.addr());
    assert_eq!(expect_dead(&mut client, REQUEST), 0);

    let stats = proxy.stats();
    assert_eq!(stats.dropped_requests, 1);
    assert_eq!(stats.dropped_responses, 0);
    assert_eq!(stats.bytes_to_upstream, 0);
    assert_eq!(seen.requests(), 0);
    assert_eq!(seen.bytes(), 0);
}

#[test]
fn the_same_seed_gives_the_same_faults_for_sequential_requests() {
    let outcomes = |seed| {
        let (upstream, seen) = http_server();
        let proxy = FaultProxy::start(upstream).unwrap();
        proxy.set_faults(Faults {
            seed,
            drop_response: 0.5,
            ..Faults::default()
        });
        let pattern: Vec<bool> = (0..24)
            .map(|_| {
                let mut client = connect(proxy.addr());
                answered(&mut client, REQUEST, RESPONSE.len())
            })
            .collect();
        // Every request reached the server, answered or not.
        assert_eq!(seen.requests(), pattern.len());
        let lost = pattern.iter().filter(|answered| !**answered).count() as u64;
        assert_eq!(proxy.stats().dropped_responses, lost);
        pattern
    };
    let first = outcomes(11);
    assert_eq!(first, outcomes(11));
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
}

#[test]
fn delays_still_deliver_everything() {
    let (upstream, seen) = http_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_faults(Faults {
        seed: 5,
        delay_min: Duration::from_millis(5),
        delay_max: Duration::from_millis(30),
        ..Faults::default()
    });
    let mut client = connect(proxy.addr());
    for _ in 0..5 {
        get(&mut client);
    }
    assert_eq!(seen.requests(), 5);
    assert_eq!(proxy.stats().bytes_to_client, 5 * RESPONSE.len() as u64);
}

#[test]
fn set_faults_default_turns_faults_off() {
    let (upstream, _seen) = http_server();
    let proxy = FaultProxy::start(upstream).unwrap();
    proxy.set_faults(Faults {
        drop_request: 1.0,
        ..Faults::default()
    });
    proxy.set_faults(Faults::default());
    let mut client = connect(proxy.addr());
    get(&mut client);
    assert_eq!(proxy.stats().dropped_by_faults(), 0);
}

#[test]
fn an_unreachable_upstream_resets_the_client() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let proxy = FaultProxy::start(closed).unwrap();
    let mut client = connect(proxy.addr());
    assert_eq!(expect_dead(&mut client, REQUEST), 0);
    assert_eq!(proxy.stats().upstream_unreachable, 1);
}

/// Writes `msg`; true if `len` bytes come back, false if the connection dies first.
fn answered(stream: &mut TcpStream, msg: &[u8], len: usize) -> bool {
    stream.write_all(msg).unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; len];
    while got < len {
        match stream.read(&mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return false,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    true
}
