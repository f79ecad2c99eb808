//! The scaling plots: `scaling.svg` (throughput and drain time against
//! instances, per consumer group, and each run's lag) and `autoscaling.svg` (offered load, lag
//! and the replicas KEDA's rule asks for, over the run). Drawn with the
//! report's plotting helpers ([`crate::plots`]); like every plot, written
//! with axes and a caption even when the stage did not run.

use std::path::Path;

use plotters::prelude::*;

use crate::plots::{axis_label, binned, err, line, linear_max, no_data, peak, trace, BINS, FONT, SIZE};
use crate::results::{Results, ScalingRun};
use crate::scaling_report;

const PALETTE: [RGBColor; 4] = [BLUE, RED, GREEN, MAGENTA];

/// What one panel of `scaling.svg` reads from a run.
type Pick = fn(&ScalingRun) -> Option<f64>;

fn groups_of<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut groups: Vec<&str> = names.collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// Throughput (left) and lag-drain time (right) against instances.
pub fn scaling(results: &Results, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (SIZE.0, SIZE.1 + 280)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let runs: &[ScalingRun] = results.scaling.as_ref().map_or(&[], |scaling| scaling.runs.as_slice());
    let partitions = results.scaling.as_ref().map_or(results.meta.sales_partitions, |scaling| scaling.partitions);
    let groups = groups_of(runs.iter().map(|run| run.group.as_str()));
    let x_max = runs.iter().map(|run| run.instances as f64).fold(1.0, f64::max) + 0.5;
    let (top, bottom) = root.split_vertically(SIZE.1);
    let (left, right) = top.split_horizontally(SIZE.0 / 2);
    let panels: [(&str, &str, Pick, &_); 2] = [
        ("Throughput draining a backlog", "records/s (backlog ÷ drain time)", |run| run.records_per_s, &left),
        ("Lag-drain time", "seconds, instances started → last commit", |run| run.drain_s, &right),
    ];
    for (caption, y_desc, pick, area) in panels {
        let y_max = linear_max(runs.iter().filter_map(pick), 1.0);
        let mut chart = ChartBuilder::on(area)
            .caption(caption, (FONT, 18))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(0.5..x_max, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(format!("instances (ceiling: {partitions} partitions)"))
            .y_desc(y_desc)
            .x_labels(runs.iter().map(|run| run.instances).max().unwrap_or(1) + 1)
            .x_label_formatter(&|value| if value.fract() == 0.0 { axis_label(value) } else { String::new() })
            .y_label_formatter(&axis_label)
            .draw()
            .map_err(err)?;
        for (index, group) in groups.iter().enumerate() {
            let mut points: Vec<(f64, f64)> = runs
                .iter()
                .filter(|run| run.group == *group)
                .filter_map(|run| Some((run.instances as f64, pick(run)?)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            line(&mut chart, &points, PALETTE[index % PALETTE.len()], group)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    lag_per_run(runs, &groups, &bottom)?;
    if runs.is_empty() {
        no_data(&root, "the scaling stage did not run")?;
    }
    root.present().map_err(err)
}

/// Each run's lag from the start of its instances: one colour per group,
/// thicker with more instances.
fn lag_per_run(runs: &[ScalingRun], groups: &[&str], area: &crate::plots::Area<'_>) -> anyhow::Result<()> {
    let x_max = linear_max(runs.iter().flat_map(|run| run.lag.iter().map(|(t, _)| *t)), 1.0);
    let y_max = linear_max(runs.iter().map(|run| run.peak_lag as f64), 10.0);
    let mut chart = ChartBuilder::on(area)
        .caption("Each run's lag (high watermark − committed offset; offsets are committed every second)", (FONT, 16))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the run's instances started")
        .y_desc("records behind")
        .x_label_formatter(&axis_label)
        .y_label_formatter(&axis_label)
        .draw()
        .map_err(err)?;
    for run in runs {
        let index = groups.iter().position(|group| *group == run.group).unwrap_or(0);
        let style = PALETTE[index % PALETTE.len()].stroke_width(run.instances.min(4) as u32);
        let points: Vec<(f64, f64)> = run.lag.iter().map(|(t, lag)| (*t, *lag as f64)).collect();
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(err)?
            .label(format!("{} × {}", run.group, run.instances))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Offered load over the run, as steps: each sales stage at its offered (or,
/// closed loop, accepted) rate, the burst at its write rate, the approval
/// backlog at its submission rate.
fn offered_load(results: &Results) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64, f64)> = results
        .sales
        .iter()
        .map(|stage| (stage.started_s, stage.ended_s, stage.offered_per_s.unwrap_or(stage.accepted_per_s)))
        .collect();
    if let Some(burst) = &results.burst {
        spans.push((
            burst.started_s,
            burst.started_s + burst.produce_s,
            burst.records as f64 / burst.produce_s.max(1e-3),
        ));
    }
    if let Some(approval) = &results.approval {
        spans.push((approval.started_s, approval.started_s + approval.submit_s, approval.submit_per_s));
    }
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut points = Vec::new();
    for (start, end, rate) in spans {
        points.extend([(start, 0.0), (start, rate), (end, rate), (end, 0.0)]);
    }
    points
}

/// Three stacked panels sharing the time axis: offered load, lag per group,
/// replicas per group under each replay timing.
pub fn autoscaling(results: &Results, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (SIZE.0, SIZE.1 + 200)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let replays = scaling_report::replays(results);
    let load = offered_load(results);
    let x_min = results.lag.iter().map(|sample| sample.t_s).fold(f64::INFINITY, f64::min);
    let x_min = if x_min.is_finite() { x_min } else { 0.0 };
    let x_max =
        linear_max(results.lag.iter().map(|sample| sample.t_s).chain(load.iter().map(|(x, _)| *x)), x_min + 1.0);
    let groups = groups_of(replays.iter().map(|replay| replay.group.as_str()));
    let color = |group: &str| PALETTE[groups.iter().position(|name| *name == group).unwrap_or(0) % PALETTE.len()];
    let panels = root.split_evenly((3, 1));

    let mut chart = ChartBuilder::on(&panels[0])
        .caption("Offered load (sales or forms per second written to the platform)", (FONT, 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(x_min..x_max, 0.0..linear_max(load.iter().map(|(_, y)| *y), 1.0))
        .map_err(err)?;
    chart
        .configure_mesh()
        .y_desc("per second")
        .x_label_formatter(&axis_label)
        .y_label_formatter(&axis_label)
        .draw()
        .map_err(err)?;
    trace(&mut chart, &load, BLACK, "offered")?;

    let lag_max = linear_max(results.lag.iter().map(|sample| sample.lag as f64), 10.0);
    let mut chart = ChartBuilder::on(&panels[1])
        .caption("Consumer lag, as measured (peak per time bin)", (FONT, 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(x_min..x_max, 0.0..lag_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .y_desc("records behind")
        .x_label_formatter(&axis_label)
        .y_label_formatter(&axis_label)
        .draw()
        .map_err(err)?;
    for group in &groups {
        let samples: Vec<(f64, f64)> = results
            .lag
            .iter()
            .filter(|sample| sample.group == *group)
            .map(|sample| (sample.t_s, sample.lag as f64))
            .collect();
        trace(&mut chart, &binned(&samples, BINS, peak), color(group), group)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;

    let replicas_max = replays.iter().map(|replay| f64::from(replay.policy.ceiling())).fold(1.0, f64::max) + 0.5;
    let mut chart = ChartBuilder::on(&panels[2])
        .caption("Replicas KEDA's Kafka scaler rule asks for (bold: deploy/k8s timing; thin: fast what-if)", (FONT, 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x_min..x_max, 0.0..replicas_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the bench started")
        .y_desc("replicas")
        .x_label_formatter(&axis_label)
        .y_label_formatter(&axis_label)
        .draw()
        .map_err(err)?;
    for replay in &replays {
        // Replicas hold between evaluations: drawn as steps.
        let mut points = Vec::new();
        for pair in replay.steps.windows(2) {
            points.push((pair[0].t_s, f64::from(pair[0].replicas)));
            points.push((pair[1].t_s, f64::from(pair[0].replicas)));
        }
        if let Some(last) = replay.steps.last() {
            points.push((last.t_s, f64::from(last.replicas)));
        }
        // deploy/k8s's timing bold, the fast what-if thin; KEDA's defaults
        // differ from deploy/k8s's only by the poll and stay in the table.
        if replay.timing != scaling_report::DEPLOYED && replay.timing != scaling_report::FAST {
            continue;
        }
        let base = color(&replay.group);
        let (style, label) = if replay.timing == scaling_report::DEPLOYED {
            (
                base.stroke_width(3),
                format!(
                    "{} (lagThreshold {})",
                    replay.group,
                    crate::stats::fmt_count(replay.threshold.lag_threshold as f64)
                ),
            )
        } else {
            (base.mix(0.6).stroke_width(1), format!("{}, fast what-if", replay.group))
        };
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    if replays.is_empty() {
        no_data(&panels[2], "no lag of a group with a threshold was sampled")?;
    }
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Burst, LagSample, Scaling};

    #[test]
    fn both_scaling_plots_are_drawn_with_and_without_data() {
        let dir = std::env::temp_dir().join(format!("mamochi-bench-scaling-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let lag = (0..2_000u32)
            .map(|i| LagSample {
                t_s: f64::from(i) / 4.0,
                stage: "burst".into(),
                group: ["accounting", "distributor"][i as usize % 2].into(),
                topic: "t".into(),
                lag: i64::from(if (400..800).contains(&i) { 6_000 } else { 0 }),
            })
            .collect();
        let runs = (1..=3)
            .map(|instances| ScalingRun {
                group: "accounting".into(),
                instances,
                records_per_s: Some(1_000.0 * instances as f64),
                drain_s: Some(6.0 / instances as f64),
                lag: vec![(0.0, 6_000), (3.0 / instances as f64, 0)],
                peak_lag: 6_000,
                ..ScalingRun::default()
            })
            .collect();
        let full = Results {
            lag,
            burst: Some(Burst { records: 5_000, produce_s: 1.0, started_s: 100.0, ..Burst::default() }),
            scaling: Some(Scaling { partitions: 6, how: String::new(), runs }),
            ..Results::default()
        };

        scaling(&full, &dir.join("scaling.svg")).expect("scaling drawn");
        autoscaling(&full, &dir.join("autoscaling.svg")).expect("autoscaling drawn");
        scaling(&Results::default(), &dir.join("empty-scaling.svg")).expect("empty scaling drawn");
        autoscaling(&Results::default(), &dir.join("empty-autoscaling.svg")).expect("empty autoscaling drawn");

        let drawn = std::fs::read_to_string(dir.join("autoscaling.svg")).expect("written");
        assert!(drawn.contains("lagThreshold 27,000") && drawn.contains("fast what-if"));
        let drawn = std::fs::read_to_string(dir.join("scaling.svg")).expect("written");
        assert!(drawn.contains("6 partitions") && drawn.contains("accounting × 3"));
        for name in ["empty-scaling.svg", "empty-autoscaling.svg"] {
            assert!(std::fs::read_to_string(dir.join(name)).expect("written").contains("no data"), "{name}");
        }
        for name in ["scaling.svg", "autoscaling.svg"] {
            let bytes = std::fs::metadata(dir.join(name)).expect("written").len();
            assert!(bytes < 200_000, "{name} is {bytes} bytes");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
