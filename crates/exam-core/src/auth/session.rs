//! How a session ends and what it leaves on this computer: signing out (revoked and
//! forgotten), leaving a delivery credential for work still waiting (a shared lab computer:
//! the student's work goes on to their account after they have gone), and the courier that
//! holds such a credential until the work is delivered, then retires it.

use super::*;

impl TokenManager {
    /// A manager for one student's delivery credential: the session `student` left on this
    /// computer so their waiting work reaches their account after they have gone. It never
    /// tells windows anything (its own bus) and never becomes the signed-in session.
    pub async fn courier(&self, student: &str) -> Result<Option<Self>, AuthError> {
        let manager = Self::build(
            self.inner.config.clone(),
            self.inner.http.clone(),
            self.inner.store.clone(),
            EventBus::default(),
            true,
        );
        let key = manager.refresh_key(student);
        let token = manager.blocking(move |store| store.get(&key)).await?;
        let Some(token) = token else {
            return Ok(None);
        };
        manager.change(|s| {
            s.epoch += 1;
            s.status = AuthStatus::SignedIn;
            s.user = Some(student.to_string());
            s.refresh = Some(token);
        });
        Ok(Some(manager))
    }

    /// Signs out: forgets the tokens here and in the keychain, then revokes the session on
    /// the server (best effort: offline, sign-out still happens).
    pub async fn sign_out(&self) -> AuthSnapshot {
        self.end_here(Leave::Nothing, None).await
    }

    /// Signs out but leaves the session in the keychain as the student's delivery
    /// credential: their work waiting on this computer is still sent to their account, with
    /// their credentials, after they have gone ([`TokenManager::courier`]).
    pub async fn leave_for_delivery(&self) -> AuthSnapshot {
        self.end_here(Leave::DeliveryCredential, None).await
    }

    /// A courier whose student's work is all delivered: revokes the session on the server
    /// and removes it from the keychain.
    pub async fn retire(&self) -> AuthSnapshot {
        self.end_here(Leave::Retired, None).await
    }

    /// Signs out on the app's own account (a time without activity), saying why on the
    /// sign-in screen; with `keep_work`, as [`TokenManager::leave_for_delivery`].
    pub async fn sign_out_because(&self, reason: Reason, keep_work: bool) -> AuthSnapshot {
        let leave = if keep_work {
            Leave::DeliveryCredential
        } else {
            Leave::Nothing
        };
        self.end_here(leave, Some(reason)).await
    }

    async fn end_here(&self, leave: Leave, reason: Option<Reason>) -> AuthSnapshot {
        // No refresh is under way while the session changes hands.
        let _gate = self.inner.gate.lock().await;
        let (user, refresh) = {
            let s = self.state();
            (s.user.clone(), s.refresh.clone())
        };
        let (current, key, delivery) = (
            self.current_key(),
            user.as_deref().map(|u| self.refresh_key(u)),
            user.as_deref().map(|u| delivery_key(&self.origin(), u)),
        );
        let forget_token = leave != Leave::DeliveryCredential;
        let forget_current = leave != Leave::Retired;
        let kept = refresh.clone().filter(|_| !forget_token);
        if let Err(error) = self
            .blocking(move |store| {
                if let (Some(token), Some(delivery)) = (kept, delivery) {
                    store.set(&delivery, &token)?;
                }
                if let Some(key) = key {
                    store.delete(&key)?;
                }
                if forget_current {
                    store.delete(&current)?;
                }
                Ok(())
            })
            .await
        {
            tracing::error!(%error, "could not clear the keychain at sign-out");
        }
        let snapshot = self.change(|s| {
            s.epoch += 1;
            s.status = AuthStatus::SignedOut;
            s.user = None;
            s.reason = reason;
            s.access = None;
            s.refresh = None;
            s.refreshing = false;
            s.retry_at = None;
        });
        if let Some(refresh) = refresh.filter(|_| forget_token) {
            let revoke = oauth::revoke(&self.inner.http, &self.inner.config.server, &refresh);
            match tokio::time::timeout(Duration::from_secs(5), revoke).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "revocation failed; the session will expire on its own")
                }
                Err(_) => {
                    tracing::warn!("revocation timed out; the session will expire on its own")
                }
            }
        }
        snapshot
    }
}

/// The keychain entry of the delivery credential `student` left for `origin`.
pub(super) fn delivery_key(origin: &str, student: &str) -> String {
    format!("{origin} delivery-token {student}")
}

/// What ending a session here leaves in the keychain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leave {
    /// Nothing: the session is revoked and forgotten (sign-out).
    Nothing,
    /// The session, kept (not revoked) to deliver the student's waiting work.
    DeliveryCredential,
    /// A delivery credential whose work is done: revoked and forgotten; the signed-in
    /// session's pointer is left alone.
    Retired,
}
