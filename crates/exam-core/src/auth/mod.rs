//! Sign-in and tokens, for the whole app at once.
//!
//! - The access token is cached in memory and refreshed before it expires. Expiry is
//!   tracked on the monotonic clock from `expires_in`, so a wrong wall clock (common on
//!   exam-lab machines) cannot make the app refresh late; the server's `Date` header gives
//!   the offset, shown in diagnostics and used to state expiry in server time.
//! - Refresh is single-flight: any number of concurrent callers cause one request, and
//!   they all share its outcome.
//! - A rotated refresh token is written to the keychain before anyone proceeds with it.
//! - Only `invalid_grant` ends a session. Network errors, timeouts and 5xx keep the tokens
//!   and say "offline"; the worker retries with backoff.
//! - Tokens never leave the core: callers get a [`Secret`], windows get [`AuthSnapshot`]s.

pub mod health;
pub mod monitor;
pub mod oauth;
mod refresh;
mod session;
pub mod signals;
pub mod snapshot;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use url::Url;

use crate::backoff::Backoff;
use crate::bus::{CoreEvent, EventBus};
use crate::http::HttpClient;
use crate::keychain::{KeychainError, SecretStore};
use crate::owner::Owner;
use crate::reason::{Reason, Refusal};
use crate::secret::Secret;
use monitor::AuthMonitor;
use oauth::TokenError;
use refresh::apply_grant;
use session::delivery_key;
pub use snapshot::{AuthSnapshot, AuthStatus};

/// How long a keychain call may take before it counts as failed.
pub const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("too many failed sign-ins; try again in {retry_after_s} seconds")]
    LockedOut { retry_after_s: u64 },
    #[error("the Exam Bank server cannot be reached ({0})")]
    Offline(Reason),
    #[error("not signed in")]
    NotSignedIn,
    #[error("the session has ended: {0}")]
    SessionEnded(Reason),
    #[error("the server refused: {0}")]
    Refused(Refusal),
    #[error("the OS keychain failed: {0}")]
    Keychain(String),
}

impl AuthError {
    /// Why, as a code the screens word (for what a refresh that failed tells windows).
    pub fn reason(&self) -> Reason {
        match self {
            Self::Offline(reason) | Self::SessionEnded(reason) => reason.clone(),
            Self::Refused(refusal) => Reason::RefusedByServer {
                status: refusal.status,
                server_code: refusal.code.clone(),
            },
            Self::LockedOut { retry_after_s } => Reason::ServerAsksToWait {
                retry_after_s: u32::try_from(*retry_after_s).unwrap_or(u32::MAX),
            },
            Self::Keychain(_) => Reason::KeychainFailed,
            Self::WrongCredentials | Self::NotSignedIn => Reason::SessionEndedBySchool,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub server: Url,
    /// Refresh this long before expiry (at most a fifth of the token's lifetime).
    pub refresh_margin: Duration,
    /// This computer's wall clock. Only the clock offset and the displayed expiry use it;
    /// scheduling runs on the monotonic clock. Tests pass a wrong one.
    pub wall_clock: fn() -> SystemTime,
}

impl AuthConfig {
    pub fn new(server: Url) -> Self {
        Self {
            server,
            refresh_margin: Duration::from_secs(60),
            wall_clock: SystemTime::now,
        }
    }
}

struct Access {
    token: Secret<String>,
    /// Monotonic: when to consider it expired.
    deadline: Instant,
    margin: Duration,
    expires_at: SystemTime,
}

struct State {
    version: u32,
    status: AuthStatus,
    user: Option<String>,
    reason: Option<Reason>,
    access: Option<Access>,
    refresh: Option<Secret<String>>,
    refreshing: bool,
    clock_offset_s: f64,
    /// Refresh attempts finished, and the outcome of the last one (for waiters).
    attempts: u64,
    last: Option<Result<(), AuthError>>,
    /// Backoff while offline.
    retry_at: Option<Instant>,
    failures: u32,
    /// Which session this is: a new one with every sign-in, restore and sign-out, so a
    /// refresh that was under way when the session changed hands never touches the next.
    epoch: u64,
    /// The refresh token held here is newer than the keychain's (writing it failed): it is
    /// written again until it is there, since the keychain's one is dead on the server.
    unsaved: bool,
}

impl State {
    fn valid_access(&self, now: Instant) -> Option<Secret<String>> {
        let access = self.access.as_ref()?;
        (now + access.margin < access.deadline).then(|| access.token.clone())
    }

    fn snapshot(&self) -> AuthSnapshot {
        AuthSnapshot {
            version: self.version,
            status: self.status,
            has_session: self.status.has_session(),
            user: self.user.clone(),
            expires_at: self
                .access
                .as_ref()
                .map(|a| humantime::format_rfc3339_seconds(a.expires_at).to_string()),
            refreshing: self.refreshing,
            reason: self.reason.clone(),
            clock_offset_s: self.clock_offset_s,
        }
    }
}

/// The token manager. Cheap to clone; every clone is the same manager.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthConfig,
    http: HttpClient,
    store: Arc<dyn SecretStore>,
    bus: EventBus,
    monitor: AuthMonitor,
    /// What the device checks read: failed sign-ins, early refusals, slow-downs, reuse.
    signals: signals::AuthSignals,
    state: Mutex<State>,
    /// Held for the whole of a refresh: the single flight.
    gate: tokio::sync::Mutex<()>,
    /// Wakes the background worker when the schedule changes.
    wake: tokio::sync::Notify,
    /// Refreshes under way ([`TokenManager::wait_for_refreshes`]).
    refreshing: std::sync::atomic::AtomicUsize,
    /// Holds a delivery credential ([`TokenManager::courier`]), not the session.
    courier: bool,
}

impl TokenManager {
    pub fn new(
        config: AuthConfig,
        http: HttpClient,
        store: Arc<dyn SecretStore>,
        bus: EventBus,
    ) -> Self {
        Self::build(config, http, store, bus, false)
    }

    fn build(
        config: AuthConfig,
        http: HttpClient,
        store: Arc<dyn SecretStore>,
        bus: EventBus,
        courier: bool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                store,
                bus,
                monitor: AuthMonitor::default(),
                signals: signals::AuthSignals::default(),
                state: Mutex::new(State {
                    version: 0,
                    status: AuthStatus::SignedOut,
                    user: None,
                    reason: None,
                    access: None,
                    refresh: None,
                    refreshing: false,
                    clock_offset_s: 0.0,
                    attempts: 0,
                    last: None,
                    retry_at: None,
                    failures: 0,
                    epoch: 0,
                    unsaved: false,
                }),
                gate: tokio::sync::Mutex::new(()),
                refreshing: std::sync::atomic::AtomicUsize::new(0),
                courier,
                wake: tokio::sync::Notify::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `change`, bumps the version and tells every window.
    fn change(&self, change: impl FnOnce(&mut State)) -> AuthSnapshot {
        let snapshot = {
            let mut state = self.state();
            change(&mut state);
            state.version += 1;
            state.snapshot()
        };
        self.inner.bus.publish(CoreEvent::AuthChanged {
            snapshot: snapshot.clone(),
        });
        self.inner.wake.notify_one();
        snapshot
    }

    pub fn snapshot(&self) -> AuthSnapshot {
        self.state().snapshot()
    }

    pub fn server(&self) -> &Url {
        &self.inner.config.server
    }

    /// The student this manager holds (or last held) a session for, of this server. Work is
    /// sent for them only while [`AuthStatus::has_session`].
    pub fn owner(&self) -> Option<Owner> {
        let user = self.state().user.clone()?;
        Some(Owner::of(&self.inner.config.server, &user))
    }

    /// The student signed in now — with a session, read in one look at the state — of this
    /// server: whose work is shown and sent with this manager's tokens.
    pub fn signed_in_owner(&self) -> Option<Owner> {
        let s = self.state();
        if !s.status.has_session() {
            return None;
        }
        let user = s.user.clone()?;
        Some(Owner::of(&self.inner.config.server, &user))
    }

    pub fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    pub fn metrics(&self) -> monitor::AuthMetrics {
        self.inner.monitor.metrics()
    }

    /// Everything the diagnostics window shows.
    /// Sign-in and token latencies go to the history too.
    pub fn set_recorder(&self, recorder: crate::analytics::Recorder) {
        self.inner.monitor.set_recorder(recorder);
    }

    /// What sign-in and tokens showed lately, for the device checks.
    pub fn signals(&self) -> signals::SignalCounts {
        self.inner.signals.counts(Instant::now())
    }

    pub fn health(&self) -> health::HealthReport {
        health::report(self.snapshot(), self.metrics(), self.inner.http.reuse())
    }

    fn origin(&self) -> String {
        self.inner.config.server.origin().ascii_serialization()
    }

    fn current_key(&self) -> String {
        format!("{} current-user", self.origin())
    }

    /// Where `user`'s refresh token is kept: the session's, or, for a courier, the
    /// delivery credential the student left (two entries, so a student who signs in again
    /// never shares a token with the courier delivering their earlier work).
    fn refresh_key(&self, user: &str) -> String {
        if self.inner.courier {
            delivery_key(&self.origin(), user)
        } else {
            format!("{} refresh-token {user}", self.origin())
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let store = self.inner.store.clone();
        // A keychain that does not answer (a locked collection waiting for a prompt nobody
        // sees, a Secret Service that hangs) is a failure after a while, not a frozen app.
        let call = tokio::task::spawn_blocking(move || f(store.as_ref()));
        let result = match tokio::time::timeout(KEYCHAIN_TIMEOUT, call).await {
            Ok(joined) => joined.map_err(|e| AuthError::Keychain(e.to_string()))?,
            Err(_) => {
                self.inner.monitor.error("keychain");
                return Err(AuthError::Keychain(format!(
                    "the OS keychain did not answer within {} s",
                    KEYCHAIN_TIMEOUT.as_secs()
                )));
            }
        };
        result.map_err(|e| {
            self.inner.monitor.error("keychain");
            AuthError::Keychain(e.to_string())
        })
    }

    /// Signs in with the password grant. The refresh token goes to the keychain; the
    /// password is forgotten as soon as the request is sent.
    pub async fn sign_in(
        &self,
        username: &str,
        password: Secret<String>,
    ) -> Result<AuthSnapshot, AuthError> {
        let username = username.trim().to_string();
        if username.is_empty() {
            return Err(AuthError::WrongCredentials);
        }
        let started = Instant::now();
        let grant = oauth::password_grant(
            &self.inner.http,
            &self.inner.config.server,
            &username,
            &password,
        )
        .await;
        drop(password);
        self.inner.monitor.validation(started.elapsed());
        let grant = grant.map_err(|e| {
            let error = self.token_error(e, true);
            if matches!(
                error,
                AuthError::WrongCredentials | AuthError::LockedOut { .. }
            ) {
                self.inner.signals.sign_in_failed(Instant::now());
            }
            error
        })?;
        let refresh = grant.refresh_token.clone().ok_or_else(|| {
            AuthError::Refused(Refusal::local(
                "no_refresh_token",
                "the server gave no refresh token",
            ))
        })?;
        let (user, key, current) = (
            username.clone(),
            self.refresh_key(&username),
            self.current_key(),
        );
        let stored = refresh.clone();
        if let Err(error) = self
            .blocking(move |store| {
                store.set(&key, &stored)?;
                store.set(&current, &Secret::new(user))
            })
            .await
        {
            // The session cannot be kept: end it on the server too, rather than leave one
            // nobody here can use or end.
            let revoke = oauth::revoke(&self.inner.http, &self.inner.config.server, &refresh);
            match tokio::time::timeout(Duration::from_secs(5), revoke).await {
                Ok(Ok(())) => tracing::warn!(
                    "the keychain could not keep the new session, so it was ended on the server"
                ),
                _ => tracing::warn!(
                    "the keychain could not keep the new session and the server could not be \
                     told; it will expire on its own"
                ),
            }
            return Err(error);
        }
        let now = Instant::now();
        Ok(self.change(|s| {
            s.epoch += 1;
            s.status = AuthStatus::SignedIn;
            s.user = Some(username);
            s.reason = None;
            s.refresh = Some(refresh);
            s.failures = 0;
            s.retry_at = None;
            apply_grant(
                s,
                grant,
                now,
                self.inner.config.refresh_margin,
                (self.inner.config.wall_clock)(),
            );
        }))
    }

    /// Restores the session from the keychain at start, also offline. Returns whether a
    /// session was found; the access token is fetched by the next [`Self::access_token`]
    /// or by the worker.
    pub async fn restore(&self) -> Result<bool, AuthError> {
        let (current, origin) = (self.current_key(), self.origin());
        let found = self
            .blocking(move |store| {
                let Some(user) = store.get(&current)? else {
                    return Ok(None);
                };
                let user = user.expose().clone();
                let token = store.get(&format!("{origin} refresh-token {user}"))?;
                Ok(token.map(|t| (user, t)))
            })
            .await?;
        let Some((user, token)) = found else {
            return Ok(false);
        };
        self.change(|s| {
            s.epoch += 1;
            s.status = AuthStatus::SignedIn;
            s.user = Some(user);
            s.refresh = Some(token);
            s.access = None;
        });
        Ok(true)
    }

    /// A valid access token: from the cache when it is fresh, else after one refresh shared
    /// with every concurrent caller.
    pub async fn access_token(&self) -> Result<Secret<String>, AuthError> {
        let started = Instant::now();
        if let Some(token) = self.state().valid_access(started) {
            self.inner.monitor.cache_hit(started.elapsed());
            return Ok(token);
        }
        self.inner.monitor.cache_miss();
        self.refresh(false).await
    }

    /// An access token of `owner`'s: [`AuthError::NotSignedIn`] while this manager holds
    /// no session of theirs (signed out, or another student signed in meanwhile), so one
    /// student's work is never sent with another's credentials.
    pub async fn access_token_as(&self, owner: &Owner) -> Result<Secret<String>, AuthError> {
        let started = Instant::now();
        {
            let s = self.state();
            if !self.holds(&s, owner) {
                return Err(AuthError::NotSignedIn);
            }
            if let Some(token) = s.valid_access(started) {
                self.inner.monitor.cache_hit(started.elapsed());
                return Ok(token);
            }
        }
        self.inner.monitor.cache_miss();
        let token = self.refresh(false).await?;
        // The session may have changed hands while the refresh was under way.
        if !self.holds(&self.state(), owner) {
            return Err(AuthError::NotSignedIn);
        }
        Ok(token)
    }

    /// Whether `s` is a session of `owner`'s.
    fn holds(&self, s: &State, owner: &Owner) -> bool {
        s.status.has_session()
            && s.user.as_deref() == Some(owner.student.as_str())
            && self.origin() == owner.origin
    }

    /// [`TokenManager::send_authorized`] with `owner`'s credentials only
    /// ([`TokenManager::access_token_as`]).
    pub async fn send_authorized_as(
        &self,
        owner: &Owner,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AuthError> {
        let token = self.access_token_as(owner).await?;
        let response = self.send_with(&build, &token).await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        self.invalidate_access(&token);
        let token = self.access_token_as(owner).await?;
        self.send_with(&build, &token).await
    }

    /// The access token was refused (401): forget it, so the next call refreshes.
    /// A token refused long before its lifetime said is a signal for the device checks
    /// (revoked by the school, or the server's clock or keys changed).
    pub fn invalidate_access(&self, token: &Secret<String>) {
        let mut s = self.state();
        if let Some(access) = s.access.as_ref().filter(|a| a.token == *token) {
            let now = Instant::now();
            self.inner
                .signals
                .refused_early(now, access.deadline.saturating_duration_since(now));
            s.access = None;
        }
    }

    /// Sends a request with the access token. A 401 means the token was refused however
    /// fresh it looked: it is forgotten, refreshed once (shared with every other caller) and
    /// the request retried once. Network failures are [`AuthError::Offline`].
    pub async fn send_authorized(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AuthError> {
        let token = self.access_token().await?;
        let response = self.send_with(&build, &token).await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        self.invalidate_access(&token);
        let token = self.refresh(false).await?;
        self.send_with(&build, &token).await
    }

    async fn send_with(
        &self,
        build: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        token: &Secret<String>,
    ) -> Result<reqwest::Response, AuthError> {
        let http = &self.inner.http;
        let response = http
            .send_api(build(http.client()).bearer_auth(token.expose()))
            .await
            .map_err(|e| {
                self.inner.monitor.error("network");
                AuthError::Offline(e.reason())
            })?;
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            self.inner.signals.rate_limited(Instant::now());
        }
        Ok(response)
    }
}
