//! The doctor's report for people (grouped, one line per finding, its detail under it) and
//! for scripts (one JSON object whose fields never change meaning).

use std::fmt::Write as _;

use super::{Finding, Level, Report, CODES, GROUPS};

/// The report as a terminal shows it.
pub fn human(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Exam Bank Desktop {} — doctor, {} ({:.1} s)",
        report.version,
        report.generated_at,
        report.took_ms as f64 / 1000.0
    );
    let mut shown = vec![false; report.findings.len()];
    let group_of = |f: &Finding| {
        GROUPS
            .iter()
            .position(|(_, areas)| areas.contains(&f.area()))
    };
    for (index, (title, _)) in GROUPS.iter().enumerate() {
        let members: Vec<(usize, &Finding)> = report
            .findings
            .iter()
            .enumerate()
            .filter(|(_, f)| group_of(f) == Some(index))
            .collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title}");
        for (i, finding) in members {
            shown[i] = true;
            line(&mut out, finding);
        }
    }
    // A code of no group still shows (a newer check this renderer does not know).
    let rest: Vec<&Finding> = report
        .findings
        .iter()
        .zip(&shown)
        .filter(|(_, shown)| !**shown)
        .map(|(f, _)| f)
        .collect();
    if !rest.is_empty() {
        let _ = writeln!(out, "\nOther");
        for finding in rest {
            line(&mut out, finding);
        }
    }
    let counts = [Level::Fail, Level::Warn]
        .into_iter()
        .map(|level| {
            let n = report.findings.iter().filter(|f| f.level == level).count();
            let word = match (level, n) {
                (Level::Fail, 1) => "failure",
                (Level::Fail, _) => "failures",
                (_, 1) => "warning",
                _ => "warnings",
            };
            format!("{n} {word}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let verdict = match report.worst {
        Level::Ok | Level::Info => "ready",
        Level::Warn => "usable, look at the warnings",
        Level::Fail => "not ready",
    };
    let _ = writeln!(
        out,
        "\n{verdict}: {counts} (exit status {})",
        report.exit_code()
    );
    out
}

fn line(out: &mut String, finding: &Finding) {
    let _ = writeln!(
        out,
        "  {} {} [{}]",
        finding.level.mark(),
        finding.title,
        finding.code
    );
    for detail in finding.detail.lines().filter(|l| !l.trim().is_empty()) {
        let _ = writeln!(out, "      {detail}");
    }
}

/// The report as one JSON object: `version`, `generated_at`, `worst`, `took_ms` and
/// `findings` (each `code`, `level`, `title`, `detail`, `evidence`).
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|error| {
        // Plain data serialises; this is only here so a script never gets nothing.
        format!("{{\"error\": \"{error}\"}}")
    })
}

/// Every reason code with its levels and meaning, for `doctor --codes`.
pub fn codes_text() -> String {
    let width = CODES.iter().map(|d| d.code.len()).max().unwrap_or(0);
    let mut out = String::new();
    for doc in CODES {
        let levels = doc
            .levels
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("/");
        let _ = writeln!(out, "{:width$}  {:9}  {}", doc.code, levels, doc.meaning);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn report() -> Report {
        let mut report = Report::new(
            vec![
                Finding::new("config.sources", Level::Ok, "Settings in effect")
                    .detail("defaults: built-in"),
                Finding::new(
                    "server.unreachable",
                    Level::Fail,
                    "The server cannot be reached",
                )
                .detail("No answer within 3.0 s.\nCheck the network.")
                .with("url", "http://127.0.0.1:9/"),
                Finding::new(
                    "clock.unknown",
                    Level::Info,
                    "The server's time is not known",
                ),
                Finding::new("queue.dead_letters", Level::Warn, "1 item was refused"),
            ],
            Duration::from_millis(1234),
        );
        report.generated_at = "2025-05-01T08:00:00.000Z".into();
        report
    }

    #[test]
    fn people_read_groups_marks_codes_and_details_on_their_own_lines() {
        let text = human(&report());
        let expected = "Exam Bank Desktop VERSION — doctor, 2025-05-01T08:00:00.000Z (1.2 s)

Configuration
  ✓ Settings in effect [config.sources]
      defaults: built-in

Server
  ✗ The server cannot be reached [server.unreachable]
      No answer within 3.0 s.
      Check the network.
  · The server's time is not known [clock.unknown]

Waiting work
  ! 1 item was refused [queue.dead_letters]

not ready: 1 failure, 1 warning (exit status 2)
"
        .replace("VERSION", crate::VERSION);
        assert_eq!(text, expected);
    }

    #[test]
    fn scripts_read_a_stable_object() {
        let value: serde_json::Value = serde_json::from_str(&json(&report())).unwrap();
        assert_eq!(value["version"], crate::VERSION);
        assert_eq!(value["generated_at"], "2025-05-01T08:00:00.000Z");
        assert_eq!(value["worst"], "fail");
        assert_eq!(value["took_ms"], 1234);
        let first = &value["findings"][1];
        assert_eq!(first["code"], "server.unreachable");
        assert_eq!(first["level"], "fail");
        assert_eq!(first["title"], "The server cannot be reached");
        assert_eq!(first["evidence"]["url"], "http://127.0.0.1:9/");
        assert!(first["detail"]
            .as_str()
            .unwrap()
            .contains("Check the network"));
    }

    #[test]
    fn an_all_good_report_says_ready_and_exit_0() {
        let report = Report::new(
            vec![Finding::new("server.ok", Level::Ok, "The server answers")],
            Duration::ZERO,
        );
        assert!(human(&report).ends_with("ready: 0 failures, 0 warnings (exit status 0)\n"));
    }

    #[test]
    fn the_code_list_names_every_code_once() {
        let text = codes_text();
        for doc in CODES {
            assert_eq!(
                text.lines()
                    .filter(|l| l.split_whitespace().next() == Some(doc.code))
                    .count(),
                1,
                "{}",
                doc.code
            );
        }
        assert!(text.contains("warn/fail"));
    }
}
