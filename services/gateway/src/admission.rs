//! Admission control for the write routes (sales, depletions): at most
//! `gateway.max_in_flight` of them are handled at once. One more is refused
//! at once with 503 and `Retry-After`, before any work is done for it, so
//! overload costs the client a fast, explicit "retry shortly" instead of a
//! place in a queue that grows for as long as the overload lasts (Envoy's
//! and Finagle's admission control).

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::{web, FromRequest, HttpRequest};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::ApiError;

/// The shared limit.
#[derive(Debug, Clone)]
pub struct Admission(Arc<Semaphore>);

impl Admission {
    pub fn new(max_in_flight: usize) -> Self {
        Self(Arc::new(Semaphore::new(max_in_flight.max(1))))
    }
}

/// A request let in; its slot frees when the handler returns.
#[derive(Debug)]
pub struct Admitted(#[allow(dead_code)] OwnedSemaphorePermit);

impl FromRequest for Admitted {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let verdict = match request.app_data::<web::Data<Admission>>() {
            Some(admission) => {
                admission.0.clone().try_acquire_owned().map(Admitted).map_err(|_| ApiError::overloaded())
            }
            None => Err(ApiError::internal()),
        };
        ready(verdict)
    }
}
