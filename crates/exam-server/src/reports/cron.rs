//! Cron expressions for the report schedule: the five fields an IT admin already knows from
//! crontab(5) — minute, hour, day of month, month, day of week — with `*`, lists (`1,15`),
//! ranges (`1-5`), steps (`*/15`, `8-18/2`, `5/10`), month and day names (`jan`, `mon-fri`),
//! `0` or `7` for Sunday, and the shorthands `@hourly`, `@daily` (`@midnight`), `@weekly`,
//! `@monthly`, `@yearly` (`@annually`).
//!
//! As in Vixie cron (and so most Linux systems): when both the day of month and the day of
//! week are restricted (neither starts with `*`), a day matches if either does — `0 9 1 * mon`
//! is the 1st of each month and every Monday.
//!
//! Pure: [`Cron::next_after`] works on local wall-clock times (`NaiveDateTime`); the scheduler
//! turns them into instants. Written here rather than taken from a crate because it is small,
//! and the semantics above are the ones the README promises, tested as a table below.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// A parsed cron expression.
#[derive(Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// The day-of-month field starts with `*` (it does not restrict on its own).
    any_day: bool,
    /// The day-of-week field starts with `*`.
    any_weekday: bool,
    source: String,
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?})", self.source)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Why an expression is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error(
        "a cron expression has 5 fields (minute hour day-of-month month day-of-week), not {0}"
    )]
    Fields(usize),
    #[error("unknown shorthand `{0}`: use @hourly, @daily, @weekly, @monthly or @yearly")]
    Shorthand(String),
    #[error("{field} `{value}`: {why}")]
    Field {
        field: &'static str,
        value: String,
        why: String,
    },
}

struct Spec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Spec = Spec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Spec = Spec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: Spec = Spec {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Spec = Spec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
/// 7 is Sunday too (folded onto 0).
const WEEKDAY: Spec = Spec {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl Spec {
    fn value(&self, text: &str) -> Result<u32, String> {
        let lower = text.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            // Month names count from 1, day names from 0 (Sunday).
            let i = u32::try_from(i).unwrap_or(0);
            return Ok(if self.min == 1 { i + 1 } else { i });
        }
        let n: u32 = text
            .parse()
            .map_err(|_| format!("`{text}` is not a number"))?;
        if n < self.min || n > self.max {
            return Err(format!("{n} is outside {}-{}", self.min, self.max));
        }
        Ok(n)
    }

    /// The bits of a whole field.
    fn parse(&self, field: &str) -> Result<u64, CronError> {
        let bad = |why: String| CronError::Field {
            field: self.name,
            value: field.to_string(),
            why,
        };
        let mut bits = 0u64;
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        bad(format!("step `{step}` is not a whole number above 0"))
                    })?;
                    (range, Some(step))
                }
                None => (item, None),
            };
            let (from, to) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a).map_err(&bad)?, self.value(b).map_err(&bad)?);
                if a > b {
                    return Err(bad(format!("the range {a}-{b} runs backwards")));
                }
                (a, b)
            } else {
                let a = self.value(range).map_err(&bad)?;
                // `5/10`: from 5 to the end, every 10.
                (a, if step.is_some() { self.max } else { a })
            };
            let step = step.unwrap_or(1);
            let mut v = from;
            while v <= to {
                bits |= 1 << v;
                v += step;
            }
        }
        if self.name == WEEKDAY.name && bits & (1 << 7) != 0 {
            bits = (bits & !(1 << 7)) | 1;
        }
        Ok(bits)
    }
}

impl FromStr for Cron {
    type Err = CronError;

    fn from_str(expression: &str) -> Result<Self, CronError> {
        let expression = expression.trim();
        let expanded = match expression {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => return Err(CronError::Shorthand(other.into())),
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(CronError::Fields(fields.len()));
        };
        Ok(Self {
            minutes: MINUTE.parse(minute)?,
            hours: HOUR.parse(hour)?,
            days: DAY.parse(day)?,
            months: MONTH.parse(month)?,
            weekdays: WEEKDAY.parse(weekday)?,
            any_day: day.starts_with('*'),
            any_weekday: weekday.starts_with('*'),
            source: expression.to_string(),
        })
    }
}

fn has(bits: u64, n: u32) -> bool {
    bits & (1 << n) != 0
}

/// How far ahead [`Cron::next_after`] looks (enough for a 29 February of a leap year).
const HORIZON_DAYS: i64 = 8 * 366;

impl Cron {
    fn day_matches(&self, date: NaiveDate) -> bool {
        let day = has(self.days, date.day());
        let weekday = has(self.weekdays, date.weekday().num_days_from_sunday());
        match (self.any_day, self.any_weekday) {
            (false, false) => day || weekday,
            (true, false) => weekday,
            (false, true) => day,
            (true, true) => true,
        }
    }

    /// Whether the minute `t` (seconds ignored) matches.
    pub fn matches(&self, t: NaiveDateTime) -> bool {
        has(self.months, t.month())
            && self.day_matches(t.date())
            && has(self.hours, t.hour())
            && has(self.minutes, t.minute())
    }

    /// The first matching minute strictly after `after`; `None` if there is none within
    /// eight years (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let start_of_minute = after.date().and_hms_opt(after.hour(), after.minute(), 0)?;
        let mut t = start_of_minute + Duration::minutes(1);
        let horizon = t + Duration::days(HORIZON_DAYS);
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN);
        while t <= horizon {
            if !has(self.months, t.month()) {
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = midnight(NaiveDate::from_ymd_opt(y, m, 1)?);
            } else if !self.day_matches(t.date()) {
                t = midnight(t.date().succ_opt()?);
            } else if !has(self.hours, t.hour()) {
                t = t.date().and_hms_opt(t.hour(), 0, 0)? + Duration::hours(1);
            } else if !has(self.minutes, t.minute()) {
                t += Duration::minutes(1);
            } else {
                return Some(t);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn cron(s: &str) -> Cron {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn fields_read_as_crontab_says() {
        // (expression, minutes, hours, days, months, weekdays) as lists of values.
        type Case = (
            &'static str,
            Vec<u32>,
            Vec<u32>,
            Vec<u32>,
            Vec<u32>,
            Vec<u32>,
        );
        let all = |from: u32, to: u32| (from..=to).collect::<Vec<u32>>();
        let table: Vec<Case> = vec![
            (
                "* * * * *",
                all(0, 59),
                all(0, 23),
                all(1, 31),
                all(1, 12),
                all(0, 6),
            ),
            (
                "0 18 * * 1-5",
                vec![0],
                vec![18],
                all(1, 31),
                all(1, 12),
                all(1, 5),
            ),
            (
                "*/15 8-18/2 1,15 jan-mar,dec sun,7",
                vec![0, 15, 30, 45],
                vec![8, 10, 12, 14, 16, 18],
                vec![1, 15],
                vec![1, 2, 3, 12],
                vec![0],
            ),
            (
                "5/20 0 31 FEB Mon-Fri",
                vec![5, 25, 45],
                vec![0],
                vec![31],
                vec![2],
                all(1, 5),
            ),
            ("@weekly", vec![0], vec![0], all(1, 31), all(1, 12), vec![0]),
        ];
        let values = |bits: u64, from: u32, to: u32| {
            (from..=to).filter(|v| has(bits, *v)).collect::<Vec<u32>>()
        };
        for (expression, minutes, hours, days, months, weekdays) in table {
            let c = cron(expression);
            assert_eq!(values(c.minutes, 0, 59), minutes, "{expression}");
            assert_eq!(values(c.hours, 0, 23), hours, "{expression}");
            assert_eq!(values(c.days, 1, 31), days, "{expression}");
            assert_eq!(values(c.months, 1, 12), months, "{expression}");
            assert_eq!(values(c.weekdays, 0, 6), weekdays, "{expression}");
        }
    }

    #[test]
    fn a_wrong_expression_says_which_field_and_why() {
        let table = [
            ("0 18 * *", "5 fields"),
            ("0 18 * * * *", "not 6"),
            ("60 * * * *", "minute `60`: 60 is outside 0-59"),
            ("* 24 * * *", "hour `24`"),
            ("* * 0 * *", "day of month `0`"),
            ("* * * 13 *", "month `13`"),
            ("* * * * 8", "day of week `8`"),
            ("* * * * fri-mon", "runs backwards"),
            ("*/0 * * * *", "step `0`"),
            ("a * * * *", "`a` is not a number"),
            ("@reboot", "unknown shorthand"),
            ("1,,2 * * * *", "minute"),
        ];
        for (expression, said) in table {
            let error = expression.parse::<Cron>().unwrap_err().to_string();
            assert!(error.contains(said), "{expression}: {error}");
        }
    }

    #[test]
    fn the_next_fire_is_the_first_matching_minute_after() {
        // (expression, after, next)
        let table = [
            ("* * * * *", "2026-12-01 09:00", "2026-12-01 09:01"),
            // Strictly after, even on a matching minute.
            ("0 18 * * 1-5", "2026-12-01 18:00", "2026-12-02 18:00"),
            // Friday evening: next Monday (2026-12-04 is a Friday).
            ("0 18 * * 1-5", "2026-12-04 18:30", "2026-12-07 18:00"),
            // Across the end of a month and of a year.
            ("30 6 1 * *", "2026-11-30 23:59", "2026-12-01 06:30"),
            ("0 0 * * *", "2026-12-31 23:59", "2027-01-01 00:00"),
            ("15 10 31 * *", "2026-04-30 00:00", "2026-05-31 10:15"),
            // The 31st skips the months without one.
            ("0 0 31 * *", "2026-01-31 00:00", "2026-03-31 00:00"),
            // 29 February: the next leap year.
            ("0 12 29 2 *", "2026-03-01 00:00", "2028-02-29 12:00"),
            // Day of month or day of week when both are restricted (Vixie cron).
            ("0 9 1 * mon", "2026-12-01 10:00", "2026-12-07 09:00"),
            ("0 9 1 * mon", "2026-12-28 10:00", "2027-01-01 09:00"),
            // `*/2` starts with `*`, so the day of month does not restrict: Sundays only.
            ("0 9 */2 * sun", "2026-12-01 00:00", "2026-12-06 09:00"),
            ("*/20 8-9 * * *", "2026-12-01 09:45", "2026-12-02 08:00"),
            ("@monthly", "2026-02-14 12:00", "2026-03-01 00:00"),
            ("@hourly", "2026-02-14 12:00", "2026-02-14 13:00"),
        ];
        for (expression, after, next) in table {
            assert_eq!(
                cron(expression).next_after(at(after)),
                Some(at(next)),
                "{expression} after {after}"
            );
            assert!(cron(expression).matches(at(next)), "{expression}");
        }
        // Seconds are ignored: after 09:00:59 comes 09:01.
        let after = at("2026-12-01 09:00") + Duration::seconds(59);
        assert_eq!(
            cron("* * * * *").next_after(after),
            Some(at("2026-12-01 09:01"))
        );
        assert_eq!(cron("0 0 30 2 *").next_after(at("2026-01-01 00:00")), None);
    }
}
