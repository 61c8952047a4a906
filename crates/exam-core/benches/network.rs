//! How soon the network monitor notices: the link cut (connections reset), the link
//! blackholed (a pulled cable: nothing answers), the server stopped and restarted, and a
//! captive portal appearing and going — each 5 times, with the default timings. Budget:
//! offline ≤ 1 s, online ≤ 1 s, portal ≤ 1 s. Then slow links from a fresh start (300 ms and
//! 3 s round trips): how soon the app may send (budget ≤ 5 s), and answers delivered at the
//! link's pace.
//!
//! `cargo bench -p exam-core --bench network` (`NETWORK_BENCH_ONLY=fast,portal,slow`)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_core::app::{Core, CoreBuilder};
use exam_core::bus::EventBus;
use exam_core::config::{LoadedConfig, Settings};
use exam_core::http::HttpClient;
use exam_core::lifecycle::Workers;
use exam_core::network::{MonitorConfig, NetState, NetworkMonitor};
use exam_core::queue::{NewEntry, Queue};
use exam_core::secret::Secret;
use exam_core::testing::MemoryStore;
use fault_proxy::{FaultProxy, Link, Portal};

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

fn wanted(phase: &str) -> bool {
    std::env::var("NETWORK_BENCH_ONLY")
        .map(|only| only.split(',').any(|p| p.trim() == phase))
        .unwrap_or(true)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("net.db");
    let server = serve("127.0.0.1:0".parse().unwrap(), &db).await;
    if wanted("fast") {
        fast(server, &db).await;
    } else {
        drop(server);
    }
    if wanted("portal") {
        portal(&dir.path().join("portal.db")).await;
    }
    if wanted("slow") {
        for each_way in [150, 1500] {
            slow(&dir.path().join(format!("slow{each_way}.db")), each_way).await;
        }
    }
}

async fn fast(mut server: exam_server::Running, db: &std::path::Path) {
    let addr = server.addr;
    let proxy = FaultProxy::start(addr).unwrap();
    let workers = Workers::new().unwrap();
    let monitor = NetworkMonitor::spawn(
        &workers,
        MonitorConfig::new(format!("{}/", proxy.url()).parse().unwrap()),
        HttpClient::new("bench").unwrap(),
        EventBus::default(),
        None,
    );
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
        server = serve(addr, db).await;
        up.push(until(&monitor, true).await);
    }
    report("server stopped and restarted", down, up);
    drop(workers);
}

/// A portal appearing while the app is idle (only probes meet it) and while answers are
/// being sent (a request may meet it first).
async fn portal(db: &std::path::Path) {
    let server = serve("127.0.0.1:0".parse().unwrap(), db).await;
    let proxy = FaultProxy::start(server.addr).unwrap();
    let lab = Lab::start(&proxy).await;
    until(&lab.monitor, true).await;
    for (name, kind) in [
        ("portal (redirect)", Portal::Redirect),
        ("portal (login page, 200)", Portal::LoginPage),
    ] {
        let (mut seen, mut gone) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            tokio::time::sleep(Duration::from_millis(300 + 137 * round as u64)).await;
            proxy.set_link(Link::Portal(kind));
            if round % 2 == 1 {
                lab.save(40);
            }
            let start = Instant::now();
            while lab.monitor.status().state != NetState::CaptivePortal {
                assert!(start.elapsed() < Duration::from_secs(30), "no portal seen");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            seen.push(start.elapsed());
            tokio::time::sleep(Duration::from_millis(200 + 91 * round as u64)).await;
            proxy.set_link(Link::Up);
            gone.push(until(&lab.monitor, true).await);
        }
        lab.drained().await;
        println!(
            "  {name}: noticed median {:.0} ms (max {:.0}), gone median {:.0} ms (max {:.0})   (budget ≤ 1000 ms); dead letters {}",
            median(seen.clone()).as_secs_f64() * 1000.0,
            seen.iter().max().unwrap().as_secs_f64() * 1000.0,
            median(gone.clone()).as_secs_f64() * 1000.0,
            gone.iter().max().unwrap().as_secs_f64() * 1000.0,
            lab.queue.counts().unwrap().dead,
        );
    }
}

/// A fresh start on a link with `each_way` ms of latency each way.
async fn slow(db: &std::path::Path, each_way: u64) {
    let server = serve("127.0.0.1:0".parse().unwrap(), db).await;
    let proxy = FaultProxy::start(server.addr).unwrap();
    let latency = Duration::from_millis(each_way);
    proxy.set_latency(latency, latency);
    let lab = Lab::start(&proxy).await;
    let started = lab.started;
    until(&lab.monitor, true).await;
    let usable = started.elapsed();
    let state = lab.monitor.status();
    let (n, start) = (400, Instant::now());
    lab.save(n);
    lab.drained().await;
    let took = start.elapsed();
    println!(
        "  slow link, {} ms round trips: usable {:.1} s after start (budget ≤ 5 s), shown {:?} (rtt {:.0} ms); {n} answers delivered in {:.1} s = {:.0} ops/s; dead letters {}",
        2 * each_way,
        usable.as_secs_f64(),
        state.state,
        state.rtt_ms.unwrap_or(0.0),
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        lab.queue.counts().unwrap().dead,
    );
}

/// Signed in behind `proxy`: the whole core, as the app builds it.
struct Lab {
    queue: Queue,
    monitor: Arc<NetworkMonitor>,
    _core: Core,
    _dir: tempfile::TempDir,
    attempt: String,
    owner: exam_core::owner::Owner,
    started: Instant,
    saved: std::sync::atomic::AtomicUsize,
}

impl Lab {
    async fn start(proxy: &FaultProxy) -> Self {
        let base: url::Url = format!("{}/", proxy.url()).parse().unwrap();
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::new(base, dir.path().to_path_buf());
        let core = CoreBuilder::new(
            LoadedConfig::from_settings(settings),
            Arc::new(MemoryStore::default()),
        )
        .http(HttpClient::new("bench").unwrap())
        .start()
        .unwrap();
        core.sign_in("student3", Secret::new("demo".into()))
            .await
            .unwrap();
        let services = core.services().unwrap();
        let (queue, monitor) = (services.queue.clone(), services.monitor.clone().unwrap());
        let owner = core.auth().owner().unwrap();
        let attempt = uuid::Uuid::new_v4().to_string();
        queue
            .enqueue(
                NewEntry::start_attempt("demo-mixed", &attempt, &exam_core::now_rfc3339())
                    .owned_by(&owner),
            )
            .unwrap();
        Self {
            queue,
            monitor,
            _core: core,
            _dir: dir,
            attempt,
            owner,
            started,
            saved: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// `n` distinct answer saves (short-answer questions; none coalesced).
    fn save(&self, n: usize) {
        let now = exam_core::now_rfc3339();
        let first = self.saved.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
        let entries = (first..first + n)
            .map(|i| {
                let mut e = NewEntry::answer(
                    &self.attempt,
                    &format!("q{:02}", 3 + 4 * (i % 5)),
                    serde_json::json!(format!("answer {i}")),
                    &now,
                )
                .owned_by(&self.owner);
                e.coalesce_key = None;
                e
            })
            .collect();
        self.queue.enqueue_many(entries).unwrap();
    }

    async fn drained(&self) {
        let start = Instant::now();
        while self.queue.remaining().unwrap() > 0 {
            assert!(start.elapsed() < Duration::from_secs(300), "not drained");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
