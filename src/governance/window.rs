//! The windows counters live in: calendar months and weeks (UTC), runs of N days from an
//! anchor, fixed clock-aligned spans for rate limits, or forever.

use time::{Date, Duration, Month, OffsetDateTime, Time};

use crate::observe::record::DAY_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Forever,
    /// From the 1st of the month, 00:00 UTC.
    Monthly,
    /// From Monday, 00:00 UTC.
    Weekly,
    /// Runs of `days` from `anchor_ms` (the budget's creation).
    Days {
        days: u32,
        anchor_ms: i64,
    },
    /// Spans of `ms` aligned to the Unix epoch (so a minute starts on the minute).
    Every {
        ms: i64,
    },
}

fn midnight_ms(date: Date) -> i64 {
    let t = date.with_time(Time::MIDNIGHT).assume_utc();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn first_of_next_month(date: Date) -> Date {
    let (year, month) = match date.month() {
        Month::December => (date.year() + 1, Month::January),
        m => (date.year(), m.next()),
    };
    Date::from_calendar_date(year, month, 1).expect("the 1st exists in every month")
}

impl Period {
    /// The window holding `now_ms`: its start, and its end (exclusive) unless it has none.
    pub fn window(self, now_ms: i64) -> (i64, Option<i64>) {
        let date = || {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
                .date()
        };
        match self {
            Period::Forever => (0, None),
            Period::Monthly => {
                let first = date().replace_day(1).expect("day 1 exists");
                (
                    midnight_ms(first),
                    Some(midnight_ms(first_of_next_month(first))),
                )
            }
            Period::Weekly => {
                let today = date();
                let monday =
                    today - Duration::days(i64::from(today.weekday().number_days_from_monday()));
                let start = midnight_ms(monday);
                (start, Some(start + 7 * DAY_MS))
            }
            Period::Days { days, anchor_ms } => {
                let len = i64::from(days.max(1)) * DAY_MS;
                let start = anchor_ms + (now_ms - anchor_ms).div_euclid(len) * len;
                (start, Some(start + len))
            }
            Period::Every { ms } => {
                let start = now_ms.div_euclid(ms) * ms;
                (start, Some(start + ms))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        let t =
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    }

    #[test]
    fn months_start_on_the_first_in_utc() {
        let (start, end) = Period::Monthly.window(ms("2026-12-31T23:59:59Z"));
        assert_eq!(start, ms("2026-12-01T00:00:00Z"));
        assert_eq!(end, Some(ms("2027-01-01T00:00:00Z")));
        let (start, _) = Period::Monthly.window(ms("2027-01-01T00:00:00Z"));
        assert_eq!(
            start,
            ms("2027-01-01T00:00:00Z"),
            "the boundary opens the new month"
        );
        let (start, end) = Period::Monthly.window(ms("2028-02-29T12:00:00Z"));
        assert_eq!(start, ms("2028-02-01T00:00:00Z"));
        assert_eq!(end, Some(ms("2028-03-01T00:00:00Z")));
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-12-01 is a Tuesday.
        let (start, end) = Period::Weekly.window(ms("2026-12-01T08:00:00Z"));
        assert_eq!(start, ms("2026-11-30T00:00:00Z"));
        assert_eq!(end, Some(ms("2026-12-07T00:00:00Z")));
        let (start, _) = Period::Weekly.window(ms("2026-12-06T23:59:59.999Z"));
        assert_eq!(start, ms("2026-11-30T00:00:00Z"));
    }

    #[test]
    fn day_runs_count_from_the_anchor() {
        let anchor = ms("2026-11-03T10:00:00Z");
        let p = Period::Days {
            days: 10,
            anchor_ms: anchor,
        };
        assert_eq!(p.window(anchor + 1).0, anchor);
        let (start, end) = p.window(ms("2026-11-20T00:00:00Z"));
        assert_eq!(start, ms("2026-11-13T10:00:00Z"));
        assert_eq!(end, Some(ms("2026-11-23T10:00:00Z")));
    }

    #[test]
    fn fixed_spans_align_to_the_clock() {
        let p = Period::Every { ms: 60_000 };
        assert_eq!(p.window(125_000), (120_000, Some(180_000)));
        assert_eq!(Period::Forever.window(125_000), (0, None));
    }
}
