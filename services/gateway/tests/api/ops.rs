//! /healthz, /readyz and /metrics on the API's own listener.

use crate::helpers::{form, spawn_app};

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    // Arrange
    let app = spawn_app().await;
    let submitted = app.post("/v1/registrations", &form(true), None).await;
    assert_eq!(submitted.status, 202);

    // Act
    let health = app.get("/healthz", None).await;
    let ready = app.get("/readyz", None).await;
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("request").text().await.expect("text");

    // Assert
    assert_eq!(health.status, 200);
    assert_eq!(ready.body["status"], "ready");
    assert!(metrics.contains("# HELP mamochi_gateway_http_requests_total"));
    assert!(
        metrics
            .contains(r#"mamochi_gateway_http_requests_total{method="POST",route="/v1/registrations",status="202"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"mamochi_kafka_records_produced_total{topic="mamochi.registrations"} 1"#), "{metrics}");
    assert!(metrics.contains("mamochi_kafka_produce_seconds_count{topic=\"mamochi.registrations\"} 1"));
    assert!(metrics.contains("mamochi_gateway_http_request_duration_seconds_bucket{route=\"/v1/registrations\""));
}

#[tokio::test]
async fn run_returns_ok_once_the_shutdown_token_is_cancelled() {
    // Arrange
    let settings = crate::helpers::settings();
    let shutdown = mamochi_common::shutdown::Shutdown::new();
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { mamochi_gateway::run(&settings, shutdown).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // Act
    shutdown.cancel();

    // Assert
    let result = tokio::time::timeout(std::time::Duration::from_secs(30), running).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
}
