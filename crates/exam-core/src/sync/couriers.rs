//! Whose work goes next, and with whose credentials. The signed-in student's work is sent
//! with their session. A student who left with work still waiting here (signed out, or
//! another student signed in) left a delivery credential: a courier — a token manager of
//! its own, never shown to windows — sends their work to their account with it, even while
//! someone else uses the computer, and retires it (revoked, removed from the keychain) once
//! the work is delivered. Work whose student left no credential (the school ended the
//! session) waits for them to sign in here again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Ctx, BATCH_BYTES};
use crate::auth::TokenManager;
use crate::owner::{origin_of, Owner};
use crate::queue::{Claimed, QueueError};

/// How long "this student left no credential" is believed before the keychain is asked again.
const MISSING_FOR: Duration = Duration::from_secs(5);

enum Known {
    Ready(TokenManager),
    Missing(Instant),
}

#[derive(Default)]
pub(super) struct Couriers {
    known: Mutex<HashMap<Owner, Known>>,
}

/// Work to send: whose, with whose credentials, what.
pub(super) struct Next {
    pub owner: Owner,
    pub sender: TokenManager,
    pub claimed: Vec<Claimed>,
    /// Sent by a courier (the student is not signed in).
    pub courier: bool,
}

/// Nothing to send now: when the next entry that can be sent is due, and whether work
/// waits that nobody here can send (its student must sign in).
pub(super) struct Idle {
    pub next_due: Option<i64>,
    pub waits_for_sign_in: bool,
}

impl Couriers {
    /// The courier of `owner`'s work, if they left a delivery credential.
    async fn get(&self, auth: &TokenManager, owner: &Owner) -> Option<TokenManager> {
        match self.lock().get(owner) {
            // A courier whose session the school ended has no credential any more (its
            // keychain entry is gone): the work waits for its student, and is not claimed
            // again and again for a courier that cannot send it.
            Some(Known::Ready(courier)) if courier.snapshot().has_session => {
                return Some(courier.clone())
            }
            Some(Known::Missing(since)) if since.elapsed() < MISSING_FOR => return None,
            _ => {}
        }
        let found = match auth.courier(&owner.student).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "cannot read delivery credentials");
                None
            }
        };
        let mut known = self.lock();
        match &found {
            Some(courier) => {
                tracing::info!("delivering work a student left on this computer");
                known.insert(owner.clone(), Known::Ready(courier.clone()));
            }
            None => {
                known.insert(owner.clone(), Known::Missing(Instant::now()));
            }
        }
        found
    }

    /// Once `owner` has nothing left waiting, their courier's session is revoked and its
    /// credential removed from this computer.
    pub(super) async fn retire_if_done(&self, ctx: &Ctx, owner: &Owner) {
        let waiting = match ctx.queue.waiting_by_owner() {
            Ok(waiting) => waiting,
            Err(_) => return,
        };
        if waiting.iter().any(|(o, _)| o.as_ref() == Some(owner)) {
            return;
        }
        let courier = match self.lock().remove(owner) {
            Some(Known::Ready(courier)) => courier,
            _ => return,
        };
        courier.retire().await;
        tracing::info!("a student's work left on this computer is delivered; credential removed");
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Owner, Known>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Claims the next work: the signed-in student's first, then each student's who left a
/// delivery credential, one student's entries at a time. Other students are looked up only
/// when the signed-in student has nothing to send now.
pub(super) async fn claim_next(ctx: &Ctx, max: usize) -> Result<Result<Next, Idle>, QueueError> {
    let mut next_due: Option<i64> = None;
    let mut earliest = |due: Option<i64>| {
        if let Some(due) = due {
            next_due = Some(next_due.map_or(due, |d: i64| d.min(due)));
        }
    };
    let current = ctx.auth.signed_in_owner();
    if let Some(owner) = &current {
        let claimed = ctx.queue.claim_for(owner, max, BATCH_BYTES)?;
        if !claimed.is_empty() {
            return Ok(Ok(Next {
                owner: owner.clone(),
                sender: ctx.auth.clone(),
                claimed,
                courier: false,
            }));
        }
        earliest(ctx.queue.next_due_ms_for(owner)?);
    }
    let here = origin_of(ctx.auth.server());
    let mut waits_for_sign_in = false;
    for owner in ctx.queue.pending_owners()? {
        if current.as_ref() == Some(&owner) {
            continue;
        }
        // Another server's work is sent only when the app is set up for that server.
        let courier = if owner.origin == here {
            ctx.couriers.get(&ctx.auth, &owner).await
        } else {
            None
        };
        let Some(sender) = courier else {
            waits_for_sign_in = true;
            continue;
        };
        let claimed = ctx.queue.claim_for(&owner, max, BATCH_BYTES)?;
        if !claimed.is_empty() {
            return Ok(Ok(Next {
                owner,
                sender,
                claimed,
                courier: true,
            }));
        }
        earliest(ctx.queue.next_due_ms_for(&owner)?);
    }
    Ok(Err(Idle {
        next_due,
        waits_for_sign_in,
    }))
}
