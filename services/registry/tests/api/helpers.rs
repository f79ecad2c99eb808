//! Spawns the real registry on port 0 against the running Kafka, on a topic
//! of its own, and speaks HTTP to it.

use mamochi_common::Settings;
use mamochi_registry::Application;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A running registry.
pub struct TestApp {
    pub address: String,
    pub topic: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

/// An answer: status, content type and body (JSON when it parses, else a string).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
    pub text: String,
}

/// A topic name no other test uses.
pub fn unique_topic() -> String {
    format!("_schemas-test-{}", uuid::Uuid::new_v4().simple())
}

/// Settings from the environment (`stack env`), with the registry on `topic` and port 0.
pub fn settings(topic: &str) -> Settings {
    let mut settings = Settings::load(None).expect("settings load from the environment");
    settings.registry.topic = topic.to_string();
    settings.registry.listen = "127.0.0.1:0".to_string();
    settings
}

/// Starts a registry on a fresh topic.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(&unique_topic()).await
}

/// Starts a registry on `topic`, loading whatever it already holds.
pub async fn spawn_app_on(topic: &str) -> TestApp {
    spawn_app_with(settings(topic)).await
}

/// Starts a registry with these settings (`settings(topic)` plus changes).
pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let topic = settings.registry.topic.clone();
    if std::env::var_os("TEST_LOG").is_some() {
        mamochi_common::telemetry::init(&settings.log);
    }
    let app = Application::build(&settings).await.expect("the registry starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp { address, topic, client: reqwest::Client::new(), shutdown, server }
}

/// `{"schema": text}` as a request body.
pub fn schema_body(text: &str) -> Value {
    serde_json::json!({ "schema": text })
}

pub const USER_V1: &str =
    r#"{"type":"record","name":"User","namespace":"cl.mamochi","fields":[{"name":"id","type":"long"}]}"#;
pub const USER_V2: &str = r#"{"type":"record","name":"User","namespace":"cl.mamochi","fields":[{"name":"id","type":"long"},{"name":"email","type":"string","default":""}]}"#;
pub const USER_V3: &str = r#"{"type":"record","name":"User","namespace":"cl.mamochi","fields":[{"name":"id","type":"long"},{"name":"email","type":"string","default":""},{"name":"phone","type":["null","string"],"default":null}]}"#;
pub const USER_BREAKING: &str = r#"{"type":"record","name":"User","namespace":"cl.mamochi","fields":[{"name":"id","type":"long"},{"name":"age","type":"int"}]}"#;

impl TestApp {
    /// Sends a request with Confluent's content type and an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.address)).header("Accept", CONTENT_TYPE);
        if let Some(body) = body {
            request = request.header("Content-Type", CONTENT_TYPE).body(body.to_string());
        }
        Self::answer(request.send().await.expect("the registry answers")).await
    }

    /// Sends a raw body with a given content type.
    pub async fn send_raw(&self, method: Method, path: &str, content_type: &str, body: &str) -> Answer {
        let request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .header("Content-Type", content_type)
            .body(body.to_string());
        Self::answer(request.send().await.expect("the registry answers")).await
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Answer { status, content_type, body, text }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// Registers `text` under `subject` and returns its id.
    pub async fn register(&self, subject: &str, text: &str) -> u64 {
        let answer = self.post(&format!("/subjects/{subject}/versions"), schema_body(text)).await;
        assert_eq!(answer.status, StatusCode::OK, "registering under {subject}: {answer:?}");
        answer.body["id"].as_u64().expect("an id")
    }

    /// Stops the registry, waits until it has, and deletes its topic.
    pub async fn stop(self) {
        let topic = self.topic.clone();
        self.stop_keeping_topic().await;
        delete_topic(&topic).await;
    }

    /// Stops the registry and waits until it has; its topic stays for another instance.
    pub async fn stop_keeping_topic(self) {
        self.shutdown.cancel();
        self.server.await.expect("the server task ends").expect("the registry stops cleanly");
    }
}

/// Deletes a test's state topic and its election topic, so test runs leave
/// nothing behind in Kafka.
pub async fn delete_topic(topic: &str) {
    let settings = settings(topic);
    let election = mamochi_registry::election::ElectionNames::new(&settings).topic;
    let admin = mamochi_common::kafka::admin(&settings.kafka).expect("admin");
    let options = rdkafka::admin::AdminOptions::new();
    let results = admin.delete_topics(&[topic, &election], &options).await.expect("delete request");
    for result in results {
        result.expect("topic deleted");
    }
}

impl Answer {
    /// Asserts a Confluent error: HTTP status, `error_code`, and the error body's shape.
    pub fn assert_error(&self, status: u16, error_code: u64) -> &str {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.body["error_code"].as_u64(), Some(error_code), "{self:?}");
        assert_eq!(self.content_type, CONTENT_TYPE, "{self:?}");
        self.body["message"].as_str().expect("an error message")
    }

    /// Asserts a 200 with Confluent's content type and returns the body.
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        assert_eq!(self.content_type, CONTENT_TYPE, "{self:?}");
        &self.body
    }
}
