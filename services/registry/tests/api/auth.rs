//! HTTP basic auth: off by default, and when users are configured every API
//! request needs one of them, whoever the client (Confluent's style of
//! credentials, our own `EventCodec` with credentials in the registry URL).

use std::collections::HashMap;

use mamochi_common::Settings;
use mamochi_events::codec::EventCodec;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::helpers::{schema_body, settings, spawn_app, spawn_app_with, unique_topic, TestApp, CONTENT_TYPE, USER_V1};

const ALICE: (&str, &str) = ("alice", "s3cret:with:colons");
const BOB: (&str, &str) = ("bob", "hunter2");

async fn spawn_with_users() -> TestApp {
    let mut settings = settings(&unique_topic());
    settings.registry.basic_auth_users =
        [ALICE, BOB].iter().map(|(user, password)| SecretString::from(format!("{user}:{password}"))).collect();
    spawn_app_with(settings).await
}

async fn status_of(app: &TestApp, path: &str, credentials: Option<(&str, &str)>) -> reqwest::Response {
    let mut request = app.client.get(format!("{}{path}", app.address));
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    request.send().await.expect("the registry answers")
}

#[tokio::test]
async fn with_users_configured_every_api_request_needs_valid_credentials() {
    let app = spawn_with_users().await;

    let anonymous = status_of(&app, "/subjects", None).await;
    let challenge = anonymous.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_string);
    let content_type = anonymous.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let anonymous_status = anonymous.status();
    let body: serde_json::Value = anonymous.json().await.expect("a JSON body");
    let wrong_password = status_of(&app, "/subjects", Some((ALICE.0, "guess"))).await.status();
    let unknown_user = status_of(&app, "/subjects", Some(("mallory", BOB.1))).await.status();
    let root = status_of(&app, "/", None).await.status();
    let alice = status_of(&app, "/subjects", Some(ALICE)).await.status();
    let registered = app
        .client
        .post(format!("{}/subjects/users/versions", app.address))
        .basic_auth(BOB.0, Some(BOB.1))
        .header("Content-Type", CONTENT_TYPE)
        .body(schema_body(USER_V1).to_string())
        .send()
        .await
        .expect("the registry answers");
    let anonymous_write = app.post("/subjects/users/versions", schema_body(USER_V1)).await;

    assert_eq!(anonymous_status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"SchemaRegistry\""));
    assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE));
    assert_eq!(body["error_code"], json!(401));
    assert_eq!(wrong_password, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_user, StatusCode::UNAUTHORIZED);
    assert_eq!(root, StatusCode::UNAUTHORIZED);
    assert_eq!(alice, StatusCode::OK);
    assert_eq!(registered.status(), StatusCode::OK);
    anonymous_write.assert_error(401, 401);
    app.stop().await;
}

#[tokio::test]
async fn probes_stay_open_and_metrics_need_credentials() {
    let app = spawn_with_users().await;

    let healthz = status_of(&app, "/healthz", None).await.status();
    let readyz = status_of(&app, "/readyz", None).await.status();
    let metrics = status_of(&app, "/metrics", None).await.status();
    let metrics_with_credentials = status_of(&app, "/metrics", Some(ALICE)).await.status();

    assert_eq!((healthz, readyz), (StatusCode::OK, StatusCode::OK));
    assert_eq!(metrics, StatusCode::UNAUTHORIZED);
    assert_eq!(metrics_with_credentials, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn without_users_auth_is_off() {
    let app = spawn_app().await;

    let anonymous = status_of(&app, "/subjects", None).await.status();
    let with_any_credentials = status_of(&app, "/subjects", Some(("anyone", "anything"))).await.status();

    assert_eq!(anonymous, StatusCode::OK);
    assert_eq!(with_any_credentials, StatusCode::OK);
    app.stop().await;
}

/// A record of `USER_V1`.
#[derive(serde::Serialize)]
struct User {
    id: i64,
}

#[tokio::test]
async fn the_platforms_codec_sends_the_credentials_of_the_registry_url() {
    let app = spawn_with_users().await;
    let port = app.address.rsplit(':').next().expect("a port");
    let with = EventCodec::new(&format!("http://{}:{}@127.0.0.1:{port}", ALICE.0, "s3cret%3Awith%3Acolons"));
    let without = EventCodec::new(&app.address);
    let wrong = EventCodec::new(&format!("http://{}:nope@127.0.0.1:{port}", ALICE.0));
    let topic = format!("auth-{}", uuid::Uuid::new_v4().simple());
    let record = User { id: 7 };

    let encoded = with.encode_with_schema(&topic, false, USER_V1, &record).await;
    let refused = without.encode_with_schema(&topic, false, USER_V1, &record).await;
    let refused_too = wrong.encode_with_schema(&topic, false, USER_V1, &record).await;

    let bytes = encoded.expect("encodes with the URL's credentials");
    assert_eq!(bytes[0], 0, "Confluent's wire format");
    let message = refused.expect_err("no credentials").to_string();
    assert!(message.contains("401"), "{message}");
    assert!(refused_too.is_err(), "wrong password");
    app.stop().await;
}

#[test]
fn users_are_a_toml_list_or_one_comma_separated_environment_variable() {
    let env = HashMap::from([("MAMOCHI__REGISTRY__BASIC_AUTH_USERS".to_string(), "a:1, b:2:3,".to_string())]);

    let from_env = Settings::load_with_env(None, Some(env)).expect("settings");
    let defaults = Settings::load_with_env(None, Some(HashMap::new())).expect("settings");

    let users: Vec<&str> = from_env.registry.basic_auth_users.iter().map(|user| user.expose_secret()).collect();
    assert_eq!(users, ["a:1", "b:2:3"]);
    assert!(defaults.registry.basic_auth_users.is_empty(), "off by default");
}

#[test]
fn users_in_a_toml_file_are_a_list_that_may_hold_commas() {
    let file = std::env::temp_dir().join(format!("mamochi-registry-auth-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, "[registry]\nbasic_auth_users = [\"a:1,2\", \"b:3\"]\n").expect("config file written");

    let loaded = Settings::load_with_env(Some(&file), Some(HashMap::new()));
    std::fs::remove_file(&file).expect("config file removed");

    let settings = loaded.expect("settings");
    let users: Vec<&str> = settings.registry.basic_auth_users.iter().map(|user| user.expose_secret()).collect();
    assert_eq!(users, ["a:1,2", "b:3"]);
}
