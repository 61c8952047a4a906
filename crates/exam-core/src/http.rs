//! The one HTTP client of the core: connection reuse, timeouts, HTTP/2 where the server
//! offers it (ALPN), and counters of connections opened vs requests sent so the reuse rate
//! is known.
//!
//! It also decides whose reply a reply is. On a school network something else often answers
//! in the server's place: a captive portal (a redirect to its login page, or the login page
//! itself with `200`), a filtering proxy (its own HTML error page), a TLS-intercepting
//! middlebox. Such a reply is never the server's verdict on a request — acting on it would
//! turn an answer into a dead letter, or a portal's `200` into "delivered". [`judge_head`]
//! and [`judge`] tell the two apart using only what the contract guarantees (the API never
//! redirects; its bodies are JSON, its errors problem+json or OAuth error objects), and
//! every interception is passed to whoever watches the network
//! ([`HttpClient::on_interception`]), so the monitor learns of a portal at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::reason::Reason;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;

#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct HttpSetupError(String);

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    requests: AtomicU64,
    interceptions: AtomicU64,
}

type Observer = Arc<dyn Fn(&Interception) + Send + Sync>;

/// Cheap to clone; every clone shares the connection pool, the counters and the observer.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    counters: Arc<Counters>,
    observer: Arc<RwLock<Option<Observer>>>,
}

/// A reply that did not come from the Exam Bank server but from something on the way to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interception {
    pub status: u16,
    /// The host a redirect points to (a portal's login page), when there is one.
    pub portal_host: Option<String>,
    /// The reply's media type, when it said one (`text/html`…).
    pub content_type: Option<String>,
}

impl Interception {
    /// A sign-in page of the network (a portal) rather than a proxy that cannot reach the
    /// server: redirects, pages served with `200`, and the statuses portals and proxies use
    /// to ask for a sign-in.
    pub fn is_portal(&self) -> bool {
        self.status < 500
    }

    /// What happened, as a code the screens word (the status and the media type go to the
    /// log, not to the screen).
    pub fn reason(&self) -> Reason {
        if self.portal_host.is_some() {
            return Reason::PortalSignIn {
                host: self.portal_host.clone(),
            };
        }
        if self.is_portal() {
            Reason::PortalPage
        } else {
            Reason::ProxyAnswers
        }
    }
}

/// Whether a reply's status and headers already show it is not the server's: any redirect
/// (the API never redirects; `304` answers a conditional GET), a proxy's or a portal's
/// sign-in status (407, 511), or an HTML page. `None` means "may be the server's" — its body
/// decides ([`judge`]).
pub fn judge_head(status: StatusCode, headers: &HeaderMap) -> Option<Interception> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty());
    let portal_host = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok())
        .and_then(|u| u.host_str().map(str::to_string));
    let code = status.as_u16();
    let redirect = status.is_redirection() && status != StatusCode::NOT_MODIFIED;
    let sign_in = matches!(code, 407 | 511);
    let page = content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("text/html") || t == "application/xhtml+xml");
    (redirect || sign_in || page).then(|| Interception {
        status: code,
        portal_host: portal_host.filter(|_| redirect),
        content_type,
    })
}

/// Whether a whole reply is the server's. Besides [`judge_head`]: a reply with content is
/// the server's only if it is JSON, and an error only if it is a problem+json object with a
/// `code` or an OAuth error object with an `error` (RFC 9457, RFC 6749 §5.2). Empty bodies
/// pass for `204` and `304` only.
pub fn judge(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Option<Interception> {
    if let Some(interception) = judge_head(status, headers) {
        return Some(interception);
    }
    let bare = || Interception {
        status: status.as_u16(),
        portal_host: None,
        content_type: headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        let empty_is_fine = matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
        return (!empty_is_fine).then(bare);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Some(bare());
    };
    if status.is_success() {
        return None;
    }
    let names_itself = ["code", "error"]
        .iter()
        .any(|k| value.get(k).is_some_and(serde_json::Value::is_string));
    (!names_itself).then(bare)
}

/// Connection reuse so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReuseStats {
    pub connections_opened: u64,
    pub requests_sent: u64,
}

impl ReuseStats {
    /// Requests that did not need a new connection, as a fraction (1.0 when nothing was sent).
    pub fn reuse_rate(&self) -> f64 {
        if self.requests_sent == 0 {
            1.0
        } else {
            1.0 - (self.connections_opened as f64 / self.requests_sent as f64).min(1.0)
        }
    }
}

impl HttpClient {
    pub fn new(user_agent: &str) -> Result<Self, HttpSetupError> {
        let counters = Arc::new(Counters::default());
        let counting = counters.clone();
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(30))
            // The API never redirects: a redirect means a captive portal or a misconfigured
            // proxy, which must be seen (see `network`), not followed with a bearer token.
            .redirect(reqwest::redirect::Policy::none())
            // Every new connection passes through this layer once.
            .connector_layer(tower_layer::layer_fn(move |inner| CountConnections {
                inner,
                counters: counting.clone(),
            }))
            .build()
            .map_err(|e| HttpSetupError(e.to_string()))?;
        Ok(Self {
            client,
            counters,
            observer: Arc::new(RwLock::new(None)),
        })
    }

    /// Who hears of every interception (the network monitor). One observer; a new one
    /// replaces the last.
    pub fn on_interception(&self, observer: impl Fn(&Interception) + Send + Sync + 'static) {
        *self.observer.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(observer));
    }

    /// Tells the observer that a reply was not the server's.
    pub fn report_interception(&self, interception: &Interception) {
        self.counters.interceptions.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            status = interception.status,
            content_type = interception.content_type.as_deref().unwrap_or(""),
            portal = interception.portal_host.as_deref().unwrap_or(""),
            "a reply did not come from the server: {}",
            interception.reason()
        );
        let observer = self
            .observer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(observer) = observer {
            observer(interception);
        }
    }

    /// Replies so far that were not the server's.
    pub fn interceptions(&self) -> u64 {
        self.counters.interceptions.load(Ordering::Relaxed)
    }

    /// Sends a request to the API: a reply whose status or headers show it is not the
    /// server's comes back as [`ApiError::Intercepted`] (and is reported), never as a
    /// response someone might act on. Callers that read the body judge it with [`judge`].
    pub async fn send_api(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let response = self.send(request).await.map_err(ApiError::Transport)?;
        if let Some(interception) = judge_head(response.status(), response.headers()) {
            self.report_interception(&interception);
            return Err(ApiError::Intercepted(interception));
        }
        Ok(response)
    }

    /// The client, for building a request. Send it with [`HttpClient::send`].
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> reqwest::Result<reqwest::Response> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        request.send().await
    }

    pub fn reuse(&self) -> ReuseStats {
        ReuseStats {
            connections_opened: self.counters.connections.load(Ordering::Relaxed),
            requests_sent: self.counters.requests.load(Ordering::Relaxed),
        }
    }
}

/// Why [`HttpClient::send_api`] has no reply of the server's.
#[derive(Debug)]
pub enum ApiError {
    /// No reply at all: connection, TLS, timeout, a reply cut short…
    Transport(reqwest::Error),
    /// Something other than the server answered.
    Intercepted(Interception),
}

impl ApiError {
    /// Why, as a code the screens word.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Transport(e) => describe(e),
            Self::Intercepted(i) => i.reason(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.reason())
    }
}

/// Why a request failed, as a code the screens word (the causes, which name sockets and
/// libraries, go to the log at debug level; never the URL).
pub fn describe(error: &reqwest::Error) -> Reason {
    let mut causes = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        causes.push_str(": ");
        causes.push_str(&s.to_string());
        source = s.source();
    }
    tracing::debug!(causes = %causes, "a request failed");
    let lower = causes.to_lowercase();
    if error.is_timeout() {
        Reason::TimedOut
    } else if lower.contains("certificate") {
        Reason::CertificateIntercepted
    } else if error.is_connect() && lower.contains("refused") {
        Reason::ServerNotRunning
    } else if lower.contains("dns") || lower.contains("resolve") || lower.contains("lookup") {
        Reason::NameNotFound
    } else if error.is_connect() {
        Reason::NoNetwork
    } else if error.is_body() || error.is_decode() {
        Reason::ReplyCut
    } else {
        Reason::ConnectionCut
    }
}

#[derive(Clone)]
struct CountConnections<S> {
    inner: S,
    counters: Arc<Counters>,
}

impl<S, R> tower_service::Service<R> for CountConnections<S>
where
    S: tower_service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
    const PROBLEM: &[(&str, &str)] = &[("content-type", "application/problem+json")];
    const HTML: &[(&str, &str)] = &[("content-type", "text/html; charset=utf-8")];

    /// (status, headers, body, the server's?)
    type Case<'a> = (u16, &'a [(&'a str, &'a str)], &'a str, bool);

    /// (status, headers, body, the server's?) — what the contract guarantees and what
    /// portals, proxies and filters really send.
    #[test]
    fn whose_reply_is_it() {
        let redirect: &[(&str, &str)] = &[
            ("location", "http://login.portal.test/login?continue=x"),
            ("content-type", "text/html"),
        ];
        let cases: &[Case] = &[
            (
                200,
                JSON,
                r#"{"question_id":"q1","seq":3,"stored":true}"#,
                true,
            ),
            (201, JSON, r#"{"attempt_id":"a"}"#, true),
            (200, JSON, r#"{"responses":[]}"#, true),
            (200, &[], r#"{"no":"content type"}"#, true),
            (204, &[], "", true),
            (304, &[], "", true),
            (
                409,
                PROBLEM,
                r#"{"status":409,"code":"attempt_closed"}"#,
                true,
            ),
            (401, PROBLEM, r#"{"code":"invalid_token"}"#, true),
            (400, JSON, r#"{"error":"invalid_grant"}"#, true),
            (503, PROBLEM, r#"{"code":"overloaded"}"#, true),
            // A portal: redirects, its login page with 200, its own statuses.
            (302, redirect, "<html>sign in</html>", false),
            (307, &[("location", "https://portal.test/")], "", false),
            (200, HTML, "<!doctype html><form>Sign in</form>", false),
            (200, &[], "<html>no content type</html>", false),
            (200, JSON, "", false),
            (511, &[], "", false),
            (407, &[], "", false),
            (403, HTML, "<h1>Blocked by the school filter</h1>", false),
            (401, HTML, "<h1>Sign in</h1>", false),
            // A proxy's own error page, or its empty reply.
            (502, HTML, "<h1>Bad gateway</h1>", false),
            (
                503,
                &[("content-type", "text/plain")],
                "Service unavailable",
                false,
            ),
            (504, &[], "", false),
            // JSON, but not an error of the server's.
            (404, JSON, r#"{"message":"not found"}"#, false),
            (409, JSON, "[1,2]", false),
        ];
        for (status, h, body, servers) in cases {
            let status_code = StatusCode::from_u16(*status).unwrap();
            let got = judge(status_code, &headers(h), body.as_bytes());
            assert_eq!(
                got.is_none(),
                *servers,
                "{status} {h:?} {body:?} judged {got:?}"
            );
        }
    }

    #[test]
    fn a_redirect_names_the_portal_and_a_proxy_is_not_a_portal() {
        let redirect = judge_head(
            StatusCode::FOUND,
            &headers(&[("location", "http://login.portal.test/login?continue=x")]),
        )
        .unwrap();
        assert!(redirect.is_portal());
        assert_eq!(redirect.portal_host.as_deref(), Some("login.portal.test"));
        assert!(redirect.reason().to_string().contains("login.portal.test"));
        let page = judge_head(StatusCode::OK, &headers(HTML)).unwrap();
        assert!(page.is_portal());
        assert!(
            page.reason().to_string().contains("sign in"),
            "{}",
            page.reason()
        );
        assert!(
            !page.reason().to_string().contains("200"),
            "{}",
            page.reason()
        );
        let proxy = judge(StatusCode::BAD_GATEWAY, &headers(HTML), b"<h1>x</h1>").unwrap();
        assert!(!proxy.is_portal());
        assert!(proxy.reason().to_string().contains("proxy"));
        // A 304 is the server's answer to If-None-Match, not a redirect.
        assert!(judge_head(StatusCode::NOT_MODIFIED, &HeaderMap::new()).is_none());
    }

    #[test]
    fn the_observer_hears_of_every_interception() {
        let http = HttpClient::new("tests").unwrap();
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = heard.clone();
        http.on_interception(move |i| sink.lock().unwrap().push(i.status));
        let portal = judge_head(StatusCode::FOUND, &HeaderMap::new()).unwrap();
        http.report_interception(&portal);
        http.report_interception(&portal);
        assert_eq!(*heard.lock().unwrap(), vec![302, 302]);
        assert_eq!(http.interceptions(), 2);
    }
}
