//! Retention on the real database: rows older than the period the policy
//! derives from the topic catalog are pruned, younger ones stay, pending
//! emails stay however old, and the pruning task `mamochi run` starts does
//! its first pass at once.

mod support;

use std::time::Duration;

use diesel::sql_types::{Array, Double, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use mamochi::retention::{rules_for, rules_for_all, start};
use mamochi::run::Service;
use mamochi_common::db::{self, PgPool};
use mamochi_common::retention::{prune_once, Rows, Rule};
use mamochi_common::shutdown::Shutdown;
use uuid::Uuid;

/// An hour either side of a period: far from the boundary, whatever the
/// test's own duration.
const HOUR: f64 = 3_600.0;

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Dedupe rows of `consumer` stamped `age_secs` ago; returns their ids.
async fn dedupe_rows(pool: &PgPool, consumer: &str, count: usize, age_secs: f64) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query(
        "INSERT INTO processed_events (consumer, event_id, processed_at) \
         SELECT $1, id, now() - make_interval(secs => $3) FROM unnest($2) AS id",
    )
    .bind::<Text, _>(consumer)
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Double, _>(age_secs)
    .execute(&mut conn)
    .await
    .expect("dedupe rows inserted");
    ids
}

/// Email rows in `status`, first written `age_secs` ago; returns their ids.
async fn email_rows(pool: &PgPool, status: &str, count: usize, age_secs: f64) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query(
        "INSERT INTO emails (message_id, recipient, subject, category, status, requested_at, created_at) \
         SELECT id, 'retention@example.cl', 'retention test', 'test', $1, now(), now() - make_interval(secs => $3) \
         FROM unnest($2) AS id",
    )
    .bind::<Text, _>(status)
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Double, _>(age_secs)
    .execute(&mut conn)
    .await
    .expect("email rows inserted");
    ids
}

/// Which of `ids` are still in `processed_events` (any consumer) or `emails`.
async fn surviving(pool: &PgPool, ids: &[Uuid]) -> Vec<Uuid> {
    let mut conn = pool.get().await.expect("connection");
    let rows: Vec<Id> = diesel::sql_query(
        "SELECT event_id AS id FROM processed_events WHERE event_id = ANY($1) \
         UNION ALL SELECT message_id AS id FROM emails WHERE message_id = ANY($1)",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .load(&mut conn)
    .await
    .expect("survivors read");
    rows.into_iter().map(|row| row.id).collect()
}

/// Deletes this test's remaining rows.
async fn forget(pool: &PgPool, ids: &[Uuid]) {
    let mut conn = pool.get().await.expect("connection");
    for table in
        ["DELETE FROM processed_events WHERE event_id = ANY($1)", "DELETE FROM emails WHERE message_id = ANY($1)"]
    {
        diesel::sql_query(table).bind::<Array<SqlUuid>, _>(ids).execute(&mut conn).await.expect("cleaned up");
    }
}

fn pool() -> PgPool {
    db::pool(&support::settings().database).expect("pool")
}

#[tokio::test]
async fn one_pass_deletes_every_row_past_its_period_and_keeps_the_rest() {
    // Arrange: for every rule of every service, rows an hour past their
    // period (more than one chunk of them) and rows an hour short of it.
    let pool = pool();
    let services = [Service::Accounting, Service::Distributor, Service::Approval, Service::Notifier];
    let rules: Vec<Rule> = rules_for_all(&services);
    assert_eq!(
        rules.len(),
        7,
        "two sales consumers, the stock consumer, the cart-tracking consumer, approval's two, the notifier's emails"
    );
    let chunk_rows = 2;
    let mut expired = Vec::new();
    let mut kept = Vec::new();
    for rule in &rules {
        let period = rule.keep.as_secs_f64();
        match &rule.rows {
            Rows::ProcessedEvents { consumer } => {
                expired.extend(dedupe_rows(&pool, consumer, 5, period + HOUR).await);
                kept.extend(dedupe_rows(&pool, consumer, 2, period - HOUR).await);
            }
            Rows::FinishedEmails => {
                expired.extend(email_rows(&pool, "sent", 3, period + HOUR).await);
                expired.extend(email_rows(&pool, "failed", 2, period + HOUR).await);
                kept.extend(email_rows(&pool, "sent", 2, period - HOUR).await);
                kept.extend(email_rows(&pool, "pending", 2, period + HOUR).await);
            }
        }
    }

    // Act
    let deleted = prune_once(&pool, &rules, chunk_rows).await.expect("one pass");

    // Assert: counted against the rows themselves (a concurrent pruner may
    // have taken some of the expired ones first, never a kept one).
    assert_eq!(deleted.len(), rules.len());
    assert_eq!(surviving(&pool, &expired).await, Vec::<Uuid>::new(), "every row past its period is gone");
    let mut left = surviving(&pool, &kept).await;
    left.sort_unstable();
    kept.sort_unstable();
    assert_eq!(left, kept, "rows within their period, and pending emails, stay");
    forget(&pool, &kept).await;
}

#[tokio::test]
async fn a_sales_dedupe_row_younger_than_the_sales_topic_retention_is_never_pruned() {
    // 400 days is the catalog's sales retention: a redelivered sale this old
    // must still be recognised.
    let pool = pool();
    let sales_retention = match mamochi_events::topics::SALES.info.retention {
        mamochi_events::topics::Retention::Delete { ms } => ms as f64 / 1_000.0,
        mamochi_events::topics::Retention::Compact => panic!("sales are not compacted"),
    };
    let rules = rules_for(Service::Accounting);
    let consumer = mamochi_accounting::store::CONSUMER;
    let kept = dedupe_rows(&pool, consumer, 3, sales_retention + HOUR).await;

    prune_once(&pool, &rules, 1_000).await.expect("one pass");

    assert_eq!(surviving(&pool, &kept).await.len(), kept.len());
    forget(&pool, &kept).await;
}

#[tokio::test]
async fn the_pruning_task_a_process_starts_prunes_at_once_and_stops_with_the_process() {
    // Arrange
    let settings = support::settings();
    let pool = pool();
    let rule = rules_for(Service::Distributor).into_iter().next().expect("a distributor rule");
    let Rows::ProcessedEvents { consumer } = &rule.rows else { panic!("a dedupe rule: {rule:?}") };
    let period = rule.keep.as_secs_f64();
    let expired = dedupe_rows(&pool, consumer, 3, period + HOUR).await;
    let kept = dedupe_rows(&pool, consumer, 1, period - HOUR).await;
    let shutdown = Shutdown::new();

    // Act
    start(&settings, &[Service::Distributor], shutdown.clone()).expect("pruning task started");

    // Assert: gone well before the hourly tick; the young row stays.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !surviving(&pool, &expired).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "expired rows still there after 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(surviving(&pool, &kept).await, kept);
    shutdown.cancel();
    forget(&pool, &kept).await;
}
