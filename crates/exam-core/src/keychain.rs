//! Secrets in the OS keychain (Secret Service, Windows Credential Manager, macOS Keychain),
//! behind a small trait so the logic above it can be tested with a fake.
//!
//! Windows Credential Manager caps a secret at 2560 bytes (1280 UTF-16 code units), less
//! than a refresh token plus what travels with it may need, so values are split into
//! numbered chunks when they exceed the platform's limit. Values up to [`MAX_SECRET_BYTES`]
//! round-trip everywhere.

use crate::secret::Secret;

/// The largest value the app stores.
pub const MAX_SECRET_BYTES: usize = 8 * 1024;

/// Characters per stored entry on Windows (2560 bytes of UTF-16).
pub const WINDOWS_CHUNK_CHARS: usize = 1280;

#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    #[error("the OS keychain is not available: {0}")]
    Unavailable(String),
    #[error("the OS keychain refused the operation on `{key}`: {message}")]
    Refused { key: String, message: String },
    #[error("the keychain entry `{key}` is damaged: {message}")]
    Corrupt { key: String, message: String },
    #[error("a secret of {len} bytes is larger than the {MAX_SECRET_BYTES} bytes allowed")]
    TooLarge { len: usize },
}

/// One flat entry per key. The real implementation is [`OsKeychain`]; tests use fakes.
pub trait RawStore: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<String>, KeychainError>;
    fn set(&self, key: &str, value: &str) -> Result<(), KeychainError>;
    /// Deleting a missing entry is not an error.
    fn delete(&self, key: &str) -> Result<(), KeychainError>;
    /// The most characters one entry may hold.
    fn max_entry_chars(&self) -> usize;
}

/// Where the core keeps its secrets (tokens, the answer key): the OS keychain in the app
/// ([`Keychain`] over the platform's store), a fake in tests (`testing::MemoryStore`).
pub trait SecretStore: Send + Sync + 'static {
    fn get(&self, key: &str) -> Result<Option<Secret<String>>, KeychainError>;
    fn set(&self, key: &str, value: &Secret<String>) -> Result<(), KeychainError>;
    fn delete(&self, key: &str) -> Result<(), KeychainError>;
}

impl<S: RawStore + 'static> SecretStore for Keychain<S> {
    fn get(&self, key: &str) -> Result<Option<Secret<String>>, KeychainError> {
        Keychain::get(self, key)
    }
    fn set(&self, key: &str, value: &Secret<String>) -> Result<(), KeychainError> {
        Keychain::set(self, key, value)
    }
    fn delete(&self, key: &str) -> Result<(), KeychainError> {
        Keychain::delete(self, key)
    }
}

/// Secrets of any size up to [`MAX_SECRET_BYTES`] on top of a [`RawStore`], chunked where
/// the store needs it. The first entry holds `"<chunk count>\n<first chunk>"`; the others
/// are `key#1`, `key#2`, …
pub struct Keychain<S> {
    raw: S,
}

impl<S: RawStore> Keychain<S> {
    pub fn new(raw: S) -> Self {
        Self { raw }
    }

    fn chunk_key(key: &str, n: usize) -> String {
        format!("{key}#{n}")
    }

    pub fn get(&self, key: &str) -> Result<Option<Secret<String>>, KeychainError> {
        let Some(first) = self.raw.get(key)? else {
            return Ok(None);
        };
        let corrupt = |message: &str| KeychainError::Corrupt {
            key: key.to_string(),
            message: message.to_string(),
        };
        let (count, head) = first
            .split_once('\n')
            .ok_or_else(|| corrupt("no chunk header"))?;
        let count: usize = count.parse().map_err(|_| corrupt("bad chunk count"))?;
        if count == 0 || count > MAX_SECRET_BYTES {
            return Err(corrupt("bad chunk count"));
        }
        let mut value = head.to_string();
        for n in 1..count {
            let part = self
                .raw
                .get(&Self::chunk_key(key, n))?
                .ok_or_else(|| corrupt(&format!("chunk {n} of {count} is missing")))?;
            value.push_str(&part);
        }
        Ok(Some(Secret::new(value)))
    }

    /// Writes the value; when it returns `Ok`, every chunk is stored.
    pub fn set(&self, key: &str, value: &Secret<String>) -> Result<(), KeychainError> {
        let value = value.expose();
        if value.len() > MAX_SECRET_BYTES {
            return Err(KeychainError::TooLarge { len: value.len() });
        }
        let old_count = self.chunk_count(key);
        // The header takes a few characters of the first entry.
        let limit = self.raw.max_entry_chars().saturating_sub(8).max(16);
        let chunks = split_chars(value, limit);
        // Later chunks first, so the header never points at chunks that are not written yet.
        for (n, chunk) in chunks.iter().enumerate().skip(1) {
            self.raw.set(&Self::chunk_key(key, n), chunk)?;
        }
        let head = chunks.first().map_or("", String::as_str);
        self.raw.set(key, &format!("{}\n{head}", chunks.len()))?;
        for n in chunks.len()..old_count {
            self.raw.delete(&Self::chunk_key(key, n))?;
        }
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<(), KeychainError> {
        let count = self.chunk_count(key);
        self.raw.delete(key)?;
        for n in 1..count {
            self.raw.delete(&Self::chunk_key(key, n))?;
        }
        Ok(())
    }

    fn chunk_count(&self, key: &str) -> usize {
        self.raw
            .get(key)
            .ok()
            .flatten()
            .and_then(|first| first.split_once('\n').and_then(|(n, _)| n.parse().ok()))
            .unwrap_or(0)
    }
}

/// Splits on character boundaries into pieces of at most `limit` characters; an empty
/// value is one empty piece.
fn split_chars(value: &str, limit: usize) -> Vec<String> {
    let chars: Vec<char> = value.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(limit.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// The platform's keychain through the `keyring` crate: one service name for the app.
pub struct OsKeychain {
    service: String,
}

impl OsKeychain {
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }

    fn entry(&self, key: &str) -> Result<keyring::Entry, KeychainError> {
        keyring::Entry::new(&self.service, key).map_err(|e| map_error(key, e))
    }
}

fn map_error(key: &str, error: keyring::Error) -> KeychainError {
    match error {
        keyring::Error::PlatformFailure(e) | keyring::Error::NoStorageAccess(e) => {
            KeychainError::Unavailable(e.to_string())
        }
        other => KeychainError::Refused {
            key: key.to_string(),
            message: other.to_string(),
        },
    }
}

impl RawStore for OsKeychain {
    fn get(&self, key: &str) -> Result<Option<String>, KeychainError> {
        match self.entry(key)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(key, e)),
        }
    }

    fn set(&self, key: &str, value: &str) -> Result<(), KeychainError> {
        self.entry(key)?
            .set_password(value)
            .map_err(|e| map_error(key, e))
    }

    fn delete(&self, key: &str) -> Result<(), KeychainError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_error(key, e)),
        }
    }

    fn max_entry_chars(&self) -> usize {
        if cfg!(windows) {
            WINDOWS_CHUNK_CHARS
        } else {
            // Secret Service and the macOS Keychain take far more than we ever store.
            MAX_SECRET_BYTES * 2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// A store with a small per-entry cap, like Windows Credential Manager but tighter.
    struct Capped {
        cap: usize,
        entries: Mutex<BTreeMap<String, String>>,
    }

    impl Capped {
        fn new(cap: usize) -> Self {
            Self {
                cap,
                entries: Mutex::new(BTreeMap::new()),
            }
        }
        fn keys(&self) -> Vec<String> {
            self.entries.lock().unwrap().keys().cloned().collect()
        }
    }

    impl RawStore for Capped {
        fn get(&self, key: &str) -> Result<Option<String>, KeychainError> {
            Ok(self.entries.lock().unwrap().get(key).cloned())
        }
        fn set(&self, key: &str, value: &str) -> Result<(), KeychainError> {
            if value.chars().count() > self.cap {
                return Err(KeychainError::Refused {
                    key: key.into(),
                    message: "too long".into(),
                });
            }
            self.entries
                .lock()
                .unwrap()
                .insert(key.into(), value.into());
            Ok(())
        }
        fn delete(&self, key: &str) -> Result<(), KeychainError> {
            self.entries.lock().unwrap().remove(key);
            Ok(())
        }
        fn max_entry_chars(&self) -> usize {
            self.cap
        }
    }

    #[test]
    fn secrets_up_to_8_kb_round_trip_through_windows_sized_entries() {
        let keychain = Keychain::new(Capped::new(WINDOWS_CHUNK_CHARS));
        for len in [0, 1, 1271, 1272, 1273, 5000, MAX_SECRET_BYTES] {
            let value: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            keychain.set("k", &Secret::new(value.clone())).unwrap();
            assert_eq!(
                keychain.get("k").unwrap().unwrap().expose(),
                &value,
                "{len}"
            );
        }
        // Multi-byte characters are never cut in half.
        let value = "điểm thi ".repeat(400);
        keychain.set("k", &Secret::new(value.clone())).unwrap();
        assert_eq!(keychain.get("k").unwrap().unwrap().expose(), &value);
    }

    #[test]
    fn a_shorter_value_removes_the_chunks_it_no_longer_needs() {
        let keychain = Keychain::new(Capped::new(100));
        keychain.set("k", &Secret::new("x".repeat(450))).unwrap();
        assert_eq!(keychain.raw.keys(), ["k", "k#1", "k#2", "k#3", "k#4"]);
        keychain.set("k", &Secret::new("y".repeat(150))).unwrap();
        assert_eq!(keychain.raw.keys(), ["k", "k#1"]);
        assert_eq!(
            keychain.get("k").unwrap().unwrap().expose(),
            &"y".repeat(150)
        );
        keychain.delete("k").unwrap();
        assert!(keychain.raw.keys().is_empty());
        assert!(keychain.get("k").unwrap().is_none());
    }

    #[test]
    fn too_large_and_damaged_entries_are_clear_errors() {
        let keychain = Keychain::new(Capped::new(100));
        let err = keychain.set("k", &Secret::new("x".repeat(MAX_SECRET_BYTES + 1)));
        assert!(matches!(err, Err(KeychainError::TooLarge { .. })));
        keychain.raw.set("k", "3\nabc").unwrap();
        let err = keychain.get("k").unwrap_err().to_string();
        assert!(err.contains("chunk 1 of 3 is missing"), "{err}");
        keychain.raw.set("k", "no header").unwrap();
        assert!(matches!(
            keychain.get("k"),
            Err(KeychainError::Corrupt { .. })
        ));
    }
}
