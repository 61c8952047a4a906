//! `exam-server`: the reference Exam Bank server binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use exam_server::{Config, RateSpec};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(version, about = "The reference Exam Bank server (API v1)")]
struct Args {
    /// Without a command: serve.
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on; port 0 picks a free one (printed at start).
    #[arg(long, default_value = "127.0.0.1:8787", env = "EXAM_SERVER_LISTEN")]
    listen: SocketAddr,
    /// SQLite database, created and migrated at start.
    #[arg(
        long,
        default_value = "exam-server.db",
        env = "EXAM_SERVER_DB",
        global = true
    )]
    db: PathBuf,
    /// Bearer token of the administration API (disabled without one; at least 20
    /// characters). Prefer the environment or --admin-token-file: other users of this
    /// computer can read a command line.
    #[arg(
        long,
        env = "EXAM_SERVER_ADMIN_TOKEN",
        hide_env_values = true,
        conflicts_with = "admin_token_file"
    )]
    admin_token: Option<String>,
    /// A file holding the admin token (its first line).
    #[arg(long, env = "EXAM_SERVER_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// A file holding the key that signs access tokens (at least 32 bytes), kept apart from
    /// the database; without it a generated key is kept in the database.
    #[arg(long, env = "EXAM_SERVER_JWT_KEY_FILE")]
    jwt_key_file: Option<PathBuf>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    access_ttl: u64,
    /// Seed demo students student1…student30 (password `demo`), two open exams and four sealed
    /// ones (demo-sealed-open, -soon, -tomorrow, -closed).
    #[arg(long)]
    demo: bool,
    /// With --demo: the sealed exam "opening soon" (demo-sealed-soon) opens this many seconds
    /// after the demo data is first seeded.
    #[arg(long, default_value_t = 300, requires = "demo")]
    demo_opens_in: u64,
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
    /// Failed sign-ins for one username from one IP within the window that lock that pair.
    #[arg(long, default_value_t = 5)]
    lockout_failures: u32,
    /// Failed sign-ins for one username from any IPs within the window that lock the username.
    #[arg(long, default_value_t = 20)]
    lockout_user_failures: u32,
    /// Failed sign-ins from one IP (any usernames) within the window that lock the IP.
    #[arg(long, default_value_t = 100)]
    lockout_ip_failures: u32,
    /// The lockout window, in seconds.
    #[arg(long, default_value_t = 300)]
    lockout_window: u64,
    /// Failed uses of the admin API (missing or wrong token, a student's token) from one IP
    /// within 5 minutes that lock that IP out of the admin API.
    #[arg(long, default_value_t = exam_server::admin::ADMIN_FAILURE_LIMIT, value_parser = at_least_one)]
    admin_lockout_failures: usize,
    /// A session ends this many seconds after sign-in (12 h by default).
    #[arg(long, default_value_t = 12 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    session_lifetime: u64,
    /// A session ends after this many seconds without a token refresh (8 h by default).
    #[arg(long, default_value_t = 8 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    session_idle: u64,
    /// When one student is signed in on two machines at once (the `two_devices` alert), also
    /// ask them for their password again: their sessions begun before the alert are refused
    /// (401 step_up_required) until they sign in with it. `false` keeps the alert alone. An
    /// admin withdraws the demand with DELETE /v1/admin/users/{username}/step-up.
    #[arg(
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "true|false"
    )]
    step_up_on_two_devices: bool,

    /// A threshold of the fleet's insights, NAME=VALUE (repeatable): clock_skew_s (60),
    /// skewed_machines (2), lab_outages_per_hour (6), lab_outage_machines (2), backlog_min
    /// (10), refresh_failures_rise_per_h (1), save_max_ms (200), disk_reserve_mb (512),
    /// disk_full_within_h (24).
    #[arg(long = "insight", value_name = "NAME=VALUE")]
    insights: Vec<String>,

    /// Play the app's update server: releases from this folder (CHANNEL/VERSION/manifest.json
    /// and the signed artifacts beside it), at /updates/{target}/{arch}/{current}.
    #[arg(long, env = "EXAM_SERVER_UPDATES_DIR")]
    updates_dir: Option<PathBuf>,

    /// Scheduled reports: what, where the files go, how they are mailed.
    #[command(flatten)]
    reports: exam_server::reports::cli::ReportArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the start code of a sealed exam (for the proctor), with its version and opening
    /// time; the view is audited like one through the admin API.
    StartCode {
        /// The exam's id.
        exam_id: String,
    },
}

/// `exam-server start-code EXAM_ID [--db PATH]`.
fn print_start_code(db: &std::path::Path, exam_id: &str) -> anyhow::Result<()> {
    // Never create an empty database here: a wrong path is an error, not "no such exam".
    anyhow::ensure!(db.is_file(), "there is no database at {}", db.display());
    let db = exam_server::Db::open(db)?;
    let mut conn = db.lock();
    let tx = conn.transaction()?;
    let view =
        exam_server::packages::view_start_code(&tx, exam_id, exam_server::now(), None, "cli")
            .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    tx.commit()?;
    let field = |name: &str| {
        view[name]
            .as_str()
            .map_or_else(|| view[name].to_string(), str::to_string)
    };
    println!("start_code: {}", field("start_code"));
    println!("exam_id: {}", field("exam_id"));
    println!("version: {}", field("version"));
    println!("opens_at: {}", field("opens_at"));
    println!("available_from: {}", field("available_from"));
    Ok(())
}

fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{value}` is not a whole number of at least 1")),
    }
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
    if let Some(Command::StartCode { exam_id }) = &args.command {
        // A clear one-line error and a non-zero exit, without a backtrace.
        if let Err(error) = print_start_code(&args.db, exam_id) {
            eprintln!("exam-server start-code: {error:#}");
            std::process::exit(1);
        }
        return Ok(());
    }
    if std::env::args().any(|a| a == "--admin-token" || a.starts_with("--admin-token=")) {
        tracing::warn!(
            "the admin token is on the command line, where other users of this computer can \
             read it: prefer EXAM_SERVER_ADMIN_TOKEN or --admin-token-file"
        );
    }
    let admin_token = match &args.admin_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the admin token from {}", path.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
        None => args.admin_token.clone(),
    };
    let jwt_key = match &args.jwt_key_file {
        Some(path) => Some(std::fs::read(path).with_context(|| {
            format!("cannot read the token signing key from {}", path.display())
        })?),
        None => None,
    };
    let mut insights = exam_server::fleet::insights::Thresholds::default();
    for assignment in &args.insights {
        insights
            .set(assignment)
            .map_err(|why| anyhow::anyhow!("--insight {assignment}: {why}"))?;
    }
    let config = Config {
        insights,
        admin_token: admin_token.filter(|t| !t.is_empty()),
        jwt_key,
        access_ttl_s: args.access_ttl,
        user_rate: RateSpec::new(args.user_rate, args.user_burst),
        ip_rate: RateSpec::new(args.ip_rate, args.ip_burst),
        lockout_failures: args.lockout_failures,
        lockout_user_failures: args.lockout_user_failures,
        lockout_ip_failures: args.lockout_ip_failures,
        admin_lockout_failures: args.admin_lockout_failures,
        lockout_window_s: args.lockout_window,
        session_absolute_s: args.session_lifetime,
        session_idle_s: args.session_idle,
        step_up_on_two_devices: args.step_up_on_two_devices,
        demo: args.demo,
        demo_opens_in_s: args.demo_opens_in,
        reports: args.reports.settings()?,
        updates_dir: args.updates_dir.clone(),
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
