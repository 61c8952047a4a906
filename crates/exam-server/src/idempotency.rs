//! Idempotency keys (IETF draft "The Idempotency-Key HTTP Header Field").
//!
//! The check, the operation and the stored response are one savepoint of the caller's
//! transaction, so a crash can never leave an operation applied without its stored
//! response (or the reverse), and a failed operation is rolled back on its own (a batch's
//! other items are untouched).
//! Only successful responses are stored: a failed operation changed nothing, and a retry
//! with the same key must be able to succeed later (say, once the attempt it refers to
//! has arrived).

use axum::http::{Method, StatusCode};
use rusqlite::{OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use crate::problem::{ApiError, Reply};
use crate::routes::{Ctx, Handler};
use crate::Db;

/// Stored responses are kept at least this long.
pub const RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
pub const MAX_KEY_LEN: usize = 255;

/// Method, path and the SHA-256 of the body. A JSON body is hashed in canonical form (keys
/// sorted, no whitespace), so the same operation sent alone or inside a batch has the same
/// fingerprint.
pub fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let canonical =
        serde_json::from_slice::<serde_json::Value>(body).map(|v| crate::api::canonical_json(&v));
    let bytes = match &canonical {
        Ok(text) => text.as_bytes(),
        Err(_) => body,
    };
    format!("{method} {path} {}", hex::encode(Sha256::digest(bytes)))
}

/// Removes it from the in-flight set however the request ends.
struct InFlight<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    entry: (String, String),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut set = self.set.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.entry);
    }
}

pub fn run(
    ctx: &Ctx<'_>,
    tx: &mut Transaction<'_>,
    method: &Method,
    path: &str,
    key: Option<&str>,
    handler: Handler,
) -> Result<Reply, ApiError> {
    let key = match key {
        Some(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN => k,
        Some(_) => {
            return Err(ApiError::bad_request(
                "idempotency_key_required",
                format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"),
            ))
        }
        None => {
            return Err(ApiError::bad_request(
                "idempotency_key_required",
                format!("{method} {path} needs an Idempotency-Key header"),
            ))
        }
    };
    let principal = ctx.principal.key();
    let entry = (principal.clone(), key.to_string());
    {
        let mut set = ctx
            .state
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !set.insert(entry.clone()) {
            return Err(ApiError::conflict(
                "idempotency_in_flight",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            ));
        }
    }
    let _in_flight = InFlight {
        set: &ctx.state.in_flight,
        entry,
    };

    let print = fingerprint(method, path, ctx.body);
    let sp = tx.savepoint()?;
    let stored: Option<(String, u16, String)> = sp
        .prepare_cached(
            "SELECT fingerprint, status, body FROM idempotency WHERE principal = ?1 AND key = ?2",
        )?
        .query_row((&principal, key), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((stored_print, status, body)) = stored {
        if stored_print != print {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different request",
            ));
        }
        ctx.state.stats.replay();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        return Ok(Reply {
            replayed: true,
            ..Reply::new(status, body)
        });
    }
    // On an error the savepoint is dropped, which rolls back whatever the handler did.
    let reply = handler(ctx, &sp)?;
    if reply.status.is_success() {
        sp.prepare_cached(
            "INSERT INTO idempotency (principal, key, fingerprint, status, body, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute((
            &principal,
            key,
            &print,
            reply.status.as_u16(),
            reply.body.to_string(),
            ctx.now.timestamp_millis(),
        ))?;
        sp.commit()?;
    }
    Ok(reply)
}

/// Forgets stored responses older than the retention period.
pub fn purge_expired(db: &Db) -> rusqlite::Result<usize> {
    let cutoff = crate::now().timestamp_millis() - RETENTION_MS;
    db.lock()
        .execute("DELETE FROM idempotency WHERE created_ms < ?1", [cutoff])
}
