//! The registry's Prometheus metrics, in a registry of its own: the HTTP
//! request metrics every platform server has ([`mamochi_common::http_metrics`],
//! whose middleware records them) and the registry's state gauges.
//!
//! Guarantees: the state gauges have no labels and are computed from the
//! in-memory state when `/metrics` is scraped, so they are always exported (0
//! on an empty registry) and never lag behind the log.

use mamochi_common::http_metrics::HttpMetrics;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGauge, Registry};

/// What the state gauges report, read from the store at each scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Distinct global schema ids currently known (soft-deleted versions
    /// still serve their id, so they count; permanently deleted ones do not).
    pub schemas: usize,
    /// Subjects with at least one version that is not soft-deleted.
    pub subjects: usize,
    /// This instance is the elected writer (see [`crate::election`]).
    pub writer: bool,
}

/// The HTTP metrics the middleware updates, and the registry that
/// `/metrics` serves (which also holds the state gauges).
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub http: HttpMetrics,
}

impl Metrics {
    /// Creates the metrics; `counts` is called at each scrape for the gauges.
    pub fn new(counts: impl Fn() -> StateCounts + Send + Sync + 'static) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let http = HttpMetrics::register(&registry, "registry")?;
        registry.register(Box::new(StateGauges::new(counts)?))?;
        Ok(Self { registry, http })
    }
}

/// The state gauges, set from `counts` each time the registry is gathered.
struct StateGauges {
    schemas: IntGauge,
    subjects: IntGauge,
    writer: IntGauge,
    counts: Box<dyn Fn() -> StateCounts + Send + Sync>,
}

impl StateGauges {
    fn new(counts: impl Fn() -> StateCounts + Send + Sync + 'static) -> prometheus::Result<Self> {
        let schemas = IntGauge::new(
            "mamochi_registry_schemas",
            "Distinct schemas (global ids) the registry currently knows, soft-deleted ones included.",
        )?;
        let subjects =
            IntGauge::new("mamochi_registry_subjects", "Subjects with at least one version that is not soft-deleted.")?;
        let writer = IntGauge::new(
            "mamochi_registry_is_writer",
            "1 while this registry instance is the elected writer, 0 while it forwards writes.",
        )?;
        Ok(Self { schemas, subjects, writer, counts: Box::new(counts) })
    }
}

impl Collector for StateGauges {
    fn desc(&self) -> Vec<&Desc> {
        self.schemas.desc().into_iter().chain(self.subjects.desc()).chain(self.writer.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let counts = (self.counts)();
        self.schemas.set(i64::try_from(counts.schemas).unwrap_or(i64::MAX));
        self.subjects.set(i64::try_from(counts.subjects).unwrap_or(i64::MAX));
        self.writer.set(i64::from(counts.writer));
        self.schemas.collect().into_iter().chain(self.subjects.collect()).chain(self.writer.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use prometheus::{Encoder, TextEncoder};

    use super::*;

    fn exported(metrics: &Metrics) -> String {
        let mut text = Vec::new();
        TextEncoder::new().encode(&metrics.registry.gather(), &mut text).expect("encodes");
        String::from_utf8(text).expect("utf-8")
    }

    #[test]
    fn state_gauges_are_exported_with_help_and_follow_the_state() {
        let empty = Metrics::new(StateCounts::default).expect("metrics");
        let busy = Metrics::new(|| StateCounts { schemas: 3, subjects: 2, writer: true }).expect("metrics");

        let empty = exported(&empty);
        let busy = exported(&busy);

        assert!(empty.contains("# HELP mamochi_registry_schemas "), "{empty}");
        assert!(empty.contains("# HELP mamochi_registry_subjects "), "{empty}");
        assert!(empty.contains("\nmamochi_registry_schemas 0\n"), "{empty}");
        assert!(empty.contains("\nmamochi_registry_subjects 0\n"), "{empty}");
        assert!(busy.contains("\nmamochi_registry_schemas 3\n"), "{busy}");
        assert!(busy.contains("\nmamochi_registry_subjects 2\n"), "{busy}");
        assert!(empty.contains("\nmamochi_registry_is_writer 0\n"), "{empty}");
        assert!(busy.contains("\nmamochi_registry_is_writer 1\n"), "{busy}");
        assert!(!empty.contains("mamochi_registry_http_requests_total{"), "no labelled series before any request");
    }
}
