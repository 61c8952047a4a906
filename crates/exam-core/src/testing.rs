//! Fakes shared by the tests and benchmarks of every crate (feature `test-util`): the core
//! reaches the outside world through traits, and these stand in where the real thing is
//! not the point of a test.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Clock;
use crate::keychain::{KeychainError, SecretStore};
use crate::secret::Secret;

/// Secrets in memory. Shared by reference, it survives a "restart" of the manager.
#[derive(Default)]
pub struct MemoryStore(pub Mutex<BTreeMap<String, String>>);

impl MemoryStore {
    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The names of every entry held (never the secrets).
    pub fn keys(&self) -> Vec<String> {
        self.entries().keys().cloned().collect()
    }

    /// The refresh token stored for `user`, if any.
    pub fn refresh_token(&self, user: &str) -> Option<String> {
        self.entries()
            .iter()
            .find(|(k, _)| k.ends_with(&format!("refresh-token {user}")))
            .map(|(_, v)| v.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Secret<String>>, KeychainError> {
        Ok(self.entries().get(key).cloned().map(Secret::new))
    }
    fn set(&self, key: &str, value: &Secret<String>) -> Result<(), KeychainError> {
        self.entries().insert(key.into(), value.expose().clone());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), KeychainError> {
        self.entries().remove(key);
        Ok(())
    }
}

/// A wall clock that moves only when told (tests, property tests).
#[derive(Default)]
pub struct ManualClock(pub AtomicI64);

impl ManualClock {
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Sets the clock back by `d` (someone corrects it by hand, or NTP steps it).
    pub fn set_back(&self, d: Duration) {
        self.0.fetch_sub(
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
