//! The open-loop timetable: when each request of a fixed-rate stage is due.
//!
//! Request `i` of a stage at `rate` per second is due `i / rate` seconds
//! after the stage starts, whatever happened to the requests before it.
//! Latency is then measured from that due time, not from when the request
//! actually left: if the system stalls, the requests queued behind the stall
//! carry the stall in their latency instead of silently being sent later
//! (the "coordinated omission" a closed-loop client hides).

use std::time::Duration;

/// Due times of the requests of one fixed-rate stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timetable {
    rate: f64,
    count: u64,
}

impl Timetable {
    /// `rate` requests per second for `duration`; a rate that is not a
    /// positive number yields an empty timetable.
    pub fn new(rate: f64, duration: Duration) -> Self {
        let count = if rate.is_finite() && rate > 0.0 { (rate * duration.as_secs_f64()).round() as u64 } else { 0 };
        Self { rate, count }
    }

    /// How many requests the stage sends.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// When request `index` is due, from the start of the stage. Computed
    /// from the index (not by adding intervals) so rounding never drifts.
    pub fn due(&self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 / self.rate)
    }

    /// How many requests are due at or before `elapsed` (capped at the count).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let due = (elapsed.as_secs_f64() * self.rate).floor() as u64 + 1;
        due.min(self.count)
    }
}

/// Spreads `count` requests over `vendors` round-robin, so every vendor's
/// key and partition gets its share of the load.
pub fn vendor_for(index: u64, vendors: usize) -> usize {
    if vendors == 0 {
        0
    } else {
        (index % vendors as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_sends_rate_times_duration_requests() {
        assert_eq!(Timetable::new(1000.0, Duration::from_secs(2)).count(), 2000);
        assert_eq!(Timetable::new(250.0, Duration::from_millis(10_000)).count(), 2500);
        assert_eq!(Timetable::new(0.0, Duration::from_secs(5)).count(), 0);
        assert_eq!(Timetable::new(f64::NAN, Duration::from_secs(5)).count(), 0);
    }

    #[test]
    fn requests_are_due_at_even_intervals_without_drift() {
        let table = Timetable::new(4000.0, Duration::from_secs(10));
        assert_eq!(table.due(0), Duration::ZERO);
        assert_eq!(table.due(1), Duration::from_micros(250));
        assert_eq!(table.due(39_999), Duration::from_secs_f64(39_999.0 / 4000.0));
        let mut previous = Duration::ZERO;
        for index in 1..table.count() {
            let due = table.due(index);
            assert!(due > previous);
            previous = due;
        }
    }

    #[test]
    fn due_by_counts_what_the_dispatcher_must_have_sent() {
        let table = Timetable::new(1000.0, Duration::from_secs(1));
        assert_eq!(table.due_by(Duration::ZERO), 1, "request 0 is due at once");
        assert_eq!(table.due_by(Duration::from_micros(10_500)), 11);
        assert_eq!(table.due_by(Duration::from_secs(5)), 1000, "never more than the stage holds");
    }

    #[test]
    fn vendors_take_turns() {
        let picks: Vec<usize> = (0..6).map(|index| vendor_for(index, 4)).collect();
        assert_eq!(picks, vec![0, 1, 2, 3, 0, 1]);
        assert_eq!(vendor_for(7, 0), 0);
    }
}
