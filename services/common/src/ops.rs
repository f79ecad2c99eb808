//! The operational endpoints every service serves, on its own port:
//! `/healthz` (the process is alive), `/readyz` (whatever the service set
//! with [`Readiness::set`]; what each service waits for is in
//! docs/architecture.md; a service with consumers is ready only once each
//! has received its first partition assignment, see
//! `kafka::ready_when_assigned`) and `/metrics` (Prometheus text
//! format, from the service's own registry).
//!
//! Liveness and readiness are separate on purpose: a service waiting for
//! Kafka is alive (do not restart it) but not ready (do not send it traffic).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use prometheus::{Encoder, Registry, TextEncoder};

/// A flag the service raises once it can do its job, and lowers when it cannot.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// State the operational routes read.
#[derive(Debug, Clone)]
pub struct Ops {
    pub service: &'static str,
    pub readiness: Readiness,
    pub registry: Registry,
}

/// Adds `/healthz`, `/readyz` and `/metrics` to an actix app.
pub fn configure(ops: Ops) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config
            .app_data(web::Data::new(ops))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics));
    }
}

/// Serves only the operational endpoints on `listen` (background services
/// have no other HTTP surface). Returns the server, to await or stop, and the
/// bound port (`listen` may ask for port 0).
pub fn serve(listen: &str, ops: Ops) -> std::io::Result<(actix_web::dev::Server, u16)> {
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(configure(ops.clone())))
        .workers(1)
        .disable_signals()
        .bind(listen)?;
    let port = server.addrs().first().map(|addr| addr.port()).unwrap_or_default();
    Ok((server.run(), port))
}

async fn healthz(ops: web::Data<Ops>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "service": ops.service, "status": "alive" }))
}

async fn readyz(ops: web::Data<Ops>) -> HttpResponse {
    if ops.readiness.is_ready() {
        HttpResponse::Ok().json(serde_json::json!({ "service": ops.service, "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({ "service": ops.service, "status": "not ready" }))
    }
}

async fn metrics(ops: web::Data<Ops>) -> HttpResponse {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&ops.registry.gather(), &mut body) {
        Ok(()) => HttpResponse::Ok().content_type(prometheus::TEXT_FORMAT).body(body),
        Err(error) => {
            tracing::error!(%error, "metrics encoding failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{test, App};

    use super::*;

    fn ops(ready: bool) -> Ops {
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("mamochi_test_total", "A counter for the test.").expect("counter");
        registry.register(Box::new(counter.clone())).expect("register");
        counter.inc();
        let readiness = Readiness::default();
        readiness.set(ready);
        Ops { service: "test", readiness, registry }
    }

    #[actix_web::test]
    async fn readiness_follows_the_flag_and_liveness_does_not() {
        let app = test::init_service(App::new().configure(configure(ops(false)))).await;

        let live = test::call_service(&app, test::TestRequest::get().uri("/healthz").to_request()).await;
        let ready = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;

        assert_eq!(live.status(), 200);
        assert_eq!(ready.status(), 503);
    }

    #[actix_web::test]
    async fn metrics_are_served_in_prometheus_text_format() {
        let app = test::init_service(App::new().configure(configure(ops(true)))).await;

        let response = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        let body = test::read_body(response).await;

        let text = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(text.contains("# HELP mamochi_test_total A counter for the test."));
        assert!(text.contains("mamochi_test_total 1"));
    }
}
