//! Abuse limits: how many requests one client may make, counted per client
//! address for the unauthenticated operations, per vendor for the ones made
//! with an API key, per staff token for the admin API
//! (`gateway.rate_limits`). One middleware, [`enforce`], decides from the
//! method and path which limit a request counts against, before routing and
//! before any other work:
//!
//! | request | counted per | setting |
//! |---|---|---|
//! | `POST /v1/registrations` | client address | `registrations_per_ip` |
//! | `GET /v1/registrations/{id}` | client address | `status_reads_per_ip` |
//! | `POST /v1/sales` | vendor | `sales_per_key` |
//! | `POST /v1/stock/depletions` | vendor (its cart) | `depletions_per_cart` |
//! | `POST /v1/carts/me/locations` | vendor (its cart) | `locations_per_cart` |
//! | `POST /v1/carts/me/reports` | vendor (its cart) | `cart_reports_per_cart` |
//! | other `/v1/carts/me…` | vendor | `vendor_requests_per_key` |
//! | `/v1/me…`, `/v1/vendors/…` | vendor | `vendor_requests_per_key` |
//! | `/v1/admin/…` | staff token | `admin_per_token` |
//!
//! Guarantees: a request over its limit is answered 429 `rate_limited` in
//! the usual error envelope with `Retry-After` in whole seconds (rounded up,
//! at least 1), and nothing else is done for it. A request whose key or
//! token is missing or wrong counts against nothing here; its handler
//! answers 401 as before. Counts are per gateway process (GCRA buckets from
//! the `governor` crate). Memory is bounded: every [`PRUNE_INTERVAL`] the
//! buckets that have filled up again are dropped, so the state holds only
//! the clients seen within each limit's refill time.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use mamochi_common::config::{RateLimit, RateLimitSettings};
use mamochi_common::shutdown::Shutdown;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::{Staff, Vendor};
use crate::client_address::{BadProxyList, TrustedProxies};
use crate::errors::ApiError;

/// How often buckets that have filled up again are forgotten.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(30);

/// The error code of a refusal.
pub const CODE: &str = "rate_limited";

/// Which limit a request counts against, from its method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Registration,
    StatusRead,
    Sale,
    Depletion,
    Location,
    CartReport,
    VendorRequest,
    Admin,
    Nothing,
}

impl Counted {
    pub fn of(method: &Method, path: &str) -> Self {
        match (method, path) {
            (&Method::POST, "/v1/registrations") => Self::Registration,
            (&Method::GET, path) if path.starts_with("/v1/registrations/") => Self::StatusRead,
            (&Method::POST, "/v1/sales") => Self::Sale,
            (&Method::POST, "/v1/stock/depletions") => Self::Depletion,
            (&Method::POST, "/v1/carts/me/locations") => Self::Location,
            (&Method::POST, "/v1/carts/me/reports") => Self::CartReport,
            (_, path) if path.starts_with("/v1/admin/") => Self::Admin,
            (_, path)
                if path == "/v1/me"
                    || path.starts_with("/v1/me/")
                    || path.starts_with("/v1/carts/me/")
                    || path.starts_with("/v1/vendors/") =>
            {
                Self::VendorRequest
            }
            _ => Self::Nothing,
        }
    }
}

/// governor's keyed limiter (one bucket per key) on clock `C`.
type KeyedBuckets<K, C> = RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One configured limit over keys of type `K`; `buckets` is `None` when
/// turned off. The clock is a parameter so unit tests can move time
/// themselves (governor's `FakeRelativeClock`) instead of sleeping.
#[derive(Debug)]
struct Limit<K: std::hash::Hash + Eq + Clone, C: Clock + Clone = DefaultClock> {
    buckets: Option<KeyedBuckets<K, C>>,
    clock: C,
}

impl<K: std::hash::Hash + Eq + Clone> Limit<K> {
    fn new(limit: RateLimit) -> Self {
        Self::with_clock(limit, DefaultClock::default())
    }
}

impl<K: std::hash::Hash + Eq + Clone, C: Clock + Clone> Limit<K, C> {
    fn with_clock(limit: RateLimit, clock: C) -> Self {
        let buckets =
            quota(limit).map(|quota| RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock.clone()));
        Self { buckets, clock }
    }

    /// `Ok` if `key` may make one more request now, else how long to wait.
    fn check(&self, key: &K) -> Result<(), Duration> {
        let Some(buckets) = &self.buckets else { return Ok(()) };
        buckets.check_key(key).map_err(|refused| refused.wait_time_from(self.clock.now()))
    }

    fn prune(&self) {
        if let Some(buckets) = &self.buckets {
            buckets.retain_recent();
            buckets.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.buckets.as_ref().map_or(0, RateLimiter::len)
    }
}

/// The GCRA quota of a setting: one request every `per_secs / requests`
/// seconds, `burst` at once (at least 1); `None` when `requests` is 0.
fn quota(limit: RateLimit) -> Option<Quota> {
    let requests = NonZeroU32::new(limit.requests)?;
    let period = Duration::from_secs(u64::from(limit.per_secs)) / requests.get();
    let period = period.max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period).map(|quota| quota.allow_burst(burst))
}

/// Every limit of one gateway process.
#[derive(Debug)]
pub struct Limits {
    proxies: TrustedProxies,
    registrations: Limit<IpAddr>,
    status_reads: Limit<IpAddr>,
    sales: Limit<Uuid>,
    depletions: Limit<Uuid>,
    locations: Limit<Uuid>,
    cart_reports: Limit<Uuid>,
    vendor_requests: Limit<Uuid>,
    /// Keyed by the SHA-256 of the token, so no token is kept in memory.
    admin: Limit<[u8; 32]>,
}

impl Limits {
    pub fn new(settings: &RateLimitSettings) -> Result<Self, BadProxyList> {
        Ok(Self {
            proxies: TrustedProxies::parse(&settings.trusted_proxies)?,
            registrations: Limit::new(settings.registrations_per_ip),
            status_reads: Limit::new(settings.status_reads_per_ip),
            sales: Limit::new(settings.sales_per_key),
            depletions: Limit::new(settings.depletions_per_cart),
            locations: Limit::new(settings.locations_per_cart),
            cart_reports: Limit::new(settings.cart_reports_per_cart),
            vendor_requests: Limit::new(settings.vendor_requests_per_key),
            admin: Limit::new(settings.admin_per_token),
        })
    }

    /// Forgets buckets that are full again, every [`PRUNE_INTERVAL`], until
    /// `shutdown` is cancelled.
    pub async fn prune_until(self: Arc<Self>, shutdown: Shutdown) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(PRUNE_INTERVAL) => {}
            }
            self.prune();
        }
    }

    /// One pruning pass over every limit.
    pub fn prune(&self) {
        self.registrations.prune();
        self.status_reads.prune();
        self.sales.prune();
        self.depletions.prune();
        self.locations.prune();
        self.cart_reports.prune();
        self.vendor_requests.prune();
        self.admin.prune();
    }

    /// Clients, vendors and tokens with a bucket in memory, over all limits.
    pub fn tracked(&self) -> usize {
        self.registrations.len()
            + self.status_reads.len()
            + self.sales.len()
            + self.depletions.len()
            + self.locations.len()
            + self.cart_reports.len()
            + self.vendor_requests.len()
            + self.admin.len()
    }

    /// `Ok` if the request may go on; the refusal otherwise.
    async fn verdict(&self, request: &HttpRequest) -> Result<(), Refusal> {
        let counted = Counted::of(request.method(), request.match_info().as_str());
        let wait = match counted {
            Counted::Nothing => return Ok(()),
            Counted::Registration | Counted::StatusRead => {
                let Some(client) = self.proxies.client_of(request) else { return Ok(()) };
                let limit = if counted == Counted::Registration { &self.registrations } else { &self.status_reads };
                limit.check(&client)
            }
            Counted::Sale | Counted::Depletion | Counted::Location | Counted::CartReport | Counted::VendorRequest => {
                // A wrong key is the handler's to refuse (401); the look-up
                // is the one the handler's extractor repeats from the cache.
                let Ok(vendor) = Vendor::extract(request).await else { return Ok(()) };
                let limit = match counted {
                    Counted::Sale => &self.sales,
                    Counted::Depletion => &self.depletions,
                    Counted::Location => &self.locations,
                    Counted::CartReport => &self.cart_reports,
                    _ => &self.vendor_requests,
                };
                limit.check(&vendor.vendor_id)
            }
            Counted::Admin => {
                if Staff::extract(request).await.is_err() {
                    return Ok(());
                }
                let Some(token) = bearer(request) else { return Ok(()) };
                self.admin.check(&Sha256::digest(token.as_bytes()).into())
            }
        };
        wait.map_err(|wait| Refusal { counted, wait })
    }
}

/// The bearer credential of a request, as the auth extractors read it.
fn bearer(request: &HttpRequest) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whole seconds to wait, rounded up and at least 1 (`Retry-After` has no fractions).
pub fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

/// A request over its limit, and how long until it would not be.
#[derive(Debug, Clone, Copy)]
struct Refusal {
    counted: Counted,
    wait: Duration,
}

impl Refusal {
    /// 429 in the error envelope, with `Retry-After` (RFC 6585, section 4).
    fn response(self) -> HttpResponse {
        let secs = retry_after_secs(self.wait);
        let mut response = refusal(self.counted, secs).response();
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

fn refusal(counted: Counted, secs: u64) -> ApiError {
    let who = match counted {
        Counted::Registration | Counted::StatusRead => "from this address",
        Counted::Admin => "with this staff token",
        _ => "with this API key",
    };
    let what = match counted {
        Counted::Registration => "registration forms",
        Counted::StatusRead => "registration status reads",
        Counted::Sale => "sales",
        Counted::Depletion => "stock-out reports for this cart",
        Counted::Location => "location pings for this cart",
        Counted::CartReport => "missing/found reports for this cart",
        Counted::VendorRequest | Counted::Admin | Counted::Nothing => "requests",
    };
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        CODE,
        format!("too many {what} {who}; retry after {secs} s (Retry-After)"),
    )
}

/// The middleware: counts the request against its limit, or answers 429.
pub async fn enforce(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let verdict = match request.app_data::<web::Data<Limits>>() {
        Some(limits) => limits.clone().verdict(request.request()).await,
        None => Ok(()),
    };
    match verdict {
        Ok(()) => Ok(next.call(request).await?.map_into_left_body()),
        Err(refused) => Ok(request.into_response(refused.response()).map_into_right_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests: u32, per_secs: u32, burst: u32) -> RateLimit {
        RateLimit { requests, per_secs, burst }
    }

    #[test]
    fn routes_count_against_their_own_limit() {
        assert_eq!(Counted::of(&Method::POST, "/v1/registrations"), Counted::Registration);
        assert_eq!(Counted::of(&Method::GET, "/v1/registrations/abc"), Counted::StatusRead);
        assert_eq!(Counted::of(&Method::POST, "/v1/sales"), Counted::Sale);
        assert_eq!(Counted::of(&Method::POST, "/v1/stock/depletions"), Counted::Depletion);
        assert_eq!(Counted::of(&Method::GET, "/v1/me/statements"), Counted::VendorRequest);
        assert_eq!(Counted::of(&Method::POST, "/v1/carts/me/locations"), Counted::Location);
        assert_eq!(Counted::of(&Method::POST, "/v1/carts/me/reports"), Counted::CartReport);
        assert_eq!(Counted::of(&Method::GET, "/v1/carts/me/location"), Counted::VendorRequest);
        assert_eq!(Counted::of(&Method::GET, "/v1/admin/carts"), Counted::Admin);
        assert_eq!(Counted::of(&Method::GET, "/v1/vendors/x"), Counted::VendorRequest);
        assert_eq!(Counted::of(&Method::POST, "/v1/admin/registrations/x/approve"), Counted::Admin);
        assert_eq!(Counted::of(&Method::GET, "/openapi.json"), Counted::Nothing);
        assert_eq!(Counted::of(&Method::GET, "/v1/registrations"), Counted::Nothing);
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_the_refill_time() {
        let three_an_hour = Limit::new(limit(3, 3_600, 3));
        for _ in 0..3 {
            assert_eq!(three_an_hour.check(&1_u8), Ok(()));
        }
        let wait = three_an_hour.check(&1_u8).expect_err("the fourth is over the limit");
        // One request comes back every 20 minutes.
        assert!(wait > Duration::from_secs(1_190) && wait <= Duration::from_secs(1_200), "{wait:?}");
        assert_eq!(three_an_hour.check(&2_u8), Ok(()), "another key has its own bucket");
    }

    #[test]
    fn zero_requests_turns_a_limit_off() {
        let off = Limit::new(limit(0, 60, 1));
        assert!((0..1_000).all(|_| off.check(&1_u8).is_ok()));
    }

    #[test]
    fn full_buckets_are_forgotten_when_pruned() {
        let clock = governor::clock::FakeRelativeClock::default();
        // One request a second: a used bucket is full again one second later.
        let limit = Limit::with_clock(limit(1, 1, 1), clock.clone());
        assert_eq!(limit.check(&1_u8), Ok(()));

        limit.prune();
        assert_eq!(limit.len(), 1, "a bucket still refilling is kept");

        // Refilled after one second; governor forgets a bucket one emission
        // interval (here one second) after that, to be sure it is full.
        clock.advance(Duration::from_secs(2));
        limit.prune();
        assert_eq!(limit.len(), 0, "a full bucket is forgotten");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1_200)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(1_200)), 1_200);
    }
}
