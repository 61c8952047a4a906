//! The health report of the diagnostics window: the auth monitor's figures, turned into
//! findings with what to do about them.

use serde::Serialize;

use super::monitor::AuthMetrics;
use super::{AuthSnapshot, AuthStatus};
use crate::http::ReuseStats;
use crate::reason::Reason;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Severity {
    Ok,
    Warning,
    Problem,
}

/// One finding of the health report: how bad, and what (worded by the status window).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Finding {
    pub severity: Severity,
    pub observation: Observation,
}

/// What the health report observed, as data: the status window words it (and what to do
/// about it) in the UI's language. `Display` gives English words for the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Observation {
    /// The server cannot be reached; nothing is lost.
    Offline { reason: Option<Reason> },
    /// The session has ended; saved answers are kept.
    SessionEnded { reason: Option<Reason> },
    /// This computer's clock is `minutes` behind (or ahead of) the server's.
    ClockOff { minutes: u32, behind: bool },
    /// Token refreshes are slow (p95 in ms).
    SlowRefresh { p95_ms: u32 },
    /// Token requests that failed on the network (the session was kept).
    NetworkErrors { count: u32 },
    /// Times the OS keychain failed.
    KeychainFailures { count: u32 },
    /// Few requests reuse a connection (a proxy may close them).
    LowConnectionReuse { percent: u32 },
    /// The signed-in student's answer key is missing from the OS keychain while `sealed`
    /// values sealed with it are here (kept untouched; no new key is made).
    AnswerKeyMissing { sealed: u32 },
    /// The database was damaged at start: kept as `kept_as` for IT, a new one started.
    DatabaseSetAside { kept_as: String },
    /// Sign-in and tokens are healthy.
    Healthy,
}

impl Observation {
    pub fn severity(&self) -> Severity {
        match self {
            Self::SessionEnded { .. }
            | Self::KeychainFailures { .. }
            | Self::AnswerKeyMissing { .. }
            | Self::DatabaseSetAside { .. } => Severity::Problem,
            Self::Healthy => Severity::Ok,
            _ => Severity::Warning,
        }
    }
}

impl std::fmt::Display for Observation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Offline { reason } => write!(
                f,
                "the Exam Bank server cannot be reached ({})",
                reason
                    .as_ref()
                    .map_or_else(|| "no answer".to_string(), |r| r.to_string())
            ),
            Self::SessionEnded { reason } => write!(
                f,
                "the session has ended ({})",
                reason.as_ref().map_or_else(String::new, |r| r.to_string())
            ),
            Self::ClockOff { minutes, behind } => write!(
                f,
                "this computer's clock is {minutes} minutes {} the server's",
                if *behind { "behind" } else { "ahead of" }
            ),
            Self::SlowRefresh { p95_ms } => write!(f, "token refreshes are slow: p95 {p95_ms} ms"),
            Self::NetworkErrors { count } => {
                write!(f, "{count} token requests failed on the network")
            }
            Self::KeychainFailures { count } => {
                write!(f, "the OS keychain failed {count} times")
            }
            Self::LowConnectionReuse { percent } => {
                write!(f, "only {percent}% of requests reused a connection")
            }
            Self::AnswerKeyMissing { sealed } => write!(
                f,
                "answer key missing from the OS keychain: {sealed} sealed values of the signed-in \
                 student are kept untouched until it is back"
            ),
            Self::DatabaseSetAside { kept_as } => write!(
                f,
                "the database was damaged at start: kept as {kept_as}, and a new one started"
            ),
            Self::Healthy => f.write_str("sign-in and tokens are healthy"),
        }
    }
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

impl HealthReport {
    /// Adds a finding of another part of the core (then it is no longer "healthy").
    pub fn add(&mut self, observation: Observation) {
        self.findings
            .retain(|f| f.observation != Observation::Healthy);
        self.findings.push(Finding {
            severity: observation.severity(),
            observation,
        });
    }
}

pub fn report(snapshot: AuthSnapshot, metrics: AuthMetrics, reuse: ReuseStats) -> HealthReport {
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let mut findings = Vec::new();
    match snapshot.status {
        AuthStatus::Offline => findings.push(Observation::Offline {
            reason: snapshot.reason.clone(),
        }),
        AuthStatus::SessionEnded => findings.push(Observation::SessionEnded {
            reason: snapshot.reason.clone(),
        }),
        _ => {}
    }
    if snapshot.clock_offset_s.abs() > 120.0 {
        findings.push(Observation::ClockOff {
            minutes: (snapshot.clock_offset_s.abs() / 60.0).round() as u32,
            behind: snapshot.clock_offset_s > 0.0,
        });
    }
    if metrics.refresh.count > 0 && metrics.refresh.p95_us > 1_000_000.0 {
        findings.push(Observation::SlowRefresh {
            p95_ms: (metrics.refresh.p95_us / 1000.0).round() as u32,
        });
    }
    let network_errors = metrics.errors.get("network").copied().unwrap_or(0);
    if network_errors > 0 {
        findings.push(Observation::NetworkErrors {
            count: network_errors,
        });
    }
    if let Some(n) = metrics.errors.get("keychain").filter(|n| **n > 0) {
        findings.push(Observation::KeychainFailures { count: *n });
    }
    if reuse.requests_sent >= 20 && reuse.reuse_rate() < 0.9 {
        findings.push(Observation::LowConnectionReuse {
            percent: (reuse.reuse_rate() * 100.0).round() as u32,
        });
    }
    if findings.is_empty() {
        findings.push(Observation::Healthy);
    }
    let findings = findings
        .into_iter()
        .map(|observation| Finding {
            severity: observation.severity(),
            observation,
        })
        .collect();
    HealthReport {
        snapshot,
        metrics,
        connections_opened: clamp(reuse.connections_opened),
        requests_sent: clamp(reuse.requests_sent),
        connection_reuse: reuse.reuse_rate(),
        findings,
    }
}
