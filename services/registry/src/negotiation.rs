//! Content negotiation on the API, as Confluent's resources declare it: they
//! produce `application/vnd.schemaregistry.v1+json` (preferred),
//! `application/vnd.schemaregistry+json` and `application/json`.
//!
//! Guarantees: a request without `Accept`, or accepting any of the three
//! (directly, by `application/*` or `*/*`), is answered with the type it
//! prefers most by its `q` values, ties going to the order above; the body is
//! the same JSON whatever the type. A request that accepts none of them is
//! answered 406 (`{"error_code":406,...}`) before any handler runs. The
//! operational endpoints (`/healthz`, `/readyz`, `/metrics`) are not part of
//! Confluent's API and are left alone.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use crate::errors::ApiError;
use crate::routes::CONTENT_TYPE;

/// What the API produces, most preferred first.
const PRODUCED: [&str; 3] = [CONTENT_TYPE, "application/vnd.schemaregistry+json", "application/json"];

/// Paths outside Confluent's API, with their own content types.
const OPS_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The type to answer with for an `Accept` header value (`None`: no header),
/// or `None` when the client accepts nothing the API produces.
pub fn negotiate(accept: Option<&str>) -> Option<&'static str> {
    let accept = accept.map(str::trim).filter(|accept| !accept.is_empty());
    let Some(accept) = accept else {
        return Some(CONTENT_TYPE);
    };
    let ranges: Vec<Range<'_>> = accept.split(',').filter_map(Range::parse).collect();
    let mut best: Option<(&'static str, f32)> = None;
    for produced in PRODUCED {
        // RFC 9110: the most specific range that matches decides the quality.
        let quality = ranges
            .iter()
            .filter(|range| range.matches(produced))
            .max_by_key(|range| range.specificity())
            .map_or(0.0, |range| range.quality);
        if quality > 0.0 && best.is_none_or(|(_, best_quality)| quality > best_quality) {
            best = Some((produced, quality));
        }
    }
    best.map(|(produced, _)| produced)
}

/// One media range of an `Accept` header, with its `q`.
#[derive(Debug)]
struct Range<'a> {
    kind: &'a str,
    subtype: &'a str,
    quality: f32,
}

impl<'a> Range<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        let quality = parts
            .filter_map(|parameter| parameter.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, value)| value.trim().parse::<f32>().ok())?;
        Some(Self { kind: kind.trim(), subtype: subtype.trim(), quality: quality.clamp(0.0, 1.0) })
    }

    fn matches(&self, produced: &str) -> bool {
        let Some((kind, subtype)) = produced.split_once('/') else {
            return false;
        };
        (self.kind == "*" || self.kind.eq_ignore_ascii_case(kind))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }

    fn specificity(&self) -> u8 {
        u8::from(self.kind != "*") + u8::from(self.subtype != "*")
    }
}

/// Middleware (`from_fn`): 406 when nothing is acceptable, else the answer's
/// content type becomes the negotiated one.
pub async fn negotiate_content_type(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if OPS_PATHS.contains(&request.path()) {
        return Ok(next.call(request).await?.map_into_left_body());
    }
    let accept = request.headers().get(header::ACCEPT).and_then(|value| value.to_str().ok());
    let Some(chosen) = negotiate(accept) else {
        let refusal = ApiError::NotAcceptable.error_response();
        return Ok(request.into_response(refusal).map_into_right_body());
    };
    let mut response = next.call(request).await?;
    let ours = response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value == CONTENT_TYPE);
    if ours && chosen != CONTENT_TYPE {
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(chosen));
    }
    Ok(response.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_accept_or_anything_gets_confluents_own_type() {
        assert_eq!(negotiate(None), Some(CONTENT_TYPE));
        assert_eq!(negotiate(Some("")), Some(CONTENT_TYPE));
        assert_eq!(negotiate(Some("*/*")), Some(CONTENT_TYPE));
        assert_eq!(negotiate(Some("application/*")), Some(CONTENT_TYPE));
        let python_client =
            "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json";
        assert_eq!(negotiate(Some(python_client)), Some(CONTENT_TYPE));
    }

    #[test]
    fn the_clients_preference_decides() {
        assert_eq!(negotiate(Some("application/json")), Some("application/json"));
        assert_eq!(negotiate(Some("Application/JSON; charset=utf-8")), Some("application/json"));
        assert_eq!(negotiate(Some("application/vnd.schemaregistry+json")), Some("application/vnd.schemaregistry+json"));
        assert_eq!(
            negotiate(Some("application/vnd.schemaregistry.v1+json;q=0.5, application/json")),
            Some("application/json")
        );
        assert_eq!(negotiate(Some("*/*;q=0.1, application/json;q=0.2")), Some("application/json"));
        assert_eq!(
            negotiate(Some("*/*, application/vnd.schemaregistry.v1+json;q=0")),
            Some("application/vnd.schemaregistry+json")
        );
    }

    #[test]
    fn nothing_acceptable_is_none() {
        assert_eq!(negotiate(Some("text/html")), None);
        assert_eq!(negotiate(Some("application/xml, text/*")), None);
        assert_eq!(negotiate(Some("application/json;q=0")), None);
        assert_eq!(negotiate(Some("garbage")), None);
    }
}
