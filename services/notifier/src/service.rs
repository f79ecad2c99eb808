//! Wiring: settings in, a running notifier out (consumer, handler, SMTP
//! transport, operational endpoints), and an orderly stop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mamochi_common::clock::Clock;
use mamochi_common::kafka::{self, CommittingConsumer};
use mamochi_common::kafka_metrics::KafkaMetrics;
use mamochi_common::ops::{self, Ops, Readiness};
use mamochi_common::seal::Sealer;
use mamochi_common::shutdown::Shutdown;
use mamochi_common::{db, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::DeadLetters;
use mamochi_events::runner::{Backoff, Runner};
use mamochi_events::topics::{self, DEAD_LETTERS, EMAIL_REQUESTS};
use mamochi_events::EmailRequested;
use rdkafka::consumer::Consumer;

use crate::budget::RetryBudget;
use crate::handler::EmailHandler;
use crate::mailer::SmtpMailer;
use crate::metrics::Metrics;

/// Consumer group of the notifier.
pub const GROUP: &str = "notifier";

/// Retry pacing while SMTP (or the database) is down.
pub const BACKOFF: Backoff = Backoff { first: Duration::from_millis(200), max: Duration::from_secs(10) };

/// A notifier ready to run.
pub struct Notifier {
    consumer: CommittingConsumer,
    runner: Runner,
    handler: EmailHandler<SmtpMailer>,
    server: actix_web::dev::Server,
    ops_port: u16,
    readiness: Readiness,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("ops_port", &self.ops_port).finish_non_exhaustive()
    }
}

impl Notifier {
    /// Connects everything and binds the operational endpoints; consuming
    /// starts with [`Notifier::run_until_stopped`].
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        settings.refuse_builtin_secrets()?;
        let clock = Clock::from_settings(&settings.time).context("while reading the time settings")?;
        let sealer = Sealer::from_hex(&settings.secrets.email_seal_key).context("while reading the email seal key")?;
        let mailer = SmtpMailer::from_settings(&settings.smtp, clock).context("while configuring SMTP")?;
        let pool = db::pool(&settings.database).context("while building the database pool")?;
        let metrics = Metrics::new().context("while registering metrics")?;

        let admin = kafka::admin(&settings.kafka).context("while creating the Kafka admin client")?;
        kafka::ensure_topics(&admin, &[EMAIL_REQUESTS.info.spec(), DEAD_LETTERS.spec()])
            .await
            .context("while ensuring the notifier's topics")?;
        let producer = kafka::producer(&settings.kafka, GROUP).context("while creating the Kafka producer")?;
        let kafka_metrics = KafkaMetrics::new(&metrics.registry).context("while registering Kafka metrics")?;
        let consumer = kafka::measured_consumer(&settings.kafka, &settings.kafka.group(GROUP), GROUP, &kafka_metrics)
            .context("while creating the Kafka consumer")?;
        consumer.subscribe(&[topics::EMAIL_REQUESTS.name()]).context("while subscribing to email requests")?;
        let runner = Runner {
            codec: Arc::new(EventCodec::new(&settings.registry.url).measured(&kafka_metrics)),
            dead_letters: DeadLetters::new(producer, GROUP).measured(&kafka_metrics),
            backoff: BACKOFF,
            metrics: kafka_metrics,
        };

        let readiness = Readiness::default();
        let ops = Ops { service: "notifier", readiness: readiness.clone(), registry: metrics.registry.clone() };
        let (server, ops_port) = ops::serve(&settings.notifier.ops_listen, ops)
            .with_context(|| format!("while binding {}", settings.notifier.ops_listen))?;
        let budget = RetryBudget::from_settings(&settings.notifier);
        let handler = EmailHandler { pool, mailer, sealer, clock, metrics, budget };
        Ok(Self { consumer, runner, handler, server, ops_port, readiness })
    }

    /// Port of /healthz, /readyz and /metrics.
    pub fn ops_port(&self) -> u16 {
        self.ops_port
    }

    /// Sends email requests until `shutdown` is cancelled, then commits what
    /// it finished and stops the operational server.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let Self { consumer, runner, handler, server, readiness, .. } = self;
        let server_handle = server.handle();
        let server_task = tokio::spawn(server);
        // Ready once the database answers and the consumer has its partitions.
        let database = match handler.pool.get().await {
            Ok(_) => Some(&readiness),
            Err(error) => {
                tracing::warn!(%error, "database not reachable yet; not ready");
                None
            }
        };
        tracing::info!(group = GROUP, topic = EMAIL_REQUESTS.name(), "notifier running");
        let consumed = kafka::ready_when_assigned(database, &[&consumer], &shutdown, async {
            runner.run::<EmailRequested, _>(&consumer, &handler, &shutdown).await
        })
        .await;
        server_handle.stop(true).await;
        server_task.await.context("while joining the operational server")?.context("while serving /metrics")?;
        consumed.context("while consuming email requests")?;
        tracing::info!("notifier stopped");
        Ok(())
    }
}
