//! The scaling stage: how a consumer group's throughput and lag-drain time
//! change with 1, 2, 3… instances of its service.
//!
//! For each group and each instance count, on a fresh group of its own
//! (a prefix per run, started at the end of its topics like the bench's
//! other groups): a backlog of sales for the bench vendors is written to the
//! sales topic while the group has no member, then N instances of the
//! service start and the bench waits until every sale's row is seen
//! committed ([`crate::commits`]), sampling the group's lag throughout
//! ([`crate::lag`]). Each run writes sales of its own: the consumers
//! deduplicate by sale id, so replaying the same records would measure the
//! duplicate path, not the work.
//!
//! How N instances run: in this process, N independent copies of the
//! service (`mamochi_accounting::run`, `mamochi_distributor::run`), each on
//! a thread of its own with its own async runtime (as many worker threads
//! as a process of its own would get), its own Kafka consumer (its own
//! member of the group, handed its own partitions by Kafka's rebalance),
//! producer, database pool, metrics registry and operations port (port 0:
//! the system picks one). Why not N child processes (`mamochi run
//! accounting --instance K`): the bench is a library the `mamochi` binary
//! drives, and a child process would have to be handed every bench override
//! (group prefix, stock) as environment variables; on one two-core machine N
//! processes and N copies with their own runtimes compete for the same two
//! cores either way, and what a process adds (its own allocator and address
//! space) is not what limits a consumer here.
//! The platform's own consumers of the bench run are stopped before this
//! stage, so they do not take a share of the backlog.
//!
//! Guarantee: a run's drain time counts from the moment its instances were
//! started (start-up and group join included) to the moment its **last**
//! sale was seen committed (at or after that commit); a run that did not
//! commit everything within the wait has a count, no rate.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use mamochi_common::db::PgPool;
use mamochi_common::shutdown::Shutdown;
use mamochi_common::{kafka, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::topics;
use rdkafka::producer::FutureProducer;
use uuid::Uuid;

use crate::commits::CommitWatch;
use crate::effects::millis_between;
use crate::lag::{LagSampler, Watched};
use crate::progress::Progress;
use crate::raw_kafka;
use crate::results::ScalingRun;

/// How long stopping the instances of a run may take before the bench
/// gives up on them (they drain and commit first).
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// A consumer service the stage scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaled {
    Accounting,
    Distributor,
}

impl Scaled {
    /// Every group the stage measures (the two the guild's sales volume
    /// lands on; approval's backlog is the bench's approval stage).
    pub const ALL: [Scaled; 2] = [Scaled::Accounting, Scaled::Distributor];

    /// Short name, as the lag samples and the report label it.
    pub fn label(self) -> &'static str {
        match self {
            Scaled::Accounting => mamochi_accounting::GROUP,
            Scaled::Distributor => mamochi_distributor::service::SALES_GROUP,
        }
    }

    /// The `processed_events.consumer` name of its sales rows.
    fn consumer(self) -> &'static str {
        match self {
            Scaled::Accounting => mamochi_accounting::store::CONSUMER,
            Scaled::Distributor => mamochi_distributor::store::SALES_CONSUMER,
        }
    }

    /// Every group the service joins, with its topic: each must start at
    /// the end of its topic so the fresh group owes nothing from before.
    fn groups(self) -> &'static [(&'static str, &'static str)] {
        const ACCOUNTING: [(&str, &str); 1] = [(mamochi_accounting::GROUP, topics::SALES.info.name)];
        const DISTRIBUTOR: [(&str, &str); 3] = [
            (mamochi_distributor::service::SALES_GROUP, topics::SALES.info.name),
            (mamochi_distributor::service::STOCK_GROUP, topics::STOCK.info.name),
            (mamochi_distributor::service::TRACKING_GROUP, topics::CART_TRACKING.info.name),
        ];
        match self {
            Scaled::Accounting => &ACCOUNTING,
            Scaled::Distributor => &DISTRIBUTOR,
        }
    }

    /// One instance of the service, until `shutdown`, on a thread of its
    /// own with its own runtime.
    fn instance(
        self,
        settings: &Settings,
        index: usize,
        shutdown: Shutdown,
    ) -> std::io::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
        let mut own = settings.clone();
        own.kafka = settings.kafka.for_service(self.label());
        own.kafka.client_id = format!("{}-{}-{index}", settings.kafka.client_id, self.label());
        own.accounting.ops_listen = "127.0.0.1:0".to_string();
        own.distributor.ops_listen = "127.0.0.1:0".to_string();
        std::thread::Builder::new().name(format!("{}-{index}", self.label())).spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("while building an instance's runtime")?;
            runtime.block_on(async {
                match self {
                    Scaled::Accounting => mamochi_accounting::run(&own, shutdown).await,
                    Scaled::Distributor => mamochi_distributor::run(&own, shutdown).await,
                }
            })
        })
    }
}

/// What one run needs from the bench.
pub struct Case<'a> {
    /// The bench platform's settings (their group prefix is replaced).
    pub settings: &'a Settings,
    pub codec: &'a EventCodec,
    pub pool: &'a PgPool,
    /// Vendors the sales are for (registered by the bench).
    pub vendors: &'a [Uuid],
    pub run_tag: &'a str,
    pub records: u64,
    pub wait: Duration,
}

impl std::fmt::Debug for Case<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("records", &self.records).field("wait", &self.wait).finish_non_exhaustive()
    }
}

/// Drains a backlog of `case.records` sales with `instances` copies of `scaled`.
pub async fn run(case: &Case<'_>, scaled: Scaled, instances: usize, progress: &Progress) -> anyhow::Result<ScalingRun> {
    let mut settings = case.settings.clone();
    settings.kafka.group_prefix = format!("bench-{}-scale-{}-{instances}-", case.run_tag, scaled.label());
    for (group, topic) in scaled.groups() {
        let (kafka, group, topic) = (settings.kafka.clone(), settings.kafka.group(group), *topic);
        tokio::task::spawn_blocking(move || kafka::start_group_at_end(&kafka, &group, topic))
            .await
            .context("the group start task ended abnormally")?
            .with_context(|| format!("while starting a scaling group at the end of {topic}"))?;
    }

    progress.set_message("encoding the backlog");
    let mut records = Vec::with_capacity(case.records as usize);
    let mut ids = Vec::with_capacity(case.records as usize);
    for index in 0..case.records {
        let (key, sale) = raw_kafka::sample_sale(index, case.vendors);
        ids.push(sale.sale_id);
        records.push(case.codec.encode(&topics::SALES, &key, &sale).await.context("while encoding a sale")?);
    }
    let watch = CommitWatch::start(case.pool, &[scaled.consumer()]);
    let watcher = watch.watcher();
    for id in &ids {
        watcher.watch(*id);
    }
    drop(watcher);
    let producer: FutureProducer =
        kafka::producer_config(&settings.kafka, "bench-scaling").create().context("while creating the producer")?;
    progress.set_message("writing the backlog (group stopped)");
    let written = Instant::now();
    let produced = raw_kafka::produce_all(&producer, topics::SALES.name(), &records, progress).await?;
    let produce_s = written.elapsed().as_secs_f64();

    let epoch = Instant::now();
    let watched = Watched {
        label: scaled.label().to_string(),
        group: settings.kafka.group(scaled.label()),
        topic: topics::SALES.name().to_string(),
        partitions: topics::SALES.info.partitions,
    };
    let lag = LagSampler::start(&settings.kafka, vec![watched], epoch)?;
    progress.set_message(format!("{} × {instances} draining", scaled.label()));
    let started_at = Utc::now();
    let shutdown = Shutdown::new();
    let mut threads = Vec::with_capacity(instances);
    let mut failure = None;
    for index in 0..instances {
        match scaled.instance(&settings, index, shutdown.clone()) {
            Ok(thread) => threads.push(thread),
            Err(error) => failure = Some(format!("an instance did not start: {error}")),
        }
    }
    let observed = watch.finish(case.wait).await;
    shutdown.cancel();
    for thread in threads {
        let joined = tokio::time::timeout(STOP_WITHIN, tokio::task::spawn_blocking(move || thread.join())).await;
        match joined {
            Ok(Ok(Ok(Ok(())))) => {}
            Ok(Ok(Ok(Err(error)))) => failure = Some(format!("an instance failed: {error:#}")),
            Ok(Ok(Err(_))) | Ok(Err(_)) => failure = Some("an instance ended abnormally".to_string()),
            Err(_) => failure = Some(format!("an instance did not stop within {} s", STOP_WITHIN.as_secs())),
        }
    }
    let samples = lag.stop();
    let observed = observed?;

    let seen = observed.seen.first().cloned().unwrap_or_default();
    let first = seen.values().min().copied();
    let last = observed.last_commit(0);
    let seconds_after_start = |at| (millis_between(started_at, at) / 1000.0).max(0.0);
    let drain_s = last.map(seconds_after_start);
    let steady_per_s = match (first, last) {
        // A span under 10 ms says nothing about a rate.
        (Some(first), Some(last)) => {
            let span = millis_between(first, last) / 1000.0;
            (span > 0.01).then(|| seen.len() as f64 / span)
        }
        _ => None,
    };
    let lag: Vec<(f64, i64)> = samples.iter().map(|sample| (sample.t_s, sample.lag)).collect();
    Ok(ScalingRun {
        group: scaled.label().to_string(),
        instances,
        records: produced.records,
        applied: seen.len() as u64,
        produce_s,
        first_commit_s: first.map(seconds_after_start),
        drain_s,
        records_per_s: drain_s.map(|seconds| produced.records as f64 / seconds.max(1e-9)),
        steady_per_s,
        peak_lag: lag.iter().map(|(_, lag)| *lag).max().unwrap_or(0),
        applied_elsewhere: seen.values().filter(|at| **at < started_at).count() as u64,
        lag,
        error: failure,
    })
}

/// Throughput with `instances` relative to one instance of the same group
/// (the speed-up); `None` when either run has no rate.
pub fn speedup(runs: &[ScalingRun], group: &str, instances: usize) -> Option<f64> {
    let rate = |count: usize| {
        runs.iter().find(|run| run.group == group && run.instances == count).and_then(|run| run.records_per_s)
    };
    Some(rate(instances)? / rate(1)?.max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(group: &str, instances: usize, rate: Option<f64>) -> ScalingRun {
        ScalingRun { group: group.into(), instances, records_per_s: rate, ..ScalingRun::default() }
    }

    #[test]
    fn speedup_is_against_one_instance_of_the_same_group() {
        let runs = [
            run("accounting", 1, Some(1_000.0)),
            run("accounting", 2, Some(1_500.0)),
            run("distributor", 1, Some(4_000.0)),
            run("distributor", 2, None),
        ];

        assert_eq!(speedup(&runs, "accounting", 2), Some(1.5));
        assert_eq!(speedup(&runs, "distributor", 2), None, "a run without a rate has no speed-up");
        assert_eq!(speedup(&runs, "approval", 1), None);
    }

    #[test]
    fn every_scaled_service_starts_all_of_its_groups_at_the_end() {
        assert_eq!(Scaled::Accounting.groups().len(), 1);
        assert!(Scaled::Distributor
            .groups()
            .iter()
            .any(|(group, _)| *group == mamochi_distributor::service::STOCK_GROUP));
        assert!(
            Scaled::Distributor
                .groups()
                .iter()
                .any(|(group, _)| *group == mamochi_distributor::service::TRACKING_GROUP),
            "a fresh tracking group left at the topic's start would replay every ping on the stack"
        );
        assert!(Scaled::ALL.iter().all(|scaled| scaled.groups()[0].0 == scaled.label()));
    }
}
