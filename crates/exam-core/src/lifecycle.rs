//! One lifecycle for the core's background work: one tokio runtime, one stop signal handed
//! to every worker, and a handle per worker that [`Workers::shutdown`] joins.
//!
//! Invariants:
//! - Every long-lived task of the core is started by [`Workers::spawn`], never detached.
//! - Shutdown stops workers in the reverse order of their start (the sync engine before the
//!   network monitor it reads, the monitor before the session it probes with), each given
//!   its own [`Stop`] first, so a worker can finish what it has in flight (a request whose
//!   reply must be recorded) before the bounded wait ends; what does not finish in time is
//!   aborted and named in the report (a worker that overruns spends the wait of the older
//!   ones, which are then aborted too: the bound holds). Work a worker had claimed and not recorded is still
//!   in the queue (claims are reset when the queue is opened again).
//! - The runtime is the core's own ([`Workers::new`]) or one it is given
//!   ([`Workers::on`], the shell's, so Tauri's commands, the core and one HTTP connection
//!   pool share one runtime). An owned runtime's threads are gone when shutdown returns.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;
pub use tokio_util::sync::CancellationToken as Stop;

/// Threads of the core's own runtime: the work is I/O-bound (HTTP, SQLite commits of a few
/// rows), and lab machines have few cores.
const WORKER_THREADS: usize = 2;

/// Builds the runtime the whole app runs on (the shell hands it to Tauri too).
pub fn runtime() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("exam-core")
        .enable_all()
        .build()
}

struct Task {
    name: &'static str,
    stop: Stop,
    handle: JoinHandle<()>,
}

/// The running workers of one core.
pub struct Workers {
    handle: Handle,
    owned: Mutex<Option<Runtime>>,
    stop: Stop,
    tasks: Mutex<Vec<Task>>,
}

/// What [`Workers::shutdown`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Workers that stopped by themselves, in the order they were stopped.
    pub stopped: Vec<&'static str>,
    /// Workers that were still running when the wait ended, and were aborted.
    pub aborted: Vec<&'static str>,
}

impl Workers {
    /// Workers on a runtime of their own, shut down with them.
    pub fn new() -> std::io::Result<Self> {
        let runtime = runtime()?;
        let handle = runtime.handle().clone();
        Ok(Self {
            handle,
            owned: Mutex::new(Some(runtime)),
            stop: Stop::new(),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Workers on someone else's runtime (it outlives them).
    pub fn on(handle: Handle) -> Self {
        Self {
            handle,
            owned: Mutex::new(None),
            stop: Stop::new(),
            tasks: Mutex::new(Vec::new()),
        }
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Set once shutdown begins; every worker's own [`Stop`] is a child of it.
    pub fn stopping(&self) -> Stop {
        self.stop.clone()
    }

    /// Starts a worker: `work` gets the stop signal it must watch, and returns when it is
    /// set (after finishing what it has in flight).
    pub fn spawn<F, Fut>(&self, name: &'static str, work: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.child_token();
        let future = work(stop.clone());
        let handle = self.handle.spawn(future);
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Workers that already ended (a one-off restore) need no joining.
        tasks.retain(|t| !t.handle.is_finished());
        tasks.push(Task { name, stop, handle });
    }

    /// How many workers are running.
    pub fn running(&self) -> usize {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|t| !t.handle.is_finished())
            .count()
    }

    /// Stops every worker, newest first, waiting at most `within` in all; then, if the
    /// runtime is ours, shuts it down (its threads are joined). Callable from any thread,
    /// async or not; a second call does nothing.
    pub fn shutdown(&self, within: Duration) -> ShutdownReport {
        let deadline = Instant::now() + within;
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let owned = self.owned.lock().unwrap_or_else(|p| p.into_inner()).take();
        let handle = self.handle.clone();
        let root = self.stop.clone();
        // Joined on a thread of its own: blocking on a runtime from inside one panics, and
        // the shell may call this from anywhere.
        let joiner = std::thread::Builder::new()
            .name("exam-shutdown".into())
            .spawn(move || {
                let mut report = ShutdownReport::default();
                handle.block_on(async {
                    for task in tasks.into_iter().rev() {
                        task.stop.cancel();
                        let left = deadline.saturating_duration_since(Instant::now());
                        let abort = task.handle.abort_handle();
                        match tokio::time::timeout(left, task.handle).await {
                            Ok(_) => report.stopped.push(task.name),
                            Err(_) => {
                                abort.abort();
                                tracing::warn!(worker = task.name, "did not stop in time");
                                report.aborted.push(task.name);
                            }
                        }
                    }
                    root.cancel();
                });
                if let Some(runtime) = owned {
                    runtime.shutdown_timeout(deadline.saturating_duration_since(Instant::now()));
                }
                report
            });
        match joiner.map(|thread| thread.join()) {
            Ok(Ok(report)) => report,
            Ok(Err(_)) | Err(_) => {
                self.stop.cancel();
                tracing::error!("the core's shutdown did not complete");
                ShutdownReport::default()
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let running = !self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        let owned = self
            .owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if running || owned {
            self.shutdown(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_stops_newest_first_and_aborts_what_does_not_stop() {
        let workers = Workers::new().unwrap();
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        // The oldest never stops: it is stopped last, after the others had their turn.
        workers.spawn("stubborn", |_stop| std::future::pending());
        for name in ["first", "second"] {
            let order = order.clone();
            workers.spawn(name, move |stop| async move {
                stop.cancelled().await;
                order.lock().unwrap().push(name);
            });
        }
        assert_eq!(workers.running(), 3);
        let report = workers.shutdown(Duration::from_secs(2));
        assert_eq!(report.aborted, vec!["stubborn"]);
        assert_eq!(report.stopped, vec!["second", "first"]);
        assert_eq!(*order.lock().unwrap(), vec!["second", "first"]);
        assert_eq!(workers.running(), 0);
        // A second shutdown has nothing to do.
        assert_eq!(
            workers.shutdown(Duration::from_millis(10)),
            ShutdownReport::default()
        );
    }

    #[test]
    fn a_borrowed_runtime_outlives_the_workers() {
        let runtime = runtime().unwrap();
        let workers = Workers::on(runtime.handle().clone());
        workers.spawn("waits", |stop| async move { stop.cancelled().await });
        let report = workers.shutdown(Duration::from_secs(1));
        assert_eq!(report.stopped, vec!["waits"]);
        assert_eq!(runtime.block_on(async { 7 }), 7);
    }
}
