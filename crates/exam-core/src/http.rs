//! The one HTTP client of the core: connection reuse, timeouts, HTTP/2 where the server
//! offers it (ALPN), and counters of connections opened vs requests sent so the reuse rate
//! is known.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct HttpSetupError(String);

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    requests: AtomicU64,
}

/// Cheap to clone; every clone shares the connection pool and the counters.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    counters: Arc<Counters>,
}

/// Connection reuse so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReuseStats {
    pub connections_opened: u64,
    pub requests_sent: u64,
}

impl ReuseStats {
    /// Requests that did not need a new connection, as a fraction (1.0 when nothing was sent).
    pub fn reuse_rate(&self) -> f64 {
        if self.requests_sent == 0 {
            1.0
        } else {
            1.0 - (self.connections_opened as f64 / self.requests_sent as f64).min(1.0)
        }
    }
}

impl HttpClient {
    pub fn new(user_agent: &str) -> Result<Self, HttpSetupError> {
        let counters = Arc::new(Counters::default());
        let counting = counters.clone();
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(30))
            // The API never redirects: a redirect means a captive portal or a misconfigured
            // proxy, which must be seen (see `network`), not followed with a bearer token.
            .redirect(reqwest::redirect::Policy::none())
            // Every new connection passes through this layer once.
            .connector_layer(tower_layer::layer_fn(move |inner| CountConnections {
                inner,
                counters: counting.clone(),
            }))
            .build()
            .map_err(|e| HttpSetupError(e.to_string()))?;
        Ok(Self { client, counters })
    }

    /// The client, for building a request. Send it with [`HttpClient::send`].
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> reqwest::Result<reqwest::Response> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        request.send().await
    }

    pub fn reuse(&self) -> ReuseStats {
        ReuseStats {
            connections_opened: self.counters.connections.load(Ordering::Relaxed),
            requests_sent: self.counters.requests.load(Ordering::Relaxed),
        }
    }
}

#[derive(Clone)]
struct CountConnections<S> {
    inner: S,
    counters: Arc<Counters>,
}

impl<S, R> tower_service::Service<R> for CountConnections<S>
where
    S: tower_service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        self.inner.call(request)
    }
}
