//! How fast the consumers drain a backlog when the gateway is not the
//! limit: a burst of sales for the bench vendors is written straight to the
//! sales topic (typed, through the platform's codec and producer, exactly
//! the records the gateway would write) and the time until accounting and
//! the distributor have applied all of it is measured.
//!
//! A drain rate counts until the **last** record is committed: the watch
//! ([`crate::commits`]) looks for every record's row from before the first
//! one is written, and a consumer's drain time runs from the first record
//! written to the moment its last row was seen committed (at or after that
//! commit). A consumer that did not commit every record within the wait has
//! no rate, only a count.
//!
//! Over HTTP the consumers never see more than the gateway accepts, so this
//! is the only stage that shows the consumers' own capacity (and the lag
//! curve of a backlog being worked off).

use std::time::{Duration, Instant};

use anyhow::Context;
use mamochi_common::db::PgPool;
use mamochi_common::{kafka, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::topics;
use rdkafka::producer::FutureProducer;
use uuid::Uuid;

use crate::commits::CommitWatch;
use crate::effects;
use crate::progress::Progress;
use crate::raw_kafka;
use crate::results::Burst;

/// Writes `count` sales for `vendors` and waits (at most `within`) until
/// both consumers applied them.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    settings: &Settings,
    codec: &EventCodec,
    pool: &PgPool,
    vendors: &[Uuid],
    count: u64,
    within: Duration,
    epoch: Instant,
    progress: &Progress,
) -> anyhow::Result<Burst> {
    progress.set_message("encoding");
    let mut records = Vec::with_capacity(count as usize);
    let mut ids = Vec::with_capacity(count as usize);
    for index in 0..count {
        let (key, sale) = raw_kafka::sample_sale(index, vendors);
        ids.push(sale.sale_id);
        records.push(codec.encode(&topics::SALES, &key, &sale).await.context("while encoding a sale")?);
    }
    let producer: FutureProducer =
        kafka::producer_config(&settings.kafka, "bench-burst").create().context("while creating the producer")?;
    let consumers = [mamochi_accounting::store::CONSUMER, mamochi_distributor::store::SALES_CONSUMER];
    let watch = CommitWatch::start(pool, &consumers);
    let watcher = watch.watcher();
    for id in &ids {
        watcher.watch(*id);
    }
    drop(watcher);
    progress.set_length(count);
    progress.set_message("producing");
    let started_s = epoch.elapsed().as_secs_f64();
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let produced = raw_kafka::produce_all(&producer, topics::SALES.name(), &records, progress).await?;
    let produce_s = started.elapsed().as_secs_f64();

    progress.set_message("waiting for accounting and distributor");
    let observed = watch.finish(within).await?;
    let applied: Vec<(u64, Option<f64>)> = (0..consumers.len())
        .map(|index| {
            let last = observed.last_commit(index).map(|last| effects::millis_between(started_at, last) / 1000.0);
            (observed.seen[index].len() as u64, last)
        })
        .collect();
    let rate = |seconds: Option<f64>| seconds.map(|seconds| produced.records as f64 / seconds.max(1e-9));
    let [(accounting_applied, accounting_s), (distributor_applied, distributor_s)] = [applied[0], applied[1]];
    Ok(Burst {
        records: produced.records,
        produce_s,
        accounting_applied,
        accounting_s,
        accounting_per_s: rate(accounting_s),
        distributor_applied,
        distributor_s,
        distributor_per_s: rate(distributor_s),
        commit_poll: Some(observed.cycle),
        peak_lag: 0,
        distributor_peak_lag: 0,
        started_s,
        ended_s: epoch.elapsed().as_secs_f64(),
    })
}
