//! Counters for `GET /v1/admin/stats`: what an operator (and a test) needs to see — and,
//! minute by minute for the last day ([`window`]), the requests' outcomes and latencies that
//! the fleet view shows beside the apps' figures.

pub mod window;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

pub struct Stats {
    /// "METHOD /route/template" → status → count.
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    token_refreshes: AtomicU64,
    reuse_detections: AtomicU64,
    idempotent_replays: AtomicU64,
    rate_limited: AtomicU64,
    logins: AtomicU64,
    login_failures: AtomicU64,
    lockouts: AtomicU64,
    sign_ins_busy: AtomicU64,
    answers_applied: AtomicU64,
    window: Mutex<window::Window>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            requests: Mutex::default(),
            token_refreshes: AtomicU64::default(),
            reuse_detections: AtomicU64::default(),
            idempotent_replays: AtomicU64::default(),
            rate_limited: AtomicU64::default(),
            logins: AtomicU64::default(),
            login_failures: AtomicU64::default(),
            lockouts: AtomicU64::default(),
            sign_ins_busy: AtomicU64::default(),
            answers_applied: AtomicU64::default(),
            window: Mutex::new(window::Window::new(crate::now().timestamp_millis())),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    /// Counts a request by method, route template and status. Methods outside HTTP's
    /// standard ones count as `OTHER` and unmatched paths as one route, so requests nobody
    /// authenticated cannot grow the map.
    pub fn request(&self, method: &str, route: &str, status: u16) {
        const METHODS: [&str; 9] = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
        ];
        let method = METHODS
            .iter()
            .find(|m| **m == method)
            .copied()
            .unwrap_or("OTHER");
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests
            .entry(format!("{method} {route}"))
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    /// Counts a request that was answered `status` after `elapsed`, in this minute's figures.
    pub fn finished(&self, status: u16, elapsed: std::time::Duration) {
        self.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(crate::now().timestamp_millis(), status, elapsed);
    }

    /// The requests of the minutes starting in `[from_ms, to_ms)`, as far as the last day
    /// since the server started covers them.
    pub fn figures(&self, from_ms: i64, to_ms: i64) -> window::Figures {
        self.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .figures(from_ms, to_ms, crate::now().timestamp_millis())
    }

    pub fn refresh(&self) {
        bump(&self.token_refreshes);
    }
    pub fn reuse_detected(&self) {
        bump(&self.reuse_detections);
    }
    pub fn replay(&self) {
        bump(&self.idempotent_replays);
    }
    pub fn rate_limited(&self) {
        bump(&self.rate_limited);
    }
    pub fn login(&self) {
        bump(&self.logins);
    }
    pub fn login_failure(&self) {
        bump(&self.login_failures);
    }
    pub fn lockout(&self) {
        bump(&self.lockouts);
    }
    /// A sign-in answered 503: too many password checks at once.
    pub fn busy(&self) {
        bump(&self.sign_ins_busy);
    }
    pub fn answer_applied(&self) {
        bump(&self.answers_applied);
    }

    pub fn snapshot(&self) -> Value {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "requests": requests,
            "token_refreshes": get(&self.token_refreshes),
            "refresh_reuse_detections": get(&self.reuse_detections),
            "idempotent_replays": get(&self.idempotent_replays),
            "rate_limited": get(&self.rate_limited),
            "logins": get(&self.logins),
            "login_failures": get(&self.login_failures),
            "lockouts": get(&self.lockouts),
            "sign_ins_busy": get(&self.sign_ins_busy),
            "answers_applied": get(&self.answers_applied),
        })
    }
}
