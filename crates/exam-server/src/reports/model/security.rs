//! The security summary: the alerts raised in the period ([`crate::security`]'s rules), by
//! rule and severity, open or resolved.
//!
//! An alert is *resolved* when, by the period's end, an admin acknowledged it or the client
//! reported its condition stopped (cleared) — whichever came first; otherwise it is *open*.
//! Judged at the period's end, a report of last week says what was open then, whatever
//! happened since, and making it again gives the same figures.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{columns, Cell, Fact, Table, Time};
use crate::reports::Period;
use crate::security::{RULES, SEVERITIES};

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertFacts {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub rule: String,
    pub severity: String,
    pub username: Option<String>,
    pub ip: Option<String>,
    pub summary: String,
    pub acked_at: Option<DateTime<Utc>>,
    pub cleared_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityTotals {
    pub alerts: usize,
    pub open: usize,
    pub resolved: usize,
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRow {
    pub rule: String,
    pub severity: String,
    pub alerts: usize,
    pub open: usize,
    pub resolved: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRow {
    pub id: String,
    pub created_at: Time,
    pub rule: String,
    pub severity: String,
    pub student: Option<String>,
    pub ip: Option<String>,
    pub summary: String,
    /// `open`, `acknowledged` or `cleared`, at the period's end.
    pub status: &'static str,
    pub resolved_at: Option<Time>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityReport {
    pub totals: SecurityTotals,
    pub by_rule: Vec<RuleRow>,
    pub alerts: Vec<AlertRow>,
}

/// Where a rule or severity sorts: as listed in [`RULES`] / [`SEVERITIES`], unknown ones last.
fn rank(list: &[&str], name: &str) -> usize {
    list.iter().position(|n| *n == name).unwrap_or(list.len())
}

/// The security summary over `period` from the alerts raised in it.
pub fn build(mut alerts: Vec<AlertFacts>, period: &Period) -> SecurityReport {
    alerts.retain(|a| a.created_at >= period.from && a.created_at < period.to);
    alerts.sort_by_key(|a| (a.created_at, a.id));
    let by_end = |t: Option<DateTime<Utc>>| t.filter(|t| *t <= period.to);
    let rows: Vec<AlertRow> = alerts
        .into_iter()
        .map(|a| {
            let (status, resolved_at) = match (by_end(a.acked_at), by_end(a.cleared_at)) {
                (Some(acked), Some(cleared)) if cleared < acked => ("cleared", Some(cleared)),
                (Some(acked), _) => ("acknowledged", Some(acked)),
                (None, Some(cleared)) => ("cleared", Some(cleared)),
                (None, None) => ("open", None),
            };
            AlertRow {
                id: a.id.to_string(),
                created_at: Time(a.created_at),
                rule: a.rule,
                severity: a.severity,
                student: a.username,
                ip: a.ip,
                summary: a.summary,
                status,
                resolved_at: resolved_at.map(Time),
            }
        })
        .collect();
    let mut groups: BTreeMap<(usize, String, usize, String), RuleRow> = BTreeMap::new();
    for a in &rows {
        // Most severe first within a rule.
        let key = (
            rank(RULES, &a.rule),
            a.rule.clone(),
            SEVERITIES.len() - rank(SEVERITIES, &a.severity),
            a.severity.clone(),
        );
        let row = groups.entry(key).or_insert_with(|| RuleRow {
            rule: a.rule.clone(),
            severity: a.severity.clone(),
            alerts: 0,
            open: 0,
            resolved: 0,
        });
        row.alerts += 1;
        if a.status == "open" {
            row.open += 1;
        } else {
            row.resolved += 1;
        }
    }
    let severity = |s: &str| rows.iter().filter(|a| a.severity == s).count();
    let open = rows.iter().filter(|a| a.status == "open").count();
    SecurityReport {
        totals: SecurityTotals {
            alerts: rows.len(),
            open,
            resolved: rows.len() - open,
            critical: severity("critical"),
            warning: severity("warning"),
            info: severity("info"),
        },
        by_rule: groups.into_values().collect(),
        alerts: rows,
    }
}

impl SecurityReport {
    /// Adds the totals to `facts`; the tables.
    pub fn sheet(&self, facts: &mut Vec<Fact>) -> Vec<Table> {
        let t = &self.totals;
        let count = |n: usize| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX));
        facts.extend([
            Fact::new("alerts", "Alerts", count(t.alerts)),
            Fact::new("open", "Open at the end", count(t.open)),
            Fact::new("resolved", "Resolved", count(t.resolved)),
            Fact::new("critical", "Critical", count(t.critical)),
            Fact::new("warning", "Warning", count(t.warning)),
            Fact::new("info", "Information", count(t.info)),
        ]);
        vec![
            Table {
                name: "by_rule",
                title: "Alerts by rule and severity",
                columns: columns(&[
                    ("rule", "Rule"),
                    ("severity", "Severity"),
                    ("alerts", "Alerts"),
                    ("open", "Open"),
                    ("resolved", "Resolved"),
                ]),
                rows: self
                    .by_rule
                    .iter()
                    .map(|r| {
                        vec![
                            Cell::text(&r.rule),
                            Cell::text(&r.severity),
                            count(r.alerts),
                            count(r.open),
                            count(r.resolved),
                        ]
                    })
                    .collect(),
                empty: "No alert in this period.",
            },
            Table {
                name: "alerts",
                title: "Alerts",
                columns: columns(&[
                    ("created_at", "Raised"),
                    ("rule", "Rule"),
                    ("severity", "Severity"),
                    ("student", "Student"),
                    ("ip", "Address"),
                    ("status", "Status"),
                    ("resolved_at", "Resolved"),
                    ("summary", "Summary"),
                    ("id", "Alert"),
                ]),
                rows: self
                    .alerts
                    .iter()
                    .map(|a| {
                        vec![
                            Cell::Time(a.created_at.0),
                            Cell::text(&a.rule),
                            Cell::text(&a.severity),
                            Cell::opt(a.student.clone(), Cell::Text),
                            Cell::opt(a.ip.clone(), Cell::Text),
                            Cell::text(a.status),
                            Cell::opt(a.resolved_at, |t| Cell::Time(t.0)),
                            Cell::text(&a.summary),
                            Cell::text(&a.id),
                        ]
                    })
                    .collect(),
                empty: "No alert in this period.",
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reports::Range;

    fn t(hm: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-12-01T{hm}:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn alert(id: i64, at: &str, rule: &str, severity: &str) -> AlertFacts {
        AlertFacts {
            id,
            created_at: t(at),
            rule: rule.into(),
            severity: severity.into(),
            username: None,
            ip: None,
            summary: format!("alert {id}"),
            acked_at: None,
            cleared_at: None,
        }
    }

    #[test]
    fn alerts_are_counted_by_rule_and_severity_as_of_the_periods_end() {
        let period = Period {
            range: Range::Custom,
            from: t("09:00"),
            to: t("12:00"),
        };
        let mut acked = alert(2, "09:30", "two_devices", "warning");
        acked.acked_at = Some(t("10:00"));
        let mut acked_later = alert(3, "09:40", "two_devices", "warning");
        acked_later.acked_at = Some(t("13:00"));
        let mut cleared_first = alert(4, "10:00", "client_finding", "critical");
        cleared_first.cleared_at = Some(t("10:05"));
        cleared_first.acked_at = Some(t("11:00"));
        let alerts = vec![
            alert(1, "08:59", "two_devices", "warning"),
            acked,
            acked_later,
            cleared_first,
            alert(5, "11:59", "client_finding", "info"),
            alert(6, "12:00", "client_finding", "info"),
        ];
        let r = build(alerts, &period);
        let statuses: Vec<(&str, &str)> =
            r.alerts.iter().map(|a| (a.id.as_str(), a.status)).collect();
        assert_eq!(
            statuses,
            [
                ("2", "acknowledged"),
                ("3", "open"),
                ("4", "cleared"),
                ("5", "open")
            ]
        );
        let groups: Vec<(&str, &str, usize, usize, usize)> = r
            .by_rule
            .iter()
            .map(|g| {
                (
                    g.rule.as_str(),
                    g.severity.as_str(),
                    g.alerts,
                    g.open,
                    g.resolved,
                )
            })
            .collect();
        assert_eq!(
            groups,
            [
                ("client_finding", "critical", 1, 0, 1),
                ("client_finding", "info", 1, 1, 0),
                ("two_devices", "warning", 2, 1, 1),
            ]
        );
        assert_eq!(
            r.totals,
            SecurityTotals {
                alerts: 4,
                open: 2,
                resolved: 2,
                critical: 1,
                warning: 2,
                info: 1
            }
        );
    }
}
