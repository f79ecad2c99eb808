//! The accounting service's Prometheus metrics, in a registry of its own.
//!
//! Every metric is prefixed `mamochi_accounting_`, carries HELP text, and
//! labels take only the fixed values named in their help.

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Counters and histograms the service updates.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Sales counted into a week (each sale once).
    pub sales_applied: IntCounter,
    /// Redelivered sales recognised and skipped.
    pub sales_duplicate: IntCounter,
    /// Sales whose own week was already closed, counted in the open week.
    pub sales_late: IntCounter,
    /// Sales refused and parked in the dead letters, by reason.
    pub sales_rejected: IntCounterVec,
    /// Weeks closed (one statement each).
    pub weeks_closed: IntCounter,
    /// Statements published (statement event and email request acknowledged).
    pub statements_published: IntCounter,
    /// Closing passes completed without error (what tests wait on to know
    /// every closer has looked at the database since a given moment).
    pub closing_passes: IntCounter,
    /// Records applied per database transaction.
    pub batch_size: Histogram,
    /// Seconds spent in database work, by operation.
    pub db_seconds: HistogramVec,
    /// Seconds from a sale's `recorded_at` to its effect being committed.
    pub end_to_end_seconds: Histogram,
    /// Platform time (ms since the epoch) the service last acted on.
    pub platform_time_ms: IntGauge,
    /// The close horizon (ms since the epoch) of the last pass; 0 if nothing could close.
    pub close_horizon_ms: IntGauge,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let sales_applied = IntCounter::new(
            "mamochi_accounting_sales_applied_total",
            "Sales counted into a vendor's weekly totals; each sale id is counted once.",
        )?;
        let sales_duplicate = IntCounter::new(
            "mamochi_accounting_sales_duplicate_total",
            "Redelivered sales recognised by their sale id and skipped.",
        )?;
        let sales_late = IntCounter::new(
            "mamochi_accounting_sales_late_total",
            "Sales whose own week was already closed; counted in the vendor's current open week instead.",
        )?;
        let sales_rejected = IntCounterVec::new(
            Opts::new(
                "mamochi_accounting_sales_rejected_total",
                "Sales refused and parked in the dead letters, by reason (invalid, overflow).",
            ),
            &["reason"],
        )?;
        let weeks_closed = IntCounter::new(
            "mamochi_accounting_weeks_closed_total",
            "Vendor weeks closed, each with exactly one statement stored.",
        )?;
        let statements_published = IntCounter::new(
            "mamochi_accounting_statements_published_total",
            "Statements whose event and email request Kafka acknowledged.",
        )?;
        let closing_passes = IntCounter::new(
            "mamochi_accounting_closing_passes_total",
            "Closing passes (close due weeks, publish pending statements) completed without error.",
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("mamochi_accounting_batch_size", "Sales records applied in one database transaction.")
                .buckets(vec![1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0]),
        )?;
        let db_seconds = HistogramVec::new(
            HistogramOpts::new(
                "mamochi_accounting_db_seconds",
                "Seconds spent in one database transaction, by operation (apply, close, publish).",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["operation"],
        )?;
        let end_to_end_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "mamochi_accounting_end_to_end_seconds",
                "Seconds from a sale's recorded_at (gateway acceptance) to its effect committed here.",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
        )?;
        let platform_time_ms = IntGauge::new(
            "mamochi_accounting_platform_time_ms",
            "Platform time the closer last used: the later of the clock and the latest sale time applied by any instance (ms since the epoch).",
        )?;
        let close_horizon_ms = IntGauge::new(
            "mamochi_accounting_close_horizon_ms",
            "Instant (ms since the epoch) up to which every sales partition has been read, as of the last closing pass; weeks close once their end plus grace is at or before it. 0 while a partition with a backlog has had nothing applied yet.",
        )?;
        registry.register(Box::new(sales_applied.clone()))?;
        registry.register(Box::new(sales_duplicate.clone()))?;
        registry.register(Box::new(sales_late.clone()))?;
        registry.register(Box::new(sales_rejected.clone()))?;
        registry.register(Box::new(weeks_closed.clone()))?;
        registry.register(Box::new(statements_published.clone()))?;
        registry.register(Box::new(closing_passes.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(db_seconds.clone()))?;
        registry.register(Box::new(end_to_end_seconds.clone()))?;
        registry.register(Box::new(platform_time_ms.clone()))?;
        registry.register(Box::new(close_horizon_ms.clone()))?;
        Ok(Self {
            registry,
            sales_applied,
            sales_duplicate,
            sales_late,
            sales_rejected,
            weeks_closed,
            statements_published,
            closing_passes,
            batch_size,
            db_seconds,
            end_to_end_seconds,
            platform_time_ms,
            close_horizon_ms,
        })
    }
}
