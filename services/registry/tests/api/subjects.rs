//! `/subjects` as Confluent's API reference describes it.

use serde_json::json;

use crate::helpers::{schema_body, spawn_app, USER_BREAKING, USER_V1, USER_V2};

#[tokio::test]
async fn register_answers_an_id_and_the_same_schema_gets_the_same_id() {
    let app = spawn_app().await;

    let first = app.post("/subjects/users-value/versions", schema_body(USER_V1)).await;
    let again = app
        .post("/subjects/users-value/versions", json!({"schema": USER_V1, "schemaType": "AVRO", "references": []}))
        .await;
    let other_subject = app.post("/subjects/other-value/versions?normalize=true", schema_body(USER_V1)).await;

    assert_eq!(first.ok(), &json!({"id": 1}));
    assert_eq!(again.ok(), &json!({"id": 1}));
    assert_eq!(other_subject.ok(), &json!({"id": 1}), "one schema, one global id");
    assert_eq!(app.get("/subjects/users-value/versions").await.ok(), &json!([1]));
    app.stop().await;
}

#[tokio::test]
async fn versions_are_read_by_number_latest_and_minus_one() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;
    let v2_id = app.register("users", USER_V2).await;

    let v1 = app.get("/subjects/users/versions/1").await;
    let latest = app.get("/subjects/users/versions/latest").await;
    let minus_one = app.get("/subjects/users/versions/-1").await;
    let raw = app.get("/subjects/users/versions/2/schema").await;

    assert_eq!(v1.ok(), &json!({"subject": "users", "version": 1, "id": 1, "schema": USER_V1}));
    assert_eq!(latest.ok(), &json!({"subject": "users", "version": 2, "id": v2_id, "schema": USER_V2}));
    assert_eq!(minus_one.ok(), latest.ok());
    assert_eq!(raw.ok(), &serde_json::from_str::<serde_json::Value>(USER_V2).expect("json"));
    assert_eq!(raw.text, USER_V2, "the schema text comes back exactly as registered");
    app.stop().await;
}

#[tokio::test]
async fn the_registered_text_is_kept_byte_for_byte() {
    let app = spawn_app().await;
    let pretty = "{\n  \"type\": \"record\",\n  \"name\": \"Sale\",\n  \"doc\": \"one sale\",\n  \"fields\": [\n    {\"name\": \"amount\", \"type\": \"long\", \"default\": 0}\n  ]\n}";
    app.register("sales", pretty).await;

    let stored = app.get("/subjects/sales/versions/1").await;

    assert_eq!(stored.ok()["schema"], pretty);
    app.stop().await;
}

#[tokio::test]
async fn subjects_are_listed() {
    let app = spawn_app().await;
    app.register("b-value", USER_V1).await;
    app.register("a-value", USER_V1).await;

    let all = app.get("/subjects").await;
    let prefixed = app.get("/subjects?subjectPrefix=a-").await;

    assert_eq!(all.ok(), &json!(["a-value", "b-value"]));
    assert_eq!(prefixed.ok(), &json!(["a-value"]));
    app.stop().await;
}

#[tokio::test]
async fn lookup_finds_the_version_of_a_schema() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;
    app.register("users", USER_V2).await;

    let found = app.post("/subjects/users", schema_body(USER_V1)).await;
    let unknown_schema = app.post("/subjects/users", schema_body(r#""string""#)).await;
    let unknown_subject = app.post("/subjects/nobody", schema_body(USER_V1)).await;

    assert_eq!(found.ok(), &json!({"subject": "users", "version": 1, "id": 1, "schema": USER_V1}));
    assert_eq!(unknown_schema.assert_error(404, 40403), "Schema not found");
    assert_eq!(unknown_subject.assert_error(404, 40401), "Subject 'nobody' not found.");
    app.stop().await;
}

#[tokio::test]
async fn an_incompatible_schema_is_a_409_that_names_the_field() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;

    let refused = app.post("/subjects/users/versions", schema_body(USER_BREAKING)).await;

    let message = refused.assert_error(409, 409);
    assert!(
        message.starts_with("Schema being registered is incompatible with an earlier schema for subject \"users\""),
        "{message}"
    );
    assert!(message.contains("'age'"), "{message}");
    assert_eq!(app.get("/subjects/users/versions").await.ok(), &json!([1]), "nothing was registered");
    app.stop().await;
}

#[tokio::test]
async fn invalid_requests_get_confluents_errors() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;

    let invalid_schema = app
        .post("/subjects/users/versions", schema_body(r#"{"type":"record","name":"X","fields":[{"name":"a"}]}"#))
        .await;
    let protobuf =
        app.post("/subjects/users/versions", json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"})).await;
    let malformed =
        app.send_raw(reqwest::Method::POST, "/subjects/users/versions", "application/json", "{\"schema\": ").await;
    let no_subject = app.get("/subjects/nobody/versions").await;
    let no_version = app.get("/subjects/users/versions/7").await;
    let bad_version = app.get("/subjects/users/versions/zero").await;
    let zero = app.get("/subjects/users/versions/0").await;

    invalid_schema.assert_error(422, 42201);
    assert!(protobuf.assert_error(422, 42201).contains("PROTOBUF"));
    malformed.assert_error(400, 400);
    assert_eq!(no_subject.assert_error(404, 40401), "Subject 'nobody' not found.");
    assert_eq!(no_version.assert_error(404, 40402), "Version 7 not found.");
    assert!(bad_version.assert_error(422, 42202).contains("'zero'"));
    zero.assert_error(422, 42202);
    app.stop().await;
}

#[tokio::test]
async fn every_declared_json_content_type_is_accepted() {
    let app = spawn_app().await;
    let body = schema_body(USER_V1).to_string();

    for content_type in
        ["application/vnd.schemaregistry.v1+json", "application/vnd.schemaregistry+json", "application/json"]
    {
        let answer = app.send_raw(reqwest::Method::POST, "/subjects/users/versions", content_type, &body).await;
        assert_eq!(answer.ok(), &json!({"id": 1}), "{content_type}");
    }
    app.stop().await;
}
