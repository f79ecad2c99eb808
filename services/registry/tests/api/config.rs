//! `/config`: global and per-subject compatibility levels.

use serde_json::json;

use crate::helpers::{schema_body, spawn_app, USER_BREAKING, USER_V1};

#[tokio::test]
async fn the_global_level_defaults_to_backward_and_can_be_set() {
    let app = spawn_app().await;

    let default = app.get("/config").await;
    let set = app.put("/config", json!({"compatibility": "FULL"})).await;
    let after = app.get("/config").await;

    assert_eq!(default.ok(), &json!({"compatibilityLevel": "BACKWARD"}));
    assert_eq!(set.ok(), &json!({"compatibility": "FULL"}));
    assert_eq!(after.ok(), &json!({"compatibilityLevel": "FULL"}));
    app.stop().await;
}

#[tokio::test]
async fn a_subject_level_overrides_the_global_one_until_deleted() {
    let app = spawn_app().await;

    let unset = app.get("/config/users").await;
    let defaulted = app.get("/config/users?defaultToGlobal=true").await;
    let set = app.put("/config/users", json!({"compatibility": "NONE"})).await;
    let read = app.get("/config/users").await;
    let deleted = app.delete("/config/users").await;
    let deleted_again = app.delete("/config/users").await;

    assert_eq!(unset.assert_error(404, 40408), "Subject 'users' does not have subject-level compatibility configured");
    assert_eq!(defaulted.ok(), &json!({"compatibilityLevel": "BACKWARD"}));
    assert_eq!(set.ok(), &json!({"compatibility": "NONE"}));
    assert_eq!(read.ok(), &json!({"compatibilityLevel": "NONE"}));
    assert_eq!(deleted.ok(), &json!({"compatibilityLevel": "NONE"}));
    deleted_again.assert_error(404, 40401);
    app.stop().await;
}

#[tokio::test]
async fn the_subject_level_governs_registration() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;
    app.put("/config/users", json!({"compatibility": "NONE"})).await.ok();

    let accepted = app.post("/subjects/users/versions", schema_body(USER_BREAKING)).await;

    assert_eq!(accepted.ok(), &json!({"id": 2}), "NONE accepts a breaking change");
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_level_is_42203() {
    let app = spawn_app().await;

    let global = app.put("/config", json!({"compatibility": "SIDEWAYS"})).await;
    let subject = app.put("/config/users", json!({"compatibility": "SIDEWAYS"})).await;
    let missing = app.put("/config", json!({})).await;
    let malformed = app.send_raw(reqwest::Method::PUT, "/config", "application/json", "[1,").await;

    assert!(global.assert_error(422, 42203).starts_with("Invalid compatibility level"));
    subject.assert_error(422, 42203);
    missing.assert_error(422, 42203);
    malformed.assert_error(400, 400);
    assert_eq!(app.get("/config").await.ok(), &json!({"compatibilityLevel": "BACKWARD"}), "nothing changed");
    app.stop().await;
}
