//! Soft and permanent deletes of subjects and versions.

use serde_json::json;

use crate::helpers::{spawn_app, USER_V1, USER_V2, USER_V3};

#[tokio::test]
async fn a_version_is_soft_deleted_then_permanently_deleted() {
    let app = spawn_app().await;
    let id = app.register("users", USER_V1).await;
    app.register("users", USER_V2).await;

    let too_early = app.delete("/subjects/users/versions/1?permanent=true").await;
    let soft = app.delete("/subjects/users/versions/1").await;
    let twice = app.delete("/subjects/users/versions/1").await;
    let live = app.get("/subjects/users/versions").await;
    let with_deleted = app.get("/subjects/users/versions?deleted=true").await;
    let hidden = app.get("/subjects/users/versions/1").await;
    let shown = app.get("/subjects/users/versions/1?deleted=true").await;
    let still_by_id = app.get(&format!("/schemas/ids/{id}")).await;
    let hard = app.delete("/subjects/users/versions/1?permanent=true").await;
    let gone = app.get("/subjects/users/versions?deleted=true").await;

    assert_eq!(
        too_early.assert_error(404, 40407),
        "Subject 'users' Version 1 was not deleted first before being permanently deleted"
    );
    assert_eq!(soft.ok(), &json!(1));
    twice.assert_error(404, 40406);
    assert_eq!(live.ok(), &json!([2]));
    assert_eq!(with_deleted.ok(), &json!([1, 2]));
    hidden.assert_error(404, 40402);
    assert_eq!(shown.ok()["schema"], USER_V1);
    assert_eq!(still_by_id.ok(), &json!({"schema": USER_V1}), "readers of old data still resolve the id");
    assert_eq!(hard.ok(), &json!(1));
    assert_eq!(gone.ok(), &json!([2]));
    app.stop().await;
}

#[tokio::test]
async fn latest_is_deleted_by_name() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;
    app.register("users", USER_V2).await;

    let deleted = app.delete("/subjects/users/versions/latest").await;

    assert_eq!(deleted.ok(), &json!(2));
    assert_eq!(app.get("/subjects/users/versions/latest").await.ok()["version"], 1);
    app.stop().await;
}

#[tokio::test]
async fn a_subject_is_soft_deleted_then_permanently_deleted() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;
    app.register("users", USER_V2).await;
    app.register("users", USER_V3).await;
    app.delete("/subjects/users/versions/3").await.ok();
    app.put("/config/users", json!({"compatibility": "FULL"})).await.ok();

    let too_early = app.delete("/subjects/users?permanent=true").await;
    let soft = app.delete("/subjects/users").await;
    let twice = app.delete("/subjects/users").await;
    let listed = app.get("/subjects").await;
    let listed_with_deleted = app.get("/subjects?deleted=true").await;
    let versions = app.get("/subjects/users/versions").await;
    let config = app.get("/config/users").await;
    let hard = app.delete("/subjects/users?permanent=true").await;
    let after = app.get("/subjects?deleted=true").await;
    let missing = app.delete("/subjects/users").await;

    assert_eq!(
        too_early.assert_error(404, 40405),
        "Subject 'users' was not deleted first before being permanently deleted"
    );
    assert_eq!(soft.ok(), &json!([1, 2]), "the live versions are reported");
    assert_eq!(
        twice.assert_error(404, 40404),
        "Subject 'users' was soft deleted.Set permanent=true to delete permanently"
    );
    assert_eq!(listed.ok(), &json!([]));
    assert_eq!(listed_with_deleted.ok(), &json!(["users"]));
    versions.assert_error(404, 40401);
    config.assert_error(404, 40408);
    assert_eq!(hard.ok(), &json!([1, 2, 3]), "every version goes");
    assert_eq!(after.ok(), &json!([]));
    missing.assert_error(404, 40401);
    app.stop().await;
}

#[tokio::test]
async fn deleting_in_an_unknown_subject_is_40401() {
    let app = spawn_app().await;

    app.delete("/subjects/nobody").await.assert_error(404, 40401);
    app.delete("/subjects/nobody/versions/1").await.assert_error(404, 40401);
    app.delete("/subjects/nobody/versions/one").await.assert_error(422, 42202);
    app.stop().await;
}
