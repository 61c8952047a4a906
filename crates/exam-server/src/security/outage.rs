//! `network.outage` events in an attempt's timeline. The app reports, once it is back in
//! contact, how long it was cut off during an attempt:
//! `attrs = {attempt_id, started_at, ended_at, duration_ms, state}` (`state`: `offline` — no
//! network at all — or `server_unreachable` — a network, but not this server; times RFC 3339).
//!
//! The event is telemetry, kept as sent like any other (a malformed one is never refused, so a
//! client's mistake cannot cost it the rest of its batch); the timeline says what it can of
//! it. The words are the server's, so every proctor reads the same thing: "offline for 2 min
//! 5 s (until 09:14:03 UTC)". Times are UTC, as everywhere in the API.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// The longest unknown `state` shown (it is the client's text).
const MAX_STATE_CHARS: usize = 40;

/// What an app's report of a span of time says (an outage here, a time it was not running in
/// [`super::not_running`]), as far as it can be read: `started_at` and `ended_at` (RFC 3339,
/// any offset; UTC here) and `duration_ms` — or, when it sent none, the time between the two.
/// Anything malformed is `None`, never an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
}

impl Span {
    pub fn from_attrs(attrs: &Map<String, Value>) -> Self {
        let time = |key: &str| {
            attrs
                .get(key)
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let started = time("started_at");
        let ended = time("ended_at");
        let duration_ms = attrs
            .get("duration_ms")
            .and_then(Value::as_u64)
            .or_else(|| match (started, ended) {
                (Some(s), Some(e)) => u64::try_from((e - s).num_milliseconds()).ok(),
                _ => None,
            });
        Self {
            started,
            ended,
            duration_ms,
        }
    }

    /// Where the timeline shows it: at its start, or else at `sent` (the event's own time).
    pub fn at(&self, sent: &str) -> String {
        self.started.map_or_else(
            || {
                DateTime::parse_from_rfc3339(sent).map_or_else(
                    |_| sent.to_string(),
                    |t| crate::rfc3339(t.with_timezone(&Utc)),
                )
            },
            crate::rfc3339,
        )
    }

    /// " for 2 min 5 s (until 09:14:03 UTC)", as far as it is known; the end's date is said
    /// too when it is not the start's day.
    pub fn how_long(&self) -> String {
        let mut text = String::new();
        if let Some(ms) = self.duration_ms {
            text.push_str(" for ");
            text.push_str(&human_duration(ms));
        }
        if let Some(end) = self.ended {
            let same_day = self
                .started
                .is_none_or(|s| s.date_naive() == end.date_naive());
            let format = if same_day {
                "%H:%M:%S"
            } else {
                "%Y-%m-%d %H:%M:%S"
            };
            text.push_str(&format!(" (until {} UTC)", end.format(format)));
        }
        text
    }
}

/// The timeline item of an outage reported by an event sent `at` with `attrs`:
/// `{at: started_at, kind: "outage", text}`.
pub fn timeline_item(at: &str, attrs: &Map<String, Value>) -> Value {
    let span = Span::from_attrs(attrs);
    json!({
        "at": span.at(at),
        "kind": "outage",
        "text": text(attrs.get("state").and_then(Value::as_str), &span),
    })
}

/// "offline for 2 min 5 s (until 09:14:03 UTC)".
pub fn text(state: Option<&str>, span: &Span) -> String {
    let what = match state {
        None | Some("offline") => "offline".to_string(),
        Some("server_unreachable") => "server unreachable".to_string(),
        Some(other) => format!(
            "out of contact ({})",
            other.chars().take(MAX_STATE_CHARS).collect::<String>()
        ),
    };
    what + &span.how_long()
}

/// "2 min 5 s", "1 h 3 min", "45 s", "under 1 s": whole seconds, rounded, zero parts left out.
pub fn human_duration(ms: u64) -> String {
    if ms < 500 {
        return "under 1 s".into();
    }
    let seconds = ms.saturating_add(500) / 1000;
    let parts = [
        (seconds / 86_400, "d"),
        (seconds / 3600 % 24, "h"),
        (seconds / 60 % 60, "min"),
        (seconds % 60, "s"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        let table: &[(u64, &str)] = &[
            (0, "under 1 s"),
            (499, "under 1 s"),
            (500, "1 s"),
            (45_000, "45 s"),
            (59_600, "1 min"),
            (120_000, "2 min"),
            (125_000, "2 min 5 s"),
            (125_400, "2 min 5 s"),
            (3_600_000, "1 h"),
            (3_605_000, "1 h 5 s"),
            (3_785_000, "1 h 3 min 5 s"),
            (90_000_000, "1 d 1 h"),
        ];
        for (ms, words) in table {
            assert_eq!(human_duration(*ms), *words, "{ms} ms");
        }
    }

    fn attrs(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn an_outage_is_an_item_at_its_start_saying_how_long_and_until_when() {
        let sent = "2026-11-28T09:20:00Z";
        // (attrs, expected at, expected text)
        let table: &[(Value, &str, &str)] = &[
            (
                json!({"attempt_id": "a", "started_at": "2026-11-28T09:11:58Z",
                       "ended_at": "2026-11-28T09:14:03Z", "duration_ms": 125_000,
                       "state": "offline"}),
                "2026-11-28T09:11:58.000Z",
                "offline for 2 min 5 s (until 09:14:03 UTC)",
            ),
            (
                json!({"started_at": "2026-11-28T10:11:58+01:00",
                       "ended_at": "2026-11-28T10:12:43.250+01:00", "duration_ms": 45_250,
                       "state": "server_unreachable"}),
                "2026-11-28T09:11:58.000Z",
                "server unreachable for 45 s (until 09:12:43 UTC)",
            ),
            // No duration: from the two times.
            (
                json!({"started_at": "2026-11-28T09:00:00Z",
                       "ended_at": "2026-11-28T09:03:00Z", "state": "offline"}),
                "2026-11-28T09:00:00.000Z",
                "offline for 3 min (until 09:03:00 UTC)",
            ),
            // Across midnight: the end's date is said.
            (
                json!({"started_at": "2026-11-28T23:59:00Z",
                       "ended_at": "2026-11-29T00:01:00Z", "duration_ms": 120_000}),
                "2026-11-28T23:59:00.000Z",
                "offline for 2 min (until 2026-11-29 00:01:00 UTC)",
            ),
            // Nothing usable: at the event's time, with what is known.
            (
                json!({"started_at": "yesterday", "duration_ms": "long", "state": "hiding"}),
                "2026-11-28T09:20:00.000Z",
                "out of contact (hiding)",
            ),
        ];
        for (attrs_json, at, text) in table {
            let item = timeline_item(sent, &attrs(attrs_json.clone()));
            assert_eq!(item["kind"], "outage");
            assert_eq!(item["at"], *at, "{attrs_json}");
            assert_eq!(item["text"], *text, "{attrs_json}");
        }
    }
}
