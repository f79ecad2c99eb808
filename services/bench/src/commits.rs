//! When each sale's effect was *committed*, observed from outside the
//! consumer's transaction.
//!
//! Why observe instead of reading a timestamp column: `processed_events`
//! rows carry `processed_at DEFAULT now()`, and PostgreSQL fixes `now()` at
//! the start of the transaction; `clock_timestamp()` would still be taken
//! before the commit, and commit timestamps need `track_commit_timestamp`,
//! which the stack does not enable. A row another session can see has been
//! committed, so this watcher polls, on a connection of its own, for the
//! `processed_events` rows (consumer, sale id) of the sales it was given,
//! and stamps each row with the moment the first query that returned it
//! answered.
//!
//! Guarantee: every stamp is at or after the commit. It is late by at most
//! one poll cycle (the pause between polls plus the query), so latencies
//! built on it are upper bounds; the cycle is recorded ([`Observed::cycle`])
//! and reported next to the figures. The pause is [`POLL_INTERVAL`], or as
//! long as the previous query took when that is longer, so the watcher never
//! keeps its database connection busy more than half the time.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::stats::{Latency, Recorder};

/// The pause between polls while the database answers quickly.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Ids per query: keeps each `= ANY($2)` array a reasonable size.
const CHUNK: usize = 10_000;

#[derive(QueryableByName)]
struct SeenRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    event_id: Uuid,
}

/// What the watcher saw, per consumer in the order they were given.
#[derive(Debug, Default)]
pub struct Observed {
    /// Per consumer: sale id → when its committed row was first seen.
    pub seen: Vec<HashMap<Uuid, DateTime<Utc>>>,
    /// How many ids were watched.
    pub watched: usize,
    /// Duration of each poll (all consumers' queries), in ms.
    pub cycle: Latency,
}

impl Observed {
    /// Whether `consumer` (by index) committed every watched id.
    pub fn complete(&self, consumer: usize) -> bool {
        self.seen.get(consumer).is_some_and(|seen| seen.len() == self.watched)
    }

    /// When `consumer` was first seen to have committed all of them.
    pub fn last_commit(&self, consumer: usize) -> Option<DateTime<Utc>> {
        self.seen.get(consumer).filter(|_| self.complete(consumer)).and_then(|seen| seen.values().max().copied())
    }
}

/// Adds ids to a running [`CommitWatch`]; cheap to clone into load tasks.
#[derive(Debug, Clone)]
pub struct Watcher {
    ids: mpsc::UnboundedSender<Uuid>,
}

impl Watcher {
    /// Starts watching for `id`'s committed rows.
    pub fn watch(&self, id: Uuid) {
        // The task only goes away after `finish`; an id sent later is not
        // part of that measurement anyway.
        let _ = self.ids.send(id);
    }
}

/// A background poller for the committed rows of the ids it is given.
#[derive(Debug)]
pub struct CommitWatch {
    watcher: Watcher,
    finish: oneshot::Sender<Instant>,
    task: JoinHandle<anyhow::Result<Observed>>,
}

impl CommitWatch {
    /// Starts polling for `consumers`' rows (the `processed_events.consumer` names).
    pub fn start(pool: &PgPool, consumers: &[&'static str]) -> Self {
        let (ids, received) = mpsc::unbounded_channel();
        let (finish, deadline) = oneshot::channel();
        let task = tokio::spawn(poll(pool.clone(), consumers.to_vec(), received, deadline));
        Self { watcher: Watcher { ids }, finish, task }
    }

    pub fn watcher(&self) -> Watcher {
        self.watcher.clone()
    }

    /// Waits until every watched id was seen committed by every consumer,
    /// or `within` passes, and returns what was seen.
    pub async fn finish(self, within: Duration) -> anyhow::Result<Observed> {
        let Self { watcher, finish, task } = self;
        drop(watcher);
        let _ = finish.send(Instant::now() + within);
        task.await.context("the commit watcher task ended abnormally")?
    }
}

async fn poll(
    pool: PgPool,
    consumers: Vec<&'static str>,
    mut received: mpsc::UnboundedReceiver<Uuid>,
    mut finish: oneshot::Receiver<Instant>,
) -> anyhow::Result<Observed> {
    let mut conn = pool.get().await.map_err(|error| anyhow::anyhow!("database pool: {error}"))?;
    let mut pending: Vec<HashSet<Uuid>> = vec![HashSet::new(); consumers.len()];
    let mut observed = Observed { seen: vec![HashMap::new(); consumers.len()], ..Observed::default() };
    let mut cycles = Recorder::new();
    let mut deadline: Option<Instant> = None;
    loop {
        while let Ok(id) = received.try_recv() {
            observed.watched += 1;
            for set in &mut pending {
                set.insert(id);
            }
        }
        if deadline.is_none() {
            deadline = finish.try_recv().ok();
        }
        if let Some(deadline) = deadline {
            // After `finish` no id can arrive any more (the sender is gone
            // once the channel is drained), so empty means done.
            let drained = received.is_empty() && pending.iter().all(HashSet::is_empty);
            if drained || Instant::now() >= deadline {
                break;
            }
        }
        let started = Instant::now();
        for (index, consumer) in consumers.iter().enumerate() {
            if pending[index].is_empty() {
                continue;
            }
            let ids: Vec<Uuid> = pending[index].iter().copied().collect();
            for chunk in ids.chunks(CHUNK) {
                let rows: Vec<SeenRow> = diesel::sql_query(
                    "SELECT event_id FROM processed_events WHERE consumer = $1 AND event_id = ANY($2)",
                )
                .bind::<Text, _>(*consumer)
                .bind::<Array<diesel::sql_types::Uuid>, _>(chunk)
                .load(&mut conn)
                .await
                .context("while polling processed_events")?;
                // Taken after the answer arrived: the commit came before.
                let seen_at = Utc::now();
                for row in rows {
                    if pending[index].remove(&row.event_id) {
                        observed.seen[index].insert(row.event_id, seen_at);
                    }
                }
            }
        }
        let took = started.elapsed();
        cycles.record(took);
        tokio::time::sleep(POLL_INTERVAL.max(took)).await;
    }
    observed.cycle = cycles.summary();
    Ok(observed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_commit_is_known_only_when_every_id_was_seen() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let early = DateTime::from_timestamp_millis(1_000).expect("instant");
        let late = DateTime::from_timestamp_millis(2_500).expect("instant");
        let observed = Observed {
            seen: vec![HashMap::from([(a, late), (b, early)]), HashMap::from([(a, early)])],
            watched: 2,
            cycle: Latency::default(),
        };

        assert_eq!(observed.last_commit(0), Some(late), "the last record, not the last batch start");
        assert_eq!(observed.last_commit(1), None, "one sale never committed: no drain time");
        assert!(observed.complete(0) && !observed.complete(1));
    }
}
