//! Fleet readiness for IT: which machines are not ready for an exam at a time, and why.
//!
//! Each app reports its machine's readiness as a `device.readiness` event (low-priority
//! telemetry, at its start and then daily; attrs:
//! [`exam_contract::readiness::DeviceReadiness`]): its version and lab, the machine's own
//! lines as the app judged them (disk, clock, keychain, prohibited programs, displays), every
//! exam package kept on it with that exam's verdict, and the work waiting there (counts, no
//! names). The server keeps the latest report of each machine ([`on_report`]) and answers
//! `GET /v1/admin/machines/readiness` ([`handler`]) from it, beside what else it knows of the
//! machine (its minute summaries and security events: when it was last seen).
//!
//! Invariants:
//! - A report never fails the request that carried it: one that cannot be read is kept as an
//!   event and left out here (like a minute summary).
//! - The latest report wins by the app's `checked_at`: an older one that arrives late (a
//!   queue drained after a newer report) never replaces a newer one.
//! - The verdict is a pure function ([`verdict`], a table test) of the machine's facts, the
//!   exam, the cutoff and the thresholds. The exam's `min_client_version` is judged by the
//!   rule the app applies itself ([`exam_contract::readiness::version_allowed`]); the clock
//!   and the disk by the fleet insights' thresholds (`--insight clock_skew_s=…`,
//!   `disk_reserve_mb=…`), so the console's two views cannot disagree.
//! - Every known machine is listed: one that reported, and one seen otherwise in the last
//!   [`KNOWN_DAYS`] days (its minute summaries or security events) without a report.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use exam_contract::readiness::{self as contract, DeviceReadiness, ReadinessState, VersionCheck};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::problem::{ApiError, Download, Reply};
use crate::reports::model::{columns, Cell, Fact, Sheet, Table};
use crate::routes::Ctx;

pub use contract::EVENT_TYPE;

/// A machine not heard from since this long before the time asked about (or before now, if
/// that is earlier) is "not seen": apps report daily, so a day and an hour of slack.
pub const SILENT_AFTER_H: i64 = 25;
/// Machines seen only through their minute summaries or security events are known this long.
pub const KNOWN_DAYS: i64 = 14;
/// The most machines one answer lists.
const MAX_MACHINES: usize = 5000;

/// A `device.readiness` event a student's app sent from `ctx.ip`, received for the first time:
/// kept as its machine's latest report unless a newer one is there, or it cannot be read.
pub fn on_report(
    ctx: &Ctx<'_>,
    tx: &Connection,
    user_id: i64,
    attrs: &Map<String, Value>,
) -> Result<(), ApiError> {
    let report: DeviceReadiness = match serde_json::from_value(Value::Object(attrs.clone())) {
        Ok(report) => report,
        Err(why) => {
            tracing::debug!(%why, user_id, "a readiness report left out of the fleet's readiness");
            return Ok(());
        }
    };
    let device = report.device.trim();
    if device.is_empty() || device.chars().count() > 200 || report.app_version.chars().count() > 200
    {
        tracing::debug!(
            user_id,
            "a readiness report without a usable device or version"
        );
        return Ok(());
    }
    let now_ms = ctx.now.timestamp_millis();
    // The app's clock may be off; a report "from the future" counts as received now.
    let checked_ms = DateTime::parse_from_rfc3339(&report.checked_at)
        .map(|t| t.timestamp_millis())
        .unwrap_or(now_ms)
        .min(now_ms + Duration::days(1).num_milliseconds());
    let lab = report
        .lab
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.chars().take(200).collect::<String>());
    tx.execute(
        "INSERT INTO machine_readiness (device, lab, subnet, app_version, checked_ms, received_ms,
                                        user_id, report)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (device) DO UPDATE SET lab = ?2, subnet = ?3, app_version = ?4,
             checked_ms = ?5, received_ms = ?6, user_id = ?7, report = ?8
         WHERE ?5 >= machine_readiness.checked_ms",
        rusqlite::params![
            device,
            lab,
            crate::fleet::subnet(ctx.ip),
            report.app_version.trim(),
            checked_ms,
            now_ms,
            user_id,
            Value::Object(attrs.clone()).to_string(),
        ],
    )?;
    Ok(())
}

// ---- the verdict (pure) -------------------------------------------------------------------

/// What is known of one machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Machine {
    pub device: String,
    pub lab: Option<String>,
    pub subnet: Option<String>,
    pub app_version: Option<String>,
    /// Its last contact of any kind (report, minute summary, security event), server's clock.
    pub last_seen_ms: Option<i64>,
    /// Its latest readiness report, and when the server received it.
    pub report: Option<DeviceReadiness>,
    pub reported_ms: Option<i64>,
}

/// The exam asked about.
#[derive(Debug, Clone, PartialEq)]
pub struct Exam {
    pub id: String,
    pub title: String,
    pub version: u32,
    pub opens_at: String,
    pub closes_at: String,
    pub min_client_version: Option<String>,
}

/// When the clock and the disk count against a machine (the fleet insights' thresholds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub clock_skew_s: f64,
    pub disk_reserve_mb: f64,
}

impl From<&crate::fleet::insights::Thresholds> for Thresholds {
    fn from(t: &crate::fleet::insights::Thresholds) -> Self {
        Self {
            clock_skew_s: t.clock_skew_s,
            disk_reserve_mb: t.disk_reserve_mb,
        }
    }
}

/// One reason, as a code for machines and words for people (English, like every other
/// sentence of the console).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: String,
    pub text: String,
}

fn reason(code: &str, text: impl Into<String>) -> Reason {
    Reason {
        code: code.to_string(),
        text: text.into(),
    }
}

/// A machine's verdict: ready when nothing stands in the way (`reasons` is empty);
/// `warnings` are worth a look but stop nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub ready: bool,
    pub reasons: Vec<Reason>,
    pub warnings: Vec<Reason>,
}

/// "2026-12-01 08:00 UTC".
fn shown_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Whether `machine` is ready for `exam` (none: the machine alone), given that it must have
/// been seen since `cutoff_ms`.
pub fn verdict(
    machine: &Machine,
    exam: Option<&Exam>,
    cutoff_ms: i64,
    thresholds: Thresholds,
) -> Verdict {
    let mut reasons = Vec::new();
    let mut warnings = Vec::new();
    match machine.last_seen_ms {
        Some(seen) if seen < cutoff_ms => reasons.push(reason(
            "not_seen",
            format!(
                "not seen since {} (before {})",
                shown_ms(seen),
                shown_ms(cutoff_ms)
            ),
        )),
        None => reasons.push(reason("not_seen", "never seen")),
        _ => {}
    }
    let Some(report) = &machine.report else {
        reasons.push(reason(
            "no_report",
            "no readiness report: its app does not report readiness (an older version) or has \
             not run with a student signed in",
        ));
        if let (Some(exam), Some(version)) = (exam, &machine.app_version) {
            version_reason(exam, version, &mut reasons, &mut warnings);
        }
        return Verdict {
            ready: false,
            reasons,
            warnings,
        };
    };
    if let Some(exam) = exam {
        version_reason(exam, &report.app_version, &mut reasons, &mut warnings);
        match report.exams.iter().find(|e| e.exam_id == exam.id) {
            None => reasons.push(reason(
                "exam_not_downloaded",
                "the exam is not downloaded on it",
            )),
            Some(kept) => {
                if kept.version.is_some_and(|v| v < exam.version) {
                    reasons.push(reason(
                        "package_outdated",
                        format!(
                            "version {} of the exam is downloaded; the server has version {}",
                            kept.version.unwrap_or_default(),
                            exam.version
                        ),
                    ));
                }
                for code in &kept.reasons {
                    // Judged here already, from the server's own facts.
                    if code == "package_outdated"
                        || code == "version_too_old"
                        || code == "version_unknown"
                    {
                        continue;
                    }
                    match code.as_str() {
                        "package_damaged" => reasons.push(reason(
                            code,
                            "its downloaded copy fails the checks: download it again",
                        )),
                        "start_code_needed" => warnings.push(reason(
                            code,
                            "the server was out of reach when it checked: a sealed exam would \
                             need the proctor's start code",
                        )),
                        other if !kept.ready => reasons.push(reason(other, other)),
                        other => warnings.push(reason(other, other)),
                    }
                }
            }
        }
    }
    for check in &report.checks {
        let value = check.value;
        match check.code.as_str() {
            "disk" => match value {
                Some(free) if free < thresholds.disk_reserve_mb => reasons.push(reason(
                    "disk_low",
                    format!(
                        "{free:.0} MiB free on the disk of the app's data (less than {:.0} MiB)",
                        thresholds.disk_reserve_mb
                    ),
                )),
                None if check.state == ReadinessState::Fail => {
                    reasons.push(reason("disk_low", "the disk of the app's data is full"))
                }
                _ => {}
            },
            "clock" => match value {
                Some(off) if off.abs() > thresholds.clock_skew_s => reasons.push(reason(
                    "clock_off",
                    format!(
                        "its clock is {:.0} s {} the server's",
                        off.abs(),
                        if off > 0.0 { "behind" } else { "ahead of" }
                    ),
                )),
                None if check.state != ReadinessState::Ok => warnings.push(reason(
                    "clock_unknown",
                    "its clock has not been compared with the server's yet",
                )),
                _ => {}
            },
            other if check.state != ReadinessState::Ok => {
                let (code, what) = match other {
                    "keychain" => ("keychain", "the OS keychain fails".to_string()),
                    "prohibited_apps" => (
                        "prohibited_apps",
                        format!(
                            "prohibited programs run ({})",
                            check
                                .detail
                                .as_deref()
                                .unwrap_or("see the machine's history")
                        ),
                    ),
                    "displays" => (
                        "extra_displays",
                        format!(
                            "{} connected; the policy allows one",
                            plural(value.unwrap_or(2.0) as u32, "display", "displays")
                        ),
                    ),
                    other => (other, other.to_string()),
                };
                let detail = match (&check.detail, code) {
                    (Some(d), "keychain") => format!("{what}: {d}"),
                    _ => what,
                };
                if check.state == ReadinessState::Fail || code != "keychain" {
                    reasons.push(reason(code, detail));
                } else {
                    warnings.push(reason(code, detail));
                }
            }
            _ => {}
        }
    }
    let waiting = report.waiting;
    if waiting.items > 0 {
        reasons.push(reason(
            "work_waiting",
            format!(
                "{} waiting to be sent ({})",
                plural(waiting.items, "item", "items"),
                plural(waiting.students.max(1), "student", "students")
            ),
        ));
    }
    if waiting.refused > 0 {
        reasons.push(reason(
            "work_refused",
            format!(
                "{} refused by the server and kept on it for IT",
                plural(waiting.refused, "item", "items")
            ),
        ));
    }
    Verdict {
        ready: reasons.is_empty(),
        reasons,
        warnings,
    }
}

fn version_reason(
    exam: &Exam,
    version: &str,
    reasons: &mut Vec<Reason>,
    warnings: &mut Vec<Reason>,
) {
    let min = exam.min_client_version.as_deref();
    match contract::version_allowed(version, min) {
        VersionCheck::Allowed => {}
        VersionCheck::TooOld => reasons.push(reason(
            "version_too_old",
            format!(
                "app {version} is older than the {} this exam needs",
                min.unwrap_or_default()
            ),
        )),
        VersionCheck::Unknown => warnings.push(reason(
            "version_unknown",
            format!(
                "app version `{version}` cannot be compared with the exam's minimum `{}`",
                min.unwrap_or_default()
            ),
        )),
    }
}

// ---- reading the database -----------------------------------------------------------------

/// The exam `id` as the verdict needs it; 404 when there is none.
pub fn exam(tx: &Connection, id: &str) -> Result<Exam, ApiError> {
    tx.query_row(
        "SELECT id, title, version, opens_at, closes_at, min_client_version FROM exams
         WHERE id = ?1",
        [id],
        |r| {
            Ok(Exam {
                id: r.get(0)?,
                title: r.get(1)?,
                version: r.get(2)?,
                opens_at: r.get(3)?,
                closes_at: r.get(4)?,
                min_client_version: r.get(5)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found(format!("there is no exam `{}`", shown(id))))
}

/// Every machine known since `known_from_ms`, by device.
pub fn machines(tx: &Connection, known_from_ms: i64) -> rusqlite::Result<Vec<Machine>> {
    let mut known: BTreeMap<String, Machine> = BTreeMap::new();
    let seen = |m: &mut Machine, at: Option<i64>| {
        if let Some(at) = at {
            m.last_seen_ms = Some(m.last_seen_ms.map_or(at, |s| s.max(at)));
        }
    };
    let mut stmt = tx.prepare_cached(
        "SELECT device, lab, subnet, app_version, received_ms, report FROM machine_readiness",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    for row in rows {
        let (device, lab, subnet, version, received, report) = row?;
        let m = known.entry(device.clone()).or_default();
        m.device = device;
        m.lab = lab;
        m.subnet = Some(subnet);
        m.app_version = Some(version);
        m.report = serde_json::from_str(&report).ok();
        m.reported_ms = Some(received);
        seen(m, Some(received));
    }
    // The latest minute of each machine (SQLite takes the bare columns from the MAX row).
    let mut stmt = tx.prepare_cached(
        "SELECT device, lab, subnet, app_version, MAX(received_ms) FROM metric_minutes
         WHERE minute_ms >= ?1 GROUP BY device",
    )?;
    let rows = stmt.query_map([known_from_ms], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    for row in rows {
        let (device, lab, subnet, version, received) = row?;
        let m = known.entry(device.clone()).or_default();
        m.device = device;
        if m.report.is_none() {
            m.lab = m.lab.take().or(lab);
            m.subnet = m.subnet.take().or(Some(subnet));
            m.app_version = m.app_version.take().or(version);
        }
        seen(m, Some(received));
    }
    let known_from = DateTime::<Utc>::from_timestamp_millis(known_from_ms)
        .map(crate::rfc3339)
        .unwrap_or_default();
    let mut stmt = tx.prepare_cached(
        "SELECT device, MAX(seen_at), ip FROM device_sightings WHERE seen_at >= ?1 GROUP BY device",
    )?;
    let rows = stmt.query_map([known_from], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (device, at, ip) = row?;
        let m = known.entry(device.clone()).or_default();
        m.device = device;
        if m.subnet.is_none() {
            m.subnet = ip.parse().ok().map(crate::fleet::subnet);
        }
        let at = DateTime::parse_from_rfc3339(&at)
            .ok()
            .map(|t| t.timestamp_millis());
        seen(m, at);
    }
    Ok(known.into_values().collect())
}

// ---- the endpoint -------------------------------------------------------------------------

fn shown(value: &str) -> String {
    value.chars().take(100).collect()
}

fn bad_query(parameter: &'static str, detail: String) -> ApiError {
    ApiError::bad_request("invalid_query", detail).with_extra(json!({ "parameter": parameter }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// One machine in the answer.
#[derive(Debug, Serialize)]
struct Item<'a> {
    device: &'a str,
    lab: Option<&'a str>,
    subnet: Option<&'a str>,
    app_version: Option<&'a str>,
    last_seen: Option<String>,
    checked_at: Option<&'a str>,
    ready: bool,
    reasons: &'a [Reason],
    warnings: &'a [Reason],
    waiting: Option<contract::Waiting>,
    checks: Vec<Value>,
    /// The exam asked about, as the machine reported it (none: not downloaded, or no exam).
    exam: Option<Value>,
    /// Exam packages kept on it.
    exams_kept: usize,
}

/// `GET /v1/admin/machines/readiness?exam=&at=&format=json|csv`: every known machine (its lab,
/// app version, last contact, waiting work and latest report) with whether it is ready for
/// `exam` at `at` and, if not, why. `at` defaults to the exam's opening when that lies ahead,
/// else now; a machine not seen since [`SILENT_AFTER_H`] hours before `at` (or before now, if
/// earlier) is not ready. Without `exam`, the machines alone. Not-ready machines first.
pub fn handler(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let format = match ctx.query.get("format").map(String::as_str) {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(bad_query(
                "format",
                format!("format `{}` is not one of json, csv", shown(other)),
            ))
        }
    };
    let exam = match ctx.query.get("exam") {
        Some(id) if !id.is_empty() => Some(exam(tx, id)?),
        Some(_) => return Err(bad_query("exam", "exam is empty: an exam's id".into())),
        None => None,
    };
    let at = match ctx.query.get("at") {
        Some(value) => DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                bad_query(
                    "at",
                    format!(
                        "at `{}` is not an RFC 3339 time ({e}), e.g. 2026-12-01T09:00:00Z",
                        shown(value)
                    ),
                )
            })?,
        None => exam
            .as_ref()
            .and_then(|e| DateTime::parse_from_rfc3339(&e.opens_at).ok())
            .map(|t| t.with_timezone(&Utc))
            .filter(|opens| *opens > ctx.now)
            .unwrap_or(ctx.now),
    }
    // Times before mid-January 1970 are read as that (nothing was seen then), so every time
    // said back, the cutoff included, is one RFC 3339 can write.
    .max(DateTime::<Utc>::UNIX_EPOCH + Duration::days(KNOWN_DAYS + 2));
    let reference = at.min(ctx.now);
    let cutoff = reference - Duration::hours(SILENT_AFTER_H);
    let known_from = reference - Duration::days(KNOWN_DAYS);
    let thresholds = Thresholds::from(&ctx.state.config.insights);
    let mut machines = machines(tx, known_from.timestamp_millis())?;
    machines.truncate(MAX_MACHINES);
    let mut judged: Vec<(Machine, Verdict)> = machines
        .into_iter()
        .map(|m| {
            let v = verdict(&m, exam.as_ref(), cutoff.timestamp_millis(), thresholds);
            (m, v)
        })
        .collect();
    judged.sort_by(|(a, va), (b, vb)| {
        va.ready
            .cmp(&vb.ready)
            .then_with(|| lab_of(a).cmp(&lab_of(b)))
            .then_with(|| a.device.cmp(&b.device))
    });
    let not_ready = judged.iter().filter(|(_, v)| !v.ready).count();
    match format {
        Format::Json => {
            let items: Vec<Value> = judged
                .iter()
                .map(|(m, v)| serde_json::to_value(item(m, v, exam.as_ref())))
                .collect::<Result<_, _>>()
                .map_err(|e| ApiError::internal(format!("the answer could not be written: {e}")))?;
            Ok(Reply::ok(json!({
                "exam": exam.as_ref().map(|e| json!({
                    "id": e.id, "title": e.title, "version": e.version, "opens_at": e.opens_at,
                    "closes_at": e.closes_at, "min_client_version": e.min_client_version,
                })),
                "at": crate::rfc3339(at),
                "cutoff": crate::rfc3339(cutoff),
                "generated_at": crate::rfc3339(ctx.now),
                "machines": judged.len(),
                "ready": judged.len() - not_ready,
                "not_ready": not_ready,
                "items": items,
            })))
        }
        Format::Csv => {
            let sheet = sheet(&judged, exam.as_ref(), at, cutoff, ctx.now);
            let bytes = crate::reports::csv::render(&sheet).into_bytes();
            let filename = filename(exam.as_ref(), at);
            Ok(Reply {
                file: Some(Arc::new(Download {
                    content_type: "text/csv; charset=utf-8",
                    filename: filename.clone(),
                    bytes: bytes.clone(),
                })),
                ..Reply::ok(json!({
                    "filename": filename, "content_type": "text/csv; charset=utf-8",
                    "size": bytes.len(),
                }))
            })
        }
    }
}

/// The lab a machine is listed under: its name, else its subnet.
fn lab_of(m: &Machine) -> String {
    m.lab
        .clone()
        .or_else(|| m.subnet.clone())
        .unwrap_or_default()
}

fn item<'a>(m: &'a Machine, v: &'a Verdict, exam: Option<&Exam>) -> Item<'a> {
    let report = m.report.as_ref();
    Item {
        device: &m.device,
        lab: m.lab.as_deref(),
        subnet: m.subnet.as_deref(),
        app_version: m.app_version.as_deref(),
        last_seen: m
            .last_seen_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .map(crate::rfc3339),
        checked_at: report.map(|r| r.checked_at.as_str()),
        ready: v.ready,
        reasons: &v.reasons,
        warnings: &v.warnings,
        waiting: report.map(|r| r.waiting),
        checks: report
            .map(|r| {
                r.checks
                    .iter()
                    .map(|c| {
                        json!({"code": c.code, "state": c.state, "value": c.value,
                               "detail": c.detail})
                    })
                    .collect()
            })
            .unwrap_or_default(),
        exam: exam.and_then(|e| {
            report?.exams.iter().find(|k| k.exam_id == e.id).map(|k| {
                json!({"version": k.version, "sealed": k.sealed, "ready": k.ready,
                           "reasons": k.reasons})
            })
        }),
        exams_kept: report.map_or(0, |r| r.exams.len()),
    }
}

/// The answer as the reports' tabular view, for the CSV (a byte order mark, formula-safe).
fn sheet(
    judged: &[(Machine, Verdict)],
    exam: Option<&Exam>,
    at: DateTime<Utc>,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Sheet {
    let not_ready = judged.iter().filter(|(_, v)| !v.ready).count();
    let count = |n: usize| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let mut facts = vec![
        Fact::new("kind", "Kind", Cell::text("machine_readiness")),
        Fact::new(
            "exam",
            "Exam",
            Cell::opt(exam, |e| Cell::text(e.id.clone())),
        ),
        Fact::new(
            "min_client_version",
            "Minimum app version",
            Cell::opt(exam.and_then(|e| e.min_client_version.clone()), Cell::Text),
        ),
        Fact::new("at", "At", Cell::Time(at)),
        Fact::new("not_seen_before", "Not seen before", Cell::Time(cutoff)),
        Fact::new("generated_at", "Generated", Cell::Time(now)),
        Fact::new("times", "Times", Cell::text("UTC")),
    ];
    facts.extend([
        Fact::new("machines", "Machines", count(judged.len())),
        Fact::new("ready", "Ready", count(judged.len() - not_ready)),
        Fact::new("not_ready", "Not ready", count(not_ready)),
    ]);
    let time = |ms: Option<i64>| {
        Cell::opt(
            ms.and_then(DateTime::<Utc>::from_timestamp_millis),
            Cell::Time,
        )
    };
    let rows = judged
        .iter()
        .map(|(m, v)| {
            let waiting = m.report.as_ref().map(|r| r.waiting);
            let join = |list: &[Reason], f: fn(&Reason) -> &str| {
                list.iter().map(f).collect::<Vec<_>>().join("; ")
            };
            vec![
                Cell::text(m.device.clone()),
                Cell::opt(m.lab.clone(), Cell::Text),
                Cell::opt(m.subnet.clone(), Cell::Text),
                Cell::opt(m.app_version.clone(), Cell::Text),
                time(m.last_seen_ms),
                Cell::Bool(v.ready),
                Cell::text(join(&v.reasons, |r| r.code.as_str())),
                Cell::text(join(&v.reasons, |r| r.text.as_str())),
                Cell::text(join(&v.warnings, |r| r.text.as_str())),
                Cell::opt(waiting, |w| Cell::Int(i64::from(w.items))),
                Cell::opt(waiting, |w| Cell::Int(i64::from(w.refused))),
            ]
        })
        .collect();
    Sheet {
        title: "Machine readiness".into(),
        subtitle: String::new(),
        generated: String::new(),
        facts,
        tables: vec![Table {
            name: "machines",
            title: "Machines",
            columns: columns(&[
                ("device", "Machine"),
                ("lab", "Lab"),
                ("subnet", "Subnet"),
                ("app_version", "App version"),
                ("last_seen", "Last seen"),
                ("ready", "Ready"),
                ("reasons", "Reasons"),
                ("why", "Why"),
                ("warnings", "Warnings"),
                ("waiting_items", "Waiting"),
                ("refused_items", "Refused"),
            ]),
            rows,
            empty: "No machine is known.",
        }],
    }
}

/// `readiness-{exam}-{YYYYMMDDTHHMMZ}.csv` in ASCII letters, digits, `.`, `-` and `_`.
fn filename(exam: Option<&Exam>, at: DateTime<Utc>) -> String {
    let subject: String = exam
        .map(|e| e.id.as_str())
        .unwrap_or("machines")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    let subject = subject.trim_matches(['-', '.']);
    format!(
        "readiness-{}-{}.csv",
        if subject.is_empty() { "exam" } else { subject },
        at.format("%Y%m%dT%H%MZ")
    )
}

// ---- the exam's minimum app version (admin) -----------------------------------------------

/// `PUT /v1/admin/exams/{exam_id}/min-client-version` `{min_client_version: "0.2.0" | null}`:
/// the oldest app version that may take the exam (null: any), audited. A body without exactly
/// that member is 400 `invalid_body`; a string that is not a version (`MAJOR.MINOR.PATCH`
/// with an optional pre-release, at most 64 characters) 422 `validation`.
pub fn set_min_version(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let exam = exam(tx, ctx.param("exam_id"))?;
    let body: Map<String, Value> = crate::api::parse_json(ctx.body)?;
    let invalid = || {
        ApiError::bad_request(
            "invalid_body",
            "the body must be {\"min_client_version\": a version like \"0.2.0\", or null}",
        )
    };
    if body.len() != 1 {
        return Err(invalid());
    }
    let min = match body.get("min_client_version") {
        Some(Value::Null) => None,
        Some(Value::String(v))
            if v.chars().count() <= 64
                && v.trim() == v
                && !v.starts_with('v')
                && contract::parse_version(v).is_some() =>
        {
            Some(v.clone())
        }
        Some(Value::String(v)) => {
            return Err(ApiError::validation(format!(
                "min_client_version `{}` is not a version like 0.2.0 (MAJOR.MINOR.PATCH)",
                shown(v)
            )))
        }
        _ => return Err(invalid()),
    };
    tx.execute(
        "UPDATE exams SET min_client_version = ?2 WHERE id = ?1",
        (&exam.id, &min),
    )?;
    crate::audit::record(
        tx,
        ctx.now,
        "exam_min_client_version",
        None,
        Some(ctx.ip),
        None,
        json!({"exam_id": exam.id, "from": exam.min_client_version, "to": min}),
    )?;
    Ok(Reply::ok(
        json!({"exam_id": exam.id, "min_client_version": min}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::{CheckReport, ExamReport, Waiting};

    const HOUR: i64 = 3_600_000;
    const NOW: i64 = 1_796_112_000_000; // 2026-12-01T08:00:00Z

    fn report(version: &str, exams: Vec<ExamReport>, checks: Vec<CheckReport>) -> DeviceReadiness {
        DeviceReadiness {
            device: "m1".into(),
            lab: Some("Lab A".into()),
            app_version: version.into(),
            checked_at: "2026-12-01T07:00:00.000Z".into(),
            checks,
            exams,
            waiting: Waiting::default(),
        }
    }

    fn kept(id: &str, version: u32, reasons: &[&str]) -> ExamReport {
        ExamReport {
            exam_id: id.into(),
            version: Some(version),
            sealed: true,
            ready: !reasons.contains(&"package_damaged"),
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn check(code: &str, state: ReadinessState, value: Option<f64>) -> CheckReport {
        CheckReport {
            code: code.into(),
            state,
            value,
            detail: (code == "prohibited_apps").then(|| "anydesk".into()),
        }
    }

    fn machine(report: Option<DeviceReadiness>, seen_hours_ago: i64) -> Machine {
        Machine {
            device: "m1".into(),
            lab: Some("Lab A".into()),
            subnet: Some("10.0.0.0/24".into()),
            app_version: report.as_ref().map(|r| r.app_version.clone()),
            last_seen_ms: Some(NOW - seen_hours_ago * HOUR),
            reported_ms: report.as_ref().map(|_| NOW - seen_hours_ago * HOUR),
            report,
        }
    }

    fn exam(min: Option<&str>) -> Exam {
        Exam {
            id: "midterm".into(),
            title: "Midterm".into(),
            version: 2,
            opens_at: "2026-12-02T09:00:00Z".into(),
            closes_at: "2026-12-02T11:00:00Z".into(),
            min_client_version: min.map(str::to_string),
        }
    }

    /// (case, machine, the exam's minimum, reasons, warnings)
    type Case = (
        &'static str,
        Machine,
        Option<&'static str>,
        Vec<&'static str>,
        Vec<&'static str>,
    );

    #[test]
    fn a_machine_is_ready_or_says_why_not() {
        use ReadinessState::*;
        let thresholds = Thresholds {
            clock_skew_s: 60.0,
            disk_reserve_mb: 512.0,
        };
        let good = || {
            report(
                "0.2.0",
                vec![kept("midterm", 2, &[])],
                vec![
                    check("disk", Ok, Some(20_000.0)),
                    check("clock", Ok, Some(1.0)),
                    check("keychain", Ok, None),
                    check("prohibited_apps", Ok, Some(0.0)),
                    check("displays", Ok, Some(1.0)),
                ],
            )
        };
        let with = |f: &dyn Fn(&mut DeviceReadiness)| {
            let mut r = good();
            f(&mut r);
            Some(r)
        };
        let cutoff = NOW - SILENT_AFTER_H * HOUR;
        let table: Vec<Case> = vec![
            (
                "ready",
                machine(Some(good()), 1),
                Some("0.2.0"),
                vec![],
                vec![],
            ),
            (
                "not seen for two days",
                machine(Some(good()), 48),
                None,
                vec!["not_seen"],
                vec![],
            ),
            (
                "never reported, old app seen in its minutes",
                Machine {
                    app_version: Some("0.1.0".into()),
                    ..machine(None, 1)
                },
                Some("0.2.0"),
                vec!["no_report", "version_too_old"],
                vec![],
            ),
            (
                "too old for the exam",
                machine(with(&|r| r.app_version = "0.1.0".into()), 1),
                Some("0.2.0"),
                vec!["version_too_old"],
                vec![],
            ),
            (
                "a minimum that is not a version",
                machine(Some(good()), 1),
                Some("next"),
                vec![],
                vec!["version_unknown"],
            ),
            (
                "exam not downloaded",
                machine(with(&|r| r.exams.clear()), 1),
                None,
                vec!["exam_not_downloaded"],
                vec![],
            ),
            (
                "an older copy",
                machine(
                    with(&|r| r.exams = vec![kept("midterm", 1, &["package_outdated"])]),
                    1,
                ),
                None,
                vec!["package_outdated"],
                vec![],
            ),
            (
                "a damaged copy, offline when checked",
                machine(
                    with(&|r| {
                        r.exams = vec![kept(
                            "midterm",
                            2,
                            &["package_damaged", "start_code_needed"],
                        )]
                    }),
                    1,
                ),
                None,
                vec!["package_damaged"],
                vec!["start_code_needed"],
            ),
            (
                "disk low, clock off, a program, two displays",
                machine(
                    with(&|r| {
                        r.checks = vec![
                            check("disk", Warn, Some(300.0)),
                            check("clock", Warn, Some(-400.0)),
                            check("prohibited_apps", Fail, Some(1.0)),
                            check("displays", Warn, Some(2.0)),
                        ]
                    }),
                    1,
                ),
                None,
                vec!["disk_low", "clock_off", "prohibited_apps", "extra_displays"],
                vec![],
            ),
            (
                "the clock within the threshold, the keychain failing once",
                machine(
                    with(&|r| {
                        r.checks = vec![
                            check("clock", Warn, Some(45.0)),
                            check("keychain", Warn, None),
                        ]
                    }),
                    1,
                ),
                None,
                vec![],
                vec!["keychain"],
            ),
            (
                "work waiting and refused",
                machine(
                    with(&|r| {
                        r.waiting = Waiting {
                            items: 12,
                            refused: 1,
                            students: 2,
                        }
                    }),
                    1,
                ),
                None,
                vec!["work_waiting", "work_refused"],
                vec![],
            ),
        ];
        for (case, m, min, reasons, warnings) in table {
            let v = verdict(&m, Some(&exam(min)), cutoff, thresholds);
            let codes = |l: &[Reason]| l.iter().map(|r| r.code.clone()).collect::<Vec<_>>();
            assert_eq!(codes(&v.reasons), reasons, "{case}: {:?}", v.reasons);
            assert_eq!(codes(&v.warnings), warnings, "{case}: {:?}", v.warnings);
            assert_eq!(v.ready, reasons.is_empty(), "{case}");
        }
        // Without an exam, only the machine counts.
        let v = verdict(
            &machine(with(&|r| r.exams.clear()), 1),
            None,
            cutoff,
            thresholds,
        );
        assert!(v.ready, "{v:?}");
        // The words say what and how much.
        let v = verdict(
            &machine(with(&|r| r.app_version = "0.1.0".into()), 1),
            Some(&exam(Some("0.2.0"))),
            cutoff,
            thresholds,
        );
        assert_eq!(
            v.reasons[0].text,
            "app 0.1.0 is older than the 0.2.0 this exam needs"
        );
    }

    #[test]
    fn file_names_are_ascii() {
        let at = DateTime::<Utc>::from_timestamp_millis(NOW).unwrap_or_default();
        let mut e = exam(None);
        e.id = "Thi cuối kỳ/2026".into();
        assert_eq!(
            filename(Some(&e), at),
            "readiness-Thi-cu-i-k--2026-20261201T0800Z.csv"
        );
        assert_eq!(filename(None, at), "readiness-machines-20261201T0800Z.csv");
    }
}
