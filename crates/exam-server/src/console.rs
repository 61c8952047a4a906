//! The console for proctors and IT: a small web app served by the reference server (not in
//! the student app). It signs in with the admin token (kept in the tab's session storage,
//! sent as a bearer token, never in a cookie or a URL), reads the admin API, and follows
//! the alerts live on `/console/alerts/stream` and the fleet's minute summaries as they arrive
//! on `/console/fleet/stream` (server-sent events, read with `fetch` so the token travels in a
//! header). A strict content security policy: only its own script and style (and uPlot's, for
//! the charts, vendored in `console/vendor/` and served from the binary), nothing inline, no
//! frames.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::problem::ApiError;
use crate::routes::Principal;
use crate::AppState;

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/console.js");
const ANALYTICS: &str = include_str!("../console/analytics.js");
const INSIGHTS: &str = include_str!("../console/insights.js");
const READINESS: &str = include_str!("../console/readiness.js");
const STYLE: &str = include_str!("../console/console.css");
const UPLOT: &str = include_str!("../console/vendor/uPlot.iife.min.js");
const UPLOT_STYLE: &str = include_str!("../console/vendor/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("../console/vendor/uPlot.LICENSE");
/// A comment line keeps the stream open through proxies when nothing happens.
const HEARTBEAT: Duration = Duration::from_secs(15);

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/console",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/console.js",
            get(|| async { page(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/analytics.js",
            get(|| async { page(ANALYTICS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/insights.js",
            get(|| async { page(INSIGHTS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/readiness.js",
            get(|| async { page(READINESS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/console.css",
            get(|| async { page(STYLE, "text/css; charset=utf-8") }),
        )
        .route(
            "/console/vendor/uPlot.iife.min.js",
            get(|| async { page(UPLOT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/vendor/uPlot.min.css",
            get(|| async { page(UPLOT_STYLE, "text/css; charset=utf-8") }),
        )
        .route(
            "/console/vendor/uPlot.LICENSE",
            get(|| async { page(UPLOT_LICENSE, "text/plain; charset=utf-8") }),
        )
        .route("/console/alerts/stream", get(stream))
        .route("/console/fleet/stream", get(fleet_stream))
}

fn page(body: &'static str, kind: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(serde::Deserialize)]
struct StreamQuery {
    /// Changes after this alert version (the console's last one).
    #[serde(default)]
    since_version: i64,
}

/// Lets the admin token through to a stream at `path`; anything else is the response to send
/// (a refusal that counts towards the admin lockout, like the admin API's).
async fn admin_only(
    state: &Arc<AppState>,
    peer: SocketAddr,
    headers: &HeaderMap,
    path: &str,
) -> Result<(), Response> {
    if let Some(retry) = state.admin_failures.locked(peer.ip(), Instant::now()) {
        return Err(ApiError::too_many(
            "too many failed uses of the admin API from this address",
            retry,
        )
        .into_response());
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let checking = state.clone();
    let principal = tokio::task::spawn_blocking(move || {
        crate::auth::authenticate(&checking, authorization.as_deref())
    })
    .await;
    match principal {
        Ok(Ok(Principal::Admin)) => Ok(()),
        Ok(Ok(Principal::User { .. })) => {
            crate::admin::record_failure(state, peer.ip(), path, "a student's token");
            Err(
                ApiError::forbidden("forbidden", "this stream is for proctors and IT")
                    .into_response(),
            )
        }
        Ok(Err(e)) => {
            crate::admin::record_failure(state, peer.ip(), path, &e.detail);
            Err(e.into_response())
        }
        Err(e) => Err(ApiError::internal(e.to_string()).into_response()),
    }
}

/// `GET /console/alerts/stream?since_version=`: every alert that changed after that version,
/// then each change as it commits (`event: alert`, `id:` its version), with a comment every
/// 15 s. Admin token only; failures count towards the admin lockout like the admin API's.
async fn stream(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = admin_only(&state, peer, &headers, "/console/alerts/stream").await {
        return refused;
    }
    let body = futures_util::stream::unfold(
        (state, query.since_version.max(0)),
        |(state, mut version)| async move {
            loop {
                // Registered before looking, so a change committed meanwhile is not missed.
                let waker = state.clone();
                let notified = waker.alerts_changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let reading = state.clone();
                let changes = tokio::task::spawn_blocking(move || {
                    crate::security::changed_since(&reading.db.lock(), version, 200)
                })
                .await;
                let changes = match changes {
                    Ok(Ok(changes)) => changes,
                    Ok(Err(error)) => {
                        tracing::error!(%error, "the alert stream cannot read the alerts");
                        return None;
                    }
                    Err(_) => return None,
                };
                if !changes.is_empty() {
                    let mut chunk = String::new();
                    for alert in changes {
                        version = alert["version"].as_i64().unwrap_or(version);
                        chunk.push_str(&format!("id: {version}\nevent: alert\ndata: {alert}\n\n"));
                    }
                    return Some((
                        Ok::<_, std::io::Error>(Bytes::from(chunk)),
                        (state, version),
                    ));
                }
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep(HEARTBEAT) => {
                        return Some((Ok(Bytes::from_static(b": still here\n\n")), (state, version)));
                    }
                }
            }
        },
    );
    event_stream(body)
}

/// A `text/event-stream` response of `body`'s chunks.
fn event_stream(
    body: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Response {
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[derive(serde::Deserialize)]
struct FleetStreamQuery {
    /// Machine-minutes stored after this cursor (the last event's `id`); absent: from now.
    since: Option<i64>,
}

/// `GET /console/fleet/stream?since=`: each time machine-minutes have been stored, what
/// arrived (`event: minutes`, `id:` the cursor; [`crate::fleet::series::arrived_since`]: how
/// many, the minutes they cover, their labs, exams and machines), so that a chart fetches its
/// newest steps alone; a comment every 15 s. Without `since` it starts from the newest minute
/// stored when it is asked for, so a chart loaded after the response began misses nothing.
/// Admin token only, as the alert stream.
async fn fleet_stream(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<FleetStreamQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = admin_only(&state, peer, &headers, "/console/fleet/stream").await {
        return refused;
    }
    let since = match query.since {
        Some(since) => since.max(0),
        None => {
            let reading = state.clone();
            let newest = tokio::task::spawn_blocking(move || {
                crate::fleet::series::cursor(&reading.reader.lock())
            })
            .await;
            match newest {
                Ok(Ok(cursor)) => cursor,
                Ok(Err(error)) => return ApiError::from(error).into_response(),
                Err(e) => return ApiError::internal(e.to_string()).into_response(),
            }
        }
    };
    let body = futures_util::stream::unfold((state, since), |(state, cursor)| async move {
        loop {
            // Registered before looking, so minutes committed meanwhile are not missed.
            let waker = state.clone();
            let notified = waker.fleet_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let reading = state.clone();
            let arrived = tokio::task::spawn_blocking(move || {
                crate::fleet::series::arrived_since(&reading.reader.lock(), cursor)
            })
            .await;
            let arrived = match arrived {
                Ok(Ok(arrived)) => arrived,
                Ok(Err(error)) => {
                    tracing::error!(%error, "the fleet stream cannot read the minutes");
                    return None;
                }
                Err(_) => return None,
            };
            if let Some(arrived) = arrived {
                let next = arrived["cursor"].as_i64().unwrap_or(cursor);
                let chunk = format!("id: {next}\nevent: minutes\ndata: {arrived}\n\n");
                return Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), (state, next)));
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(HEARTBEAT) => {
                    return Some((Ok(Bytes::from_static(b": still here\n\n")), (state, cursor)));
                }
            }
        }
    });
    event_stream(body)
}
