//! Kafka clients configured the one way the platform uses them.
//!
//! Producers are idempotent with `acks=all`: a record the broker acknowledges
//! is on every in-sync replica, and a retry after a lost acknowledgement never
//! writes it twice. Consumers never store an offset on their own
//! (`enable.auto.offset.store=false`): the caller stores it after the record's
//! effect is durable, and the background auto-commit only ever commits offsets
//! stored that way. That gives at-least-once delivery; a record processed but
//! not yet committed when the process dies is delivered again, so effects must
//! be idempotent. On partition revocation and on shutdown the stored offsets
//! are committed synchronously, which keeps re-delivery to crashes only.
//! `max.poll.interval.ms` is a setting (`kafka.max_poll_interval_ms`): the
//! consumer loops keep polling while they retry, so it only has to exceed
//! one handler call.
//!
//! A consumer's context also records its group membership: the first
//! partition assignment (possibly empty, when its group has more members than
//! partitions) resolves [`CommitOnRevoke::first_assignment`], which services
//! wait on before raising readiness ([`ready_when_assigned`]), and a measured
//! consumer keeps `mamochi_kafka_assigned_partitions` equal to the partitions
//! it holds after every assignment and revocation.
//!
//! Every client (producer, consumer, admin) is built from [`client_config`],
//! which adds TLS and SASL when `kafka.security_protocol` is `sasl_ssl`; a
//! service's own principal comes from `KafkaSettings::for_service`.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::config::{KafkaSecurity, KafkaSettings};
use crate::kafka_metrics::KafkaMetrics;
use crate::ops::Readiness;
use crate::shutdown::Shutdown;

/// How often librdkafka reports statistics to measured consumers; the lag
/// gauges are this fresh.
const STATISTICS_INTERVAL_MS: u32 = 2_000;

/// A consumer whose stored offsets are committed before its partitions go away.
pub type CommittingConsumer = StreamConsumer<CommitOnRevoke>;

/// Base configuration shared by every client: where the cluster is, who we
/// are, and how we prove it. Every client the platform builds starts here, so
/// none can reach a secure cluster in plaintext or without its principal.
pub fn client_config(settings: &KafkaSettings, role: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("client.id", format!("{}-{role}", settings.client_id));
    apply_security(&mut config, settings);
    config
}

/// TLS and SASL settings for `kafka.security_protocol = "sasl_ssl"`. The
/// broker's certificate is checked against `ssl_ca_location` and its name
/// against the bootstrap host (librdkafka's default `https` identification).
fn apply_security(config: &mut ClientConfig, settings: &KafkaSettings) {
    match settings.security_protocol {
        KafkaSecurity::Plaintext => {}
        KafkaSecurity::SaslSsl => {
            config.set("security.protocol", "sasl_ssl").set("sasl.mechanisms", &settings.sasl_mechanism);
            if let Some(username) = &settings.sasl_username {
                config.set("sasl.username", username);
            }
            if let Some(password) = &settings.sasl_password {
                config.set("sasl.password", password.expose_secret());
            }
            if let Some(ca) = &settings.ssl_ca_location {
                config.set("ssl.ca.location", ca);
            }
        }
    }
}

/// Idempotent, `acks=all` producer settings.
pub fn producer_config(settings: &KafkaSettings, role: &str) -> ClientConfig {
    let mut config = client_config(settings, role);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", settings.message_timeout_ms.to_string())
        .set("linger.ms", settings.linger_ms.to_string())
        .set("compression.type", "lz4");
    config
}

/// One producer per process: it is thread-safe and batches across callers.
pub fn producer(settings: &KafkaSettings, role: &str) -> Result<FutureProducer, KafkaError> {
    producer_config(settings, role).create()
}

/// Consumer-group settings with manual offset storage (see the module doc).
pub fn consumer_config(settings: &KafkaSettings, group_id: &str, role: &str) -> ClientConfig {
    let mut config = client_config(settings, role);
    config
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // A member that died without leaving is noticed in 10 s (default
        // 45 s), so its partitions move to a live member sooner.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000")
        // Retries keep polling (see `mamochi_events::poller`), so only one
        // handler call has to fit in this; configurable so tests can prove it.
        .set("max.poll.interval.ms", settings.max_poll_interval_ms.to_string())
        // Read only records of committed transactions; harmless when none are used.
        .set("isolation.level", "read_committed");
    config
}

/// A consumer in `group_id` that commits its stored offsets on revocation.
pub fn consumer(settings: &KafkaSettings, group_id: &str, role: &str) -> Result<CommittingConsumer, KafkaError> {
    consumer_config(settings, group_id, role).create_with_context(CommitOnRevoke::default())
}

/// Like [`consumer`], and also reports its lag and rebalances to `metrics`.
pub fn measured_consumer(
    settings: &KafkaSettings,
    group_id: &str,
    role: &str,
    metrics: &KafkaMetrics,
) -> Result<CommittingConsumer, KafkaError> {
    let mut config = consumer_config(settings, group_id, role);
    config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
    let context = CommitOnRevoke { measured: Some((group_id.to_string(), metrics.clone())), ..Default::default() };
    config.create_with_context(context)
}

/// Commits what has been stored, synchronously; the last step before a
/// consumer is dropped on shutdown.
pub fn commit_stored_offsets<C: ConsumerContext>(consumer: &StreamConsumer<C>) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        // Nothing stored since the last commit: nothing to do.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => tracing::warn!(%error, "could not commit stored offsets"),
    }
}

/// Makes `group` start at the current end of `topic`: commits, for every
/// partition, the high watermark as the group's offset. A new deployment (or a
/// test) uses it to skip what was written before it existed.
pub fn start_group_at_end(settings: &KafkaSettings, group: &str, topic: &str) -> Result<(), KafkaError> {
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = consumer_config(settings, group, "offset-init").create()?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut positions = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|topic| topic.partitions()) {
        let (_, high) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
        positions.add_partition_offset(topic, partition.id(), Offset::Offset(high))?;
    }
    consumer.commit(&positions, CommitMode::Sync)
}

/// Runs `work` (the loops that poll `consumers`) and, beside it, raises
/// `readiness` once every one of `consumers` has received its first partition
/// assignment, i.e. has joined its group. Rebalance callbacks run inside the
/// consumers' polls, which is why the wait runs beside the loops rather than
/// before them. Readiness is lowered when `work` ends; it is never raised if
/// `shutdown` or the end of `work` comes first, or if `readiness` is `None`
/// (a service that found a dependency missing at start stays unready).
pub async fn ready_when_assigned<T>(
    readiness: Option<&Readiness>,
    consumers: &[&CommittingConsumer],
    shutdown: &Shutdown,
    work: impl std::future::Future<Output = T>,
) -> T {
    let stop_waiting = shutdown.child_token();
    let work = async {
        let output = work.await;
        stop_waiting.cancel();
        output
    };
    let raise = async {
        let Some(readiness) = readiness else { return };
        let all_assigned = async {
            for consumer in consumers {
                consumer.context().first_assignment().await;
            }
        };
        tokio::select! {
            () = all_assigned => {
                tracing::info!(consumers = consumers.len(), "every consumer has its partition assignment; ready");
                readiness.set(true);
            }
            () = stop_waiting.cancelled() => {}
        }
    };
    let (output, ()) = tokio::join!(work, raise);
    if let Some(readiness) = readiness {
        readiness.set(false);
    }
    output
}

/// Consumer context that commits stored offsets synchronously before a
/// rebalance takes partitions away, so the next owner starts where we stopped,
/// and signals the consumer's first assignment. A measured one also reports
/// lag (from librdkafka's statistics), rebalances and the partitions it holds
/// for its group.
#[derive(Debug, Clone)]
pub struct CommitOnRevoke {
    measured: Option<(String, KafkaMetrics)>,
    /// `true` from the first assignment on; never lowered, since a consumer
    /// that has joined once stays a member through later rebalances.
    assigned: Arc<watch::Sender<bool>>,
}

impl Default for CommitOnRevoke {
    fn default() -> Self {
        Self { measured: None, assigned: Arc::new(watch::Sender::new(false)) }
    }
}

impl CommitOnRevoke {
    /// Resolves once the consumer has received its first partition assignment
    /// (at once if it already has).
    pub async fn first_assignment(&self) {
        let mut assigned = self.assigned.subscribe();
        // The sender lives in `self`, so it outlives this wait: the only error
        // (sender dropped) cannot happen.
        let _ = assigned.wait_for(|assigned| *assigned).await;
    }

    /// Whether the consumer has received a partition assignment yet.
    pub fn has_been_assigned(&self) -> bool {
        *self.assigned.borrow()
    }
}

impl ClientContext for CommitOnRevoke {
    fn stats(&self, statistics: Statistics) {
        if let Some((group, metrics)) = &self.measured {
            metrics.record_lag(group, &statistics);
        }
    }
}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Some((group, metrics)) = &self.measured {
            let kind = match rebalance {
                Rebalance::Assign(_) => "assign",
                Rebalance::Revoke(_) => "revoke",
                Rebalance::Error(_) => "error",
            };
            metrics.rebalances.with_label_values(&[group.as_str(), kind]).inc();
            if let Rebalance::Revoke(partitions) = rebalance {
                // A partition that moved away is no longer ours to report.
                for element in partitions.elements() {
                    let partition = element.partition().to_string();
                    let _ = metrics.consumer_lag.remove_label_values(&[
                        group.as_str(),
                        element.topic(),
                        partition.as_str(),
                    ]);
                }
            }
        }
        if let Rebalance::Revoke(partitions) = rebalance {
            tracing::info!(partitions = partitions.count(), "partitions revoked; committing stored offsets");
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(error) => tracing::warn!(%error, "commit on revoke failed"),
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Some((group, metrics)) = &self.measured {
            // The assignment as it stands after the change, which is right for
            // eager (everything revoked, then the new set) and cooperative
            // (increments) protocols alike.
            match consumer.assignment() {
                Ok(assignment) => {
                    let held = i64::try_from(assignment.count()).unwrap_or(i64::MAX);
                    metrics.assigned_partitions.with_label_values(&[group.as_str()]).set(held);
                }
                Err(error) => tracing::warn!(%error, "could not read the consumer's assignment"),
            }
        }
        if let Rebalance::Assign(partitions) = rebalance {
            if !self.has_been_assigned() {
                tracing::info!(partitions = partitions.count(), "first partition assignment");
            }
            self.assigned.send_replace(true);
        }
    }
}

/// A topic as the platform wants it to exist.
#[derive(Debug, Clone)]
pub struct TopicSpec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    /// `None` takes the cluster's `default.replication.factor`, so the same
    /// code creates RF 1 topics on a one-node stack and RF 3 on three nodes.
    pub replication: Option<i32>,
    pub config: Vec<(&'a str, String)>,
}

/// Admin client for topic management.
pub fn admin(settings: &KafkaSettings) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    client_config(settings, "admin").create()
}

/// Creates the topics that do not exist yet; existing ones are left alone.
pub async fn ensure_topics(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[TopicSpec<'_>],
) -> Result<(), KafkaError> {
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|spec| {
            let mut topic =
                NewTopic::new(spec.name, spec.partitions, TopicReplication::Fixed(spec.replication.unwrap_or(-1)));
            for (key, value) in &spec.config {
                topic = topic.set(key, value);
            }
            topic
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            // On a cluster with ACLs only the operator creates topics (the
            // secure stack runs `mamochi topics` as its admin); a service
            // principal is refused even for a topic that exists, and its
            // first read or write names any topic truly missing.
            Err((topic, RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed)) => {
                tracing::debug!(%topic, "not allowed to create topics; relying on the operator's");
            }
            Err((topic, code)) => {
                tracing::error!(%topic, ?code, "topic creation failed");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}
