//! The reference server in-process, and an in-memory secret store for tests where the
//! keychain is not the point.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use exam_core::auth::{AuthConfig, TokenManager};
use exam_core::bus::EventBus;
use exam_core::http::HttpClient;
use exam_core::keychain::SecretStore;
use exam_core::secret::Secret;
pub use exam_core::testing::MemoryStore;
use exam_server::{Config, RateSpec};

pub const ADMIN: &str = "core-tests-admin-0123456789";

pub struct Server {
    pub addr: SocketAddr,
    _dir: Option<tempfile::TempDir>,
    running: exam_server::Running,
}

pub fn config(db: PathBuf, access_ttl_s: u64) -> Config {
    Config {
        admin_token: Some(ADMIN.into()),
        demo: true,
        access_ttl_s,
        user_rate: RateSpec::OFF,
        ip_rate: RateSpec::OFF,
        ..Config::new(db)
    }
}

impl Server {
    pub async fn start(access_ttl_s: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self::start_at(
            "127.0.0.1:0".parse().unwrap(),
            config(dir.path().join("s.db"), access_ttl_s),
        )
        .await;
        server._dir = Some(dir);
        server
    }

    pub async fn start_at(addr: SocketAddr, config: Config) -> Self {
        let running = exam_server::Server::spawn(addr, config).await.unwrap();
        Self {
            addr: running.addr,
            _dir: None,
            running,
        }
    }

    /// Stops serving (the port is free again); the database stays.
    pub async fn stop(&mut self) -> Option<tempfile::TempDir> {
        self.running.stop().await;
        self._dir.take()
    }

    /// The server's database file (a test may change what it serves).
    pub fn db(&self) -> PathBuf {
        self._dir.as_ref().unwrap().path().join("s.db")
    }

    pub fn url(&self) -> url::Url {
        format!("http://{}/", self.addr).parse().unwrap()
    }

    /// A GET of the admin API (what an examiner sees).
    pub async fn admin(&self, path: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("http://{}{path}", self.addr))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A POST of the admin API (what IT does), its status.
    pub async fn admin_post(&self, path: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("http://{}{path}", self.addr))
            .bearer_auth(ADMIN)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn stats(&self) -> serde_json::Value {
        self.admin("/v1/admin/stats").await
    }

    pub async fn refreshes(&self) -> u64 {
        self.stats().await["token_refreshes"].as_u64().unwrap()
    }
}

pub fn manager(config: AuthConfig, store: Arc<dyn SecretStore>, bus: EventBus) -> TokenManager {
    TokenManager::new(
        config,
        HttpClient::new("exam-core-tests").unwrap(),
        store,
        bus,
    )
}

pub fn password() -> Secret<String> {
    Secret::new("demo".to_string())
}

/// A token manager for `server` on an in-memory secret store.
pub fn memory_manager(server: url::Url, bus: &EventBus) -> TokenManager {
    manager(
        AuthConfig::new(server),
        Arc::new(MemoryStore::default()),
        bus.clone(),
    )
}

/// A sync engine with the default settings, on a network that is always up, on workers of
/// its own: dropping it stops it.
pub struct Engine {
    pub engine: exam_core::sync::SyncEngine,
    _workers: exam_core::lifecycle::Workers,
}

impl std::ops::Deref for Engine {
    type Target = exam_core::sync::SyncEngine;
    fn deref(&self) -> &Self::Target {
        &self.engine
    }
}

pub fn online_engine(
    queue: &exam_core::queue::Queue,
    auth: &TokenManager,
    bus: &EventBus,
) -> Engine {
    let workers = exam_core::lifecycle::Workers::new().unwrap();
    let engine = exam_core::sync::SyncEngine::spawn(
        &workers,
        exam_core::sync::SyncConfig::default(),
        queue.clone(),
        auth.clone(),
        exam_core::sync::NetworkView::always_online(),
        bus.clone(),
    );
    Engine {
        engine,
        _workers: workers,
    }
}

/// The core as the app builds it ([`exam_core::app::CoreBuilder`]) for `server`, keeping
/// its data in `data_dir`, secrets in memory, and signed in as `student`.
pub async fn signed_in_core(
    server: url::Url,
    data_dir: &std::path::Path,
    sync: exam_core::sync::SyncConfig,
    student: &str,
) -> exam_core::app::Core {
    use exam_core::config::{LoadedConfig, Settings};
    let settings = Settings::new(server, data_dir.to_path_buf());
    // The device checks queue their reports: not the point here, and they would be counted.
    let core = exam_core::app::CoreBuilder::new(
        LoadedConfig::from_settings(settings),
        Arc::new(MemoryStore::default()),
    )
    .sync(sync)
    .device_checks(false)
    .start()
    .unwrap();
    core.sign_in(student, password()).await.unwrap();
    core
}

/// The ids of the questions answered in words (short and essay) of `demo-mixed`, as the
/// server sends its package to the signed-in student of `auth`.
pub async fn text_questions(auth: &TokenManager) -> Vec<String> {
    let url = auth.server().join("v1/exams/demo-mixed/package").unwrap();
    let package: serde_json::Value = auth
        .send_authorized(|c| c.get(url.clone()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    package["questions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["kind"] == "short" || q["kind"] == "essay")
        .map(|q| q["id"].as_str().unwrap().to_string())
        .collect()
}

/// What the server holds for an attempt (admin API).
pub async fn admin_attempt(server: &Server, attempt: &str) -> serde_json::Value {
    server.admin(&format!("/v1/admin/attempts/{attempt}")).await
}

/// Waits until nothing is left to send; fails after `within`.
pub async fn drained(queue: &exam_core::queue::Queue, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let remaining = queue.remaining().unwrap();
        if remaining == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{remaining} entries still queued after {within:?}: {:?}",
            queue.counts().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The start code of `exam`, as a proctor reads it from the admin API.
pub async fn start_code(server: &Server, exam: &str) -> String {
    server
        .admin(&format!("/v1/admin/exams/{exam}/start-code"))
        .await["start_code"]
        .as_str()
        .unwrap()
        .to_string()
}
