//! Error replies: RFC 9457 problem+json outside `/oauth`, RFC 6749 §5.2 bodies inside.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A reply to one API operation, before it becomes an HTTP response (or a batch item).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    /// Seconds, for 429 replies.
    pub retry_after: Option<u64>,
    pub etag: Option<String>,
    pub replayed: bool,
    /// The methods the resource accepts, for the `Allow` header of a 405 (RFC 9110 §15.5.6).
    pub allow: Option<String>,
    /// A file to send as it is (a report), instead of `body`; `body` then describes it for a
    /// batch, whose items are JSON.
    pub file: Option<std::sync::Arc<Download>>,
}

/// A file sent with its type and a `Content-Disposition` name.
#[derive(Clone, PartialEq, Eq)]
pub struct Download {
    pub content_type: &'static str,
    /// Safe as it is in a header: ASCII letters, digits, `.`, `-` and `_` only.
    pub filename: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("content_type", &self.content_type)
            .field("filename", &self.filename)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl Reply {
    pub fn new(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body,
            retry_after: None,
            etag: None,
            replayed: false,
            allow: None,
            file: None,
        }
    }

    pub fn ok(body: Value) -> Self {
        Self::new(StatusCode::OK, body)
    }

    pub fn is_problem(&self) -> bool {
        self.status.is_client_error() || self.status.is_server_error()
    }
}

impl IntoResponse for Reply {
    fn into_response(mut self) -> Response {
        if let Some(file) = self.file.take().filter(|_| self.status.is_success()) {
            let file = std::sync::Arc::unwrap_or_clone(file);
            let disposition = format!("attachment; filename=\"{}\"", file.filename);
            let mut response = (self.status, file.bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            );
            if let Ok(disposition) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, disposition);
            }
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            return response;
        }
        if self.status == StatusCode::NO_CONTENT || self.status == StatusCode::NOT_MODIFIED {
            let mut response = self.status.into_response();
            if let Some(etag) = self.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
                response.headers_mut().insert(header::ETAG, etag);
            }
            return response;
        }
        let content_type = if self.is_problem() {
            "application/problem+json"
        } else {
            "application/json"
        };
        let mut response = (self.status, self.body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(etag) = self.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
            headers.insert(header::ETAG, etag);
        }
        if self.replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            headers.insert(header::ALLOW, allow);
        }
        response
    }
}

/// An API error with a stable machine `code`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {code}: {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub retry_after: Option<u64>,
    /// Extra members of the problem object (e.g. the server's digest).
    pub extra: Option<Value>,
    /// With 405: the methods the resource accepts, sent as `Allow`.
    pub allow: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            extra: None,
            allow: None,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    /// 405 for a known resource, with the methods it accepts (the `Allow` header RFC 9110
    /// requires on every 405).
    pub fn method_not_allowed(detail: impl Into<String>, allowed: &[&str]) -> Self {
        Self {
            allow: Some(allowed.join(", ")),
            ..Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", detail)
        }
    }

    pub fn too_many(detail: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail)
        }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    pub fn with_extra(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    pub fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    pub fn into_reply(self) -> Reply {
        let mut body = json!({
            "type": format!("https://exam-bank.invalid/problems/{}", self.code),
            "title": self.title(),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        if let (Some(Value::Object(extra)), Some(object)) = (self.extra, body.as_object_mut()) {
            object.extend(extra);
        }
        Reply {
            retry_after: self.retry_after,
            allow: self.allow,
            ..Reply::new(self.status, body)
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(error: rusqlite::Error) -> Self {
        tracing::error!(%error, "database error");
        Self::internal("the server could not use its database")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_reply().into_response()
    }
}

/// An RFC 6749 §5.2 error of the token and revocation endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }
}

impl From<ApiError> for OAuthError {
    fn from(error: ApiError) -> Self {
        Self {
            status: error.status,
            error: if error.status == StatusCode::TOO_MANY_REQUESTS {
                "slow_down"
            } else if error.status.is_server_error() {
                "server_error"
            } else {
                "invalid_request"
            },
            description: error.detail,
            retry_after: error.retry_after,
        }
    }
}

impl From<rusqlite::Error> for OAuthError {
    fn from(error: rusqlite::Error) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
