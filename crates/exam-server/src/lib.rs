//! The reference Exam Bank server: implements `shared/API.md` so the desktop client can be
//! developed, demonstrated and tested end to end on one machine.

use std::future::Future;
use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

/// Every route of the server.
pub fn router() -> Router {
    Router::new().route("/healthz", get(healthz))
}

/// Liveness: the client's network monitor probes this.
async fn healthz() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// A server bound to its address, not yet serving.
pub struct Server {
    listener: TcpListener,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port: see [`Server::local_addr`]).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes the requests in progress.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}
