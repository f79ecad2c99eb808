//! The cart-tracking stage in the report: its two tables (markdown and CSV
//! from the same cells) and its section, every sentence generated from the
//! results, and a stage that did not run saying so.

use std::fmt::Write as _;

use crate::results::{HttpPings, ReportTiming, Results, TrackingRun};
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
        "commit watcher poll p50 / max ms",
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
            run.commit_poll
                .map_or_else(|| "–".to_string(), |poll| format!("{} / {}", fmt_ms(poll.p50_ms), fmt_ms(poll.max_ms))),
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

/// Pings through the gateway next to keyed sales at saturation (section 3),
/// each closed loop with its own connection count.
pub fn http_table(results: &Results) -> Table {
    let mut table = Table::new([
        "request, closed loop",
        "sent",
        "accepted",
        "refused (4xx)",
        "shed (503)",
        "failed",
        "accepted/s",
        "HTTP p50 ms",
        "HTTP p99 ms",
        "÷ raw producer limit",
    ]);
    let Some(pings) = results.tracking.as_ref().and_then(|run| run.http.as_ref()) else {
        return table;
    };
    table.row([
        format!("POST /v1/carts/me/locations ×{} (202)", pings.connections),
        fmt_count(pings.sent as f64),
        fmt_count(pings.accepted as f64),
        fmt_count(pings.refused as f64),
        fmt_count(pings.shed as f64),
        fmt_count(pings.failed as f64),
        fmt_count(pings.accepted_per_s),
        fmt_ms(pings.http.p50_ms),
        fmt_ms(pings.http.p99_ms),
        share(Some(pings.accepted_per_s), results),
    ]);
    if let Some(sales) = crate::report::keyed_saturation(results) {
        table.row([
            format!("POST /v1/sales with Idempotency-Key ×{} (201; section 3)", sales.connections),
            fmt_count(sales.sent as f64),
            fmt_count(sales.accepted as f64),
            fmt_count(sales.refused as f64),
            fmt_count(sales.shed as f64),
            fmt_count(sales.failed as f64),
            fmt_count(sales.accepted_per_s),
            fmt_ms(sales.http.p50_ms),
            fmt_ms(sales.http.p99_ms),
            share(Some(sales.accepted_per_s), results),
        ]);
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
        "{} location pings of {} bench carts were written straight to `mamochi.cart-tracking` (partitions 1–3, one cart's pings on one partition, every position inside the cart's comuna, so no alarm fires) in {:.2} s while the distributor ran; its tracking group applies them in batches of up to {} events, one transaction each, storing only each cart's newest position of a batch (so with {} carts a batch writes at most {} positions: real traffic, one ping per cart every few seconds, writes nearly one per ping). A rate counts from the first ping written to the **last** ping's dedupe row seen committed (polled from another session: at or after the commit, late by at most one poll of the watcher, whose duration the last column gives).\n",
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
        "\nRight after the last ping was acknowledged, a MISSING report for one bench cart was written to the report lane (partition 0); {} pings were still uncommitted once it was acknowledged, and {} once its RAISED alarm had been read (each counted from the committed dedupe rows just after that moment, so a lower bound): the report was decided ahead of them. Then a FOUND report cleared the incident. `decided_at − occurred_at` is the platform's own measure (the alarm-latency histogram's); the second column adds the outbox relay's publication and the bench reading the alarm back from Kafka.\n",
        fmt_count(run.pings_pending_at_report as f64),
        fmt_count(run.pings_pending_at_alarm as f64),
    );
    text.push_str(&reports_table(results).to_markdown());
    if let Some(error) = &run.error {
        let _ = writeln!(text, "\n> {error}");
    }
    match &run.http {
        Some(pings) => {
            let _ = writeln!(
                text,
                "\nThe ping path through the gateway: location pings of the bench vendors in a closed loop for {:.0} s, next to this run's keyed sales at saturation. A ping is checked, stamped and produced (202 once Kafka acknowledged it), with no database row of its own in the gateway; a keyed sale also claims and settles its Idempotency-Key.\n",
                pings.duration_s
            );
            text.push_str(&http_table(results).to_markdown());
            if let Some(error) = &pings.first_error {
                let _ = writeln!(text, "\n> first error of the ping loop: {error}");
            }
        }
        None => text.push_str("\nPings through the gateway were not run in this plan.\n"),
    }
    text
}

/// One line for the log, for the pings through the gateway.
pub fn http_line(pings: &HttpPings) -> String {
    format!(
        "pings over HTTP: closed loop ×{} for {:.0} s: {}/s accepted (202), HTTP p50 {} p99 {} ms ({} sent, {} refused, {} shed, {} failed){}",
        pings.connections,
        pings.duration_s,
        fmt_count(pings.accepted_per_s),
        fmt_ms(pings.http.p50_ms),
        fmt_ms(pings.http.p99_ms),
        pings.sent,
        pings.refused,
        pings.shed,
        pings.failed,
        pings.first_error.as_ref().map_or_else(String::new, |error| format!("; first error: {error}")),
    )
}

/// One line for the log.
pub fn summary_line(run: &TrackingRun) -> String {
    let ms = |timing: Option<ReportTiming>, pick: fn(&ReportTiming) -> f64| {
        timing.map_or_else(|| "–".to_string(), |timing| fmt_ms(pick(&timing)))
    };
    format!(
        "cart tracking: {} pings of {} carts, {} committed, drained at {}/s; MISSING → RAISED decided in {} ms (read back {} ms) with {} pings still uncommitted; FOUND → CLEARED {} ms{}",
        fmt_count(run.pings as f64),
        run.carts,
        fmt_count(run.applied as f64),
        run.pings_per_s.map_or_else(|| "–".to_string(), fmt_count),
        ms(run.missing, |timing| timing.decided_ms),
        ms(run.missing, |timing| timing.seen_ms),
        fmt_count(run.pings_pending_at_alarm as f64),
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

        assert_eq!(drain.rows[0][5..9], ["10,000", "–", "0", "12.5 %"]);
        assert_eq!(reports.rows[0][1..], ["12.0", "30.0"]);
        assert_eq!(reports.rows[1][1..], ["not seen", "not seen"]);
        assert!(markdown(&results).contains("was not cleared"));
        assert!(markdown(&Results::default()).contains("Not run in this plan."));
    }

    #[test]
    fn pings_over_http_are_set_beside_the_keyed_sales_of_the_same_run() {
        use crate::results::{HttpPings, SalesStage};
        let pings =
            HttpPings { connections: 32, sent: 900, accepted: 900, accepted_per_s: 300.0, ..HttpPings::default() };
        let sales = SalesStage {
            name: "saturation".into(),
            idempotency_keys: true,
            connections: 32,
            accepted_per_s: 200.0,
            ..SalesStage::default()
        };
        let results = Results {
            sales: vec![sales],
            tracking: Some(TrackingRun { http: Some(pings), ..TrackingRun::default() }),
            ..Results::default()
        };

        let table = http_table(&results);

        assert_eq!(table.rows.len(), 2);
        assert!(table.rows[0][0].starts_with("POST /v1/carts/me/locations ×32"));
        assert_eq!((table.rows[0][6].as_str(), table.rows[1][6].as_str()), ("300", "200"));
        assert!(http_table(&Results::default()).rows.is_empty());
    }
}
