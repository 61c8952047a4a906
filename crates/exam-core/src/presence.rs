//! Whether a student is at the computer. Lab computers are shared, so a session must not
//! outlive the student: the windows note keys and clicks ([`Presence::note`]); after
//! `session.idle_sign_out_min` minutes without any, outside an exam, the student is signed
//! out (their waiting work keeps going to their account: [`crate::app::Core::sign_out`]).
//! An exam in progress is never ended this way.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::TokenManager;
use crate::bus::CoreEvent;
use crate::exam::ExamService;
use crate::lifecycle::Workers;
use crate::queue::Queue;
use crate::reason::Reason;

/// The last sign of a student at the computer.
#[derive(Debug)]
pub struct Presence {
    last: Mutex<Instant>,
}

impl Default for Presence {
    fn default() -> Self {
        Self {
            last: Mutex::new(Instant::now()),
        }
    }
}

impl Presence {
    /// A key or a click in a window.
    pub fn note(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

/// Whether the signed-in student has an exam in progress on this computer.
pub(crate) fn exam_in_progress(exams: &ExamService) -> bool {
    // Unknown (the database cannot be read): treated as in progress, so nobody is signed
    // out of an exam on a guess.
    exams.has_exam_in_progress().unwrap_or(true)
}

/// Signs the student out, leaving a delivery credential when their work still waits here;
/// `why` is said on the sign-in screen.
pub(crate) async fn sign_out_keeping_work(
    auth: &TokenManager,
    queue: Option<&Queue>,
    why: Option<Reason>,
) -> crate::auth::AuthSnapshot {
    let waiting = match (auth.owner(), queue) {
        (Some(owner), Some(queue)) => queue
            .waiting_by_owner()
            .map(|w| w.iter().any(|(o, n)| o.as_ref() == Some(&owner) && *n > 0))
            // Unknown: keep the credential rather than strand the work.
            .unwrap_or(true),
        _ => false,
    };
    match why {
        Some(reason) => auth.sign_out_because(reason, waiting).await,
        None if waiting => auth.leave_for_delivery().await,
        None => auth.sign_out().await,
    }
}

/// Signs out after `limit` without a sign of the student, outside an exam (zero: never).
pub(crate) fn spawn_idle_sign_out(
    workers: &Workers,
    presence: std::sync::Arc<Presence>,
    auth: TokenManager,
    exams: ExamService,
    queue: Queue,
    limit: Duration,
) {
    if limit.is_zero() {
        return;
    }
    let minutes = u32::try_from(limit.as_millis().div_ceil(60_000)).unwrap_or(u32::MAX);
    let every = (limit / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
    workers.spawn("idle sign-out", move |stop| async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            if !auth.snapshot().has_session
                || presence.idle_for() < limit
                || exam_in_progress(&exams)
            {
                continue;
            }
            tracing::info!(minutes, "signing out after a time without activity");
            sign_out_keeping_work(&auth, Some(&queue), Some(Reason::IdleSignOut { minutes })).await;
        }
    });
}

/// Removes the answer keys and the data of students who left and have nothing left to do
/// here ([`crate::keys`]): never the signed-in student's. SQLite and the keychain: call it
/// off the async threads.
pub(crate) fn retire_departed(auth: &TokenManager, exams: &ExamService) {
    let signed_in = auth.signed_in_owner();
    exams.forget_opened_except(signed_in.as_ref());
    match exams
        .keys()
        .retire_departed(signed_in.as_ref(), exams.server_now_ms())
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            students = n,
            "data of students who left removed from this computer"
        ),
        Err(error) => tracing::warn!(%error, "cannot remove the data of students who left"),
    }
}

/// How often students who left are looked for.
const DEPARTURES_EVERY: Duration = Duration::from_secs(30);

/// Looks for students who left: at start, when a sign-in or an attempt changes (a receipt
/// read back after the last of a student's work was delivered, say), and every
/// [`DEPARTURES_EVERY`]. First, the one answer key of an earlier version becomes each
/// student's own. Nothing is looked at before `restored` says the session of the student
/// signed in here has been read from the keychain: until then everyone looks departed.
pub(crate) fn spawn_departures(
    workers: &Workers,
    auth: TokenManager,
    exams: ExamService,
    bus: &crate::bus::EventBus,
    mut restored: tokio::sync::watch::Receiver<bool>,
) {
    let mut events = bus.subscribe();
    workers.spawn("departures", move |stop| async move {
        // First (it needs nobody signed in, and must come before a restored session's
        // work looks for its student's key).
        let legacy = exams.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(error) = legacy.keys().adopt_legacy() {
                tracing::warn!(%error, "cannot split the answer key of an earlier version");
            }
        })
        .await;
        tokio::select! {
            () = stop.cancelled() => return,
            // A restore that ended either way sends `true`; a dropped sender (the restore
            // task stopped first) ends the wait too.
            _ = restored.wait_for(|looked| *looked) => {}
        }
        loop {
            let (auth, exams) = (auth.clone(), exams.clone());
            let _ = tokio::task::spawn_blocking(move || retire_departed(&auth, &exams)).await;
            let woken = tokio::time::sleep(DEPARTURES_EVERY);
            tokio::pin!(woken);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = &mut woken => break,
                    event = events.recv() => match event {
                        Ok(CoreEvent::ExamChanged { .. } | CoreEvent::AuthChanged { .. }
                            | CoreEvent::SessionEnded { .. })
                        | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            // Let a burst of changes settle, then look once.
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            break;
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        }
    });
}
