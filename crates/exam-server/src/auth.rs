//! Sign-in and tokens (RFC 6749 password and refresh grants, RFC 7009 revocation, RFC 9700
//! refresh rotation with reuse detection), brute-force lockout (a lockout of one username
//! from one address is also the `brute_force` alert), and bearer authentication.

use std::net::IpAddr;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit;
use crate::problem::{ApiError, OAuthError};
use crate::routes::Principal;
use crate::{AppState, Db};

pub const CLIENT_ID: &str = "exam-desktop";
pub const AUDIENCE: &str = "exam-bank";
pub const SCOPE: &str = "exam";

/// The HMAC key that signs access tokens, kept in the database so tokens survive restarts.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    /// Keys from a secret the operator keeps outside the database.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn load_or_create(db: &Db) -> rusqlite::Result<Self> {
        let conn = db.lock();
        let existing: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE key = 'jwt_key'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let secret = match existing {
            Some(secret) => secret,
            None => {
                let mut secret = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut secret);
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('jwt_key', ?1)",
                    [&secret],
                )?;
                secret
            }
        };
        Ok(Self {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub aud: String,
    pub scope: String,
}

pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Spends the same time on an unknown username as on a known one.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not-a-password").unwrap_or_default())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("rt_{}", hex::encode(bytes))
}

/// The form of `/oauth/token` and `/oauth/revoke`.
pub type Form = std::collections::HashMap<String, String>;

pub fn parse_form(body: &[u8]) -> Result<Form, OAuthError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| OAuthError::new("invalid_request", format!("the body is not a form: {e}")))
}

fn field<'a>(form: &'a Form, name: &str) -> Result<&'a str, OAuthError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_request", format!("`{name}` is missing")))
}

/// `POST /oauth/token`.
pub fn token(state: &AppState, form: &Form, ip: IpAddr) -> Result<Value, OAuthError> {
    if let Some(client) = form.get("client_id") {
        if client != CLIENT_ID {
            return Err(OAuthError {
                status: StatusCode::UNAUTHORIZED,
                ..OAuthError::new("invalid_client", format!("unknown client `{client}`"))
            });
        }
    }
    match form.get("grant_type").map(String::as_str) {
        Some("password") => password_grant(
            state,
            field(form, "username")?,
            field(form, "password")?,
            ip,
        ),
        Some("refresh_token") => refresh_grant(state, field(form, "refresh_token")?, ip),
        Some(other) => Err(OAuthError::new(
            "unsupported_grant_type",
            format!("grant_type `{other}` is not supported"),
        )),
        None => Err(OAuthError::new(
            "invalid_request",
            "`grant_type` is missing",
        )),
    }
}

fn password_grant(
    state: &AppState,
    username: &str,
    password: &str,
    ip: IpAddr,
) -> Result<Value, OAuthError> {
    let cfg = &state.config;
    let now = crate::now();
    let now_ms = now.timestamp_millis();
    let window_start = now_ms - seconds_ms(cfg.lockout_window_s);
    let ip_text = ip.to_string();

    // The attempt is counted before the password is checked, under the same lock as the
    // lockout check: guesses sent in parallel each count, and none gets past the limit.
    let attempt = {
        let conn = state.db.lock();
        if let Some(locked) = longest(&lockouts(&conn, username, &ip_text, window_start, cfg)?) {
            state.stats.rate_limited();
            return Err(ApiError::too_many(
                format!(
                    "too many failed sign-ins {}; try again in {} seconds",
                    locked.scope, locked.retry_after_s
                ),
                locked.retry_after_s,
            )
            .into());
        }
        conn.execute(
            "INSERT INTO login_failures (at_ms, username, ip) VALUES (?1, ?2, ?3)",
            (now_ms, username, &ip_text),
        )?;
        conn.last_insert_rowid()
    };

    let user: Option<(i64, String)> = state
        .db
        .lock()
        .query_row(
            "SELECT id, password_hash FROM users WHERE username = ?1",
            [username],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    // Hashing happens outside the database lock (it is the slow part) and a few at a time.
    let Some(permit) = state.hashing.enter(HASH_WAIT) else {
        // Not checked, so not a failure: the attempt is uncounted.
        state
            .db
            .lock()
            .execute("DELETE FROM login_failures WHERE id = ?1", [attempt])?;
        state.stats.busy();
        return Err(OAuthError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: Some(BUSY_RETRY_S),
            ..OAuthError::new(
                "temporarily_unavailable",
                "the server is checking too many sign-ins at once; try again shortly",
            )
        });
    };
    let verified = match &user {
        Some((_, hash)) => verify_password(password, hash),
        None => {
            verify_password(password, dummy_hash());
            false
        }
    };
    drop(permit);
    let known_student = user.is_some();

    let conn = state.db.lock();
    let Some((user_id, _)) = user.filter(|_| verified) else {
        state.stats.login_failure();
        audit::record(
            &conn,
            now,
            "login_failure",
            Some(username),
            Some(ip),
            None,
            json!({}),
        )?;
        if crate::security::on_sign_in_failure(&conn, now, &ip_text)? {
            state
                .blocks_changed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            crate::admin::reload_blocks_if_changed(state, &conn);
        }
        let locks = lockouts(&conn, username, &ip_text, window_start, cfg)?;
        if let Some(locked) = longest(&locks) {
            state.stats.lockout();
            audit::record(
                &conn,
                now,
                "brute_force_lockout",
                Some(username),
                Some(ip),
                None,
                json!({
                    "scope": locked.scope,
                    "failures": locked.limit,
                    "window_s": cfg.lockout_window_s,
                }),
            )?;
        }
        // This username guessed at from this address: the `brute_force` alert.
        if let Some(pair) = locks.iter().find(|l| l.rule == LockRule::Pair) {
            let seconds = i64::try_from(pair.retry_after_s).unwrap_or(i64::MAX);
            crate::security::on_pair_lockout(
                &conn,
                now,
                &crate::security::PairLockout {
                    username,
                    ip: &ip_text,
                    failures: pair.limit,
                    window_s: cfg.lockout_window_s,
                    until: now
                        .checked_add_signed(chrono::Duration::seconds(seconds))
                        .unwrap_or(now),
                    known_student,
                },
            )?;
        }
        state.alerts_changed.notify_waiters();
        return Err(OAuthError::invalid_grant("wrong username or password"));
    };
    // The student proved the password from here: their failures from here are forgiven
    // (those from other addresses, and other usernames' from this one, still count).
    conn.execute(
        "DELETE FROM login_failures WHERE username = ?1 AND ip = ?2",
        (username, &ip_text),
    )?;
    let session_id = uuid::Uuid::new_v4().to_string();
    conn.execute(
        "INSERT INTO sessions (id, user_id, created_at) VALUES (?1, ?2, ?3)",
        (&session_id, user_id, crate::rfc3339(now)),
    )?;
    let refresh = new_refresh_token();
    conn.execute(
        "INSERT INTO refresh_tokens (hash, session_id, issued_ms) VALUES (?1, ?2, ?3)",
        (token_hash(&refresh), &session_id, now_ms),
    )?;
    audit::record(
        &conn,
        now,
        "login",
        Some(username),
        Some(ip),
        Some(&session_id),
        json!({}),
    )?;
    state.stats.login();
    issue(state, username, &session_id, now_ms, refresh)
}

/// How long a sign-in waits for a free password check before the server says it is busy.
const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// `Retry-After` of a busy answer.
const BUSY_RETRY_S: u64 = 2;

/// Which of the three lockouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockRule {
    /// One username from one address.
    Pair,
    /// One username from any addresses.
    Username,
    /// One address, any usernames.
    Address,
}

/// A lock on sign-in: which rule, its limit, and the seconds until it lifts.
struct Locked {
    rule: LockRule,
    scope: &'static str,
    limit: u32,
    retry_after_s: u64,
}

/// The lock that lifts last (the one a refused sign-in must wait for).
fn longest(locks: &[Locked]) -> Option<&Locked> {
    locks
        .iter()
        .fold(None, |longest: Option<&Locked>, l| match longest {
            Some(m) if m.retry_after_s >= l.retry_after_s => Some(m),
            _ => Some(l),
        })
}

/// The locks on sign-in for this (username, IP): 5 failures of the pair, 20 of the username
/// from any IPs, or 100 from the IP (defaults), within the window.
fn lockouts(
    conn: &Connection,
    username: &str,
    ip: &str,
    window_start: i64,
    cfg: &crate::Config,
) -> rusqlite::Result<Vec<Locked>> {
    let rules: [(LockRule, &'static str, u32, &str, Vec<&str>); 3] = [
        (
            LockRule::Pair,
            "for this username from this address",
            cfg.lockout_failures,
            "username = ?1 AND ip = ?2",
            vec![username, ip],
        ),
        (
            LockRule::Username,
            "for this username",
            cfg.lockout_user_failures,
            "username = ?1",
            vec![username],
        ),
        (
            LockRule::Address,
            "from this address",
            cfg.lockout_ip_failures,
            "ip = ?1",
            vec![ip],
        ),
    ];
    let mut locks = Vec::new();
    for (rule, scope, limit, filter, values) in rules {
        let limit = limit.max(1);
        // The failure that must age out before one more attempt is allowed.
        let n = values.len();
        let sql = format!(
            "SELECT at_ms FROM login_failures WHERE {filter} AND at_ms > ?{}
             ORDER BY at_ms DESC LIMIT 1 OFFSET ?{}",
            n + 1,
            n + 2
        );
        let mut params: Vec<&dyn rusqlite::ToSql> =
            values.iter().map(|v| v as &dyn rusqlite::ToSql).collect();
        let offset = i64::from(limit) - 1;
        params.push(&window_start);
        params.push(&offset);
        let boundary: Option<i64> = conn
            .query_row(&sql, params.as_slice(), |r| r.get(0))
            .optional()?;
        if let Some(at) = boundary {
            let until = at - window_start; // ms until `at` leaves the window
            let seconds = u64::try_from((until + 999) / 1000).unwrap_or(1).max(1);
            locks.push(Locked {
                rule,
                scope,
                limit,
                retry_after_s: seconds,
            });
        }
    }
    Ok(locks)
}

/// Bounds how many password checks run at once, and how many sign-ins may wait for one.
pub struct HashGate {
    state: std::sync::Mutex<(usize, usize)>, // (running, waiting)
    freed: std::sync::Condvar,
    max_running: usize,
    max_waiting: usize,
}

/// A running password check; dropping it frees the slot.
pub struct HashPermit<'a>(&'a HashGate);

impl HashGate {
    pub fn new(max_running: usize, max_waiting: usize) -> Self {
        Self {
            state: std::sync::Mutex::new((0, 0)),
            freed: std::sync::Condvar::new(),
            max_running: max_running.max(1),
            max_waiting,
        }
    }

    /// A slot, waiting at most `wait` in a queue of bounded length; `None` when busy.
    pub fn enter(&self, wait: std::time::Duration) -> Option<HashPermit<'_>> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.0 < self.max_running {
            state.0 += 1;
            return Some(HashPermit(self));
        }
        if state.1 >= self.max_waiting {
            return None;
        }
        state.1 += 1;
        let deadline = std::time::Instant::now() + wait;
        while state.0 >= self.max_running {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                state.1 -= 1;
                return None;
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        state.1 -= 1;
        state.0 += 1;
        Some(HashPermit(self))
    }
}

impl Drop for HashPermit<'_> {
    fn drop(&mut self) {
        let mut state = self
            .0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.0 -= 1;
        self.0.freed.notify_one();
    }
}

/// A refresh token with its session, as the rotation needs it.
struct RefreshRow {
    session_id: String,
    session_created_ms: i64,
    issued_ms: i64,
    rotated_ms: Option<i64>,
    successor: Option<String>,
    replaced: bool,
    revoked: bool,
    username: String,
}

fn refresh_grant(state: &AppState, presented: &str, ip: IpAddr) -> Result<Value, OAuthError> {
    let now = crate::now();
    let now_ms = now.timestamp_millis();
    let grace_ms = i64::try_from(state.config.refresh_grace_s * 1000).unwrap_or(i64::MAX);
    let hash = token_hash(presented);

    let mut conn = state.db.lock();
    let tx = conn.transaction()?;
    let row = tx
        .query_row(
            "SELECT t.session_id, t.rotated_ms, t.successor_hash, t.replaced, s.revoked_at, u.username,
                    s.created_at, t.issued_ms
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
             WHERE t.hash = ?1",
            [&hash],
            |r| {
                Ok(RefreshRow {
                    session_id: r.get(0)?,
                    rotated_ms: r.get(1)?,
                    successor: r.get(2)?,
                    replaced: r.get::<_, i64>(3)? != 0,
                    revoked: r.get::<_, Option<String>>(4)?.is_some(),
                    username: r.get(5)?,
                    session_created_ms: chrono::DateTime::parse_from_rfc3339(&r.get::<_, String>(6)?)
                        .map_or(0, |t| t.timestamp_millis()),
                    issued_ms: r.get(7)?,
                })
            },
        )
        .optional()?;
    let Some(RefreshRow {
        session_id,
        session_created_ms,
        issued_ms,
        rotated_ms,
        successor,
        replaced,
        revoked,
        username,
    }) = row
    else {
        return Err(OAuthError::invalid_grant("unknown refresh token"));
    };
    if revoked {
        return Err(OAuthError::invalid_grant("the session has ended"));
    }
    // The school asked for the password again after this session began: it ends, and the
    // student signs in with the password (their work waits on their computer meanwhile).
    let step_up: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM step_up p JOIN sessions s ON s.user_id = p.user_id
                          WHERE s.id = ?1 AND p.required_at > s.created_at)",
        [&session_id],
        |r| r.get(0),
    )?;
    if step_up {
        revoke_session(&tx, &session_id, STEP_UP_REQUIRED)?;
        audit::record(
            &tx,
            now,
            "step_up_session_ended",
            Some(&username),
            Some(ip),
            Some(&session_id),
            json!({}),
        )?;
        tx.commit()?;
        return Err(OAuthError::invalid_grant(STEP_UP_WORDS));
    }
    let cfg = &state.config;
    let expired = if now_ms - session_created_ms > seconds_ms(cfg.session_absolute_s) {
        Some(format!(
            "the session expired: sessions last {} after sign-in",
            hours(cfg.session_absolute_s)
        ))
    } else if now_ms - issued_ms > seconds_ms(cfg.session_idle_s) {
        Some(format!(
            "the session expired: it was not used for {}",
            hours(cfg.session_idle_s)
        ))
    } else {
        None
    };
    if let Some(why) = expired {
        revoke_session(&tx, &session_id, "session_expired")?;
        audit::record(
            &tx,
            now,
            "session_expired",
            Some(&username),
            Some(ip),
            Some(&session_id),
            json!({"why": why}),
        )?;
        tx.commit()?;
        return Err(OAuthError::invalid_grant(why));
    }
    if replaced {
        return reuse_detected(
            state,
            tx,
            &session_id,
            &username,
            ip,
            "a replaced refresh token was presented",
        );
    }
    if let Some(rotated_ms) = rotated_ms {
        // Already exchanged. A retry within the grace period, while its successor has never
        // been used, is a lost response, not an attack: replace the unused successor.
        let successor_unused = match &successor {
            Some(s) => tx
                .query_row(
                    "SELECT rotated_ms IS NULL FROM refresh_tokens WHERE hash = ?1",
                    [s],
                    |r| r.get::<_, bool>(0),
                )
                .optional()?
                .unwrap_or(false),
            None => false,
        };
        if now_ms - rotated_ms > grace_ms || !successor_unused {
            return reuse_detected(
                state,
                tx,
                &session_id,
                &username,
                ip,
                "a rotated refresh token was presented again",
            );
        }
        if let Some(old) = &successor {
            tx.execute(
                "UPDATE refresh_tokens SET replaced = 1 WHERE hash = ?1",
                [old],
            )?;
        }
        audit::record(
            &tx,
            now,
            "refresh_retried",
            Some(&username),
            Some(ip),
            Some(&session_id),
            json!({}),
        )?;
    }
    let next = new_refresh_token();
    let next_hash = token_hash(&next);
    tx.execute(
        "INSERT INTO refresh_tokens (hash, session_id, parent_hash, issued_ms) VALUES (?1, ?2, ?3, ?4)",
        (&next_hash, &session_id, &hash, now_ms),
    )?;
    tx.execute(
        "UPDATE refresh_tokens SET rotated_ms = COALESCE(rotated_ms, ?2), successor_hash = ?3 WHERE hash = ?1",
        (&hash, now_ms, &next_hash),
    )?;
    audit::record(
        &tx,
        now,
        "token_refresh",
        Some(&username),
        Some(ip),
        Some(&session_id),
        json!({}),
    )?;
    tx.commit()?;
    state.stats.refresh();
    issue(state, &username, &session_id, session_created_ms, next)
}

fn reuse_detected(
    state: &AppState,
    tx: rusqlite::Transaction<'_>,
    session_id: &str,
    username: &str,
    ip: IpAddr,
    why: &str,
) -> Result<Value, OAuthError> {
    let now = crate::now();
    revoke_session(&tx, session_id, "refresh_token_reuse")?;
    audit::record(
        &tx,
        now,
        "refresh_token_reuse",
        Some(username),
        Some(ip),
        Some(session_id),
        json!({"why": why}),
    )?;
    let address = ip.to_string();
    crate::security::raise(
        &tx,
        now,
        crate::security::NewAlert {
            rule: "refresh_reuse",
            severity: "critical",
            username: Some(username),
            ip: Some(&address),
            device: None,
            attempt_id: None,
            subject: Some(session_id),
            summary: format!(
                "{username}: a refresh token was used twice (a copy of it exists); the session was ended"
            ),
            evidence: json!({"session": session_id, "why": why}),
            response: Some(json!({"action": "session_ended", "session": session_id,
                                  "undo": "the student signs in again"})),
        },
    )?;
    tx.commit()?;
    state.stats.reuse_detected();
    Err(OAuthError::invalid_grant(
        "refresh token reuse detected: the session has been ended",
    ))
}

/// Ends a session (a token family): its refresh tokens stop working, and so do its access
/// tokens, which are checked against the session on every request.
pub fn revoke_session(conn: &Connection, session_id: &str, reason: &str) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        (session_id, crate::rfc3339(crate::now()), reason),
    )?;
    Ok(changed > 0)
}

fn seconds_ms(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// "12 h", "90 min", "30 s": for the words of an expired session.
fn hours(seconds: u64) -> String {
    if seconds.is_multiple_of(3600) {
        format!("{} h", seconds / 3600)
    } else if seconds.is_multiple_of(60) {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

/// Issues an access token for the session (never outliving the session's absolute
/// lifetime) with `refresh` as the refresh token.
fn issue(
    state: &AppState,
    username: &str,
    session_id: &str,
    session_created_ms: i64,
    refresh: String,
) -> Result<Value, OAuthError> {
    let now = crate::now().timestamp();
    let session_end =
        (session_created_ms.saturating_add(seconds_ms(state.config.session_absolute_s))) / 1000;
    let ttl = i64::try_from(state.config.access_ttl_s)
        .unwrap_or(900)
        .min(session_end - now)
        .max(1);
    let claims = Claims {
        sub: username.to_string(),
        sid: session_id.to_string(),
        iat: now,
        exp: now + ttl,
        jti: uuid::Uuid::new_v4().to_string(),
        aud: AUDIENCE.into(),
        scope: SCOPE.into(),
    };
    let access = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &state.jwt.encoding)
        .map_err(|e| OAuthError::from(ApiError::internal(format!("cannot sign a token: {e}"))))?;
    Ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": refresh,
        "scope": SCOPE,
    }))
}

/// `POST /oauth/revoke`: always 200; a known token ends its session (family).
pub fn revoke(state: &AppState, form: &Form, ip: IpAddr) -> Result<(), OAuthError> {
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return Err(OAuthError::new("invalid_request", "`token` is missing"));
    };
    let conn = state.db.lock();
    let session: Option<String> = conn
        .query_row(
            "SELECT session_id FROM refresh_tokens WHERE hash = ?1",
            [token_hash(token)],
            |r| r.get(0),
        )
        .optional()?
        .or_else(|| decode(state, token).ok().map(|c| c.sid));
    if let Some(session_id) = session {
        if revoke_session(&conn, &session_id, "revoked_by_client")? {
            let username: Option<String> = conn
                .query_row(
                    "SELECT u.username FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
                    [&session_id],
                    |r| r.get(0),
                )
                .optional()?;
            audit::record(
                &conn,
                crate::now(),
                "revocation",
                username.as_deref(),
                Some(ip),
                Some(&session_id),
                json!({}),
            )?;
        }
    }
    Ok(())
}

fn decode(state: &AppState, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    jsonwebtoken::decode::<Claims>(token, &state.jwt.decoding, &validation).map(|d| d.claims)
}

/// The problem code of a request whose session predates the school's demand for the
/// password again (RFC 9470 step-up).
pub const STEP_UP_REQUIRED: &str = "step_up_required";
/// Its words (the app recognises "password again" in a refresh's `error_description`).
pub const STEP_UP_WORDS: &str = "the school asks for the password again: sign in with it";

/// The caller of a request with `Authorization: <header>`.
pub fn authenticate(state: &AppState, header: Option<&str>) -> Result<Principal, ApiError> {
    let token = header
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("an `Authorization: Bearer` token is required"))?;
    if let Some(admin) = &state.config.admin_token {
        if constant_time_eq(token.as_bytes(), admin.as_bytes()) {
            return Ok(Principal::Admin);
        }
    }
    let claims = decode(state, token).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
            ApiError::unauthorized("the access token has expired")
        }
        _ => ApiError::unauthorized("the access token is not valid"),
    })?;
    let row: Option<(i64, Option<String>, bool)> = state
        .db
        .lock()
        .query_row(
            "SELECT u.id, s.revoked_at,
                    EXISTS (SELECT 1 FROM step_up p WHERE p.user_id = u.id
                              AND p.required_at > s.created_at)
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = ?1 AND u.username = ?2",
            (&claims.sid, &claims.sub),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    match row {
        Some((_, None, true)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            STEP_UP_REQUIRED,
            STEP_UP_WORDS,
        )),
        Some((id, None, false)) => Ok(Principal::User {
            id,
            username: claims.sub,
            session_id: claims.sid,
        }),
        Some((_, Some(_), _)) => Err(ApiError::unauthorized("the session has been ended")),
        None => Err(ApiError::unauthorized("the access token is not valid")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
