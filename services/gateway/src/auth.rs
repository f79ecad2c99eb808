//! Who is calling: a vendor (an API key whose SHA-256 is in `members`, looked
//! up through the in-memory [`KeyDirectory`]) or guild staff (the configured
//! admin token). Both are actix extractors, so a
//! handler that takes one cannot run unauthenticated; both answer 401 with
//! `WWW-Authenticate: Bearer` when the credential is missing or wrong.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::domain::secret;
use crate::errors::ApiError;
use crate::views::KeyDirectory;

/// The staff token, as configured.
#[derive(Debug, Clone)]
pub struct AdminToken(pub SecretString);

/// An authenticated vendor.
#[derive(Debug, Clone, Copy)]
pub struct Vendor {
    pub vendor_id: Uuid,
}

/// Authenticated guild staff.
#[derive(Debug, Clone, Copy)]
pub struct Staff;

fn bearer(request: &HttpRequest) -> Option<String> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

impl FromRequest for Vendor {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let key = bearer(request);
        let keys = request.app_data::<web::Data<KeyDirectory>>().cloned();
        Box::pin(async move {
            let key = key.ok_or_else(|| unauthorized("send your API key as Authorization: Bearer <key>"))?;
            let keys = keys.ok_or_else(ApiError::internal)?;
            // The key is 256 random bits: an exact lookup by its digest is
            // safe, and the clear key is never stored or logged.
            match keys.vendor(&secret::sha256_hex(&key)).await {
                Ok(Some(vendor_id)) => Ok(Vendor { vendor_id }),
                Ok(None) => Err(unauthorized("the API key is not valid")),
                Err(error) => {
                    crate::errors::log_cause(error.as_ref());
                    Err(ApiError::unavailable())
                }
            }
        })
    }
}

impl FromRequest for Staff {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let expected = request.app_data::<web::Data<AdminToken>>();
        let verdict = match (bearer(request), expected) {
            (Some(given), Some(expected)) if secret::constant_time_eq(&given, expected.0.expose_secret()) => Ok(Staff),
            (None, _) => Err(unauthorized("send the staff token as Authorization: Bearer <token>")),
            _ => Err(unauthorized("the staff token is not valid")),
        };
        std::future::ready(verdict)
    }
}
