//! Why something could not be done, as data: a code the screens put in the student's
//! language, with the few numbers and names the words need. `Display` gives the English
//! words, for the log and for IT's exports; no screen shows them.
//!
//! A leaf module: the network monitor, sign-in, the exam service and the events windows
//! receive all use these, and it depends on nothing of theirs.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Why the Exam Bank server cannot be used right now (or is slow), or why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Reason {
    /// No reply to a probe within `after_ms`.
    NoAnswer { after_ms: u32 },
    /// A request was not answered in time.
    TimedOut,
    /// Nothing reaches the server (no network, or no route to it).
    NoNetwork,
    /// The server's name cannot be looked up.
    NameNotFound,
    /// The server's computer refuses connections: Exam Bank is not running there.
    ServerNotRunning,
    /// The connection was cut while a request was under way.
    ConnectionCut,
    /// A reply was cut short.
    ReplyCut,
    /// A reply too large to be the server's (`limit` bytes allowed).
    ReplyTooLarge { limit: u32 },
    /// A reply that cannot be read as the server's (`status` is what it said).
    UnreadableReply { status: u16 },
    /// A certificate that is not the server's: the network intercepts secure connections.
    CertificateIntercepted,
    /// The network wants a sign-in of its own; `host` is its sign-in page when a redirect
    /// names it.
    PortalSignIn { host: Option<String> },
    /// The network shows a page of its own instead of the server's.
    PortalPage,
    /// A proxy answers instead of the server: it cannot reach it.
    ProxyAnswers,
    /// The server answers with an error of its own (`5xx`).
    ServerError { status: u16 },
    /// The server address in the settings cannot be used.
    BadAddress,
    /// Reachable but slow: about `rtt_ms` a round trip. Answers are still delivered.
    Slow { rtt_ms: u32 },
    /// The server asks to wait before trying again.
    ServerAsksToWait { retry_after_s: u32 },
    /// The server refused the request (`status`, and its code when it gave one).
    RefusedByServer {
        status: Option<u16>,
        server_code: Option<String>,
    },
    /// The computer's keychain could not be used.
    KeychainFailed,
    /// Signed out after `minutes` without a key or a click (a shared lab computer).
    IdleSignOut { minutes: u32 },
    /// The session was ended for safety: the sign-in was used in two places.
    SessionReused,
    /// The session was ended by the school (revoked on the server).
    SessionEndedBySchool,
    /// The session reached the end of its lifetime on the server (its absolute lifetime
    /// since sign-in, or its idle lifetime without a refresh).
    SessionExpired,
    /// The school asks the student for their password again (step-up): the session ended;
    /// their exam and saved work wait on this computer and continue after they sign in.
    StepUpRequired,
}

impl Reason {
    /// Every code, one of each (the test below checks each has words for the log).
    #[cfg(test)]
    fn examples() -> Vec<Self> {
        vec![
            Self::NoAnswer { after_ms: 1500 },
            Self::TimedOut,
            Self::NoNetwork,
            Self::NameNotFound,
            Self::ServerNotRunning,
            Self::ConnectionCut,
            Self::ReplyCut,
            Self::ReplyTooLarge { limit: 1024 },
            Self::UnreadableReply { status: 200 },
            Self::CertificateIntercepted,
            Self::PortalSignIn {
                host: Some("login.example".into()),
            },
            Self::PortalPage,
            Self::ProxyAnswers,
            Self::ServerError { status: 503 },
            Self::BadAddress,
            Self::Slow { rtt_ms: 300 },
            Self::ServerAsksToWait { retry_after_s: 30 },
            Self::RefusedByServer {
                status: Some(403),
                server_code: Some("invalid_client".into()),
            },
            Self::KeychainFailed,
            Self::IdleSignOut { minutes: 15 },
            Self::SessionReused,
            Self::SessionEndedBySchool,
            Self::SessionExpired,
            Self::StepUpRequired,
        ]
    }

    /// `Slow` for a smoothed round trip.
    pub fn slow(rtt: Duration) -> Self {
        Self::Slow {
            rtt_ms: u32::try_from(rtt.as_millis()).unwrap_or(u32::MAX),
        }
    }

    /// `NoAnswer` after a probe's timeout.
    pub fn no_answer(after: Duration) -> Self {
        Self::NoAnswer {
            after_ms: u32::try_from(after.as_millis()).unwrap_or(u32::MAX),
        }
    }
}

/// Seconds as people read them: one decimal under 10 s.
fn seconds(ms: u32) -> String {
    let s = f64::from(ms) / 1000.0;
    if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAnswer { after_ms } => write!(
                f,
                "the server does not answer (no reply within {})",
                seconds(*after_ms)
            ),
            Self::TimedOut => f.write_str("the server did not answer in time"),
            Self::NoNetwork => f.write_str("the server cannot be reached (no network?)"),
            Self::NameNotFound => {
                f.write_str("the server's name cannot be looked up (no network?)")
            }
            Self::ServerNotRunning => {
                f.write_str("the server computer refuses connections (Exam Bank is not running)")
            }
            Self::ConnectionCut => f.write_str("the connection to the server was cut"),
            Self::ReplyCut => f.write_str("the reply was cut short"),
            Self::ReplyTooLarge { limit } => write!(
                f,
                "the server's answer is larger than the {limit} bytes allowed"
            ),
            Self::UnreadableReply { status } => {
                write!(
                    f,
                    "the server answered {status} with a reply that cannot be read"
                )
            }
            Self::CertificateIntercepted => f.write_str(
                "this network intercepts secure connections (the certificate is not the \
                 server's); it may want you to sign in to it first",
            ),
            Self::PortalSignIn { host: Some(host) } => write!(
                f,
                "this network wants you to sign in to it first (its sign-in page is at {host})"
            ),
            Self::PortalSignIn { host: None } => {
                f.write_str("this network wants you to sign in to it first")
            }
            Self::PortalPage => f.write_str(
                "this network shows its own page instead of the Exam Bank server's; it may \
                 want you to sign in to it first",
            ),
            Self::ProxyAnswers => f.write_str(
                "a proxy on this network answers instead of the Exam Bank server: it cannot \
                 reach the server right now",
            ),
            Self::ServerError { status } => write!(f, "the server answers {status}"),
            Self::BadAddress => f.write_str("the server address is not usable"),
            Self::Slow { rtt_ms } => write!(
                f,
                "the connection to the server is slow (about {} a round trip); answers are \
                 still delivered",
                seconds(*rtt_ms)
            ),
            Self::ServerAsksToWait { retry_after_s } => {
                write!(f, "the server asks to wait {retry_after_s} s")
            }
            Self::RefusedByServer {
                status,
                server_code: code,
            } => write!(
                f,
                "the server refused the request ({} {})",
                status.map(|s| s.to_string()).unwrap_or_default(),
                code.as_deref().unwrap_or("no code")
            ),
            Self::KeychainFailed => f.write_str("the computer's keychain could not be used"),
            Self::IdleSignOut { minutes } => write!(
                f,
                "signed out after {minutes} minutes without activity; saved work goes on to \
                 the student's account"
            ),
            Self::SessionReused => f.write_str(
                "Your session was ended for safety because your sign-in was used in two places. \
                 Please sign in again.",
            ),
            Self::SessionEndedBySchool => {
                f.write_str("Your session was ended by your school. Please sign in again.")
            }
            Self::SessionExpired => f.write_str(
                "Your session expired: on shared computers a session lasts a limited time. \
                 Please sign in again; work saved on this computer waits here until you do.",
            ),
            Self::StepUpRequired => f.write_str(
                "Your school asks you to enter your password again. Your exam and saved \
                 answers are kept on this computer and continue after you sign in.",
            ),
        }
    }
}

/// Why the server refused something: its status and its stable machine code, which the
/// screens word in the student's language (its own English `detail` is for IT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Refusal {
    /// The server's status; none when nothing was received (e.g. an answer that could not be
    /// opened on this computer to be sent).
    pub status: Option<u16>,
    /// The server's machine code (`attempt_closed`, `invalid_answer`…), which the screen
    /// words in the student's language.
    pub code: Option<String>,
    /// The server's own words (its `detail`), or what went wrong here — for IT.
    pub detail: Option<String>,
}

impl Refusal {
    /// From a reply body (problem+json or an OAuth error object) and a note of this side's.
    pub fn from_reply(status: Option<u16>, body: Option<&str>, note: Option<&str>) -> Self {
        let reply = body
            .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
            .unwrap_or_default();
        let text = |key: &str| reply.get(key).and_then(|v| v.as_str()).map(str::to_string);
        Self {
            status: status.filter(|s| *s > 0),
            code: text("code").or_else(|| text("error")),
            detail: text("detail")
                .or_else(|| text("error_description"))
                .or_else(|| note.map(str::to_string)),
        }
    }

    /// A refusal decided on this side (no reply), with a code the screens word.
    pub fn local(code: &str, detail: impl Into<String>) -> Self {
        Self {
            status: None,
            code: Some(code.into()),
            detail: Some(detail.into()),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code.as_deref().unwrap_or("no code");
        match (self.status, &self.detail) {
            (Some(status), Some(detail)) => write!(f, "{status} {code}: {detail}"),
            (Some(status), None) => write!(f, "{status} {code}"),
            (None, Some(detail)) => write!(f, "{code}: {detail}"),
            (None, None) => f.write_str(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_english_words_for_the_log() {
        for reason in Reason::examples() {
            let words = reason.to_string();
            assert!(words.len() > 10, "{reason:?}: {words}");
        }
        assert!(Reason::slow(Duration::from_millis(310))
            .to_string()
            .contains("0.3 s"));
        assert!(Reason::no_answer(Duration::from_secs(12))
            .to_string()
            .contains("12 s"));
    }

    #[test]
    fn reasons_travel_as_codes() {
        let json = serde_json::to_value(Reason::PortalSignIn {
            host: Some("login.example".into()),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "portal_sign_in", "host": "login.example"})
        );
        assert_eq!(
            serde_json::to_value(Reason::TimedOut).unwrap(),
            serde_json::json!({"code": "timed_out"})
        );
    }

    #[test]
    fn a_refusal_reads_problem_json_and_oauth_errors() {
        let problem = Refusal::from_reply(
            Some(409),
            Some(r#"{"code":"attempt_closed","detail":"submitted"}"#),
            None,
        );
        assert_eq!(problem.code.as_deref(), Some("attempt_closed"));
        assert_eq!(problem.to_string(), "409 attempt_closed: submitted");
        let oauth = Refusal::from_reply(Some(400), Some(r#"{"error":"invalid_client"}"#), None);
        assert_eq!(oauth.code.as_deref(), Some("invalid_client"));
        let none = Refusal::from_reply(Some(0), None, Some("could not open"));
        assert_eq!(none.status, None);
        assert_eq!(none.detail.as_deref(), Some("could not open"));
    }
}
