//! `app.not_running` events in an attempt's timeline. When the app starts again during an
//! attempt after it was not running — it crashed, the power went, the machine restarted — it
//! reports for how long: `attrs = {attempt_id, started_at, ended_at, duration_ms, device}`
//! (times RFC 3339; `started_at` is the app's last sign of life, `ended_at` its new start).
//!
//! Like [`super::outage`], the event is telemetry, kept as sent and never refused; the
//! timeline says what it can of it, in the server's words and the same duration wording: "the
//! app was not running for 1 min 20 s (until 09:20:11 UTC) — a crash or a restart". What
//! the time is worth to the student is [`super::time_lost`]'s.

use serde_json::{json, Map, Value};

use super::outage::Span;

/// The timeline item of a time the app was not running, reported by an event sent `at` with
/// `attrs`: `{at: started_at, kind: "not_running", text}`.
pub fn timeline_item(at: &str, attrs: &Map<String, Value>) -> Value {
    let span = Span::from_attrs(attrs);
    json!({"at": span.at(at), "kind": "not_running", "text": text(&span)})
}

/// "the app was not running for 1 min 20 s (until 09:20:11 UTC) — a crash or a restart".
pub fn text(span: &Span) -> String {
    format!(
        "the app was not running{} — a crash or a restart",
        span.how_long()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_time_not_running_is_an_item_at_its_start_saying_how_long_and_until_when() {
        let sent = "2026-11-28T09:25:00Z";
        // (attrs, expected at, expected text)
        let table: &[(Value, &str, &str)] = &[
            (
                json!({"attempt_id": "a", "started_at": "2026-11-28T09:18:51Z",
                       "ended_at": "2026-11-28T09:20:11Z", "duration_ms": 80_000,
                       "device": "d"}),
                "2026-11-28T09:18:51.000Z",
                "the app was not running for 1 min 20 s (until 09:20:11 UTC) — a crash or a restart",
            ),
            // No duration: from the two times (any offset).
            (
                json!({"started_at": "2026-11-28T10:00:00+01:00",
                       "ended_at": "2026-11-28T09:03:30Z"}),
                "2026-11-28T09:00:00.000Z",
                "the app was not running for 3 min 30 s (until 09:03:30 UTC) — a crash or a restart",
            ),
            // Over midnight (a machine left off): the end's date is said.
            (
                json!({"started_at": "2026-11-28T23:50:00Z",
                       "ended_at": "2026-11-29T07:50:00Z", "duration_ms": 28_800_000}),
                "2026-11-28T23:50:00.000Z",
                "the app was not running for 8 h (until 2026-11-29 07:50:00 UTC) — a crash or a restart",
            ),
            // Nothing usable: at the event's time, with what is known.
            (
                json!({"started_at": 17, "ended_at": "later", "duration_ms": -5}),
                "2026-11-28T09:25:00.000Z",
                "the app was not running — a crash or a restart",
            ),
            (
                json!({}),
                "2026-11-28T09:25:00.000Z",
                "the app was not running — a crash or a restart",
            ),
        ];
        for (attrs, at, text) in table {
            let item = timeline_item(sent, attrs.as_object().unwrap());
            assert_eq!(item["kind"], "not_running");
            assert_eq!(item["at"], *at, "{attrs}");
            assert_eq!(item["text"], *text, "{attrs}");
        }
    }
}
