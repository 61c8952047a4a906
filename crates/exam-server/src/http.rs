//! HTTP: the axum router, the guard every request passes (IP blocks, per-IP rate limit,
//! statistics), and the adapters from HTTP to the token endpoint and the `/v1` dispatcher.
//! Both rate limits feed the `request_burst` alert (`security::burst`), cheaply.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::problem::{ApiError, OAuthError, Reply};
use crate::routes::{self, Call, Principal};
use crate::security::burst::Burst;
use crate::{auth, AppState};

/// Request bodies above this get 413.
pub const MAX_BODY: usize = 1024 * 1024;
pub const MAX_BATCH: usize = 50;

/// The route template that served a request, for statistics.
#[derive(Clone, Copy)]
struct RouteName(&'static str);

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(no_content))
        .route("/generate_204", get(no_content))
        .route("/openapi.json", get(openapi))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/v1/{*rest}", any(v1))
        .merge(crate::console::routes())
        .merge(crate::updates::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn no_content() -> StatusCode {
    StatusCode::NO_CONTENT
}

pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::not_found(format!("there is no {method} {}", uri.path())).into_response()
}

/// A known route asked with another method. axum's method routing adds the `Allow` header
/// (the route's methods) to this reply, as RFC 9110 requires of a 405; the `/v1` dispatcher
/// adds its own from the route table (`routes::find`). tests/it/routes.rs checks both.
async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept {method}", uri.path()),
    )
    .into_response()
}

/// Every request: IP blocks (the admin API and health probes excepted), the per-IP rate
/// limit (probes excepted), then statistics by route and status, and its latency (until the
/// response's head is ready) in the per-minute window.
async fn guard(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let began = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let probe = path == "/healthz" || path == "/generate_204";
    // The admin API and the console stay reachable from a blocked address, so a block can
    // be lifted from anywhere.
    let admin =
        path.starts_with("/v1/admin/") || path == "/console" || path.starts_with("/console/");
    let ip = peer.ip();

    let blocked = !probe && !admin && {
        let now = crate::now();
        let blocks = state.blocks.read().unwrap_or_else(|p| p.into_inner());
        blocks.iter().any(|b| b.applies(ip, now))
    };
    let response = if blocked {
        ApiError::forbidden("ip_blocked", "requests from this address are blocked").into_response()
    } else if let (false, Err(retry)) = (
        probe,
        state
            .limiter
            .check(&format!("ip:{ip}"), state.config.ip_rate, Instant::now()),
    ) {
        state.stats.rate_limited();
        // The `request_burst` rule: one alert per address per window. The gate is checked
        // here, in memory; only its first refusal in the window goes to SQLite.
        let who = Burst::Address { ip };
        if state.bursts.first_in_window(&who.subject(), Instant::now()) {
            let state = state.clone();
            let method = method.to_string();
            let path = path.clone();
            let limit = state.config.ip_rate;
            let _ = blocking(move || {
                crate::security::burst::record(&state, who, &method, &path, limit, retry);
            })
            .await;
        }
        ApiError::too_many("too many requests from this address", retry).into_response()
    } else {
        next.run(request).await
    };

    let route = response
        .extensions()
        .get::<RouteName>()
        .map(|r| r.0.to_string())
        .or(matched)
        .unwrap_or_else(|| "(unknown)".into());
    state
        .stats
        .request(method.as_str(), &route, response.status().as_u16());
    state
        .stats
        .finished(response.status().as_u16(), began.elapsed());
    response
}

/// Runs blocking work (SQLite, password hashing) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the request could not be completed: {e}")))
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request bodies are limited to {MAX_BODY} bytes"),
            )
        } else {
            ApiError::bad_request("malformed_body", format!("the body could not be read: {e}"))
        }
    })
}

/// The shape both OAuth endpoints share: read the form body, run the grant off the async
/// workers, and answer RFC 6749 errors.
async fn oauth_endpoint<T: Send + 'static>(
    state: Arc<AppState>,
    peer: SocketAddr,
    body: Body,
    endpoint: fn(&AppState, &auth::Form, IpAddr) -> Result<T, OAuthError>,
    respond: fn(T) -> Response,
) -> Response {
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return OAuthError::from(e).into_response(),
    };
    let result = blocking(move || {
        let form = auth::parse_form(&bytes)?;
        endpoint(&state, &form, peer.ip())
    })
    .await;
    match result {
        Ok(Ok(value)) => respond(value),
        Ok(Err(e)) => e.into_response(),
        Err(e) => OAuthError::from(e).into_response(),
    }
}

async fn token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Body,
) -> Response {
    oauth_endpoint(state, peer, body, auth::token, |tokens| {
        let mut response = axum::Json(tokens).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    })
    .await
}

async fn revoke(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Body,
) -> Response {
    oauth_endpoint(state, peer, body, auth::revoke, |()| {
        StatusCode::OK.into_response()
    })
    .await
}

fn header_str(headers: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn with_route(reply: Reply, route: Option<&'static str>) -> Response {
    let mut response = reply.into_response();
    if let Some(route) = route {
        response.extensions_mut().insert(RouteName(route));
    }
    response
}

/// Every `/v1` request: route, authenticate, per-user rate limit, then the dispatcher (or
/// the batch).
async fn v1(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let is_batch = path == routes::BATCH;
    if is_batch && parts.method != Method::POST {
        return with_route(
            ApiError::method_not_allowed("/v1/batch accepts POST", &["POST"]).into_reply(),
            Some(routes::BATCH),
        );
    }
    let route = if is_batch {
        Some(routes::BATCH)
    } else {
        match routes::find(&parts.method, &path) {
            Ok((route, _)) => Some(route.template),
            Err(e) => return e.into_response(),
        }
    };
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return with_route(e.into_reply(), route),
    };
    let admin_route = route.is_some_and(|r| r.starts_with("/v1/admin/"));
    let result = blocking(move || {
        let headers = &parts.headers;
        if admin_route {
            if let Some(retry) = state.admin_failures.locked(peer.ip(), Instant::now()) {
                state.stats.rate_limited();
                return (
                    route,
                    ApiError::too_many(
                        "too many failed uses of the admin API from this address",
                        retry,
                    )
                    .into_reply(),
                );
            }
        }
        let principal = match auth::authenticate(&state, header_str(headers, header::AUTHORIZATION))
        {
            Ok(p) => p,
            Err(e) => {
                if admin_route {
                    crate::admin::record_failure(&state, peer.ip(), &path, &e.detail);
                }
                return (route, e.into_reply());
            }
        };
        if admin_route && matches!(principal, Principal::User { .. }) {
            crate::admin::record_failure(&state, peer.ip(), &path, "a student's token");
        }
        if let Principal::User { id, username, .. } = &principal {
            if let Err(retry) = state.limiter.check(
                &format!("user:{id}"),
                state.config.user_rate,
                Instant::now(),
            ) {
                state.stats.rate_limited();
                crate::security::burst::on_rate_limited(
                    &state,
                    Burst::Student {
                        user_id: *id,
                        username,
                        ip: peer.ip(),
                    },
                    parts.method.as_str(),
                    &path,
                    state.config.user_rate,
                    retry,
                );
                return (
                    route,
                    ApiError::too_many("too many requests; slow down", retry).into_reply(),
                );
            }
        }
        if is_batch {
            return (
                route,
                batch(&state, &principal, &bytes, peer.ip()).unwrap_or_else(ApiError::into_reply),
            );
        }
        let call = Call {
            method: parts.method.clone(),
            path: &path,
            query: parse_query(parts.uri.query()),
            body: &bytes,
            idempotency_key: header_str(headers, "idempotency-key"),
            if_none_match: header_str(headers, header::IF_NONE_MATCH),
            ip: peer.ip(),
        };
        routes::execute_one(&state, &principal, &call)
    })
    .await;
    match result {
        Ok((route, reply)) => {
            let unauthorized = reply.status == StatusCode::UNAUTHORIZED;
            let step_up = reply.body["code"] == crate::auth::STEP_UP_REQUIRED;
            let mut response = with_route(reply, route);
            if unauthorized {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(if step_up {
                        // RFC 9470: the client must authenticate again, with the password.
                        "Bearer realm=\"exam-bank\", error=\"insufficient_user_authentication\""
                    } else {
                        "Bearer realm=\"exam-bank\", error=\"invalid_token\""
                    }),
                );
            }
            response
        }
        Err(e) => with_route(e.into_reply(), route),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    requests: Vec<BatchItem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    id: String,
    method: String,
    path: String,
    idempotency_key: Option<String>,
    body: Option<Value>,
}

/// `POST /v1/batch`: each item processed exactly as if sent alone, in order; one item's
/// failure never fails the others. Each item is a savepoint of one transaction, so a
/// failed item rolls back alone and the whole batch costs one commit.
fn batch(
    state: &AppState,
    principal: &Principal,
    body: &[u8],
    ip: IpAddr,
) -> Result<Reply, ApiError> {
    let batch: BatchBody = crate::api::parse_json(body)?;
    if batch.requests.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!(
                "{} requests; at most {MAX_BATCH} per batch",
                batch.requests.len()
            ),
        ));
    }
    let mut responses = Vec::with_capacity(batch.requests.len());
    let mut conn = state.db.lock();
    let mut tx = conn.transaction()?;
    for item in &batch.requests {
        let reply = batch_item(state, principal, item, ip, &mut tx);
        let mut response =
            json!({"id": item.id, "status": reply.status.as_u16(), "body": reply.body});
        if reply.replayed {
            response["replayed"] = Value::Bool(true);
        }
        responses.push(response);
    }
    tx.commit()?;
    crate::admin::reload_blocks_if_changed(state, &conn);
    Ok(Reply::ok(json!({"responses": responses})))
}

fn batch_item(
    state: &AppState,
    principal: &Principal,
    item: &BatchItem,
    ip: IpAddr,
    tx: &mut rusqlite::Transaction<'_>,
) -> Reply {
    let Ok(method) = Method::from_bytes(item.method.to_ascii_uppercase().as_bytes()) else {
        return ApiError::bad_request(
            "invalid_body",
            format!("`{}` is not an HTTP method", item.method),
        )
        .into_reply();
    };
    let (path, query) = match item.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (item.path.as_str(), None),
    };
    if path == routes::BATCH {
        return ApiError::bad_request("invalid_body", "a batch cannot contain a batch")
            .into_reply();
    }
    if !path.starts_with("/v1/") {
        return ApiError::not_found(format!("there is no {path} in the batchable API"))
            .into_reply();
    }
    // The fingerprint hashes JSON in canonical form, so this matches the same body sent alone.
    let body = item.body.as_ref().map(Value::to_string).unwrap_or_default();
    let call = Call {
        method,
        path,
        query: parse_query(query),
        body: body.as_bytes(),
        idempotency_key: item.idempotency_key.as_deref(),
        if_none_match: None,
        ip,
    };
    let (route, reply) = routes::execute(state, principal, &call, tx);
    state.stats.request(
        &format!("BATCH {}", call.method),
        route.unwrap_or("(unknown)"),
        reply.status.as_u16(),
    );
    reply
}
