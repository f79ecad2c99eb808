//! The Kafka-side metrics every service exports under the same names, so one
//! dashboard query covers all of them (Prometheus's `job` label tells the
//! services apart): records produced and consumed by topic, produce and
//! handling latency, consumer lag by group, topic and partition, rebalances,
//! partitions each process's consumer of a group holds,
//! dead letters, and the schema-registry client's cache behaviour.
//!
//! Each service registers one [`KafkaMetrics`] in its own registry and hands
//! clones to its producer wrapper, codec, dead-letter writer, consumer loop
//! and consumer context. Labels are bounded: topics and groups come from the
//! catalog and the service's code, partitions from the topic's fixed count,
//! reasons from a fixed set.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use rdkafka::statistics::Statistics;

/// Latency buckets shared by the produce and handle histograms (seconds).
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Counters, gauges and histograms of one service's Kafka clients.
#[derive(Debug, Clone)]
pub struct KafkaMetrics {
    /// Records acknowledged by Kafka, by topic.
    pub produced: IntCounterVec,
    /// Records not encoded or not acknowledged, by topic.
    pub produce_failures: IntCounterVec,
    /// Encode to `acks=all` acknowledgement, by topic.
    pub produce_seconds: HistogramVec,
    /// Records taken from a topic by a consumer loop.
    pub consumed: IntCounterVec,
    /// Record received to its effect committed, by topic.
    pub handle_seconds: HistogramVec,
    /// Records behind the high watermark, by group, topic and partition.
    pub consumer_lag: IntGaugeVec,
    /// Partition assignments and revocations, by group.
    pub rebalances: IntCounterVec,
    /// Partitions this process's consumer of a group holds now, by group.
    pub assigned_partitions: IntGaugeVec,
    /// Records parked in the dead-letter topic, by source topic and reason.
    pub dead_letters: IntCounterVec,
    /// Schema look-ups by the registry client, by kind and cache result.
    pub registry_lookups: IntCounterVec,
}

impl KafkaMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let counter = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        let histogram = |name: &str, help: &str| -> prometheus::Result<HistogramVec> {
            let histogram =
                HistogramVec::new(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()), &["topic"])?;
            registry.register(Box::new(histogram.clone()))?;
            Ok(histogram)
        };
        let produced = counter(
            "mamochi_kafka_records_produced_total",
            "Records Kafka acknowledged (acks=all), by topic.",
            &["topic"],
        )?;
        let produce_failures = counter(
            "mamochi_kafka_produce_failures_total",
            "Records that could not be encoded or that Kafka did not acknowledge, by topic.",
            &["topic"],
        )?;
        let produce_seconds = histogram(
            "mamochi_kafka_produce_seconds",
            "Seconds from encoding a record to Kafka's acks=all acknowledgement, by topic.",
        )?;
        let consumed = counter(
            "mamochi_kafka_records_consumed_total",
            "Records a consumer loop took from a topic (decoded or parked), by topic.",
            &["topic"],
        )?;
        let handle_seconds = histogram(
            "mamochi_kafka_handle_seconds",
            "Seconds from a record reaching the consumer loop to its effect committed (database time included), by topic.",
        )?;
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "mamochi_kafka_consumer_lag",
                "Records between a consumer group's committed offset and the partition's high watermark, by group, topic and partition.",
            ),
            &["group", "topic", "partition"],
        )?;
        registry.register(Box::new(consumer_lag.clone()))?;
        let rebalances = counter(
            "mamochi_kafka_rebalances_total",
            "Consumer-group rebalances seen by this service, by group and kind (assign, revoke, error).",
            &["group", "kind"],
        )?;
        let assigned_partitions = IntGaugeVec::new(
            Opts::new(
                "mamochi_kafka_assigned_partitions",
                "Partitions currently assigned to this process's consumer of a group, by group (updated on every assignment and revocation).",
            ),
            &["group"],
        )?;
        registry.register(Box::new(assigned_partitions.clone()))?;
        let dead_letters = counter(
            "mamochi_kafka_dead_letters_total",
            "Records parked in the dead-letter topic, by source topic and reason.",
            &["topic", "reason"],
        )?;
        let registry_lookups = counter(
            "mamochi_registry_client_lookups_total",
            "Schema look-ups by the registry client, by kind (encode, decode) and result (hit: served from the cache, miss: asked the registry).",
            &["kind", "result"],
        )?;
        Ok(Self {
            produced,
            produce_failures,
            produce_seconds,
            consumed,
            handle_seconds,
            consumer_lag,
            rebalances,
            assigned_partitions,
            dead_letters,
            registry_lookups,
        })
    }

    /// Metrics in a registry nobody scrapes: for tests and tools that need
    /// the types but not the export.
    pub fn unexported() -> Self {
        Self::new(&Registry::new()).expect("fresh registry has no name clashes")
    }

    /// Updates the lag gauges of `group` from librdkafka's statistics (sent
    /// every `statistics.interval.ms`). Partitions without a known lag yet
    /// (-1) and librdkafka's internal "unassigned" partition are skipped.
    pub fn record_lag(&self, group: &str, statistics: &Statistics) {
        for (topic, topic_stats) in &statistics.topics {
            for (partition, partition_stats) in &topic_stats.partitions {
                if *partition < 0 || partition_stats.consumer_lag < 0 {
                    continue;
                }
                self.consumer_lag
                    .with_label_values(&[group, topic.as_str(), partition.to_string().as_str()])
                    .set(partition_stats.consumer_lag);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_carries_help_and_the_platform_prefix() {
        let registry = Registry::new();
        let metrics = KafkaMetrics::new(&registry).expect("metrics");
        metrics.produced.with_label_values(&["sales"]).inc();
        metrics.produce_failures.with_label_values(&["sales"]).inc();
        metrics.produce_seconds.with_label_values(&["sales"]).observe(0.01);
        metrics.consumed.with_label_values(&["sales"]).inc();
        metrics.handle_seconds.with_label_values(&["sales"]).observe(0.01);
        metrics.consumer_lag.with_label_values(&["g", "sales", "0"]).set(3);
        metrics.rebalances.with_label_values(&["g", "assign"]).inc();
        metrics.assigned_partitions.with_label_values(&["g"]).set(2);
        metrics.dead_letters.with_label_values(&["sales", "corrupt_body"]).inc();
        metrics.registry_lookups.with_label_values(&["decode", "hit"]).inc();

        let families = registry.gather();

        assert_eq!(families.len(), 10);
        for family in families {
            assert!(family.name().starts_with("mamochi_"), "{}", family.name());
            assert!(!family.help().is_empty(), "{} has HELP", family.name());
        }
    }

    #[test]
    fn lag_comes_from_the_statistics_of_assigned_partitions_only() {
        let metrics = KafkaMetrics::unexported();
        let statistics: Statistics = serde_json::from_value(statistics_json()).expect("statistics parse");

        metrics.record_lag("accounting", &statistics);

        assert_eq!(metrics.consumer_lag.with_label_values(&["accounting", "sales", "0"]).get(), 42);
        let series: Vec<_> = prometheus::core::Collector::collect(&metrics.consumer_lag)
            .into_iter()
            .flat_map(|mut family| family.take_metric())
            .collect();
        assert_eq!(series.len(), 1, "partition -1 and unknown lag (-1) are skipped");
    }

    /// The smallest statistics document librdkafka's shape allows, with one
    /// assigned partition, one of unknown lag and the internal partition -1.
    fn statistics_json() -> serde_json::Value {
        let partition = |id: i32, lag: i64| {
            format!(
                r#"{{"partition": {id}, "broker": 1, "leader": 1, "desired": true, "unknown": false,
                "msgq_cnt": 0, "msgq_bytes": 0, "xmit_msgq_cnt": 0, "xmit_msgq_bytes": 0,
                "fetchq_cnt": 0, "fetchq_size": 0, "fetch_state": "active", "query_offset": 0,
                "next_offset": 0, "app_offset": 0, "stored_offset": 0, "stored_leader_epoch": 0,
                "commited_offset": 0, "committed_offset": 0, "committed_leader_epoch": 0,
                "eof_offset": 0, "lo_offset": 0, "hi_offset": 0, "ls_offset": 0,
                "consumer_lag": {lag}, "consumer_lag_stored": {lag}, "leader_epoch": 0,
                "txmsgs": 0, "txbytes": 0, "rxmsgs": 0, "rxbytes": 0, "msgs": 0,
                "rx_ver_drops": 0, "msgs_inflight": 0, "next_ack_seq": 0, "next_err_seq": 0,
                "acked_msgid": 0}}"#
            )
        };
        let window = r#"{"min":0,"max":0,"avg":0,"sum":0,"cnt":0,"stddev":0,"hdrsize":0,"p50":0,"p75":0,"p90":0,"p95":0,"p99":0,"p99_99":0,"outofrange":0}"#;
        let text = format!(
            r#"{{"name": "c", "client_id": "c", "type": "consumer", "ts": 0, "time": 0, "age": 0,
            "replyq": 0, "msg_cnt": 0, "msg_size": 0, "msg_max": 0, "msg_size_max": 0,
            "simple_cnt": 0, "metadata_cache_cnt": 0, "brokers": {{}}, "tx": 0, "tx_bytes": 0,
            "rx": 0, "rx_bytes": 0, "txmsgs": 0, "txmsg_bytes": 0, "rxmsgs": 0, "rxmsg_bytes": 0,
            "topics": {{"sales": {{"topic": "sales", "age": 0, "metadata_age": 0,
                "batchsize": {window}, "batchcnt": {window},
                "partitions": {{"0": {p0}, "1": {p1}, "-1": {internal}}}}}}}}}"#,
            p0 = partition(0, 42),
            p1 = partition(1, -1),
            internal = partition(-1, 7),
        );
        serde_json::from_str(&text).expect("fixture is JSON")
    }
}
