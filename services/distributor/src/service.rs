//! Wiring: settings in, a running distributor out (three consumers, the
//! sales batch loop, the stock handler and the cart tracking's laned batch
//! loop, the silence timer, the outbox relay, the producer, operational
//! endpoints), and an orderly stop: the consumers stop and commit, then the
//! relay produces what their last commits left in the outbox.

use std::sync::Arc;

use anyhow::Context;
use mamochi_common::clock::Clock;
use mamochi_common::kafka::{self, CommittingConsumer};
use mamochi_common::kafka_metrics::KafkaMetrics;
use mamochi_common::ops::{self, Ops, Readiness};
use mamochi_common::shutdown::Shutdown;
use mamochi_common::{db, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::DeadLetters;
use mamochi_events::runner::{Backoff, Runner};
use mamochi_events::topics::{CART_ALARMS, CART_STOCK, CART_TRACKING, DEAD_LETTERS, EMAIL_REQUESTS, SALES, STOCK};
use mamochi_events::StockEvent;
use rdkafka::consumer::Consumer;

use crate::intake;
use crate::metrics::Metrics;
use crate::outbox::Relay;
use crate::publisher::OutboxPublisher;
use crate::restock::RestockHandler;
use crate::sales::{SaleApplier, StockRules};
use crate::tracking::profiles::Profiles;
use crate::tracking::{self, Tracker};

/// Consumer group of the sales runner.
pub const SALES_GROUP: &str = "distributor";
/// Consumer group of the stock runner.
pub const STOCK_GROUP: &str = "distributor-stock";
/// Consumer group of the cart tracking runner.
pub const TRACKING_GROUP: &str = tracking::TRACKING_GROUP;

/// A distributor ready to run.
pub struct Distributor {
    sales_consumer: CommittingConsumer,
    stock_consumer: CommittingConsumer,
    tracking_consumer: Arc<CommittingConsumer>,
    sales_runner: Runner,
    stock_runner: Runner,
    tracking_runner: Runner,
    tracker: Tracker,
    tracking_max_batch: usize,
    sales: SaleApplier,
    max_batch: usize,
    restock: RestockHandler,
    relay: Relay,
    server: actix_web::dev::Server,
    ops_port: u16,
    readiness: Readiness,
}

impl std::fmt::Debug for Distributor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distributor").field("ops_port", &self.ops_port).finish_non_exhaustive()
    }
}

impl Distributor {
    /// Connects everything and binds the operational endpoints; consuming
    /// starts with [`Distributor::run_until_stopped`].
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        settings.refuse_builtin_secrets()?;
        let clock = Clock::from_settings(&settings.time).context("while reading the time settings")?;
        let pool = db::pool(&settings.database).context("while building the database pool")?;
        let metrics = Metrics::new().context("while registering metrics")?;
        let rules = StockRules {
            initial_stock: settings.distributor.initial_stock,
            restock_quantity: settings.distributor.restock_quantity,
            low_stock_threshold: settings.distributor.low_stock_threshold,
        };

        let admin = kafka::admin(&settings.kafka).context("while creating the Kafka admin client")?;
        kafka::ensure_topics(
            &admin,
            &[
                SALES.info.spec(),
                STOCK.info.spec(),
                EMAIL_REQUESTS.info.spec(),
                CART_STOCK.info.spec(),
                CART_TRACKING.info.spec(),
                CART_ALARMS.info.spec(),
                DEAD_LETTERS.spec(),
            ],
        )
        .await
        .context("while ensuring the distributor's topics")?;
        // One producer for the process: derived events and dead letters alike.
        let producer = kafka::producer(&settings.kafka, "distributor").context("while creating the Kafka producer")?;
        let kafka_metrics = KafkaMetrics::new(&metrics.registry).context("while registering Kafka metrics")?;
        let codec = Arc::new(EventCodec::new(&settings.registry.url).measured(&kafka_metrics));
        let publisher =
            OutboxPublisher { producer: producer.clone(), codec: codec.clone(), metrics: kafka_metrics.clone() };
        let relay = Relay::new(pool.clone(), publisher, metrics.clone());

        let consumer = |group: &str, role: &str| {
            kafka::measured_consumer(&settings.kafka, &settings.kafka.group(group), role, &kafka_metrics)
        };
        let sales_consumer = consumer(SALES_GROUP, "distributor-sales").context("while creating the sales consumer")?;
        sales_consumer.subscribe(&[SALES.name()]).context("while subscribing to sales")?;
        let stock_consumer = consumer(STOCK_GROUP, "distributor-stock").context("while creating the stock consumer")?;
        stock_consumer.subscribe(&[STOCK.name()]).context("while subscribing to stock events")?;
        let tracking_consumer =
            consumer(TRACKING_GROUP, "distributor-tracking").context("while creating the tracking consumer")?;
        tracking_consumer.subscribe(&[CART_TRACKING.name()]).context("while subscribing to cart tracking")?;
        let runner = |group: &str| Runner {
            codec: codec.clone(),
            dead_letters: DeadLetters::new(producer.clone(), group).measured(&kafka_metrics),
            backoff: Backoff::default(),
            metrics: kafka_metrics.clone(),
        };

        let readiness = Readiness::default();
        let ops = Ops { service: "distributor", readiness: readiness.clone(), registry: metrics.registry.clone() };
        let (server, ops_port) = ops::serve(&settings.distributor.ops_listen, ops)
            .with_context(|| format!("while binding {}", settings.distributor.ops_listen))?;
        let tracker = Tracker {
            pool: pool.clone(),
            clock,
            metrics: metrics.clone(),
            relay: relay.clone(),
            settings: settings.tracking.clone(),
            profiles: Profiles::default(),
        };
        Ok(Self {
            sales_consumer,
            stock_consumer,
            tracking_consumer: Arc::new(tracking_consumer),
            sales_runner: runner(SALES_GROUP),
            stock_runner: runner(STOCK_GROUP),
            tracking_runner: runner(TRACKING_GROUP),
            tracker,
            tracking_max_batch: settings.tracking.max_batch,
            sales: SaleApplier { pool: pool.clone(), clock, metrics: metrics.clone(), rules, relay: relay.clone() },
            max_batch: settings.distributor.max_batch,
            restock: RestockHandler { pool, relay: relay.clone(), clock, metrics, rules },
            relay,
            server,
            ops_port,
            readiness,
        })
    }

    /// Port of /healthz, /readyz and /metrics.
    pub fn ops_port(&self) -> u16 {
        self.ops_port
    }

    /// Applies sales, stock and tracking events (and checks for silent
    /// carts) until `shutdown` is cancelled, then commits what every consumer
    /// finished, relays the outbox one last time and stops the operational
    /// server.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let Self {
            sales_consumer,
            stock_consumer,
            tracking_consumer,
            sales_runner,
            stock_runner,
            tracking_runner,
            tracker,
            tracking_max_batch,
            sales,
            max_batch,
            restock,
            relay,
            server,
            readiness,
            ..
        } = self;
        let server_handle = server.handle();
        let server_task = tokio::spawn(server);
        // Ready once the database answers and every consumer has its partitions.
        let database = match sales.pool.get().await {
            Ok(_) => Some(&readiness),
            Err(error) => {
                tracing::warn!(%error, "database not reachable yet; not ready");
                None
            }
        };
        tracker.refresh_open_incidents().await;
        tracing::info!(max_batch, tracking_max_batch, "distributor running");
        // If one consumer fails the others are stopped too, so none is left
        // consuming alone. The relay stops only after all of them (and the
        // silence timer), so their last commits are produced before the
        // process exits.
        let stop_both = shutdown.child_token();
        let stop_relay = Shutdown::new();
        let sales_loop = async {
            intake::run(&sales_consumer, &sales_runner, &sales, max_batch, &stop_both).await;
            stop_both.cancel();
        };
        let stock_loop = async {
            let result = stock_runner.run::<StockEvent, _>(&stock_consumer, &restock, &stop_both).await;
            stop_both.cancel();
            result.context("while consuming stock events")
        };
        let tracking_loop = async {
            let result =
                tracking::intake::run(&tracking_consumer, &tracking_runner, &tracker, tracking_max_batch, &stop_both)
                    .await;
            stop_both.cancel();
            result.context("while consuming cart tracking events")
        };
        let silence_loop = tracker.run_silence_checks(&stop_both);
        let consumers = async {
            let (_, stock_result, tracking_result, ()) =
                tokio::join!(sales_loop, stock_loop, tracking_loop, silence_loop);
            stop_relay.cancel();
            stock_result.and(tracking_result)
        };
        // Boxed: the joined loops are a large future, and a debug build's
        // poll frames would hold it on a tokio worker's 2 MiB stack.
        let (consumers_result, ()) = kafka::ready_when_assigned(
            database,
            &[&sales_consumer, &stock_consumer, &tracking_consumer],
            &shutdown,
            Box::pin(async { tokio::join!(consumers, relay.run(&stop_relay)) }),
        )
        .await;
        server_handle.stop(true).await;
        server_task.await.context("while joining the operational server")?.context("while serving /metrics")?;
        consumers_result?;
        tracing::info!("distributor stopped");
        Ok(())
    }
}
