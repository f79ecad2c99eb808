//! The approval service's Prometheus metrics, in a registry of its own.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Counters and histograms the service updates.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Forms decided, by outcome and lane.
    pub decisions: IntCounterVec,
    /// Seconds from submission to decision, by lane (paid or standard).
    pub wait_seconds: HistogramVec,
    /// Events skipped because they were applied before (redeliveries).
    pub duplicates: IntCounterVec,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new("mamochi_approval_decisions_total", "Registration forms decided, by outcome and lane."),
            &["outcome", "lane"],
        )?;
        let wait_seconds = HistogramVec::new(
            HistogramOpts::new(
                "mamochi_approval_wait_seconds",
                "Time from a form's submission to its automatic decision, by lane (paid or standard).",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
            &["lane"],
        )?;
        let duplicates = IntCounterVec::new(
            Opts::new("mamochi_approval_duplicates_total", "Redelivered events recognised and skipped, by kind."),
            &["kind"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(wait_seconds.clone()))?;
        registry.register(Box::new(duplicates.clone()))?;
        Ok(Self { registry, decisions, wait_seconds, duplicates })
    }
}
