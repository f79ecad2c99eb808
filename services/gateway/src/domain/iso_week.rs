//! An ISO week label, `YYYY-Www`, as accounting stores it (e.g. `2026-W47`).
//! The guild's weeks are calendar weeks in America/Santiago time; the rule is
//! mamochi-rules' `week::Week`, the one accounting closes weeks by.

use chrono::{DateTime, Utc};
use mamochi_rules::week::Week;

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoWeek(String);

impl IsoWeek {
    /// Parses `YYYY-Www`; the week must exist in that ISO year (W53 only in long years).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new("must be an ISO week such as 2026-W47");
        let (year, week) = raw.split_once("-W").ok_or_else(invalid)?;
        if year.len() != 4 || week.len() != 2 || !(year.bytes().chain(week.bytes())).all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        // Whether the week exists is the guild's week rule (mamochi-rules).
        Week::parse(raw).map(|week| Self(week.label)).ok_or_else(invalid)
    }

    /// The week containing `instant`, in the guild's time zone.
    pub fn containing(instant: DateTime<Utc>) -> Self {
        Self(Week::containing(instant).label)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_labels_parse_and_malformed_ones_do_not() {
        assert_eq!(IsoWeek::parse("2026-W47").map(|w| w.0), Ok("2026-W47".into()));
        assert!(IsoWeek::parse("2026-W53").is_ok(), "2026 has 53 ISO weeks");
        for raw in ["2025-W53", "2026-W00", "2026-W7", "2026W47", "26-W47", "2026-w47", "2026-W4x", ""] {
            assert!(IsoWeek::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn the_week_is_taken_in_santiago_time() {
        // Monday 2026-11-23 02:00 UTC is still Sunday 23:00 in Santiago (UTC-3).
        let instant =
            DateTime::parse_from_rfc3339("2026-11-23T02:00:00Z").map(|t| t.with_timezone(&Utc)).expect("instant");
        assert_eq!(IsoWeek::containing(instant).as_str(), "2026-W47");
    }
}
