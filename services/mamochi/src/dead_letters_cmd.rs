//! `mamochi dead-letters list|replay`: what the consumers parked in the
//! dead-letter topic, and sending chosen records back once the cause is fixed.
//!
//! `list` reads the whole dead-letter topic (it is small: records no
//! consumer could handle, kept 30 days) without joining a group or committing
//! anything, and prints each record's dead-letter offset, when and why it was
//! parked, where it came from and which group parked it.
//!
//! `replay` produces the chosen records back to the partition they were read
//! from, with their original key, value and headers byte for byte (the
//! `mamochi.dlq.*` headers stay behind), through the platform's idempotent
//! `acks=all` producer, and prints where each landed. It is at-least-once
//! like everything else: replaying a record twice delivers it twice, and the
//! consumers' dedupe on event ids absorbs that (which is why their dedupe rows
//! outlive the dead-letter topic's retention; see [`crate::retention`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use mamochi_common::{kafka, Settings};
use mamochi_events::dead_letter::headers;
use mamochi_events::topics::DEAD_LETTERS;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

/// Longest wait for the broker's answer to one request (metadata, watermarks).
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the next record when more are known to be there.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// Prefix of the headers `DeadLetters::park` adds; never replayed.
const DEAD_LETTER_HEADER_PREFIX: &str = "mamochi.dlq.";

#[derive(Debug, clap::Args)]
pub struct DeadLettersArgs {
    #[command(subcommand)]
    command: DeadLettersCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DeadLettersCommand {
    /// Shows parked records, oldest first: offset, when, reason, error,
    /// source topic/partition@offset and the consumer group that parked it.
    List {
        /// Only records parked from this source topic.
        #[arg(long)]
        topic: Option<String>,
        /// Show at most this many records (the most recent ones).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Produces the chosen dead letters' original key and value bytes back to
    /// the topic and partition they came from, and prints where they landed.
    Replay {
        /// Dead-letter offset as `list` prints it (`OFFSET`, or
        /// `PARTITION:OFFSET` beyond partition 0); repeat for several.
        #[arg(long = "offset", required = true)]
        offsets: Vec<Position>,
    },
}

/// A record's place in the dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

impl FromStr for Position {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (partition, offset) = match text.split_once(':') {
            Some((partition, offset)) => (partition.parse().map_err(|_| format!("bad partition in {text:?}"))?, offset),
            None => (0, text),
        };
        let offset = offset.parse().map_err(|_| format!("bad offset in {text:?}"))?;
        if partition < 0 || offset < 0 {
            return Err(format!("{text:?} is negative"));
        }
        Ok(Self { partition, offset })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.partition == 0 {
            write!(f, "{}", self.offset)
        } else {
            write!(f, "{}:{}", self.partition, self.offset)
        }
    }
}

/// One record read back from the dead-letter topic.
#[derive(Debug, Clone)]
pub struct Parked {
    pub position: Position,
    /// The dead letter's own Kafka timestamp, in ms.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Every header in order, the `mamochi.dlq.*` ones first.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Parked {
    fn from_message(message: &impl Message) -> Self {
        let headers = message
            .headers()
            .map(|all| all.iter().map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec))).collect())
            .unwrap_or_default();
        Self {
            position: Position { partition: message.partition(), offset: message.offset() },
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }

    /// The first header named `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_deref())
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }

    pub fn source_topic(&self) -> Option<String> {
        self.header(headers::SOURCE_TOPIC)
    }

    pub fn source_partition(&self) -> Option<i32> {
        self.header(headers::SOURCE_PARTITION)?.parse().ok()
    }

    /// `topic/partition@offset` of the original record, `-` where unknown.
    pub fn source(&self) -> String {
        let part = |value: Option<String>| value.unwrap_or_else(|| "-".to_string());
        format!(
            "{}/{}@{}",
            part(self.source_topic()),
            part(self.header(headers::SOURCE_PARTITION)),
            part(self.header(headers::SOURCE_OFFSET))
        )
    }

    /// When it was parked: the park header, else the record's timestamp.
    pub fn parked_at(&self) -> String {
        self.header(headers::FAILED_AT_MS)
            .and_then(|ms| ms.parse::<i64>().ok())
            .or(self.timestamp_ms)
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map_or_else(|| "-".to_string(), |time| time.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
    }

    /// The record's own headers, as the source topic first carried them.
    fn original_headers(&self) -> OwnedHeaders {
        self.headers
            .iter()
            .filter(|(key, _)| !key.starts_with(DEAD_LETTER_HEADER_PREFIX))
            .fold(OwnedHeaders::new(), |all, (key, value)| {
                all.insert(Header { key: key.as_str(), value: value.as_deref() })
            })
    }
}

pub async fn run(settings: &Settings, args: DeadLettersArgs) -> anyhow::Result<()> {
    match args.command {
        DeadLettersCommand::List { topic, limit } => list(settings, topic.as_deref(), limit).await,
        DeadLettersCommand::Replay { offsets } => replay(settings, &offsets).await,
    }
}

async fn list(settings: &Settings, topic: Option<&str>, limit: usize) -> anyhow::Result<()> {
    let consumer = reader(settings)?;
    let mut total = 0_usize;
    let mut shown: VecDeque<Parked> = VecDeque::new();
    for parked in read_all(&consumer).await? {
        if topic.is_some_and(|wanted| parked.source_topic().as_deref() != Some(wanted)) {
            continue;
        }
        total += 1;
        shown.push_back(parked);
        if shown.len() > limit {
            shown.pop_front();
        }
    }
    let filter = topic.map(|topic| format!(" from {topic}")).unwrap_or_default();
    println!("{} dead letters{filter} in {}; showing the last {}", total, DEAD_LETTERS.name, shown.len());
    if shown.is_empty() {
        return Ok(());
    }
    println!("{:<8} {:<23} {:<20} {:<44} group", "offset", "parked at (UTC)", "reason", "source");
    for parked in &shown {
        println!(
            "{:<8} {:<23} {:<20} {:<44} {}",
            parked.position.to_string(),
            parked.parked_at(),
            parked.header(headers::REASON).unwrap_or_else(|| "-".to_string()),
            parked.source(),
            parked.header(headers::CONSUMER_GROUP).unwrap_or_else(|| "-".to_string()),
        );
        if let Some(error) = parked.header(headers::ERROR) {
            println!("         error: {}", error.replace('\n', "\n                "));
        }
    }
    Ok(())
}

async fn replay(settings: &Settings, positions: &[Position]) -> anyhow::Result<()> {
    let consumer = reader(settings)?;
    // Read every chosen record before producing any, so a typo in the last
    // offset replays nothing rather than half the list.
    let mut chosen = Vec::with_capacity(positions.len());
    for position in positions {
        let parked = read_one(&consumer, *position).await?;
        let Some(topic) = parked.source_topic() else {
            bail!("dead letter {position} has no {} header: not parked by a MAMOCHI consumer", headers::SOURCE_TOPIC);
        };
        if topic == DEAD_LETTERS.name {
            bail!("dead letter {position} came from the dead-letter topic itself; refusing to loop it");
        }
        chosen.push((parked, topic));
    }
    let producer = kafka::producer(&settings.kafka, "dead-letters").context("while creating the producer")?;
    for (parked, topic) in &chosen {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(parked.original_headers());
        // Same partition as the original: the record's key order stays where
        // its consumers expect it, whatever partitioner a client used.
        if let Some(partition) = parked.source_partition() {
            record = record.partition(partition);
        }
        if let Some(key) = parked.key.as_deref() {
            record = record.key(key);
        }
        if let Some(value) = parked.value.as_deref() {
            record = record.payload(value);
        }
        let delivery = producer
            .send(record, Timeout::After(Duration::from_millis(u64::from(settings.kafka.message_timeout_ms))))
            .await
            .map_err(|(error, _)| error)
            .with_context(|| format!("while replaying dead letter {} to {topic}", parked.position))?;
        println!(
            "replayed dead letter {} (reason {}, from {}) to {topic}/{}@{}",
            parked.position,
            parked.header(headers::REASON).unwrap_or_else(|| "-".to_string()),
            parked.source(),
            delivery.partition,
            delivery.offset
        );
    }
    Ok(())
}

/// A consumer that only reads what it is assigned: no group membership, no
/// commits, so the tool never moves anyone's offsets.
fn reader(settings: &Settings) -> anyhow::Result<StreamConsumer> {
    kafka::client_config(&settings.kafka, "dead-letters")
        .set("group.id", settings.kafka.group("dead-letters-tool"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("while creating the dead-letter reader")
}

/// Low and high watermark of every partition of the dead-letter topic.
fn watermarks(consumer: &StreamConsumer) -> anyhow::Result<Vec<(i32, i64, i64)>> {
    let metadata = consumer
        .fetch_metadata(Some(DEAD_LETTERS.name), BROKER_TIMEOUT)
        .with_context(|| format!("while reading the metadata of {}", DEAD_LETTERS.name))?;
    let Some(topic) = metadata.topics().iter().find(|topic| topic.name() == DEAD_LETTERS.name) else {
        bail!("topic {} does not exist (run `mamochi topics`)", DEAD_LETTERS.name);
    };
    if let Some(error) = topic.error() {
        bail!(
            "topic {}: {:?} (run `mamochi topics`)",
            DEAD_LETTERS.name,
            rdkafka::error::RDKafkaErrorCode::from(error)
        );
    }
    topic
        .partitions()
        .iter()
        .map(|partition| {
            let (low, high) = consumer
                .fetch_watermarks(DEAD_LETTERS.name, partition.id(), BROKER_TIMEOUT)
                .with_context(|| format!("while reading the offsets of {}/{}", DEAD_LETTERS.name, partition.id()))?;
            Ok((partition.id(), low, high))
        })
        .collect()
}

/// Every record now in the dead-letter topic, in offset order per partition.
async fn read_all(consumer: &StreamConsumer) -> anyhow::Result<Vec<Parked>> {
    let mut assignment = TopicPartitionList::new();
    let mut ends: HashMap<i32, i64> = HashMap::new();
    for (partition, low, high) in watermarks(consumer)? {
        if high > low {
            assignment.add_partition_offset(DEAD_LETTERS.name, partition, Offset::Offset(low))?;
            ends.insert(partition, high);
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return Ok(records);
    }
    consumer.assign(&assignment).context("while assigning the dead-letter partitions")?;
    while !ends.is_empty() {
        let message = match tokio::time::timeout(FETCH_TIMEOUT, consumer.recv()).await {
            Ok(received) => received.context("while reading dead letters")?,
            // The last offsets may be transaction markers, which are never
            // delivered: the position tells whether anything is left.
            Err(_) => {
                let positions = consumer.position().context("while reading the reader's position")?;
                ends.retain(|partition, end| {
                    positions
                        .find_partition(DEAD_LETTERS.name, *partition)
                        .and_then(|element| match element.offset() {
                            Offset::Offset(at) => Some(at < *end),
                            _ => None,
                        })
                        .unwrap_or(true)
                });
                if ends.is_empty() {
                    break;
                }
                bail!("no dead letter arrived within {FETCH_TIMEOUT:?} though partitions {:?} hold more", ends.keys());
            }
        };
        let parked = Parked::from_message(&message);
        if ends.get(&parked.position.partition).is_some_and(|end| parked.position.offset + 1 >= *end) {
            ends.remove(&parked.position.partition);
        }
        records.push(parked);
    }
    records.sort_by_key(|parked| (parked.timestamp_ms, parked.position.partition, parked.position.offset));
    Ok(records)
}

/// The dead letter at `position`, or why there is none.
async fn read_one(consumer: &StreamConsumer, position: Position) -> anyhow::Result<Parked> {
    let Some((_, low, high)) =
        watermarks(consumer)?.into_iter().find(|(partition, _, _)| *partition == position.partition)
    else {
        bail!("{} has no partition {}", DEAD_LETTERS.name, position.partition);
    };
    if position.offset < low {
        bail!("dead letter {position} has expired (the oldest kept is at {low})");
    }
    if position.offset >= high {
        bail!("there is no dead letter {position} yet (the next will be at {high})");
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(DEAD_LETTERS.name, position.partition, Offset::Offset(position.offset))?;
    consumer.assign(&assignment).context("while assigning the dead-letter partition")?;
    let message = tokio::time::timeout(FETCH_TIMEOUT, consumer.recv())
        .await
        .map_err(|_| anyhow::anyhow!("dead letter {position} did not arrive within {FETCH_TIMEOUT:?}"))?
        .with_context(|| format!("while reading dead letter {position}"))?;
    if message.partition() != position.partition || message.offset() != position.offset {
        bail!("there is no dead letter at {position} (the next record is at {})", message.offset());
    }
    Ok(Parked::from_message(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_as_list_prints_them() {
        let first: Position = "17".parse().expect("plain offset");
        assert_eq!(first, Position { partition: 0, offset: 17 });
        assert_eq!(first.to_string(), "17");
        let other: Position = "2:5".parse().expect("partition and offset");
        assert_eq!(other, Position { partition: 2, offset: 5 });
        assert_eq!(other.to_string(), "2:5");
        assert!("x".parse::<Position>().is_err());
        assert!("-1".parse::<Position>().is_err());
    }
}
