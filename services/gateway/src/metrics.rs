//! The gateway's Prometheus metrics, in a registry of its own, and the
//! middleware that records every HTTP request. Labels are bounded: routes are
//! the registered patterns (`/v1/registrations/{id}`), never raw paths.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Counters and histograms the gateway updates.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// HTTP requests answered, by route pattern, method and status.
    pub requests: IntCounterVec,
    /// HTTP request latency, by route pattern.
    pub request_seconds: HistogramVec,
}

const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "mamochi_gateway_http_requests_total",
                "HTTP requests answered, by route pattern, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "mamochi_gateway_http_request_duration_seconds",
                "HTTP request latency, by route pattern.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        Ok(Self { registry, requests, request_seconds })
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
        // Unmatched paths share one label, so scanners cannot grow the series.
        let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
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
