//! Answers encrypted at rest: XChaCha20-Poly1305 (an AEAD) with one key per student of each
//! server (see [`crate::keys`]), kept in the OS keychain — never in the database or a file.
//!
//! Whoever copies the database from a lab machine gets ciphertext: the saved answers (the
//! `answers` table) and the answer saves waiting to be sent (queue bodies) are both sealed.
//! The associated data binds each ciphertext to its place (exam, attempt and question for a
//! saved answer; the idempotency key for a queued request), so a sealed value moved to
//! another row does not open.
//!
//! Sealed bytes: `0x00` (no JSON text starts with it), the format `0x01`, a random 24-byte
//! nonce, then the ciphertext with its 16-byte tag.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::keychain::KeychainError;
use crate::secret::Secret;

const MARK: u8 = 0x00;
const FORMAT: u8 = 0x01;
const NONCE: usize = 24;
/// Bytes a sealed value adds to its plaintext.
pub const OVERHEAD: usize = 2 + NONCE + 16;

/// The keychain entry of the one answer key earlier versions kept for every student of the
/// OS account (split into per-student keys at start: [`crate::keys::AnswerKeys::adopt_legacy`]).
pub const KEYCHAIN_ENTRY: &str = "answer-key";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the answer key could not be read from the OS keychain: {0}")]
    Keychain(#[from] KeychainError),
    #[error("the answer key in the OS keychain is damaged ({0}); saved answers cannot be read")]
    BadKey(String),
    #[error(
        "this saved answer cannot be decrypted: the answer key in the OS keychain is not the \
         one it was saved with, or the data is damaged"
    )]
    Open,
    #[error("the sealed value is in an unknown format ({0})")]
    Format(String),
    #[error(
        "the answer key of this student is missing from the OS keychain (a reset profile, or a \
         roaming profile not loaded yet) while {sealed} values sealed with it are on this \
         computer: they are kept untouched, and no new key is made"
    )]
    KeyMissing { sealed: u64 },
    #[error("the database could not be read to check the answer keys: {0}")]
    Store(String),
}

/// Encrypts and decrypts values bound to associated data.
pub trait Sealer: Send + Sync {
    fn seal(&self, ad: &[u8], plain: &[u8]) -> Vec<u8>;
    fn open(&self, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError>;
}

/// Whether `bytes` were written by a [`Sealer`] (plaintext JSON never starts with `0x00`).
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.first() == Some(&MARK)
}

/// The installation's answer key.
pub struct AnswerKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for AnswerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnswerKey(<redacted>)")
    }
}

impl AnswerKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }

    /// A new random key.
    pub fn generate() -> (Self, Secret<String>) {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let encoded = Secret::new(hex::encode(bytes));
        let key = Self::from_bytes(&bytes);
        bytes.fill(0);
        (key, encoded)
    }

    /// A key as the keychain keeps it (hex).
    pub fn decode(stored: &Secret<String>) -> Result<Self, SealError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(stored.expose().trim(), &mut bytes)
            .map_err(|e| SealError::BadKey(e.to_string()))?;
        let key = Self::from_bytes(&bytes);
        bytes.fill(0);
        Ok(key)
    }
}

impl Sealer for AnswerKey {
    fn seal(&self, ad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(plain.len() + OVERHEAD);
        out.push(MARK);
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        // Encryption with a valid key and nonce size cannot fail (only opening can).
        match self.cipher.encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: ad,
            },
        ) {
            Ok(sealed) => out.extend_from_slice(&sealed),
            Err(_) => tracing::error!("encryption failed"),
        }
        out
    }

    fn open(&self, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        match sealed {
            [MARK, FORMAT, rest @ ..] if rest.len() >= NONCE + 16 => {
                let (nonce, ciphertext) = rest.split_at(NONCE);
                self.cipher
                    .decrypt(
                        XNonce::from_slice(nonce),
                        Payload {
                            msg: ciphertext,
                            aad: ad,
                        },
                    )
                    .map_err(|_| SealError::Open)
            }
            [MARK, FORMAT, ..] => Err(SealError::Format("too short".into())),
            [MARK, other, ..] => Err(SealError::Format(format!("format {other}"))),
            _ => Err(SealError::Format("not sealed".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_associated_data() {
        let (key, _) = AnswerKey::generate();
        let sealed = key.seal(b"exam-1/attempt/q1", br#""Xin chao""#);
        assert!(is_sealed(&sealed));
        assert_eq!(sealed.len(), 10 + OVERHEAD);
        assert!(!sealed.windows(8).any(|w| w == b"Xin chao"));
        assert_eq!(
            key.open(b"exam-1/attempt/q1", &sealed).unwrap(),
            br#""Xin chao""#
        );
        // Moved to another question: refused.
        assert!(matches!(
            key.open(b"exam-1/attempt/q2", &sealed),
            Err(SealError::Open)
        ));
        let (other, _) = AnswerKey::generate();
        assert!(matches!(
            other.open(b"exam-1/attempt/q1", &sealed),
            Err(SealError::Open)
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(key.open(b"exam-1/attempt/q1", &flipped).is_err());
        assert!(key.open(b"x", b"{}").is_err());
        assert!(key.open(b"x", &sealed[..10]).is_err());
    }

    #[test]
    fn two_seals_of_the_same_answer_differ() {
        let (key, _) = AnswerKey::generate();
        assert_ne!(key.seal(b"a", b"same"), key.seal(b"a", b"same"));
    }

    #[test]
    fn a_key_reads_back_from_its_keychain_form_and_never_prints() {
        let (key, encoded) = AnswerKey::generate();
        let sealed = key.seal(b"ad", b"answer");
        let again = AnswerKey::decode(&encoded).unwrap();
        assert_eq!(again.open(b"ad", &sealed).unwrap(), b"answer");
        assert!(!format!("{again:?}").contains(encoded.expose().as_str()));
        assert!(matches!(
            AnswerKey::decode(&Secret::new("not hex".into())),
            Err(SealError::BadKey(_))
        ));
    }
}
