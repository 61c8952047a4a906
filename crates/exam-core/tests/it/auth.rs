//! The token manager against the real reference server.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use exam_core::auth::{AuthConfig, AuthError, AuthStatus};
use exam_core::bus::{CoreEvent, EventBus};
use exam_core::keychain::SecretStore;
use exam_core::secret::Secret;

use crate::support::{manager, password, MemoryStore, Server};

async fn signed_in(
    server: &Server,
    store: &Arc<MemoryStore>,
    bus: &EventBus,
) -> exam_core::auth::TokenManager {
    let m = manager(AuthConfig::new(server.url()), store.clone(), bus.clone());
    let snapshot = m.sign_in("student1", password()).await.unwrap();
    assert_eq!(snapshot.status, AuthStatus::SignedIn);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_stores_the_refresh_token_and_caches_the_access_token() {
    let server = Server::start(900).await;
    let store = Arc::new(MemoryStore::default());
    let bus = EventBus::default();
    let mut events = bus.subscribe();
    let m = signed_in(&server, &store, &bus).await;
    assert!(store.refresh_token("student1").unwrap().starts_with("rt_"));
    let snapshot = m.snapshot();
    assert_eq!(snapshot.user.as_deref(), Some("student1"));
    assert!(snapshot.expires_at.is_some());
    assert!(
        snapshot.clock_offset_s.abs() < 5.0,
        "{}",
        snapshot.clock_offset_s
    );
    match events.recv().await.unwrap() {
        CoreEvent::AuthChanged { snapshot: s } => assert_eq!(s, snapshot),
        other => panic!("{other:?}"),
    }
    let a = m.access_token().await.unwrap();
    let b = m.access_token().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(server.refreshes().await, 0);
    assert_eq!(m.metrics().cache_hits, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_errors_say_what_happened() {
    let server = Server::start(900).await;
    let m = manager(
        AuthConfig::new(server.url()),
        Arc::new(MemoryStore::default()),
        EventBus::default(),
    );
    let wrong = m.sign_in("student1", Secret::new("nope".into())).await;
    assert_eq!(wrong, Err(AuthError::WrongCredentials));
    // Five failures for one username from one address lock that pair.
    for _ in 0..5 {
        let _ = m.sign_in("student2", Secret::new("nope".into())).await;
    }
    match m.sign_in("student2", password()).await {
        Err(AuthError::LockedOut { retry_after_s }) => assert!((1..=300).contains(&retry_after_s)),
        other => panic!("{other:?}"),
    }
    let nowhere = manager(
        AuthConfig::new("http://127.0.0.1:9/".parse().unwrap()),
        Arc::new(MemoryStore::default()),
        EventBus::default(),
    );
    assert!(matches!(
        nowhere.sign_in("student1", password()).await,
        Err(AuthError::Offline(_))
    ));
    assert_eq!(nowhere.snapshot().status, AuthStatus::SignedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_callers_on_an_expired_token_cause_exactly_one_refresh() {
    let server = Server::start(2).await;
    let store = Arc::new(MemoryStore::default());
    let m = signed_in(&server, &store, &EventBus::default()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let callers: Vec<_> = (0..200)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.access_token().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(server.refreshes().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_refresh_response_does_not_end_the_session() {
    let server = Server::start(900).await;
    let store = Arc::new(MemoryStore::default());
    let m = signed_in(&server, &store, &EventBus::default()).await;
    // The server rotates, but the answer never reaches the app.
    let stored = store.refresh_token("student1").unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}oauth/token", server.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", stored.as_str()),
            ("client_id", "exam-desktop"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The app retries with the token it still has: the session is kept.
    let snapshot = m.force_refresh().await.unwrap();
    assert_eq!(snapshot.status, AuthStatus::SignedIn);
    assert_ne!(store.refresh_token("student1").unwrap(), stored);
    assert!(m.force_refresh().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_of_an_old_refresh_token_ends_the_session_everywhere() {
    let server = Server::start(900).await;
    let store = Arc::new(MemoryStore::default());
    let bus = EventBus::default();
    let m = signed_in(&server, &store, &bus).await;
    let stolen = store.refresh_token("student1").unwrap();
    m.force_refresh().await.unwrap();
    m.force_refresh().await.unwrap();
    // Someone replays the stolen, long-rotated token: the server revokes the family.
    let response = reqwest::Client::new()
        .post(format!("{}oauth/token", server.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", stolen.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let mut events = bus.subscribe();
    let err = m.force_refresh().await.unwrap_err();
    assert!(matches!(err, AuthError::SessionEnded(_)), "{err:?}");
    let snapshot = m.snapshot();
    assert_eq!(snapshot.status, AuthStatus::SessionEnded);
    assert_eq!(
        snapshot.reason,
        Some(exam_core::reason::Reason::SessionEndedBySchool)
    );
    assert!(
        store.refresh_token("student1").is_none(),
        "the dead token is gone from the keychain"
    );
    let mut ended = false;
    while let Ok(event) = events.try_recv() {
        ended |= matches!(event, CoreEvent::SessionEnded { .. });
    }
    assert!(ended);
    // Callers are told, not sent to the server again.
    assert!(matches!(
        m.access_token().await,
        Err(AuthError::SessionEnded(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_down_during_a_refresh_keeps_the_tokens_and_recovers() {
    let mut server = Server::start(900).await;
    let store = Arc::new(MemoryStore::default());
    let m = signed_in(&server, &store, &EventBus::default()).await;
    let addr = server.addr;
    let dir = server.stop().await.unwrap();

    let err = m.force_refresh().await.unwrap_err();
    assert!(matches!(err, AuthError::Offline(_)), "{err:?}");
    let snapshot = m.snapshot();
    assert_eq!(snapshot.status, AuthStatus::Offline);
    assert_eq!(snapshot.user.as_deref(), Some("student1"));
    assert!(
        store.refresh_token("student1").is_some(),
        "tokens are kept while offline"
    );
    // The still-valid access token keeps working for requests.
    assert!(m.access_token().await.is_ok());

    let server = Server::start_at(addr, crate::support::config(dir.path().join("s.db"), 900)).await;
    let snapshot = m.force_refresh().await.unwrap();
    assert_eq!(snapshot.status, AuthStatus::SignedIn);
    assert_eq!(server.refreshes().await, 1);
}

fn three_hours_slow() -> SystemTime {
    SystemTime::now() - Duration::from_secs(3 * 3600)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_local_clock_does_not_delay_the_proactive_refresh() {
    let server = Server::start(3).await;
    let store = Arc::new(MemoryStore::default());
    let config = AuthConfig {
        wall_clock: three_hours_slow,
        ..AuthConfig::new(server.url())
    };
    let m = crate::support::manager(config, store.clone(), EventBus::default());
    m.sign_in("student1", password()).await.unwrap();
    let offset = m.snapshot().clock_offset_s;
    assert!((offset - 10_800.0).abs() < 5.0, "{offset}");
    let workers = exam_core::lifecycle::Workers::on(tokio::runtime::Handle::current());
    m.spawn_worker(&workers);
    // The token lives 3 s; the worker renews it before it expires, whatever the wall clock says.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(server.refreshes().await >= 1);
    let misses = m.metrics().cache_misses;
    m.access_token().await.unwrap();
    assert_eq!(
        m.metrics().cache_misses,
        misses,
        "the token was fresh: no caller waited for a refresh"
    );
    let report = tokio::task::spawn_blocking(move || workers.shutdown(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(report.stopped, vec!["token refresher"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_restores_the_session_also_offline_and_sign_out_clears_it() {
    let server = Server::start(900).await;
    let store = Arc::new(MemoryStore::default());
    signed_in(&server, &store, &EventBus::default()).await;

    // The app restarts while the network is down.
    let offline = manager(
        AuthConfig::new("http://127.0.0.1:9/".parse().unwrap()),
        store.clone(),
        EventBus::default(),
    );
    assert!(
        !offline.restore().await.unwrap(),
        "another server's session is not restored"
    );
    let again = manager(
        AuthConfig::new(server.url()),
        store.clone(),
        EventBus::default(),
    );
    assert!(again.restore().await.unwrap());
    assert_eq!(again.snapshot().status, AuthStatus::SignedIn);
    assert_eq!(again.snapshot().user.as_deref(), Some("student1"));
    assert!(again.access_token().await.is_ok());

    let token = store.refresh_token("student1").unwrap();
    let snapshot = again.sign_out().await;
    assert_eq!(snapshot.status, AuthStatus::SignedOut);
    assert!(
        store.0.lock().unwrap().is_empty(),
        "sign-out clears the keychain"
    );
    // And the server revoked the session.
    let response = reqwest::Client::new()
        .post(format!("{}oauth/token", server.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_triggers_one_refresh_and_one_retry() {
    let mut server = Server::start(900).await;
    let store = Arc::new(MemoryStore::default());
    let m = signed_in(&server, &store, &EventBus::default()).await;
    let exams = |http: &reqwest::Client| http.get(format!("http://{}/v1/exams", server.addr));
    assert_eq!(m.send_authorized(exams).await.unwrap().status(), 200);

    // The server restarts with a new signing key: every access token it issued is refused,
    // the refresh token still works.
    let addr = server.addr;
    let dir = server.stop().await.unwrap();
    let db = dir.path().join("s.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM meta WHERE key = 'jwt_key'", [])
        .unwrap();
    let server = Server::start_at(addr, crate::support::config(db, 900)).await;
    let exams = |http: &reqwest::Client| http.get(format!("http://{addr}/v1/exams"));
    let response = m.send_authorized(exams).await.unwrap();
    assert_eq!(response.status(), 200, "retried with a fresh token");
    assert_eq!(server.refreshes().await, 1);
    let stats = server.stats().await;
    assert_eq!(stats["requests"]["GET /v1/exams"]["401"], 1);
    assert_eq!(stats["requests"]["GET /v1/exams"]["200"], 1);

    // When the session itself is gone, one refresh says so and nothing is retried again.
    reqwest::Client::new()
        .post(format!(
            "http://{addr}/v1/admin/users/student1/sessions/revoke"
        ))
        .bearer_auth(crate::support::ADMIN)
        .header("Idempotency-Key", "revoke-1")
        .send()
        .await
        .unwrap();
    let err = m.send_authorized(exams).await.unwrap_err();
    assert!(matches!(err, AuthError::SessionEnded(_)), "{err:?}");
    assert_eq!(server.stats().await["requests"]["GET /v1/exams"]["401"], 2);
}

/// A keychain that takes its time to write (a slow Secret Service).
struct SlowToWrite(Arc<MemoryStore>, Duration);

impl SecretStore for SlowToWrite {
    fn get(&self, key: &str) -> Result<Option<Secret<String>>, exam_core::keychain::KeychainError> {
        self.0.get(key)
    }
    fn set(
        &self,
        key: &str,
        value: &Secret<String>,
    ) -> Result<(), exam_core::keychain::KeychainError> {
        std::thread::sleep(self.1);
        self.0.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), exam_core::keychain::KeychainError> {
        self.0.delete(key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_whose_caller_goes_away_still_completes_and_keeps_the_session() {
    let server = Server::start(900).await;
    let memory = Arc::new(MemoryStore::default());
    let store = Arc::new(SlowToWrite(memory.clone(), Duration::from_millis(400)));
    let bus = EventBus::default();
    let m = manager(AuthConfig::new(server.url()), store, bus.clone());
    m.sign_in("student1", password()).await.unwrap();
    let before = memory.refresh_token("student1").unwrap();
    let mut events = bus.subscribe();

    // The caller gives up while the rotated token is being written (the server has rotated).
    let given_up = tokio::time::timeout(Duration::from_millis(100), m.force_refresh()).await;
    assert!(
        given_up.is_err(),
        "the caller gave up before the refresh ended"
    );
    let m2 = m.clone();
    let settled =
        tokio::task::spawn_blocking(move || m2.wait_for_refreshes(Duration::from_secs(10)))
            .await
            .unwrap();
    assert!(settled);

    // The refresh completed in full: the rotated token is in the keychain and in use.
    let after = memory.refresh_token("student1").unwrap();
    assert_ne!(after, before);
    let completed = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if let Ok(CoreEvent::RefreshCompleted { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(
        completed.is_ok(),
        "the refresh was applied although its caller left"
    );
    assert_eq!(m.snapshot().status, AuthStatus::SignedIn);
    assert!(!m.snapshot().refreshing);
    // The next refresh presents the rotated token, not the old one (which, after the
    // server's grace, would read as reuse and end the session).
    m.force_refresh().await.unwrap();
    assert_ne!(memory.refresh_token("student1").unwrap(), after);
    assert_eq!(server.refreshes().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_expired_on_the_server_is_explained_as_expired() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_at(
        "127.0.0.1:0".parse().unwrap(),
        exam_server::Config {
            session_idle_s: 1,
            ..crate::support::config(dir.path().join("s.db"), 900)
        },
    )
    .await;
    let store = Arc::new(MemoryStore::default());
    let bus = EventBus::default();
    let m = signed_in(&server, &store, &bus).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let err = m.force_refresh().await.unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::SessionEnded(exam_core::reason::Reason::SessionExpired)
        ),
        "{err:?}"
    );
    let snapshot = m.snapshot();
    assert_eq!(snapshot.status, AuthStatus::SessionEnded);
    assert_eq!(
        snapshot.reason,
        Some(exam_core::reason::Reason::SessionExpired)
    );
    assert!(store.refresh_token("student1").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_busy_checking_passwords_is_a_wait_not_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_at(
        "127.0.0.1:0".parse().unwrap(),
        exam_server::Config {
            hash_concurrency: 1,
            hash_queue: 0,
            ..crate::support::config(dir.path().join("s.db"), 900)
        },
    )
    .await;
    let bus = EventBus::default();
    let mut attempts = tokio::task::JoinSet::new();
    for i in 1..=8 {
        let m = manager(
            AuthConfig::new(server.url()),
            Arc::new(MemoryStore::default()),
            bus.clone(),
        );
        attempts.spawn(async move { m.sign_in(&format!("student{i}"), password()).await });
    }
    let results = attempts.join_all().await;
    let mut waits = 0;
    for result in &results {
        match result {
            Ok(snapshot) => assert_eq!(snapshot.status, AuthStatus::SignedIn),
            Err(AuthError::Offline(exam_core::reason::Reason::ServerAsksToWait {
                retry_after_s,
            })) => {
                assert!(*retry_after_s >= 1);
                waits += 1;
            }
            Err(other) => panic!("a busy server is not {other:?}"),
        }
    }
    assert!(waits > 0, "eight checks at once on one slot: {results:?}");
}

/// A keychain that is locked (every write refused) or hangs (every call blocks).
struct BadKeychain {
    hangs: bool,
}

impl SecretStore for BadKeychain {
    fn get(
        &self,
        _key: &str,
    ) -> Result<Option<Secret<String>>, exam_core::keychain::KeychainError> {
        if self.hangs {
            std::thread::sleep(exam_core::auth::KEYCHAIN_TIMEOUT + Duration::from_secs(2));
        }
        Ok(None)
    }
    fn set(
        &self,
        _key: &str,
        _value: &Secret<String>,
    ) -> Result<(), exam_core::keychain::KeychainError> {
        if self.hangs {
            std::thread::sleep(exam_core::auth::KEYCHAIN_TIMEOUT + Duration::from_secs(2));
        }
        Err(exam_core::keychain::KeychainError::Unavailable(
            "Cannot create an item in a locked collection".into(),
        ))
    }
    fn delete(&self, _key: &str) -> Result<(), exam_core::keychain::KeychainError> {
        Ok(())
    }
}

async fn sign_in_with_a_bad_keychain(hangs: bool) {
    let server = Server::start(900).await;
    let m = manager(
        AuthConfig::new(server.url()),
        Arc::new(BadKeychain { hangs }),
        EventBus::default(),
    );
    let result = m.sign_in("student3", password()).await;
    assert!(matches!(result, Err(AuthError::Keychain(_))), "{result:?}");
    // A clear state: not signed in…
    let snapshot = m.snapshot();
    assert!(!snapshot.has_session, "{snapshot:?}");
    // …and no session left on the server that nobody here can use or end.
    let audit = server.admin("/v1/admin/audit?user=student3&limit=20").await;
    let types: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(types.contains(&"login"), "{types:?}");
    assert!(types.contains(&"revocation"), "{types:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_keychain_fails_sign_in_clearly_and_leaves_no_session_on_the_server() {
    sign_in_with_a_bad_keychain(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keychain_that_never_answers_times_out_and_leaves_no_session_on_the_server() {
    sign_in_with_a_bad_keychain(true).await;
}

/// A keychain whose writes can be made to fail.
#[derive(Default)]
struct FlakyKeychain {
    inner: MemoryStore,
    refuse_writes: std::sync::atomic::AtomicBool,
}

impl SecretStore for FlakyKeychain {
    fn get(&self, key: &str) -> Result<Option<Secret<String>>, exam_core::keychain::KeychainError> {
        self.inner.get(key)
    }
    fn set(
        &self,
        key: &str,
        value: &Secret<String>,
    ) -> Result<(), exam_core::keychain::KeychainError> {
        if self.refuse_writes.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(exam_core::keychain::KeychainError::Unavailable(
                "locked for a moment".into(),
            ));
        }
        self.inner.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), exam_core::keychain::KeychainError> {
        self.inner.delete(key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_the_keychain_refused_is_written_again_and_never_lost() {
    use std::sync::atomic::Ordering;
    let server = Server::start(900).await;
    let keychain = Arc::new(FlakyKeychain::default());
    let m = manager(
        AuthConfig::new(server.url()),
        keychain.clone(),
        EventBus::default(),
    );
    m.sign_in("student4", password()).await.unwrap();
    // The keychain refuses writes while the token rotates: the session goes on in memory…
    keychain.refuse_writes.store(true, Ordering::SeqCst);
    let before = keychain.inner.refresh_token("student4").unwrap();
    assert!(m.force_refresh().await.is_ok());
    assert_eq!(keychain.inner.refresh_token("student4").unwrap(), before);
    assert!(!m.save_unsaved().await, "still refused");
    // …and once the keychain takes writes again the rotated token is written.
    keychain.refuse_writes.store(false, Ordering::SeqCst);
    assert!(m.save_unsaved().await);
    assert_ne!(keychain.inner.refresh_token("student4").unwrap(), before);
    // A restart finds a live session (the dead token would have ended it as reuse).
    let restarted = manager(
        AuthConfig::new(server.url()),
        keychain.clone(),
        EventBus::default(),
    );
    assert!(restarted.restore().await.unwrap());
    let snapshot = restarted.force_refresh().await.unwrap();
    assert_eq!(snapshot.status, AuthStatus::SignedIn);
}
