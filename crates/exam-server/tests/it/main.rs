//! Integration tests of the reference server over real HTTP on 127.0.0.1, with a real
//! SQLite file in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod auth;
mod bad_input;
mod batch;
mod exams;
mod fleet;
mod fleet_insights;
mod idempotency;
mod openapi;
mod process;
mod properties;
mod readiness;
mod reports;
mod routes;
mod sealed;
mod security;
mod updates;

use std::net::SocketAddr;
use std::path::PathBuf;

use exam_server::{Config, RateSpec};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{json, Value};

pub const ADMIN: &str = "test-admin-token-0123456789";

/// The demo configuration with the admin API on and rate limits off (tests that need a
/// limit set their own).
pub fn config(db: PathBuf) -> Config {
    Config {
        admin_token: Some(ADMIN.into()),
        demo: true,
        user_rate: RateSpec::OFF,
        ip_rate: RateSpec::OFF,
        ..Config::new(db)
    }
}

/// A server on a free loopback port with its own database, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: std::sync::Arc<exam_server::AppState>,
    pub http: Client,
    pub db: PathBuf,
    _dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("server.db");
        let mut server = Self::start_with(config(db)).await;
        server._dir = Some(dir);
        server
    }

    pub async fn start_with(config: Config) -> Self {
        let db = config.db_path.clone();
        let server = exam_server::Server::bind("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let state = server.state();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            server
                .serve(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            state,
            http: Client::new(),
            db,
            _dir: None,
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// Stops the server and waits until it has let go of its address and database.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.unwrap();
        }
        self._dir.take()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn login(&self, username: &str) -> Tokens {
        let response = self
            .token_request(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", "demo"),
            ])
            .await;
        assert_eq!(response.status(), 200, "login of {username}");
        Tokens::from(response.json::<Value>().await.unwrap())
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> Response {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        form.push(("client_id", "exam-desktop"));
        self.http
            .post(self.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method.clone(), path).bearer_auth(ADMIN);
        if method != Method::GET {
            request = request.header("Idempotency-Key", new_key());
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        status_json(request.send().await.unwrap()).await
    }

    pub async fn stats(&self) -> Value {
        self.admin(Method::GET, "/v1/admin/stats", None).await.1
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub raw: Value,
}

impl From<Value> for Tokens {
    fn from(raw: Value) -> Self {
        Self {
            access: raw["access_token"].as_str().unwrap().to_string(),
            refresh: raw["refresh_token"].as_str().unwrap().to_string(),
            raw,
        }
    }
}

pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub async fn status_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, value)
}

/// A student's view of the API.
pub struct Student<'a> {
    pub server: &'a TestServer,
    pub tokens: Tokens,
}

impl<'a> Student<'a> {
    pub async fn login(server: &'a TestServer, username: &str) -> Self {
        Self {
            server,
            tokens: server.login(username).await,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.server
            .request(method, path)
            .bearer_auth(&self.tokens.access)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        status_json(self.request(Method::GET, path).send().await.unwrap()).await
    }

    /// A non-GET request with a fresh idempotency key.
    pub async fn send(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        self.send_keyed(method, path, &new_key(), body).await
    }

    pub async fn send_keyed(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Value,
    ) -> (u16, Value) {
        let response = self
            .request(method, path)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        status_json(response).await
    }

    pub async fn start_attempt(&self, exam: &str) -> String {
        let (status, body) = self
            .send(
                Method::POST,
                &format!("/v1/exams/{exam}/attempts"),
                json!({}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["attempt_id"].as_str().unwrap().to_string()
    }

    pub async fn put_answer(
        &self,
        attempt: &str,
        question: &str,
        value: Value,
        seq: i64,
    ) -> (u16, Value) {
        self.send(
            Method::PUT,
            &format!("/v1/attempts/{attempt}/answers/{question}"),
            json!({"value": value, "seq": seq, "saved_at": "2026-11-28T10:00:00Z"}),
        )
        .await
    }
}
