//! The names of the metrics an app measures and sends in its `metrics.minute` summaries —
//! the app's history and dashboards, the server's `metric_minutes` columns and the console
//! all use these, so a metric cannot be called one thing on one side and another on the other.
//!
//! The order is the app's `Metric` order (`exam_core::analytics::Metric`); a new metric goes
//! at the end, with a server migration adding its four columns.

/// Every metric, by name (snake case; a unit suffix where it has one).
pub const NAMES: [&str; 20] = [
    "save_ms",
    "delivered",
    "batch_size",
    "queue_depth",
    "rtt_ms",
    "online_s",
    "offline_s",
    "degraded_s",
    "sign_in_ms",
    "token_cache_ms",
    "refresh_ms",
    "token_cache_misses",
    "refresh_failures",
    "failures_network",
    "failures_rejected",
    "failures_rate_limited",
    "outages",
    "requests",
    "connections",
    "disk_free_mb",
];

/// The unit of a metric's values, for axes and reports.
pub fn unit(name: &str) -> &'static str {
    match name {
        "save_ms" | "rtt_ms" | "sign_in_ms" | "token_cache_ms" | "refresh_ms" => "ms",
        "online_s" | "offline_s" | "degraded_s" => "s",
        "disk_free_mb" => "MiB",
        "batch_size" => "entries",
        "queue_depth" => "entries",
        _ => "count",
    }
}

/// The position of `name` in [`NAMES`].
pub fn index(name: &str) -> Option<usize> {
    NAMES.iter().position(|n| *n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        for (i, name) in NAMES.iter().enumerate() {
            assert_eq!(index(name), Some(i), "{name} twice");
            assert!(name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        }
        assert_eq!(unit("save_ms"), "ms");
        assert_eq!(unit("disk_free_mb"), "MiB");
        assert_eq!(unit("outages"), "count");
    }
}
