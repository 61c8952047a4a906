//! The network monitor against the real reference server, through the fault proxy, and
//! against a fake captive portal: the states, the events and the outage log.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_core::bus::{CoreEvent, EventBus};
use exam_core::http::HttpClient;
use exam_core::network::{self, MonitorConfig, NetState, NetworkMonitor};
use exam_core::store::Store;
use fault_proxy::{FaultProxy, Link};

use crate::support::Server;

async fn wait_for(monitor: &NetworkMonitor, state: NetState) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while monitor.status().state != state {
        assert!(
            Instant::now() < deadline,
            "still {:?}, not {state:?}",
            monitor.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_blackholed_and_stopped_are_told_apart_and_every_outage_is_logged() {
    let mut server = Server::start(900).await;
    let proxy = FaultProxy::start(server.addr).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_in(dir.path()).unwrap());
    let bus = EventBus::default();
    let mut events = bus.subscribe();
    let workers = exam_core::lifecycle::Workers::new().unwrap();
    let monitor = NetworkMonitor::spawn(
        &workers,
        MonitorConfig::new(format!("{}/", proxy.url()).parse().unwrap()),
        HttpClient::new("tests").unwrap(),
        bus.clone(),
        Some(store.clone()),
    );
    wait_for(&monitor, NetState::Online).await;
    assert!(monitor.status().rtt_ms.is_some());

    // Connections reset: the server's side refuses.
    proxy.set_link(Link::Refuse);
    wait_for(&monitor, NetState::ServerDown).await;
    proxy.set_link(Link::Up);
    wait_for(&monitor, NetState::Online).await;

    // Nothing answers at all: offline.
    proxy.set_link(Link::Blackhole);
    wait_for(&monitor, NetState::Offline).await;
    assert!(
        matches!(
            monitor.status().reason,
            Some(exam_core::reason::Reason::NoAnswer { .. })
        ),
        "{:?}",
        monitor.status()
    );
    proxy.set_link(Link::Up);
    wait_for(&monitor, NetState::Online).await;

    // The server itself stops.
    let db_dir = server.stop().await;
    wait_for(&monitor, NetState::ServerDown).await;
    let _restarted = Server::start_at(
        server.addr,
        crate::support::config(db_dir.as_ref().unwrap().path().join("s.db"), 900),
    )
    .await;
    wait_for(&monitor, NetState::Online).await;
    workers.shutdown(Duration::from_secs(5));

    let outages = network::outages(&store, 10).unwrap();
    assert_eq!(outages.len(), 3, "{outages:?}");
    let states: Vec<&str> = outages.iter().rev().map(|o| o.state.as_str()).collect();
    assert_eq!(states, ["server_down", "offline", "server_down"]);
    for outage in &outages {
        let (start, end) = (outage.started_at_ms, outage.ended_at_ms.unwrap());
        assert!(end >= start);
        assert_eq!(outage.duration_ms.unwrap(), end - start);
    }
    // Windows were told, typed.
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let CoreEvent::NetworkChanged { status } = event {
            seen.push(status.state);
        }
    }
    assert!(seen.contains(&NetState::Offline) && seen.contains(&NetState::ServerDown));
    drop(db_dir);
}

/// A network that answers every request with a redirect to its login page.
fn captive_portal() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 302 Found\r\nLocation: http://login.lab.example/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captive_portal_is_recognised_and_named() {
    let portal = captive_portal();
    let workers = exam_core::lifecycle::Workers::new().unwrap();
    let monitor = NetworkMonitor::spawn(
        &workers,
        MonitorConfig::new(format!("http://{portal}/").parse().unwrap()),
        HttpClient::new("tests").unwrap(),
        EventBus::default(),
        None,
    );
    wait_for(&monitor, NetState::CaptivePortal).await;
    assert_eq!(
        monitor.status().reason,
        Some(exam_core::reason::Reason::PortalSignIn {
            host: Some("login.lab.example".into())
        })
    );
}
