//! The schema registry calls `mamochi schemas` makes: Confluent's REST API,
//! so they work against our registry and Confluent's alike. Basic-auth
//! credentials in the URL's userinfo are sent as an `Authorization` header and
//! kept out of every message (see `mamochi_events::codec::RegistryUrl`).

use anyhow::{bail, Context};
use mamochi_events::codec::{Credentials, RegistryUrl};
use serde_json::{json, Value};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Confluent's "subject not found" and "version not found" error codes.
const SUBJECT_NOT_FOUND: i64 = 40401;
const VERSION_NOT_FOUND: i64 = 40402;
/// Confluent's "no subject-level compatibility configured".
const SUBJECT_LEVEL_NOT_CONFIGURED: i64 = 40408;

/// A registered version of a subject.
#[derive(Debug, Clone)]
pub struct Registered {
    pub version: u32,
    pub id: u64,
    pub schema: String,
    /// `None` means Avro, as in Confluent's API.
    pub schema_type: Option<String>,
}

/// A client for one registry.
#[derive(Debug, Clone)]
pub struct Registry {
    client: reqwest::Client,
    /// Without userinfo: safe in error messages.
    url: String,
    credentials: Option<Credentials>,
}

impl Registry {
    pub fn new(url: &str) -> Self {
        let RegistryUrl { base, credentials } = RegistryUrl::parse(url);
        Self { client: reqwest::Client::new(), url: base, credentials }
    }

    /// The subject's latest live version, or `None` if it has none.
    pub async fn latest(&self, subject: &str) -> anyhow::Result<Option<Registered>> {
        self.version(subject, "latest").await
    }

    /// One version (`"latest"` or a number), or `None` if it does not exist.
    pub async fn version(&self, subject: &str, version: &str) -> anyhow::Result<Option<Registered>> {
        let (status, body) = self
            .call(reqwest::Method::GET, &format!("/subjects/{}/versions/{version}", segment(subject)), None)
            .await?;
        match (status, body["error_code"].as_i64()) {
            (200, _) => Ok(Some(Registered {
                version: body["version"]
                    .as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .context("a version without a number")?,
                id: body["id"].as_u64().context("a version without an id")?,
                schema: body["schema"].as_str().context("a version without a schema")?.to_string(),
                schema_type: body["schemaType"].as_str().map(str::to_string),
            })),
            (404, Some(SUBJECT_NOT_FOUND | VERSION_NOT_FOUND)) => Ok(None),
            _ => bail!("reading {subject} version {version}: {}", describe(status, &body)),
        }
    }

    /// Every live version of the subject, oldest first (empty if none).
    pub async fn all_versions(&self, subject: &str) -> anyhow::Result<Vec<Registered>> {
        let (status, body) =
            self.call(reqwest::Method::GET, &format!("/subjects/{}/versions", segment(subject)), None).await?;
        let numbers: Vec<u64> = match (status, body["error_code"].as_i64()) {
            (200, _) => serde_json::from_value(body).context("a version list that is not a list of numbers")?,
            (404, Some(SUBJECT_NOT_FOUND)) => return Ok(Vec::new()),
            _ => bail!("listing the versions of {subject}: {}", describe(status, &body)),
        };
        let mut versions = Vec::new();
        for number in numbers {
            // A version deleted between the two calls is simply not there any more.
            if let Some(version) = self.version(subject, &number.to_string()).await? {
                versions.push(version);
            }
        }
        Ok(versions)
    }

    /// The level the registry applies to `subject` (its own, else the global one).
    pub async fn effective_level(&self, subject: &str) -> anyhow::Result<String> {
        let path = format!("/config/{}?defaultToGlobal=true", segment(subject));
        let (status, body) = self.call(reqwest::Method::GET, &path, None).await?;
        match body["compatibilityLevel"].as_str() {
            Some(level) if status == 200 => Ok(level.to_string()),
            _ => bail!("reading the compatibility level of {subject}: {}", describe(status, &body)),
        }
    }

    /// The subject's own level, `None` if it only follows the global one.
    pub async fn subject_level(&self, subject: &str) -> anyhow::Result<Option<String>> {
        let (status, body) = self.call(reqwest::Method::GET, &format!("/config/{}", segment(subject)), None).await?;
        match (status, body["error_code"].as_i64(), body["compatibilityLevel"].as_str()) {
            (200, _, Some(level)) => Ok(Some(level.to_string())),
            (404, Some(SUBJECT_LEVEL_NOT_CONFIGURED | SUBJECT_NOT_FOUND), _) => Ok(None),
            _ => bail!("reading the compatibility level of {subject}: {}", describe(status, &body)),
        }
    }

    /// Sets the subject's level (`PUT /config/{subject}`).
    pub async fn set_level(&self, subject: &str, level: &str) -> anyhow::Result<()> {
        let body = json!({ "compatibility": level });
        let (status, answer) =
            self.call(reqwest::Method::PUT, &format!("/config/{}", segment(subject)), Some(body)).await?;
        if status != 200 {
            bail!("setting the level of {subject} to {level}: {}", describe(status, &answer));
        }
        Ok(())
    }

    /// The registry's verdict on `schema` against the versions the subject's
    /// level asks for: the reasons it is incompatible, empty if it is not.
    pub async fn incompatibilities(&self, subject: &str, schema: &str) -> anyhow::Result<Vec<String>> {
        let path = format!("/compatibility/subjects/{}/versions?verbose=true", segment(subject));
        let (status, body) = self.call(reqwest::Method::POST, &path, Some(json!({ "schema": schema }))).await?;
        if status != 200 {
            bail!("checking {subject}: {}", describe(status, &body));
        }
        if body["is_compatible"] == json!(true) {
            return Ok(Vec::new());
        }
        let messages: Vec<String> =
            body["messages"].as_array().into_iter().flatten().filter_map(|m| m.as_str().map(str::to_string)).collect();
        Ok(if messages.is_empty() { vec!["the registry gave no reason".to_string()] } else { messages })
    }

    /// Registers `schema` under `subject` and returns its id.
    pub async fn register(&self, subject: &str, schema: &str) -> anyhow::Result<u64> {
        let path = format!("/subjects/{}/versions", segment(subject));
        let (status, body) = self.call(reqwest::Method::POST, &path, Some(json!({ "schema": schema }))).await?;
        match body["id"].as_u64() {
            Some(id) if status == 200 => Ok(id),
            _ => bail!("registering {subject}: {}", describe(status, &body)),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.url);
        let mut request = self.client.request(method, &url).header(reqwest::header::ACCEPT, CONTENT_TYPE);
        if let Some(credentials) = &self.credentials {
            request = request.basic_auth(&credentials.username, Some(&credentials.password));
        }
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE).body(body.to_string());
        }
        let response = request.send().await.with_context(|| format!("while calling the schema registry at {url}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.with_context(|| format!("while reading the answer of {url}"))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }
}

/// A subject as one URL path segment (TopicNameStrategy names need no
/// escaping, but `--subject` accepts any name).
fn segment(subject: &str) -> String {
    let mut encoded = String::with_capacity(subject.len());
    for byte in subject.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => encoded.push(char::from(byte)),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

fn describe(status: u16, body: &Value) -> String {
    match body["message"].as_str() {
        Some(message) => format!("HTTP {status}, error {}: {message}", body["error_code"]),
        None => format!("HTTP {status}: {body}"),
    }
}
