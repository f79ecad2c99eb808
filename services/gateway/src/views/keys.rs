//! Credential digest → holder, from memory: vendors' API keys
//! ([`KeyDirectory`]) and staff tokens ([`StaffDirectory`]).
//!
//! The first request with a key reads `members` once; the answer (a vendor,
//! or "no such key") is then served from memory for `ttl`
//! (`gateway.key_cache_ttl_ms`, 5 s by default) and read again after that.
//! Concurrent requests with the same unknown key share one read. So the
//! steady state costs one statement per key and `ttl`, not one per request,
//! and a key revoked in the database stops working within `ttl`: that is the
//! revocation bound this module guarantees. Unknown keys are remembered too
//! (the capacity bounds the memory a flood of made-up keys can take); a key
//! is only ever shown to its owner after approval stored it, so caching "no
//! such key" never delays a new member. A key staff revoked or replaced
//! through this gateway is forgotten here at once; other gateway processes,
//! and a vendor's own rotation (whose retry window is this bound), see the
//! change within `ttl`.
//!
//! Staff tokens follow the same rule with the same `ttl`: a token revoked
//! with `mamochi staff revoke` is refused within `ttl`.

use std::sync::Arc;
use std::time::Duration;

use mamochi_common::db::PgPool;
use moka::future::Cache;
use uuid::Uuid;

use crate::store::{self, StoreError};

/// How many key digests are remembered at most.
const CAPACITY: u64 = 200_000;

/// Key digests and the vendor each belongs to, with a time-to-live.
#[derive(Clone)]
pub struct KeyDirectory {
    cache: Cache<String, Option<Uuid>>,
    pool: PgPool,
    wait: Duration,
}

impl std::fmt::Debug for KeyDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyDirectory").field("entries", &self.cache.entry_count()).finish_non_exhaustive()
    }
}

impl KeyDirectory {
    /// `ttl` is the revocation bound; `wait` bounds one database read.
    pub fn new(pool: PgPool, ttl: Duration, wait: Duration) -> Self {
        Self { cache: Cache::builder().max_capacity(CAPACITY).time_to_live(ttl).build(), pool, wait }
    }

    /// Drops what is remembered of a key this process just changed, so that
    /// this process refuses a replaced key at once.
    pub async fn forget(&self, sha256_hex: &str) {
        self.cache.invalidate(sha256_hex).await;
    }

    /// The vendor whose key hashes to `sha256_hex`, `None` for no such key.
    pub async fn vendor(&self, sha256_hex: &str) -> Result<Option<Uuid>, Arc<StoreError>> {
        let pool = self.pool.clone();
        let wait = self.wait;
        let digest = sha256_hex.to_string();
        self.cache
            .try_get_with(digest.clone(), async move {
                tokio::time::timeout(wait, store::members::by_key_digest(&pool, &digest))
                    .await
                    .map_err(|_| StoreError::Pool(format!("no answer within {} ms", wait.as_millis())))?
            })
            .await
    }
}

/// Staff token digests and the name each belongs to, with a time-to-live
/// (the revocation bound of staff tokens).
#[derive(Clone)]
pub struct StaffDirectory {
    cache: Cache<String, Option<String>>,
    pool: PgPool,
    wait: Duration,
}

impl std::fmt::Debug for StaffDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffDirectory").field("entries", &self.cache.entry_count()).finish_non_exhaustive()
    }
}

/// How many staff token digests are remembered at most: staff are few, the
/// rest are made-up tokens, which need not stay long.
const STAFF_CAPACITY: u64 = 10_000;

impl StaffDirectory {
    /// `ttl` is the revocation bound; `wait` bounds one database read.
    pub fn new(pool: PgPool, ttl: Duration, wait: Duration) -> Self {
        Self { cache: Cache::builder().max_capacity(STAFF_CAPACITY).time_to_live(ttl).build(), pool, wait }
    }

    /// The name of the unrevoked staff token hashing to `sha256_hex`.
    pub async fn name(&self, sha256_hex: &str) -> Result<Option<String>, Arc<StoreError>> {
        let pool = self.pool.clone();
        let wait = self.wait;
        let digest = sha256_hex.to_string();
        self.cache
            .try_get_with(digest.clone(), async move {
                tokio::time::timeout(wait, store::staff::by_digest(&pool, &digest))
                    .await
                    .map_err(|_| StoreError::Pool(format!("no answer within {} ms", wait.as_millis())))?
            })
            .await
    }
}
