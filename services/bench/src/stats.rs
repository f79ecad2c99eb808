//! Latency recording and its summaries.
//!
//! Client-side latencies go into an HDR histogram (microseconds, three
//! significant digits), so percentiles are exact to 0.1 % whatever the
//! spread, and recording costs the same at 250 or 40,000 samples a second.
//! Server-side figures come from Prometheus histograms instead; those only
//! know bucket counts, so their percentiles are interpolated inside a bucket
//! and carry that flag into the report.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Longest latency the recorder tells apart: one hour, in microseconds.
/// Anything longer is recorded as an hour; no stage runs that long.
const HIGHEST_US: u64 = 3_600_000_000;

/// A latency distribution as the report shows it, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Read from Prometheus buckets: percentiles are linear interpolations
    /// inside a bucket and `max_ms` is the upper bound of the highest bucket used.
    pub interpolated: bool,
}

/// Records latencies of one kind (one stage, one lane…).
#[derive(Debug, Clone)]
pub struct Recorder {
    histogram: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        // Bounds and precision are constants that hdrhistogram accepts.
        let histogram = Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("constant histogram bounds are valid");
        Self { histogram }
    }

    pub fn record(&mut self, latency: Duration) {
        self.record_us(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records a latency in microseconds; zero counts as one (the lowest
    /// value the histogram holds), longer than an hour as an hour.
    pub fn record_us(&mut self, micros: u64) {
        self.histogram.saturating_record(micros.clamp(1, HIGHEST_US));
    }

    /// Records a latency given in milliseconds, negative ones as zero
    /// (two clocks a millisecond apart can produce those).
    pub fn record_ms(&mut self, millis: f64) {
        self.record_us((millis.max(0.0) * 1000.0).round() as u64);
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    pub fn summary(&self) -> Latency {
        if self.histogram.is_empty() {
            return Latency::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            count: self.histogram.len(),
            mean_ms: self.histogram.mean() / 1000.0,
            p50_ms: ms(self.histogram.value_at_quantile(0.50)),
            p95_ms: ms(self.histogram.value_at_quantile(0.95)),
            p99_ms: ms(self.histogram.value_at_quantile(0.99)),
            max_ms: ms(self.histogram.max()),
            interpolated: false,
        }
    }
}

/// One Prometheus histogram's cumulative buckets (`le` in seconds), sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    /// `(upper bound in seconds, cumulative count)`, ascending; `+Inf` last.
    pub cumulative: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl Buckets {
    /// What was observed between `before` and `self` (both scraped from the
    /// same series), so one stage's figures are not mixed with earlier ones.
    pub fn since(&self, before: &Buckets) -> Buckets {
        let earlier =
            |bound: f64| before.cumulative.iter().find(|(b, _)| same_bound(*b, bound)).map_or(0.0, |(_, count)| *count);
        Buckets {
            cumulative: self
                .cumulative
                .iter()
                .map(|(bound, count)| (*bound, (count - earlier(*bound)).max(0.0)))
                .collect(),
            sum: (self.sum - before.sum).max(0.0),
            count: (self.count - before.count).max(0.0),
        }
    }

    /// Percentiles by linear interpolation inside the bucket that holds
    /// them; `None` when nothing was observed.
    pub fn summary(&self) -> Option<Latency> {
        if self.count < 1.0 {
            return None;
        }
        let quantile = |q: f64| -> f64 {
            let target = q * self.count;
            let mut lower = (0.0, 0.0);
            for &(bound, cumulative) in &self.cumulative {
                if cumulative >= target {
                    if bound.is_infinite() {
                        return lower.0;
                    }
                    let in_bucket = cumulative - lower.1;
                    let fraction = if in_bucket > 0.0 { (target - lower.1) / in_bucket } else { 1.0 };
                    return lower.0 + (bound - lower.0) * fraction;
                }
                lower = (bound, cumulative);
            }
            lower.0
        };
        let highest = self
            .cumulative
            .iter()
            .zip(std::iter::once(&(0.0, 0.0)).chain(self.cumulative.iter()))
            .filter(|((_, count), (_, previous))| count > previous)
            .map(|((bound, _), (previous_bound, _))| if bound.is_infinite() { *previous_bound } else { *bound })
            .fold(0.0, f64::max);
        Some(Latency {
            count: self.count as u64,
            mean_ms: self.sum / self.count * 1000.0,
            p50_ms: quantile(0.50) * 1000.0,
            p95_ms: quantile(0.95) * 1000.0,
            p99_ms: quantile(0.99) * 1000.0,
            max_ms: highest * 1000.0,
            interpolated: true,
        })
    }
}

fn same_bound(a: f64, b: f64) -> bool {
    (a.is_infinite() && b.is_infinite()) || (a - b).abs() < 1e-12
}

/// Milliseconds the way a table reads best: two decimals under 10 ms, one
/// under 100, none above (with thousands separators).
pub fn fmt_ms(millis: f64) -> String {
    if !millis.is_finite() {
        return "–".to_string();
    }
    if millis < 10.0 {
        format!("{millis:.2}")
    } else if millis < 100.0 {
        format!("{millis:.1}")
    } else {
        thousands(millis.round() as i64)
    }
}

/// A count or rate, rounded, with thousands separators (`12,345`).
pub fn fmt_count(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_string();
    }
    if value.abs() < 10.0 && value.fract() != 0.0 {
        return format!("{value:.1}");
    }
    thousands(value.round() as i64)
}

/// Commas between thousands (English tables), grouped by the guild's rule.
fn thousands(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    format!("{sign}{}", mamochi_rules::money::group_thousands(value.unsigned_abs(), ','))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_spread_land_where_expected() {
        let mut recorder = Recorder::new();
        for millis in 1..=1000 {
            recorder.record(Duration::from_millis(millis));
        }

        let latency = recorder.summary();

        assert_eq!(latency.count, 1000);
        assert!((latency.p50_ms - 500.0).abs() < 1.0, "{latency:?}");
        assert!((latency.p99_ms - 990.0).abs() < 1.0, "{latency:?}");
        assert!((latency.max_ms - 1000.0).abs() < 1.0, "{latency:?}");
        assert!(!latency.interpolated);
    }

    #[test]
    fn an_empty_recorder_summarises_to_zero() {
        assert_eq!(Recorder::new().summary(), Latency::default());
    }

    #[test]
    fn negative_and_huge_latencies_are_clamped_not_lost() {
        let mut recorder = Recorder::new();
        recorder.record_ms(-3.0);
        recorder.record_ms(1e12);
        assert_eq!(recorder.count(), 2);
    }

    #[test]
    fn bucket_differences_interpolate_inside_the_bucket() {
        let before = Buckets { cumulative: vec![(0.01, 5.0), (0.1, 5.0), (f64::INFINITY, 5.0)], sum: 0.02, count: 5.0 };
        // 100 new observations, all between 10 and 100 ms.
        let after =
            Buckets { cumulative: vec![(0.01, 5.0), (0.1, 105.0), (f64::INFINITY, 105.0)], sum: 5.02, count: 105.0 };

        let latency = after.since(&before).summary().expect("observations");

        assert_eq!(latency.count, 100);
        assert!((latency.p50_ms - 55.0).abs() < 1e-6, "{latency:?}");
        assert!((latency.p99_ms - 99.1).abs() < 1e-6, "{latency:?}");
        assert!((latency.max_ms - 100.0).abs() < 1e-6);
        assert!((latency.mean_ms - 50.0).abs() < 1e-6);
        assert!(latency.interpolated);
    }

    #[test]
    fn no_new_observations_means_no_summary() {
        let same = Buckets { cumulative: vec![(0.1, 3.0), (f64::INFINITY, 3.0)], sum: 0.1, count: 3.0 };
        assert_eq!(same.since(&same).summary(), None);
    }

    #[test]
    fn numbers_format_for_tables() {
        assert_eq!(fmt_ms(0.4261), "0.43");
        assert_eq!(fmt_ms(42.26), "42.3");
        assert_eq!(fmt_ms(12_345.6), "12,346");
        assert_eq!(fmt_count(1_234_567.0), "1,234,567");
        assert_eq!(fmt_count(-1200.0), "-1,200");
        assert_eq!(fmt_count(2.5), "2.5");
        assert_eq!(fmt_count(f64::NAN), "–");
    }
}
