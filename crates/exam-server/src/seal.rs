//! The cryptography of sealed exam packages (shared/API.md, "Sealed exam packages"), apart
//! from storage and HTTP so that it can be read, and tested, on its own.
//!
//! - A **start code** is 12 symbols of [`ALPHABET`] (32 symbols: `A`–`Z` and `2`–`9` without
//!   `I` and `O`, so no `0`/`O` or `1`/`I` mix-up), 60 bits from the OS random generator,
//!   shown grouped `XXXX-XXXX-XXXX`. A sealed package sits on student machines before the
//!   exam, so the code must resist offline guessing: 2^60 codes times one Argon2id each.
//! - The **exam key** is `Argon2id(normalise(start_code), salt, m_kib, t, p)` → 32 bytes
//!   (Argon2 version 0x13, no secret, no associated data), where [`normalise`] drops `-` and
//!   whitespace and upper-cases the rest.
//! - The package's questions (the JSON array, UTF-8) are encrypted with XChaCha20-Poly1305
//!   under that key with a random 24-byte nonce; the associated data, from
//!   [`associated_data`], is the bytes `exam-package` NUL `{id}` NUL `{version}` (the version
//!   in decimal ASCII): a ciphertext never opens as another exam or another version.
//!
//! The parameters travel in the package ([`KdfParams`]), so they can change later without
//! breaking clients.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// The start-code alphabet: 32 symbols, so one random byte masked to 5 bits picks one without bias.
pub const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Symbols in a start code: 12 × 5 = 60 bits.
pub const CODE_LEN: usize = 12;
/// The AEAD, as the package names it.
pub const ALG: &str = "XChaCha20-Poly1305";
/// The key derivation, as the package names it.
pub const KDF_ALG: &str = "argon2id";
pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 24;
pub const SALT_LEN: usize = 16;

/// Argon2id cost parameters: memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about 0.2 s on the 2-core development machine (release), well
    /// under the 1.5 s a student's machine may spend at the start of an exam, and 64 MiB per
    /// guess for anyone guessing start codes.
    pub const DEFAULT: Self = Self {
        m_kib: 65536,
        t: 3,
        p: 1,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("invalid Argon2id parameters or salt: {0}")]
    Kdf(String),
    #[error("the package does not open with this key")]
    Open,
    #[error("the package cannot be sealed")]
    Seal,
}

/// The exam key. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ExamKey(pub [u8; KEY_LEN]);

impl std::fmt::Debug for ExamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExamKey(<redacted>)")
    }
}

/// A new random start code, normalised (12 symbols, no dashes).
pub fn new_start_code() -> String {
    let mut bytes = [0u8; CODE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect()
}

/// What the key is derived from: the code without `-` and whitespace, in upper case.
pub fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// `XXXX-XXXX-XXXX`, as proctors read it out.
pub fn grouped(code: &str) -> String {
    let code = normalise(code);
    let chars: Vec<char> = code.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// `Argon2id(normalise(code), salt, m_kib, t, p)` → 32 bytes.
pub fn derive_key(code: &str, salt: &[u8], params: KdfParams) -> Result<ExamKey, SealError> {
    let argon_params = Params::new(params.m_kib, params.t, params.p, Some(KEY_LEN))
        .map_err(|e| SealError::Kdf(e.to_string()))?;
    let mut key = [0u8; KEY_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
        .hash_password_into(normalise(code).as_bytes(), salt, &mut key)
        .map_err(|e| SealError::Kdf(e.to_string()))?;
    Ok(ExamKey(key))
}

/// The associated data that binds a ciphertext to its package: `exam-package\0{id}\0{version}`.
pub fn associated_data(id: &str, version: i64) -> Vec<u8> {
    format!("exam-package\0{id}\0{version}").into_bytes()
}

/// Random bytes from the OS.
pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// Encrypts `plaintext` for package `id` at `version`: the ciphertext with its 16-byte tag.
pub fn seal(
    key: &ExamKey,
    nonce: &[u8; NONCE_LEN],
    id: &str,
    version: i64,
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    XChaCha20Poly1305::new((&key.0).into())
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad: &associated_data(id, version),
            },
        )
        .map_err(|_| SealError::Seal)
}

/// Opens what [`seal`] made, or fails for any other key, nonce, id or version.
pub fn open(
    key: &ExamKey,
    nonce: &[u8],
    id: &str,
    version: i64,
    ciphertext: &[u8],
) -> Result<Vec<u8>, SealError> {
    if nonce.len() != NONCE_LEN {
        return Err(SealError::Open);
    }
    XChaCha20Poly1305::new((&key.0).into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &associated_data(id, version),
            },
        )
        .map_err(|_| SealError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: these tests are about the format, not the cost.
    const CHEAP: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    #[test]
    fn start_codes_are_twelve_symbols_of_the_alphabet_and_group_by_four() {
        let code = new_start_code();
        assert_eq!(code.len(), CODE_LEN);
        assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
        let shown = grouped(&code);
        assert_eq!(shown.len(), 14);
        assert_eq!(normalise(&shown), code);
        assert_ne!(new_start_code(), code);
        // No look-alikes.
        for c in [b'0', b'O', b'1', b'I'] {
            assert!(!ALPHABET.contains(&c));
        }
        let unique: std::collections::HashSet<_> = ALPHABET.iter().collect();
        assert_eq!(unique.len(), 32);
    }

    #[test]
    fn normalising_drops_dashes_and_spaces_and_upper_cases() {
        assert_eq!(normalise(" abcd-efgh-jk2m "), "ABCDEFGHJK2M");
        assert_eq!(grouped("abcdefghjk2m"), "ABCD-EFGH-JK2M");
    }

    #[test]
    fn a_package_opens_with_its_key_id_and_version_only() {
        let salt = random::<SALT_LEN>();
        let key = derive_key("ABCD-EFGH-JKLM", &salt, CHEAP).unwrap();
        assert_eq!(
            derive_key("abcdefghjklm", &salt, CHEAP).unwrap(),
            key,
            "dashes and case do not matter"
        );
        let nonce = random::<NONCE_LEN>();
        let sealed = seal(&key, &nonce, "exam", 2, b"[1,2]").unwrap();
        assert_eq!(open(&key, &nonce, "exam", 2, &sealed).unwrap(), b"[1,2]");
        assert!(open(&key, &nonce, "exam", 3, &sealed).is_err());
        assert!(open(&key, &nonce, "other", 2, &sealed).is_err());
        let wrong = derive_key("ABCD-EFGH-JKLN", &salt, CHEAP).unwrap();
        assert!(open(&wrong, &nonce, "exam", 2, &sealed).is_err());
        assert_eq!(associated_data("e1", 7), b"exam-package\0e1\x007".to_vec());
        assert_eq!(format!("{key:?}"), "ExamKey(<redacted>)");
    }
}
