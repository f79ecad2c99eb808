//! The guild's day: a local calendar date in America/Santiago and its hours,
//! as daily figures count them.
//!
//! Guarantees: every instant has exactly one local date and hour
//! ([`local_date_hour`]), and belongs to exactly one [`Day`]
//! (`start <= instant < end`) whose date is that local date; consecutive days
//! touch without gap or overlap. Days that contain a daylight-saving change
//! last 23 or 25 hours, nothing here assumes 24: when clocks go back (the
//! first Saturday night of April, 24:00 → 23:00) the 23:00 hour happens twice
//! and both occurrences are hour 23 of the same date; when they go forward
//! (the first Sunday of September, 00:00 → 01:00) that day has no hour 0 and
//! starts at 01:00.

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};

use crate::week::{local_midnight, ZONE};

/// The local date and hour (0–23) of `instant` in the guild's time zone.
pub fn local_date_hour(instant: DateTime<Utc>) -> (NaiveDate, u32) {
    let local = instant.with_timezone(&ZONE);
    (local.date_naive(), local.hour())
}

/// One local calendar day in America/Santiago.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Day {
    pub date: NaiveDate,
    /// The day's first local instant (midnight, or the end of a DST gap), as UTC.
    pub start: DateTime<Utc>,
    /// The next day's first local instant, as UTC (exclusive).
    pub end: DateTime<Utc>,
}

impl Day {
    /// The day of local date `date`.
    pub fn of(date: NaiveDate) -> Self {
        let next = date.succ_opt().unwrap_or(date);
        Self { date, start: local_midnight(date), end: local_midnight(next) }
    }

    /// The day containing `instant`.
    pub fn containing(instant: DateTime<Utc>) -> Self {
        Self::of(local_date_hour(instant).0)
    }

    /// Parses `YYYY-MM-DD` (exactly ten characters, a date that exists);
    /// `None` otherwise.
    pub fn parse(raw: &str) -> Option<Self> {
        let bytes = raw.as_bytes();
        let shape = bytes.len() == 10
            && bytes.iter().enumerate().all(|(index, byte)| match index {
                4 | 7 => *byte == b'-',
                _ => byte.is_ascii_digit(),
            });
        if !shape {
            return None;
        }
        let number = |range: std::ops::Range<usize>| raw[range].parse::<u32>().ok();
        let year = i32::try_from(number(0..4)?).ok()?;
        NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?).map(Self::of)
    }

    /// The day after this one.
    pub fn next(&self) -> Self {
        Self::containing(self.end)
    }

    /// How long it lasts: 24 hours, or 23 or 25 across a DST change.
    pub fn length(&self) -> Duration {
        self.end - self.start
    }

    /// Whether `instant` falls in this day.
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.start <= instant && instant < self.end
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Offset, TimeZone};

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("rfc3339").with_timezone(&Utc)
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    /// The zone's UTC offset in hours at `instant`, from chrono-tz itself.
    fn offset_hours(instant: &str) -> i32 {
        ZONE.offset_from_utc_datetime(&utc(instant).naive_utc()).fix().local_minus_utc() / 3600
    }

    #[test]
    fn the_zone_data_has_the_2026_changes_where_this_module_expects_them() {
        // Summer time (UTC-3) until Saturday 2026-04-04 24:00 local = 03:00 UTC on the 5th.
        assert_eq!(offset_hours("2026-04-05T02:59:59Z"), -3);
        assert_eq!(offset_hours("2026-04-05T03:00:00Z"), -4);
        // Winter time (UTC-4) until Sunday 2026-09-06 00:00 local = 04:00 UTC.
        assert_eq!(offset_hours("2026-09-06T03:59:59Z"), -4);
        assert_eq!(offset_hours("2026-09-06T04:00:00Z"), -3);
        // Local 2026-04-04 23:30 happens twice; local 2026-09-06 00:30 never does.
        let repeated = date("2026-04-04").and_hms_opt(23, 30, 0).expect("time");
        assert!(matches!(ZONE.from_local_datetime(&repeated), chrono::LocalResult::Ambiguous(..)));
        let skipped = date("2026-09-06").and_hms_opt(0, 30, 0).expect("time");
        assert!(matches!(ZONE.from_local_datetime(&skipped), chrono::LocalResult::None));
    }

    #[test]
    fn an_ordinary_day_runs_from_local_midnight_to_the_next() {
        let day = Day::of(date("2026-11-18"));
        assert_eq!((day.start, day.end), (utc("2026-11-18T03:00:00Z"), utc("2026-11-19T03:00:00Z")));
        assert_eq!(day.length(), Duration::hours(24));
        assert_eq!(local_date_hour(utc("2026-11-19T02:59:59Z")), (date("2026-11-18"), 23));
        assert_eq!(local_date_hour(utc("2026-11-19T03:00:00Z")), (date("2026-11-19"), 0));
    }

    #[test]
    fn when_clocks_go_back_the_day_has_25_hours_and_23_happens_twice() {
        let day = Day::of(date("2026-04-04"));
        assert_eq!(day.start, utc("2026-04-04T03:00:00Z"), "midnight at UTC-3");
        assert_eq!(day.end, utc("2026-04-05T04:00:00Z"), "the next midnight at UTC-4");
        assert_eq!(day.length(), Duration::hours(25));
        // The first 23:00 (UTC-3) and the second (UTC-4) are both hour 23 of the 4th.
        assert_eq!(local_date_hour(utc("2026-04-05T02:00:00Z")), (date("2026-04-04"), 23));
        assert_eq!(local_date_hour(utc("2026-04-05T02:59:59Z")), (date("2026-04-04"), 23));
        assert_eq!(local_date_hour(utc("2026-04-05T03:00:00Z")), (date("2026-04-04"), 23));
        assert_eq!(local_date_hour(utc("2026-04-05T03:59:59Z")), (date("2026-04-04"), 23));
        assert_eq!(local_date_hour(utc("2026-04-05T04:00:00Z")), (date("2026-04-05"), 0));
        assert_eq!(local_date_hour(utc("2026-04-04T02:59:59Z")), (date("2026-04-03"), 23));
        assert_eq!(local_date_hour(utc("2026-04-04T03:00:00Z")), (date("2026-04-04"), 0));
        assert_eq!(Day::containing(utc("2026-04-05T03:30:00Z")), day);
    }

    #[test]
    fn when_clocks_go_forward_the_day_has_23_hours_and_starts_at_one() {
        let day = Day::of(date("2026-09-06"));
        assert_eq!(day.start, utc("2026-09-06T04:00:00Z"), "01:00 at UTC-3: 00:00 does not exist");
        assert_eq!(day.end, utc("2026-09-07T03:00:00Z"));
        assert_eq!(day.length(), Duration::hours(23));
        assert_eq!(local_date_hour(utc("2026-09-06T03:59:59Z")), (date("2026-09-05"), 23));
        assert_eq!(local_date_hour(utc("2026-09-06T04:00:00Z")), (date("2026-09-06"), 1));
        let hours: std::collections::BTreeSet<u32> =
            (0..23).map(|hour| local_date_hour(day.start + Duration::hours(hour)).1).collect();
        assert_eq!(hours, (1..24).collect(), "no hour 0 that day");
        // The day before is an ordinary one that ends where this one starts.
        let before = Day::of(date("2026-09-05"));
        assert_eq!((before.end, before.length()), (day.start, Duration::hours(24)));
    }

    #[test]
    fn days_touch_and_every_instant_is_in_its_day() {
        let mut day = Day::of(date("2026-03-25"));
        for _ in 0..200 {
            let next = day.next();
            assert_eq!(next.start, day.end, "{}", day.date);
            assert_eq!(Some(next.date), day.date.succ_opt());
            day = next;
        }
        let mut instant = utc("2026-04-02T00:00:00Z");
        while instant < utc("2026-09-09T00:00:00Z") {
            let day = Day::containing(instant);
            assert!(day.contains(instant), "{instant}");
            assert_eq!(day.date, local_date_hour(instant).0);
            instant += Duration::minutes(53);
        }
    }

    #[test]
    fn only_real_dates_in_the_exact_format_parse() {
        assert_eq!(Day::parse("2026-04-04"), Some(Day::of(date("2026-04-04"))));
        assert_eq!(Day::parse("2028-02-29").map(|day| day.date), Some(date("2028-02-29")));
        for raw in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-4-4",
            "26-04-04",
            "2026/04/04",
            "",
            "2026-04-04T00",
            "+2026-04-0",
            "２026-04-04",
        ] {
            assert_eq!(Day::parse(raw), None, "{raw}");
        }
    }
}
