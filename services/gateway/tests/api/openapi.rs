//! The OpenAPI document and the router agree: every documented operation is
//! routed, and every route is documented.

use std::collections::BTreeSet;

use mamochi_gateway::routes::CATALOG;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_documented_operation_is_routed_and_every_route_is_documented() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let document = app.get("/openapi.json", None).await;

    // Assert
    assert_eq!(document.status, 200);
    assert!(document.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = document.body["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, operations) in paths {
        for method in operations.as_object().expect("operations").keys() {
            documented.insert((method.clone(), path.clone()));
            let concrete = path
                .replace("{id}", &uuid::Uuid::new_v4().to_string())
                .replace("{vendor_id}", &uuid::Uuid::new_v4().to_string());
            let request = match method.as_str() {
                "get" => app.client.get(app.url(&concrete)),
                "post" => app.client.post(app.url(&concrete)).json(&Value::Object(Default::default())),
                other => panic!("undocumented method kind {other}"),
            };
            let answer = crate::helpers::Answer::from(request.send().await.expect("request")).await;
            assert_ne!(answer.body["error"]["code"], "route_not_found", "{method} {path} is documented but not routed");
            assert_ne!(answer.status, 405, "{method} {path} is documented but not routed for that method");
        }
    }
    for (method, path) in CATALOG {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is routed but not documented"
        );
    }
}
