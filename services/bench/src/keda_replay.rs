//! KEDA's Kafka scaler rule, replayed over a consumer-lag series the bench
//! measured: how many replicas of a consumer service KEDA (through the
//! Horizontal Pod Autoscaler it drives) would have asked for at each moment.
//!
//! The rule, as KEDA and Kubernetes document it:
//! - the Kafka scaler reports the group's total lag (high watermark −
//!   committed offset, summed over the topic's partitions) as an
//!   `AverageValue` metric whose target is `lagThreshold` ("average target
//!   value to trigger scaling actions"), so the HPA asks for
//!   `ceil(total lag / lagThreshold)` replicas;
//! - unless `allowIdleConsumers` is set, replicas never exceed the topic's
//!   partition count (a consumer beyond it would sit idle), nor
//!   `maxReplicaCount`, and never drop below `minReplicaCount`;
//! - the metric is read every `pollingInterval` (30 s by default);
//! - with `minReplicaCount` ≥ 1, `cooldownPeriod` (300 s by default) does not
//!   apply: it only governs scaling to zero. Scaling down from N replicas is
//!   the HPA's, which keeps the highest recommendation of its scale-down
//!   stabilization window (300 s by default); scaling up is immediate, at
//!   most doubling or adding four pods per step (the HPA's default policy);
//! - the HPA leaves the count alone while the metric is within 10 % of its
//!   target (its default tolerance).
//!
//! Guarantee: [`replay`] is a pure function of the samples and the policy;
//! it is open loop: the lag series was measured with one instance per group,
//! so it shows what KEDA would have *asked for*, not how the extra replicas
//! would then have shortened the backlog.

use serde::Serialize;

/// The HPA's default tolerance around the target ratio.
pub const TOLERANCE: f64 = 0.1;
/// KEDA's default `pollingInterval`, seconds.
pub const DEFAULT_POLLING_S: f64 = 30.0;
/// The HPA's default scale-down stabilization window (and KEDA's default
/// `cooldownPeriod`), seconds.
pub const DEFAULT_SCALE_DOWN_WINDOW_S: f64 = 300.0;

/// The `lagThreshold` and replica bounds of one consumer group's
/// ScaledObject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Threshold {
    /// The group's short name, as the bench labels its lag samples.
    pub group: &'static str,
    pub lag_threshold: u64,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// The partitions of the topic the group reads (the replica ceiling).
    pub partitions: u32,
}

/// The values of deploy/k8s's ScaledObjects (`deploy/k8s/base/*.yaml`, and
/// the thresholds table in docs/kubernetes.md, which deploy/k8s/check.py
/// holds the manifests to): change the three together.
///
/// How those were chosen (docs/kubernetes.md): `lagThreshold` is two
/// seconds of one consumer's measured drain rate (the committed release
/// report: accounting 13,513 and the distributor 13,002 sales/s, approval
/// 667 forms/s), so a replica is added for every two seconds of work queued;
/// not less, because offsets are committed every second and a group that
/// keeps up still shows up to a second of traffic as lag. The notifier's is
/// not measured (an assumption of 20–50 emails/s). `maxReplicaCount` is the
/// topic's partitions.
pub const THRESHOLDS: [Threshold; 4] = [
    Threshold { group: "accounting", lag_threshold: 27_000, min_replicas: 1, max_replicas: 6, partitions: 6 },
    Threshold { group: "distributor", lag_threshold: 26_000, min_replicas: 1, max_replicas: 6, partitions: 6 },
    Threshold { group: "approval", lag_threshold: 1_300, min_replicas: 1, max_replicas: 4, partitions: 4 },
    Threshold { group: "notifier", lag_threshold: 100, min_replicas: 1, max_replicas: 3, partitions: 3 },
];

/// deploy/k8s's `pollingInterval`, seconds (its scale-down keeps the HPA's
/// default 300 s stabilization window).
pub const DEPLOYED_POLLING_S: f64 = 15.0;

/// The threshold row of `group`, if the table has one.
pub fn threshold(group: &str) -> Option<Threshold> {
    THRESHOLDS.iter().copied().find(|row| row.group == group)
}

/// One ScaledObject's scaling behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Policy {
    pub lag_threshold: u64,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub partitions: u32,
    /// Seconds between two reads of the metric.
    pub polling_interval_s: f64,
    /// Seconds over which the highest recommendation holds a scale-down.
    pub scale_down_window_s: f64,
}

impl Policy {
    /// `threshold` with KEDA's and the HPA's default timings.
    pub fn documented_defaults(threshold: Threshold) -> Self {
        Self {
            lag_threshold: threshold.lag_threshold.max(1),
            min_replicas: threshold.min_replicas.max(1),
            max_replicas: threshold.max_replicas.max(1),
            partitions: threshold.partitions.max(1),
            polling_interval_s: DEFAULT_POLLING_S,
            scale_down_window_s: DEFAULT_SCALE_DOWN_WINDOW_S,
        }
    }

    /// The most replicas this policy can reach.
    pub fn ceiling(&self) -> u32 {
        self.max_replicas.min(self.partitions).max(self.min_replicas)
    }
}

/// The replicas the HPA recommends for `total_lag` while `current` run.
pub fn recommend(total_lag: i64, current: u32, policy: &Policy) -> u32 {
    let threshold = policy.lag_threshold.max(1) as f64;
    // The scaler caps its metric so the replicas never exceed the partitions.
    let lag = (total_lag.max(0) as f64).min(threshold * f64::from(policy.partitions));
    let current = current.max(1);
    let ratio = lag / (threshold * f64::from(current));
    let wanted = if (ratio - 1.0).abs() <= TOLERANCE { current } else { (lag / threshold).ceil() as u32 };
    wanted.clamp(policy.min_replicas, policy.ceiling())
}

/// The most replicas one scale-up step may reach from `current`: the HPA's
/// default policy, the larger of doubling and adding four.
pub fn scale_up_limit(current: u32) -> u32 {
    (current * 2).max(current + 4)
}

/// One evaluation of the replayed autoscaler.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Step {
    /// The sample clock's seconds.
    pub t_s: f64,
    /// The lag read at this evaluation (the last sample at or before it).
    pub lag: i64,
    /// What the rule asked for on this reading alone.
    pub recommended: u32,
    /// What ran after this evaluation (stabilized, rate-limited).
    pub replicas: u32,
}

/// Replays `samples` (time in seconds, total lag; any order) through
/// `policy`: one evaluation every `polling_interval_s` from the first
/// sample to the last, starting at `min_replicas`.
pub fn replay(samples: &[(f64, i64)], policy: &Policy) -> Vec<Step> {
    let mut sorted: Vec<(f64, i64)> = samples.iter().copied().filter(|(t, _)| t.is_finite()).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else { return Vec::new() };
    let (start, end) = (first.0, last.0);
    let interval = policy.polling_interval_s.max(0.001);
    let mut current = policy.min_replicas.max(1);
    let mut recommendations: Vec<(f64, u32)> = Vec::new();
    let mut steps = Vec::new();
    let mut next = 0;
    let mut lag = 0;
    let mut tick = 0u32;
    loop {
        let t = start + f64::from(tick) * interval;
        if t > end + 1e-9 {
            break;
        }
        while next < sorted.len() && sorted[next].0 <= t + 1e-9 {
            lag = sorted[next].1;
            next += 1;
        }
        let recommended = recommend(lag, current, policy);
        recommendations.push((t, recommended));
        let replicas = if recommended > current {
            recommended.min(scale_up_limit(current))
        } else {
            // Scale-down stabilization: the highest recommendation of the window.
            let window_high = recommendations
                .iter()
                .filter(|(at, _)| *at > t - policy.scale_down_window_s + 1e-9)
                .map(|(_, count)| *count)
                .max()
                .unwrap_or(recommended);
            window_high.min(current)
        };
        steps.push(Step { t_s: t, lag, recommended, replicas });
        current = replicas;
        tick += 1;
    }
    steps
}

/// Replica-seconds a replay used, and what a fixed fleet sized for the
/// peak would have used over the same span.
pub fn replica_seconds(steps: &[Step], interval_s: f64) -> (f64, f64) {
    let used = steps.iter().map(|step| f64::from(step.replicas) * interval_s).sum();
    let peak = steps.iter().map(|step| step.replicas).max().unwrap_or(0);
    (used, f64::from(peak) * interval_s * steps.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(threshold: u64) -> Policy {
        Policy {
            lag_threshold: threshold,
            min_replicas: 1,
            max_replicas: 10,
            partitions: 6,
            polling_interval_s: 30.0,
            scale_down_window_s: 300.0,
        }
    }

    #[test]
    fn replicas_are_lag_over_threshold_rounded_up() {
        let policy = policy(1_000);

        assert_eq!(recommend(2_500, 1, &policy), 3);
        assert_eq!(recommend(1_001 * 4, 1, &policy), 5);
        assert_eq!(recommend(0, 1, &policy), 1, "never below minReplicaCount");
    }

    #[test]
    fn partitions_and_max_replicas_cap_the_count() {
        let wide = policy(100);
        let narrow = Policy { max_replicas: 3, ..policy(100) };

        assert_eq!(recommend(1_000_000, 1, &wide), 6, "six partitions: a seventh consumer would sit idle");
        assert_eq!(recommend(1_000_000, 1, &narrow), 3, "maxReplicaCount below the partitions");
    }

    #[test]
    fn within_ten_percent_of_the_target_nothing_changes() {
        let policy = policy(1_000);

        assert_eq!(recommend(3_250, 3, &policy), 3, "ratio 1.08: inside the tolerance");
        assert_eq!(recommend(3_400, 3, &policy), 4, "ratio 1.13: outside it");
        assert_eq!(recommend(2_600, 3, &policy), 3, "ratio 0.87 → ceil(2.6) = 3");
    }

    #[test]
    fn scale_up_doubles_or_adds_four_per_step() {
        assert_eq!(scale_up_limit(1), 5);
        assert_eq!(scale_up_limit(5), 10);
    }

    #[test]
    fn a_spike_scales_up_at_the_next_poll_and_down_only_after_the_window() {
        // Lag of 5,000 from t=40 s to t=100 s, nothing else, for ten minutes.
        let samples: Vec<(f64, i64)> =
            (0..=600).map(|t| (f64::from(t), if (40..100).contains(&t) { 5_000 } else { 0 })).collect();

        let steps = replay(&samples, &policy(1_000));

        let at = |t: f64| steps.iter().find(|step| (step.t_s - t).abs() < 1e-6).expect("an evaluation").replicas;
        assert_eq!(steps.len(), 21, "every 30 s from 0 to 600");
        assert_eq!((at(0.0), at(30.0)), (1, 1), "the spike starts between two polls");
        assert_eq!(at(60.0), 5, "seen at the next poll: ceil(5,000 / 1,000)");
        assert_eq!(at(90.0), 5);
        assert_eq!(at(120.0), 5, "lag is gone, but the window still holds the peak");
        assert_eq!(at(360.0), 5, "270 s after the last high reading (at 90 s): still inside the window");
        assert_eq!(at(390.0), 1, "300 s after it: the window has slid past every high reading");
    }

    #[test]
    fn a_faster_policy_follows_the_lag_closely() {
        let samples: Vec<(f64, i64)> =
            (0..=120).map(|t| (f64::from(t), if (10..40).contains(&t) { 12_000 } else { 0 })).collect();
        let fast = Policy { polling_interval_s: 5.0, scale_down_window_s: 15.0, ..policy(1_000) };

        let steps = replay(&samples, &fast);

        let peak = steps.iter().map(|step| step.replicas).max();
        let last = steps.last().map(|step| step.replicas);
        assert_eq!(peak, Some(6), "12 wanted, capped at six partitions");
        assert_eq!(last, Some(1), "back to the minimum well before the end");
        let (used, fixed) = replica_seconds(&steps, fast.polling_interval_s);
        assert!(used < fixed, "autoscaled {used} < fixed at peak {fixed}");
    }

    #[test]
    fn no_samples_no_steps() {
        assert!(replay(&[], &policy(10)).is_empty());
    }

    #[test]
    fn every_table_row_respects_the_partition_ceiling() {
        for row in THRESHOLDS {
            assert!(row.max_replicas <= row.partitions, "{}: maxReplicaCount above its partitions", row.group);
            assert!(row.min_replicas >= 1 && row.lag_threshold > 0, "{}", row.group);
        }
        assert_eq!(threshold("accounting").map(|row| row.partitions), Some(6));
    }
}
