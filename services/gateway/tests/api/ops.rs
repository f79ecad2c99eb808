//! /healthz, /readyz and /metrics on the operations listener, and never on
//! the public API port.

use crate::helpers::{form, spawn_app, Answer};

#[tokio::test]
async fn health_readiness_and_metrics_are_served_on_the_operations_port() {
    // Arrange
    let app = spawn_app().await;
    let submitted = app.post("/v1/registrations", &form(true), None).await;
    assert_eq!(submitted.status, 202);
    let ops = |path: &str| app.client.get(format!("{}{path}", app.ops_address)).send();

    // Act
    let health = Answer::from(ops("/healthz").await.expect("request")).await;
    let ready = Answer::from(ops("/readyz").await.expect("request")).await;
    let metrics = ops("/metrics").await.expect("request").text().await.expect("text");

    // Assert
    assert_eq!(health.status, 200);
    assert_eq!(health.body["service"], "gateway");
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
async fn the_public_port_answers_404_for_the_operations_endpoints() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/healthz", "/readyz", "/metrics"] {
        // Act
        let answer = app.get(path, None).await;

        // Assert
        assert_eq!(answer.error(), (404, "route_not_found", None), "{path} on the public port");
    }
}

#[tokio::test]
async fn the_operations_port_serves_nothing_of_the_api() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let answer = app.client.get(format!("{}/openapi.json", app.ops_address)).send().await.expect("request");

    // Assert
    assert_eq!(answer.status(), 404);
}

#[tokio::test]
async fn run_returns_ok_once_the_shutdown_token_is_cancelled() {
    // Arrange: `run` binds from settings, so the test picks the ops port.
    let mut settings = crate::helpers::settings();
    let ops_port = mamochi_common::ports::unused_loopback_port().expect("a free port");
    settings.gateway.ops_listen = format!("127.0.0.1:{ops_port}");
    let healthz = format!("http://127.0.0.1:{ops_port}/healthz");
    let shutdown = mamochi_common::shutdown::Shutdown::new();
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { mamochi_gateway::run(&settings, shutdown).await }
    });
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let health = client.get(&healthz).send().await.map(|answer| answer.status().as_u16());
        if matches!(health, Ok(200)) {
            break;
        }
        assert!(!running.is_finished(), "run ended before serving: {health:?}");
        assert!(tokio::time::Instant::now() < deadline, "the gateway never answered on its ops port: {health:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Act
    shutdown.cancel();

    // Assert
    let result = tokio::time::timeout(std::time::Duration::from_secs(30), running).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    let after = client.get(&healthz).send().await;
    assert!(after.as_ref().is_err_and(reqwest::Error::is_connect), "the ops port still answers: {after:?}");
}
