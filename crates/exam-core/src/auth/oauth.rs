//! Plain RFC 6749 at the token endpoint (and RFC 7009 at the revocation endpoint), so the
//! client works with any OAuth 2 server, and a classification of every failure into what
//! the app must do about it.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use url::Url;

use crate::http::{describe, judge, HttpClient};
use crate::reason::{Reason, Refusal};
use crate::secret::Secret;

pub const CLIENT_ID: &str = "exam-desktop";

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct Grant {
    pub access_token: Secret<String>,
    pub expires_in: Duration,
    /// Absent when the server keeps the refresh token unchanged (allowed by §6).
    pub refresh_token: Option<Secret<String>>,
    /// The server's `Date`, to measure how wrong the local clock is.
    pub server_date: Option<SystemTime>,
}

/// Why the token endpoint did not give tokens.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    /// `invalid_grant`: wrong password at sign-in; a dead refresh token at refresh.
    #[error("the server refused the grant: {0}")]
    InvalidGrant(String),
    /// 429: too many attempts; try again after this many seconds.
    #[error("too many attempts; try again in {0} seconds")]
    TooManyAttempts(u64),
    /// Any other refusal that retrying will not fix (invalid_client, 403…).
    #[error("the server refused the request: {0}")]
    Refused(Refusal),
    /// No answer, a timeout, a 5xx, or an answer that is not a token response: the network
    /// or the server is at fault, never the session, so tokens are kept.
    #[error("the server could not be reached: {0}")]
    Transient(Reason),
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    error_description: Option<String>,
}

fn endpoint(server: &Url, path: &str) -> Result<Url, TokenError> {
    server.join(path).map_err(|e| {
        tracing::warn!(%server, error = %e, "the server address cannot be used");
        TokenError::Transient(Reason::BadAddress)
    })
}

pub async fn password_grant(
    http: &HttpClient,
    server: &Url,
    username: &str,
    password: &Secret<String>,
) -> Result<Grant, TokenError> {
    let form = [
        ("grant_type", "password"),
        ("username", username),
        ("password", password.expose().as_str()),
        ("client_id", CLIENT_ID),
    ];
    token_request(http, server, &form).await
}

pub async fn refresh_grant(
    http: &HttpClient,
    server: &Url,
    refresh_token: &Secret<String>,
) -> Result<Grant, TokenError> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose().as_str()),
        ("client_id", CLIENT_ID),
    ];
    token_request(http, server, &form).await
}

/// RFC 7009. The outcome does not matter to the caller: sign-out goes on regardless.
pub async fn revoke(
    http: &HttpClient,
    server: &Url,
    token: &Secret<String>,
) -> Result<(), TokenError> {
    let url = endpoint(server, "/oauth/revoke")?;
    let form = [
        ("token", token.expose().as_str()),
        ("token_type_hint", "refresh_token"),
        ("client_id", CLIENT_ID),
    ];
    let response = http
        .send(http.client().post(url).form(&form))
        .await
        .map_err(|e| TokenError::Transient(describe(&e)))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(TokenError::Refused(Refusal {
            status: Some(response.status().as_u16()),
            code: None,
            detail: Some("the revocation was not accepted".into()),
        }))
    }
}

async fn token_request(
    http: &HttpClient,
    server: &Url,
    form: &[(&str, &str)],
) -> Result<Grant, TokenError> {
    let url = endpoint(server, "/oauth/token")?;
    let response = http
        .send_api(http.client().post(url).form(form))
        .await
        .map_err(|e| TokenError::Transient(e.reason()))?;
    let status = response.status();
    let headers = response.headers().clone();
    let server_date = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let bytes = response
        .bytes()
        .await
        .map_err(|e| TokenError::Transient(describe(&e)))?;
    // Only the server's own reply may end a session or refuse a sign-in: a portal's page or
    // a proxy's error leaves the tokens as they are.
    if let Some(interception) = judge(status, &headers, &bytes) {
        http.report_interception(&interception);
        return Err(TokenError::Transient(interception.reason()));
    }

    if status.is_success() {
        let body: TokenBody = serde_json::from_slice(&bytes).map_err(|e| {
            tracing::warn!(%status, error = %e, "the token endpoint's reply cannot be read");
            TokenError::Transient(Reason::UnreadableReply {
                status: status.as_u16(),
            })
        })?;
        if body
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(TokenError::Refused(Refusal::local(
                "unsupported_token_type",
                format!("unsupported token type {:?}", body.token_type),
            )));
        }
        return Ok(Grant {
            access_token: Secret::new(body.access_token),
            // Without expires_in, assume a short life and refresh early.
            expires_in: Duration::from_secs(body.expires_in.unwrap_or(300)),
            refresh_token: body.refresh_token.map(Secret::new),
            server_date,
        });
    }
    if status.as_u16() == 429 {
        return Err(TokenError::TooManyAttempts(retry_after.unwrap_or(60)));
    }
    if let (503, Some(retry_after_s)) = (status.as_u16(), retry_after) {
        // Too many sign-ins being checked at once: a wait, not a failure.
        return Err(TokenError::Transient(Reason::ServerAsksToWait {
            retry_after_s: u32::try_from(retry_after_s).unwrap_or(u32::MAX),
        }));
    }
    if status.is_server_error() || status.as_u16() == 408 {
        return Err(TokenError::Transient(Reason::ServerError {
            status: status.as_u16(),
        }));
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) if body.error == "invalid_grant" => Err(TokenError::InvalidGrant(
            body.error_description.unwrap_or(body.error),
        )),
        Ok(body) => Err(TokenError::Refused(Refusal {
            status: Some(status.as_u16()),
            code: Some(body.error),
            detail: body.error_description,
        })),
        Err(_) => Err(TokenError::Refused(Refusal {
            status: Some(status.as_u16()),
            code: None,
            detail: None,
        })),
    }
}
