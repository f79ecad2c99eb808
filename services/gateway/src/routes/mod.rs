//! Every route of the API in one table, which both registers the handlers
//! and lists them (`CATALOG`), so the OpenAPI test can check that the
//! document and the router agree in both directions.

pub mod admin;
pub mod carts;
pub mod me;
pub mod openapi;
pub mod registrations;
pub mod sales;
pub mod stats;
pub mod stock;

use actix_web::web;
use chrono::{DateTime, Utc};

/// Platform time cut to millisecond precision, what Avro timestamps carry:
/// every event a route publishes takes its time from here, so the instant
/// a route answers with is the one consumers read back.
pub fn event_time(instant: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(instant.timestamp_millis()).unwrap_or(instant)
}

/// Links the API hands out (`status_url`).
#[derive(Debug, Clone)]
pub struct PublicUrl(pub String);

macro_rules! routes {
    ($($method:ident $path:literal => $handler:path),+ $(,)?) => {
        /// (method, path) of every API route, as registered.
        pub const CATALOG: &[(&str, &str)] = &[$((stringify!($method), $path)),+];

        /// Registers every API route.
        pub fn configure(config: &mut web::ServiceConfig) {
            $(config.route($path, web::$method().to($handler));)+
        }
    };
}

routes! {
    post "/v1/registrations" => registrations::submit,
    get "/v1/registrations/{id}" => registrations::status,
    get "/v1/admin/registrations" => admin::list,
    post "/v1/admin/registrations/{id}/approve" => admin::approve,
    post "/v1/admin/registrations/{id}/reject" => admin::reject,
    post "/v1/admin/vendors/{vendor_id}/key" => admin::reissue_key,
    delete "/v1/admin/vendors/{vendor_id}/key" => admin::revoke_key,
    post "/v1/sales" => sales::record,
    post "/v1/stock/depletions" => stock::deplete,
    post "/v1/carts/me/locations" => carts::record_location,
    get "/v1/carts/me/location" => carts::location,
    post "/v1/carts/me/reports" => carts::report,
    get "/v1/admin/carts" => carts::list,
    post "/v1/admin/carts/{vendor_id}/reports" => carts::staff_report,
    get "/v1/me" => me::me,
    post "/v1/me/keys" => me::rotate_key,
    get "/v1/vendors/{vendor_id}" => me::vendor,
    get "/v1/me/sales/summary" => me::summary,
    get "/v1/me/statements" => me::statements,
    get "/v1/me/stats/daily" => stats::daily,
    get "/openapi.json" => openapi::document,
}
