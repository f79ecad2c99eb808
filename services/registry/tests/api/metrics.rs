//! `/metrics`, `/healthz` and `/readyz` on the registry's own port: requests
//! are counted under their route pattern, and the state gauges are always
//! exported.

use crate::helpers::{spawn_app, TestApp, USER_V1, USER_V2};

/// The value of the sample of `name` whose labels are exactly `labels`.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, label_text) = match series.split_once('{') {
            Some((metric, rest)) => (metric, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        let mut found = Vec::new();
        let mut rest = label_text;
        while let Some((key, after)) = rest.split_once("=\"") {
            let end = after.find('"')?;
            found.push((key.trim_start_matches(','), &after[..end]));
            rest = &after[end + 1..];
        }
        found.sort_unstable();
        let mut wanted = labels.to_vec();
        wanted.sort_unstable();
        (metric == name && found == wanted).then(|| value.parse().ok()).flatten()
    })
}

async fn scrape(app: &TestApp) -> String {
    let answer = app.get("/metrics").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.content_type.starts_with("text/plain"), "{answer:?}");
    answer.text
}

fn requests(exposition: &str, route: &str, method: &str, status: &str) -> f64 {
    let labels = [("route", route), ("method", method), ("status", status)];
    sample(exposition, "mamochi_registry_http_requests_total", &labels).unwrap_or(0.0)
}

#[tokio::test]
async fn a_request_is_counted_under_its_route_pattern() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;
    let route = "/subjects/{subject}/versions/{version}";
    let before = scrape(&app).await;

    app.get("/subjects/users/versions/1").await.ok();
    app.get("/subjects/nobody/versions/1").await.assert_error(404, 40401);
    let after = scrape(&app).await;

    assert_eq!(requests(&after, route, "GET", "200"), requests(&before, route, "GET", "200") + 1.0, "{after}");
    assert_eq!(requests(&after, route, "GET", "404"), requests(&before, route, "GET", "404") + 1.0, "{after}");
    assert_eq!(requests(&after, "/subjects/{subject}/versions", "POST", "200"), 1.0, "the registration");
    let timed = sample(&after, "mamochi_registry_http_request_duration_seconds_count", &[("route", route)]);
    assert_eq!(timed, Some(2.0), "{after}");
    assert!(!after.contains("/subjects/users/") && !after.contains("nobody"), "raw paths are never labels: {after}");
    app.stop().await;
}

#[tokio::test]
async fn unknown_paths_share_one_label() {
    let app = spawn_app().await;

    app.get("/no/such/thing").await.assert_error(404, 404);
    app.get("/another/unknown/path").await.assert_error(404, 404);
    let exposition = scrape(&app).await;

    assert_eq!(requests(&exposition, "unmatched", "GET", "404"), 2.0, "{exposition}");
    assert!(!exposition.contains("/no/such/thing"), "{exposition}");
    app.stop().await;
}

#[tokio::test]
async fn state_gauges_are_exported_from_the_start_and_follow_the_state() {
    let app = spawn_app().await;
    let empty = scrape(&app).await;
    app.register("a-value", USER_V1).await;
    app.register("b-value", USER_V1).await;
    app.register("a-value", USER_V2).await;
    app.delete("/subjects/b-value").await.ok();

    let after = scrape(&app).await;

    assert_eq!(sample(&empty, "mamochi_registry_schemas", &[]), Some(0.0), "{empty}");
    assert_eq!(sample(&empty, "mamochi_registry_subjects", &[]), Some(0.0), "{empty}");
    assert_eq!(sample(&after, "mamochi_registry_schemas", &[]), Some(2.0), "two ids, one shared: {after}");
    assert_eq!(sample(&after, "mamochi_registry_subjects", &[]), Some(1.0), "b-value is soft-deleted: {after}");
    for name in [
        "mamochi_registry_http_requests_total",
        "mamochi_registry_http_request_duration_seconds",
        "mamochi_registry_schemas",
        "mamochi_registry_subjects",
    ] {
        assert!(after.contains(&format!("# HELP {name} ")), "{name} has HELP text: {after}");
    }
    app.stop().await;
}

#[tokio::test]
async fn health_and_readiness_answer_on_the_api_port() {
    let app = spawn_app().await;

    let health = app.get("/healthz").await;
    let ready = app.get("/readyz").await;

    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(ready.status, 200, "the state is loaded before the port answers: {ready:?}");
    assert_eq!(ready.body["service"], "registry");
    app.stop().await;
}
