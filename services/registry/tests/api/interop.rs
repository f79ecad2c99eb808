//! What Confluent's own clients send and expect, beyond the API reference's
//! examples: Java-style query booleans, equivalent schema spellings, id
//! look-ups naming another subject, 405 and content negotiation.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{schema_body, spawn_app, Answer, TestApp, CONTENT_TYPE, USER_BREAKING, USER_V1, USER_V2};

async fn listed(app: &TestApp, deleted: &str) -> Answer {
    app.get(&format!("/subjects/gone/versions?deleted={deleted}")).await
}

#[tokio::test]
async fn query_booleans_read_like_javas_boolean_valueof() {
    let app = spawn_app().await;
    app.register("gone", USER_V1).await;
    app.delete("/subjects/gone/versions/1").await.ok();
    app.register("live", USER_V1).await;

    let (upper, shouting, lower) = (listed(&app, "True").await, listed(&app, "TRUE").await, listed(&app, "true").await);
    let (python_false, other) = (listed(&app, "False").await, listed(&app, "maybe").await);
    let lookup = app.post("/subjects/gone?normalize=False&deleted=True", schema_body(USER_V1)).await;
    let verbose = app
        .post("/compatibility/subjects/live/versions/latest?normalize=False&verbose=True", schema_body(USER_BREAKING))
        .await;
    let terse = app
        .post("/compatibility/subjects/live/versions?normalize=False&verbose=False", schema_body(USER_BREAKING))
        .await;
    let register = app.post("/subjects/live/versions?normalize=False", schema_body(USER_V2)).await;

    for answer in [&upper, &shouting, &lower] {
        assert_eq!(answer.ok(), &json!([1]), "deleted=true in any case includes soft-deleted versions");
    }
    python_false.assert_error(404, 40401);
    other.assert_error(404, 40401);
    assert_eq!(lookup.ok()["version"], json!(1));
    assert_eq!(verbose.ok()["is_compatible"], json!(false));
    assert!(verbose.ok()["messages"].as_array().is_some_and(|messages| !messages.is_empty()), "{verbose:?}");
    assert_eq!(terse.ok(), &json!({"is_compatible": false}));
    assert!(register.ok()["id"].is_u64());
    app.stop().await;
}

#[tokio::test]
async fn equivalent_spellings_share_an_id_and_the_first_text_is_kept() {
    let app = spawn_app().await;
    let long_form = r#"{"type":"record","name":"cl.mamochi.User","fields":[{"name":"id","type":{"type":"long"}}]}"#;

    let string_id = app.register("plain", r#"{"type":"string"}"#).await;
    let same_string = app.register("plain-too", r#""string""#).await;
    let user_id = app.register("users", USER_V1).await;
    let again = app.post("/subjects/users/versions", schema_body(long_form)).await;
    let lookup = app.post("/subjects/users", schema_body(long_form)).await;
    let documented = app.register("users", &USER_V1.replace(r#""name":"id""#, r#""name":"id","doc":"the id""#)).await;

    assert_eq!(same_string, string_id, "\"string\" and {{\"type\":\"string\"}} are one schema");
    assert_eq!(app.get(&format!("/schemas/ids/{string_id}")).await.ok(), &json!({"schema": r#"{"type":"string"}"#}));
    assert_eq!(app.get("/subjects/plain-too/versions/1").await.ok()["schema"], json!(r#"{"type":"string"}"#));
    assert_eq!(again.ok(), &json!({"id": user_id}), "a full name is the same as a name and namespace");
    assert_eq!(app.get("/subjects/users/versions").await.ok(), &json!([1, 2]), "nothing new was written for it");
    assert_eq!(lookup.ok(), &json!({"subject": "users", "version": 1, "id": user_id, "schema": USER_V1}));
    assert_ne!(documented, user_id, "a doc still makes another schema");
    app.stop().await;
}

#[tokio::test]
async fn an_id_is_found_whatever_subject_the_caller_names() {
    let app = spawn_app().await;
    let v1 = app.register("users", USER_V1).await;
    let v2 = app.register("other", USER_V2).await;

    let other_subject = app.get(&format!("/schemas/ids/{v1}?subject=other")).await;
    let unknown_subject = app.get(&format!("/schemas/ids/{v2}?subject=nobody")).await;
    let raw = app.get(&format!("/schemas/ids/{v1}/schema?subject=nobody")).await;
    let missing = app.get("/schemas/ids/9999?subject=users").await;

    assert_eq!(other_subject.ok(), &json!({"schema": USER_V1}));
    assert_eq!(unknown_subject.ok(), &json!({"schema": USER_V2}));
    assert_eq!(raw.text, USER_V1);
    missing.assert_error(404, 40403);
    app.stop().await;
}

#[tokio::test]
async fn a_known_path_with_a_wrong_method_is_405_naming_the_allowed_ones() {
    let app = spawn_app().await;
    let cases = [
        (Method::PUT, "/subjects", "GET"),
        (Method::GET, "/subjects/users", "POST, DELETE"),
        (Method::DELETE, "/subjects/users/versions", "GET, POST"),
        (Method::POST, "/config", "GET, PUT"),
        (Method::POST, "/config/users", "GET, PUT, DELETE"),
        (Method::DELETE, "/schemas/ids/1", "GET"),
        (Method::GET, "/compatibility/subjects/users/versions/latest", "POST"),
        (Method::PATCH, "/", "GET"),
    ];

    for (method, path, allowed) in cases {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .expect("the registry answers");
        let allow = response.headers().get("allow").and_then(|value| value.to_str().ok()).map(str::to_string);
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("a JSON body");

        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(allow.as_deref(), Some(allowed), "{method} {path}");
        assert_eq!(body["error_code"], json!(405), "{method} {path}: {body}");
    }
    app.get("/no/such/path").await.assert_error(404, 404);
    app.stop().await;
}

#[tokio::test]
async fn the_answer_has_the_media_type_the_client_accepts_or_406() {
    let app = spawn_app().await;
    app.register("users", USER_V1).await;
    let fetch = |path: &'static str, accept: Option<&'static str>| {
        let mut request = app.client.get(format!("{}{path}", app.address));
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        async move {
            let response = request.send().await.expect("the registry answers");
            let content_type =
                response.headers().get("content-type").and_then(|value| value.to_str().ok()).unwrap_or("").to_string();
            (response.status(), content_type, response.text().await.expect("a body"))
        }
    };

    let none = fetch("/subjects", None).await;
    let any = fetch("/subjects", Some("*/*")).await;
    let json = fetch("/subjects", Some("application/json")).await;
    let generic = fetch("/subjects", Some("application/vnd.schemaregistry+json")).await;
    let weighted =
        fetch("/subjects", Some("application/vnd.schemaregistry.v1+json;q=0.4, application/json;q=0.9")).await;
    let error_as_json = fetch("/subjects/nobody/versions", Some("application/json")).await;
    let html = fetch("/subjects", Some("text/html")).await;
    let probe = fetch("/healthz", Some("text/html")).await;

    assert_eq!((none.0, none.1.as_str()), (StatusCode::OK, CONTENT_TYPE));
    assert_eq!(any.1, CONTENT_TYPE);
    assert_eq!(json.1, "application/json");
    assert_eq!(generic.1, "application/vnd.schemaregistry+json");
    assert_eq!(weighted.1, "application/json");
    assert_eq!(json.2, none.2, "the same body whatever the type");
    assert_eq!((error_as_json.0, error_as_json.1.as_str()), (StatusCode::NOT_FOUND, "application/json"));
    assert_eq!(html.0, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&html.2).expect("JSON")["error_code"], json!(406));
    assert_eq!(probe.0, StatusCode::OK, "operational endpoints are not negotiated");
    app.stop().await;
}
