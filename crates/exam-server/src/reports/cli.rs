//! The server's command-line flags for scheduled reports, kept beside the reports (flattened
//! into `exam-server`'s own) so that the binary only hands them over.

use std::path::PathBuf;

use anyhow::Context;

use super::mail::{MailSettings, Secret, SmtpServer};
use super::schedule::{self, Job, Settings};

/// The environment variable that holds the SMTP password (never a flag: command lines can be
/// read by other users of the computer).
pub const SMTP_PASSWORD_ENV: &str = "EXAM_SERVER_SMTP_PASSWORD";

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReportArgs {
    /// A scheduled report, as a crontab line: "MIN HOUR DOM MON DOW REPORT [FORMATS]
    /// [RANGE]", e.g. "0 18 * * 1-5 exam:midterm-2026 pdf,csv" (repeatable; local time;
    /// REPORT is exam:ID, lab:NAME or security; FORMATS json,csv,pdf; RANGE day, week or exam).
    #[arg(long = "report-schedule", value_name = "LINE")]
    pub schedules: Vec<String>,
    /// A file of such lines, one per line (`#` comments), like a crontab.
    #[arg(long, env = "EXAM_SERVER_REPORT_SCHEDULE_FILE", value_name = "PATH")]
    pub report_schedule_file: Option<PathBuf>,
    /// Where scheduled reports are written (made if missing).
    #[arg(long, env = "EXAM_SERVER_REPORTS_DIR", value_name = "PATH")]
    pub reports_dir: Option<PathBuf>,
    /// Mail each scheduled report through this server: smtp://HOST[:PORT] (STARTTLS when
    /// offered; add ?tls=required to insist, ?tls=none for a local relay) or smtps://HOST[:PORT].
    /// The password, if any, comes from EXAM_SERVER_SMTP_PASSWORD or --smtp-password-file.
    #[arg(long, env = "EXAM_SERVER_SMTP_URL", value_name = "URL")]
    pub smtp_url: Option<String>,
    /// The SMTP user name, when the mail server asks for one.
    #[arg(
        long,
        env = "EXAM_SERVER_SMTP_USERNAME",
        value_name = "USER",
        requires = "smtp_url"
    )]
    pub smtp_username: Option<String>,
    /// A file holding the SMTP password (its first line).
    #[arg(
        long,
        env = "EXAM_SERVER_SMTP_PASSWORD_FILE",
        value_name = "PATH",
        requires = "smtp_username"
    )]
    pub smtp_password_file: Option<PathBuf>,
    /// Certificates (PEM) to trust for the mail server besides the public ones.
    #[arg(
        long,
        env = "EXAM_SERVER_SMTP_CA_FILE",
        value_name = "PATH",
        requires = "smtp_url"
    )]
    pub smtp_ca_file: Option<PathBuf>,
    /// The reports' sender, e.g. "Exam Bank <reports@school.example>".
    #[arg(
        long,
        env = "EXAM_SERVER_REPORT_MAIL_FROM",
        value_name = "ADDRESS",
        requires = "smtp_url"
    )]
    pub report_mail_from: Option<String>,
    /// A recipient of the reports (repeatable).
    #[arg(long = "report-mail-to", value_name = "ADDRESS", requires = "smtp_url")]
    pub report_mail_to: Vec<String>,
}

impl ReportArgs {
    /// The settings these flags describe (read files, parse lines; the rest is checked when
    /// the server opens, [`Settings::check`]).
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut jobs: Vec<Job> = self
            .schedules
            .iter()
            .map(|line| {
                line.parse()
                    .map_err(|e| anyhow::anyhow!("--report-schedule {e}"))
            })
            .collect::<anyhow::Result<_>>()?;
        if let Some(path) = &self.report_schedule_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            jobs.extend(
                schedule::parse_file(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            );
        }
        let mail = match &self.smtp_url {
            None => None,
            Some(url) => {
                let server: SmtpServer = url.parse()?;
                let from = self
                    .report_mail_from
                    .clone()
                    .context("--smtp-url needs --report-mail-from, the reports' sender")?;
                let mut mail = MailSettings::new(server, from, self.report_mail_to.clone());
                mail.username = self.smtp_username.clone();
                mail.password = match &self.smtp_password_file {
                    Some(path) => Some(Secret::new(
                        std::fs::read_to_string(path)
                            .with_context(|| format!("cannot read {}", path.display()))?
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    )),
                    None => std::env::var(SMTP_PASSWORD_ENV)
                        .ok()
                        .filter(|p| !p.is_empty())
                        .map(Secret::new),
                };
                mail.ca_pem = match &self.smtp_ca_file {
                    Some(path) => Some(
                        std::fs::read(path)
                            .with_context(|| format!("cannot read {}", path.display()))?,
                    ),
                    None => None,
                };
                Some(mail)
            }
        };
        if mail.is_some() && jobs.is_empty() {
            tracing::warn!("--smtp-url is set but no report is scheduled: nothing will be mailed");
        }
        Ok(Settings {
            jobs,
            dir: self.reports_dir.clone(),
            mail,
            ..Settings::default()
        })
    }
}
