//! A report as CSV (RFC 4180: `,`, CRLF, fields quoted when they need it), one file with one
//! block per section, each block a line naming it, a header line and its rows, and a blank line
//! after it:
//!
//! ```text
//! report
//! field,value
//! kind,exam
//! …
//!
//! attempts
//! student,status,started_at,…
//! Nguyễn Thị Hương,submitted,2026-12-01 09:00:10,…
//! ```
//!
//! Names are the JSON's; times are `YYYY-MM-DD HH:MM:SS` UTC, which spreadsheets read as times;
//! durations are whole milliseconds (`…_ms`), yes/no for flags, an empty field for nothing.
//!
//! Why a byte order mark first: spreadsheet programs read a CSV without one in the computer's
//! legacy code page, and Vietnamese names come out garbled. Why a leading `'` on a text that
//! begins with `=`, `+`, `-`, `@`, a tab or a carriage return: a spreadsheet would run it as a
//! formula, and students choose their usernames and apps write alert summaries (OWASP's advice
//! on CSV injection).

use super::model::{Cell, Sheet};

/// UTF-8's byte order mark.
pub const BOM: &str = "\u{feff}";

/// The sheet as CSV.
pub fn render(sheet: &Sheet) -> String {
    let mut out = String::from(BOM);
    line(&mut out, ["report".to_string()]);
    line(&mut out, ["field".to_string(), "value".to_string()]);
    for fact in &sheet.facts {
        line(&mut out, [quoted(fact.key), field(&fact.value)]);
    }
    for table in &sheet.tables {
        out.push_str("\r\n");
        line(&mut out, [quoted(table.name)]);
        line(&mut out, table.columns.iter().map(|c| quoted(c.key)));
        for row in &table.rows {
            line(&mut out, row.iter().map(field));
        }
    }
    out
}

/// How a cell reads in the CSV, before quoting.
pub fn cell(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => s.clone(),
        Cell::Int(n) | Cell::Ms(n) => n.to_string(),
        Cell::Time(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        Cell::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Cell::Term { key, .. } => (*key).to_string(),
        Cell::None => String::new(),
    }
}

/// A cell as a field: a text defused, then quoted as needed.
fn field(value: &Cell) -> String {
    match value {
        Cell::Text(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
            quoted(&format!("'{s}"))
        }
        other => quoted(&cell(other)),
    }
}

/// A field quoted when it must be (a comma, a quote, a line break, an edge space).
fn quoted(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn line(out: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&field);
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> String {
        field(&Cell::text(value))
    }

    #[test]
    fn fields_are_quoted_and_defused_as_needed() {
        let table = [
            ("plain", "plain"),
            ("Nguyễn Thị Hương", "Nguyễn Thị Hương"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            (" padded ", "\" padded \""),
            ("=1+1", "'=1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-2", "'-2"),
            ("+x,y", "\"'+x,y\""),
            ("", ""),
        ];
        for (value, written) in table {
            assert_eq!(text(value), written, "{value:?}");
        }
    }

    #[test]
    fn numbers_are_never_defused() {
        assert_eq!(field(&Cell::Int(-3)), "-3");
        assert_eq!(cell(&Cell::Bool(true)), "yes");
        assert_eq!(cell(&Cell::None), "");
    }
}
