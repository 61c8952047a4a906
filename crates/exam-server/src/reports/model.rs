//! The report model: what a report says, typed (its JSON is the serialisation of
//! [`Report`]), and [`Sheet`], the tabular view of it that the CSV and the PDF are both drawn
//! from — so the three files of one report cannot disagree.
//!
//! Each kind's figures are built by a pure function over rows ([`exam::build`],
//! [`lab::build`], [`security::build`]), table-tested beside it; [`super::query`] reads the
//! rows.

pub mod exam;
pub mod lab;
pub mod security;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use super::{Kind, Period, Range};

pub use exam::{build as exam, ExamReport};
pub use lab::{build as lab, LabReport};
pub use security::{build as security, SecurityReport};

/// A time, serialised as RFC 3339 UTC with milliseconds (as the API writes times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(pub DateTime<Utc>);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::rfc3339(self.0))
    }
}

impl From<DateTime<Utc>> for Time {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t)
    }
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub kind: Kind,
    pub title: String,
    /// The exam's id, the lab's name; none for the security summary.
    pub subject: Option<String>,
    pub range: Range,
    pub from: Time,
    pub to: Time,
    pub generated_at: Time,
    #[serde(skip)]
    pub period: Period,
    #[serde(flatten)]
    pub body: Body,
}

/// What a report of each kind says.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Body {
    Exam(ExamReport),
    Lab(LabReport),
    Security(SecurityReport),
}

impl Report {
    pub fn new(kind: Kind, period: Period, now: DateTime<Utc>, body: Body) -> Self {
        let (title, subject) = match &body {
            Body::Exam(e) => (
                format!("Exam report: {}", e.exam.title),
                Some(e.exam.id.clone()),
            ),
            Body::Lab(l) => (
                format!("Lab report: {}", l.lab.label),
                Some(l.lab.key.clone()),
            ),
            Body::Security(_) => ("Security summary".to_string(), None),
        };
        Self {
            kind,
            title,
            subject,
            range: period.range,
            from: Time(period.from),
            to: Time(period.to),
            generated_at: Time(now),
            period,
            body,
        }
    }

    /// The tabular view: the report's facts, then its tables.
    pub fn sheet(&self) -> Sheet {
        let mut facts = vec![
            Fact::new("kind", "Report", Cell::text(self.kind.name())),
            Fact::new("title", "Title", Cell::text(&self.title)),
        ];
        if let Some(subject) = &self.subject {
            facts.push(Fact::new("subject", "About", Cell::text(subject)));
        }
        facts.extend([
            Fact::new("range", "Range", Cell::text(self.range.name())),
            Fact::new("from", "From", Cell::Time(self.from.0)),
            Fact::new("to", "To (exclusive)", Cell::Time(self.to.0)),
            Fact::new("generated_at", "Generated", Cell::Time(self.generated_at.0)),
            Fact::new("times", "Times", Cell::text("UTC")),
        ]);
        let tables = match &self.body {
            Body::Exam(e) => e.sheet(&mut facts),
            Body::Lab(l) => l.sheet(&mut facts),
            Body::Security(s) => s.sheet(&mut facts),
        };
        Sheet {
            title: self.title.clone(),
            subtitle: format!(
                "{} to {} UTC ({})",
                self.from.0.format("%Y-%m-%d %H:%M"),
                self.to.0.format("%Y-%m-%d %H:%M"),
                match self.range {
                    Range::Day => "the last 24 hours",
                    Range::Week => "the last 7 days",
                    Range::Exam => "the exam's window",
                    Range::Custom => "custom period",
                }
            ),
            generated: format!(
                "Generated {} UTC by the Exam Bank server",
                self.generated_at.0.format("%Y-%m-%d %H:%M:%S")
            ),
            facts,
            tables,
        }
    }
}

// ---- the tabular view ------------------------------------------------------------------------

/// One value of a table, typed so that each format writes it its own way (a duration is
/// milliseconds in the CSV, "2 min 5 s" in the PDF).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
    /// A duration in milliseconds.
    Ms(i64),
    Bool(bool),
    /// A value with a name for machines (the CSV's, as in the JSON) and words for people (the
    /// PDF's): `not_running`, "app not running".
    Term {
        key: &'static str,
        words: &'static str,
    },
    /// Nothing to say (a time that has not come, a figure nobody reported).
    None,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Self {
        Self::Text(s.into())
    }

    pub fn opt<T>(value: Option<T>, cell: impl FnOnce(T) -> Cell) -> Self {
        value.map_or(Cell::None, cell)
    }

    /// Whether the PDF right-aligns it.
    pub fn is_number(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Ms(_))
    }
}

/// A named figure of the report (a total, the readiness verdict).
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    /// The CSV's name for it (as in the JSON).
    pub key: &'static str,
    /// The PDF's.
    pub label: &'static str,
    pub value: Cell,
}

impl Fact {
    pub fn new(key: &'static str, label: &'static str, value: Cell) -> Self {
        Self { key, label, value }
    }
}

/// A column: its CSV name (as in the JSON) and its PDF heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
}

/// Columns from `(key, label)` pairs.
pub fn columns(pairs: &[(&'static str, &'static str)]) -> Vec<Column> {
    pairs
        .iter()
        .map(|&(key, label)| Column { key, label })
        .collect()
}

/// One section of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The CSV's name of the section (as in the JSON).
    pub name: &'static str,
    /// The PDF's heading.
    pub title: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// What the PDF says when there are no rows.
    pub empty: &'static str,
}

/// A report as facts and tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    pub title: String,
    /// The period, in words.
    pub subtitle: String,
    /// When and by what it was made, in words.
    pub generated: String,
    pub facts: Vec<Fact>,
    pub tables: Vec<Table>,
}
