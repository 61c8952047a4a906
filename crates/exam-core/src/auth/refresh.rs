//! Keeping the sign-in alive: one refresh at a time for the whole app (concurrent callers
//! share its outcome), the rotated refresh token in the keychain before anyone uses the new
//! access token, the background worker that refreshes before expiry on the monotonic clock,
//! and the one refusal that ends a session (`invalid_grant`); everything else keeps the
//! tokens and retries with backoff.

use std::sync::atomic::Ordering;

use super::*;

impl TokenManager {
    /// Refreshes now even if the token is still fresh ("force a refresh").
    pub async fn force_refresh(&self) -> Result<AuthSnapshot, AuthError> {
        self.refresh(true).await.map(|_| self.snapshot())
    }

    /// One refresh, run as a task of its own: a caller that goes away (a request given up,
    /// a worker stopped) never cuts it between the server's rotation and the keychain write.
    /// A rotation whose reply is lost must be retried within the server's 60 s grace, which a
    /// restart cannot promise, so the rotation always completes; the app's shutdown waits for
    /// it ([`TokenManager::wait_for_refreshes`]).
    pub(super) async fn refresh(&self, force: bool) -> Result<Secret<String>, AuthError> {
        let manager = self.clone();
        let counted = Refreshing::start(self.clone());
        let task = tokio::spawn(async move {
            let _counted = counted;
            manager.refresh_in_task(force).await
        });
        task.await.unwrap_or_else(|error| {
            tracing::error!(%error, "a refresh did not complete");
            Err(AuthError::Offline(Reason::ConnectionCut))
        })
    }

    /// Waits, at most `within`, until no refresh is under way. For the app's shutdown, from
    /// a thread that is not one of the runtime's.
    pub fn wait_for_refreshes(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.inner.refreshing.load(Ordering::Acquire) == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                tracing::warn!("a refresh was still under way when the app stopped");
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    async fn refresh_in_task(&self, force: bool) -> Result<Secret<String>, AuthError> {
        let seen = self.state().attempts;
        let _gate = self.inner.gate.lock().await;
        let refresh_token = {
            let s = self.state();
            if s.attempts != seen {
                // A refresh finished while we waited: share its outcome.
                match &s.last {
                    Some(Err(error)) => return Err(error.clone()),
                    _ => {
                        if let Some(token) = s
                            .valid_access(Instant::now())
                            .or_else(|| s.access.as_ref().map(|a| a.token.clone()))
                        {
                            return Ok(token);
                        }
                    }
                }
            }
            if !force {
                if let Some(token) = s.valid_access(Instant::now()) {
                    return Ok(token);
                }
                // Backing off after a failure: callers get its outcome without another
                // request (a token endpoint that refuses while the rest of the server
                // answers must not be asked in a tight loop). The worker retries on time.
                if let (Some(at), Some(Err(error))) = (s.retry_at, &s.last) {
                    if Instant::now() < at {
                        return Err(error.clone());
                    }
                }
            }
            match (s.status, &s.refresh) {
                (AuthStatus::SessionEnded, _) => {
                    return Err(AuthError::SessionEnded(
                        s.reason.clone().unwrap_or(Reason::SessionEndedBySchool),
                    ))
                }
                (_, None) => return Err(AuthError::NotSignedIn),
                (_, Some(token)) => (token.clone(), s.epoch, s.user.clone().unwrap_or_default()),
            }
        };
        let (refresh_token, epoch, user) = refresh_token;
        let started_version = self.change(|s| s.refreshing = true).version;
        self.inner.bus.publish(CoreEvent::RefreshStarted {
            version: started_version,
        });

        let started = Instant::now();
        let result =
            oauth::refresh_grant(&self.inner.http, &self.inner.config.server, &refresh_token).await;
        self.inner.monitor.refresh(started.elapsed());
        match result {
            Ok(grant) => {
                let next = grant.refresh_token.clone().unwrap_or(refresh_token);
                // The rotated token is in the keychain before anyone uses the new access
                // token, under the student whose token it is, even if the session changed
                // hands meanwhile (their delivery credential) — unless it was forgotten.
                let same = self.state().epoch == epoch;
                let key = self.refresh_key(&user);
                let stored = next.clone();
                let written = self
                    .blocking(move |store| {
                        if same || store.get(&key)?.is_some() {
                            store.set(&key, &stored)?;
                        }
                        Ok(())
                    })
                    .await;
                match written {
                    Ok(()) if same => self.state().unsaved = false,
                    Ok(()) => {}
                    Err(error) => {
                        // Keep the session in memory, and write it again until it is there
                        // (`save_unsaved`): the keychain's token is dead on the server now.
                        tracing::error!(%error, "could not store the rotated refresh token");
                        if same {
                            self.state().unsaved = true;
                        }
                    }
                }
                if self.state().epoch != epoch {
                    // Signed out or another student signed in while this ran.
                    self.change(|s| s.refreshing = false);
                    return Err(AuthError::NotSignedIn);
                }
                let now = Instant::now();
                let (margin, wall) = (
                    self.inner.config.refresh_margin,
                    self.inner.config.wall_clock,
                );
                let token = grant.access_token.clone();
                let snapshot = self.change(|s| {
                    s.refresh = Some(next);
                    s.status = AuthStatus::SignedIn;
                    s.reason = None;
                    s.refreshing = false;
                    s.failures = 0;
                    s.retry_at = None;
                    s.attempts += 1;
                    s.last = Some(Ok(()));
                    apply_grant(s, grant, now, margin, wall());
                });
                self.inner.bus.publish(CoreEvent::RefreshCompleted {
                    version: snapshot.version,
                });
                Ok(token)
            }
            Err(error) => {
                let transient = !matches!(error, TokenError::InvalidGrant(_));
                let auth_error = self.token_error(error.clone(), false);
                let reason = auth_error.reason();
                if self.state().epoch != epoch {
                    self.change(|s| s.refreshing = false);
                    return Err(AuthError::NotSignedIn);
                }
                let version = if transient {
                    self.change(|s| {
                        s.status = AuthStatus::Offline;
                        s.reason = Some(reason.clone());
                        s.refreshing = false;
                        s.failures += 1;
                        s.retry_at = Some(Instant::now() + backoff(s.failures, &error));
                        s.attempts += 1;
                        s.last = Some(Err(auth_error.clone()));
                    })
                    .version
                } else {
                    self.end_session(&reason, auth_error.clone()).await
                };
                self.inner.bus.publish(CoreEvent::RefreshFailed {
                    version,
                    reason: reason.clone(),
                    transient,
                });
                if !transient {
                    self.inner
                        .bus
                        .publish(CoreEvent::SessionEnded { version, reason });
                }
                Err(auth_error)
            }
        }
    }

    /// The server ended the session: forget its tokens (here and in the keychain) but keep
    /// the user's name, so sign-in can offer it; local exam data and queued work stay.
    pub(super) async fn end_session(&self, reason: &Reason, error: AuthError) -> u32 {
        let user = self.state().user.clone();
        if let (Reason::SessionReused, Some(user)) = (reason, &user) {
            self.inner
                .signals
                .session_reused(Instant::now(), Owner::new(self.origin(), user.clone()));
        }
        if let Some(user) = user {
            let key = self.refresh_key(&user);
            if let Err(e) = self.blocking(move |store| store.delete(&key)).await {
                tracing::error!(error = %e, "could not clear the ended session from the keychain");
            }
        }
        self.change(|s| {
            s.status = AuthStatus::SessionEnded;
            s.reason = Some(reason.clone());
            s.access = None;
            s.refresh = None;
            s.refreshing = false;
            s.retry_at = None;
            s.attempts += 1;
            s.last = Some(Err(error));
        })
        .version
    }

    pub(super) fn token_error(&self, error: TokenError, sign_in: bool) -> AuthError {
        let monitor = &self.inner.monitor;
        match error {
            TokenError::InvalidGrant(description) => {
                monitor.error("invalid_grant");
                if sign_in {
                    AuthError::WrongCredentials
                } else {
                    AuthError::SessionEnded(session_end_reason(&description))
                }
            }
            TokenError::TooManyAttempts(retry_after_s) => {
                monitor.error("rate_limited");
                if sign_in {
                    AuthError::LockedOut { retry_after_s }
                } else {
                    AuthError::Offline(Reason::ServerAsksToWait {
                        retry_after_s: u32::try_from(retry_after_s).unwrap_or(u32::MAX),
                    })
                }
            }
            TokenError::Refused(refusal) => {
                monitor.error("refused");
                AuthError::Refused(refusal)
            }
            TokenError::Transient(reason) => {
                monitor.error("network");
                AuthError::Offline(reason)
            }
        }
    }

    /// When the worker should next act: before the token expires, or the next retry.
    pub(super) fn next_wakeup(&self) -> Option<Instant> {
        let s = self.state();
        if !s.status.has_session() {
            return None;
        }
        if let Some(retry) = s.retry_at {
            return Some(retry);
        }
        match &s.access {
            Some(a) => Some(a.deadline.checked_sub(a.margin).unwrap_or(a.deadline)),
            None => Some(Instant::now()),
        }
    }

    /// Writes a rotated refresh token the keychain could not take before; whether the
    /// keychain now holds the session's token.
    pub async fn save_unsaved(&self) -> bool {
        let (user, refresh, epoch) = {
            let s = self.state();
            if !s.unsaved {
                return true;
            }
            match (s.user.clone(), s.refresh.clone()) {
                (Some(user), Some(refresh)) => (user, refresh, s.epoch),
                _ => return true,
            }
        };
        let key = self.refresh_key(&user);
        match self.blocking(move |store| store.set(&key, &refresh)).await {
            Ok(()) => {
                let mut s = self.state();
                if s.epoch == epoch {
                    s.unsaved = false;
                }
                tracing::info!("the rotated refresh token is in the keychain now");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "the rotated refresh token still cannot be stored");
                false
            }
        }
    }

    /// Starts the background refresher as one of `workers`.
    pub fn spawn_worker(&self, workers: &crate::lifecycle::Workers) {
        let manager = self.clone();
        let mut bus = self.inner.bus.subscribe();
        workers.spawn("token refresher", move |stop| async move {
            // A network that flaps (or a token endpoint intercepted while the health check
            // answers, which the monitor reads as a portal coming and going) must not undo
            // the backoff in a loop: "back" cuts it short at most this often.
            const BACK_AT_MOST_EVERY: Duration = Duration::from_secs(5);
            let mut last_back: Option<Instant> = None;
            loop {
                let wake = manager.inner.wake.notified();
                // The network is back: a refresh that failed for want of it is due now,
                // not at the end of its backoff.
                let network_back = async {
                    loop {
                        match bus.recv().await {
                            Ok(CoreEvent::NetworkChanged { status }) if status.usable => return,
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                std::future::pending::<()>().await
                            }
                        }
                    }
                };
                let sleep = async {
                    match manager.next_wakeup() {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                let unsaved = manager.state().unsaved;
                let save_again = async {
                    if unsaved {
                        tokio::time::sleep(SAVE_AGAIN_EVERY).await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    () = stop.cancelled() => {
                        manager.save_unsaved().await;
                        break;
                    }
                    () = save_again => {
                        manager.save_unsaved().await;
                        continue;
                    }
                    () = wake => continue,
                    () = network_back => {
                        if last_back.is_none_or(|at| at.elapsed() >= BACK_AT_MOST_EVERY) {
                            let mut s = manager.state();
                            if s.status == AuthStatus::Offline && s.retry_at.is_some() {
                                s.retry_at = None;
                                last_back = Some(Instant::now());
                            }
                        }
                        continue;
                    }
                    () = sleep => {
                        // A refresh under way is finished (the rotated token must reach the
                        // keychain) before the worker stops.
                        if let Err(error) = manager.refresh(false).await {
                            tracing::info!(%error, "background refresh did not succeed");
                        }
                    }
                }
            }
        });
    }
}

/// How often a rotated refresh token the keychain refused is written again.
const SAVE_AGAIN_EVERY: Duration = Duration::from_secs(5);

/// Counts a refresh as under way from before its task is spawned until the task ends
/// (finished, failed or dropped).
struct Refreshing(TokenManager);

impl Refreshing {
    fn start(manager: TokenManager) -> Self {
        manager.inner.refreshing.fetch_add(1, Ordering::AcqRel);
        Self(manager)
    }
}

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.inner.refreshing.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) fn apply_grant(
    s: &mut State,
    grant: oauth::Grant,
    now: Instant,
    margin: Duration,
    local_now: SystemTime,
) {
    if let Some(server_date) = grant.server_date {
        s.clock_offset_s = match server_date.duration_since(local_now) {
            Ok(ahead) => ahead.as_secs_f64(),
            Err(behind) => -behind.duration().as_secs_f64(),
        };
    }
    let server_now = grant.server_date.unwrap_or(local_now);
    s.access = Some(Access {
        token: grant.access_token,
        deadline: now + grant.expires_in,
        margin: margin.min(grant.expires_in / 5),
        expires_at: server_now + grant.expires_in,
    });
}

/// The shared backoff ([`Backoff`], 1 s doubling to 5 min, jittered), or what the server
/// asked.
pub(super) fn backoff(failures: u32, error: &TokenError) -> Duration {
    if let TokenError::TooManyAttempts(seconds) = error {
        return Duration::from_secs(*seconds);
    }
    REFRESH_BACKOFF.delay(failures, rand::random::<f64>())
}

/// The shared backoff, capped at 20 s: a refresh whose reply was lost must be retried
/// within the server's 60 s grace, or the retry reads as reuse and ends the session.
const REFRESH_BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(1),
    max: Duration::from_secs(20),
};

/// Why the server ended the session, from its `error_description`.
pub(super) fn session_end_reason(description: &str) -> Reason {
    if description.contains("password again") {
        Reason::StepUpRequired
    } else if description.contains("reuse") {
        Reason::SessionReused
    } else if description.contains("expired") {
        Reason::SessionExpired
    } else {
        Reason::SessionEndedBySchool
    }
}
