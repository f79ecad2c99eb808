//! `GET /openapi.json`: the API's OpenAPI 3 document, kept as a file in the
//! crate and served as written.

use actix_web::HttpResponse;

/// The document, compiled in.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT)
}
