//! Calendar dates: the one place the engine does date arithmetic, through `chrono` (proleptic
//! Gregorian calendar). Days are counted from 1970-01-01, as Parquet's DATE and Arrow's Date32
//! count them.
//!
//! The two text forms strata reads keep their own grammar here (what an extract or a recipe may
//! write); whether the numbers make a date, and every day count, is chrono's.

use chrono::{Datelike, Months, NaiveDate};

/// Days since 1970-01-01 of a calendar date; `None` when there is no such date (2023-02-29,
/// month 13) or it is beyond chrono's range (about ±262,000 years).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> Option<i64> {
    NaiveDate::from_ymd_opt(year, month, day).map(|date| i64::from(date.to_epoch_days()))
}

/// (year, month, day) of a day count since 1970-01-01; `None` beyond chrono's range.
pub fn civil_from_days(days: i64) -> Option<(i32, u32, u32)> {
    let date = NaiveDate::from_epoch_days(i32::try_from(days).ok()?)?;
    Some((date.year(), date.month(), date.day()))
}

/// `YYYY-MM-DD` of a day count since 1970-01-01 (at least four digits of year, as extracts write
/// them); `None` beyond chrono's range.
pub fn date_text(days: i64) -> Option<String> {
    let (y, m, d) = civil_from_days(days)?;
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// Days since 1970-01-01 of a date as extracts write it: `YYYY-MM-DD` (month and day may have one
/// digit), optionally followed by a time as in timestamps exported from SQL
/// (`2023-04-01 00:00:00`, `2023-04-01T09:30:00.000Z`): the time is ignored, but it may hold only
/// digits and `:.+-Z `.
pub fn parse_extract_date(text: &str) -> Option<i64> {
    let (date, time) = match text.find([' ', 'T']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, ""),
    };
    if !time
        .bytes()
        .all(|b| b.is_ascii_digit() || b":.+-Z ".contains(&b))
    {
        return None;
    }
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    // Digits only, so no sign, space or `_` gets through `parse`.
    let number = |s: &str, width: std::ops::RangeInclusive<usize>| {
        (width.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (y, m, d) = (number(y, 4..=4)?, number(m, 1..=2)?, number(d, 1..=2)?);
    days_from_civil(i32::try_from(y).ok()?, m, d)
}

/// (year, month, day) of a recipe's date: three `-`-separated whole numbers (`2023-04-01`; a
/// month or day of one digit and a `+` sign are allowed) that make a calendar date.
pub fn parse_recipe_date(text: &str) -> Option<(i32, u32, u32)> {
    let mut parts = text.split('-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    days_from_civil(y, m, d)?;
    Some((y, m, d))
}

/// Days since 1970-01-01 of the first day of 13 consecutive months, the first being `month` of
/// `year`: month `k` of a year starting there is `starts[k] .. starts[k + 1]`. `None` when a
/// month is not a date (month 13, or beyond chrono's range).
pub fn month_starts(year: i32, month: u32) -> Option<[i64; 13]> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let mut starts = [0; 13];
    for (k, start) in (0u32..).zip(starts.iter_mut()) {
        *start = i64::from(first.checked_add_months(Months::new(k))?.to_epoch_days());
    }
    Some(starts)
}

/// The month of a year, given [`month_starts`], a day count falls in: `0..12`, or `None` before
/// or after the year.
pub fn month_index(starts: &[i64; 13], days: i64) -> Option<u32> {
    if days < starts[0] || days >= starts[12] {
        return None;
    }
    // The last start at or before `days`.
    Some(starts.partition_point(|&start| start <= days) as u32 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_dates_with_and_without_times() {
        let april = days_from_civil(2023, 4, 1).expect("a date");
        assert_eq!(april, 19_448);
        for (text, want) in [
            ("2023-04-01", Some(april)),
            ("2023-4-1", Some(april)),
            ("2023-04-1", Some(april)),
            ("2023-4-01", Some(april)),
            ("2023-04-01 00:00:00", Some(april)),
            ("2023-04-01T09:30:00.000Z", Some(april)),
            ("2023-04-01T09:30:00", Some(april)),
            ("2023-04-01 09:30:00+01:00", Some(april)),
            ("2023-04-01T", Some(april)),
            // Leap days: 2024 is a leap year, 2023 is not, 1900 is not (a century), 2000 is.
            ("2024-02-29", Some(april + 334)),
            ("2023-02-29", None),
            ("1900-02-29", None),
            ("2000-02-29", days_from_civil(2000, 2, 29)),
            ("2023-02-28", Some(april - 32)),
            ("2023-04-31", None),
            ("2023-04-00", None),
            ("2023-00-01", None),
            ("2023-13-01", None),
            ("0000-01-01", days_from_civil(0, 1, 1)),
            ("9999-12-31", days_from_civil(9999, 12, 31)),
            // Garbage.
            ("", None),
            ("-", None),
            ("--", None),
            ("2023", None),
            ("2023-04", None),
            ("2023-04-01-02", None),
            ("01/04/2023", None),
            ("20230401", None),
            ("23-04-01", None),
            ("02023-04-01", None),
            ("2023-004-01", None),
            ("+2023-04-01", None),
            ("2023-+4-01", None),
            ("2023- 4-01", None),
            (" 2023-04-01", None),
            ("2023-04-01 noon", None),
            ("2023-04-01T09:30:00 BST", None),
            ("2023-04-01\t09:30", None),
            ("２０２３-04-01", None),
            ("2023-04-01é", None),
        ] {
            assert_eq!(parse_extract_date(text), want, "{text:?}");
        }
    }

    #[test]
    fn recipe_dates() {
        for (text, want) in [
            ("2023-04-01", Some((2023, 4, 1))),
            ("2023-4-1", Some((2023, 4, 1))),
            ("+2023-04-01", Some((2023, 4, 1))),
            ("2024-02-29", Some((2024, 2, 29))),
            ("2023-02-29", None),
            ("2023-02-30", None),
            ("2023-13-01", None),
            ("2023-04", None),
            ("2023-04-01-01", None),
            ("2023-04-01 00:00:00", None),
            ("April 2023", None),
            ("", None),
        ] {
            assert_eq!(parse_recipe_date(text), want, "{text:?}");
        }
    }

    #[test]
    fn days_to_dates_and_back() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(1969, 12, 31), Some(-1));
        assert_eq!(civil_from_days(19_448), Some((2023, 4, 1)));
        assert_eq!(civil_from_days(-719_162), Some((1, 1, 1)));
        assert_eq!(date_text(19_448 + 365).as_deref(), Some("2024-03-31"));
        assert_eq!(civil_from_days(100_000_000), None);
        assert_eq!(civil_from_days(i64::MAX), None);
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days).expect("in range");
            assert_eq!(days_from_civil(y, m, d), Some(days));
        }
    }

    #[test]
    fn months_of_a_financial_year() {
        let starts = month_starts(2023, 4).expect("a year");
        let day = |y, m, d| days_from_civil(y, m, d).expect("a date");
        assert_eq!(starts[0], day(2023, 4, 1));
        assert_eq!(starts[9], day(2024, 1, 1));
        assert_eq!(starts[11], day(2024, 3, 1));
        assert_eq!(starts[12], day(2024, 4, 1));
        assert_eq!(starts[11] - starts[10], 29); // February 2024 has a leap day
        assert_eq!(month_index(&starts, day(2023, 3, 31)), None);
        assert_eq!(month_index(&starts, day(2023, 4, 1)), Some(0));
        assert_eq!(month_index(&starts, day(2023, 4, 30)), Some(0));
        assert_eq!(month_index(&starts, day(2023, 5, 1)), Some(1));
        assert_eq!(month_index(&starts, day(2024, 2, 29)), Some(10));
        assert_eq!(month_index(&starts, day(2024, 3, 31)), Some(11));
        assert_eq!(month_index(&starts, day(2024, 4, 1)), None);
        assert_eq!(month_starts(2023, 13), None);
        assert_eq!(month_starts(262_143, 4), None);
    }
}
