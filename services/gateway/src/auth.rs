//! Who is calling: a vendor (an API key whose SHA-256 is in `members`, looked
//! up through the in-memory [`KeyDirectory`]) or a named member of guild staff
//! (a token whose SHA-256 is in `staff_tokens`, unrevoked, looked up through
//! [`StaffDirectory`]; tokens are made by `mamochi staff add`). Both are actix
//! extractors, so a handler that takes one cannot run unauthenticated; both
//! answer 401 with `WWW-Authenticate: Bearer` when the credential is missing
//! or wrong. A key or token revoked in the database is refused within the
//! directories' time-to-live (`gateway.key_cache_ttl_ms`, 5 s by default).

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest};
use mamochi_rules::digest::sha256_hex;
use uuid::Uuid;

use crate::errors::ApiError;
use crate::views::{KeyDirectory, StaffDirectory};

/// An authenticated vendor.
#[derive(Debug, Clone, Copy)]
pub struct Vendor {
    pub vendor_id: Uuid,
}

/// An authenticated member of guild staff, by the name of their token:
/// what reviews and key changes record as who made them.
#[derive(Debug, Clone)]
pub struct Staff {
    pub name: String,
}

/// The bearer credential of the request, if any.
pub fn bearer(request: &HttpRequest) -> Option<String> {
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
            match keys.vendor(&sha256_hex(&key)).await {
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
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = bearer(request);
        let staff = request.app_data::<web::Data<StaffDirectory>>().cloned();
        Box::pin(async move {
            let token = token.ok_or_else(|| unauthorized("send the staff token as Authorization: Bearer <token>"))?;
            let staff = staff.ok_or_else(ApiError::internal)?;
            // Tokens are 256 random bits, like vendor keys: an exact lookup
            // by digest is safe, and the clear token is never stored.
            match staff.name(&sha256_hex(&token)).await {
                Ok(Some(name)) => Ok(Staff { name }),
                Ok(None) => Err(unauthorized("the staff token is not valid")),
                Err(error) => {
                    crate::errors::log_cause(error.as_ref());
                    Err(ApiError::unavailable())
                }
            }
        })
    }
}
