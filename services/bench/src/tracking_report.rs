//! The cart-tracking stage in the report: its two tables (markdown and CSV
//! from the same cells) and its section, every sentence generated from the
//! results, and a stage that did not run saying so.

use std::fmt::Write as _;

use crate::results::{ReportTiming, Results, TrackingRun};
use crate::stats::{fmt_count, fmt_ms};
use crate::table::Table;

fn share(rate: Option<f64>, results: &Results) -> String {
    let limit = results.raw_kafka.platform_producer.as_ref().map(|run| run.records_per_sec).filter(|rate| *rate > 0.0);
    match (rate, limit) {
        (Some(rate), Some(limit)) => format!("{:.1} %", rate / limit * 100.0),
        _ => "–".to_string(),
    }
}

/// The tracking group draining the ping backlog.
pub fn drain_table(results: &Results) -> Table {
    let mut table = Table::new([
        "consumer",
        "pings",
        "carts",
        "committed",
        "first written → last committed (s)",
        "pings/s",
        "pings/s, first → last committed",
        "peak lag",
        "÷ raw producer limit",
    ]);
    if let Some(run) = &results.tracking {
        table.row([
            format!("distributor-tracking (batches of up to {})", fmt_count(run.max_batch as f64)),
            fmt_count(run.pings as f64),
            run.carts.to_string(),
            fmt_count(run.applied as f64),
            run.drain_s.map_or_else(|| "not drained".to_string(), |seconds| format!("{seconds:.2}")),
            run.pings_per_s.map_or_else(|| "–".to_string(), fmt_count),
            run.steady_per_s.map_or_else(|| "–".to_string(), fmt_count),
            fmt_count(run.peak_lag as f64),
            share(run.pings_per_s, results),
        ]);
    }
    table
}

/// The report lane: each report to its alarm.
pub fn reports_table(results: &Results) -> Table {
    let mut table = Table::new([
        "report → alarm",
        "alarm decided_at − report occurred_at (ms)",
        "report written → alarm read from mamochi.cart-alarms (ms)",
    ]);
    if let Some(run) = &results.tracking {
        let cells = |timing: Option<ReportTiming>| match timing {
            Some(timing) => [fmt_ms(timing.decided_ms), fmt_ms(timing.seen_ms)],
            None => ["not seen".to_string(), "not seen".to_string()],
        };
        for (label, timing) in [("MISSING → RAISED", run.missing), ("FOUND → CLEARED", run.found)] {
            let [decided, seen] = cells(timing);
            table.row([label.to_string(), decided, seen]);
        }
    }
    table
}

/// The section of report.md.
pub fn markdown(results: &Results) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "\n## 9. Cart tracking: location pings and the report lane\n");
    let Some(run) = &results.tracking else {
        text.push_str("Not run in this plan.\n");
        return text;
    };
    let _ = writeln!(
        text,
        "{} location pings of {} bench carts were written straight to `mamochi.cart-tracking` (partitions 1–3, one cart's pings on one partition, every position inside the cart's comuna, so no alarm fires) in {:.2} s while the distributor ran; its tracking group applies them in batches of up to {} events, one transaction each, storing only each cart's newest position of a batch (so with {} carts a batch writes at most {} positions: real traffic, one ping per cart every few seconds, writes nearly one per ping). A rate counts from the first ping written to the **last** ping's dedupe row seen committed.\n",
        fmt_count(run.pings as f64),
        run.carts,
        run.produce_s,
        fmt_count(run.max_batch as f64),
        run.carts,
        run.carts,
    );
    text.push_str(&drain_table(results).to_markdown());
    let _ = writeln!(
        text,
        "\nRight after the last ping was acknowledged, a MISSING report for one bench cart was written to the report lane (partition 0), with {} pings not yet seen committed; {} pings were seen committed only after its RAISED alarm was read. Then a FOUND report cleared the incident. `decided_at − occurred_at` is the platform's own measure (the alarm-latency histogram's); the second column adds the outbox relay's publication and the bench reading the alarm back from Kafka.\n",
        fmt_count(run.pings_pending_at_report as f64),
        fmt_count(run.pings_after_alarm as f64),
    );
    text.push_str(&reports_table(results).to_markdown());
    if let Some(error) = &run.error {
        let _ = writeln!(text, "\n> {error}");
    }
    text
}

/// One line for the log.
pub fn summary_line(run: &TrackingRun) -> String {
    let ms = |timing: Option<ReportTiming>, pick: fn(&ReportTiming) -> f64| {
        timing.map_or_else(|| "–".to_string(), |timing| fmt_ms(pick(&timing)))
    };
    format!(
        "cart tracking: {} pings of {} carts, {} committed, drained at {}/s; MISSING → RAISED decided in {} ms (read back {} ms) with {} pings still to commit; FOUND → CLEARED {} ms{}",
        fmt_count(run.pings as f64),
        run.carts,
        fmt_count(run.applied as f64),
        run.pings_per_s.map_or_else(|| "–".to_string(), fmt_count),
        ms(run.missing, |timing| timing.decided_ms),
        ms(run.missing, |timing| timing.seen_ms),
        fmt_count(run.pings_after_alarm as f64),
        ms(run.found, |timing| timing.decided_ms),
        run.error.as_ref().map_or_else(String::new, |error| format!("; {error}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::ProducerRun;

    #[test]
    fn the_drain_is_a_share_of_the_same_runs_raw_limit_and_a_missing_alarm_says_so() {
        let mut results = Results {
            tracking: Some(TrackingRun {
                pings: 5_000,
                carts: 5,
                max_batch: 2_000,
                applied: 5_000,
                drain_s: Some(0.5),
                pings_per_s: Some(10_000.0),
                missing: Some(ReportTiming { decided_ms: 12.0, seen_ms: 30.0 }),
                found: None,
                error: Some("the bench's missing-cart incident x was not cleared".into()),
                ..TrackingRun::default()
            }),
            ..Results::default()
        };
        results.raw_kafka.platform_producer = Some(ProducerRun { records_per_sec: 80_000.0, ..ProducerRun::default() });

        let drain = drain_table(&results);
        let reports = reports_table(&results);

        assert_eq!(drain.rows[0][5..], ["10,000", "–", "0", "12.5 %"]);
        assert_eq!(reports.rows[0][1..], ["12.0", "30.0"]);
        assert_eq!(reports.rows[1][1..], ["not seen", "not seen"]);
        assert!(markdown(&results).contains("was not cleared"));
        assert!(markdown(&Results::default()).contains("Not run in this plan."));
    }
}
