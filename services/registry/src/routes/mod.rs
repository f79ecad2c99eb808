//! The HTTP API: Confluent Schema Registry's REST endpoints for Avro.
//!
//! Guarantees: every answer, success or error, has Confluent's body shapes
//! and is written as `application/vnd.schemaregistry.v1+json` (the
//! [`crate::negotiation`] middleware then gives it the media type the client
//! accepts); request bodies are read whatever their declared JSON content type
//! (`application/vnd.schemaregistry.v1+json`, `application/vnd.schemaregistry+json`,
//! `application/json`, or none), and a malformed one is a 400 with a
//! Confluent-style error body, never a panic. Query booleans are read as
//! Confluent's Java server reads them, and a known path asked with another
//! method is a 405 naming the methods it serves.

mod compatibility;
mod config;
mod schemas;
mod subjects;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse, Resource, Route};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::errors::ApiError;
use crate::kafka_log::SchemaReference;
use crate::schema::AvroSchema;
use crate::store::Version;

/// Confluent's media type: what handlers write, and the default answer type.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Registers every endpoint and Confluent-style errors for bad paths and queries.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|error, _| ApiError::BadRequest(error.to_string()).into()))
        .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::NoSuchEndpoint.into()))
        .service(endpoint("/", [(Method::GET, web::route().to(root))]))
        .configure(subjects::configure)
        .configure(schemas::configure)
        .configure(config::configure)
        .configure(compatibility::configure);
}

/// One path of the API with the handler of each method it serves; any other
/// method is Confluent's 405, with `Allow` naming the methods served.
fn endpoint<const N: usize>(path: &str, routes: [(Method, Route); N]) -> Resource {
    let allow = routes.iter().map(|(method, _)| method.as_str()).collect::<Vec<_>>().join(", ");
    let resource =
        routes.into_iter().fold(web::resource(path), |resource, (method, route)| resource.route(route.method(method)));
    resource.default_service(web::to(move || {
        let allow = allow.clone();
        async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) }
    }))
}

/// Answer for any path the API does not have.
pub async fn not_found(_request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoSuchEndpoint)
}

/// `GET /`: Confluent answers an empty object.
async fn root() -> HttpResponse {
    json(&serde_json::json!({}))
}

/// A JSON response with Confluent's content type.
fn json<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().content_type(CONTENT_TYPE).json(body)
}

/// A raw schema text, as Confluent's `/schema` endpoints return it.
fn raw(text: &str) -> HttpResponse {
    HttpResponse::Ok().content_type(CONTENT_TYPE).body(text.to_string())
}

/// Parses a JSON request body; a malformed one is Confluent's 400.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| ApiError::BadRequest(format!("Unrecognized request body: {error}")))
}

/// The body of register, lookup and compatibility requests. Other fields
/// (`metadata`, `ruleSet`, `id`, `version`) are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: Option<String>,
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<serde_json::Value>,
}

impl SchemaRequest {
    /// The Avro schema of the request; anything else is 42201 saying why.
    fn into_avro(self) -> Result<AvroSchema, ApiError> {
        if let Some(kind) = self.schema_type.filter(|kind| !kind.eq_ignore_ascii_case("AVRO")) {
            return Err(ApiError::InvalidSchema(format!(
                "Unsupported schema type {kind}: this registry supports AVRO only"
            )));
        }
        if !self.references.is_empty() {
            return Err(ApiError::InvalidSchema("Schema references are not supported by this registry".into()));
        }
        match self.schema {
            Some(text) if !text.trim().is_empty() => AvroSchema::parse(&text).map_err(ApiError::InvalidSchema),
            _ => Err(ApiError::InvalidSchema("Empty schema".into())),
        }
    }
}

/// A boolean query parameter read as Confluent's server reads it (JAX-RS
/// turns the text into a `boolean` with Java's `Boolean.valueOf`): `true` in
/// any case is true, any other value is false. Confluent's Python client
/// sends `True`/`False`; nothing here is ever a 400.
fn flag<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let text = String::deserialize(deserializer)?;
    Ok(text.eq_ignore_ascii_case("true"))
}

/// `deleted=true` includes soft-deleted subjects and versions.
#[derive(Debug, Default, Deserialize)]
struct DeletedQuery {
    #[serde(default, deserialize_with = "flag")]
    deleted: bool,
}

/// `permanent=true` makes a delete permanent.
#[derive(Debug, Default, Deserialize)]
struct PermanentQuery {
    #[serde(default, deserialize_with = "flag")]
    permanent: bool,
}

/// A subject's version, as Confluent's `Schema` entity serializes it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionBody<'a> {
    subject: &'a str,
    version: u32,
    id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_type: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    references: &'a [SchemaReference],
    schema: &'a str,
}

impl<'a> From<Version<'a>> for VersionBody<'a> {
    fn from(version: Version<'a>) -> Self {
        Self {
            subject: version.subject,
            version: version.version,
            id: version.entry.id,
            schema_type: version.entry.schema_type.as_deref(),
            references: &version.entry.references,
            schema: &version.entry.schema,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> Result<AvroSchema, ApiError> {
        parse_body::<SchemaRequest>(body.as_bytes())?.into_avro()
    }

    #[test]
    fn request_bodies_are_checked_with_confluents_codes() {
        let code = |body: &str| request(body).expect_err(body).error_code();

        assert!(request(r#"{"schema":"\"string\""}"#).is_ok());
        assert!(request(r#"{"schema":"\"string\"","schemaType":"AVRO","references":[],"metadata":null}"#).is_ok());
        assert_eq!(code("{not json"), 400);
        assert_eq!(code(r#"{"schema": 5}"#), 400);
        assert_eq!(code(r#"{}"#), 42201);
        assert_eq!(code(r#"{"schema":"{\"type\":\"nope\"}"}"#), 42201);
        assert_eq!(code(r#"{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}"#), 42201);
        assert_eq!(code(r#"{"schema":"\"string\"","references":[{"name":"a","subject":"b","version":1}]}"#), 42201);
    }
}
