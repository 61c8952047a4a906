//! Exam packages as students download them, and the keys and start codes that open sealed
//! ones (shared/API.md, "Sealed exam packages"; the cryptography is in [`crate::seal`]).
//!
//! Invariant: nothing of an exam's questions leaves the server in clear before the exam
//! opens — not in a package, the list, an error or an `ETag`. An unsealed exam's package is
//! refused (403 `not_yet_available`) until the exam opens; a sealed exam's package is only
//! ever handed out sealed, and its `ETag` is a hash of the sealed form. The exam key goes to
//! a student only while the exam is open, the start code only to the admin token (or the
//! operator's CLI), and every release of either is audited.
//!
//! A package is sealed once per (exam, version), when first needed: every student gets the
//! same bytes and `ETag`, and the Argon2id derivation runs once per version, not per request.

use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use exam_contract::rules;

use crate::api::parse_time;
use crate::audit;
use crate::problem::{ApiError, Reply};
use crate::routes::{Ctx, Principal};
use crate::seal::{self, ExamKey, KdfParams};

impl From<seal::SealError> for ApiError {
    fn from(error: seal::SealError) -> Self {
        tracing::error!(%error, "cannot seal an exam package");
        Self::internal("the server could not seal the exam package")
    }
}

/// An exam as the package routes need it.
pub struct ExamRow {
    pub id: String,
    pub title: String,
    pub version: i64,
    pub opens_at: String,
    pub closes_at: String,
    pub duration_s: i64,
    pub instructions: String,
    pub questions: String,
    pub sealed: bool,
    pub available_from: Option<String>,
    pub start_code: Option<String>,
}

pub fn load(conn: &Connection, exam_id: &str) -> Result<ExamRow, ApiError> {
    conn.query_row(
        "SELECT id, title, version, opens_at, closes_at, duration_s, instructions, questions,
                sealed, available_from, start_code
         FROM exams WHERE id = ?1",
        [exam_id],
        |r| {
            Ok(ExamRow {
                id: r.get(0)?,
                title: r.get(1)?,
                version: r.get(2)?,
                opens_at: r.get(3)?,
                closes_at: r.get(4)?,
                duration_s: r.get(5)?,
                instructions: r.get(6)?,
                questions: r.get(7)?,
                sealed: r.get(8)?,
                available_from: r.get(9)?,
                start_code: r.get(10)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found(format!("there is no exam `{exam_id}`")))
}

/// When an exam's package may be fetched: a sealed exam's `available_from` (its opening when
/// there is none); for an unsealed exam never before it opens, since its package is in clear.
pub fn available_from(sealed: bool, available_from: Option<&str>, opens_at: &str) -> String {
    let Some(from) = available_from else {
        return opens_at.to_string();
    };
    if sealed {
        return from.to_string();
    }
    match (
        parse_time(from, "available_from"),
        parse_time(opens_at, "opens_at"),
    ) {
        (Ok(from_t), Ok(opens_t)) if from_t > opens_t => from.to_string(),
        _ => opens_at.to_string(),
    }
}

impl ExamRow {
    pub fn available_from(&self) -> String {
        available_from(self.sealed, self.available_from.as_deref(), &self.opens_at)
    }

    fn question_count(&self) -> usize {
        serde_json::from_str::<Vec<Value>>(&self.questions).map_or(0, |q| q.len())
    }
}

/// A sealed package as stored.
pub struct Sealed {
    pub key_id: String,
    pub key: ExamKey,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub salt: Vec<u8>,
    pub params: KdfParams,
}

/// The start code of a sealed exam, made (and stored) if it has none yet.
pub fn ensure_start_code(conn: &Connection, exam_id: &str) -> rusqlite::Result<String> {
    let code: Option<String> = conn.query_row(
        "SELECT start_code FROM exams WHERE id = ?1",
        [exam_id],
        |r| r.get(0),
    )?;
    if let Some(code) = code {
        return Ok(code);
    }
    let code = seal::new_start_code();
    conn.execute(
        "UPDATE exams SET start_code = ?2 WHERE id = ?1",
        (exam_id, &code),
    )?;
    Ok(code)
}

/// The sealed package of `exam` at its current version, sealing it first if nobody has yet.
pub fn ensure_sealed(
    conn: &Connection,
    exam: &ExamRow,
    now: DateTime<Utc>,
) -> Result<Sealed, ApiError> {
    let stored = conn
        .prepare_cached(
            "SELECT key_id, exam_key, nonce, ciphertext, salt, m_kib, t, p
             FROM sealed_packages WHERE exam_id = ?1 AND version = ?2",
        )?
        .query_row((&exam.id, exam.version), |r| {
            let key: Vec<u8> = r.get(1)?;
            Ok((
                r.get::<_, String>(0)?,
                key,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, Vec<u8>>(4)?,
                KdfParams {
                    m_kib: r.get(5)?,
                    t: r.get(6)?,
                    p: r.get(7)?,
                },
            ))
        })
        .optional()?;
    if let Some((key_id, key, nonce, ciphertext, salt, params)) = stored {
        let key = <[u8; seal::KEY_LEN]>::try_from(key.as_slice())
            .map_err(|_| ApiError::internal("a stored exam key has the wrong length"))?;
        return Ok(Sealed {
            key_id,
            key: ExamKey(key),
            nonce,
            ciphertext,
            salt,
            params,
        });
    }
    let code = ensure_start_code(conn, &exam.id)?;
    let params = KdfParams::DEFAULT;
    let salt = seal::random::<{ seal::SALT_LEN }>();
    let key = seal::derive_key(&code, &salt, params)?;
    let nonce = seal::random::<{ seal::NONCE_LEN }>();
    // The questions as the clear package carries them: a JSON array.
    let questions: Value = serde_json::from_str(&exam.questions).unwrap_or(Value::Array(vec![]));
    let ciphertext = seal::seal(
        &key,
        &nonce,
        &exam.id,
        exam.version,
        questions.to_string().as_bytes(),
    )?;
    let key_id = uuid::Uuid::new_v4().to_string();
    conn.execute(
        "INSERT INTO sealed_packages
         (exam_id, version, key_id, exam_key, nonce, ciphertext, salt, m_kib, t, p, sealed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        rusqlite::params![
            &exam.id,
            exam.version,
            &key_id,
            key.0.as_slice(),
            nonce.as_slice(),
            &ciphertext,
            salt.as_slice(),
            params.m_kib,
            params.t,
            params.p,
            crate::rfc3339(now),
        ],
    )?;
    Ok(Sealed {
        key_id,
        key,
        nonce: nonce.to_vec(),
        ciphertext,
        salt: salt.to_vec(),
        params,
    })
}

/// `GET /v1/exams/{exam_id}/package` with `ETag` and `If-None-Match`: 403
/// `not_yet_available` before the package may be fetched; a sealed exam's package always in
/// its sealed form.
pub fn exam_package(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let exam = load(tx, ctx.param("exam_id"))?;
    let from = exam.available_from();
    if ctx.now < parse_time(&from, "available_from")? {
        return Err(ApiError::forbidden(
            "not_yet_available",
            format!("the package of this exam may be fetched from {from}"),
        )
        .with_extra(json!({"available_from": from, "opens_at": exam.opens_at})));
    }
    let package = if exam.sealed {
        let sealed = ensure_sealed(tx, &exam, ctx.now)?;
        json!({
            "id": exam.id,
            "version": exam.version,
            "title": exam.title,
            "duration_s": exam.duration_s,
            "instructions": exam.instructions,
            "question_count": exam.question_count(),
            "sealed": {
                "alg": seal::ALG,
                "key_id": sealed.key_id,
                "nonce": BASE64.encode(&sealed.nonce),
                "ciphertext": BASE64.encode(&sealed.ciphertext),
                "start_code": {
                    "alg": seal::KDF_ALG,
                    "salt": BASE64.encode(&sealed.salt),
                    "m_kib": sealed.params.m_kib,
                    "t": sealed.params.t,
                    "p": sealed.params.p,
                },
            },
        })
    } else {
        let questions: Value =
            serde_json::from_str(&exam.questions).unwrap_or(Value::Array(vec![]));
        json!({
            "id": exam.id,
            "version": exam.version,
            "title": exam.title,
            "duration_s": exam.duration_s,
            "instructions": exam.instructions,
            "questions": questions,
        })
    };
    // A hash of the body as sent: for a sealed exam that is the ciphertext, never the
    // plaintext questions.
    let etag = format!(
        "\"{}\"",
        &hex::encode(Sha256::digest(package.to_string().as_bytes()))[..32]
    );
    let matches = ctx.if_none_match.is_some_and(|header| {
        header
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
    });
    let mut reply = if matches {
        Reply::new(StatusCode::NOT_MODIFIED, Value::Null)
    } else {
        Reply::ok(package)
    };
    reply.etag = Some(etag);
    Ok(reply)
}

fn not_sealed(exam: &ExamRow) -> ApiError {
    ApiError::conflict(
        "exam_not_sealed",
        format!(
            "exam `{}` is not sealed: its package needs no key or start code",
            exam.id
        ),
    )
}

/// `POST /v1/exams/{exam_id}/key`: the exam key, only while the exam is open (the window in
/// which a student may start an attempt, `exam_contract::rules::may_start`); every release is
/// audited as `exam_key_released`. 409 `exam_not_sealed` for an unsealed exam.
pub fn exam_key(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let Principal::User {
        username,
        session_id,
        ..
    } = ctx.principal
    else {
        return Err(ApiError::forbidden(
            "forbidden",
            "this operation is for students",
        ));
    };
    let exam = load(tx, ctx.param("exam_id"))?;
    if !exam.sealed {
        return Err(not_sealed(&exam));
    }
    let opens = parse_time(&exam.opens_at, "opens_at")?;
    let closes = parse_time(&exam.closes_at, "closes_at")?;
    match rules::may_start(
        ctx.now.timestamp_millis(),
        opens.timestamp_millis(),
        closes.timestamp_millis(),
        false,
    ) {
        Ok(()) => {}
        Err(rules::StartRefusal::Closed { .. }) => {
            return Err(ApiError::forbidden(
                "exam_closed",
                format!("the exam closed at {}", exam.closes_at),
            )
            .with_extra(json!({"closes_at": exam.closes_at})))
        }
        Err(_) => {
            return Err(ApiError::forbidden(
                "exam_not_open",
                format!("the exam opens at {}", exam.opens_at),
            )
            .with_extra(json!({"opens_at": exam.opens_at})))
        }
    }
    let sealed = ensure_sealed(tx, &exam, ctx.now)?;
    audit::record(
        tx,
        ctx.now,
        "exam_key_released",
        Some(username),
        Some(ctx.ip),
        Some(session_id),
        json!({"exam_id": exam.id, "version": exam.version, "key_id": sealed.key_id}),
    )?;
    Ok(Reply::ok(
        json!({"key_id": sealed.key_id, "key": BASE64.encode(sealed.key.0)}),
    ))
}

/// The admin's view of a start code.
fn start_code_body(exam: &ExamRow, code: &str) -> Value {
    json!({
        "exam_id": exam.id,
        "version": exam.version,
        "start_code": seal::grouped(code),
        "opens_at": exam.opens_at,
        "available_from": exam.available_from(),
    })
}

/// The start code of a sealed exam for a proctor, audited as `start_code_viewed` (`via`:
/// `api` or `cli`). Shared by the admin API and the `start-code` command.
pub fn view_start_code(
    conn: &Connection,
    exam_id: &str,
    now: DateTime<Utc>,
    ip: Option<std::net::IpAddr>,
    via: &str,
) -> Result<Value, ApiError> {
    let exam = load(conn, exam_id)?;
    if !exam.sealed {
        return Err(not_sealed(&exam));
    }
    let code = ensure_start_code(conn, &exam.id)?;
    audit::record(
        conn,
        now,
        "start_code_viewed",
        None,
        ip,
        None,
        json!({"exam_id": exam.id, "version": exam.version, "via": via}),
    )?;
    Ok(start_code_body(&exam, &code))
}

/// `GET /v1/admin/exams/{exam_id}/start-code`.
pub fn admin_start_code(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    view_start_code(tx, ctx.param("exam_id"), ctx.now, Some(ctx.ip), "api").map(Reply::ok)
}

/// `POST /v1/admin/exams/{exam_id}/start-code/rotate`: a new start code, only before the exam
/// opens (409 `exam_already_open` after); the exam's version goes up and the package is
/// sealed again under the new code (a new `ETag`; the old code opens nothing new).
pub fn admin_rotate_start_code(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let exam = load(tx, ctx.param("exam_id"))?;
    if !exam.sealed {
        return Err(not_sealed(&exam));
    }
    if ctx.now >= parse_time(&exam.opens_at, "opens_at")? {
        return Err(ApiError::conflict(
            "exam_already_open",
            format!(
                "the exam opened at {}: its start code can no longer change",
                exam.opens_at
            ),
        ));
    }
    let code = seal::new_start_code();
    tx.execute(
        "UPDATE exams SET start_code = ?2, version = version + 1 WHERE id = ?1",
        (&exam.id, &code),
    )?;
    let exam = load(tx, &exam.id)?;
    let sealed = ensure_sealed(tx, &exam, ctx.now)?;
    audit::record(
        tx,
        ctx.now,
        "start_code_rotated",
        None,
        Some(ctx.ip),
        None,
        json!({"exam_id": exam.id, "version": exam.version, "key_id": sealed.key_id}),
    )?;
    Ok(Reply::ok(start_code_body(&exam, &code)))
}
