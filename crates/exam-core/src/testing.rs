//! Fakes shared by the tests and benchmarks of every crate (feature `test-util`): the core
//! reaches the outside world through traits, and these stand in where the real thing is
//! not the point of a test.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::auth::SecretStore;
use crate::keychain::KeychainError;
use crate::secret::Secret;

/// Secrets in memory. Shared by reference, it survives a "restart" of the manager.
#[derive(Default)]
pub struct MemoryStore(pub Mutex<BTreeMap<String, String>>);

impl MemoryStore {
    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
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
