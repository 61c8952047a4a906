//! How soon the network monitor notices: the link cut (connections reset), the link
//! blackholed (a pulled cable: nothing answers), and the server stopped and restarted —
//! each 5 times, with the default timings. Budget: offline ≤ 1 s, online ≤ 1 s.
//!
//! `cargo bench -p exam-core --bench network`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use exam_core::bus::EventBus;
use exam_core::http::HttpClient;
use exam_core::network::{MonitorConfig, NetworkMonitor};
use fault_proxy::{FaultProxy, Link};

const ROUNDS: usize = 5;

async fn serve(addr: SocketAddr, db: &std::path::Path) -> exam_server::Running {
    let config = exam_server::Config {
        demo: true,
        ..exam_server::Config::new(db.to_path_buf())
    };
    exam_server::Server::spawn(addr, config).await.unwrap()
}

async fn until(monitor: &NetworkMonitor, usable: bool) -> Duration {
    let start = Instant::now();
    while monitor.status().state.is_usable() != usable {
        assert!(start.elapsed() < Duration::from_secs(30), "no change");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(what: &str, down: Vec<Duration>, up: Vec<Duration>) {
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    println!(
        "  {what}: offline noticed median {:.0} ms (max {:.0}), online again median {:.0} ms (max {:.0})   (budget ≤ 1000 / ≤ 1000 ms)",
        median(down.clone()).as_secs_f64() * 1000.0,
        max(&down).as_secs_f64() * 1000.0,
        median(up.clone()).as_secs_f64() * 1000.0,
        max(&up).as_secs_f64() * 1000.0,
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("net.db");
    let mut server = serve("127.0.0.1:0".parse().unwrap(), &db).await;
    let addr = server.addr;
    let proxy = FaultProxy::start(addr).unwrap();
    let monitor = NetworkMonitor::spawn(
        MonitorConfig::new(format!("{}/", proxy.url()).parse().unwrap()),
        HttpClient::new("bench").unwrap(),
        EventBus::default(),
        None,
    )
    .unwrap();
    until(&monitor, true).await;
    println!("network monitor, {ROUNDS} rounds each (random phase against the probe interval):");

    for (name, link) in [
        ("link cut (reset)", Link::Refuse),
        ("link blackholed", Link::Blackhole),
    ] {
        let (mut down, mut up) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            tokio::time::sleep(Duration::from_millis(300 + 137 * round as u64)).await;
            proxy.set_link(link);
            down.push(until(&monitor, false).await);
            tokio::time::sleep(Duration::from_millis(200 + 91 * round as u64)).await;
            proxy.set_link(Link::Up);
            up.push(until(&monitor, true).await);
        }
        report(name, down, up);
    }

    let (mut down, mut up) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        tokio::time::sleep(Duration::from_millis(300 + 137 * round as u64)).await;
        server.stop().await;
        down.push(until(&monitor, false).await);
        tokio::time::sleep(Duration::from_millis(200 + 91 * round as u64)).await;
        server = serve(addr, &db).await;
        up.push(until(&monitor, true).await);
    }
    report("server stopped and restarted", down, up);
    monitor.stop();
}
