//! One probe of the server, over the network: `/healthz`, and `/generate_204` when the
//! answer looks intercepted. What it found is a [`Probe`].

use std::time::{Duration, Instant};

use url::Url;

use super::tracker::Probe;
use crate::http::{judge_head, HttpClient};
use crate::reason::Reason;

/// Probes once, giving up after `timeout`.
pub async fn probe(http: &HttpClient, server: &Url, timeout: Duration) -> Probe {
    let Ok(health) = server.join("healthz") else {
        return Probe::ServerFailed(Reason::BadAddress);
    };
    let started = Instant::now();
    let response = http.send(http.client().get(health).timeout(timeout)).await;
    let rtt = started.elapsed();
    let response = match response {
        Ok(r) => r,
        Err(e) => return classify_error(&e, timeout),
    };
    let status = response.status();
    if status == reqwest::StatusCode::NO_CONTENT {
        return Probe::Ok { rtt };
    }
    if let Some(interception) = judge_head(status, response.headers()) {
        return if interception.is_portal() {
            Probe::Portal(interception.reason())
        } else {
            Probe::ServerFailed(interception.reason())
        };
    }
    if status.is_server_error() {
        return Probe::ServerFailed(Reason::ServerError {
            status: status.as_u16(),
        });
    }
    // Anything else may be a portal: confirm with the dedicated probe.
    let Ok(portal) = server.join("generate_204") else {
        return Probe::ServerFailed(Reason::ServerError {
            status: status.as_u16(),
        });
    };
    let left = timeout.saturating_sub(started.elapsed());
    match http.send(http.client().get(portal).timeout(left)).await {
        Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => {
            Probe::ServerFailed(Reason::ServerError {
                status: status.as_u16(),
            })
        }
        Ok(r) => match judge_head(r.status(), r.headers()) {
            Some(interception) => Probe::Portal(interception.reason()),
            None => Probe::Portal(Reason::PortalPage),
        },
        Err(e) => classify_error(&e, timeout),
    }
}

fn classify_error(e: &reqwest::Error, timeout: Duration) -> Probe {
    if e.is_timeout() {
        return Probe::Late { after: timeout };
    }
    let chain = {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text.to_lowercase()
    };
    if chain.contains("certificate") || chain.contains("unknownissuer") {
        // Someone else answered the TLS handshake: a portal or a filtering proxy.
        Probe::Portal(Reason::CertificateIntercepted)
    } else if chain.contains("refused") {
        Probe::ServerFailed(Reason::ServerNotRunning)
    } else if chain.contains("reset") || chain.contains("closed") || chain.contains("broken pipe") {
        Probe::ServerFailed(Reason::ConnectionCut)
    } else if chain.contains("dns") || chain.contains("resolve") || chain.contains("lookup") {
        Probe::Unreachable(Reason::NameNotFound)
    } else {
        Probe::Unreachable(Reason::NoNetwork)
    }
}
