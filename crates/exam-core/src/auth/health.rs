//! The health report of the diagnostics window: the auth monitor's figures, turned into
//! findings with what to do about them.

use serde::Serialize;

use super::monitor::AuthMetrics;
use super::{AuthSnapshot, AuthStatus};
use crate::http::ReuseStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Severity {
    Ok,
    Warning,
    Problem,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Finding {
    pub severity: Severity,
    pub finding: String,
    pub recommendation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct HealthReport {
    pub snapshot: AuthSnapshot,
    pub metrics: AuthMetrics,
    pub connections_opened: u32,
    pub requests_sent: u32,
    pub connection_reuse: f64,
    pub findings: Vec<Finding>,
}

fn finding(severity: Severity, finding: String, recommendation: &str) -> Finding {
    Finding {
        severity,
        finding,
        recommendation: recommendation.to_string(),
    }
}

pub fn report(snapshot: AuthSnapshot, metrics: AuthMetrics, reuse: ReuseStats) -> HealthReport {
    let mut findings = Vec::new();
    match snapshot.status {
        AuthStatus::Offline => findings.push(finding(
            Severity::Warning,
            format!(
                "The Exam Bank server cannot be reached ({}).",
                snapshot.reason.as_deref().unwrap_or("no answer")
            ),
            "Nothing is lost: answers are kept on this computer and sent when the server is back. Check the network cable or Wi-Fi if this lasts.",
        )),
        AuthStatus::SessionEnded => findings.push(finding(
            Severity::Problem,
            snapshot.reason.clone().unwrap_or_else(|| "The session has ended.".into()),
            "Sign in again; saved answers are kept.",
        )),
        _ => {}
    }
    if snapshot.clock_offset_s.abs() > 120.0 {
        findings.push(finding(
            Severity::Warning,
            format!(
                "This computer's clock is {:.0} minutes {} the server's.",
                snapshot.clock_offset_s.abs() / 60.0,
                if snapshot.clock_offset_s > 0.0 { "behind" } else { "ahead of" }
            ),
            "The app uses the server's time for tokens and deadlines, so this is safe; IT may want to fix the clock.",
        ));
    }
    if metrics.refresh.count > 0 && metrics.refresh.p95_us > 1_000_000.0 {
        findings.push(finding(
            Severity::Warning,
            format!(
                "Token refreshes are slow: p95 {:.0} ms.",
                metrics.refresh.p95_us / 1000.0
            ),
            "The network or the server is slow; refreshes start early enough to absorb it.",
        ));
    }
    let network_errors = metrics.errors.get("network").copied().unwrap_or(0);
    if network_errors > 0 {
        findings.push(finding(
            Severity::Warning,
            format!("{network_errors} token requests failed on the network."),
            "The session was kept and the requests retried with backoff.",
        ));
    }
    if let Some(n) = metrics.errors.get("keychain").filter(|n| **n > 0) {
        findings.push(finding(
            Severity::Problem,
            format!("The OS keychain failed {n} times."),
            "Ask IT to check that the keychain (Secret Service, Credential Manager or Keychain) works for this account: without it a restart asks the student to sign in again.",
        ));
    }
    if reuse.requests_sent >= 20 && reuse.reuse_rate() < 0.9 {
        findings.push(finding(
            Severity::Warning,
            format!(
                "Only {:.0}% of requests reused a connection.",
                reuse.reuse_rate() * 100.0
            ),
            "A proxy may be closing connections; each new one costs a TLS handshake.",
        ));
    }
    if findings.is_empty() {
        findings.push(finding(
            Severity::Ok,
            "Sign-in and tokens are healthy.".into(),
            "Nothing to do.",
        ));
    }
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    HealthReport {
        snapshot,
        metrics,
        connections_opened: clamp(reuse.connections_opened),
        requests_sent: clamp(reuse.requests_sent),
        connection_reuse: reuse.reuse_rate(),
        findings,
    }
}
