//! `exam-server`: the reference Exam Bank server binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use exam_server::{Config, RateSpec};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(version, about = "The reference Exam Bank server (API v1)")]
struct Args {
    /// Address to listen on; port 0 picks a free one (printed at start).
    #[arg(long, default_value = "127.0.0.1:8787", env = "EXAM_SERVER_LISTEN")]
    listen: SocketAddr,
    /// SQLite database, created and migrated at start.
    #[arg(long, default_value = "exam-server.db", env = "EXAM_SERVER_DB")]
    db: PathBuf,
    /// Bearer token of the administration API (disabled without one).
    #[arg(long, env = "EXAM_SERVER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    access_ttl: u64,
    /// Seed demo students student1…student30 (password `demo`) and two exams.
    #[arg(long)]
    demo: bool,
    /// Requests per second allowed per user (0 turns the limit off).
    #[arg(long, default_value_t = 20.0)]
    user_rate: f64,
    /// Burst allowed per user.
    #[arg(long, default_value_t = 200.0)]
    user_burst: f64,
    /// Requests per second allowed per IP address (0 turns the limit off).
    #[arg(long, default_value_t = 2000.0)]
    ip_rate: f64,
    /// Burst allowed per IP address.
    #[arg(long, default_value_t = 4000.0)]
    ip_burst: f64,
    /// Failed sign-ins per username, and per IP, within the window that lock sign-in.
    #[arg(long, default_value_t = 5)]
    lockout_failures: u32,
    /// The lockout window, in seconds.
    #[arg(long, default_value_t = 300)]
    lockout_window: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr: stdout carries the one "listening on" line scripts wait for.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = Config {
        admin_token: args.admin_token.filter(|t| !t.is_empty()),
        access_ttl_s: args.access_ttl,
        user_rate: RateSpec::new(args.user_rate, args.user_burst),
        ip_rate: RateSpec::new(args.ip_rate, args.ip_burst),
        lockout_failures: args.lockout_failures,
        lockout_window_s: args.lockout_window,
        demo: args.demo,
        ..Config::new(&args.db)
    };
    if config.admin_token.is_none() {
        tracing::warn!("no --admin-token: the administration API is disabled");
    }
    let server = exam_server::Server::bind(args.listen, config)
        .await
        .with_context(|| {
            format!(
                "cannot start on {} with database {}",
                args.listen,
                args.db.display()
            )
        })?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, db = %args.db.display(), demo = args.demo, "exam-server listening");
    // Scripts wait for this line to know the port.
    println!("listening on http://{addr}");
    server.serve(shutdown_signal()).await?;
    tracing::info!("exam-server stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}
