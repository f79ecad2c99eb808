//! `/schemas`: schemas by their global id, and the schema types served.

use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{endpoint, json, raw, DeletedQuery};
use crate::errors::ApiError;
use crate::kafka_log::SchemaReference;
use crate::kafka_store::KafkaStore;
use crate::store::{Entry, Store};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/schemas/types", [(Method::GET, web::route().to(types))]))
        .service(endpoint("/schemas/ids/{id}", [(Method::GET, web::route().to(by_id))]))
        .service(endpoint("/schemas/ids/{id}/schema", [(Method::GET, web::route().to(raw_by_id))]))
        .service(endpoint("/schemas/ids/{id}/versions", [(Method::GET, web::route().to(versions_of_id))]))
        .service(endpoint("/schemas/ids/{id}/subjects", [(Method::GET, web::route().to(subjects_of_id))]));
}

/// `?subject=` names the subject the caller expects the id under. As in
/// Confluent, it only chooses which version answers (the subject's own, when
/// it holds the id); an id the subject does not hold is still found, since
/// every subject here is in Confluent's default context. `deleted` is
/// accepted because clients send it; ids always serve soft-deleted schemas.
#[derive(Debug, Deserialize)]
struct IdQuery {
    subject: Option<String>,
}

/// Confluent's body for a schema fetched by id.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SchemaBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_type: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    references: &'a [SchemaReference],
    schema: &'a str,
}

/// `GET /schemas/types`: only Avro is served.
async fn types() -> HttpResponse {
    json(&["AVRO"])
}

/// A path id that is not a number names no resource: 404, as in Confluent.
fn parse_id(id: &str) -> Result<u32, ApiError> {
    id.parse().map_err(|_| ApiError::NoSuchEndpoint)
}

/// The schema with `id`: the subject's own version of it when `subject`
/// holds it, else any version (Confluent's `getSchemaKeyUsingContexts`).
fn find<'a>(state: &'a Store, id: u32, subject: Option<&str>) -> Result<&'a Entry, ApiError> {
    let holders = state.versions_with_id(id, true);
    let own = subject.and_then(|subject| holders.iter().find(|version| version.subject == subject));
    own.or(holders.first()).map(|version| version.entry).ok_or(ApiError::SchemaIdNotFound(id))
}

/// `GET /schemas/ids/{id}`.
#[tracing::instrument(skip(store))]
async fn by_id(
    store: web::Data<KafkaStore>,
    id: web::Path<String>,
    query: web::Query<IdQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    store.read(|state| {
        let entry = find(state, id, query.subject.as_deref())?;
        Ok(json(&SchemaBody {
            schema_type: entry.schema_type.as_deref(),
            references: &entry.references,
            schema: &entry.schema,
        }))
    })
}

/// `GET /schemas/ids/{id}/schema`: the schema text alone.
#[tracing::instrument(skip(store))]
async fn raw_by_id(
    store: web::Data<KafkaStore>,
    id: web::Path<String>,
    query: web::Query<IdQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    store.read(|state| Ok(raw(&find(state, id, query.subject.as_deref())?.schema)))
}

#[derive(Debug, Serialize)]
struct SubjectVersion<'a> {
    subject: &'a str,
    version: u32,
}

/// `GET /schemas/ids/{id}/versions`: every subject-version pair with this id.
#[tracing::instrument(skip(store))]
async fn versions_of_id(
    store: web::Data<KafkaStore>,
    id: web::Path<String>,
    query: web::Query<DeletedQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    store.read(|state| {
        let pairs: Vec<SubjectVersion<'_>> = state
            .versions_with_id(id, query.deleted)
            .into_iter()
            .map(|version| SubjectVersion { subject: version.subject, version: version.version })
            .collect();
        if pairs.is_empty() {
            return Err(ApiError::SchemaIdNotFound(id));
        }
        Ok(json(&pairs))
    })
}

/// `GET /schemas/ids/{id}/subjects`: every subject with a version of this id.
#[tracing::instrument(skip(store))]
async fn subjects_of_id(
    store: web::Data<KafkaStore>,
    id: web::Path<String>,
    query: web::Query<DeletedQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    store.read(|state| {
        let mut subjects: Vec<&str> =
            state.versions_with_id(id, query.deleted).into_iter().map(|v| v.subject).collect();
        subjects.dedup();
        if subjects.is_empty() {
            return Err(ApiError::SchemaIdNotFound(id));
        }
        Ok(json(&subjects))
    })
}
