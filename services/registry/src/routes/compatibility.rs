//! `/compatibility`: would this schema be accepted, without registering it.

use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{endpoint, json, parse_body, SchemaRequest};
use crate::errors::ApiError;
use crate::kafka_store::KafkaStore;
use crate::store::VersionSpec;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint(
        "/compatibility/subjects/{subject}/versions/{version}",
        [(Method::POST, web::route().to(against_version))],
    ))
    .service(endpoint("/compatibility/subjects/{subject}/versions", [(Method::POST, web::route().to(against_all))]));
}

#[derive(Debug, Deserialize)]
struct VerboseQuery {
    #[serde(default, deserialize_with = "super::flag")]
    verbose: bool,
}

/// Confluent's answer; `messages` only when `verbose=true`.
#[derive(Debug, Serialize)]
struct CompatibilityBody {
    is_compatible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<String>>,
}

fn answer(messages: Vec<String>, verbose: bool) -> HttpResponse {
    json(&CompatibilityBody { is_compatible: messages.is_empty(), messages: verbose.then_some(messages) })
}

/// `POST /compatibility/subjects/{subject}/versions/{version}`: against one
/// version; `latest` of a subject without versions is compatible.
#[tracing::instrument(skip(store, body))]
async fn against_version(
    store: web::Data<KafkaStore>,
    path: web::Path<(String, String)>,
    query: web::Query<VerboseQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (subject, version) = path.into_inner();
    let spec = VersionSpec::parse(&version)?;
    let schema = parse_body::<SchemaRequest>(&body)?.into_avro()?;
    let messages = store.read(|state| state.compatibility_messages(&subject, &schema, Some(spec)))?;
    Ok(answer(messages, query.verbose))
}

/// `POST /compatibility/subjects/{subject}/versions`: against the versions the
/// subject's level asks for (all live ones for a transitive level).
#[tracing::instrument(skip(store, body))]
async fn against_all(
    store: web::Data<KafkaStore>,
    subject: web::Path<String>,
    query: web::Query<VerboseQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let schema = parse_body::<SchemaRequest>(&body)?.into_avro()?;
    let messages = store.read(|state| state.compatibility_messages(&subject, &schema, None))?;
    Ok(answer(messages, query.verbose))
}
