//! The approval service: consumes registration forms in batches — always the
//! paid lane (partition 0) first — and staff reviews; decides each form by the
//! rules in [`rules`] (a batch in order, [`sequence`]); on approval creates
//! the member, their cart and an API key, and requests the credentials email;
//! on rejection requests an email with the reason.
//!
//! Guarantee: at least once, exactly once in effect. A batch's dedupe
//! records, decisions, members and carts commit in one transaction; the
//! decisions' events are then published with derived ids and each form marked
//! published once all its events are acknowledged; a redelivered form
//! finishes an interrupted publication. The API key exists in
//! clear text only in memory: the database keeps its SHA-256, plus the key
//! sealed with the email key until its email request is acknowledged.

pub mod credentials;
pub mod emails;
pub mod handlers;
pub mod intake;
pub mod lanes;
pub mod metrics;
pub mod publisher;
pub mod rules;
pub mod sequence;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mamochi_common::clock::Clock;
use mamochi_common::kafka_metrics::KafkaMetrics;
use mamochi_common::ops::{self, Ops, Readiness};
use mamochi_common::seal::Sealer;
use mamochi_common::shutdown::Shutdown;
use mamochi_common::{db, kafka, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::dead_letter::DeadLetters;
use mamochi_events::publish::Publisher as KafkaPublisher;
use mamochi_events::runner::{Backoff, Runner};
use mamochi_events::topics;
use mamochi_events::RegistrationReviewed;
use rdkafka::consumer::Consumer;

use crate::handlers::Approval;
use crate::metrics::Metrics;
use crate::publisher::DecisionPublisher;
use crate::store::Policy;

/// Consumer groups of this service.
pub const FORMS_GROUP: &str = "approval";
pub const REVIEWS_GROUP: &str = "approval-reviews";

/// Runs the service until `shutdown` is cancelled.
pub async fn run(settings: &Settings, shutdown: Shutdown) -> anyhow::Result<()> {
    settings.refuse_builtin_secrets()?;
    let clock = Clock::from_settings(&settings.time).context("while reading time settings")?;
    let pool = db::pool(&settings.database).context("while creating the database pool")?;
    let producer = kafka::producer(&settings.kafka, "approval").context("while creating the producer")?;
    let metrics = Metrics::new().context("while registering metrics")?;
    let kafka_metrics = KafkaMetrics::new(&metrics.registry).context("while registering Kafka metrics")?;
    let codec = Arc::new(EventCodec::new(&settings.registry.url).measured(&kafka_metrics));
    let admin = kafka::admin(&settings.kafka).context("while creating the admin client")?;
    kafka::ensure_topics(&admin, &topics::all_specs()).await.context("while creating topics")?;
    let sealer = Sealer::from_hex(&settings.secrets.email_seal_key).context("while reading secrets.email_seal_key")?;

    let readiness = Readiness::default();
    let (ops_server, ops_port) = ops::serve(
        &settings.approval.ops_listen,
        Ops { service: "approval", readiness: readiness.clone(), registry: metrics.registry.clone() },
    )
    .context("while binding the ops endpoints")?;
    let ops_handle = ops_server.handle();
    tokio::spawn(ops_server);
    tracing::info!(ops_port, "approval service starting");

    let approval = Approval {
        pool: pool.clone(),
        policy: Policy { initial_stock: settings.distributor.initial_stock, sealer },
        publisher: Arc::new(DecisionPublisher {
            pool,
            kafka: KafkaPublisher::new(producer.clone(), codec.clone(), kafka_metrics.clone()),
            public_url: settings.gateway.public_url.clone(),
        }),
        clock,
        metrics,
    };
    let runner = Runner {
        codec,
        dead_letters: DeadLetters::new(producer, settings.kafka.group(FORMS_GROUP)).measured(&kafka_metrics),
        backoff: Backoff { first: Duration::from_millis(100), max: Duration::from_secs(5) },
        metrics: kafka_metrics.clone(),
    };
    let forms =
        kafka::measured_consumer(&settings.kafka, &settings.kafka.group(FORMS_GROUP), "approval", &kafka_metrics)
            .context("while creating the forms consumer")?;
    let forms = Arc::new(forms);
    forms.subscribe(&[topics::REGISTRATIONS.name()]).context("while subscribing to registrations")?;
    let reviews_group = settings.kafka.group(REVIEWS_GROUP);
    let reviews = kafka::measured_consumer(&settings.kafka, &reviews_group, "approval-reviews", &kafka_metrics)
        .context("while creating the reviews consumer")?;
    reviews.subscribe(&[topics::REGISTRATION_REVIEWS.name()]).context("while subscribing to reviews")?;

    let consumers = [&*forms, &reviews];
    let (forms_result, reviews_result) = kafka::ready_when_assigned(Some(&readiness), &consumers, &shutdown, async {
        tokio::join!(
            lanes::run(forms.clone(), &runner, &approval, lanes::MAX_BATCH, &shutdown),
            runner.run::<RegistrationReviewed, _>(&reviews, &approval, &shutdown),
        )
    })
    .await;
    ops_handle.stop(true).await;
    forms_result.context("registrations consumer")?;
    reviews_result.context("reviews consumer")?;
    tracing::info!("approval service stopped");
    Ok(())
}
