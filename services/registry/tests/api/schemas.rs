//! `/schemas`, the root resource and unknown paths.

use serde_json::json;

use crate::helpers::{spawn_app, USER_V1, USER_V2};

#[tokio::test]
async fn a_schema_is_fetched_by_its_id() {
    let app = spawn_app().await;
    let id = app.register("users-value", USER_V1).await;
    app.register("copy-value", USER_V1).await;
    app.register("users-value", USER_V2).await;

    let by_id = app.get(&format!("/schemas/ids/{id}")).await;
    let with_subject = app.get(&format!("/schemas/ids/{id}?subject=copy-value")).await;
    let raw = app.get(&format!("/schemas/ids/{id}/schema")).await;
    let versions = app.get(&format!("/schemas/ids/{id}/versions")).await;
    let subjects = app.get(&format!("/schemas/ids/{id}/subjects")).await;

    assert_eq!(by_id.ok(), &json!({"schema": USER_V1}));
    assert_eq!(with_subject.ok(), &json!({"schema": USER_V1}));
    assert_eq!(raw.text, USER_V1);
    assert_eq!(
        versions.ok(),
        &json!([{"subject": "copy-value", "version": 1}, {"subject": "users-value", "version": 1}])
    );
    assert_eq!(subjects.ok(), &json!(["copy-value", "users-value"]));
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_id_is_40403() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;

    let missing = app.get("/schemas/ids/999").await;
    let missing_with_subject = app.get("/schemas/ids/999?subject=users").await;
    let missing_versions = app.get("/schemas/ids/999/versions").await;
    let missing_subjects = app.get("/schemas/ids/999/subjects").await;

    assert_eq!(missing.assert_error(404, 40403), "Schema 999 not found");
    missing_with_subject.assert_error(404, 40403);
    missing_versions.assert_error(404, 40403);
    missing_subjects.assert_error(404, 40403);
    app.stop().await;
}

#[tokio::test]
async fn root_types_and_unknown_paths() {
    let app = spawn_app().await;

    let root = app.get("/").await;
    let types = app.get("/schemas/types").await;
    let unknown = app.get("/no/such/thing").await;
    let not_a_number = app.get("/schemas/ids/abc").await;

    assert_eq!(root.ok(), &json!({}));
    assert_eq!(types.ok(), &json!(["AVRO"]));
    unknown.assert_error(404, 404);
    not_a_number.assert_error(404, 404);
    app.stop().await;
}
