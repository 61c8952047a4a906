//! The device checks, every [`CHECK_EVERY`] on a worker: the processes scanned, the rules
//! applied; what changed is published to the windows and reported to the server as a
//! security event of the signed-in student, through the queue (delivered when the network
//! allows; never evicted by the telemetry quota). Every report is also kept in the
//! `security_reports` table, so a student can read what was reported about them here.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::params;
use serde::Serialize;

use super::device::{machine_facts, MachineFacts, ProcessScanner};
use super::findings::{evaluate, Finding, Observed};
use super::policy::SecurityPolicy;
use crate::auth::TokenManager;
use crate::bus::{CoreEvent, EventBus};
use crate::lifecycle::Workers;
use crate::metrics::Samples;
use crate::owner::Owner;
use crate::queue::{NewEntry, Queue};

/// How often the device is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How often what is slow to change (firmware, network cards, fingerprint) is read again.
const MACHINE_EVERY: Duration = Duration::from_secs(60);

/// What the windows show: the findings now, and when the device was last checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SecuritySnapshot {
    pub findings: Vec<Finding>,
    /// RFC 3339; none before the first check.
    pub checked_at: Option<String>,
}

/// One report of a finding about a student on this computer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SecurityReport {
    pub at: String,
    /// `security.<code>`, or `security.cleared` when it stopped.
    pub event_type: String,
    pub finding: Finding,
    pub attempt_id: Option<String>,
}

struct Inner {
    policy: SecurityPolicy,
    bus: EventBus,
    auth: TokenManager,
    queue: Queue,
    scanner: Mutex<ProcessScanner>,
    machine: Mutex<Option<(MachineFacts, Instant)>>,
    /// The fingerprint when the signed-in student's session was first seen here.
    session_fingerprint: Mutex<Option<(Owner, String)>>,
    /// Displays the shell counted (0: unknown).
    displays: AtomicU32,
    /// A jump of this computer's clock not reported yet (s).
    clock_jump_s: Mutex<Option<i64>>,
    snapshot: Mutex<SecuritySnapshot>,
    scans: Mutex<Samples>,
    /// This app's behaviour per minute against its baseline, and what the last minute gave.
    activity: Mutex<(super::activity::Activity, Option<Instant>, Vec<Finding>)>,
    /// The student the findings now were last reported for: a student who signs in is
    /// told the server about everything that holds, not only what appears later.
    reported_to: Mutex<Option<Owner>>,
}

/// The device checks of this computer. Cheap to clone.
#[derive(Clone)]
pub struct SecurityMonitor {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SecurityMonitor {
    pub fn new(policy: SecurityPolicy, bus: EventBus, auth: TokenManager, queue: Queue) -> Self {
        let store = queue.store().clone();
        Self {
            inner: Arc::new(Inner {
                policy,
                bus,
                auth,
                queue,
                scanner: Mutex::new(ProcessScanner::new()),
                machine: Mutex::new(None),
                session_fingerprint: Mutex::new(None),
                displays: AtomicU32::new(0),
                clock_jump_s: Mutex::new(None),
                snapshot: Mutex::new(SecuritySnapshot::default()),
                scans: Mutex::new(Samples::default()),
                activity: Mutex::new((super::activity::Activity::new(store), None, Vec::new())),
                reported_to: Mutex::new(None),
            }),
        }
    }

    /// `owner`'s attempt in progress on this computer, if any (named in reports).
    fn attempt_of(&self, owner: &Owner) -> Option<String> {
        self.inner
            .queue
            .store()
            .lock()
            .query_row(
                "SELECT attempt_id FROM attempts
                 WHERE origin = ?1 AND username = ?2 AND status = 'in_progress'
                 ORDER BY rowid DESC LIMIT 1",
                params![owner.origin, owner.student],
                |r| r.get(0),
            )
            .ok()
    }

    pub fn policy(&self) -> &SecurityPolicy {
        &self.inner.policy
    }

    /// The number of displays, as the shell counts them.
    pub fn set_displays(&self, n: u32) {
        self.inner.displays.store(n, Ordering::Relaxed);
    }

    /// This computer's clock jumped by `seconds` (the server's time was learnt again).
    pub fn note_clock_jump(&self, seconds: i64) {
        *lock(&self.inner.clock_jump_s) = Some(seconds);
    }

    pub fn snapshot(&self) -> SecuritySnapshot {
        lock(&self.inner.snapshot).clone()
    }

    /// Percentiles of the process scans so far.
    pub fn scan_times(&self) -> crate::metrics::LatencySummary {
        lock(&self.inner.scans).summary()
    }

    fn machine(&self) -> MachineFacts {
        let mut machine = lock(&self.inner.machine);
        match &*machine {
            Some((facts, read)) if read.elapsed() < MACHINE_EVERY => facts.clone(),
            _ => {
                let facts = machine_facts();
                *machine = Some((facts.clone(), Instant::now()));
                facts
            }
        }
    }

    /// Checks the device now (blocking: a process scan), without publishing anything.
    pub fn check_now(&self) -> Vec<Finding> {
        let (processes, took) = lock(&self.inner.scanner).scan();
        lock(&self.inner.scans).record(took);
        let machine = self.machine();
        let fingerprint_was = {
            let signed_in = self.inner.auth.signed_in_owner();
            let mut session = lock(&self.inner.session_fingerprint);
            match (&*session, signed_in) {
                (Some((owner, was)), Some(now)) if *owner == now => Some(was.clone()),
                (_, Some(now)) => {
                    *session = Some((now, machine.fingerprint.clone()));
                    None
                }
                (_, None) => {
                    *session = None;
                    None
                }
            }
        };
        let displays = match self.inner.displays.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        };
        let clock_jump_s = *lock(&self.inner.clock_jump_s);
        let mut findings = evaluate(
            &self.inner.policy,
            &Observed {
                processes: &processes,
                machine: Some(&machine),
                displays,
                fingerprint_was: fingerprint_was.as_deref(),
                clock_jump_s,
            },
        );
        findings.extend(self.activity());
        findings
    }

    /// The behaviour findings of the last whole minute (scored once a minute).
    fn activity(&self) -> Vec<Finding> {
        let mut activity = lock(&self.inner.activity);
        if activity
            .1
            .is_none_or(|minute| minute.elapsed() >= Duration::from_secs(60))
        {
            activity.1 = Some(Instant::now());
            let metrics = self.inner.auth.metrics();
            let totals = super::activity::Totals {
                requests: self.inner.auth.http().reuse().requests_sent,
                refreshes: u64::from(metrics.refreshes),
                failures: metrics.errors.values().map(|n| u64::from(*n)).sum(),
            };
            activity.2 = activity.0.minute(totals, crate::clock::now_ms());
        }
        activity.2.clone()
    }

    /// What stops an attempt from starting now (checked afresh): programs the policy
    /// refuses while they run. Empty: it may start.
    pub fn start_refusals(&self) -> Vec<Finding> {
        let findings = self.check_now();
        self.apply(findings.clone());
        findings.into_iter().filter(|f| f.blocks_start).collect()
    }

    /// Takes a check's findings: publishes and reports what changed.
    fn apply(&self, findings: Vec<Finding>) {
        let before = {
            let mut snapshot = lock(&self.inner.snapshot);
            let before = std::mem::take(&mut snapshot.findings);
            snapshot.findings = findings.clone();
            snapshot.checked_at = Some(crate::now_rfc3339());
            before
        };
        // A clock jump is reported once.
        if findings
            .iter()
            .any(|f| f.code == super::findings::Code::ClockJump)
        {
            *lock(&self.inner.clock_jump_s) = None;
        }
        let keys = |list: &[Finding]| list.iter().map(Finding::key).collect::<Vec<_>>();
        let (was, now) = (keys(&before), keys(&findings));
        let appeared: Vec<&Finding> = findings
            .iter()
            .filter(|f| !was.contains(&f.key()))
            .collect();
        let cleared: Vec<&Finding> = before.iter().filter(|f| !now.contains(&f.key())).collect();
        // Someone else signed in since the last report: everything that holds is news to
        // the server for them.
        let signed_in = self.inner.auth.signed_in_owner();
        let new_student = {
            let mut reported_to = lock(&self.inner.reported_to);
            let changed = *reported_to != signed_in;
            *reported_to = signed_in;
            changed
        };
        if new_student && !findings.is_empty() {
            self.report(&findings.iter().collect::<Vec<_>>(), &[]);
        } else if !appeared.is_empty() || !cleared.is_empty() {
            self.report(&appeared, &cleared);
        }
        if appeared.is_empty() && cleared.is_empty() {
            return;
        }
        for finding in &appeared {
            tracing::warn!(code = ?finding.code, evidence = %finding.evidence, "security finding");
        }
        for finding in &cleared {
            tracing::info!(code = ?finding.code, "security finding cleared");
        }
        self.inner.bus.publish(CoreEvent::SecurityChanged {
            security: self.snapshot(),
        });
    }

    /// Reports findings that appeared or cleared as security events of the signed-in
    /// student (none signed in: kept in the log only).
    fn report(&self, appeared: &[&Finding], cleared: &[&Finding]) {
        let Some(owner) = self.inner.auth.signed_in_owner() else {
            return;
        };
        let attempt = self.attempt_of(&owner);
        let at = crate::now_rfc3339();
        let fingerprint = self.machine().fingerprint;
        let mut events = Vec::new();
        let mut reports = Vec::new();
        for (finding, event_type) in appeared
            .iter()
            .map(|f| (*f, f.code.event_type().to_string()))
            .chain(cleared.iter().map(|f| (*f, "security.cleared".to_string())))
        {
            let id = uuid::Uuid::now_v7().to_string();
            events.push(serde_json::json!({
                "id": id,
                "type": event_type,
                "at": at,
                "attrs": {
                    "code": finding.code,
                    "severity": finding.severity,
                    "confidence": finding.confidence,
                    "subject": finding.subject,
                    "category": finding.category,
                    "evidence": finding.evidence,
                    "blocks_start": finding.blocks_start,
                    "attempt_id": attempt,
                    "device": fingerprint,
                },
            }));
            reports.push((id, event_type, finding.clone()));
        }
        let entry = NewEntry::security_events(serde_json::Value::Array(events)).owned_by(&owner);
        let queued = match self.inner.queue.enqueue(entry) {
            Ok(queued) => Some(queued.id),
            Err(error) => {
                tracing::error!(%error, "a security event could not be queued");
                None
            }
        };
        let store = self.inner.queue.store();
        let conn = store.lock();
        for (id, event_type, finding) in reports {
            let finding = serde_json::to_string(&finding).unwrap_or_default();
            if let Err(error) = conn.execute(
                "INSERT INTO security_reports (id, origin, student, at, event_type, finding,
                                               attempt_id, entry_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    owner.origin,
                    owner.student,
                    at,
                    event_type,
                    finding,
                    attempt,
                    queued
                ],
            ) {
                tracing::error!(error = %store.error(error), "a security report could not be kept");
            }
        }
    }

    /// Everything reported about `owner` on this computer, newest first.
    pub fn reports_of(&self, owner: &Owner) -> Vec<SecurityReport> {
        let store = self.inner.queue.store();
        let conn = store.lock();
        let Ok(mut stmt) = conn.prepare(
            "SELECT at, event_type, finding, attempt_id FROM security_reports
             WHERE origin = ?1 AND student = ?2 ORDER BY at DESC, rowid DESC LIMIT 500",
        ) else {
            return Vec::new();
        };
        let rows = stmt.query_map(params![owner.origin, owner.student], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        });
        let Ok(rows) = rows else {
            return Vec::new();
        };
        rows.filter_map(Result::ok)
            .filter_map(|(at, event_type, finding, attempt_id)| {
                Some(SecurityReport {
                    at,
                    event_type,
                    finding: serde_json::from_str(&finding).ok()?,
                    attempt_id,
                })
            })
            .collect()
    }

    /// Checks every [`CHECK_EVERY`] until the workers stop.
    pub fn spawn(&self, workers: &Workers) {
        let monitor = self.clone();
        workers.spawn("device checks", move |stop| async move {
            loop {
                let checking = monitor.clone();
                if let Ok(findings) =
                    tokio::task::spawn_blocking(move || checking.check_now()).await
                {
                    let applying = monitor.clone();
                    let _ = tokio::task::spawn_blocking(move || applying.apply(findings)).await;
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(CHECK_EVERY) => {}
                }
            }
        });
    }
}
