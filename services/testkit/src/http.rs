//! Plain HTTP reads of a service's endpoints and of its Prometheus text, as
//! a test or an operator would make them.

use std::time::Duration;

/// Status and body of a GET on `url`; panics if nothing answers.
pub async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap_or_else(|error| panic!("GET {url} answers: {error}"));
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Status and body of a GET on `path` of a loopback port.
pub async fn get_local(port: u16, path: &str) -> (u16, String) {
    get(&format!("http://127.0.0.1:{port}{path}")).await
}

/// Waits until a GET on `url` (a `/readyz`) answers 200; panics after
/// `timeout`, with the last answer.
pub async fn wait_until_ready(url: &str, timeout: Duration) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ready = client.get(url).send().await.map(|response| response.status().as_u16());
        if matches!(ready, Ok(200)) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{url} not ready in time: {ready:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `/metrics` text of a loopback ops port; panics if it does not answer.
pub async fn metrics(port: u16) -> String {
    get_local(port, "/metrics").await.1
}

/// The value of the sample `series` (a name, with its labels if it has
/// any) in Prometheus text; `None` if absent.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}
