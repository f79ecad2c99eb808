//! Idempotency claims of `POST /v1/sales`, in `sale_requests`, written with
//! group commit.
//!
//! A request with an `Idempotency-Key` claims (vendor, key) with a row
//! holding its body's digest, its sale id and the answer it will give, marked
//! `pending`; only the request whose insert created the row produces the
//! sale. Once Kafka acknowledged it the row becomes `done` and a repeat of the
//! key gets the stored answer; if producing fails (or the stock rule refuses
//! the sale) the claim is released so a retry can record it. A `pending`
//! claim left by a crashed gateway is taken over after a while and
//! re-produced with the same sale id.
//!
//! Speed: claims, settlements and releases are not written one statement per
//! request. Requests hand them to [`ClaimBook`], whose writer tasks take
//! everything queued since the last batch was taken and write each kind as
//! one multi-row statement (PostgreSQL's and Kafka's own group commit): under
//! load one flush serves hundreds of requests, and an idle gateway still
//! writes at once. Every wait is bounded: a full queue answers
//! [`StoreError::Busy`] at once and a claim not written within the configured
//! wait answers it too, so overload becomes 503 rather than a queue.
//!
//! Durability: every claim write is committed without waiting for the log
//! flush (`synchronous_commit` off for that statement; PostgreSQL flushes
//! within `wal_writer_delay`, 200 ms by default). That is safe because the
//! sale id is derived from (vendor, key, request), not stored only here: if
//! a database crash loses a claim whose sale was produced, a repeat of the
//! request claims the key again and re-produces the same sale id, which
//! consumers deduplicate, so the sale is still counted once. What a crash
//! can lose is only the stored answer (a repeat gets a fresh `occurred_at`
//! when the client sent none) and, for the last fraction of a second of
//! claims, the 422 for a key reused with another body. Waiting for the
//! flush instead would put a disk flush on every keyed sale's path. Claims
//! are kept for the configured retention (24 h by default) and pruned after
//! it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Jsonb, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::sale_requests;
use mamochi_common::shutdown::Shutdown;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use super::{connection, StoreError};

/// `response` JSON: `{"state": "pending"|"done", "body": {...}}`.
pub const PENDING: &str = "pending";
pub const DONE: &str = "done";

/// Most rows one statement writes; a longer queue takes several statements.
const MAX_BATCH: usize = 2_000;
/// Writer tasks taking batches from the queue: while one waits for its
/// statements, the next gathers the following batch, so a request waits
/// for at most one batch ahead of its own.
const WRITERS: usize = 2;
/// Most expired claims one pruning statement deletes.
const PRUNE_CHUNK: i32 = 10_000;

/// A claim already on record for (vendor, key).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sale_requests, check_for_backend(diesel::pg::Pg))]
pub struct Claim {
    pub request_sha256: String,
    pub sale_id: Uuid,
    pub response: Value,
}

impl Claim {
    pub fn state(&self) -> Option<&str> {
        self.response.get("state").and_then(Value::as_str)
    }

    pub fn body(&self) -> Option<&Value> {
        self.response.get("body")
    }
}

pub fn response(state: &str, body: &Value) -> Value {
    serde_json::json!({ "state": state, "body": body })
}

/// A claim to write.
#[derive(Debug, Clone)]
pub struct NewClaim {
    pub vendor_id: Uuid,
    pub key: String,
    pub request_sha256: String,
    pub sale_id: Uuid,
    /// The answer the request will give once the sale is recorded.
    pub body: Value,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One request's part in the next batch.
enum Op {
    Claim(NewClaim, Reply<bool>),
    Settle { vendor_id: Uuid, key: String, body: Value },
    Release { vendor_id: Uuid, key: String, reply: Reply<()> },
}

/// The requests' side of the group-commit writer.
#[derive(Debug, Clone)]
pub struct ClaimBook {
    queue: mpsc::Sender<Op>,
    wait: Duration,
}

impl ClaimBook {
    /// Starts the writer task (it ends when every `ClaimBook` clone is
    /// dropped) and the hourly pruning of claims older than `retention`.
    /// `capacity` bounds the queue, `wait` bounds each request's wait.
    pub fn start(pool: PgPool, capacity: usize, wait: Duration, retention: Duration, shutdown: Shutdown) -> Self {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(pool.clone(), receiver.clone()));
        }
        tokio::spawn(prune_expired(pool, retention, shutdown));
        Self { queue, wait }
    }

    /// Inserts a pending claim; `false` if the key is already held.
    pub async fn claim(&self, claim: NewClaim) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Op::Claim(claim, reply))?;
        self.await_reply(answer).await
    }

    /// Marks a claim done, without waiting (see the module doc).
    pub fn settle(&self, vendor_id: Uuid, key: &str, body: Value) {
        let op = Op::Settle { vendor_id, key: key.to_string(), body };
        if let Err(error) = self.enqueue(op) {
            // The claim stays pending; a repeat re-produces the same sale id.
            tracing::warn!(%error, "sale recorded but its idempotency claim could not be queued as done");
        }
    }

    /// Drops a pending claim whose sale was not recorded.
    pub async fn release(&self, vendor_id: Uuid, key: &str) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Op::Release { vendor_id, key: key.to_string(), reply })?;
        self.await_reply(answer).await
    }

    fn enqueue(&self, op: Op) -> Result<(), StoreError> {
        self.queue.try_send(op).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy("the idempotency queue is full".into()),
            mpsc::error::TrySendError::Closed(_) => StoreError::Busy("the idempotency writer stopped".into()),
        })
    }

    async fn await_reply<T>(&self, answer: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
        match tokio::time::timeout(self.wait, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Busy("the idempotency writer dropped the request".into())),
            Err(_) => Err(StoreError::Busy(format!("no idempotency answer within {} ms", self.wait.as_millis()))),
        }
    }
}

/// A writer: everything queued since the last batch was taken, one
/// statement per kind. Batches may be written concurrently: operations on
/// one key never race, because a request awaits its claim and its release,
/// and a client retries only after its answer.
async fn write_batches(pool: PgPool, receiver: Arc<Mutex<mpsc::Receiver<Op>>>) {
    let mut ops = Vec::with_capacity(MAX_BATCH);
    loop {
        let taken = receiver.lock().await.recv_many(&mut ops, MAX_BATCH).await;
        if taken == 0 {
            return;
        }
        write_batch(&pool, std::mem::take(&mut ops)).await;
    }
}

async fn write_batch(pool: &PgPool, ops: Vec<Op>) {
    let mut claims = Vec::new();
    let mut settles = Vec::new();
    let mut releases = Vec::new();
    for op in ops {
        match op {
            Op::Claim(claim, reply) => claims.push((claim, reply)),
            Op::Settle { vendor_id, key, body } => settles.push((vendor_id, key, body)),
            Op::Release { vendor_id, key, reply } => releases.push((vendor_id, key, reply)),
        }
    }
    // Settlements and releases first: they concern claims made in earlier
    // batches, and a release must land before the retry it makes possible.
    if !settles.is_empty() {
        if let Err(error) = settle_all(pool, &settles).await {
            tracing::warn!(%error, count = settles.len(), "idempotency claims not marked done; they stay pending");
        }
    }
    if !releases.is_empty() {
        let keys: Vec<(Uuid, String)> = releases.iter().map(|(vendor, key, _)| (*vendor, key.clone())).collect();
        let result = release_all(pool, &keys).await.map_err(|error| error.to_string());
        for (_, _, reply) in releases {
            let _ = reply.send(result.clone().map_err(StoreError::Failed));
        }
    }
    if !claims.is_empty() {
        claim_all(pool, claims).await;
    }
}

async fn claim_all(pool: &PgPool, claims: Vec<(NewClaim, Reply<bool>)>) {
    // Twins inside one batch: the first is the candidate, the others find
    // the key held, exactly as if they had come a moment later.
    let mut seen = HashSet::new();
    let (candidates, twins): (Vec<_>, Vec<_>) =
        claims.into_iter().partition(|(claim, _)| seen.insert((claim.vendor_id, claim.key.clone())));
    for (_, reply) in twins {
        let _ = reply.send(Ok(false));
    }
    let rows: Vec<&NewClaim> = candidates.iter().map(|(claim, _)| claim).collect();
    match insert_claims(pool, &rows).await {
        Ok(inserted) => {
            for (claim, reply) in candidates {
                let _ = reply.send(Ok(inserted.contains(&(claim.vendor_id, claim.key))));
            }
        }
        Err(error) => {
            let message = error.to_string();
            for (_, reply) in candidates {
                let _ = reply.send(Err(StoreError::Failed(message.clone())));
            }
        }
    }
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = SqlUuid)]
    vendor_id: Uuid,
    #[diesel(sql_type = Text)]
    idempotency_key: String,
}

/// One INSERT for every claim; returns the (vendor, key) pairs it inserted.
/// (Every statement here sets `synchronous_commit` off for its own implicit
/// transaction: see the module doc.)
async fn insert_claims(pool: &PgPool, rows: &[&NewClaim]) -> Result<HashSet<(Uuid, String)>, StoreError> {
    let mut conn = connection(pool).await?;
    let inserted = diesel::sql_query(
        "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)) \
         INSERT INTO sale_requests (vendor_id, idempotency_key, request_sha256, sale_id, response) \
         SELECT u.* FROM relaxed, unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::jsonb[]) AS u \
         ON CONFLICT DO NOTHING RETURNING vendor_id, idempotency_key",
    )
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|row| row.vendor_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|row| row.key.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|row| row.request_sha256.as_str()).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|row| row.sale_id).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(rows.iter().map(|row| response(PENDING, &row.body)).collect::<Vec<_>>())
    .load::<ClaimedRow>(&mut conn)
    .await?;
    Ok(inserted.into_iter().map(|row| (row.vendor_id, row.idempotency_key)).collect())
}

/// One UPDATE marking every settled claim done.
async fn settle_all(pool: &PgPool, settles: &[(Uuid, String, Value)]) -> Result<(), StoreError> {
    let mut conn = connection(pool).await?;
    diesel::sql_query(
        "UPDATE sale_requests AS r SET response = jsonb_build_object('state', 'done', 'body', u.body) \
         FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed, \
              unnest($1::uuid[], $2::text[], $3::jsonb[]) AS u(vendor_id, idempotency_key, body) \
         WHERE r.vendor_id = u.vendor_id AND r.idempotency_key = u.idempotency_key",
    )
    .bind::<Array<SqlUuid>, _>(settles.iter().map(|(vendor, _, _)| *vendor).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(settles.iter().map(|(_, key, _)| key.as_str()).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(settles.iter().map(|(_, _, body)| body.clone()).collect::<Vec<_>>())
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// One DELETE dropping every released claim that is still pending.
async fn release_all(pool: &PgPool, keys: &[(Uuid, String)]) -> Result<(), StoreError> {
    let mut conn = connection(pool).await?;
    diesel::sql_query(
        "DELETE FROM sale_requests AS r \
         USING (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed, \
               unnest($1::uuid[], $2::text[]) AS u(vendor_id, idempotency_key) \
         WHERE r.vendor_id = u.vendor_id AND r.idempotency_key = u.idempotency_key \
           AND r.response->>'state' = 'pending'",
    )
    .bind::<Array<SqlUuid>, _>(keys.iter().map(|(vendor, _)| *vendor).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(keys.iter().map(|(_, key)| key.as_str()).collect::<Vec<_>>())
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// Deletes claims older than `retention`, in chunks, every hour (and once
/// at start-up), until `shutdown`.
async fn prune_expired(pool: PgPool, retention: Duration, shutdown: Shutdown) {
    let mut every = tokio::time::interval(Duration::from_secs(3_600));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match prune(&pool, retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired idempotency claims pruned"),
            Err(error) => tracing::warn!(%error, "could not prune expired idempotency claims"),
        }
    }
}

/// Deletes every claim older than `retention`; returns how many.
pub async fn prune(pool: &PgPool, retention: Duration) -> Result<usize, StoreError> {
    let mut conn = connection(pool).await?;
    let seconds = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    let mut total = 0;
    loop {
        let deleted = diesel::sql_query(
            "DELETE FROM sale_requests WHERE ctid IN ( \
               SELECT ctid FROM sale_requests \
               WHERE created_at < now() - make_interval(secs => $1::float8) LIMIT $2)",
        )
        .bind::<BigInt, _>(seconds)
        .bind::<Integer, _>(PRUNE_CHUNK)
        .execute(&mut conn)
        .await?;
        total += deleted;
        if deleted < usize::try_from(PRUNE_CHUNK).unwrap_or(usize::MAX) {
            return Ok(total);
        }
    }
}

pub async fn find(pool: &PgPool, vendor_id: Uuid, key: &str) -> Result<Option<Claim>, StoreError> {
    let mut conn = connection(pool).await?;
    Ok(sale_requests::table.find((vendor_id, key)).select(Claim::as_select()).first(&mut conn).await.optional()?)
}

/// Takes over a pending claim older than `stale_after_secs` (its gateway
/// died mid-request); `true` if this request now owns it.
pub async fn take_over_stale(
    pool: &PgPool,
    vendor_id: Uuid,
    key: &str,
    stale_after_secs: i64,
) -> Result<bool, StoreError> {
    let mut conn = connection(pool).await?;
    let updated = diesel::sql_query(
        "UPDATE sale_requests SET created_at = now() \
         WHERE vendor_id = $1 AND idempotency_key = $2 AND response->>'state' = 'pending' \
           AND created_at < now() - make_interval(secs => $3::float8)",
    )
    .bind::<SqlUuid, _>(vendor_id)
    .bind::<Text, _>(key)
    .bind::<BigInt, _>(stale_after_secs)
    .execute(&mut conn)
    .await?;
    Ok(updated == 1)
}
