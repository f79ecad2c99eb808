//! Platform time as accounting sees it: the later of the configured clock and
//! the latest sale time applied, so that weeks become due when either the
//! clock or the event stream says they are over. The ledger feeds it the
//! sales this process applies; the closer feeds it the shared partition
//! watermarks, so it includes sale time applied by every instance of the group.
//!
//! Guarantee: it never goes backwards within a process. After a restart it
//! starts again from the clock until the closer's first pass reads the shared
//! watermarks. Being due is not enough to close: the closer also waits for
//! every sales partition ([`crate::horizon`]).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use mamochi_common::clock::Clock;

/// The clock plus the event-time watermark.
#[derive(Debug)]
pub struct PlatformTime {
    clock: Clock,
    /// Latest sale `occurred_at` seen, in ms since the epoch.
    watermark_ms: AtomicI64,
    /// Latest value handed out, so readers never see time go backwards.
    last_ms: AtomicI64,
}

impl PlatformTime {
    pub fn new(clock: Clock) -> Self {
        Self { clock, watermark_ms: AtomicI64::new(i64::MIN), last_ms: AtomicI64::new(i64::MIN) }
    }

    /// The configured clock alone (no watermark): what converts platform
    /// durations into real ones.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Platform time now.
    pub fn now(&self) -> DateTime<Utc> {
        let candidate = self.clock.now().timestamp_millis().max(self.watermark_ms.load(Ordering::Acquire));
        let previous = self.last_ms.fetch_max(candidate, Ordering::AcqRel);
        let ms = previous.max(candidate);
        DateTime::from_timestamp_millis(ms).unwrap_or_else(|| self.clock.now())
    }

    /// Records that a sale happened at `occurred_at`; returns whether the
    /// watermark moved forward.
    pub fn observe(&self, occurred_at: DateTime<Utc>) -> bool {
        let ms = occurred_at.timestamp_millis();
        self.watermark_ms.fetch_max(ms, Ordering::AcqRel) < ms
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use mamochi_common::clock::TimeSettings;

    use super::*;

    fn clock_at(platform: DateTime<Utc>) -> Clock {
        Clock::from_settings(&TimeSettings {
            scale: 1.0,
            anchor_real: Some(Utc::now()),
            anchor_platform: Some(platform),
        })
        .expect("valid clock")
    }

    #[test]
    fn a_later_sale_moves_platform_time_forward_and_an_earlier_one_does_not() {
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).single().expect("instant");
        let time = PlatformTime::new(clock_at(start));

        assert!(time.observe(start + Duration::days(3)));
        assert!(!time.observe(start + Duration::days(1)));

        let now = time.now();
        assert!(now >= start + Duration::days(3) && now < start + Duration::days(3) + Duration::minutes(1), "{now}");
    }

    #[test]
    fn without_sales_it_is_the_clock() {
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).single().expect("instant");
        let time = PlatformTime::new(clock_at(start));
        let drift = (time.now() - start).num_milliseconds();
        assert!((0..60_000).contains(&drift), "drift {drift} ms");
    }
}
