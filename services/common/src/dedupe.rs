//! The consumers' dedupe: `processed_events` holds one row per (consumer,
//! event id) a consumer has applied. Inserting a batch's ids in the same
//! transaction as its effects, and applying only the ids the insert returns,
//! makes each event's effect happen once however often Kafka delivers it.
//!
//! Guarantees: one statement per batch whatever its size (the ids travel as
//! one array, so no bind-parameter limit applies); an id repeated within the
//! batch is returned at most once; an id already recorded is never returned;
//! two transactions recording overlapping ids (two groups reading the same
//! topic, or a partition handed over while its last batch still commits)
//! wait for each other instead of deadlocking: `ORDER BY id` inserts the ids,
//! and so takes their index locks, in one order for every caller. Unordered,
//! each could hold an id the other needs, and PostgreSQL would break the
//! cycle only after `deadlock_timeout` (1 s) by failing one batch.

use std::collections::HashSet;

use diesel::sql_types::{Array, Text};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

#[derive(QueryableByName)]
struct EventIdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    event_id: Uuid,
}

/// Records that `consumer` applied each of `event_ids`; returns the ids it
/// had not applied before (call it inside the transaction of the effects).
pub async fn first_times(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    event_ids: &[Uuid],
) -> QueryResult<HashSet<Uuid>> {
    if event_ids.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(diesel::sql_query(
        "INSERT INTO processed_events (consumer, event_id) \
         SELECT $1, id FROM unnest($2::uuid[]) AS id ORDER BY id \
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind::<Text, _>(consumer)
    .bind::<Array<diesel::sql_types::Uuid>, _>(event_ids)
    .load::<EventIdRow>(conn)
    .await?
    .into_iter()
    .map(|row| row.event_id)
    .collect())
}
