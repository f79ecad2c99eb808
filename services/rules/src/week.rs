//! ISO weeks as the guild lives them: Monday 00:00 to the next Monday 00:00,
//! America/Santiago local time, expressed as UTC instants.
//!
//! Guarantees: every instant belongs to exactly one [`Week`]
//! (`start <= instant < end`), consecutive weeks touch without gap or overlap,
//! and the label (`YYYY-Www`, the ISO week-numbering year) sorts in time
//! order as text. Weeks that contain a daylight-saving change last 167 or 169
//! hours; nothing here assumes 168.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::America::Santiago;
use chrono_tz::Tz;

/// The guild's time zone.
pub const ZONE: Tz = Santiago;

/// One ISO week in America/Santiago.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Week {
    /// `YYYY-Www`, e.g. `2026-W47`.
    pub label: String,
    /// Local Monday 00:00, as UTC.
    pub start: DateTime<Utc>,
    /// The next local Monday 00:00, as UTC (exclusive).
    pub end: DateTime<Utc>,
}

impl Week {
    /// The week containing `instant`.
    pub fn containing(instant: DateTime<Utc>) -> Self {
        let local_date = instant.with_timezone(&ZONE).date_naive();
        let monday = local_date - Duration::days(i64::from(local_date.weekday().num_days_from_monday()));
        Self::starting_on(monday)
    }

    /// Parses a `YYYY-Www` label; `None` if it names no ISO week.
    pub fn parse(label: &str) -> Option<Self> {
        let (year, week) = label.split_once("-W")?;
        if year.len() != 4 || week.len() != 2 {
            return None;
        }
        let monday = NaiveDate::from_isoywd_opt(year.parse().ok()?, week.parse().ok()?, Weekday::Mon)?;
        Some(Self::starting_on(monday))
    }

    /// The week after this one.
    pub fn next(&self) -> Self {
        Self::containing(self.end)
    }

    /// The week before this one.
    pub fn previous(&self) -> Self {
        Self::containing(self.start - Duration::milliseconds(1))
    }

    /// Whether `instant` falls in this week.
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.start <= instant && instant < self.end
    }

    /// The local calendar dates of its Monday and Sunday, for people.
    pub fn local_dates(&self) -> (NaiveDate, NaiveDate) {
        let monday = self.start.with_timezone(&ZONE).date_naive();
        (monday, monday + Duration::days(6))
    }

    fn starting_on(monday: NaiveDate) -> Self {
        let iso = monday.iso_week();
        Self {
            label: format!("{:04}-W{:02}", iso.year(), iso.week()),
            start: local_midnight(monday),
            end: local_midnight(monday + Duration::days(7)),
        }
    }
}

/// Local midnight of `date` as a UTC instant. When a clock change makes
/// midnight happen twice, the first one counts; when it makes midnight not
/// happen at all, the first local instant after the gap counts.
pub(crate) fn local_midnight(date: NaiveDate) -> DateTime<Utc> {
    let midnight = NaiveDateTime::from(date);
    // A gap is at most a couple of hours; probe forward a minute at a time.
    for minutes in 0..=(3 * 60) {
        if let Some(instant) = ZONE.from_local_datetime(&(midnight + Duration::minutes(minutes))).earliest() {
            return instant.with_timezone(&Utc);
        }
    }
    // Unreachable with real zone data; fall back to the standard offset (-4h).
    Utc.from_utc_datetime(&(midnight + Duration::hours(4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("rfc3339").with_timezone(&Utc)
    }

    #[test]
    fn a_week_runs_from_local_monday_midnight_to_the_next() {
        // Summer (UTC-3): Monday 2026-11-16 00:00 local is 03:00 UTC.
        let week = Week::containing(utc("2026-11-18T15:00:00Z"));
        assert_eq!(week.label, "2026-W47");
        assert_eq!(week.start, utc("2026-11-16T03:00:00Z"));
        assert_eq!(week.end, utc("2026-11-23T03:00:00Z"));
    }

    #[test]
    fn the_local_date_decides_not_the_utc_date() {
        // Monday 01:00 UTC is still Sunday 22:00 in Santiago: previous week.
        assert_eq!(Week::containing(utc("2026-11-23T01:00:00Z")).label, "2026-W47");
        assert_eq!(Week::containing(utc("2026-11-23T03:00:00Z")).label, "2026-W48");
        assert_eq!(Week::containing(utc("2026-11-23T02:59:59.999Z")).label, "2026-W47");
    }

    #[test]
    fn dst_weeks_last_167_or_169_hours() {
        // DST ends the first Sunday of April (clocks go back): one hour more.
        let april = Week::containing(utc("2026-04-01T12:00:00Z"));
        assert_eq!(april.label, "2026-W14");
        assert_eq!(april.end - april.start, Duration::hours(169));
        // DST starts the first Sunday of September (clocks go forward): one hour less.
        let september = Week::containing(utc("2026-09-02T12:00:00Z"));
        assert_eq!(september.label, "2026-W36");
        assert_eq!(september.end - september.start, Duration::hours(167));
        assert_eq!(
            Week::containing(utc("2026-07-01T12:00:00Z")).end - Week::containing(utc("2026-07-01T12:00:00Z")).start,
            Duration::hours(168)
        );
    }

    #[test]
    fn weeks_touch_without_gaps_across_years_and_dst() {
        let mut week = Week::containing(utc("2025-12-01T12:00:00Z"));
        for _ in 0..60 {
            let next = week.next();
            assert_eq!(next.start, week.end, "{} -> {}", week.label, next.label);
            assert!(next.label > week.label, "labels sort in time order: {} then {}", week.label, next.label);
            assert_eq!(next.previous(), week);
            week = next;
        }
    }

    #[test]
    fn the_iso_year_can_differ_from_the_calendar_year() {
        // 2026-12-30 is a Wednesday of ISO week 2026-W53; 2027-01-04 starts 2027-W01.
        assert_eq!(Week::containing(utc("2027-01-02T12:00:00Z")).label, "2026-W53");
        assert_eq!(Week::containing(utc("2027-01-04T12:00:00Z")).label, "2027-W01");
    }

    #[test]
    fn labels_parse_back_to_the_same_week() {
        let week = Week::containing(utc("2026-09-03T12:00:00Z"));
        assert_eq!(Week::parse(&week.label), Some(week));
        assert_eq!(Week::parse("2026-W54"), None);
        assert_eq!(Week::parse("garbage"), None);
        assert_eq!(Week::parse("26-W01"), None);
    }

    #[test]
    fn every_instant_is_in_its_week() {
        let mut instant = utc("2026-03-28T00:00:00Z");
        while instant < utc("2026-04-10T00:00:00Z") {
            assert!(Week::containing(instant).contains(instant), "{instant}");
            instant += Duration::minutes(37);
        }
    }
}
