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

use super::device::{
    machine_facts, network_identity, MachineFacts, NetworkIdentity, ProcessScanner,
};
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
    /// The network of the attempt in progress since it was first seen.
    attempt_network: Mutex<AttemptNetwork>,
    /// The student whose session was ended for reuse, as of the last check.
    reused: Mutex<Option<Owner>>,
}

/// The network an attempt began on, against the network now: the network changing
/// mid-attempt (a new interface or gateway) is what "an unusual location" means for a lab
/// computer.
#[derive(Debug, Default)]
pub struct AttemptNetwork {
    tracked: Option<(String, NetworkIdentity, NetworkIdentity)>,
}

impl AttemptNetwork {
    /// Takes the attempt in progress and the network now; gives (the attempt's first
    /// network, the latest). Offline (no network) keeps the latest known.
    pub fn observe(
        &mut self,
        attempt: Option<&str>,
        now: Option<NetworkIdentity>,
    ) -> Option<(NetworkIdentity, NetworkIdentity)> {
        let Some(attempt) = attempt else {
            self.tracked = None;
            return None;
        };
        match (&mut self.tracked, now) {
            (Some((of, _, latest)), Some(now)) if of == attempt => *latest = now,
            (Some((of, ..)), None) if of == attempt => {}
            (_, Some(now)) => self.tracked = Some((attempt.to_string(), now.clone(), now)),
            (_, None) => self.tracked = None,
        }
        self.tracked
            .as_ref()
            .map(|(_, first, latest)| (first.clone(), latest.clone()))
    }
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
                attempt_network: Mutex::new(AttemptNetwork::default()),
                reused: Mutex::new(None),
            }),
        }
    }

    /// `owner`'s attempt in progress on this computer, if any (named in reports).
    fn attempt_of(&self, owner: &Owner) -> Option<String> {
        crate::exam::attempt_in_progress(&self.inner.queue.store().lock(), owner).map(|a| a.0)
    }

    pub fn policy(&self) -> &SecurityPolicy {
        &self.inner.policy
    }

    /// The number of displays, as the shell counts them.
    pub fn set_displays(&self, n: u32) {
        self.inner.displays.store(n, Ordering::Relaxed);
    }

    /// The number of displays the shell counted (none: not counted yet).
    pub fn displays(&self) -> Option<u32> {
        match self.inner.displays.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
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
        let auth = self.inner.auth.signals();
        lock(&self.inner.reused).clone_from(&auth.reused);
        let attempt = self
            .inner
            .auth
            .signed_in_owner()
            .and_then(|owner| self.attempt_of(&owner));
        let network =
            lock(&self.inner.attempt_network).observe(attempt.as_deref(), network_identity());
        let mut findings = evaluate(
            &self.inner.policy,
            &Observed {
                processes: &processes,
                machine: Some(&machine),
                displays,
                fingerprint_was: fingerprint_was.as_deref(),
                clock_jump_s,
                auth: Some(&auth),
                network_was: network.as_ref().map(|(was, now)| (was, now)),
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
            let outages: i64 = self
                .inner
                .queue
                .store()
                .lock()
                .query_row("SELECT COALESCE(MAX(id), 0) FROM outages", [], |r| r.get(0))
                .unwrap_or(0);
            let totals = super::activity::Totals {
                requests: self.inner.auth.http().reuse().requests_sent,
                refreshes: u64::from(metrics.refreshes),
                failures: metrics.errors.values().map(|n| u64::from(*n)).sum(),
                outages: u64::try_from(outages).unwrap_or(0),
            };
            let student = self.inner.auth.signed_in_owner();
            activity.2 = activity
                .0
                .minute(totals, crate::clock::now_ms(), student.as_ref());
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
            reported_to.clone_from(&signed_in);
            changed
        };
        if new_student && !findings.is_empty() {
            self.report_all(
                &findings.iter().collect::<Vec<_>>(),
                &[],
                signed_in.as_ref(),
            );
        } else if !appeared.is_empty() || !cleared.is_empty() {
            self.report_all(&appeared, &cleared, signed_in.as_ref());
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

    /// Reports findings that appeared or cleared, each as the events of the student it is
    /// about: a session ended for reuse is its student's; what is about the machine (failed
    /// sign-ins) is nobody's and stays here; the rest is the signed-in student's (none
    /// signed in: kept in the log only).
    fn report_all(&self, appeared: &[&Finding], cleared: &[&Finding], signed_in: Option<&Owner>) {
        let reused = lock(&self.inner.reused).clone();
        let whose = |f: &Finding| -> Option<Owner> {
            if f.code.about_the_machine() {
                None
            } else if f.code == super::findings::Code::SessionReused {
                reused
                    .clone()
                    .filter(|o| Some(o.student.as_str()) == f.subject.as_deref())
            } else {
                signed_in.cloned()
            }
        };
        let mut owners: Vec<Owner> = appeared
            .iter()
            .chain(cleared)
            .filter_map(|f| whose(f))
            .collect();
        owners.sort_by(|a, b| (&a.origin, &a.student).cmp(&(&b.origin, &b.student)));
        owners.dedup();
        for owner in owners {
            let mine = |list: &[&Finding]| -> Vec<Finding> {
                list.iter()
                    .filter(|f| whose(f).as_ref() == Some(&owner))
                    .map(|f| (*f).clone())
                    .collect()
            };
            let (appeared, cleared) = (mine(appeared), mine(cleared));
            self.report(
                &owner,
                &appeared.iter().collect::<Vec<_>>(),
                &cleared.iter().collect::<Vec<_>>(),
            );
        }
    }

    /// Reports findings that appeared or cleared as security events of `owner`.
    fn report(&self, owner: &Owner, appeared: &[&Finding], cleared: &[&Finding]) {
        let owner = owner.clone();
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

    /// Queues every ended outage not reported yet as a `network.outage` event of the student
    /// signed in when it began (with their attempt then in progress, if any), for the
    /// attempt's timeline on the server. The event id is made of this computer's fingerprint
    /// and the outage's start, so a report queued twice (a crash in between) is one on the
    /// server.
    pub fn report_outages(&self) {
        let store = self.inner.queue.store();
        type Row = (i64, String, i64, i64, String, String);
        let rows: Vec<Row> = {
            let conn = store.lock();
            let Ok(mut stmt) = conn.prepare_cached(
                "SELECT id, state, CAST(started_at AS INTEGER), CAST(ended_at AS INTEGER),
                        origin, student FROM outages
                 WHERE reported = 0 AND ended_at IS NOT NULL AND student IS NOT NULL
                 ORDER BY id LIMIT 100",
            ) else {
                return;
            };
            let Ok(rows) = stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            }) else {
                return;
            };
            rows.filter_map(Result::ok).collect()
        };
        if rows.is_empty() {
            return;
        }
        let fingerprint = self.machine().fingerprint;
        let rfc3339 = crate::clock::rfc3339;
        let mut by_owner: std::collections::BTreeMap<
            (String, String),
            (Vec<serde_json::Value>, Vec<i64>),
        > = Default::default();
        for (id, state, started, ended, origin, student) in rows {
            let owner = Owner::new(origin.clone(), student.clone());
            let attempt = self.attempt_of(&owner);
            let (events, ids) = by_owner.entry((origin, student)).or_default();
            events.push(serde_json::json!({
                "id": format!("outage-{fingerprint}-{started}"),
                "type": "network.outage",
                "at": rfc3339(ended),
                "attrs": {
                    "state": state,
                    "started_at": rfc3339(started),
                    "ended_at": rfc3339(ended),
                    "duration_ms": ended - started,
                    "attempt_id": attempt,
                    "device": fingerprint,
                },
            }));
            ids.push(id);
        }
        for ((origin, student), (events, ids)) in by_owner {
            let owner = Owner::new(origin, student);
            let events = serde_json::Value::Array(events);
            let sent = crate::queue::reported::send_noted(
                &self.inner.queue,
                &owner,
                events,
                crate::queue::reported::Noted::Outages,
                &ids,
            );
            if let Err(error) = sent {
                tracing::warn!(error = %store.error(error), "outages could not be marked reported");
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
                    let _ = tokio::task::spawn_blocking(move || {
                        applying.apply(findings);
                        applying.report_outages();
                    })
                    .await;
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(CHECK_EVERY) => {}
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(gateway: &str) -> Option<NetworkIdentity> {
        Some(NetworkIdentity {
            interface: "eth0".into(),
            gateway: gateway.parse().unwrap(),
            gateway_mac: None,
        })
    }

    #[test]
    fn an_attempt_keeps_the_network_it_began_on() {
        let mut tracked = AttemptNetwork::default();
        let pair = |t: Option<(NetworkIdentity, NetworkIdentity)>| {
            t.map(|(a, b)| (a.gateway.to_string(), b.gateway.to_string()))
        };
        let s = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        // No attempt: nothing tracked.
        assert_eq!(pair(tracked.observe(None, network("10.0.0.1"))), None);
        // The attempt begins on the lab's network…
        assert_eq!(
            pair(tracked.observe(Some("a1"), network("10.0.0.1"))),
            s("10.0.0.1", "10.0.0.1")
        );
        // …goes offline (kept as it was)…
        assert_eq!(
            pair(tracked.observe(Some("a1"), None)),
            s("10.0.0.1", "10.0.0.1")
        );
        // …comes back on another.
        assert_eq!(
            pair(tracked.observe(Some("a1"), network("192.168.1.1"))),
            s("10.0.0.1", "192.168.1.1")
        );
        // The next attempt begins afresh.
        assert_eq!(
            pair(tracked.observe(Some("a2"), network("192.168.1.1"))),
            s("192.168.1.1", "192.168.1.1")
        );
        assert_eq!(pair(tracked.observe(None, network("192.168.1.1"))), None);
        assert_eq!(
            pair(tracked.observe(Some("a3"), None)),
            None,
            "an attempt begun offline"
        );
    }
}
