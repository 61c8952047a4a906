//! A `metrics.minute` event as aggregation reads it: its attrs checked and parsed
//! ([`Summary::from_attrs`]), and the lab a machine without a configured one is counted in
//! ([`subnet`]). Pure: the tables are tested here and in tests/it/fleet.rs.
//!
//! A summary is aggregated whole or not at all: anything malformed in it (a missing device,
//! a time that is not RFC 3339, a known metric with a negative count or `min` above `max`)
//! makes [`Summary::from_attrs`] say why, and the event is kept as received but left out of
//! the figures. Names the server does not know are left out alone.

use std::net::IpAddr;

use chrono::DateTime;
use serde_json::{Map, Value};

/// The metrics the server aggregates, as the app names them (the contract's list); each has
/// four columns in `metric_minutes`.
pub use exam_contract::metrics::NAMES as METRICS;

/// The longest device, lab, version or id kept (characters).
pub const MAX_TEXT_CHARS: usize = 200;
/// The most observations of one metric in one minute, and the largest magnitude of its sum,
/// min and max: far beyond what an app measures, and small enough that adding up 90 days of
/// a thousand machines' minutes can neither overflow SQLite's integers nor reach infinity.
pub const MAX_COUNT: i64 = 1_000_000_000;
pub const MAX_VALUE: f64 = 1e12;

/// Count, sum, min and max of one metric's observations in one minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// One machine's minute.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The minute's start (the app's clock), ms since the epoch.
    pub minute_ms: i64,
    pub device: String,
    /// The app's configured lab name; `None` for none (or blank).
    pub lab: Option<String>,
    pub app_version: Option<String>,
    pub attempt_id: Option<String>,
    pub exam_id: Option<String>,
    /// By [`METRICS`] index; `None` when the minute had no observation of it.
    pub metrics: [Option<Aggregate>; METRICS.len()],
}

/// Why a summary is left out of the figures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("`{0}` is missing or not a string of 1 to {MAX_TEXT_CHARS} characters")]
    Text(&'static str),
    #[error("`{0}` is not a string (or null) of at most {MAX_TEXT_CHARS} characters")]
    OptionalText(&'static str),
    #[error("`minute` is missing or not an RFC 3339 time")]
    Minute,
    #[error("`metrics` is missing or not an object")]
    Metrics,
    #[error(
        "metric `{0}` is not {{count, sum, min, max}} with a count of 0 to {MAX_COUNT}, \
         values within ±{MAX_VALUE} and min ≤ max"
    )]
    Metric(&'static str),
}

fn text(attrs: &Map<String, Value>, key: &'static str) -> Result<String, Malformed> {
    attrs
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.chars().count() <= MAX_TEXT_CHARS)
        .map(str::to_string)
        .ok_or(Malformed::Text(key))
}

/// A string, or nothing (absent, null or empty).
fn optional_text(
    attrs: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, Malformed> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_TEXT_CHARS => {
            Ok(Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string))
        }
        Some(_) => Err(Malformed::OptionalText(key)),
    }
}

fn aggregate(value: &Value, name: &'static str) -> Result<Option<Aggregate>, Malformed> {
    let bad = || Malformed::Metric(name);
    let object = value.as_object().ok_or_else(bad)?;
    let number = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_f64)
            .filter(|v| v.abs() <= MAX_VALUE)
            .ok_or_else(bad)
    };
    let count = object
        .get("count")
        .and_then(Value::as_i64)
        .ok_or_else(bad)?;
    if !(0..=MAX_COUNT).contains(&count) {
        return Err(bad());
    }
    if count == 0 {
        // Nothing observed: min and max mean nothing.
        return Ok(None);
    }
    let (sum, min, max) = (number("sum")?, number("min")?, number("max")?);
    if min > max {
        return Err(bad());
    }
    Ok(Some(Aggregate {
        count,
        sum,
        min,
        max,
    }))
}

impl Summary {
    /// The summary in a `metrics.minute` event's `attrs`, or why it cannot be aggregated.
    pub fn from_attrs(attrs: &Map<String, Value>) -> Result<Self, Malformed> {
        let minute_ms = attrs
            .get("minute")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis().div_euclid(60_000) * 60_000)
            .ok_or(Malformed::Minute)?;
        let given = attrs
            .get("metrics")
            .and_then(Value::as_object)
            .ok_or(Malformed::Metrics)?;
        let mut metrics = [None; METRICS.len()];
        for (slot, name) in metrics.iter_mut().zip(METRICS) {
            if let Some(value) = given.get(name) {
                *slot = aggregate(value, name)?;
            }
        }
        Ok(Self {
            minute_ms,
            device: text(attrs, "device")?,
            lab: optional_text(attrs, "lab")?,
            app_version: optional_text(attrs, "app_version")?,
            attempt_id: optional_text(attrs, "attempt_id")?,
            exam_id: optional_text(attrs, "exam_id")?,
            metrics,
        })
    }
}

/// The lab of a machine without a configured one: the sender's subnet, `a.b.c.0/24` for IPv4
/// (an IPv4 address mapped into IPv6 too), the first 64 bits for IPv6 (`2001:db8:1:2::/64`).
pub fn subnet(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    type Outcome = Result<(), Malformed>;

    fn good() -> Value {
        json!({
            "minute": "2026-12-01T09:15:00Z", "device": "dev-1", "lab": "Lab A",
            "app_version": "1.4.0", "attempt_id": null, "exam_id": null,
            "metrics": {"save_ms": {"count": 3, "sum": 15.0, "min": 2.0, "max": 9.0},
                        "some_new_metric": {"count": 1, "sum": 1, "min": 1, "max": 1}},
        })
    }

    #[test]
    fn a_summary_is_read_whole_or_not_at_all() {
        let summary = Summary::from_attrs(&attrs(good())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(summary.device, "dev-1");
        assert_eq!(summary.lab.as_deref(), Some("Lab A"));
        assert_eq!(
            summary.metrics[0],
            Some(Aggregate {
                count: 3,
                sum: 15.0,
                min: 2.0,
                max: 9.0
            })
        );
        assert_eq!(
            summary.metrics.iter().flatten().count(),
            1,
            "unknown names left out"
        );

        let with = |key: &str, value: Value| {
            let mut v = good();
            v[key] = value;
            Summary::from_attrs(&attrs(v))
        };
        let metric = |value: Value| with("metrics", json!({"rtt_ms": value}));
        // (What changes, read as, the outcome.)
        let table: Vec<(&str, Result<Summary, Malformed>, Outcome)> = vec![
            (
                "no device",
                with("device", Value::Null),
                Err(Malformed::Text("device")),
            ),
            (
                "empty device",
                with("device", json!("")),
                Err(Malformed::Text("device")),
            ),
            (
                "long device",
                with("device", json!("x".repeat(201))),
                Err(Malformed::Text("device")),
            ),
            (
                "numeric lab",
                with("lab", json!(7)),
                Err(Malformed::OptionalText("lab")),
            ),
            ("blank lab", with("lab", json!("  ")), Ok(())),
            ("no version", with("app_version", Value::Null), Ok(())),
            (
                "bad minute",
                with("minute", json!("09:15")),
                Err(Malformed::Minute),
            ),
            (
                "no metrics",
                with("metrics", json!([])),
                Err(Malformed::Metrics),
            ),
            ("empty metrics", with("metrics", json!({})), Ok(())),
            (
                "negative count",
                metric(json!({"count": -1, "sum": 0, "min": 0, "max": 0})),
                Err(Malformed::Metric("rtt_ms")),
            ),
            (
                "fractional count",
                metric(json!({"count": 1.5, "sum": 0, "min": 0, "max": 0})),
                Err(Malformed::Metric("rtt_ms")),
            ),
            (
                "min above max",
                metric(json!({"count": 2, "sum": 3, "min": 2, "max": 1})),
                Err(Malformed::Metric("rtt_ms")),
            ),
            (
                "huge count",
                metric(json!({"count": 1_000_000_001, "sum": 0, "min": 0, "max": 0})),
                Err(Malformed::Metric("rtt_ms")),
            ),
            (
                "huge sum",
                metric(json!({"count": 1, "sum": 1e300, "min": 0, "max": 0})),
                Err(Malformed::Metric("rtt_ms")),
            ),
            (
                "no sum",
                metric(json!({"count": 2, "min": 1, "max": 1})),
                Err(Malformed::Metric("rtt_ms")),
            ),
            (
                "not an object",
                metric(json!(5)),
                Err(Malformed::Metric("rtt_ms")),
            ),
            (
                "count 0",
                metric(json!({"count": 0, "sum": 0, "min": 0, "max": 0})),
                Ok(()),
            ),
        ];
        for (case, got, want) in table {
            assert_eq!(got.map(|_| ()), want, "{case}");
        }
        let blank = with("lab", json!("  ")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(blank.lab, None, "a blank lab is none");
    }

    #[test]
    fn the_minute_is_its_start() {
        let mut v = good();
        v["minute"] = json!("2026-12-01T10:15:42.500+01:00");
        let summary = Summary::from_attrs(&attrs(v)).unwrap_or_else(|e| panic!("{e}"));
        let start = DateTime::parse_from_rfc3339("2026-12-01T09:15:00Z")
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        assert_eq!(summary.minute_ms, start);
    }
}
