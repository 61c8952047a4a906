//! The server, as the app meets it: one `GET /healthz` (204 from an Exam Bank server) through
//! the app's own HTTP client, the secure connection it needs, and this computer's clock
//! against the server's `Date`.
//!
//! A reply that is not the server's (a captive portal, a proxy) is told apart with the same
//! rule the app uses ([`crate::http::judge_head`]), so the doctor and the app never disagree
//! about whose reply it was.

use std::time::{Duration, Instant, SystemTime};

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use url::Url;

use super::{Finding, Level};
use crate::analytics::insights::Thresholds;
use crate::http::{describe, judge_head, HttpClient};

/// Beyond this the clock is a failure: certificates and the times in logs, reports and the
/// server's records stop lining up with what happened.
pub const CLOCK_SKEW_FAIL_S: f64 = 300.0;

/// When the clock is off enough to say so.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkewLimits {
    /// The insights' threshold (`analytics.insights.clock_skew_s`, 60 s unless IT changed it).
    pub warn_s: f64,
    pub fail_s: f64,
}

impl SkewLimits {
    pub fn from_thresholds(thresholds: &Thresholds) -> Self {
        Self {
            warn_s: thresholds.clock_skew_s,
            fail_s: CLOCK_SKEW_FAIL_S.max(thresholds.clock_skew_s),
        }
    }
}

/// Asks the server once, within `timeout`.
pub async fn check(server: Url, skew: SkewLimits, timeout: Duration) -> Vec<Finding> {
    let Ok(health) = server.join("healthz") else {
        return vec![Finding::new(
            "server.unreachable",
            Level::Fail,
            format!("The server address {server} cannot be used"),
        )
        .detail("Set server_url to the Exam Bank server's https address.")];
    };
    let http = match HttpClient::new(&format!("ExamBankDesktop/{} doctor", crate::VERSION)) {
        Ok(http) => http,
        Err(error) => {
            return vec![super::check_failed("server", &error.to_string())];
        }
    };
    let sent_at = SystemTime::now();
    let started = Instant::now();
    let reply = http
        .send(http.client().get(health.clone()).timeout(timeout))
        .await;
    let rtt = started.elapsed();
    match reply {
        Ok(response) => {
            let mut findings = reply_findings(&server, response.status(), response.headers(), rtt);
            if response.status() == StatusCode::NO_CONTENT {
                // The server's clock at the middle of the round trip.
                let local = sent_at + rtt / 2;
                findings.push(match server_date(response.headers()) {
                    Some(date) => clock_finding(offset_s(date, local), skew),
                    None => Finding::new(
                        "clock.unknown",
                        Level::Info,
                        "The server's time is not known: its reply has no Date header",
                    ),
                });
            } else {
                findings.push(clock_unknown());
            }
            findings
        }
        Err(error) => {
            let chain = error_chain(&error);
            let mut findings = vec![match certificate_problem(&chain) {
                Some(named) => tls_failure(&server, &named),
                None => unreachable(&server, &error, timeout, rtt),
            }];
            findings.push(clock_unknown());
            findings
        }
    }
}

fn clock_unknown() -> Finding {
    Finding::new(
        "clock.unknown",
        Level::Info,
        "This computer's clock was not compared with the server's",
    )
    .detail("The server did not answer as an Exam Bank server, so its time is not known.")
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a reply says about the server and the connection.
pub(super) fn reply_findings(
    server: &Url,
    status: StatusCode,
    headers: &HeaderMap,
    rtt: Duration,
) -> Vec<Finding> {
    if status == StatusCode::NO_CONTENT {
        let mut findings = vec![Finding::new(
            "server.ok",
            Level::Ok,
            format!("The server answers at {server} ({} ms)", ms(rtt)),
        )
        .with("url", server.as_str())
        .with("status", status.as_u16())
        .with("rtt_ms", ms(rtt))];
        findings.push(if server.scheme() == "https" {
            Finding::new(
                "tls.ok",
                Level::Ok,
                "The secure connection was made and the server's certificate is trusted",
            )
            .with("handshake", "ok")
        } else {
            Finding::new(
                "tls.not_used",
                Level::Info,
                "Plain HTTP: allowed only because the server is on this computer",
            )
            .detail("Any other server must use https; the settings refuse plain HTTP to it.")
        });
        return findings;
    }
    let evidence = |f: Finding| {
        f.with("url", server.as_str())
            .with("status", status.as_u16())
            .with(
                "content_type",
                headers
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
            )
    };
    if let Some(interception) = judge_head(status, headers) {
        return vec![evidence(
            Finding::new(
                "server.intercepted",
                Level::Fail,
                format!(
                    "Something else answers in the server's place: {}",
                    interception.reason()
                ),
            )
            .detail(if interception.is_portal() {
                "The network wants a sign-in of its own (a captive portal). Sign this computer in \
                 to the network, or ask the network's administrator to let it reach the Exam \
                 Bank server directly. Answers are still saved on this computer meanwhile."
            } else {
                "A proxy or filter answers instead of the server. Let this computer reach the \
                 Exam Bank server directly (allow its address in the proxy or filter)."
            })
            .with("portal_host", interception.portal_host.as_deref()),
        )];
    }
    if status.is_server_error() {
        return vec![evidence(
            Finding::new(
                "server.error",
                Level::Fail,
                format!("The server answers with an error of its own ({status})"),
            )
            .detail(
                "The Exam Bank server is up but failing. Its administrator should look at its \
                 log; answers wait on this computer meanwhile.",
            ),
        )];
    }
    vec![evidence(
        Finding::new(
            "server.unexpected_reply",
            Level::Fail,
            format!("Something answers at {server}, but not as an Exam Bank server ({status})"),
        )
        .detail(
            "Check server_url in the configuration: it must be the Exam Bank server's address \
             (its /healthz answers 204).",
        ),
    )]
}

fn unreachable(server: &Url, error: &reqwest::Error, timeout: Duration, rtt: Duration) -> Finding {
    let reason = if error.is_timeout() {
        crate::reason::Reason::no_answer(timeout)
    } else {
        describe(error)
    };
    let code = serde_json::to_value(&reason)
        .ok()
        .and_then(|v| v.get("code").cloned())
        .unwrap_or(serde_json::Value::Null);
    Finding::new(
        "server.unreachable",
        Level::Fail,
        format!("The server cannot be reached at {server}"),
    )
    .detail(format!(
        "{}.\nAnswers are still saved on this computer and sent once the server can be reached. \
         Check this computer's network connection, that server_url is the right address, and \
         that the server is running.",
        capitalised(&reason.to_string())
    ))
    .with("url", server.as_str())
    .with("reason", code)
    .with("after_ms", ms(rtt))
}

fn tls_failure(server: &Url, named: &str) -> Finding {
    let lower = named.to_lowercase();
    let why = if lower.contains("expired") || lower.contains("notvalidyet") {
        "The certificate is outside its validity dates: it has expired, or this computer's \
         clock is wrong. Check the clock first."
    } else if lower.contains("notvalidforname") || lower.contains("name") {
        "The certificate is for another name than the server's: check server_url, or the \
         server's certificate."
    } else if lower.contains("unknownissuer") || lower.contains("issuer") {
        "The certificate is signed by an authority this computer does not trust: a filtering \
         proxy may be intercepting secure connections (let the server through it), or the \
         server uses the school's own authority, which must be installed on this computer."
    } else {
        "The secure connection could not be made. A filtering proxy may be intercepting it."
    };
    Finding::new(
        "tls.certificate",
        Level::Fail,
        format!("The server's certificate is not trusted: {named}"),
    )
    .detail(format!(
        "{why}\nNothing is sent until this is fixed; answers are still saved on this computer."
    ))
    .with("url", server.as_str())
    .with("error", named)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Every message of an error and its causes, outermost first.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut chain = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain
}

/// The certificate error named in an error chain (the innermost message about it), if the
/// failure was the certificate's.
pub(super) fn certificate_problem(chain: &[String]) -> Option<String> {
    chain
        .iter()
        .rev()
        .find(|m| {
            let lower = m.to_lowercase();
            lower.contains("certificate") || lower.contains("unknownissuer")
        })
        .cloned()
}

fn server_date(headers: &HeaderMap) -> Option<SystemTime> {
    let text = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    httpdate::parse_http_date(text).ok()
}

/// How far the server's clock is ahead of this computer's (negative: behind), in seconds.
fn offset_s(server: SystemTime, local: SystemTime) -> f64 {
    match server.duration_since(local) {
        Ok(ahead) => ahead.as_secs_f64(),
        Err(behind) => -behind.duration().as_secs_f64(),
    }
}

/// The clock's finding for an offset (server minus this computer). The `Date` header counts
/// whole seconds, so up to a second of the offset is its rounding.
pub(super) fn clock_finding(offset_s: f64, limits: SkewLimits) -> Finding {
    let off = offset_s.abs();
    let direction = if offset_s > 0.0 { "behind" } else { "ahead of" };
    let level = if off > limits.fail_s {
        Level::Fail
    } else if off > limits.warn_s {
        Level::Warn
    } else {
        Level::Ok
    };
    let rounded = off.round();
    let finding =
        if level == Level::Ok {
            Finding::new(
                "clock.ok",
                Level::Ok,
                format!("This computer's clock agrees with the server's (within {rounded:.0} s)"),
            )
        } else {
            Finding::new(
            "clock.skew",
            level,
            format!("This computer's clock is {} {direction} the server's", span(off)),
        )
        .detail(
            "Exam times follow the server's clock, but certificates, logs and reports use this \
             computer's. Turn on automatic time (NTP) and point it at the school's time server.",
        )
        };
    finding
        .with("offset_s", (offset_s * 10.0).round() / 10.0)
        .with("warn_beyond_s", limits.warn_s)
        .with("fail_beyond_s", limits.fail_s)
}

/// A duration in seconds as people read it.
fn span(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::tests::documented;

    const LIMITS: SkewLimits = SkewLimits {
        warn_s: 60.0,
        fail_s: 300.0,
    };

    #[test]
    fn the_clock_warns_past_a_minute_and_fails_past_five() {
        let table = [
            (0.0, "clock.ok", Level::Ok),
            (59.0, "clock.ok", Level::Ok),
            (-60.0, "clock.ok", Level::Ok),
            (61.0, "clock.skew", Level::Warn),
            (-299.0, "clock.skew", Level::Warn),
            (301.0, "clock.skew", Level::Fail),
            (-86_400.0, "clock.skew", Level::Fail),
        ];
        for (offset, code, level) in table {
            let finding = clock_finding(offset, LIMITS);
            documented(&finding);
            assert_eq!(
                (finding.code.as_str(), finding.level),
                (code, level),
                "{offset}"
            );
        }
        assert!(clock_finding(-400.0, LIMITS)
            .title
            .contains("6 min ahead of"));
        assert!(clock_finding(90.0, LIMITS).title.contains("90 s behind"));
    }

    #[test]
    fn the_configured_skew_threshold_is_the_warning_one() {
        let thresholds = Thresholds {
            clock_skew_s: 30.0,
            ..Thresholds::default()
        };
        let limits = SkewLimits::from_thresholds(&thresholds);
        assert_eq!(clock_finding(45.0, limits).level, Level::Warn);
        assert_eq!(SkewLimits::from_thresholds(&Thresholds::default()), LIMITS);
    }

    #[test]
    fn replies_are_the_servers_a_portals_a_proxys_or_an_error() {
        let http: Url = "http://127.0.0.1:8787/".parse().unwrap();
        let https: Url = "https://exams.example/".parse().unwrap();
        let mut html = HeaderMap::new();
        html.insert(reqwest::header::CONTENT_TYPE, "text/html".parse().unwrap());
        let mut redirect = HeaderMap::new();
        redirect.insert(
            reqwest::header::LOCATION,
            "http://login.wifi.example/".parse().unwrap(),
        );
        let empty = HeaderMap::new();
        let table: Vec<(&Url, u16, &HeaderMap, Vec<&str>)> = vec![
            (&http, 204, &empty, vec!["server.ok", "tls.not_used"]),
            (&https, 204, &empty, vec!["server.ok", "tls.ok"]),
            (&https, 302, &redirect, vec!["server.intercepted"]),
            (&https, 200, &html, vec!["server.intercepted"]),
            (&https, 503, &empty, vec!["server.error"]),
            (&https, 404, &empty, vec!["server.unexpected_reply"]),
        ];
        for (url, status, headers, codes) in table {
            let findings = reply_findings(
                url,
                StatusCode::from_u16(status).unwrap(),
                headers,
                Duration::from_millis(3),
            );
            for f in &findings {
                documented(f);
            }
            let got: Vec<&str> = findings.iter().map(|f| f.code.as_str()).collect();
            assert_eq!(got, codes, "{url} {status}");
        }
    }

    #[test]
    fn a_certificate_error_is_named_from_the_innermost_cause() {
        let chain = vec![
            "error sending request for url (https://exams.example/healthz)".to_string(),
            "client error (Connect)".to_string(),
            "invalid peer certificate: UnknownIssuer".to_string(),
        ];
        let named = certificate_problem(&chain).unwrap();
        assert_eq!(named, "invalid peer certificate: UnknownIssuer");
        let finding = tls_failure(&"https://exams.example/".parse().unwrap(), &named);
        documented(&finding);
        assert!(
            finding.detail.contains("does not trust"),
            "{}",
            finding.detail
        );
        assert!(tls_failure(
            &"https://x.example/".parse().unwrap(),
            "invalid peer certificate: Expired"
        )
        .detail
        .contains("clock"));
        assert_eq!(
            certificate_problem(&["tcp connect error".into(), "Connection refused".into()]),
            None
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable_at_once() {
        // A port just closed: refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url: Url = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let started = Instant::now();
        let findings = check(url, LIMITS, Duration::from_secs(3)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        for f in &findings {
            documented(f);
        }
        assert_eq!(findings[0].code, "server.unreachable");
        assert_eq!(findings[0].evidence["reason"], "server_not_running");
        assert_eq!(findings[1].code, "clock.unknown");
    }
}
