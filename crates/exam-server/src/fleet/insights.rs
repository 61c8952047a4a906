//! The fleet's insights and predictions: rules over the machines' minute summaries that say
//! what a proctor or IT should look at before (or during) an exam day — each with the
//! figures behind it, the machines it is about and a recommendation in plain words — and
//! the capacity an upcoming exam will need.
//!
//! What one machine can see for itself (a slow disk, its own clock, its own backlog) the app
//! says on that machine; what only the fleet shows is said here: several machines' clocks
//! off, one lab's network failing every few minutes, machines still holding work before an
//! exam, a lab's token refreshes failing more each hour, disks filling up, and the peak
//! answer writes the server must take tomorrow.
//!
//! The rules are pure ([`evaluate`] over [`Inputs`]) and table-tested; [`gather`] reads the
//! inputs from `metric_minutes`. Predictions come with their error on past data
//! (`exam_contract::predict`, the same code the app uses).

use std::collections::BTreeMap;

use exam_contract::predict::{self, Backtest, PastExam};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::json;

use crate::problem::{ApiError, Reply};
use crate::routes::Ctx;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// When the rules speak up (`exam-server --insight NAME=VALUE`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// A machine's clock further off than this (s) is skewed…
    pub clock_skew_s: f64,
    /// …and this many skewed machines make a fleet finding (one is that machine's problem).
    pub skewed_machines: f64,
    /// Outages begun in one lab in the last hour…
    pub lab_outages_per_hour: f64,
    /// …on at least this many of its machines (one flaky machine is not the lab's network).
    pub lab_outage_machines: f64,
    /// A machine whose latest summary shows work waiting and no delivery for this long (min).
    pub backlog_min: f64,
    /// A lab's refresh failures rising by more than this per hour (Holt's trend).
    pub refresh_failures_rise_per_h: f64,
    /// The slowest answer save of a minute above this (ms) on a machine, in the last hour.
    pub save_max_ms: f64,
    /// Free space for the queue kept (MiB), and how soon a disk reaching it is reported (h).
    pub disk_reserve_mb: f64,
    pub disk_full_within_h: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            clock_skew_s: 60.0,
            skewed_machines: 2.0,
            lab_outages_per_hour: 6.0,
            lab_outage_machines: 2.0,
            backlog_min: 10.0,
            refresh_failures_rise_per_h: 1.0,
            save_max_ms: 200.0,
            disk_reserve_mb: 512.0,
            disk_full_within_h: 24.0,
        }
    }
}

impl Thresholds {
    pub const NAMES: [&'static str; 9] = [
        "clock_skew_s",
        "skewed_machines",
        "lab_outages_per_hour",
        "lab_outage_machines",
        "backlog_min",
        "refresh_failures_rise_per_h",
        "save_max_ms",
        "disk_reserve_mb",
        "disk_full_within_h",
    ];

    /// `NAME=VALUE` over these thresholds, or what is wrong with it.
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("`{assignment}` is not NAME=VALUE"))?;
        let value: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("`{value}` for {name} is not a number ≥ 0"))?;
        let slot = match name.trim() {
            "clock_skew_s" => &mut self.clock_skew_s,
            "skewed_machines" => &mut self.skewed_machines,
            "lab_outages_per_hour" => &mut self.lab_outages_per_hour,
            "lab_outage_machines" => &mut self.lab_outage_machines,
            "backlog_min" => &mut self.backlog_min,
            "refresh_failures_rise_per_h" => &mut self.refresh_failures_rise_per_h,
            "save_max_ms" => &mut self.save_max_ms,
            "disk_reserve_mb" => &mut self.disk_reserve_mb,
            "disk_full_within_h" => &mut self.disk_full_within_h,
            other => {
                return Err(format!(
                    "`{other}` is not a threshold: one of {}",
                    Self::NAMES.join(", ")
                ))
            }
        };
        *slot = value;
        Ok(())
    }
}

/// One machine as the rules see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Machine {
    pub device: String,
    pub lab: String,
    /// Its clock against the server's (s; positive: ahead), estimated from its summaries'
    /// earliest arrival after their minute ended; none with fewer than 5 summaries.
    pub clock_offset_s: Option<f64>,
    /// Work waiting in its latest summary, and minutes since its summaries last showed a
    /// delivery while it waited (counted over its reported minutes).
    pub queue_depth: f64,
    pub minutes_waiting: f64,
    pub last_seen_ms: i64,
    /// The slowest answer save of any minute in the last hour (ms).
    pub save_max_ms: Option<f64>,
    /// Free space (MiB) samples of the last hours: (s, MiB), oldest first.
    pub free_mb: Vec<(f64, f64)>,
}

/// One lab as the rules see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lab {
    pub lab: String,
    pub outages_last_hour: f64,
    /// Its machines with an outage in the last hour.
    pub machines_with_outages: Vec<String>,
    /// Refresh failures per hour, the last 12 hours, oldest first.
    pub refresh_failures_by_hour: Vec<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    pub machines: Vec<Machine>,
    pub labs: Vec<Lab>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    ClockSkew,
    FrequentOutages,
    Backlog,
    RefreshFailuresRising,
    SlowDisks,
    DiskFillingUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
}

/// One finding: what, about whom, the figures and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Insight {
    pub code: Code,
    pub severity: Severity,
    /// The lab it is about (none: the fleet).
    pub lab: Option<String>,
    /// The machines it is about (their fingerprints).
    pub machines: Vec<String>,
    /// The main figure and the threshold it crossed.
    pub value: f64,
    pub threshold: f64,
    pub evidence: String,
    pub recommendation: String,
    /// For a prediction: how wrong its method was on this data's past.
    pub backtest: Option<Backtest>,
}

fn listed(machines: &[String]) -> String {
    let shown: Vec<&str> = machines
        .iter()
        .take(5)
        .map(|m| m.get(..12).unwrap_or(m))
        .collect();
    let more = machines.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Every finding `inputs` give under `t`, in a stable order (by code, then lab).
pub fn evaluate(inputs: &Inputs, t: &Thresholds) -> Vec<Insight> {
    let mut found = Vec::new();

    let skewed: Vec<&Machine> = inputs
        .machines
        .iter()
        .filter(|m| m.clock_offset_s.is_some_and(|o| o.abs() > t.clock_skew_s))
        .collect();
    if !skewed.is_empty() && skewed.len() as f64 >= t.skewed_machines {
        let worst = skewed
            .iter()
            .filter_map(|m| m.clock_offset_s)
            .fold(0.0_f64, |a, o| if o.abs() > a.abs() { o } else { a });
        let machines: Vec<String> = skewed.iter().map(|m| m.device.clone()).collect();
        found.push(Insight {
            code: Code::ClockSkew,
            severity: Severity::Warning,
            lab: None,
            value: skewed.len() as f64,
            threshold: t.skewed_machines,
            evidence: format!(
                "{} machines' clocks are more than {:.0} s off the server's (the worst {:.0} s {}): {}",
                skewed.len(),
                t.clock_skew_s,
                worst.abs(),
                if worst > 0.0 { "ahead" } else { "behind" },
                listed(&machines)
            ),
            recommendation: "Exam times follow the server, so no student loses time, but logs and \
                             reports from these machines are off: set them to synchronise their \
                             clocks (NTP) from the school's time server."
                .into(),
            machines,
            backtest: None,
        });
    }

    for lab in &inputs.labs {
        if lab.outages_last_hour >= t.lab_outages_per_hour
            && lab.machines_with_outages.len() as f64 >= t.lab_outage_machines
        {
            found.push(Insight {
                code: Code::FrequentOutages,
                severity: Severity::Warning,
                lab: Some(lab.lab.clone()),
                machines: lab.machines_with_outages.clone(),
                value: lab.outages_last_hour,
                threshold: t.lab_outages_per_hour,
                evidence: format!(
                    "{:.0} network outages in {} in the last hour (one every {:.0} min), on {} machines",
                    lab.outages_last_hour,
                    lab.lab,
                    60.0 / lab.outages_last_hour.max(1.0),
                    lab.machines_with_outages.len()
                ),
                recommendation: "Answers are kept on the machines and sent when the network is \
                                 back, but this lab's network (switch, Wi-Fi, captive portal) \
                                 should be checked before the next exam."
                    .into(),
                backtest: None,
            });
        }
        if let Some(rise) =
            predict::rising(&lab.refresh_failures_by_hour, t.refresh_failures_rise_per_h)
        {
            let now = lab.refresh_failures_by_hour.last().copied().unwrap_or(0.0);
            found.push(Insight {
                code: Code::RefreshFailuresRising,
                severity: Severity::Warning,
                lab: Some(lab.lab.clone()),
                machines: Vec::new(),
                value: rise,
                threshold: t.refresh_failures_rise_per_h,
                evidence: format!(
                    "token refresh failures in {} rise by {rise:.1} an hour ({now:.0} in the last \
                     hour; expected next hour {:.0})",
                    lab.lab,
                    (now + rise).max(0.0)
                ),
                recommendation: "Students stay signed in offline and their answers are kept, but \
                                 check this lab's route to the server and its proxy before \
                                 sessions start expiring."
                    .into(),
                backtest: predict::backtest_holt(&lab.refresh_failures_by_hour, 0.5, 0.4, 4, 1),
            });
        }
    }

    let mut by_lab =
        |code: Code, machines: Vec<&Machine>, make: &dyn Fn(&[&Machine]) -> Insight| {
            let mut labs: BTreeMap<&str, Vec<&Machine>> = BTreeMap::new();
            for m in machines {
                labs.entry(m.lab.as_str()).or_default().push(m);
            }
            for (_, machines) in labs {
                let mut insight = make(&machines);
                insight.code = code;
                found.push(insight);
            }
        };

    let waiting: Vec<&Machine> = inputs
        .machines
        .iter()
        .filter(|m| m.queue_depth > 0.0 && m.minutes_waiting >= t.backlog_min)
        .collect();
    by_lab(Code::Backlog, waiting, &|machines| {
        let items: f64 = machines.iter().map(|m| m.queue_depth).sum();
        let longest = machines
            .iter()
            .map(|m| m.minutes_waiting)
            .fold(0.0, f64::max);
        let devices: Vec<String> = machines.iter().map(|m| m.device.clone()).collect();
        Insight {
            code: Code::Backlog,
            severity: Severity::Warning,
            lab: Some(machines[0].lab.clone()),
            value: longest,
            threshold: t.backlog_min,
            evidence: format!(
                "{} machines in {} hold {items:.0} items not yet delivered (waiting up to {longest:.0} min): {}",
                machines.len(),
                machines[0].lab,
                listed(&devices)
            ),
            recommendation: "Nothing is lost — the work is saved on these machines — but they \
                             should be online (and their students signed in once) before the \
                             next exam, so it reaches the server."
                .into(),
            machines: devices,
            backtest: None,
        }
    });

    let slow: Vec<&Machine> = inputs
        .machines
        .iter()
        .filter(|m| m.save_max_ms.is_some_and(|s| s > t.save_max_ms))
        .collect();
    by_lab(Code::SlowDisks, slow, &|machines| {
        let worst = machines
            .iter()
            .filter_map(|m| m.save_max_ms)
            .fold(0.0, f64::max);
        let devices: Vec<String> = machines.iter().map(|m| m.device.clone()).collect();
        Insight {
            code: Code::SlowDisks,
            severity: Severity::Info,
            lab: Some(machines[0].lab.clone()),
            value: worst,
            threshold: t.save_max_ms,
            evidence: format!(
                "answer saves took up to {worst:.0} ms in the last hour on {} machines in {}: {}",
                machines.len(),
                machines[0].lab,
                listed(&devices)
            ),
            recommendation: "Answers are still saved, but a disk this slow may be failing: \
                             check these machines' disks (SMART) before the next exam."
                .into(),
            machines: devices,
            backtest: None,
        }
    });

    let within_s = t.disk_full_within_h * 3600.0;
    let filling: Vec<(&Machine, f64)> = inputs
        .machines
        .iter()
        .filter_map(|m| {
            predict::disk_full_in_s(&m.free_mb, t.disk_reserve_mb)
                .filter(|eta| *eta < within_s)
                .map(|eta| (m, eta))
        })
        .collect();
    let etas: BTreeMap<&str, f64> = filling
        .iter()
        .map(|(m, e)| (m.device.as_str(), *e))
        .collect();
    by_lab(
        Code::DiskFillingUp,
        filling.iter().map(|(m, _)| *m).collect(),
        &|machines| {
            let soonest = machines
                .iter()
                .filter_map(|m| etas.get(m.device.as_str()).copied())
                .fold(f64::INFINITY, f64::min);
            let devices: Vec<String> = machines.iter().map(|m| m.device.clone()).collect();
            let series: Vec<f64> = machines[0].free_mb.iter().map(|(_, v)| *v).collect();
            Insight {
                code: Code::DiskFillingUp,
                severity: Severity::Warning,
                lab: Some(machines[0].lab.clone()),
                value: soonest,
                threshold: within_s,
                evidence: format!(
                    "at the trend of the last hours, {} machines in {} keep less than {:.0} MiB \
                     free for answers within {:.1} h: {}",
                    machines.len(),
                    machines[0].lab,
                    t.disk_reserve_mb,
                    soonest / 3600.0,
                    listed(&devices)
                ),
                recommendation: "Free space on these machines (old downloads, logs, other \
                                 users' files) before the next exam; the app keeps working until \
                                 the disk is full, then refuses new work rather than lose it."
                    .into(),
                machines: devices,
                backtest: predict::backtest_holt(&series, 0.5, 0.3, 4, 1),
            }
        },
    );
    found.sort_by(|a, b| (a.code, &a.lab).cmp(&(b.code, &b.lab)));
    found
}

fn lab_of(labs: &mut BTreeMap<String, Lab>, lab: String) -> &mut Lab {
    labs.entry(lab.clone()).or_insert_with(|| Lab {
        lab,
        ..Lab::default()
    })
}

/// The inputs as of `now_ms`, from `metric_minutes` (the last day for clocks, the last hours
/// for the rest).
pub fn gather(conn: &Connection, now_ms: i64) -> rusqlite::Result<Inputs> {
    let day_ago = now_ms - 24 * HOUR_MS;
    let hour_ago = now_ms - HOUR_MS;
    let mut machines: BTreeMap<String, Machine> = BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT device, COALESCE(lab, 'Subnet ' || subnet), COUNT(*),
                    MIN(received_ms - (minute_ms + 60000)), MAX(received_ms),
                    MAX(CASE WHEN minute_ms >= ?2 THEN save_ms_max END)
             FROM metric_minutes WHERE minute_ms >= ?1
             GROUP BY device",
        )?;
        let rows = stmt.query_map((day_ago, hour_ago), |r| {
            Ok(Machine {
                device: r.get(0)?,
                lab: r.get(1)?,
                clock_offset_s: (r.get::<_, i64>(2)? >= 5)
                    .then(|| r.get::<_, i64>(3).map(|gap| -(gap as f64) / 1000.0))
                    .transpose()?,
                last_seen_ms: r.get(4)?,
                save_max_ms: r.get(5)?,
                ..Machine::default()
            })
        })?;
        for machine in rows {
            let machine = machine?;
            machines.insert(machine.device.clone(), machine);
        }
    }
    // The backlog: work waiting in a machine's latest summary, since the last minute it was
    // empty or delivered something (or its oldest minute of the 6 hours read) — until now, so
    // a machine that went quiet with work on it counts the time it has been quiet.
    {
        let mut stmt = conn.prepare_cached(
            "SELECT device, minute_ms, COALESCE(queue_depth_max, 0), COALESCE(delivered_sum, 0)
             FROM metric_minutes WHERE minute_ms >= ?1
             ORDER BY device, minute_ms DESC",
        )?;
        let since = now_ms - 6 * HOUR_MS;
        let rows = stmt.query_map((since,), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, f64>(2)?,
                r.get::<_, f64>(3)?,
            ))
        })?;
        // Newest first per machine: (depth now, the minute work began waiting, settled).
        let mut seen: BTreeMap<String, (f64, i64, bool)> = BTreeMap::new();
        for row in rows {
            let (device, minute, depth, delivered) = row?;
            let entry = seen.entry(device).or_insert((depth, minute, depth <= 0.0));
            if entry.2 {
                continue;
            }
            if delivered > 0.0 || depth <= 0.0 {
                entry.1 = minute + MINUTE_MS;
                entry.2 = true;
            } else {
                entry.1 = minute;
            }
        }
        for (device, (depth, began, _)) in seen {
            if let Some(machine) = machines.get_mut(&device) {
                machine.queue_depth = depth;
                if depth > 0.0 {
                    machine.minutes_waiting = ((now_ms - began).max(0) / MINUTE_MS) as f64;
                }
            }
        }
    }
    // Free space every 10 minutes of the last 6 hours.
    {
        let mut stmt = conn.prepare_cached(
            "SELECT device, minute_ms, disk_free_mb_min FROM metric_minutes
             WHERE minute_ms >= ?1 AND disk_free_mb_count IS NOT NULL
               AND minute_ms % 600000 = 0
             ORDER BY device, minute_ms",
        )?;
        let rows = stmt.query_map((now_ms - 6 * HOUR_MS,), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })?;
        for row in rows {
            let (device, minute, free) = row?;
            if let Some(m) = machines.get_mut(&device) {
                m.free_mb.push((minute as f64 / 1000.0, free));
            }
        }
    }
    // Labs: outages in the last hour, refresh failures per hour over 12.
    let mut labs: BTreeMap<String, Lab> = BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT COALESCE(lab, 'Subnet ' || subnet), device, SUM(outages_sum)
             FROM metric_minutes WHERE minute_ms >= ?1 AND outages_sum > 0
             GROUP BY 1, 2 ORDER BY 1, 2",
        )?;
        let rows = stmt.query_map((hour_ago,), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })?;
        for row in rows {
            let (lab, device, outages) = row?;
            let entry = lab_of(&mut labs, lab);
            entry.outages_last_hour += outages;
            entry.machines_with_outages.push(device);
        }
        let start = (now_ms.div_euclid(HOUR_MS) - 11) * HOUR_MS;
        let mut stmt = conn.prepare_cached(
            "SELECT COALESCE(lab, 'Subnet ' || subnet), (minute_ms - ?1) / 3600000,
                    SUM(COALESCE(refresh_failures_sum, 0))
             FROM metric_minutes WHERE minute_ms >= ?1
             GROUP BY 1, 2 ORDER BY 1, 2",
        )?;
        let rows = stmt.query_map((start,), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })?;
        for row in rows {
            let (lab, hour, failures) = row?;
            let entry = lab_of(&mut labs, lab);
            if entry.refresh_failures_by_hour.is_empty() {
                entry.refresh_failures_by_hour = vec![0.0; 12];
            }
            if let Some(slot) = usize::try_from(hour)
                .ok()
                .and_then(|h| entry.refresh_failures_by_hour.get_mut(h))
            {
                *slot += failures;
            }
        }
    }
    Ok(Inputs {
        machines: machines.into_values().collect(),
        labs: labs.into_values().collect(),
    })
}

/// What an exam will ask of the server: the peak answer writes per second expected from
/// its number of students and past exams.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    pub exam_id: String,
    pub title: String,
    pub opens_at: String,
    /// Students counted on (the `students` asked for, else every student with an account).
    pub students: f64,
    pub peak_writes_per_s: Option<f64>,
    /// How wrong this rule was on each past exam, predicted from the others.
    pub backtest: Option<Backtest>,
    /// Past exams it learnt from.
    pub past_exams: usize,
}

/// Past exams' students (attempts) and peak deliveries per second: the busiest minute of
/// all its machines' deliveries, over 60 (a per-second average of the peak minute — the
/// summaries have minutes, and the app's deliveries are the writes the server took).
pub fn past_exams(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<PastExam>> {
    let mut stmt = conn.prepare_cached(
        "SELECT (SELECT COUNT(*) FROM attempts a WHERE a.exam_id = p.exam_id), MAX(p.delivered)
         FROM (SELECT exam_id, minute_ms, SUM(COALESCE(delivered_sum, 0)) AS delivered
               FROM metric_minutes
               WHERE exam_id IS NOT NULL AND minute_ms >= ?1 AND minute_ms < ?2
               GROUP BY exam_id, minute_ms) p
         GROUP BY p.exam_id",
    )?;
    let rows = stmt.query_map(
        (now_ms - crate::fleet::RETENTION_DAYS * 24 * HOUR_MS, now_ms),
        |r| {
            Ok(PastExam {
                students: r.get::<_, i64>(0)? as f64,
                peak_writes_per_s: r.get::<_, f64>(1)? / 60.0,
            })
        },
    )?;
    rows.filter(|r| r.as_ref().map_or(true, |e| e.students > 0.0))
        .collect()
}

/// Each exam opening in the next two days (or open now), with its expected peak.
pub fn capacity(
    conn: &Connection,
    now: chrono::DateTime<chrono::Utc>,
    students: Option<f64>,
) -> rusqlite::Result<Vec<Capacity>> {
    let now_ms = now.timestamp_millis();
    let past = past_exams(conn, now_ms)?;
    let accounts: f64 = conn.query_row("SELECT COUNT(*) FROM users", [], |r| {
        r.get::<_, i64>(0).map(|n| n as f64)
    })?;
    let students = students.unwrap_or(accounts);
    let soon = crate::rfc3339(now + chrono::Duration::days(2));
    let open = crate::rfc3339(now);
    let mut stmt = conn.prepare_cached(
        "SELECT id, title, opens_at FROM exams
         WHERE opens_at < ?1 AND closes_at > ?2 ORDER BY opens_at, id",
    )?;
    let exams = stmt
        .query_map((soon, open), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let expected = predict::peak_writes(students, &past);
    Ok(exams
        .into_iter()
        .map(|(exam_id, title, opens_at)| Capacity {
            exam_id,
            title,
            opens_at,
            students,
            peak_writes_per_s: expected.map(|(p, _)| p),
            backtest: expected.and_then(|(_, b)| b),
            past_exams: past.len(),
        })
        .collect())
}

/// `GET /v1/admin/fleet/insights?students=`: the findings as of now, the thresholds they
/// were judged by, and each upcoming exam's expected peak (for `students`, by default every
/// student with an account).
pub fn handler(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let students = ctx
        .query
        .get("students")
        .map(|value| {
            value
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .map(f64::from)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!(
                            "students `{}` is not a number from 1 to 1000000",
                            value.chars().take(100).collect::<String>()
                        ),
                    )
                })
        })
        .transpose()?;
    let thresholds = &ctx.state.config.insights;
    let inputs = gather(tx, ctx.now.timestamp_millis())?;
    Ok(Reply::ok(json!({
        "generated_at": crate::rfc3339(ctx.now),
        "machines": inputs.machines.len(),
        "labs": inputs.labs.len(),
        "thresholds": thresholds,
        "insights": evaluate(&inputs, thresholds),
        "capacity": capacity(tx, ctx.now, students)?,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(device: &str, lab: &str) -> Machine {
        Machine {
            device: device.into(),
            lab: lab.into(),
            clock_offset_s: Some(1.0),
            last_seen_ms: 0,
            save_max_ms: Some(5.0),
            ..Machine::default()
        }
    }

    fn codes(inputs: &Inputs) -> Vec<(Code, Option<String>, usize)> {
        evaluate(inputs, &Thresholds::default())
            .into_iter()
            .map(|i| (i.code, i.lab, i.machines.len()))
            .collect()
    }

    #[test]
    fn each_rule_speaks_up_past_its_threshold_only() {
        let quiet = Inputs {
            machines: vec![machine("a", "Lab 1"), machine("b", "Lab 1")],
            labs: vec![Lab {
                lab: "Lab 1".into(),
                outages_last_hour: 5.0,
                machines_with_outages: vec!["a".into(), "b".into()],
                refresh_failures_by_hour: vec![1.0; 12],
            }],
        };
        assert_eq!(codes(&quiet), vec![]);

        type Change = fn(&mut Inputs);
        type Found = Vec<(Code, Option<String>, usize)>;
        let table: &[(&str, Change, Found)] = &[
            (
                "one machine's clock off is that machine's problem",
                |i| i.machines[0].clock_offset_s = Some(-300.0),
                vec![],
            ),
            (
                "two machines' clocks off is the fleet's",
                |i| {
                    i.machines[0].clock_offset_s = Some(-300.0);
                    i.machines[1].clock_offset_s = Some(90.0);
                },
                vec![(Code::ClockSkew, None, 2)],
            ),
            (
                "six outages in the lab's hour on two machines",
                |i| i.labs[0].outages_last_hour = 6.0,
                vec![(Code::FrequentOutages, Some("Lab 1".into()), 2)],
            ),
            (
                "six outages on one machine are not the lab's network",
                |i| {
                    i.labs[0].outages_last_hour = 6.0;
                    i.labs[0].machines_with_outages.truncate(1);
                },
                vec![],
            ),
            (
                "a backlog of 10 minutes",
                |i| {
                    i.machines[1].queue_depth = 40.0;
                    i.machines[1].minutes_waiting = 10.0;
                },
                vec![(Code::Backlog, Some("Lab 1".into()), 1)],
            ),
            (
                "work waiting 9 minutes is not yet a backlog",
                |i| {
                    i.machines[1].queue_depth = 40.0;
                    i.machines[1].minutes_waiting = 9.0;
                },
                vec![],
            ),
            (
                "refresh failures rising by the hour",
                |i| {
                    i.labs[0].refresh_failures_by_hour =
                        (0..12).map(|h| f64::from(h) * 3.0).collect();
                },
                vec![(Code::RefreshFailuresRising, Some("Lab 1".into()), 0)],
            ),
            (
                "slow saves, per lab",
                |i| {
                    i.machines[0].save_max_ms = Some(900.0);
                    i.machines[1].lab = "Lab 2".into();
                    i.machines[1].save_max_ms = Some(300.0);
                },
                vec![
                    (Code::SlowDisks, Some("Lab 1".into()), 1),
                    (Code::SlowDisks, Some("Lab 2".into()), 1),
                ],
            ),
            (
                "a disk losing 1 GiB an hour with 3 GiB left",
                |i| {
                    i.machines[0].free_mb = (0..6)
                        .map(|k| (f64::from(k) * 3600.0, 8704.0 - f64::from(k) * 1024.0))
                        .collect();
                },
                vec![(Code::DiskFillingUp, Some("Lab 1".into()), 1)],
            ),
            (
                "a full but steady disk is not filling up",
                |i| {
                    i.machines[0].free_mb =
                        (0..6).map(|k| (f64::from(k) * 3600.0, 600.0)).collect();
                },
                vec![],
            ),
        ];
        for (what, change, expected) in table {
            let mut inputs = quiet.clone();
            change(&mut inputs);
            assert_eq!(&codes(&inputs), expected, "{what}");
        }
    }

    #[test]
    fn findings_carry_evidence_a_recommendation_and_a_backtest_for_predictions() {
        let mut inputs = Inputs {
            machines: vec![machine("a", "Lab 1")],
            labs: vec![Lab {
                lab: "Lab 1".into(),
                refresh_failures_by_hour: (0..12).map(|h| f64::from(h) * 2.0).collect(),
                ..Lab::default()
            }],
        };
        inputs.machines[0].free_mb = (0..6)
            .map(|k| (f64::from(k) * 3600.0, 8704.0 - f64::from(k) * 1024.0))
            .collect();
        let found = evaluate(&inputs, &Thresholds::default());
        assert_eq!(found.len(), 2, "{found:?}");
        let rising = &found[0];
        assert_eq!(rising.code, Code::RefreshFailuresRising);
        assert!((rising.value - 2.0).abs() < 0.01, "{rising:?}");
        assert!(
            rising.evidence.contains("22 in the last hour"),
            "{rising:?}"
        );
        let backtest = rising.backtest.unwrap_or_else(|| panic!("{rising:?}"));
        assert!(backtest.n > 0 && backtest.mae < 0.01, "{backtest:?}");
        let filling = &found[1];
        assert_eq!(filling.code, Code::DiskFillingUp);
        // 3,584 MiB left at the last sample, reserve 512, 1,024 MiB an hour: 3 h.
        assert!((filling.value - 3.0 * 3600.0).abs() < 60.0, "{filling:?}");
        assert!(!filling.recommendation.is_empty());
    }

    #[test]
    fn thresholds_are_set_by_name_and_a_bad_one_says_what() {
        let mut t = Thresholds::default();
        assert_eq!(t.set("clock_skew_s=30"), Ok(()));
        assert_eq!(t.clock_skew_s, 30.0);
        assert!(t
            .set("clock_skew=30")
            .unwrap_err()
            .contains("one of clock_skew_s"));
        assert!(t
            .set("backlog_min=-1")
            .unwrap_err()
            .contains("not a number"));
        assert!(t.set("backlog_min").unwrap_err().contains("NAME=VALUE"));
        assert_eq!(Thresholds::NAMES.len(), 9);
        for name in Thresholds::NAMES {
            assert_eq!(t.set(&format!("{name}=7")), Ok(()), "{name}");
        }
    }
}
