//! Platform time: real time, or real time sped up by a configured scale.
//!
//! Business rules (which ISO week a sale belongs to, when a week closes) read
//! the time from a [`Clock`], never from the system directly. With
//! `time.scale = 1` (the default) platform time is real time. A demo sets a
//! larger scale and an anchor — "at real instant R, platform time is V" — so
//! that a week passes in minutes. Every process configured with the same
//! anchor and scale computes the same platform time; nothing in the business
//! logic knows it is a demo.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

/// `[time]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct TimeSettings {
    /// Platform seconds per real second.
    pub scale: f64,
    /// Real instant at which platform time equals `anchor_platform`.
    pub anchor_real: Option<DateTime<Utc>>,
    /// Platform time at `anchor_real`.
    pub anchor_platform: Option<DateTime<Utc>>,
}

/// Source of platform time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    scale: f64,
    anchor_real: DateTime<Utc>,
    anchor_platform: DateTime<Utc>,
}

/// Why time settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("time.scale must be a positive number, got {0}")]
    Scale(f64),
}

impl Clock {
    /// Real time.
    pub fn real() -> Self {
        let now = Utc::now();
        Self { scale: 1.0, anchor_real: now, anchor_platform: now }
    }

    pub fn from_settings(settings: &TimeSettings) -> Result<Self, ClockError> {
        if !(settings.scale.is_finite() && settings.scale > 0.0) {
            return Err(ClockError::Scale(settings.scale));
        }
        let anchor_real = settings.anchor_real.unwrap_or_else(Utc::now);
        let anchor_platform = settings.anchor_platform.unwrap_or(anchor_real);
        Ok(Self { scale: settings.scale, anchor_real, anchor_platform })
    }

    /// Platform time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.at(Utc::now())
    }

    /// Platform time at a given real instant.
    pub fn at(&self, real: DateTime<Utc>) -> DateTime<Utc> {
        let elapsed_ms = (real - self.anchor_real).num_milliseconds() as f64 * self.scale;
        self.anchor_platform + Duration::milliseconds(elapsed_ms.round() as i64)
    }

    /// Real time that passes while `platform` time passes.
    pub fn real_duration(&self, platform: Duration) -> std::time::Duration {
        let ms = (platform.num_milliseconds() as f64 / self.scale).max(0.0);
        std::time::Duration::from_millis(ms.round() as u64)
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn settings(scale: f64) -> TimeSettings {
        TimeSettings {
            scale,
            anchor_real: Some(Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).single().expect("instant")),
            anchor_platform: Some(Utc.with_ymd_and_hms(2026, 11, 16, 3, 0, 0).single().expect("instant")),
        }
    }

    #[test]
    fn a_scaled_clock_runs_faster_from_its_anchor() {
        let clock = Clock::from_settings(&settings(2016.0)).expect("valid");
        let five_real_minutes_later = Utc.with_ymd_and_hms(2026, 11, 22, 12, 5, 0).single().expect("instant");

        let platform = clock.at(five_real_minutes_later);

        assert_eq!(platform, Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).single().expect("instant"), "one week later");
        assert_eq!(clock.real_duration(Duration::weeks(1)), std::time::Duration::from_secs(300));
    }

    #[test]
    fn two_processes_with_the_same_settings_agree() {
        let a = Clock::from_settings(&settings(60.0)).expect("valid");
        let b = Clock::from_settings(&settings(60.0)).expect("valid");
        let real = Utc.with_ymd_and_hms(2026, 11, 22, 13, 0, 0).single().expect("instant");
        assert_eq!(a.at(real), b.at(real));
    }

    #[test]
    fn a_non_positive_scale_is_refused() {
        assert!(Clock::from_settings(&settings(0.0)).is_err());
        assert!(Clock::from_settings(&settings(f64::NAN)).is_err());
    }

    #[test]
    fn the_default_is_real_time() {
        let clock = Clock::from_settings(&TimeSettings { scale: 1.0, anchor_real: None, anchor_platform: None })
            .expect("valid");
        let drift = (clock.now() - Utc::now()).num_milliseconds().abs();
        assert!(drift < 1_000, "drift {drift} ms");
    }
}
