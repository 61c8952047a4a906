//! The sync engine and the network monitor on networks as schools have them, through the
//! fault proxy to the real reference server: a captive portal (a redirect to its login page,
//! or the page itself with `200`), a proxy answering with its own error page, a portal that
//! appears right after the link drops, and slow links (150 ms each way from the start; a
//! link that slows from 2 ms to 300 ms, then to 1.5 s each way). Whatever the network does,
//! no answer becomes a dead letter because of it, and every answer arrives exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_core::app::Core;
use exam_core::network::{NetState, NetworkMonitor};
use exam_core::queue::{NewEntry, Queue};
use exam_core::sync::SyncConfig;
use fault_proxy::{FaultProxy, Link, Portal, PORTAL_HOST};
use serde_json::{json, Value};

use crate::support::{admin_attempt, drained, signed_in_core, text_questions, Server};

/// The app's core behind a proxy: signed in, a queue, the monitor and the sync engine.
struct Lab {
    server: Server,
    proxy: FaultProxy,
    core: Core,
    queue: Queue,
    monitor: Arc<NetworkMonitor>,
    _dir: tempfile::TempDir,
    attempt: String,
    questions: Vec<String>,
    owner: exam_core::owner::Owner,
}

impl Lab {
    /// `latency` each way is set before anything is sent (a fresh start on a slow link).
    async fn start(latency: Duration) -> Self {
        let server = Server::start(900).await;
        let proxy = FaultProxy::start(server.addr).unwrap();
        proxy.set_latency(latency, latency);
        let base: url::Url = format!("{}/", proxy.url()).parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let core =
            signed_in_core(base.clone(), dir.path(), SyncConfig::default(), "student12").await;
        let questions = text_questions(core.auth()).await;
        let owner = core.auth().owner().unwrap();
        let services = core.services().unwrap();
        let (queue, monitor) = (services.queue.clone(), services.monitor.clone().unwrap());
        let attempt = uuid::Uuid::new_v4().to_string();
        queue
            .enqueue(
                NewEntry::start_attempt("demo-mixed", &attempt, &exam_core::now_rfc3339())
                    .owned_by(&owner),
            )
            .unwrap();
        Self {
            server,
            proxy,
            queue,
            monitor,
            core,
            _dir: dir,
            attempt,
            questions,
            owner,
        }
    }

    /// Saves `text` as the answer to the `i`-th text question (wrapping); its id.
    fn save(&self, i: usize, text: &str) -> String {
        let question = &self.questions[i % self.questions.len()];
        self.queue
            .enqueue(
                NewEntry::answer(
                    &self.attempt,
                    question,
                    json!(text),
                    &exam_core::now_rfc3339(),
                )
                .owned_by(&self.owner),
            )
            .unwrap();
        question.clone()
    }

    fn dead(&self) -> u32 {
        self.queue.counts().unwrap().dead
    }

    async fn until(&self, what: &str, within: Duration, ok: impl Fn(NetState) -> bool) {
        let deadline = Instant::now() + within;
        while !ok(self.monitor.status().state) {
            assert!(
                Instant::now() < deadline,
                "{what}: still {:?}",
                self.monitor.status()
            );
            assert_eq!(self.dead(), 0, "{:?}", self.queue.dead_letters(5));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every question holds the text saved last (`saves` in the order they were made).
    async fn server_holds(&self, saves: &[(String, String)]) -> Value {
        let mut last = std::collections::BTreeMap::new();
        for (question, text) in saves {
            last.insert(question.clone(), text.clone());
        }
        let held = admin_attempt(&self.server, &self.attempt).await;
        for (question, text) in &last {
            assert_eq!(
                held["answers"][question]["value"],
                json!(text),
                "{question}"
            );
        }
        held
    }
}

async fn through_a_portal(portal: Portal, expected: NetState) {
    let lab = Lab::start(Duration::ZERO).await;
    lab.until("online", Duration::from_secs(20), NetState::is_usable)
        .await;
    let mut saves = Vec::new();
    for i in 0..5 {
        let text = format!("before {i}");
        saves.push((lab.save(i, &text), text));
    }
    drained(&lab.queue, Duration::from_secs(20)).await;

    // The Wi-Fi comes back behind the portal; the student goes on typing. The first saves
    // meet the portal before any probe does.
    lab.proxy.set_link(Link::Portal(portal));
    for i in 0..30 {
        let text = format!("during {i}");
        saves.push((lab.save(i, &text), text));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(lab.dead(), 0, "{:?}", lab.queue.dead_letters(5));
    }
    lab.until("the portal named", Duration::from_secs(5), |s| {
        s == expected
    })
    .await;
    let status = lab.monitor.status();
    if portal == Portal::Redirect {
        assert_eq!(
            status.reason,
            Some(exam_core::reason::Reason::PortalSignIn {
                host: Some(PORTAL_HOST.into())
            }),
            "{status:?}"
        );
    }
    assert!(lab.proxy.stats().portal_replies > 0);
    assert!(lab.core.auth().http().interceptions() > 0 || status.state == expected);
    // Nothing was taken for delivered while the portal answered.
    assert!(lab.queue.remaining().unwrap() > 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(lab.dead(), 0);

    // The portal goes: everything is delivered by itself, once.
    lab.proxy.set_link(Link::Up);
    lab.until("online again", Duration::from_secs(10), NetState::is_usable)
        .await;
    drained(&lab.queue, Duration::from_secs(30)).await;
    assert_eq!(lab.dead(), 0, "{:?}", lab.queue.dead_letters(5));
    let held = lab.server_holds(&saves).await;
    // A save that the server applied is never applied again: at most one write per save.
    assert!(held["applied_writes"].as_u64().unwrap() <= saves.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_saved_behind_a_portal_redirect_are_never_dead_and_all_arrive_after_it() {
    through_a_portal(Portal::Redirect, NetState::CaptivePortal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_page_served_with_200_is_never_taken_for_delivered() {
    through_a_portal(Portal::LoginPage, NetState::CaptivePortal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxys_own_503_page_is_retried_not_dead() {
    through_a_portal(Portal::ProxyError(503), NetState::ServerDown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_right_after_the_link_drops_kills_pooled_connections_and_loses_nothing() {
    let lab = Lab::start(Duration::ZERO).await;
    lab.until("online", Duration::from_secs(20), NetState::is_usable)
        .await;
    let mut saves = Vec::new();
    for i in 0..3 {
        let text = format!("warm {i}");
        saves.push((lab.save(i, &text), text));
    }
    drained(&lab.queue, Duration::from_secs(20)).await;
    // The access point drops (requests in flight stall on pooled connections)…
    lab.proxy.set_link(Link::Blackhole);
    for i in 0..10 {
        let text = format!("dropped {i}");
        saves.push((lab.save(i, &text), text));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    // …and comes back behind the portal: the stalled connections are dead.
    lab.proxy.set_link(Link::Portal(Portal::LoginPage));
    for i in 0..10 {
        let text = format!("portal {i}");
        saves.push((lab.save(i + 3, &text), text));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    lab.until("the portal named", Duration::from_secs(10), |s| {
        s == NetState::CaptivePortal
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(lab.dead(), 0);
    lab.proxy.set_link(Link::Up);
    drained(&lab.queue, Duration::from_secs(40)).await;
    assert_eq!(lab.dead(), 0, "{:?}", lab.queue.dead_letters(5));
    lab.server_holds(&saves).await;
}

/// Saves `n` answers and waits for them; the delivery rate at the link's pace is printed.
async fn deliver(lab: &Lab, label: &str, n: usize, saves: &mut Vec<(String, String)>) {
    let started = Instant::now();
    for i in 0..n {
        let text = format!("{label} {i}");
        saves.push((lab.save(i, &text), text));
    }
    drained(&lab.queue, Duration::from_secs(90)).await;
    println!(
        "{label}: {n} answers delivered in {:.1} s ({:.1}/s), link {:?}",
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64(),
        lab.monitor.status()
    );
    assert_eq!(lab.dead(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_from_the_start_is_used_not_called_offline() {
    let lab = Lab::start(Duration::from_millis(150)).await;
    lab.until("usable", Duration::from_secs(20), NetState::is_usable)
        .await;
    let status = lab.monitor.status();
    assert_eq!(status.state, NetState::Degraded, "{status:?}");
    assert!(status.rtt_ms.unwrap() >= 300.0, "{status:?}");
    assert!(
        matches!(status.reason, Some(exam_core::reason::Reason::Slow { rtt_ms }) if rtt_ms >= 300),
        "{status:?}"
    );
    let mut saves = Vec::new();
    deliver(&lab, "150 ms each way", 40, &mut saves).await;
    lab.server_holds(&saves).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_slows_to_300_ms_then_3_s_round_trips_keeps_delivering() {
    let lab = Lab::start(Duration::ZERO).await;
    lab.until("online", Duration::from_secs(20), |s| s == NetState::Online)
        .await;
    let mut saves = Vec::new();
    deliver(&lab, "fast", 20, &mut saves).await;

    lab.proxy
        .set_latency(Duration::from_millis(150), Duration::from_millis(150));
    deliver(&lab, "300 ms round trips", 20, &mut saves).await;
    lab.until("degraded", Duration::from_secs(30), |s| {
        s == NetState::Degraded
    })
    .await;

    lab.proxy
        .set_latency(Duration::from_millis(1500), Duration::from_millis(1500));
    tokio::time::sleep(Duration::from_secs(1)).await;
    deliver(&lab, "3 s round trips", 20, &mut saves).await;
    lab.until(
        "usable on a 3 s link",
        Duration::from_secs(30),
        NetState::is_usable,
    )
    .await;
    let status = lab.monitor.status();
    assert_eq!(status.state, NetState::Degraded, "{status:?}");
    lab.server_holds(&saves).await;
}

/// A server that answers its health check and sign-in at once but holds every write
/// without a reply while `stall` is set (a server whose database is locked, a proxy that
/// passes GETs and loses POSTs). A fake for one behaviour of the engine; the real server
/// is behind every other test here.
struct StallingServer {
    addr: std::net::SocketAddr,
    stall: Arc<std::sync::atomic::AtomicBool>,
    writes: Arc<std::sync::atomic::AtomicUsize>,
    /// How the token endpoint answers a refresh: 0 a new token, 1 `403 invalid_client`,
    /// 2 a redirect (something else answers it). Sign-in always works; its token lives 1 s
    /// while this is not 0.
    token_mode: Arc<std::sync::atomic::AtomicU8>,
    /// Refresh requests received.
    refreshes: Arc<std::sync::atomic::AtomicUsize>,
}

impl StallingServer {
    fn start() -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stall = Arc::new(AtomicBool::new(true));
        let writes = Arc::new(AtomicUsize::new(0));
        let token_mode = Arc::new(AtomicU8::new(0));
        let refreshes = Arc::new(AtomicUsize::new(0));
        let shared = (
            stall.clone(),
            writes.clone(),
            token_mode.clone(),
            refreshes.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    Self::serve(stream, &shared.0, &shared.1, &shared.2, &shared.3)
                });
            }
        });
        Self {
            addr,
            stall,
            writes,
            token_mode,
            refreshes,
        }
    }

    fn serve(
        mut stream: std::net::TcpStream,
        stall: &std::sync::atomic::AtomicBool,
        writes: &std::sync::atomic::AtomicUsize,
        token_mode: &std::sync::atomic::AtomicU8,
        refreshes: &std::sync::atomic::AtomicUsize,
    ) {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::Ordering;
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        loop {
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == "\r\n" {
                    break;
                }
                head.push(line);
            }
            let length = head
                .iter()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let first = head.first().cloned().unwrap_or_default();
            let mode = token_mode.load(Ordering::SeqCst);
            let refresh = String::from_utf8_lossy(&body).contains("grant_type=refresh_token");
            if refresh {
                refreshes.fetch_add(1, Ordering::SeqCst);
            }
            let (status, reply) = if first.starts_with("GET /healthz") {
                ("204 No Content", String::new())
            } else if refresh && mode == 1 {
                (
                    "403 Forbidden",
                    json!({"error": "invalid_client"}).to_string(),
                )
            } else if refresh && mode == 2 {
                let response = "HTTP/1.1 302 Found\r\nLocation: http://login.lab.example/\r\nContent-Length: 0\r\n\r\n";
                if stream.write_all(response.as_bytes()).is_err() {
                    return;
                }
                continue;
            } else if first.starts_with("POST /oauth/token") {
                let ttl = if mode == 0 { 900 } else { 1 };
                (
                    "200 OK",
                    json!({"access_token": "a.b.c", "token_type": "Bearer", "expires_in": ttl,
                           "refresh_token": "r"})
                    .to_string(),
                )
            } else {
                writes.fetch_add(1, Ordering::SeqCst);
                if stall.load(Ordering::SeqCst) {
                    // No reply: the client's timeout is the only way out.
                    let mut sink = [0u8; 1024];
                    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                    return;
                }
                let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                let reply = match request["requests"].as_array() {
                    Some(items) => json!({"responses": items.iter().map(|i| json!({
                        "id": i["id"], "status": 200, "body": {"stored": true}
                    })).collect::<Vec<_>>()}),
                    None => json!({"stored": true}),
                };
                ("200 OK", reply.to_string())
            };
            let content_type = if reply.is_empty() {
                ""
            } else {
                "Content-Type: application/json\r\n"
            };
            let response = format!(
                "HTTP/1.1 {status}\r\n{content_type}Content-Length: {}\r\n\r\n{reply}",
                reply.len()
            );
            if stream.write_all(response.as_bytes()).is_err() {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_its_health_check_but_not_writes_loses_nothing() {
    use std::sync::atomic::Ordering;
    let server = StallingServer::start();
    let base: url::Url = format!("http://{}/", server.addr).parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sync = SyncConfig {
        request_timeout: Duration::from_millis(500),
        ..SyncConfig::default()
    };
    let core = signed_in_core(base, dir.path(), sync, "student1").await;
    let owner = core.auth().owner().unwrap();
    let services = core.services().unwrap();
    let (queue, monitor, engine) = (
        &services.queue,
        services.monitor.as_ref().unwrap(),
        &services.engine,
    );
    for q in ["q03", "q04", "q07"] {
        queue
            .enqueue(
                NewEntry::answer("a1", q, json!("kept"), &exam_core::now_rfc3339())
                    .owned_by(&owner),
            )
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.writes.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "{:?}", engine.progress());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Held, timed out, tried again: never refused, never taken for delivered.
    let counts = queue.counts().unwrap();
    assert_eq!((counts.dead, counts.done), (0, 0), "{counts:?}");
    assert_eq!(queue.remaining().unwrap(), 3);
    let progress = engine.progress();
    assert_eq!(progress.refused, 0);
    assert!(
        progress
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("did not answer in time")),
        "{progress:?}"
    );
    // Its health check is fine, so the link is usable; the work waits for retries.
    assert!(monitor.status().state.is_usable(), "{:?}", monitor.status());
    // The server answers writes again: everything goes.
    server.stall.store(false, Ordering::SeqCst);
    engine.sync_now();
    drained(queue, Duration::from_secs(30)).await;
    assert_eq!(queue.counts().unwrap().dead, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_refuses_while_the_server_answers_is_not_asked_in_a_loop() {
    use std::sync::atomic::Ordering;
    for mode in [1u8, 2] {
        let server = StallingServer::start();
        server.stall.store(false, Ordering::SeqCst);
        server.token_mode.store(mode, Ordering::SeqCst);
        let base: url::Url = format!("http://{}/", server.addr).parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Signed in with a token that lives 1 s; every refresh is then refused (or answered
        // by something else) while `/healthz` and everything else answer.
        let core = signed_in_core(base, dir.path(), SyncConfig::default(), "student1").await;
        let owner = core.auth().owner().unwrap();
        let queue = core.services().unwrap().queue.clone();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        for i in 0..20 {
            queue
                .enqueue(
                    NewEntry::answer(
                        "a1",
                        &format!("q{i:02}"),
                        json!("x"),
                        &exam_core::now_rfc3339(),
                    )
                    .owned_by(&owner),
                )
                .unwrap();
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        // Backed off: a handful of refreshes in 3 s, not a loop; nothing refused or lost.
        let refreshes = server.refreshes.load(Ordering::SeqCst);
        assert!(
            (1..=4).contains(&refreshes),
            "mode {mode}: {refreshes} refreshes in 3 s"
        );
        assert_eq!(queue.counts().unwrap().dead, 0);
        assert_eq!(queue.remaining().unwrap(), 20);
        core.shutdown(Duration::from_secs(3));
    }
}
