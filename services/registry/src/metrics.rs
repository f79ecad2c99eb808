//! The registry's Prometheus metrics, in a registry of its own, and the
//! middleware that records every HTTP request.
//!
//! Guarantees: labels are bounded — `route` is the matched route pattern
//! (`/subjects/{subject}/versions`), never the raw path, every path no route
//! matches shares the label `unmatched`, and methods outside the standard
//! set share `other`; so clients and scanners cannot grow the series. The
//! state gauges have no labels and are computed from the in-memory state when
//! `/metrics` is scraped, so they are always exported (0 on an empty registry)
//! and never lag behind the log.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// Latency buckets (seconds): reads answer from memory in well under a
/// millisecond; writes wait for Kafka's `acks=all` and the reader.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Label of every request no route matched.
const UNMATCHED: &str = "unmatched";

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

/// Counters and histograms the middleware updates, and the registry that
/// `/metrics` serves (which also holds the state gauges).
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// HTTP requests answered, by route pattern, method and status.
    pub requests: IntCounterVec,
    /// HTTP request latency, by route pattern.
    pub request_seconds: HistogramVec,
}

impl Metrics {
    /// Creates the metrics; `counts` is called at each scrape for the gauges.
    pub fn new(counts: impl Fn() -> StateCounts + Send + Sync + 'static) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "mamochi_registry_http_requests_total",
                "HTTP requests the schema registry answered, by route pattern, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "mamochi_registry_http_request_duration_seconds",
                "Time the schema registry took to answer an HTTP request, by route pattern.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        registry.register(Box::new(StateGauges::new(counts)?))?;
        Ok(Self { registry, requests, request_seconds })
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

/// Middleware (`from_fn`) counting and timing each request by route pattern.
pub async fn record(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = request.app_data::<web::Data<Metrics>>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        let route = response.request().match_pattern().unwrap_or_else(|| UNMATCHED.to_string());
        let method = if matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") {
            method.as_str()
        } else {
            "other"
        };
        metrics.requests.with_label_values(&[route.as_str(), method, response.status().as_str()]).inc();
        metrics.request_seconds.with_label_values(&[route.as_str()]).observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::{App, HttpResponse};
    use prometheus::{Encoder, TextEncoder};

    use super::*;

    fn exported(metrics: &Metrics) -> String {
        let mut text = Vec::new();
        TextEncoder::new().encode(&metrics.registry.gather(), &mut text).expect("encodes");
        String::from_utf8(text).expect("utf-8")
    }

    #[actix_web::test]
    async fn requests_are_labelled_by_route_pattern_never_by_path() {
        let metrics = Metrics::new(StateCounts::default).expect("metrics");
        let app = init_service(
            App::new()
                .wrap(from_fn(record))
                .app_data(web::Data::new(metrics.clone()))
                .route("/things/{id}", web::get().to(HttpResponse::Ok)),
        )
        .await;

        call_service(&app, TestRequest::get().uri("/things/7").to_request()).await;
        call_service(&app, TestRequest::get().uri("/nothing/here").to_request()).await;

        let text = exported(&metrics);
        assert!(
            text.contains(r#"mamochi_registry_http_requests_total{method="GET",route="/things/{id}",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mamochi_registry_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"mamochi_registry_http_request_duration_seconds_count{route="/things/{id}"} 1"#));
        assert!(!text.contains("/things/7") && !text.contains("/nothing/here"), "{text}");
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
