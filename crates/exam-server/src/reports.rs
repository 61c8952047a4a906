//! Reports for examiners, proctors and IT: what happened in an exam, how a lab's machines
//! fared, and the security alerts of a period — as JSON, CSV or PDF, asked for through the
//! admin API (`GET /v1/admin/reports/{kind}`) or written on a schedule into a folder and sent
//! by e-mail ([`schedule`], [`mail`]).
//!
//! Why one model rendered three ways: the three files of one report must say the same thing.
//! [`build`] reads the database once into a [`model::Report`] (typed; the JSON is its
//! serialisation), whose [`model::Report::sheet`] is the one tabular view both the CSV and the
//! PDF are drawn from. The figures are computed by pure functions over rows ([`model`]) so the
//! golden tests can pin them; the SQL is in [`query`]. Rules that exist elsewhere are not
//! written again: an attempt's lost time is [`crate::security::time_lost`]'s ledger, the same
//! as the time-lost endpoint's.
//!
//! Invariants:
//! - A report is a function of the database, the request and `now` (the time it is made):
//!   the same three give the same bytes (the PDF included: it carries no creation date).
//! - Times are UTC, as everywhere in the API; a period is `[from, to)`.
//! - A bad parameter is 400 `invalid_query` whose problem body names it (`parameter`).

pub mod cli;
pub mod cron;
pub mod csv;
pub mod mail;
pub mod model;
pub mod pdf;
pub mod query;
pub mod schedule;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rusqlite::Connection;
use serde_json::json;

use crate::problem::{ApiError, Download, Reply};
use crate::routes::Ctx;

/// What a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One exam: attempts, delivery timeline, late submissions, outages, the fair-time ledger.
    Exam,
    /// One lab (a configured lab name, or a subnet): machines, outages, versions, readiness.
    Lab,
    /// The security alerts of the period.
    Security,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Exam, Kind::Lab, Kind::Security];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Exam => "exam",
            Kind::Lab => "lab",
            Kind::Security => "security",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A report's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Json,
    Csv,
    Pdf,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Json, Format::Csv, Format::Pdf];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Pdf => "pdf",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Pdf => "application/pdf",
        }
    }
}

/// How the period is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Range {
    /// The 24 hours up to `to` (default now).
    Day,
    /// The 7 days up to `to` (default now).
    Week,
    /// An exam report only: the exam's window, `[opens_at, closes_at)`, with every attempt.
    Exam,
    /// `[from, to)` as given (`to` default now), at most [`MAX_DAYS`] days.
    Custom,
}

impl Range {
    pub const ALL: [Range; 4] = [Range::Day, Range::Week, Range::Exam, Range::Custom];

    pub fn name(self) -> &'static str {
        match self {
            Range::Day => "day",
            Range::Week => "week",
            Range::Exam => "exam",
            Range::Custom => "custom",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// The longest custom period, in days.
pub const MAX_DAYS: i64 = 366;

/// The period a report covers: `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub range: Range,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// What is asked for: the kind, its subject (the exam's id, the lab's name), and the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
    pub subject: Option<String>,
    pub range: Option<Range>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Request {
    /// A report of `kind` about `subject` over `range` (its default when `None`), up to now.
    pub fn new(kind: Kind, subject: Option<String>, range: Option<Range>) -> Self {
        Self {
            kind,
            subject,
            range,
            from: None,
            to: None,
        }
    }
}

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A parameter of the request is wrong; `parameter` names it.
    #[error("{detail}")]
    BadParameter {
        parameter: &'static str,
        detail: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("cannot read the database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("cannot draw the PDF: {0}")]
    Pdf(#[from] pdf::PdfError),
    #[error("cannot write the JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl ReportError {
    pub fn bad(parameter: &'static str, detail: impl Into<String>) -> Self {
        Self::BadParameter {
            parameter,
            detail: detail.into(),
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(error: ReportError) -> Self {
        match error {
            ReportError::BadParameter { parameter, detail } => {
                ApiError::bad_request("invalid_query", detail)
                    .with_extra(json!({ "parameter": parameter }))
            }
            ReportError::NotFound(detail) => ApiError::not_found(detail),
            ReportError::Db(e) => e.into(),
            ReportError::Pdf(_) | ReportError::Json(_) => {
                tracing::error!(%error, "a report could not be rendered");
                ApiError::internal("the report could not be rendered")
            }
        }
    }
}

/// The period of a request (pure; `exam_window` is the exam's `[opens_at, closes_at)` for an
/// exam report). Without `range`: `custom` when `from` is given, else `exam` for an exam report
/// and `day` for the others.
pub fn period(
    kind: Kind,
    range: Option<Range>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    exam_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<Period, ReportError> {
    let range = range.unwrap_or(match (from, kind) {
        (Some(_), _) => Range::Custom,
        (None, Kind::Exam) if to.is_none() => Range::Exam,
        (None, _) => Range::Day,
    });
    let end = to.unwrap_or(now);
    let (from, to) = match range {
        Range::Day | Range::Week => {
            if from.is_some() {
                return Err(ReportError::bad(
                    "from",
                    format!(
                        "from is for range=custom; range={} is the period up to `to` (default now)",
                        range.name()
                    ),
                ));
            }
            let length = if range == Range::Day {
                Duration::days(1)
            } else {
                Duration::days(7)
            };
            (end - length, end)
        }
        Range::Exam => {
            let Some(window) = exam_window.filter(|_| kind == Kind::Exam) else {
                return Err(ReportError::bad(
                    "range",
                    "range=exam is for exam reports: choose day, week or custom",
                ));
            };
            if let Some(name) = [("from", from.is_some()), ("to", to.is_some())]
                .into_iter()
                .find_map(|(name, given)| given.then_some(name))
            {
                return Err(ReportError::bad(
                    name,
                    format!("{name} is for range=custom; range=exam is the exam's own window"),
                ));
            }
            window
        }
        Range::Custom => {
            let Some(from) = from else {
                return Err(ReportError::bad(
                    "from",
                    "from is required with range=custom (RFC 3339, e.g. 2026-12-01T00:00:00Z)",
                ));
            };
            (from, end)
        }
    };
    if from >= to {
        return Err(ReportError::bad(
            "from",
            format!(
                "from ({}) must be before to ({})",
                crate::rfc3339(from),
                crate::rfc3339(to)
            ),
        ));
    }
    if range == Range::Custom && to - from > Duration::days(MAX_DAYS) {
        return Err(ReportError::bad(
            "to",
            format!("a custom period is at most {MAX_DAYS} days"),
        ));
    }
    Ok(Period { range, from, to })
}

/// Builds the report `request` asks for from the database, as of `now`.
pub fn build(
    conn: &Connection,
    request: &Request,
    now: DateTime<Utc>,
) -> Result<model::Report, ReportError> {
    let subject = request.subject.as_deref().map(str::trim);
    let needs = |name: &'static str, what: &str| match subject.filter(|s| !s.is_empty()) {
        Some(s) => Ok(s.to_string()),
        None => Err(ReportError::bad(
            name,
            format!("{name} is required: the {what} to report on"),
        )),
    };
    let period_of = |window| {
        period(
            request.kind,
            request.range,
            request.from,
            request.to,
            now,
            window,
        )
    };
    let (period, body) = match request.kind {
        Kind::Exam => {
            let id = needs("exam", "exam's id")?;
            let exam = query::exam(conn, &id)?
                .ok_or_else(|| ReportError::NotFound(format!("there is no exam `{id}`")))?;
            let period = period_of(Some((exam.opens_at.0, exam.closes_at.0)))?;
            let facts = query::exam_facts(conn, &exam, now)?;
            (period, model::Body::Exam(model::exam(exam, facts, &period)))
        }
        Kind::Lab => {
            let lab = needs("lab", "lab's name (or subnet, e.g. 10.1.2.0/24)")?;
            let period = period_of(None)?;
            let minutes = query::lab_minutes(conn, &lab, &period)?;
            (
                period,
                model::Body::Lab(model::lab(&lab, &minutes, &period)),
            )
        }
        Kind::Security => {
            let period = period_of(None)?;
            let alerts = query::alerts(conn, &period)?;
            (
                period,
                model::Body::Security(model::security(alerts, &period)),
            )
        }
    };
    Ok(model::Report::new(request.kind, period, now, body))
}

/// A report's file name: `{kind}[-{subject}]-{range}-{end, YYYYMMDDTHHMMZ}.{ext}`, in ASCII
/// letters, digits, `.`, `-` and `_` (anything else in the subject becomes `-`).
pub fn filename(report: &model::Report, format: Format) -> String {
    let mut name = report.kind.name().to_string();
    if let Some(subject) = &report.subject {
        let slug: String = subject
            .chars()
            .map(|c| match ascii_letter(c) {
                Some(c) => c,
                None if c.is_ascii_alphanumeric() || c == '.' || c == '_' => c,
                None => '-',
            })
            .take(60)
            .collect();
        let slug = slug.trim_matches(['-', '.']);
        if !slug.is_empty() {
            name.push('-');
            name.push_str(slug);
        }
    }
    format!(
        "{name}-{}-{}.{}",
        report.range.name(),
        report.period.to.format("%Y%m%dT%H%MZ"),
        format.name()
    )
}

/// The letter of a Vietnamese vowel or `đ` without its marks ("Phòng máy" → "Phong may"),
/// so that file names stay readable in ASCII.
fn ascii_letter(c: char) -> Option<char> {
    const GROUPS: [(char, &str); 14] = [
        ('a', "àáảãạăằắẳẵặâầấẩẫậ"),
        ('A', "ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ"),
        ('e', "èéẻẽẹêềếểễệ"),
        ('E', "ÈÉẺẼẸÊỀẾỂỄỆ"),
        ('i', "ìíỉĩị"),
        ('I', "ÌÍỈĨỊ"),
        ('o', "òóỏõọôồốổỗộơờớởỡợ"),
        ('O', "ÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ"),
        ('u', "ùúủũụưừứửữự"),
        ('U', "ÙÚỦŨỤƯỪỨỬỮỰ"),
        ('y', "ỳýỷỹỵ"),
        ('Y', "ỲÝỶỸỴ"),
        ('d', "đ"),
        ('D', "Đ"),
    ];
    GROUPS
        .iter()
        .find(|(_, marked)| marked.contains(c))
        .map(|(plain, _)| *plain)
}

/// The report in `format`.
pub fn render(report: &model::Report, format: Format) -> Result<Vec<u8>, ReportError> {
    Ok(match format {
        Format::Json => {
            let mut bytes = serde_json::to_vec_pretty(report)?;
            bytes.push(b'\n');
            bytes
        }
        Format::Csv => csv::render(&report.sheet()).into_bytes(),
        Format::Pdf => pdf::render(&report.sheet())?,
    })
}

fn time_param(ctx: &Ctx<'_>, name: &'static str) -> Result<Option<DateTime<Utc>>, ReportError> {
    ctx.query
        .get(name)
        .map(|value| {
            DateTime::parse_from_rfc3339(value)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ReportError::bad(
                        name,
                        format!(
                            "{name} `{}` is not an RFC 3339 time ({e}), e.g. 2026-12-01T09:00:00Z",
                            shown(value)
                        ),
                    )
                })
        })
        .transpose()
}

fn shown(value: &str) -> String {
    value.chars().take(100).collect()
}

fn one_of<T: Copy>(
    ctx: &Ctx<'_>,
    name: &'static str,
    all: &[T],
    label: fn(T) -> &'static str,
) -> Result<Option<T>, ReportError> {
    let Some(value) = ctx.query.get(name) else {
        return Ok(None);
    };
    all.iter()
        .copied()
        .find(|v| label(*v) == value)
        .map(Some)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|v| label(*v)).collect();
            ReportError::bad(
                name,
                format!(
                    "{name} `{}` is not one of {}",
                    shown(value),
                    names.join(", ")
                ),
            )
        })
}

/// `GET /v1/admin/reports/{kind}?exam=&lab=&range=day|week|exam|custom&from=&to=&format=`:
/// the report as a file (`Content-Disposition: attachment`), JSON by default. In a batch,
/// whose items are JSON, a JSON report is the item's body and a CSV or PDF one is described
/// (`{filename, content_type, size}`): ask for it alone to get the file.
pub fn report(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    Ok(report_reply(ctx, tx)?)
}

fn report_reply(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ReportError> {
    let raw = ctx.param("kind");
    let kind = Kind::parse(raw).ok_or_else(|| {
        ReportError::NotFound(format!(
            "there is no report `{}`; there are exam, lab and security",
            shown(raw)
        ))
    })?;
    let format = one_of(ctx, "format", &Format::ALL, Format::name)?.unwrap_or(Format::Json);
    let range = one_of(ctx, "range", &Range::ALL, Range::name)?;
    let subject = match kind {
        Kind::Exam => ctx.query.get("exam"),
        Kind::Lab => ctx.query.get("lab"),
        Kind::Security => None,
    };
    let request = Request {
        kind,
        subject: subject.cloned(),
        range,
        from: time_param(ctx, "from")?,
        to: time_param(ctx, "to")?,
    };
    let report = build(tx, &request, ctx.now)?;
    let bytes = render(&report, format)?;
    let filename = filename(&report, format);
    let body = match format {
        Format::Json => serde_json::to_value(&report)?,
        Format::Csv | Format::Pdf => json!({
            "filename": filename, "content_type": format.content_type(), "size": bytes.len(),
        }),
    };
    Ok(Reply {
        file: Some(Arc::new(Download {
            content_type: format.content_type(),
            filename,
            bytes,
        })),
        ..Reply::ok(body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_period_is_chosen_by_its_range_or_refused_naming_the_parameter() {
        let now = t("2026-12-01T18:00:00Z");
        let window = Some((t("2026-12-01T08:00:00Z"), t("2026-12-01T10:00:00Z")));
        let at = |s| Some(t(s));
        type Case = (
            &'static str,
            Kind,
            Option<Range>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Result<(Range, &'static str, &'static str), &'static str>,
        );
        let table: Vec<Case> = vec![
            (
                "exam default",
                Kind::Exam,
                None,
                None,
                None,
                Ok((Range::Exam, "2026-12-01T08:00:00Z", "2026-12-01T10:00:00Z")),
            ),
            (
                "lab default: a day up to now",
                Kind::Lab,
                None,
                None,
                None,
                Ok((Range::Day, "2026-11-30T18:00:00Z", "2026-12-01T18:00:00Z")),
            ),
            (
                "a week up to to",
                Kind::Security,
                Some(Range::Week),
                None,
                at("2026-12-01T00:00:00Z"),
                Ok((Range::Week, "2026-11-24T00:00:00Z", "2026-12-01T00:00:00Z")),
            ),
            (
                "from alone: custom up to now",
                Kind::Exam,
                None,
                at("2026-12-01T09:00:00Z"),
                None,
                Ok((
                    Range::Custom,
                    "2026-12-01T09:00:00Z",
                    "2026-12-01T18:00:00Z",
                )),
            ),
            (
                "to alone on an exam: the day up to it",
                Kind::Exam,
                None,
                None,
                at("2026-12-01T12:00:00Z"),
                Ok((Range::Day, "2026-11-30T12:00:00Z", "2026-12-01T12:00:00Z")),
            ),
            (
                "custom without from",
                Kind::Lab,
                Some(Range::Custom),
                None,
                None,
                Err("from"),
            ),
            (
                "from with day",
                Kind::Lab,
                Some(Range::Day),
                at("2026-12-01T09:00:00Z"),
                None,
                Err("from"),
            ),
            (
                "range=exam on a lab",
                Kind::Lab,
                Some(Range::Exam),
                None,
                None,
                Err("range"),
            ),
            (
                "to with range=exam",
                Kind::Exam,
                Some(Range::Exam),
                None,
                at("2026-12-01T12:00:00Z"),
                Err("to"),
            ),
            (
                "backwards",
                Kind::Security,
                Some(Range::Custom),
                at("2026-12-02T00:00:00Z"),
                at("2026-12-01T00:00:00Z"),
                Err("from"),
            ),
            (
                "empty",
                Kind::Security,
                None,
                at("2026-12-01T00:00:00Z"),
                at("2026-12-01T00:00:00Z"),
                Err("from"),
            ),
            (
                "too long",
                Kind::Security,
                None,
                at("2024-01-01T00:00:00Z"),
                at("2026-01-01T00:00:00Z"),
                Err("to"),
            ),
        ];
        for (case, kind, range, from, to, want) in table {
            let got = period(kind, range, from, to, now, window);
            match (got, want) {
                (Ok(p), Ok((range, from, to))) => {
                    assert_eq!((p.range, p.from, p.to), (range, t(from), t(to)), "{case}")
                }
                (Err(ReportError::BadParameter { parameter, .. }), Err(name)) => {
                    assert_eq!(parameter, name, "{case}")
                }
                (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
            }
        }
    }
}
