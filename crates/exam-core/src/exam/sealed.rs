//! Sealed exam packages (contract: "Sealed exam packages"): downloaded days ahead, their
//! questions unreadable until the exam opens. Everything but the questions is in clear; the
//! questions are XChaCha20-Poly1305 ciphertext under the exam key, with the package's `id`
//! and `version` as associated data. The key comes from the server once the exam is open
//! (`POST /v1/exams/{id}/key`), or — in a room without a network — from the start code the
//! proctor reads out: `Argon2id(start code, salt, m_kib, t, p)`.
//!
//! This module only reads and opens: it keeps nothing. A sealed package is stored as it
//! came; the opened questions are checked like any package ([`Package::parse`]) and never
//! written in clear.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::Deserialize;

use super::package::{BadPackage, Package, MAX_PACKAGE_BYTES};
use crate::secret::Secret;

/// The most memory a package may ask Argon2id for (KiB): a package that asks for more is
/// refused rather than allowed to exhaust a lab computer.
const MAX_M_KIB: u32 = 1024 * 1024;
/// The most passes and lanes accepted.
const MAX_T: u32 = 16;
const MAX_P: u32 = 8;

/// A sealed package as the server sends it (and as it is kept).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SealedPackage {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub duration_s: u32,
    #[serde(default)]
    pub instructions: String,
    pub question_count: u32,
    pub sealed: Seal,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Seal {
    pub alg: String,
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
    pub start_code: StartCodeKdf,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StartCodeKdf {
    pub alg: String,
    pub salt: String,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

/// An exam key (32 bytes), never printed.
pub struct ExamKey(Secret<[u8; 32]>);

impl std::fmt::Debug for ExamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExamKey(<redacted>)")
    }
}

impl ExamKey {
    /// The key as `POST /v1/exams/{id}/key` gives it (base64).
    pub fn from_base64(exam: &str, text: &str) -> Result<Self, BadPackage> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| bad(exam, format!("the key from the server is not base64: {e}")))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            bad(
                exam,
                format!("the key from the server has {} bytes, not 32", b.len()),
            )
        })?;
        Ok(Self(Secret::new(key)))
    }
}

fn bad(exam: &str, reason: String) -> BadPackage {
    BadPackage {
        exam: exam.to_string(),
        reason,
    }
}

/// Whether the bytes of a package are the sealed form.
pub fn is_sealed(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .map(|v| v.get("sealed").is_some_and(serde_json::Value::is_object))
        .unwrap_or(false)
}

/// A start code as people type it: dashes and spaces dropped, upper case.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// The associated data of a package's ciphertext: `exam-package` NUL id NUL version.
fn associated_data(id: &str, version: u32) -> Vec<u8> {
    format!("exam-package\0{id}\0{version}").into_bytes()
}

impl SealedPackage {
    /// Parses a sealed package for `exam_id`, checking what can be checked before it opens.
    pub fn parse(exam_id: &str, bytes: &[u8]) -> Result<Self, BadPackage> {
        if bytes.len() > MAX_PACKAGE_BYTES {
            return Err(bad(
                exam_id,
                format!(
                    "it is {} bytes, more than the {MAX_PACKAGE_BYTES} allowed",
                    bytes.len()
                ),
            ));
        }
        let package: Self = serde_json::from_slice(bytes).map_err(|e| {
            bad(
                exam_id,
                format!(
                    "it is not a valid sealed package (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if package.id != exam_id {
            return Err(bad(
                exam_id,
                format!("it is the package of exam `{}`", package.id),
            ));
        }
        if package.sealed.alg != "XChaCha20-Poly1305" {
            return Err(bad(
                exam_id,
                format!(
                    "it is sealed with `{}`, which this app does not know",
                    package.sealed.alg
                ),
            ));
        }
        let kdf = &package.sealed.start_code;
        if kdf.alg != "argon2id" {
            return Err(bad(
                exam_id,
                format!(
                    "its start code uses `{}`, which this app does not know",
                    kdf.alg
                ),
            ));
        }
        if kdf.m_kib > MAX_M_KIB || kdf.t == 0 || kdf.t > MAX_T || kdf.p == 0 || kdf.p > MAX_P {
            return Err(bad(
                exam_id,
                format!(
                    "its start code asks for Argon2id with {} KiB, {} passes, {} lanes (at most \
                     {MAX_M_KIB} KiB, {MAX_T} passes, {MAX_P} lanes are accepted)",
                    kdf.m_kib, kdf.t, kdf.p
                ),
            ));
        }
        Ok(package)
    }

    /// Checks the seal as far as it can be before the exam opens, beyond [`Self::parse`]: its
    /// nonce, salt and ciphertext are base64 of the right sizes (a ciphertext carries at
    /// least its 16-byte tag). What only the key can tell — that it opens — waits for it.
    pub fn check_seal(&self) -> Result<(), BadPackage> {
        let nonce = decode(&self.id, "nonce", &self.sealed.nonce)?;
        if nonce.len() != 24 {
            return Err(bad(
                &self.id,
                format!("its nonce has {} bytes, not 24", nonce.len()),
            ));
        }
        let salt = decode(&self.id, "salt", &self.sealed.start_code.salt)?;
        if salt.len() < 8 {
            return Err(bad(
                &self.id,
                format!(
                    "its start code's salt has {} bytes, fewer than 8",
                    salt.len()
                ),
            ));
        }
        let ciphertext = decode(&self.id, "ciphertext", &self.sealed.ciphertext)?;
        if ciphertext.len() < 16 {
            return Err(bad(
                &self.id,
                format!(
                    "its ciphertext has {} bytes, less than its tag",
                    ciphertext.len()
                ),
            ));
        }
        Ok(())
    }

    /// The exam key a start code gives (slow on purpose: Argon2id).
    pub fn key_from_code(&self, code: &str) -> Result<ExamKey, BadPackage> {
        let kdf = &self.sealed.start_code;
        let salt = decode(&self.id, "salt", &kdf.salt)?;
        let params = Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32)).map_err(|e| {
            bad(
                &self.id,
                format!("its Argon2id parameters cannot be used: {e}"),
            )
        })?;
        let mut key = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(normalise_code(code).as_bytes(), &salt, &mut key)
            .map_err(|e| bad(&self.id, format!("the start code cannot be used: {e}")))?;
        Ok(ExamKey(Secret::new(key)))
    }

    /// Opens the questions with `key` into a checked package (in memory only). A key for
    /// another exam or version, a wrong start code, or a ciphertext that was altered are all
    /// refused the same way: the package does not open.
    pub fn open(&self, key: &ExamKey) -> Result<Package, Refused> {
        let nonce = decode(&self.id, "nonce", &self.sealed.nonce).map_err(Refused::Bad)?;
        if nonce.len() != 24 {
            return Err(Refused::Bad(bad(
                &self.id,
                format!("its nonce has {} bytes, not 24", nonce.len()),
            )));
        }
        let ciphertext =
            decode(&self.id, "ciphertext", &self.sealed.ciphertext).map_err(Refused::Bad)?;
        let cipher = XChaCha20Poly1305::new(key.0.expose().into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &associated_data(&self.id, self.version),
                },
            )
            .map_err(|_| Refused::DoesNotOpen)?;
        let questions: serde_json::Value = serde_json::from_slice(&plain).map_err(|e| {
            Refused::Bad(bad(
                &self.id,
                format!("its questions are not valid JSON once opened: {e}"),
            ))
        })?;
        let whole = serde_json::json!({
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "duration_s": self.duration_s,
            "instructions": self.instructions,
            "questions": questions,
        });
        let package =
            Package::parse(&self.id, whole.to_string().as_bytes()).map_err(Refused::Bad)?;
        if package.questions.len() != self.question_count as usize {
            return Err(Refused::Bad(bad(
                &self.id,
                format!(
                    "it says {} questions but opens to {}",
                    self.question_count,
                    package.questions.len()
                ),
            )));
        }
        Ok(package)
    }
}

fn decode(exam: &str, what: &str, text: &str) -> Result<Vec<u8>, BadPackage> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| bad(exam, format!("its {what} is not base64: {e}")))
}

/// Why a sealed package did not open.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    /// The key or start code is not this package's (or its ciphertext was altered).
    #[error("the package does not open with this key or start code")]
    DoesNotOpen,
    /// It opened to something that is not a valid package, or the package itself is bad.
    #[error(transparent)]
    Bad(BadPackage),
}
