//! `/compatibility`: testing a schema without registering it.

use serde_json::json;

use crate::helpers::{schema_body, spawn_app, USER_BREAKING, USER_V1, USER_V2};

#[tokio::test]
async fn a_compatible_schema_is_reported_compatible() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;

    let latest = app.post("/compatibility/subjects/users/versions/latest", schema_body(USER_V2)).await;
    let numbered = app.post("/compatibility/subjects/users/versions/1?verbose=true", schema_body(USER_V2)).await;
    let all = app.post("/compatibility/subjects/users/versions", schema_body(USER_V2)).await;

    assert_eq!(latest.ok(), &json!({"is_compatible": true}));
    assert_eq!(numbered.ok(), &json!({"is_compatible": true, "messages": []}));
    assert_eq!(all.ok(), &json!({"is_compatible": true}));
    assert_eq!(app.get("/subjects/users/versions").await.ok(), &json!([1]), "nothing was registered");
    app.stop().await;
}

#[tokio::test]
async fn an_incompatible_schema_is_explained_when_verbose() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;

    let terse = app.post("/compatibility/subjects/users/versions/latest", schema_body(USER_BREAKING)).await;
    let verbose =
        app.post("/compatibility/subjects/users/versions/latest?verbose=true", schema_body(USER_BREAKING)).await;

    assert_eq!(terse.ok(), &json!({"is_compatible": false}));
    let body = verbose.ok();
    assert_eq!(body["is_compatible"], false);
    let messages = body["messages"].as_array().expect("messages");
    assert!(messages[0].as_str().expect("text").contains("READER_FIELD_MISSING_DEFAULT_VALUE"), "{messages:?}");
    assert!(messages[0].as_str().expect("text").contains("'age'"), "{messages:?}");
    app.stop().await;
}

#[tokio::test]
async fn transitive_levels_test_against_every_version() {
    // v1 has no email; v2 adds it with a default; the candidate drops the default.
    let app = spawn_app().await;
    app.register("users", USER_V1).await;
    app.register("users", USER_V2).await;
    let candidate = USER_V2.replace(r#","default":"""#, "");

    let backward = app.post("/compatibility/subjects/users/versions", schema_body(&candidate)).await;
    app.put("/config/users", json!({"compatibility": "BACKWARD_TRANSITIVE"})).await.ok();
    let transitive = app.post("/compatibility/subjects/users/versions", schema_body(&candidate)).await;

    assert_eq!(backward.ok(), &json!({"is_compatible": true}));
    assert_eq!(transitive.ok(), &json!({"is_compatible": false}));
    app.stop().await;
}

#[tokio::test]
async fn compatibility_errors_follow_confluent() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;

    let no_subject_latest = app.post("/compatibility/subjects/nobody/versions/latest", schema_body(USER_V1)).await;
    let no_subject = app.post("/compatibility/subjects/nobody/versions/1", schema_body(USER_V1)).await;
    let no_version = app.post("/compatibility/subjects/users/versions/9", schema_body(USER_V1)).await;
    let bad_version = app.post("/compatibility/subjects/users/versions/x", schema_body(USER_V1)).await;
    let bad_schema = app.post("/compatibility/subjects/users/versions/latest", schema_body("{")).await;

    assert_eq!(no_subject_latest.ok(), &json!({"is_compatible": true}), "nothing to be incompatible with");
    no_subject.assert_error(404, 40401);
    no_version.assert_error(404, 40402);
    bad_version.assert_error(422, 42202);
    bad_schema.assert_error(422, 42201);
    app.stop().await;
}
