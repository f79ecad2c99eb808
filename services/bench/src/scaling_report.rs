//! The report's scaling and autoscaling sections: the scaling stage's table
//! (throughput and drain time per group and instance count) and the KEDA
//! replay of the run's measured lag, as tables (markdown and CSV from the
//! same cells) and text. Everything here is computed from [`Results`] alone,
//! so it can be regenerated from results.json.

use std::fmt::Write as _;

use crate::keda_replay::{self, Policy, Step, Threshold};
use crate::results::{Results, ScalingRun};
use crate::scaling;
use crate::stats::fmt_count;
use crate::table::Table;

/// The timings the replay is run with: deploy/k8s's (poll 15 s, the HPA's
/// default scale-down window), KEDA's and the HPA's documented defaults,
/// and a fast what-if that shows the rule's shape on a run of a few minutes
/// (the real window holds any scale-up for five minutes).
pub const TIMINGS: [(&str, f64, f64); 3] = [
    (DEPLOYED, keda_replay::DEPLOYED_POLLING_S, keda_replay::DEFAULT_SCALE_DOWN_WINDOW_S),
    (
        "KEDA defaults: poll 30 s, window 300 s",
        keda_replay::DEFAULT_POLLING_S,
        keda_replay::DEFAULT_SCALE_DOWN_WINDOW_S,
    ),
    (FAST, 5.0, 30.0),
];
/// The timing of deploy/k8s's ScaledObjects.
pub const DEPLOYED: &str = "deploy/k8s: poll 15 s, window 300 s";
/// The what-if timing.
pub const FAST: &str = "fast what-if: poll 5 s, window 30 s";

/// One group's lag replayed under one timing.
#[derive(Debug, Clone)]
pub struct GroupReplay {
    pub group: String,
    pub timing: &'static str,
    pub threshold: Threshold,
    pub policy: Policy,
    pub steps: Vec<Step>,
}

impl GroupReplay {
    pub fn peak_replicas(&self) -> u32 {
        self.steps.iter().map(|step| step.replicas).max().unwrap_or(0)
    }
}

/// Every watched group that has a threshold, replayed under every timing.
pub fn replays(results: &Results) -> Vec<GroupReplay> {
    let mut groups: Vec<&str> = results.lag.iter().map(|sample| sample.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    let mut replays = Vec::new();
    for group in groups {
        let Some(threshold) = keda_replay::threshold(group) else { continue };
        let samples: Vec<(f64, i64)> =
            results.lag.iter().filter(|sample| sample.group == group).map(|sample| (sample.t_s, sample.lag)).collect();
        for (timing, polling, window) in TIMINGS {
            let policy = Policy {
                polling_interval_s: polling,
                scale_down_window_s: window,
                ..Policy::documented_defaults(threshold)
            };
            replays.push(GroupReplay {
                group: group.to_string(),
                timing,
                threshold,
                policy,
                steps: keda_replay::replay(&samples, &policy),
            });
        }
    }
    replays
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), |seconds| format!("{seconds:.2}"))
}

fn rate(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), fmt_count)
}

/// scaling.csv: one row per group and instance count.
pub fn scaling_table(results: &Results) -> Table {
    let mut table = Table::new([
        "group",
        "instances",
        "sales",
        "committed",
        "drain s",
        "records/s",
        "× one instance",
        "÷ raw producer",
        "records/s once running",
        "first commit s",
        "peak lag",
        "note",
    ]);
    let raw = results.raw_kafka.platform_producer.as_ref().map(|run| run.records_per_sec);
    let runs: &[ScalingRun] = results.scaling.as_ref().map_or(&[], |scaling| scaling.runs.as_slice());
    for run in runs {
        let ratio = match (run.records_per_s, raw) {
            (Some(rate), Some(raw)) if raw > 0.0 => format!("{:.1} %", 100.0 * rate / raw),
            _ => "–".to_string(),
        };
        table.row([
            run.group.clone(),
            run.instances.to_string(),
            fmt_count(run.records as f64),
            fmt_count(run.applied as f64),
            seconds(run.drain_s),
            rate(run.records_per_s),
            scaling::speedup(runs, &run.group, run.instances).map_or_else(|| "–".to_string(), |x| format!("{x:.2}×")),
            ratio,
            rate(run.steady_per_s),
            seconds(run.first_commit_s),
            fmt_count(run.peak_lag as f64),
            note(run),
        ]);
    }
    table
}

/// What a reader must know about one run's figures.
fn note(run: &ScalingRun) -> String {
    let mut notes = Vec::new();
    if run.applied_elsewhere > 0 {
        notes.push(format!(
            "{} sales were applied by another group before this run started (duplicates here)",
            fmt_count(run.applied_elsewhere as f64)
        ));
    }
    if run.drain_s.is_some_and(|seconds| seconds < 1.0) {
        notes.push(
            "drained in under a second: too short a backlog for a rate (the commit watcher polls every few hundred ms)"
                .to_string(),
        );
    }
    notes.extend(run.error.clone());
    notes.join("; ")
}

/// Per group, what the instances brought against linear scaling, and what
/// bounds it: a sentence for the report.
pub fn bound(results: &Results) -> String {
    let Some(scaling) = &results.scaling else { return String::new() };
    let mut groups: Vec<&str> = scaling.runs.iter().map(|run| run.group.as_str()).collect();
    groups.dedup();
    let cores = results.meta.machine.cores;
    let mut sentences = Vec::new();
    for group in groups {
        let best = scaling
            .runs
            .iter()
            .filter(|run| run.group == group && run.instances > 1)
            .filter_map(|run| Some((run.instances, scaling::speedup(&scaling.runs, group, run.instances)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((instances, speedup)) = best else { continue };
        let verdict = if speedup < 0.5 * instances as f64 {
            format!(
                "far from linear ({instances}× would be): the machine's {cores} cores, shared by every instance, Kafka and PostgreSQL, bound it, not the {} partitions",
                scaling.partitions
            )
        } else {
            format!("close to linear ({instances}× would be); the ceiling is the {} partitions", scaling.partitions)
        };
        sentences.push(format!("{group}: at best {speedup:.2}× one instance, with {instances} instances, {verdict}."));
    }
    sentences.join(" ")
}

/// autoscaling.csv: per group and timing, what the replayed rule did.
pub fn autoscaling_table(results: &Results) -> Table {
    let mut table = Table::new([
        "group",
        "timing",
        "lagThreshold",
        "replicas min–max",
        "peak lag",
        "peak replicas",
        "first scale-up at s",
        "replica-seconds",
        "vs fixed at peak",
    ]);
    for replay in replays(results) {
        let interval = replay.policy.polling_interval_s;
        let (used, fixed) = keda_replay::replica_seconds(&replay.steps, interval);
        let start = replay.steps.first().map_or(0.0, |step| step.t_s);
        let first_up = replay
            .steps
            .iter()
            .find(|step| step.replicas > replay.policy.min_replicas)
            .map_or_else(|| "never".to_string(), |step| format!("{:.0}", step.t_s - start));
        table.row([
            replay.group.clone(),
            replay.timing.to_string(),
            fmt_count(replay.threshold.lag_threshold as f64),
            format!("{}–{}", replay.policy.min_replicas, replay.policy.ceiling()),
            fmt_count(replay.steps.iter().map(|step| step.lag).max().unwrap_or(0) as f64),
            replay.peak_replicas().to_string(),
            first_up,
            fmt_count(used),
            if fixed > 0.0 { format!("{:.0} %", 100.0 * used / fixed) } else { "–".to_string() },
        ]);
    }
    table
}

/// The report's two sections.
pub fn markdown(results: &Results) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "\n## 7. Scaling out: each consumer group with 1, 2, 3 instances\n");
    match &results.scaling {
        Some(scaling) => {
            let _ = writeln!(
                text,
                "With the bench's platform stopped, each group drains a backlog of its own: sales written while the group has no member, then N instances start ({}). Drain time runs from the start of the instances (start-up and joining the group included) to the last sale seen committed; records/s is the backlog over that time, and 'once running' over the span from the first to the last commit. A group cannot use more consumers than the sales topic's **{} partitions**: a seventh instance would sit idle. Every instance, Kafka and PostgreSQL share the machine's cores (see the table at the top), so past what those cores give, more instances only share the same CPU: the speed-up column says where that happens.\n",
                scaling.how, scaling.partitions
            );
            text.push_str(&scaling_table(results).to_markdown());
            let bound = bound(results);
            if !bound.is_empty() {
                let _ = writeln!(text, "\n{bound}");
            }
        }
        None => text.push_str("Not run in this plan.\n"),
    }
    let _ = writeln!(text, "\n![throughput and drain time vs instances](scaling.svg)");

    let _ = writeln!(text, "\n## 8. Autoscaling: this run's lag through KEDA's scaling rule\n");
    let _ = writeln!(
        text,
        "The lag series of section 5 replayed through KEDA's Kafka scaler as the HPA applies it: replicas = ceil(total lag ÷ lagThreshold), at most the topic's partitions and maxReplicaCount, at least minReplicaCount, read every pollingInterval; a scale-up is immediate (at most ×2 or +4 per step), a scale-down waits for the highest recommendation of the stabilization window to fall; within 10 % of the target nothing changes. The replay is open loop: the lag was measured with one instance per group, so it shows what KEDA would have asked for, not how the extra replicas would have shortened the backlog (section 7 measures that). 'vs fixed at peak' compares the replica-seconds used with a fleet sized for the peak the whole time. The thresholds are deploy/k8s's (docs/kubernetes.md): two seconds of one consumer's drain rate in the committed release-build report, the notifier's assumed.\n"
    );
    let mut thresholds = Table::new(["group", "lagThreshold", "minReplicaCount", "maxReplicaCount", "partitions"]);
    for row in keda_replay::THRESHOLDS {
        thresholds.row([
            row.group.to_string(),
            fmt_count(row.lag_threshold as f64),
            row.min_replicas.to_string(),
            row.max_replicas.to_string(),
            row.partitions.to_string(),
        ]);
    }
    text.push_str(&thresholds.to_markdown());
    text.push('\n');
    let table = autoscaling_table(results);
    if table.rows.is_empty() {
        text.push_str("No lag was sampled in this run.\n");
    } else {
        text.push_str(&table.to_markdown());
    }
    let _ = writeln!(text, "\n![replicas over time against offered load](autoscaling.svg)");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{LagSample, Scaling};

    fn sample(t_s: f64, group: &str, lag: i64) -> LagSample {
        LagSample { t_s, stage: "burst".into(), group: group.into(), topic: "t".into(), lag }
    }

    #[test]
    fn groups_with_a_threshold_are_replayed_under_every_timing() {
        let mut results = Results::default();
        for t in 0..120 {
            let lag = if (20..40).contains(&t) { 100_000 } else { 0 };
            results.lag.push(sample(f64::from(t), "accounting", lag));
            results.lag.push(sample(f64::from(t), "unknown-group", lag));
        }

        let replays = replays(&results);

        assert_eq!(replays.len(), TIMINGS.len(), "one group with a threshold, every timing");
        let fast = replays.iter().find(|replay| replay.timing == FAST).expect("fast");
        assert_eq!(fast.peak_replicas(), 4, "ceil(100,000 / 27,000)");
        let table = autoscaling_table(&results);
        assert_eq!(table.rows.len(), TIMINGS.len());
        assert!(table.rows.iter().all(|row| row[5] == "4"), "every timing reaches 4 during 20 s of lag: {table:?}");
    }

    #[test]
    fn a_flat_speedup_is_said_to_be_bound_by_the_cores() {
        let mut results = Results::default();
        results.meta.machine.cores = 2;
        let run = |instances, rate| ScalingRun {
            group: "distributor".into(),
            instances,
            records_per_s: Some(rate),
            drain_s: Some(0.5),
            ..Default::default()
        };
        results.scaling =
            Some(Scaling { partitions: 6, how: String::new(), runs: vec![run(1, 10_000.0), run(3, 11_000.0)] });

        let said = bound(&results);

        assert!(said.contains("1.10×") && said.contains("2 cores"), "{said}");
        assert!(scaling_table(&results).rows[0][11].contains("too short a backlog"));
    }

    #[test]
    fn the_scaling_table_relates_each_rate_to_one_instance() {
        let results = Results {
            scaling: Some(Scaling {
                partitions: 6,
                how: "in process".into(),
                runs: vec![
                    ScalingRun {
                        group: "accounting".into(),
                        instances: 1,
                        records_per_s: Some(2_000.0),
                        ..Default::default()
                    },
                    ScalingRun {
                        group: "accounting".into(),
                        instances: 2,
                        records_per_s: Some(3_000.0),
                        ..Default::default()
                    },
                ],
            }),
            ..Results::default()
        };

        let table = scaling_table(&results);

        assert_eq!(table.rows[1][6], "1.50×");
        assert!(bound(&results).contains("at best 1.50× one instance, with 2 instances, close to linear"));
        assert!(markdown(&results).contains("**6 partitions**"));
        assert!(markdown(&Results::default()).contains("Not run in this plan."));
    }
}
