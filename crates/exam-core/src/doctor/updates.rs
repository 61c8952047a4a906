//! Updates as IT set them (`[update]`: mode, channel, pin) and as the updater last left
//! them (the status file of the data folder, [`crate::update::status`]), side by side, so a
//! computer that stays behind, or took a pinned version, says why.

use std::path::Path;

use super::{Finding, Level};
use crate::config::UpdateSettings;
use crate::update::status::{Phase, UpdateStatus};

/// The update findings of the data folder at `data_dir` under IT's settings.
pub fn check(data_dir: &Path, settings: &UpdateSettings) -> Vec<Finding> {
    vec![finding(crate::update::status::load(data_dir), settings)]
}

fn configured(settings: &UpdateSettings) -> String {
    let pin = settings
        .pin
        .as_deref()
        .map_or_else(|| "no pin".to_string(), |p| format!("pinned to {p}*"));
    format!(
        "Configured: mode {}, channel {}, {pin}{}.",
        settings.mode.as_str(),
        settings.channel,
        if settings.allow_downgrade {
            ", rollback allowed"
        } else {
            ""
        }
    )
}

/// The finding of a status (none: the updater has not written one) under `settings`.
pub(super) fn finding(status: Option<UpdateStatus>, settings: &UpdateSettings) -> Finding {
    let base = |f: Finding| {
        f.with("mode", settings.mode.as_str())
            .with("channel", &settings.channel)
            .with("pin", &settings.pin)
            .with("allow_downgrade", settings.allow_downgrade)
            .with("installed", crate::VERSION)
    };
    let Some(status) = status else {
        return base(
            Finding::new(
                "update.unknown",
                Level::Info,
                format!("Version {}: no update status yet", crate::VERSION),
            )
            .detail(format!(
                "The updater writes it at its first check after the app starts. {}",
                configured(settings)
            )),
        );
    };
    let last_check = status
        .last_check_ms
        .map(|ms| crate::clock::rfc3339(ms as i64));
    let mut notes = vec![configured(settings)];
    if status.channel != settings.channel || status.pin != settings.pin {
        notes.push(format!(
            "The last check used channel {} and {}; the next one uses the settings above.",
            status.channel,
            status
                .pin
                .as_deref()
                .map_or_else(|| "no pin".to_string(), |p| format!("pin {p}*"))
        ));
    }
    if let Some(at) = &last_check {
        notes.push(format!("Last answer from the update server: {at}."));
    }
    let (code, level, title) = match &status.phase {
        Phase::Failed { code, message } => (
            "update.failed",
            Level::Warn,
            format!("The last update check failed ({code}): {message}"),
        ),
        Phase::CannotApply { version, .. } => {
            notes.insert(
                0,
                "This installation cannot replace itself: deploy the new version with the \
                 school's software tool."
                    .into(),
            );
            (
                "update.cannot_apply",
                Level::Warn,
                format!(
                    "Version {version} is available, but this installation cannot update itself"
                ),
            )
        }
        Phase::Off => (
            "update.off",
            Level::Info,
            format!("Version {}: updates are turned off by IT", status.current),
        ),
        Phase::Available { version } => (
            "update.available",
            Level::Info,
            format!(
                "Version {version} is available (installed: {})",
                status.current
            ),
        ),
        Phase::Deferred { version, wait } => (
            "update.waiting",
            Level::Info,
            format!(
                "Version {version} is downloaded and waits: {}",
                serde_json::to_value(wait)
                    .ok()
                    .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_string))
                    .unwrap_or_default()
                    .replace('_', " ")
            ),
        ),
        Phase::UpToDate => (
            "update.status",
            Level::Ok,
            format!("Version {} is up to date", status.current),
        ),
        _ => (
            "update.status",
            Level::Info,
            format!("Version {}", status.current),
        ),
    };
    base(
        Finding::new(code, level, title)
            .detail(notes.join("\n"))
            .with("status_current", &status.current)
            .with("phase", &status.phase)
            .with("status_channel", &status.channel)
            .with("status_pin", &status.pin)
            .with("last_check", last_check)
            .with(
                "waiting_since",
                status
                    .waiting_since_ms
                    .map(|ms| crate::clock::rfc3339(ms as i64)),
            ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::tests::documented;
    use crate::update::gate::Wait;

    #[test]
    fn the_status_file_and_the_settings_side_by_side() {
        let pinned = UpdateSettings {
            pin: Some("1.4.".into()),
            ..UpdateSettings::default()
        };
        let none = finding(None, &pinned);
        assert_eq!(none.code, "update.unknown");
        assert!(none.detail.contains("pinned to 1.4.*"), "{}", none.detail);
        let mut status = UpdateStatus::new("1.4.2", "stable", Some("1.4."));
        status.last_check_ms = Some(1_746_086_400_000.0);
        let table = [
            (Phase::UpToDate, "update.status", Level::Ok),
            (Phase::NotChecked, "update.status", Level::Info),
            (Phase::Off, "update.off", Level::Info),
            (
                Phase::Available {
                    version: "1.4.3".into(),
                },
                "update.available",
                Level::Info,
            ),
            (
                Phase::Deferred {
                    version: "1.4.3".into(),
                    wait: Wait::AttemptOpen,
                },
                "update.waiting",
                Level::Info,
            ),
            (
                Phase::Failed {
                    code: "signature".into(),
                    message: "bad signature".into(),
                },
                "update.failed",
                Level::Warn,
            ),
        ];
        for (phase, code, level) in table {
            status.phase = phase;
            let f = finding(Some(status.clone()), &pinned);
            documented(&f);
            assert_eq!(
                (f.code.as_str(), f.level),
                (code, level),
                "{:?}",
                status.phase
            );
            assert_eq!(f.evidence["pin"], "1.4.");
            assert_eq!(f.evidence["last_check"], "2025-05-01T08:00:00.000Z");
        }
        status.phase = Phase::Deferred {
            version: "1.4.3".into(),
            wait: Wait::AttemptOpen,
        };
        assert!(finding(Some(status.clone()), &pinned)
            .title
            .ends_with("waits: attempt open"));
        // A channel changed since the last check is said.
        let beta = UpdateSettings {
            channel: "beta".into(),
            ..UpdateSettings::default()
        };
        assert!(finding(Some(status), &beta)
            .detail
            .contains("The last check used channel stable"));
    }
}
