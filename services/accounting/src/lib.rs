//! The accounting service: counts every sale once into its vendor's weekly
//! totals (ISO weeks in America/Santiago time, [`week`]), closes weeks when
//! it has seen all of them and issues one statement per vendor and week,
//! published on the statements topic and emailed to the vendor in Spanish.
//!
//! Delivery guarantee: at least once, exactly once in effect. Sales are
//! consumed from `mamochi.sales` (group `accounting`); a sale's dedupe record
//! (`processed_events`, consumer `accounting`, event id = sale id), its
//! effect on `weekly_sales` and its partition's watermark
//! (`accounting_watermarks`) commit in one transaction, many sales per
//! transaction when the consumer has them buffered ([`intake`]); offsets are
//! stored only after that commit. Closing a week and storing its statement is
//! one transaction; publishing it (event and email request, with ids derived
//! from vendor and week) happens after, inside a transaction that sets
//! `published_at` only once Kafka acknowledged both, so a crash re-publishes
//! the same ids and the vendor still gets one email ([`publisher`]).
//!
//! Platform time ([`platform`]) is the later of the configured clock and the
//! latest sale time applied. A week is due when the close horizon
//! ([`horizon`]) passes its end plus `accounting.grace_period_secs`: platform
//! time has passed it and every sales partition has been read past it or
//! has nothing left to read — so a backlog of last week's sales (accounting
//! down across Monday 01:00, say) is counted in last week. The horizon is
//! computed from PostgreSQL and the group's committed offsets, the same for
//! every instance, and closing is idempotent: any number of accounting
//! instances may run in the group. The closer ([`closer`]) checks every
//! `accounting.close_check_interval_secs` real seconds, and at once when sale
//! time moves forward. Every member gets exactly one statement for each week
//! that ended after they joined (`members.created_at`), even without sales.
//!
//! **Late sales.** A sale whose own week, or a later week of the same vendor,
//! is already closed when it is applied is *late*. The closed statement never
//! changes: a late sale is counted in the vendor's current open week — the
//! week containing platform now, or the week after the vendor's latest closed
//! week if that is later — and it is logged (warning `late sale`) and counted
//! in `mamochi_accounting_sales_late_total`. Its `occurred_at` is kept in the
//! log; the weekly totals only say where it was counted.
//!
//! **Daily figures.** The same transaction adds each sale to its vendor's
//! Santiago day and hour (`daily_sales`, [`daily`]), by when it happened,
//! late or not: what `GET /v1/me/stats/daily` reads. With
//! `accounting.daily_summary` on, the closer also emails each vendor a
//! summary of every day they sold in once the day is due, once ([`summary`]).

pub mod closer;
pub mod daily;
pub mod horizon;
pub mod intake;
pub mod ledger;
pub mod metrics;
pub mod platform;
pub mod publisher;
pub mod sale;
pub mod statement;
pub mod store;
pub mod summary;
pub mod week;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mamochi_common::clock::Clock;
use mamochi_common::kafka_metrics::KafkaMetrics;
use mamochi_common::ops::{self, Ops, Readiness};
use mamochi_common::shutdown::Shutdown;
use mamochi_common::{db, kafka, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::DeadLetters;
use mamochi_events::publish::Publisher as KafkaPublisher;
use mamochi_events::runner::{Backoff, Runner};
use mamochi_events::topics;
use rdkafka::consumer::Consumer;
use tokio::sync::Notify;

use crate::closer::Closer;
use crate::horizon::GroupPositions;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::platform::PlatformTime;
use crate::publisher::StatementPublisher;

/// Consumer group of the sales consumer.
pub const GROUP: &str = "accounting";

/// Runs the service until `shutdown` is cancelled, then drains, commits and
/// returns. Everything runs inside this one future (nothing is spawned), so
/// dropping it stops the consumer, the closer and the database pool at once.
pub async fn run(settings: &Settings, shutdown: Shutdown) -> anyhow::Result<()> {
    settings.refuse_builtin_secrets()?;
    let clock = Clock::from_settings(&settings.time).context("while reading time settings")?;
    let grace = chrono::Duration::seconds(settings.accounting.grace_period_secs.max(0));
    let pool = db::pool(&settings.database).context("while creating the database pool")?;
    let producer = kafka::producer(&settings.kafka, "accounting").context("while creating the producer")?;
    let metrics = Metrics::new().context("while registering metrics")?;
    let kafka_metrics = KafkaMetrics::new(&metrics.registry).context("while registering Kafka metrics")?;
    let codec = Arc::new(EventCodec::new(&settings.registry.url).measured(&kafka_metrics));
    let admin = kafka::admin(&settings.kafka).context("while creating the admin client")?;
    kafka::ensure_topics(&admin, &topics::all_specs()).await.context("while creating topics")?;

    let readiness = Readiness::default();
    let (ops_server, ops_port) = ops::serve(
        &settings.accounting.ops_listen,
        Ops { service: "accounting", readiness: readiness.clone(), registry: metrics.registry.clone() },
    )
    .context("while binding the ops endpoints")?;
    let ops_handle = ops_server.handle();
    tracing::info!(ops_port, "accounting service starting");

    let group = settings.kafka.group(GROUP);
    let platform = Arc::new(PlatformTime::new(clock));
    let wakeup = Arc::new(Notify::new());
    let ledger = Ledger {
        pool: pool.clone(),
        platform: platform.clone(),
        group: group.clone(),
        metrics: metrics.clone(),
        closer_wakeup: wakeup.clone(),
    };
    let positions = GroupPositions::new(&settings.kafka, &group).context("while creating the group-position reader")?;
    let closer = Closer {
        pool,
        publisher: StatementPublisher {
            kafka: KafkaPublisher::new(producer.clone(), codec.clone(), kafka_metrics.clone()),
        },
        platform,
        grace,
        interval: Duration::from_secs(settings.accounting.close_check_interval_secs.max(1)),
        daily_summary: settings.accounting.daily_summary,
        metrics,
        wakeup,
        positions,
    };
    let runner = Runner {
        codec,
        dead_letters: DeadLetters::new(producer, GROUP).measured(&kafka_metrics),
        backoff: Backoff { first: Duration::from_millis(100), max: Duration::from_secs(5) },
        metrics: kafka_metrics.clone(),
    };
    let consumer = kafka::measured_consumer(&settings.kafka, &group, "accounting", &kafka_metrics)
        .context("while creating the sales consumer")?;
    consumer.subscribe(&[topics::SALES.name()]).context("while subscribing to sales")?;

    let work = async {
        kafka::ready_when_assigned(Some(&readiness), &[&consumer], &shutdown, async {
            tokio::join!(
                intake::run(&consumer, &runner, &ledger, settings.accounting.max_batch.max(1), &shutdown),
                closer.run(&shutdown)
            )
        })
        .await;
        ops_handle.stop(true).await;
    };
    let (served, ()) = tokio::join!(ops_server, work);
    served.context("while serving the ops endpoints")?;
    tracing::info!("accounting service stopped");
    Ok(())
}
