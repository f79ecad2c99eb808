//! Samples consumer lag every 250 ms while the load stages run: for each
//! watched group, the topic's high watermarks minus the group's committed
//! offsets, summed over partitions.
//!
//! This is the broker's view, the same an operator's `kafka-consumer-groups
//! --describe` shows, so it needs nothing from the services. The services
//! commit stored offsets in the background every second, so a group that
//! keeps up still shows up to about one second of records as lag; a backlog
//! is lag that keeps growing across samples.
//!
//! librdkafka's offset and watermark calls block, so sampling runs on a
//! thread of its own and never stalls the load generator's runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use mamochi_common::config::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::results::LagSample;

/// How often lag is read.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// The stage label of samples taken before the first stage is named.
pub const BEFORE_LOAD: &str = "before load";
/// Longest a single broker call may take before the sample is skipped.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A group to watch on one topic.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Short name for the report (`accounting`).
    pub label: String,
    /// Full group id (with the run's prefix).
    pub group: String,
    pub topic: String,
    pub partitions: i32,
}

/// The running sampler; [`LagSampler::stop`] returns what it saw.
#[derive(Debug)]
pub struct LagSampler {
    stop: Arc<AtomicBool>,
    stage: Arc<Mutex<String>>,
    thread: JoinHandle<Vec<LagSample>>,
}

impl LagSampler {
    /// Starts sampling; times are seconds since `epoch`.
    pub fn start(kafka: &KafkaSettings, watched: Vec<Watched>, epoch: Instant) -> anyhow::Result<Self> {
        let mut clients = Vec::with_capacity(watched.len());
        for target in watched {
            // A consumer that never subscribes: it only asks the group
            // coordinator for the group's committed offsets, without joining.
            let consumer: BaseConsumer = mamochi_common::kafka::client_config(kafka, "bench-lag")
                .set("group.id", &target.group)
                .set("enable.auto.commit", "false")
                .create()
                .context("while creating the lag reader")?;
            clients.push((target, consumer));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stage = Arc::new(Mutex::new(String::from(BEFORE_LOAD)));
        let thread = {
            let (stop, stage) = (stop.clone(), stage.clone());
            std::thread::Builder::new()
                .name("bench-lag".into())
                .spawn(move || sample_until(&clients, &stop, &stage, epoch))
                .context("while starting the lag sampler")?
        };
        Ok(Self { stop, stage, thread })
    }

    /// Labels the samples taken from now on.
    pub fn set_stage(&self, stage: &str) {
        *self.stage.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = stage.to_string();
    }

    pub fn stop(self) -> Vec<LagSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn sample_until(
    clients: &[(Watched, BaseConsumer)],
    stop: &AtomicBool,
    stage: &Mutex<String>,
    epoch: Instant,
) -> Vec<LagSample> {
    let mut samples = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let label = stage.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for (target, consumer) in clients {
            if let Some(lag) = lag_of(consumer, target) {
                samples.push(LagSample {
                    t_s: epoch.elapsed().as_secs_f64(),
                    stage: label.clone(),
                    group: target.label.clone(),
                    topic: target.topic.clone(),
                    lag,
                });
            }
        }
        next += INTERVAL;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // A slow broker call: skip the missed ticks instead of bursting.
            next = now;
        }
    }
    samples
}

/// Sum over partitions of (high watermark − committed offset); `None` if
/// the broker did not answer in time.
fn lag_of(consumer: &BaseConsumer, target: &Watched) -> Option<i64> {
    let mut wanted = TopicPartitionList::new();
    for partition in 0..target.partitions {
        wanted.add_partition(&target.topic, partition);
    }
    let committed = consumer.committed_offsets(wanted, CALL_TIMEOUT).ok()?;
    let mut total = 0;
    for partition in 0..target.partitions {
        let (_, high) = consumer.fetch_watermarks(&target.topic, partition, CALL_TIMEOUT).ok()?;
        let done = match committed.find_partition(&target.topic, partition).map(|element| element.offset()) {
            Some(Offset::Offset(offset)) => offset,
            // No commit yet: the group was started at the end, so nothing is owed.
            _ => high,
        };
        total += lag(high, done);
    }
    Some(total)
}

/// Records a partition owes: never negative (a commit can land between the
/// two reads and overtake the watermark we read first).
pub fn lag(high_watermark: i64, committed: i64) -> i64 {
    (high_watermark - committed).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_what_is_left_and_never_negative() {
        assert_eq!(lag(1_000, 400), 600);
        assert_eq!(lag(1_000, 1_000), 0);
        assert_eq!(lag(1_000, 1_003), 0);
    }
}
