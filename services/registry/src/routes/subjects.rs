//! `/subjects`: register, look up, list, read and delete the versions of a subject.

use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{endpoint, json, parse_body, raw, DeletedQuery, PermanentQuery, SchemaRequest, VersionBody};
use crate::errors::ApiError;
use crate::kafka_store::KafkaStore;
use crate::store::VersionSpec;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/subjects", [(Method::GET, web::route().to(list_subjects))]))
        .service(endpoint(
            "/subjects/{subject}",
            [(Method::POST, web::route().to(lookup)), (Method::DELETE, web::route().to(delete_subject))],
        ))
        .service(endpoint(
            "/subjects/{subject}/versions",
            [(Method::GET, web::route().to(list_versions)), (Method::POST, web::route().to(register))],
        ))
        .service(endpoint(
            "/subjects/{subject}/versions/{version}",
            [(Method::GET, web::route().to(get_version)), (Method::DELETE, web::route().to(delete_version))],
        ))
        .service(endpoint(
            "/subjects/{subject}/versions/{version}/schema",
            [(Method::GET, web::route().to(get_version_schema))],
        ))
        .service(endpoint(
            "/subjects/{subject}/versions/{version}/referencedby",
            [(Method::GET, web::route().to(referenced_by))],
        ));
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    #[serde(default, deserialize_with = "super::flag")]
    deleted: bool,
    subject_prefix: Option<String>,
}

/// `GET /subjects`: names, sorted; `deleted=true` adds soft-deleted subjects.
#[tracing::instrument(skip(store))]
async fn list_subjects(store: web::Data<KafkaStore>, query: web::Query<ListQuery>) -> HttpResponse {
    let prefix = query.subject_prefix.as_deref().unwrap_or("");
    store.read(|state| {
        let subjects: Vec<&str> =
            state.subjects(query.deleted).into_iter().filter(|subject| subject.starts_with(prefix)).collect();
        json(&subjects)
    })
}

/// `POST /subjects/{subject}/versions`: registers a schema, answers `{"id": N}`.
#[tracing::instrument(skip(store, body))]
async fn register(
    store: web::Data<KafkaStore>,
    subject: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let schema = parse_body::<SchemaRequest>(&body)?.into_avro()?;
    let id = store.write(|state| state.plan_register(&subject, &schema)).await?;
    tracing::info!(%subject, id, "schema registered");
    Ok(json(&serde_json::json!({ "id": id })))
}

/// `POST /subjects/{subject}`: which version of the subject is this schema.
#[tracing::instrument(skip(store, body))]
async fn lookup(
    store: web::Data<KafkaStore>,
    subject: web::Path<String>,
    query: web::Query<DeletedQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let schema = parse_body::<SchemaRequest>(&body)?.into_avro()?;
    store.read(|state| Ok(json(&VersionBody::from(state.lookup(&subject, &schema, query.deleted)?))))
}

/// `GET /subjects/{subject}/versions`: version numbers, ascending.
#[tracing::instrument(skip(store))]
async fn list_versions(
    store: web::Data<KafkaStore>,
    subject: web::Path<String>,
    query: web::Query<DeletedQuery>,
) -> Result<HttpResponse, ApiError> {
    store.read(|state| Ok(json(&state.versions(&subject, query.deleted)?)))
}

/// `GET /subjects/{subject}/versions/{version}`.
#[tracing::instrument(skip(store))]
async fn get_version(
    store: web::Data<KafkaStore>,
    path: web::Path<(String, String)>,
    query: web::Query<DeletedQuery>,
) -> Result<HttpResponse, ApiError> {
    let (subject, version) = path.into_inner();
    let spec = VersionSpec::parse(&version)?;
    store.read(|state| Ok(json(&VersionBody::from(state.version(&subject, spec, query.deleted)?))))
}

/// `GET /subjects/{subject}/versions/{version}/schema`: the schema text alone.
#[tracing::instrument(skip(store))]
async fn get_version_schema(
    store: web::Data<KafkaStore>,
    path: web::Path<(String, String)>,
    query: web::Query<DeletedQuery>,
) -> Result<HttpResponse, ApiError> {
    let (subject, version) = path.into_inner();
    let spec = VersionSpec::parse(&version)?;
    store.read(|state| Ok(raw(&state.version(&subject, spec, query.deleted)?.entry.schema)))
}

/// `GET /subjects/{subject}/versions/{version}/referencedby`: always empty,
/// since this registry accepts no references.
#[tracing::instrument(skip(store))]
async fn referenced_by(
    store: web::Data<KafkaStore>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (subject, version) = path.into_inner();
    let spec = VersionSpec::parse(&version)?;
    store.read(|state| state.version(&subject, spec, false).map(|_| json(&Vec::<u32>::new())))
}

/// `DELETE /subjects/{subject}`: answers the versions deleted.
#[tracing::instrument(skip(store))]
async fn delete_subject(
    store: web::Data<KafkaStore>,
    subject: web::Path<String>,
    query: web::Query<PermanentQuery>,
) -> Result<HttpResponse, ApiError> {
    let versions = store.write(|state| state.plan_delete_subject(&subject, query.permanent)).await?;
    tracing::info!(%subject, ?versions, permanent = query.permanent, "subject deleted");
    Ok(json(&versions))
}

/// `DELETE /subjects/{subject}/versions/{version}`: answers the version deleted.
#[tracing::instrument(skip(store))]
async fn delete_version(
    store: web::Data<KafkaStore>,
    path: web::Path<(String, String)>,
    query: web::Query<PermanentQuery>,
) -> Result<HttpResponse, ApiError> {
    let (subject, version) = path.into_inner();
    let spec = VersionSpec::parse(&version)?;
    let deleted = store.write(|state| state.plan_delete_version(&subject, spec, query.permanent)).await?;
    tracing::info!(%subject, version = deleted, permanent = query.permanent, "version deleted");
    Ok(json(&deleted))
}
