//! The distributor's Prometheus metrics, in a registry of its own. Labels are
//! fixed enumerations (which topic, which kind of restock, which alarm cause
//! and state), never ids. The cart tracking's metrics are named
//! `mamochi_tracking_*`, as the dashboards know them.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Counters and histograms of what the distributor does.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub sales_applied: IntCounter,
    pub stock_outs: IntCounter,
    /// By `kind`: `depleted` or `requested`.
    pub restocks: IntCounterVec,
    pub low_stock_alerts: IntCounter,
    pub oversold_servings: IntCounter,
    /// By `topic`: `sales`, `stock` or `cart-tracking`.
    pub duplicates: IntCounterVec,
    pub end_to_end_seconds: Histogram,
    /// Sales per database transaction.
    pub batch_sales: Histogram,
    /// Outbox records produced to Kafka and deleted.
    pub outbox_relayed: IntCounter,
    /// Cart alarms by `cause` (reported_missing, silent, out_of_area) and
    /// `state` (raised, cleared).
    pub tracking_alarms: IntCounterVec,
    /// Open incidents by `cause`, as the database has them.
    pub tracking_open_incidents: IntGaugeVec,
    /// Real seconds from an alarm's evidence to its RAISED decision, by `cause`.
    pub tracking_alarm_latency_seconds: HistogramVec,
    /// Carts whose last position is younger than `tracking.silence_after_secs`.
    pub tracking_carts_reporting: IntGauge,
    /// Location pings consumed, counted when their batch committed.
    pub tracking_pings: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let counter = IntCounter::new(name, help)?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        let sales_applied = counter("mamochi_distributor_sales_applied_total", "Sales applied to a cart's stock.")?;
        let stock_outs = counter(
            "mamochi_distributor_stock_outs_total",
            "Depletions handled (a sale took the stock to zero, or the vendor reported running out).",
        )?;
        let low_stock_alerts = counter(
            "mamochi_distributor_low_stock_alerts_total",
            "Low-stock alerts raised (stock fell below the threshold).",
        )?;
        let oversold_servings = counter(
            "mamochi_distributor_oversold_servings_total",
            "Servings sold beyond a cart's stock (the sale is kept, the stock floors at zero).",
        )?;
        let restocks = IntCounterVec::new(
            Opts::new(
                "mamochi_distributor_restocks_total",
                "Carts restocked, by what asked for it (depleted, requested).",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(restocks.clone()))?;
        let duplicates = IntCounterVec::new(
            Opts::new(
                "mamochi_distributor_duplicates_skipped_total",
                "Redelivered events skipped because their id was already applied, by topic (sales, stock, cart-tracking).",
            ),
            &["topic"],
        )?;
        registry.register(Box::new(duplicates.clone()))?;
        let end_to_end_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "mamochi_distributor_end_to_end_seconds",
                "Real seconds from a sale being recorded (recorded_at) to its stock change committing.",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        )?;
        registry.register(Box::new(end_to_end_seconds.clone()))?;
        let batch_sales = Histogram::with_opts(
            HistogramOpts::new(
                "mamochi_distributor_batch_sales",
                "Sales applied per database transaction (a polled batch).",
            )
            .buckets(vec![1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0]),
        )?;
        registry.register(Box::new(batch_sales.clone()))?;
        let outbox_relayed = counter(
            "mamochi_distributor_outbox_relayed_total",
            "Outbox records (stock events, email requests, cart levels) produced to Kafka after their commit.",
        )?;
        let tracking_alarms = IntCounterVec::new(
            Opts::new(
                "mamochi_tracking_alarms_total",
                "Cart alarms decided, by cause (reported_missing, silent, out_of_area) and state (raised, cleared).",
            ),
            &["cause", "state"],
        )?;
        registry.register(Box::new(tracking_alarms.clone()))?;
        let tracking_open_incidents = IntGaugeVec::new(
            Opts::new("mamochi_tracking_open_incidents", "Cart incidents open now, by cause (from the database)."),
            &["cause"],
        )?;
        registry.register(Box::new(tracking_open_incidents.clone()))?;
        let tracking_alarm_latency_seconds = HistogramVec::new(
            HistogramOpts::new(
                "mamochi_tracking_alarm_latency_seconds",
                "Real seconds from an incident's evidence (evidence_at) to its RAISED decision (decided_at), by cause.",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
            &["cause"],
        )?;
        registry.register(Box::new(tracking_alarm_latency_seconds.clone()))?;
        let tracking_carts_reporting = IntGauge::new(
            "mamochi_tracking_carts_reporting",
            "Carts whose last position is younger than tracking.silence_after_secs.",
        )?;
        registry.register(Box::new(tracking_carts_reporting.clone()))?;
        let tracking_pings = counter(
            "mamochi_tracking_pings_total",
            "Cart location pings consumed, counted when their batch committed.",
        )?;
        Ok(Self {
            registry,
            sales_applied,
            stock_outs,
            restocks,
            low_stock_alerts,
            oversold_servings,
            duplicates,
            end_to_end_seconds,
            batch_sales,
            outbox_relayed,
            tracking_alarms,
            tracking_open_incidents,
            tracking_alarm_latency_seconds,
            tracking_carts_reporting,
            tracking_pings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_named_for_the_service_and_has_help() {
        let metrics = Metrics::new().expect("metrics");
        metrics.restocks.with_label_values(&["depleted"]).inc();
        metrics.duplicates.with_label_values(&["sales"]).inc();
        metrics.tracking_alarms.with_label_values(&["silent", "raised"]).inc();
        metrics.tracking_open_incidents.with_label_values(&["silent"]).set(1);
        metrics.tracking_alarm_latency_seconds.with_label_values(&["silent"]).observe(1.0);
        for family in metrics.registry.gather() {
            let name = family.name();
            assert!(name.starts_with("mamochi_distributor_") || name.starts_with("mamochi_tracking_"), "{name}");
            assert!(!family.help().is_empty(), "{} has HELP", family.name());
        }
    }
}
