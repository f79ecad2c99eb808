//! The HTTP request metrics of every actix-web server of the platform (the
//! gateway's API, the schema registry): one counter and one latency
//! histogram per server, and the middleware that records them.
//!
//! Guarantees: labels are bounded — `route` is the matched route pattern
//! (`/v1/registrations/{id}`), never the raw path; every path no route
//! matches shares the label `unmatched`, and methods outside the standard set
//! share `other`; so clients and scanners cannot grow the series.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Latency buckets (seconds): from reads answered from memory in well under
/// a millisecond to writes that wait for Kafka's `acks=all`.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Label of every request no route matched.
const UNMATCHED: &str = "unmatched";

/// The counter and histogram [`record`] updates. A server puts it in its app
/// data as `web::Data<HttpMetrics>`.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    /// HTTP requests answered, by route pattern, method and status.
    pub requests: IntCounterVec,
    /// HTTP request latency, by route pattern.
    pub request_seconds: HistogramVec,
}

impl HttpMetrics {
    /// Registers `mamochi_<service>_http_requests_total` and
    /// `mamochi_<service>_http_request_duration_seconds` in `registry`.
    pub fn register(registry: &Registry, service: &str) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                format!("mamochi_{service}_http_requests_total"),
                format!("HTTP requests the {service} answered, by route pattern, method and status."),
            ),
            &["route", "method", "status"],
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                format!("mamochi_{service}_http_request_duration_seconds"),
                format!("Time the {service} took to answer an HTTP request, by route pattern."),
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        Ok(Self { requests, request_seconds })
    }
}

/// Middleware (`from_fn`) counting and timing each request by route pattern.
pub async fn record(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = request.app_data::<web::Data<HttpMetrics>>().cloned();
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

    #[actix_web::test]
    async fn requests_are_labelled_by_route_pattern_never_by_path() {
        let registry = Registry::new();
        let metrics = HttpMetrics::register(&registry, "things").expect("metrics");
        let app = init_service(
            App::new()
                .wrap(from_fn(record))
                .app_data(web::Data::new(metrics))
                .route("/things/{id}", web::get().to(HttpResponse::Ok)),
        )
        .await;

        call_service(&app, TestRequest::get().uri("/things/7").to_request()).await;
        call_service(&app, TestRequest::get().uri("/nothing/here").to_request()).await;

        let mut text = Vec::new();
        TextEncoder::new().encode(&registry.gather(), &mut text).expect("encodes");
        let text = String::from_utf8(text).expect("utf-8");
        assert!(
            text.contains(r#"mamochi_things_http_requests_total{method="GET",route="/things/{id}",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mamochi_things_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"mamochi_things_http_request_duration_seconds_count{route="/things/{id}"} 1"#));
        assert!(!text.contains("/things/7") && !text.contains("/nothing/here"), "{text}");
    }
}
