//! Whether the OS keychain answers: students' sessions and answer keys live there, so without
//! it nobody stays signed in and no answer can be sealed. Asked for an entry the app never
//! writes, so no secret is ever read, and nothing is written.

use std::time::Duration;

use super::{Finding, Level};
use crate::keychain::{KeychainError, SecretStore};

/// The entry asked for: never stored by the app.
pub const PROBE_ENTRY: &str = "exam-desktop doctor probe";

const WHERE: &str = "on Linux the Secret Service (gnome-keyring or KWallet), on Windows \
                     Credential Manager, on macOS the Keychain";

/// One look-up in `secrets`.
pub fn check(secrets: &dyn SecretStore) -> Finding {
    match secrets.get(PROBE_ENTRY) {
        Ok(_) => Finding::new("keychain.ok", Level::Ok, "The OS keychain answers"),
        Err(KeychainError::Unavailable(why)) => Finding::new(
            "keychain.unavailable",
            Level::Fail,
            "The OS keychain cannot be reached",
        )
        .detail(format!(
            "{why}.\nStudents cannot stay signed in and answers cannot be sealed without \
                     it. Make sure the keychain service runs in this account's desktop session: {WHERE}."
        ))
        .with("error", why),
        Err(other) => Finding::new(
            "keychain.refused",
            Level::Fail,
            "The OS keychain refused a look-up",
        )
        .detail(format!(
            "{other}.\nUnlock the keychain of this account, or recreate it if it is damaged: \
             {WHERE}."
        ))
        .with("error", other.to_string()),
    }
}

/// The finding when the keychain did not answer within `after`.
pub fn timed_out(after: Duration) -> Finding {
    Finding::new(
        "keychain.timeout",
        Level::Fail,
        format!(
            "The OS keychain did not answer within {:.1} s",
            after.as_secs_f64()
        ),
    )
    .detail(format!(
        "A keychain waiting for someone to unlock it, or a stuck keychain service, makes sign-in \
         hang too. Unlock it, or restart the desktop session: {WHERE}."
    ))
    .with(
        "after_ms",
        u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::tests::documented;
    use crate::secret::Secret;

    struct Failing(fn() -> KeychainError);

    impl SecretStore for Failing {
        fn get(&self, _: &str) -> Result<Option<Secret<String>>, KeychainError> {
            Err((self.0)())
        }
        fn set(&self, _: &str, _: &Secret<String>) -> Result<(), KeychainError> {
            Err((self.0)())
        }
        fn delete(&self, _: &str) -> Result<(), KeychainError> {
            Err((self.0)())
        }
    }

    #[test]
    fn reachable_missing_and_refusing_keychains() {
        let memory = crate::testing::MemoryStore::default();
        memory
            .set("http://x answer-key s", &Secret::new("secret-value".into()))
            .unwrap();
        let ok = check(&memory);
        assert_eq!((ok.code.as_str(), ok.level), ("keychain.ok", Level::Ok));
        let gone = check(&Failing(|| {
            KeychainError::Unavailable("no D-Bus session".into())
        }));
        assert_eq!(gone.code, "keychain.unavailable");
        assert!(gone.detail.contains("no D-Bus session"));
        let refused = check(&Failing(|| KeychainError::Refused {
            key: PROBE_ENTRY.into(),
            message: "locked".into(),
        }));
        assert_eq!(refused.code, "keychain.refused");
        for f in [&ok, &gone, &refused, &timed_out(Duration::from_secs(2))] {
            documented(f);
            assert!(!format!("{f:?}").contains("secret-value"));
        }
    }
}
