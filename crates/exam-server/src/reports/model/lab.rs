//! The lab report: the machines of one lab seen in the period, the lab's outages, the app
//! versions it runs, and whether it looks ready — all from the minute summaries its apps sent
//! ([`crate::fleet`]: a lab is a configured lab name, or the subnet of machines without one).
//!
//! Readiness is what the server can know, as of the period's end — nothing about machines
//! that never ran the app, nor anything the app does not report:
//! - a machine is *reporting* when its latest minute began within [`REPORTING_WINDOW_S`]
//!   seconds before the period's end (summaries come a minute or so after the minute), and
//!   *silent* otherwise;
//! - it has a *backlog* when its latest minute had work waiting to be sent (`queue_depth`
//!   above 0: answers or events the server has not confirmed yet);
//! - the lab is *ready* when it has machines, none silent, none with a backlog, and all on one
//!   app version.
//!
//! A lab outage is a run of consecutive minutes in which at least one of its machines reported
//! time offline or an outage begun; a whole room dropping at once shows as one outage with many
//! machines, one flaky machine as outages with one.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{columns, Cell, Fact, Table, Time};
use crate::reports::Period;

/// How recent a machine's latest minute must be for it to count as reporting.
pub const REPORTING_WINDOW_S: i64 = 300;

/// One machine-minute of the lab, as stored in `metric_minutes`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabMinute {
    pub device: String,
    pub minute_ms: i64,
    pub user_id: i64,
    /// The app's configured lab name (none: the lab is its subnet).
    pub named: bool,
    pub app_version: Option<String>,
    pub offline_s: f64,
    pub outages: f64,
    /// The most work waiting to be sent during the minute, if the app sampled it.
    pub queue_depth: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabInfo {
    /// The lab's name, or its subnet.
    pub key: String,
    /// What a person reads: the name, or "Subnet 10.1.2.0/24".
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub as_of: Time,
    pub reporting_window_s: i64,
    pub machines_seen: usize,
    pub reporting: usize,
    pub silent: usize,
    pub with_backlog: usize,
    /// Entries waiting on the machines with a backlog, at their latest minute.
    pub queued: i64,
    pub versions: usize,
    pub ready: bool,
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineRow {
    pub device: String,
    pub first_seen: Time,
    /// The start of its latest minute.
    pub last_seen: Time,
    pub minutes: i64,
    pub students: usize,
    pub app_version: Option<String>,
    pub outages: i64,
    pub offline_s: i64,
    pub queue_depth: Option<i64>,
    pub reporting: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabOutage {
    pub started_at: Time,
    pub ended_at: Time,
    pub machines: usize,
    /// Seconds offline, added up over its machines.
    pub offline_s: i64,
    /// Outages begun, as the apps counted them.
    pub outages: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRow {
    /// "unknown" when the app did not say.
    pub app_version: String,
    pub machines: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabReport {
    pub lab: LabInfo,
    pub readiness: Readiness,
    pub machines: Vec<MachineRow>,
    pub outages: Vec<LabOutage>,
    pub versions: Vec<VersionRow>,
}

const MINUTE_MS: i64 = 60_000;

fn time(ms: i64) -> Time {
    Time(DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
}

fn whole(x: f64) -> i64 {
    // Summed counts and seconds: whole numbers in practice, rounded for the report.
    x.round() as i64
}

/// The lab report of `key` over `period` from its minutes.
pub fn build(key: &str, minutes: &[LabMinute], period: &Period) -> LabReport {
    let to_ms = period.to.timestamp_millis();
    let mut by_device: BTreeMap<&str, Vec<&LabMinute>> = BTreeMap::new();
    for m in minutes {
        by_device.entry(m.device.as_str()).or_default().push(m);
    }
    let machines: Vec<MachineRow> = by_device
        .into_iter()
        .filter_map(|(device, mut ms)| {
            ms.sort_by_key(|m| m.minute_ms);
            let (first, last) = (ms.first()?, ms.last()?);
            let students: BTreeSet<i64> = ms.iter().map(|m| m.user_id).collect();
            Some(MachineRow {
                device: device.to_string(),
                first_seen: time(first.minute_ms),
                last_seen: time(last.minute_ms),
                minutes: i64::try_from(ms.len()).unwrap_or(i64::MAX),
                students: students.len(),
                app_version: ms.iter().rev().find_map(|m| m.app_version.clone()),
                outages: whole(ms.iter().map(|m| m.outages).sum()),
                offline_s: whole(ms.iter().map(|m| m.offline_s).sum()),
                queue_depth: last.queue_depth.map(whole),
                reporting: last.minute_ms >= to_ms - REPORTING_WINDOW_S * 1000,
            })
        })
        .collect();

    let mut versions: BTreeMap<String, usize> = BTreeMap::new();
    for m in &machines {
        *versions
            .entry(m.app_version.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
    }
    let versions: Vec<VersionRow> = versions
        .into_iter()
        .map(|(app_version, machines)| VersionRow {
            app_version,
            machines,
        })
        .collect();

    let reporting = machines.iter().filter(|m| m.reporting).count();
    let backlog: Vec<&MachineRow> = machines
        .iter()
        .filter(|m| m.queue_depth.is_some_and(|q| q > 0))
        .collect();
    let silent = machines.len() - reporting;
    let ready = !machines.is_empty() && silent == 0 && backlog.is_empty() && versions.len() <= 1;
    let verdict = verdict(machines.len(), silent, backlog.len(), &versions);
    let readiness = Readiness {
        as_of: Time(period.to),
        reporting_window_s: REPORTING_WINDOW_S,
        machines_seen: machines.len(),
        reporting,
        silent,
        with_backlog: backlog.len(),
        queued: backlog.iter().filter_map(|m| m.queue_depth).sum(),
        versions: versions.len(),
        ready,
        verdict,
    };

    let named = minutes.iter().any(|m| m.named);
    LabReport {
        lab: LabInfo {
            key: key.to_string(),
            label: if named || minutes.is_empty() {
                key.to_string()
            } else {
                format!("Subnet {key}")
            },
        },
        readiness,
        machines,
        outages: outages(minutes),
        versions,
    }
}

/// "Ready: 30 machines reporting, none with work waiting, one app version (1.4.0)".
fn verdict(seen: usize, silent: usize, backlog: usize, versions: &[VersionRow]) -> String {
    if seen == 0 {
        return "No machine of this lab reported in the period".into();
    }
    let names: Vec<&str> = versions.iter().map(|v| v.app_version.as_str()).collect();
    let machines = |n: usize| format!("{n} machine{}", if n == 1 { "" } else { "s" });
    if silent == 0 && backlog == 0 && versions.len() <= 1 {
        return format!(
            "Ready: {} reporting, none with work waiting, one app version ({})",
            machines(seen),
            names.join(", ")
        );
    }
    let mut problems = Vec::new();
    if silent > 0 {
        problems.push(format!(
            "{silent} of {seen} silent for {} min",
            REPORTING_WINDOW_S / 60
        ));
    }
    if backlog > 0 {
        problems.push(format!(
            "{} with work waiting to be sent",
            machines(backlog)
        ));
    }
    if versions.len() > 1 {
        problems.push(format!(
            "{} app versions ({})",
            versions.len(),
            names.join(", ")
        ));
    }
    format!("Not ready: {}", problems.join("; "))
}

/// Runs of consecutive minutes with time offline or an outage begun on some machine.
fn outages(minutes: &[LabMinute]) -> Vec<LabOutage> {
    // minute → (machines, offline seconds, outages begun)
    let mut bad: BTreeMap<i64, (BTreeSet<&str>, f64, f64)> = BTreeMap::new();
    for m in minutes
        .iter()
        .filter(|m| m.offline_s > 0.0 || m.outages > 0.0)
    {
        let entry = bad.entry(m.minute_ms).or_default();
        entry.0.insert(m.device.as_str());
        entry.1 += m.offline_s;
        entry.2 += m.outages;
    }
    let mut runs: Vec<(i64, i64, BTreeSet<&str>, f64, f64)> = Vec::new();
    for (minute, (devices, offline, begun)) in bad {
        match runs.last_mut() {
            Some(run) if run.1 == minute => {
                run.1 = minute + MINUTE_MS;
                run.2.extend(devices);
                run.3 += offline;
                run.4 += begun;
            }
            _ => runs.push((minute, minute + MINUTE_MS, devices, offline, begun)),
        }
    }
    runs.into_iter()
        .map(|(from, to, devices, offline, begun)| LabOutage {
            started_at: time(from),
            ended_at: time(to),
            machines: devices.len(),
            offline_s: whole(offline),
            outages: whole(begun),
        })
        .collect()
}

impl LabReport {
    /// Adds the readiness to `facts`; the tables.
    pub fn sheet(&self, facts: &mut Vec<Fact>) -> Vec<Table> {
        let r = &self.readiness;
        let count = |n: usize| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX));
        facts.extend([
            Fact::new("lab", "Lab", Cell::text(&self.lab.label)),
            Fact::new("ready", "Ready", Cell::Bool(r.ready)),
            Fact::new("verdict", "Readiness", Cell::text(&r.verdict)),
            Fact::new("machines_seen", "Machines seen", count(r.machines_seen)),
            Fact::new("reporting", "Reporting at the end", count(r.reporting)),
            Fact::new("silent", "Silent at the end", count(r.silent)),
            Fact::new("with_backlog", "With work waiting", count(r.with_backlog)),
            Fact::new("queued", "Entries waiting", Cell::Int(r.queued)),
            Fact::new("versions", "App versions", count(r.versions)),
            Fact::new("outages", "Outages", count(self.outages.len())),
        ]);
        vec![
            Table {
                name: "machines",
                title: "Machines",
                columns: columns(&[
                    ("device", "Machine"),
                    ("first_seen", "First seen"),
                    ("last_seen", "Last seen"),
                    ("minutes", "Minutes"),
                    ("students", "Students"),
                    ("app_version", "App version"),
                    ("outages", "Outages"),
                    ("offline_s", "Offline (s)"),
                    ("queue_depth", "Waiting"),
                    ("reporting", "Reporting"),
                ]),
                rows: self
                    .machines
                    .iter()
                    .map(|m| {
                        vec![
                            Cell::text(&m.device),
                            Cell::Time(m.first_seen.0),
                            Cell::Time(m.last_seen.0),
                            Cell::Int(m.minutes),
                            count(m.students),
                            Cell::opt(m.app_version.clone(), Cell::Text),
                            Cell::Int(m.outages),
                            Cell::Int(m.offline_s),
                            Cell::opt(m.queue_depth, Cell::Int),
                            Cell::Bool(m.reporting),
                        ]
                    })
                    .collect(),
                empty: "No machine of this lab reported in the period.",
            },
            Table {
                name: "outages",
                title: "Outages",
                columns: columns(&[
                    ("started_at", "From"),
                    ("ended_at", "Until"),
                    ("machines", "Machines"),
                    ("offline_s", "Offline (machine-s)"),
                    ("outages", "Outages begun"),
                ]),
                rows: self
                    .outages
                    .iter()
                    .map(|o| {
                        vec![
                            Cell::Time(o.started_at.0),
                            Cell::Time(o.ended_at.0),
                            count(o.machines),
                            Cell::Int(o.offline_s),
                            Cell::Int(o.outages),
                        ]
                    })
                    .collect(),
                empty: "No outage was reported.",
            },
            Table {
                name: "versions",
                title: "App versions",
                columns: columns(&[("app_version", "App version"), ("machines", "Machines")]),
                rows: self
                    .versions
                    .iter()
                    .map(|v| vec![Cell::text(&v.app_version), count(v.machines)])
                    .collect(),
                empty: "No machine of this lab reported in the period.",
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reports::Range;

    fn ms(hm: &str) -> i64 {
        DateTime::parse_from_rfc3339(&format!("2026-12-01T{hm}:00Z"))
            .unwrap()
            .timestamp_millis()
    }

    fn minute(device: &str, hm: &str, version: &str, offline: f64, queue: f64) -> LabMinute {
        LabMinute {
            device: device.into(),
            minute_ms: ms(hm),
            user_id: 1,
            named: true,
            app_version: Some(version.into()),
            offline_s: offline,
            outages: if offline > 0.0 { 1.0 } else { 0.0 },
            queue_depth: Some(queue),
        }
    }

    fn period(to: &str) -> Period {
        Period {
            range: Range::Day,
            from: DateTime::from_timestamp_millis(ms("00:00")).unwrap(),
            to: DateTime::from_timestamp_millis(ms(to)).unwrap(),
        }
    }

    #[test]
    fn readiness_says_what_keeps_a_lab_from_being_ready() {
        let ok = [
            minute("m1", "09:55", "1.4.0", 0.0, 0.0),
            minute("m2", "09:57", "1.4.0", 0.0, 0.0),
        ];
        // (case, minutes, report's end, ready, verdict)
        let table: Vec<(&str, Vec<LabMinute>, &str, bool, &str)> = vec![
            (
                "all reporting",
                ok.to_vec(),
                "10:00",
                true,
                "Ready: 2 machines reporting, none with work waiting, one app version (1.4.0)",
            ),
            (
                "one silent",
                ok.to_vec(),
                "10:01",
                false,
                "Not ready: 1 of 2 silent for 5 min",
            ),
            (
                "a backlog and two versions",
                vec![
                    minute("m1", "09:58", "1.3.9", 0.0, 0.0),
                    minute("m2", "09:58", "1.4.0", 0.0, 4.0),
                ],
                "10:00",
                false,
                "Not ready: 1 machine with work waiting to be sent; 2 app versions (1.3.9, 1.4.0)",
            ),
            (
                "a backlog cleared by the latest minute",
                vec![
                    minute("m1", "09:57", "1.4.0", 0.0, 9.0),
                    minute("m1", "09:58", "1.4.0", 0.0, 0.0),
                ],
                "10:00",
                true,
                "Ready: 1 machine reporting, none with work waiting, one app version (1.4.0)",
            ),
            (
                "nothing",
                vec![],
                "10:00",
                false,
                "No machine of this lab reported in the period",
            ),
        ];
        for (case, minutes, to, ready, verdict) in table {
            let r = build("Lab A", &minutes, &period(to));
            assert_eq!(
                (r.readiness.ready, r.readiness.verdict.as_str()),
                (ready, verdict),
                "{case}"
            );
        }
    }

    #[test]
    fn consecutive_bad_minutes_are_one_outage() {
        let minutes = vec![
            minute("m1", "09:10", "1.4.0", 30.0, 0.0),
            minute("m2", "09:10", "1.4.0", 60.0, 0.0),
            minute("m2", "09:11", "1.4.0", 15.0, 0.0),
            minute("m1", "09:12", "1.4.0", 0.0, 0.0),
            minute("m1", "09:30", "1.4.0", 5.0, 0.0),
        ];
        let r = build("Lab A", &minutes, &period("10:00"));
        let outages: Vec<(String, String, usize, i64)> = r
            .outages
            .iter()
            .map(|o| {
                (
                    o.started_at.0.format("%H:%M").to_string(),
                    o.ended_at.0.format("%H:%M").to_string(),
                    o.machines,
                    o.offline_s,
                )
            })
            .collect();
        assert_eq!(
            outages,
            [
                ("09:10".into(), "09:12".into(), 2, 105),
                ("09:30".into(), "09:31".into(), 1, 5)
            ]
        );
        assert_eq!(r.machines[0].offline_s, 35);
        assert_eq!(r.machines[0].outages, 2);
        assert_eq!(r.lab.label, "Lab A");
    }

    #[test]
    fn a_lab_without_a_name_is_its_subnet() {
        let mut m = minute("m1", "09:58", "1.4.0", 0.0, 0.0);
        m.named = false;
        let r = build("10.1.2.0/24", &[m], &period("10:00"));
        assert_eq!(r.lab.label, "Subnet 10.1.2.0/24");
    }
}
