//! Sending scheduled reports by e-mail over SMTP (lettre, with rustls: no OpenSSL to install).
//!
//! Why an outbox: a mail server that is down must not hold up the schedule, nor be forgotten.
//! Each run hands its letter (the report files attached) to [`Outbox`], one background task
//! that sends letters in order; a failed send is logged — which files, to which server, why —
//! and tried again after a delay that doubles each time ([`Backoff`]), until it goes or the
//! server stops. A refusal the mail server calls permanent (a 5xx, such as an unknown
//! recipient) is logged and not tried again. The files are in the reports folder either way.
//!
//! Secrets: the SMTP password is never on a command line or in a URL (a URL with a user or
//! password is refused, [`SmtpServer`]), and is held as a [`Secret`] that logs as
//! `<redacted>`; it is only ever sent over TLS (see [`MailSettings::check`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{mpsc, watch};

/// A password: shown as `<redacted>`, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text (`?tls=none`): a relay on this computer or a test sink only.
    None,
    /// STARTTLS when the server offers it (`smtp://`, the default).
    Opportunistic,
    /// STARTTLS or nothing (`?tls=required`).
    Required,
    /// TLS from the first byte (`smtps://`).
    Wrapper,
}

/// Where mail goes: `smtp://host[:port][?tls=none|opportunistic|required]` (port 25 by
/// default; 587 is the usual submission port) or `smtps://host[:port]` (465).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
}

impl fmt::Display for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, tls) = match self.tls {
            TlsMode::None => ("smtp", "no TLS"),
            TlsMode::Opportunistic => ("smtp", "STARTTLS if offered"),
            TlsMode::Required => ("smtp", "STARTTLS required"),
            TlsMode::Wrapper => ("smtps", "TLS"),
        };
        write!(f, "{scheme}://{}:{} ({tls})", self.host, self.port)
    }
}

/// Why the mail settings cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("--smtp-url: {0}")]
    Url(String),
    #[error("{0}")]
    Settings(String),
}

impl FromStr for SmtpServer {
    type Err = MailError;

    fn from_str(text: &str) -> Result<Self, MailError> {
        let bad = |why: &str| MailError::Url(why.to_string());
        let url = url::Url::parse(text).map_err(|e| MailError::Url(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "no user or password in the URL (command lines and logs are read by others): \
                 use --smtp-username and EXAM_SERVER_SMTP_PASSWORD or --smtp-password-file",
            ));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("a host is required, e.g. smtp://mail.example.edu:587"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls_query = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (tls, port) = match (url.scheme(), tls_query.as_deref()) {
            ("smtps", None) => (TlsMode::Wrapper, 465),
            ("smtps", Some(_)) => return Err(bad("smtps:// is TLS from the start; no ?tls=")),
            ("smtp", None | Some("opportunistic")) => (TlsMode::Opportunistic, 25),
            ("smtp", Some("required")) => (TlsMode::Required, 25),
            ("smtp", Some("none")) => (TlsMode::None, 25),
            ("smtp", Some(other)) => {
                return Err(MailError::Url(format!(
                    "tls `{other}` is not none, opportunistic or required"
                )))
            }
            (other, _) => {
                return Err(MailError::Url(format!(
                    "the scheme `{other}` is not smtp or smtps"
                )))
            }
        };
        Ok(Self {
            host,
            port: url.port().unwrap_or(port),
            tls,
        })
    }
}

/// How to send the reports by e-mail.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub server: SmtpServer,
    pub from: String,
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Certificates (PEM) to trust besides the usual public ones: an institution's own CA.
    pub ca_pem: Option<Vec<u8>>,
    /// How long one connection may take at each step.
    pub timeout: Duration,
}

impl MailSettings {
    pub fn new(server: SmtpServer, from: impl Into<String>, to: Vec<String>) -> Self {
        Self {
            server,
            from: from.into(),
            to,
            username: None,
            password: None,
            ca_pem: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// Checks at start what would otherwise fail at the first send.
    pub fn check(&self) -> Result<(), MailError> {
        let settings = |s: String| MailError::Settings(s);
        self.from.parse::<Mailbox>().map_err(|e| {
            settings(format!(
                "--report-mail-from `{}` is not an address: {e}",
                self.from
            ))
        })?;
        if self.to.is_empty() {
            return Err(settings(
                "--smtp-url needs at least one --report-mail-to".into(),
            ));
        }
        for to in &self.to {
            to.parse::<Mailbox>()
                .map_err(|e| settings(format!("--report-mail-to `{to}` is not an address: {e}")))?;
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(settings("an SMTP password needs --smtp-username".into()));
        }
        if self.username.is_some()
            && matches!(self.server.tls, TlsMode::None | TlsMode::Opportunistic)
        {
            return Err(settings(
                "SMTP credentials are only sent over TLS: use smtp://…?tls=required or smtps://"
                    .into(),
            ));
        }
        self.transport().map(|_| ())
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
        let tls = |server: &SmtpServer| -> Result<TlsParameters, MailError> {
            let mut builder = TlsParameters::builder(server.host.clone());
            if let Some(pem) = &self.ca_pem {
                let cert = Certificate::from_pem(pem)
                    .map_err(|e| MailError::Settings(format!("--smtp-ca-file: {e}")))?;
                builder = builder.add_root_certificate(cert);
            }
            builder
                .build_rustls()
                .map_err(|e| MailError::Settings(format!("TLS for {server}: {e}")))
        };
        let mode = match self.server.tls {
            TlsMode::None => Tls::None,
            TlsMode::Opportunistic => Tls::Opportunistic(tls(&self.server)?),
            TlsMode::Required => Tls::Required(tls(&self.server)?),
            TlsMode::Wrapper => Tls::Wrapper(tls(&self.server)?),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.server.host.clone())
                .port(self.server.port)
                .tls(mode)
                .timeout(Some(self.timeout));
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(builder.build())
    }
}

/// A file attached to a letter.
#[derive(Debug, Clone)]
pub struct File {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// One run's e-mail.
#[derive(Debug, Clone)]
pub struct Letter {
    pub subject: String,
    pub text: String,
    pub files: Vec<File>,
}

impl Letter {
    fn names(&self) -> String {
        self.files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn message(&self, settings: &MailSettings) -> Result<Message, String> {
        let mut builder = Message::builder()
            .from(settings.from.parse().map_err(|e| format!("from: {e}"))?)
            .subject(self.subject.clone());
        for to in &settings.to {
            builder = builder.to(to.parse().map_err(|e| format!("to: {e}"))?);
        }
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(self.text.clone()));
        for file in &self.files {
            let content_type =
                ContentType::parse(file.content_type).map_err(|e| format!("{}: {e}", file.name))?;
            parts = parts.singlepart(
                Attachment::new(file.name.clone()).body(file.bytes.clone(), content_type),
            );
        }
        builder.multipart(parts).map_err(|e| e.to_string())
    }
}

/// Delays between tries: `first`, then doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(60),
            max: Duration::from_secs(30 * 60),
        }
    }
}

/// Letters waiting at most; beyond, a new one is dropped (its files are in the folder).
pub const QUEUE: usize = 32;

/// Hands letters to the sending task.
#[derive(Debug, Clone)]
pub struct Outbox {
    letters: mpsc::Sender<Letter>,
}

impl Outbox {
    /// Starts the sending task; it ends when `stop` turns true or its sender is dropped.
    pub fn start(
        settings: MailSettings,
        backoff: Backoff,
        stop: watch::Receiver<bool>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (letters, queue) = mpsc::channel(QUEUE);
        let task = tokio::spawn(send_all(settings, backoff, queue, stop));
        (Self { letters }, task)
    }

    /// Queues a letter; never waits.
    pub fn post(&self, letter: Letter) {
        if let Err(e) = self.letters.try_send(letter) {
            let letter = match e {
                mpsc::error::TrySendError::Full(l) | mpsc::error::TrySendError::Closed(l) => l,
            };
            tracing::error!(
                files = %letter.names(),
                "the report mail was not queued: {QUEUE} letters are waiting already \
                 (the files are in the reports folder)"
            );
        }
    }
}

/// Waits `delay` unless `stop` comes first; whether to go on.
async fn wait(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        _ = stop.wait_for(|stopped| *stopped) => false,
    }
}

async fn send_all(
    settings: MailSettings,
    backoff: Backoff,
    mut queue: mpsc::Receiver<Letter>,
    mut stop: watch::Receiver<bool>,
) {
    let transport = match settings.transport() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "report mail is off: the SMTP settings do not work");
            return;
        }
    };
    let server = settings.server.to_string();
    loop {
        let letter = tokio::select! {
            letter = queue.recv() => match letter {
                Some(letter) => letter,
                None => return,
            },
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let message = match letter.message(&settings) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(files = %letter.names(), error = %e, "the report mail could not be written");
                continue;
            }
        };
        let mut delay = backoff.first;
        loop {
            match transport.send(message.clone()).await {
                Ok(_) => {
                    tracing::info!(
                        files = %letter.names(), to = %settings.to.join(", "), smtp = %server,
                        "report mail sent"
                    );
                    break;
                }
                Err(e) if e.is_permanent() => {
                    tracing::error!(
                        files = %letter.names(), smtp = %server, error = %e,
                        "the mail server refused the report mail for good; not trying again \
                         (the files are in the reports folder)"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(
                        files = %letter.names(), smtp = %server, error = %e,
                        retry_in_s = delay.as_secs_f64(),
                        "the report mail could not be sent; trying again"
                    );
                    if !wait(delay, &mut stop).await {
                        tracing::warn!(files = %letter.names(), "stopping with a report mail unsent");
                        return;
                    }
                    delay = (delay * 2).min(backoff.max);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_say_how_to_connect_and_keep_secrets_out() {
        type Want = Result<(&'static str, u16, TlsMode), &'static str>;
        let table: &[(&str, Want)] = &[
            (
                "smtp://127.0.0.1:2525",
                Ok(("127.0.0.1", 2525, TlsMode::Opportunistic)),
            ),
            (
                "smtp://mail.example.edu",
                Ok(("mail.example.edu", 25, TlsMode::Opportunistic)),
            ),
            (
                "smtp://mail.example.edu:587?tls=required",
                Ok(("mail.example.edu", 587, TlsMode::Required)),
            ),
            (
                "smtp://localhost:25?tls=none",
                Ok(("localhost", 25, TlsMode::None)),
            ),
            (
                "smtps://mail.example.edu",
                Ok(("mail.example.edu", 465, TlsMode::Wrapper)),
            ),
            (
                "smtp://[::1]:2525",
                Ok(("::1", 2525, TlsMode::Opportunistic)),
            ),
            (
                "smtp://user:hunter2@mail.example.edu",
                Err("no user or password"),
            ),
            ("smtp://mail.example.edu?tls=maybe", Err("tls `maybe`")),
            ("http://mail.example.edu", Err("scheme `http`")),
            ("smtps://mail.example.edu?tls=none", Err("no ?tls=")),
            ("mail.example.edu", Err("--smtp-url")),
        ];
        for (url, want) in table {
            let got = url.parse::<SmtpServer>();
            match (got, want) {
                (Ok(s), Ok((host, port, tls))) => {
                    assert_eq!(
                        (s.host.as_str(), s.port, s.tls),
                        (*host, *port, *tls),
                        "{url}"
                    )
                }
                (Err(e), Err(said)) => {
                    let e = e.to_string();
                    assert!(e.contains(said), "{url}: {e}");
                    assert!(!e.contains("hunter2"), "{url}: {e}");
                }
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn settings_are_checked_before_the_first_send() {
        let server = |url: &str| url.parse::<SmtpServer>().unwrap_or_else(|e| panic!("{e}"));
        let base = MailSettings::new(
            server("smtp://127.0.0.1:2525"),
            "Exam Bank <reports@example.edu>",
            vec!["it@example.edu".into()],
        );
        assert_eq!(base.check(), Ok(()));
        let mut no_to = base.clone();
        no_to.to.clear();
        let mut bad_from = base.clone();
        bad_from.from = "not an address".into();
        let mut plain_password = base.clone();
        plain_password.username = Some("reports".into());
        plain_password.password = Some(Secret::new("hunter2"));
        let mut tls_password = plain_password.clone();
        tls_password.server = server("smtp://127.0.0.1:2525?tls=required");
        for (case, settings, said) in [
            ("no recipient", &no_to, Some("--report-mail-to")),
            ("bad from", &bad_from, Some("--report-mail-from")),
            (
                "password in clear",
                &plain_password,
                Some("only sent over TLS"),
            ),
            ("password over TLS", &tls_password, None),
        ] {
            match (settings.check(), said) {
                (Ok(()), None) => {}
                (Err(e), Some(said)) => assert!(e.to_string().contains(said), "{case}: {e}"),
                (got, _) => panic!("{case}: {got:?}"),
            }
        }
        assert!(!format!("{tls_password:?}").contains("hunter2"));
    }
}
