//! `/config`: the global compatibility level and per-subject overrides.

use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{endpoint, json, parse_body};
use crate::compatibility::CompatibilityLevel;
use crate::errors::ApiError;
use crate::kafka_store::KafkaStore;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint(
        "/config",
        [(Method::GET, web::route().to(get_global)), (Method::PUT, web::route().to(put_global))],
    ))
    .service(endpoint(
        "/config/{subject}",
        [
            (Method::GET, web::route().to(get_subject)),
            (Method::PUT, web::route().to(put_subject)),
            (Method::DELETE, web::route().to(delete_subject)),
        ],
    ));
}

/// Body of `PUT /config…`, and its answer: Confluent echoes the request.
#[derive(Debug, Deserialize, Serialize)]
struct ConfigUpdate {
    #[serde(alias = "compatibilityLevel")]
    compatibility: Option<String>,
}

/// Body of `GET /config…`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigBody {
    compatibility_level: &'static str,
}

impl ConfigUpdate {
    fn level(&self) -> Result<CompatibilityLevel, ApiError> {
        self.compatibility.as_deref().and_then(CompatibilityLevel::parse).ok_or(ApiError::InvalidCompatibility)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetQuery {
    #[serde(default, deserialize_with = "super::flag")]
    default_to_global: bool,
}

/// `GET /config`: the global level (BACKWARD unless set).
#[tracing::instrument(skip(store))]
async fn get_global(store: web::Data<KafkaStore>) -> HttpResponse {
    json(&ConfigBody { compatibility_level: store.read(|state| state.global_level()).name() })
}

/// `PUT /config`: sets the global level.
#[tracing::instrument(skip(store, body))]
async fn put_global(store: web::Data<KafkaStore>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let update: ConfigUpdate = parse_body(&body)?;
    let level = update.level()?;
    store.write(|state| Ok(state.plan_set_config(None, level))).await?;
    tracing::info!(level = level.name(), "global compatibility level set");
    Ok(json(&update))
}

/// `GET /config/{subject}`: the subject's own level; with `defaultToGlobal=true`
/// the global one when the subject has none; else 40408.
#[tracing::instrument(skip(store))]
async fn get_subject(
    store: web::Data<KafkaStore>,
    subject: web::Path<String>,
    query: web::Query<GetQuery>,
) -> Result<HttpResponse, ApiError> {
    let level = store.read(|state| match state.subject_level(&subject) {
        Some(level) => Some(level),
        None if query.default_to_global => Some(state.global_level()),
        None => None,
    });
    let level = level.ok_or_else(|| ApiError::SubjectConfigNotFound(subject.to_string()))?;
    Ok(json(&ConfigBody { compatibility_level: level.name() }))
}

/// `PUT /config/{subject}`: sets the subject's level (the subject need not exist).
#[tracing::instrument(skip(store, body))]
async fn put_subject(
    store: web::Data<KafkaStore>,
    subject: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let update: ConfigUpdate = parse_body(&body)?;
    let level = update.level()?;
    store.write(|state| Ok(state.plan_set_config(Some(&subject), level))).await?;
    tracing::info!(%subject, level = level.name(), "subject compatibility level set");
    Ok(json(&update))
}

/// `DELETE /config/{subject}`: removes the subject's level, answers the level removed.
#[tracing::instrument(skip(store))]
async fn delete_subject(store: web::Data<KafkaStore>, subject: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let removed = store.write(|state| state.plan_delete_config(&subject)).await?;
    tracing::info!(%subject, "subject compatibility level removed");
    Ok(json(&ConfigBody { compatibility_level: removed.name() }))
}
