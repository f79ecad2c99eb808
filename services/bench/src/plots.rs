//! The report's SVG plots (the scaling ones are in [`crate::scaling_plots`]), drawn with plotters' SVG backend.
//!
//! plotters is built without its default features: no system font
//! libraries are needed because the SVG backend writes text as `<text>`
//! elements and the viewer's fonts draw them. Every plot is written even
//! when its data is missing (a run that skipped a stage), with the axes and
//! a caption saying so, so the report never links to a file that is absent.
//!
//! Plots are committed with the report, so each stays small (well under
//! 200 KB): per-sample series are aggregated into at most [`BINS`] time bins
//! before drawing (lag by its peak per bin, form waits by p50 and max per
//! bin), and axis labels are plain numbers with thousands separators.

use std::path::Path;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::results::Results;

pub(crate) const SIZE: (u32, u32) = (960, 560);
/// Most points a time series is drawn with.
pub const BINS: usize = 240;
pub(crate) const FONT: &str = "sans-serif";

pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

pub(crate) fn err(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("while drawing a plot: {error}")
}

/// A line with round markers, in the legend as `label`.
pub(crate) fn line<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: &[(f64, f64)],
    color: RGBColor,
    label: &str,
) -> anyhow::Result<()> {
    if points.is_empty() {
        return Ok(());
    }
    chart
        .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    chart.draw_series(points.iter().map(|&(x, y)| Circle::new((x, y), 3, color.filled()))).map_err(err)?;
    Ok(())
}

/// A line without markers (for binned series of many points).
pub(crate) fn trace<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: &[(f64, f64)],
    color: RGBColor,
    label: &str,
) -> anyhow::Result<()> {
    if points.is_empty() {
        return Ok(());
    }
    chart
        .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    Ok(())
}

/// A horizontal reference line across the x range.
fn reference<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    x: (f64, f64),
    y: f64,
    color: RGBColor,
    label: &str,
) -> anyhow::Result<()> {
    let style = ShapeStyle { color: color.to_rgba(), filled: false, stroke_width: 2 };
    chart
        .draw_series(DashedLineSeries::new(vec![(x.0, y), (x.1, y)], 8, 5, style))
        .map_err(err)?
        .label(label)
        .legend(move |(px, py)| PathElement::new(vec![(px, py), (px + 20, py)], color.stroke_width(2)));
    Ok(())
}

/// A positive range for a log axis that holds `values` with some room.
fn log_range(values: impl Iterator<Item = f64>, floor: f64) -> (f64, f64) {
    let (mut low, mut high) = (f64::INFINITY, 0.0_f64);
    for value in values.filter(|value| value.is_finite() && *value > 0.0) {
        low = low.min(value);
        high = high.max(value);
    }
    if !low.is_finite() {
        return (floor, floor * 100.0);
    }
    ((low / 2.0).max(floor), (high * 2.0).max(low * 10.0))
}

pub(crate) fn linear_max(values: impl Iterator<Item = f64>, minimum: f64) -> f64 {
    values.filter(|value| value.is_finite()).fold(minimum, f64::max) * 1.1
}

/// An axis label: thousands separators, no trailing `.0` (`20,000`, `0.5`).
pub fn axis_label(value: &f64) -> String {
    let value = *value;
    if !value.is_finite() {
        return String::new();
    }
    if value.abs() >= 10.0 || value == value.round() {
        return crate::stats::fmt_count(value.round());
    }
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Splits `points` (sorted or not) into at most `bins` equal spans of x and
/// keeps, per non-empty span, its x midpoint and what `reduce` makes of its
/// ys (sorted ascending).
pub fn binned(points: &[(f64, f64)], bins: usize, reduce: fn(&[f64]) -> f64) -> Vec<(f64, f64)> {
    if points.len() <= bins || bins == 0 {
        let mut kept = points.to_vec();
        kept.sort_by(|a, b| a.0.total_cmp(&b.0));
        return kept;
    }
    let low = points.iter().map(|(x, _)| *x).fold(f64::INFINITY, f64::min);
    let high = points.iter().map(|(x, _)| *x).fold(f64::NEG_INFINITY, f64::max);
    let width = ((high - low) / bins as f64).max(f64::MIN_POSITIVE);
    let mut spans: Vec<Vec<f64>> = vec![Vec::new(); bins];
    for &(x, y) in points {
        let index = (((x - low) / width) as usize).min(bins - 1);
        spans[index].push(y);
    }
    spans
        .into_iter()
        .enumerate()
        .filter(|(_, ys)| !ys.is_empty())
        .map(|(index, mut ys)| {
            ys.sort_by(f64::total_cmp);
            (low + (index as f64 + 0.5) * width, reduce(&ys))
        })
        .collect()
}

/// The largest of sorted values.
pub(crate) fn peak(sorted: &[f64]) -> f64 {
    sorted.last().copied().unwrap_or(0.0)
}

/// The median of sorted values.
fn median(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

pub(crate) fn no_data(root: &Area<'_>, what: &str) -> anyhow::Result<()> {
    root.draw(&Text::new(format!("no data: {what}"), (40, 60), (FONT, 20).into_font())).map_err(err)
}

/// Latency percentiles against offered load (fixed-rate stages).
pub fn latency_vs_load(results: &Results, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let open: Vec<_> = results.sales.iter().filter(|stage| stage.offered_per_s.is_some()).collect();
    let series = |pick: &dyn Fn(&crate::results::SalesStage) -> Option<f64>| -> Vec<(f64, f64)> {
        open.iter().filter_map(|stage| Some((stage.offered_per_s?, pick(stage)?))).filter(|(_, y)| *y > 0.0).collect()
    };
    let p50 = series(&|stage| Some(stage.http.p50_ms));
    let p95 = series(&|stage| Some(stage.http.p95_ms));
    let p99 = series(&|stage| Some(stage.http.p99_ms));
    let accounting = series(&|stage| stage.accounting.map(|latency| latency.p99_ms));
    let x_max = linear_max(open.iter().filter_map(|stage| stage.offered_per_s), 1.0);
    let y = log_range(p50.iter().chain(&p95).chain(&p99).chain(&accounting).map(|(_, y)| *y), 0.1);
    let mut chart = ChartBuilder::on(&root)
        .caption("Sale latency vs offered load (open loop, from the scheduled send time)", (FONT, 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..x_max, (y.0..y.1).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("offered load (sales/s)")
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&axis_label)
        .y_label_formatter(&axis_label)
        .draw()
        .map_err(err)?;
    line(&mut chart, &p50, BLUE, "HTTP 201 p50")?;
    line(&mut chart, &p95, GREEN, "HTTP 201 p95")?;
    line(&mut chart, &p99, RED, "HTTP 201 p99")?;
    line(&mut chart, &accounting, MAGENTA, "recorded → accounting committed p99")?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    if open.is_empty() {
        no_data(&root, "no fixed-rate stage ran")?;
    }
    root.present().map_err(err)
}

/// Accepted throughput against offered load, with Kafka's raw limits.
pub fn throughput_vs_load(results: &Results, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let open: Vec<_> = results.sales.iter().filter(|stage| stage.offered_per_s.is_some()).collect();
    let accepted: Vec<(f64, f64)> = open
        .iter()
        .filter_map(|stage| Some((stage.offered_per_s?, stage.accepted_per_s)))
        .filter(|(_, y)| *y > 0.0)
        .collect();
    let offered: Vec<(f64, f64)> =
        open.iter().filter_map(|stage| stage.offered_per_s.map(|rate| (rate, rate))).collect();
    let saturation = results.sales.iter().find(|stage| stage.offered_per_s.is_none()).map(|stage| stage.accepted_per_s);
    let producer = results.raw_kafka.platform_producer.as_ref().map(|run| run.records_per_sec);
    let perf = results.raw_kafka.perf_test.map(|summary| summary.records_per_sec);
    let x_max = linear_max(open.iter().filter_map(|stage| stage.offered_per_s), 1.0);
    let y =
        log_range(accepted.iter().chain(&offered).map(|(_, y)| *y).chain(saturation).chain(producer).chain(perf), 1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption("Accepted sales/s vs offered load, and the broker's raw limits", (FONT, 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, (y.0..y.1).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("offered load (sales/s)")
        .y_desc("records or sales per second (log scale)")
        .x_label_formatter(&axis_label)
        .y_label_formatter(&axis_label)
        .draw()
        .map_err(err)?;
    line(&mut chart, &offered, RGBColor(160, 160, 160), "offered (ideal)")?;
    line(&mut chart, &accepted, BLUE, "accepted by the gateway (201)")?;
    if let Some(rate) = saturation {
        reference(&mut chart, (0.0, x_max), rate, CYAN, "gateway at saturation (closed loop)")?;
    }
    if let Some(rate) = producer {
        reference(&mut chart, (0.0, x_max), rate, RED, "raw Kafka: platform producer config")?;
    }
    if let Some(rate) = perf {
        reference(&mut chart, (0.0, x_max), rate, MAGENTA, "raw Kafka: kafka-producer-perf-test")?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    if open.is_empty() {
        no_data(&root, "no fixed-rate stage ran")?;
    }
    root.present().map_err(err)
}

/// Consumer lag over the run, one line per watched group.
pub fn consumer_lag(results: &Results, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut groups: Vec<&str> = results.lag.iter().map(|sample| sample.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    let x_min = results.lag.iter().map(|sample| sample.t_s).fold(f64::INFINITY, f64::min);
    let x_min = if x_min.is_finite() { x_min } else { 0.0 };
    let x_max = linear_max(results.lag.iter().map(|sample| sample.t_s), x_min + 1.0);
    let y_max = linear_max(results.lag.iter().map(|sample| sample.lag as f64), 10.0);
    let mut chart = ChartBuilder::on(&root)
        .caption("Consumer lag (high watermark − committed offset), peak per time bin", (FONT, 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(x_min..x_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the bench started")
        .y_desc("records behind")
        .x_label_formatter(&axis_label)
        .y_label_formatter(&axis_label)
        .draw()
        .map_err(err)?;
    // Stage boundaries: a light vertical line and the stage's name, names
    // staggered in height so short stages do not print over each other.
    let mut previous = crate::lag::BEFORE_LOAD;
    let mut labelled = 0;
    for sample in &results.lag {
        if sample.stage != previous {
            previous = &sample.stage;
            let height = y_max * (0.97 - 0.05 * f64::from(labelled % 3));
            labelled += 1;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(sample.t_s, 0.0), (sample.t_s, y_max)],
                    RGBColor(200, 200, 200),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    sample.stage.clone(),
                    (sample.t_s, height),
                    (FONT, 11).into_font(),
                )))
                .map_err(err)?;
        }
    }
    let palette = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (index, group) in groups.iter().enumerate() {
        let samples: Vec<(f64, f64)> = results
            .lag
            .iter()
            .filter(|sample| sample.group == *group)
            .map(|sample| (sample.t_s, sample.lag as f64))
            .collect();
        // The peak per bin, so a short backlog is not averaged away.
        let points = binned(&samples, BINS * 2, peak);
        let color = palette[index % palette.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(*group)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    if results.lag.is_empty() {
        no_data(&root, "no lag sample was taken")?;
    }
    root.present().map_err(err)
}

/// Each form's wait for its decision, by submission time, paid vs standard.
pub fn approval_wait(results: &Results, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let forms = results.approval.as_ref().map_or(&[][..], |run| run.forms.as_slice());
    let points = |paid: bool| -> Vec<(f64, f64)> {
        forms
            .iter()
            .filter(|form| form.paid == paid)
            .filter_map(|form| Some((form.submitted_s, form.wait_ms? / 1000.0)))
            .collect()
    };
    let (standard, paid) = (points(false), points(true));
    // Thousands of standard forms: drawn as their median and worst wait per
    // submission-time bin; the few paid forms one by one.
    let standard_p50 = binned(&standard, BINS, median);
    let standard_max = binned(&standard, BINS, peak);
    let x_max = linear_max(standard.iter().chain(&paid).map(|(x, _)| *x), 1.0);
    let y_max = linear_max(standard.iter().chain(&paid).map(|(_, y)| *y), 1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption("Registration wait, submission → decision: paid lane vs standard backlog", (FONT, 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("submitted at (s after the first standard form)")
        .y_desc("wait (s)")
        .x_label_formatter(&axis_label)
        .y_label_formatter(&axis_label)
        .draw()
        .map_err(err)?;
    trace(&mut chart, &standard_max, RGBColor(150, 170, 230), "standard, slowest per bin")?;
    trace(&mut chart, &standard_p50, BLUE, "standard, median per bin")?;
    chart
        .draw_series(paid.iter().map(|&(x, y)| TriangleMarker::new((x, y), 7, RED.filled())))
        .map_err(err)?
        .label("paid (each form)")
        .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, RED.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    if forms.is_empty() {
        no_data(&root, "the approval stage did not run")?;
    }
    root.present().map_err(err)
}

/// Draws one plot into a file.
type Draw = fn(&Results, &Path) -> anyhow::Result<()>;

/// Writes every plot into `dir`; returns the file names.
pub fn write_all(results: &Results, dir: &Path) -> anyhow::Result<Vec<&'static str>> {
    let plots: [(&'static str, Draw); 6] = [
        ("latency_vs_load.svg", latency_vs_load),
        ("throughput_vs_load.svg", throughput_vs_load),
        ("consumer_lag.svg", consumer_lag),
        ("approval_wait.svg", approval_wait),
        ("scaling.svg", crate::scaling_plots::scaling),
        ("autoscaling.svg", crate::scaling_plots::autoscaling),
    ];
    for (name, draw) in plots {
        draw(results, &dir.join(name))?;
    }
    Ok(plots.iter().map(|(name, _)| *name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{LagSample, SalesStage};
    use crate::stats::Latency;

    #[test]
    fn log_ranges_hold_their_values_and_survive_no_data() {
        assert_eq!(log_range([5.0, 50.0].into_iter(), 0.1), (2.5, 100.0));
        assert_eq!(log_range(std::iter::empty(), 1.0), (1.0, 100.0));
        assert_eq!(log_range([0.0, -1.0].into_iter(), 1.0), (1.0, 100.0));
    }

    #[test]
    fn axis_labels_are_plain_numbers_with_separators() {
        assert_eq!(axis_label(&20_000.0), "20,000");
        assert_eq!(axis_label(&1_234_567.8), "1,234,568");
        assert_eq!(axis_label(&3.0), "3");
        assert_eq!(axis_label(&0.5), "0.5");
        assert_eq!(axis_label(&0.25), "0.25");
    }

    #[test]
    fn binning_keeps_the_peak_and_bounds_the_points() {
        let points: Vec<(f64, f64)> = (0..10_000).map(|i| (f64::from(i) / 100.0, f64::from(i % 97))).collect();
        let mut spiky = points.clone();
        spiky.push((50.0, 5_000.0));

        let peaks = binned(&spiky, 100, peak);
        let medians = binned(&points, 100, median);

        assert!(peaks.len() <= 100 && medians.len() <= 100);
        assert!(peaks.iter().any(|(_, y)| *y == 5_000.0), "a one-sample spike survives as its bin's peak");
        assert!(medians.iter().all(|(_, y)| *y < 97.0));
        assert_eq!(binned(&points[..5], 100, peak).len(), 5, "few points are kept as they are");
    }

    #[test]
    fn a_large_backlog_plot_stays_small() {
        let dir = std::env::temp_dir().join(format!("mamochi-bench-plots-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let forms = (0..20_000u32)
            .map(|i| crate::results::FormWait {
                paid: i % 2_000 == 0,
                submitted_s: f64::from(i) / 1_000.0,
                wait_ms: Some(f64::from(i % 700) * 10.0),
                status: "approved".into(),
            })
            .collect();
        let lag = (0..40_000u32)
            .map(|i| LagSample {
                t_s: f64::from(i) / 4.0,
                stage: format!("stage {}", i / 5_000),
                group: ["accounting", "distributor", "approval"][i as usize % 3].into(),
                topic: "t".into(),
                lag: i64::from(i % 5_000),
            })
            .collect();
        let results = Results {
            approval: Some(crate::results::ApprovalRun { forms, ..Default::default() }),
            lag,
            ..Results::default()
        };

        write_all(&results, &dir).expect("drawn");

        for name in ["approval_wait.svg", "consumer_lag.svg"] {
            let bytes = std::fs::metadata(dir.join(name)).expect("written").len();
            assert!(bytes < 200_000, "{name} is {bytes} bytes");
        }
        let svg = std::fs::read_to_string(dir.join("approval_wait.svg")).expect("written");
        assert!(!svg.contains("20000.0") && !svg.contains("5000.0"), "no raw float labels");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn plots_are_written_with_their_text_even_when_empty() {
        let dir = std::env::temp_dir().join(format!("mamochi-bench-plots-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut results = Results::default();
        results.sales.push(SalesStage {
            offered_per_s: Some(250.0),
            accepted_per_s: 249.0,
            http: Latency { p50_ms: 3.0, p95_ms: 6.0, p99_ms: 9.0, ..Latency::default() },
            ..SalesStage::default()
        });
        results.lag.push(LagSample {
            t_s: 1.0,
            stage: "250/s".into(),
            group: "accounting".into(),
            topic: "t".into(),
            lag: 12,
        });

        let names = write_all(&results, &dir).expect("drawn");

        for name in names {
            let svg = std::fs::read_to_string(dir.join(name)).expect("written");
            assert!(svg.contains("<text"), "{name} has text");
            assert!(svg.len() > 500, "{name} is not empty");
        }
        let empty = std::fs::read_to_string(dir.join("approval_wait.svg")).expect("written");
        assert!(empty.contains("no data"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
