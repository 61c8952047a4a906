//! State shared by the proxy handle, the accept loop, the connection threads and the
//! `cut_for` timers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::delay_line::MAX_LATENCY;
use crate::faults::{FaultState, Faults, Plan};
use crate::link::{Link, LinkCell};
use crate::stats::Counters;

/// A panicking test thread must not take the proxy down with it: poisoned locks are used as is
/// (every critical section leaves its data consistent).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) upstream: SocketAddr,
    pub(crate) link: LinkCell,
    /// Serialises link changes and counts them, so a `cut_for` timer never undoes a change
    /// made after it was scheduled.
    link_changes: Mutex<u64>,
    faults: Mutex<FaultState>,
    /// One-way latency in nanoseconds, to the upstream and to the client (each pump reads its
    /// own direction once per chunk, so two independent atomics are enough).
    latency_to_upstream: AtomicU64,
    latency_to_client: AtomicU64,
    /// Fast path for the pumps; `stopped` + `wake` let sleepers return at once on shutdown.
    stopping: AtomicBool,
    stopped: Mutex<bool>,
    wake: Condvar,
    pub(crate) counters: Counters,
    /// Connection threads and `cut_for` timers, joined on drop.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn new(upstream: SocketAddr) -> Self {
        Self {
            upstream,
            link: LinkCell::new(),
            link_changes: Mutex::new(0),
            faults: Mutex::new(FaultState::new(Faults::default())),
            latency_to_upstream: AtomicU64::new(0),
            latency_to_client: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
            counters: Counters::default(),
            threads: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        *lock(&self.stopped) = true;
        self.wake.notify_all();
    }

    /// Sleeps for `d` or until shutdown; true when the proxy is stopping.
    pub(crate) fn pause(&self, d: Duration) -> bool {
        let guard = lock(&self.stopped);
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }

    /// Sets the link and returns the change's token for [`Shared::restore_up`].
    pub(crate) fn change_link(&self, link: Link) -> u64 {
        let mut changes = lock(&self.link_changes);
        *changes += 1;
        self.link.set(link);
        *changes
    }

    /// Puts the link back up unless someone changed it after change `token`.
    pub(crate) fn restore_up(&self, token: u64) {
        let changes = lock(&self.link_changes);
        if *changes == token {
            self.link.set(Link::Up);
        }
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = FaultState::new(faults);
    }

    pub(crate) fn plan(&self, to_upstream: bool) -> Plan {
        lock(&self.faults).plan(to_upstream)
    }

    /// Stores both latencies, each capped at [`MAX_LATENCY`].
    pub(crate) fn set_latency(&self, to_upstream: Duration, to_client: Duration) {
        let nanos = |d: Duration| u64::try_from(d.min(MAX_LATENCY).as_nanos()).unwrap_or(u64::MAX);
        self.latency_to_upstream
            .store(nanos(to_upstream), Ordering::SeqCst);
        self.latency_to_client
            .store(nanos(to_client), Ordering::SeqCst);
    }

    /// The current one-way latency towards the upstream (`true`) or the client.
    pub(crate) fn latency(&self, to_upstream: bool) -> Duration {
        let cell = if to_upstream {
            &self.latency_to_upstream
        } else {
            &self.latency_to_client
        };
        Duration::from_nanos(cell.load(Ordering::SeqCst))
    }

    pub(crate) fn track(&self, handle: JoinHandle<()>) {
        let mut threads = lock(&self.threads);
        // Finished threads need no join; dropping their handles keeps the list short.
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
    }

    pub(crate) fn take_threads(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *lock(&self.threads))
    }
}
