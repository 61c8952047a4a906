//! Updates that are safe for exams: which published version this computer may take
//! ([`VersionPolicy`]: IT's pin and rollback), and when a downloaded one may be installed
//! ([`gate`]). The shell's updater (signed with minisign, checked in the background) asks
//! both; nothing here touches the network or the installed files.

pub mod facts;
pub mod gate;
pub mod status;
pub mod worker;

use semver::Version;

/// Which versions IT lets this computer take.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionPolicy {
    /// Only versions that start with this (e.g. `1.4.`: patches of 1.4 only).
    pub pin: Option<String>,
    /// A version older than the installed one is taken only when this is set (a rollback
    /// ordered by IT), and then only one the pin allows.
    pub allow_downgrade: bool,
}

impl VersionPolicy {
    /// Whether `remote` should replace `current`.
    pub fn accepts(&self, current: &Version, remote: &Version) -> bool {
        if let Some(pin) = &self.pin {
            if !remote.to_string().starts_with(pin.as_str()) {
                return false;
            }
        }
        match remote.cmp(current) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => false,
            std::cmp::Ordering::Less => self.allow_downgrade && self.pin.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn pins_and_rollbacks_as_a_table() {
        let open = VersionPolicy::default();
        let patch_only = VersionPolicy {
            pin: Some("1.4.".into()),
            allow_downgrade: false,
        };
        let rollback = VersionPolicy {
            pin: Some("1.3.".into()),
            allow_downgrade: true,
        };
        let downgrade_unpinned = VersionPolicy {
            pin: None,
            allow_downgrade: true,
        };
        let table = [
            (&open, "1.4.2", "1.4.3", true),
            (&open, "1.4.2", "2.0.0", true),
            (&open, "1.4.2", "1.4.2", false),
            (&open, "1.4.2", "1.4.1", false),
            (&open, "1.4.2", "1.5.0-beta.1", true),
            (&patch_only, "1.4.2", "1.4.3", true),
            (&patch_only, "1.4.2", "1.5.0", false),
            (&patch_only, "1.4.2", "1.4.1", false),
            (&patch_only, "1.4.2", "1.40.0", false),
            (&rollback, "1.4.2", "1.3.9", true),
            (&rollback, "1.4.2", "1.4.3", false),
            // A downgrade needs a pin saying where to.
            (&downgrade_unpinned, "1.4.2", "1.3.9", false),
        ];
        for (policy, current, remote, expected) in table {
            assert_eq!(
                policy.accepts(&v(current), &v(remote)),
                expected,
                "{policy:?}: {current} → {remote}"
            );
        }
    }
}
