//! The one place that names every topic: its partitions, key and value types,
//! registry subjects and retention. No topic name appears anywhere else.
//!
//! Subjects follow Confluent's TopicNameStrategy (`<topic>-key`,
//! `<topic>-value`), so one topic carries one value type whose evolution the
//! registry checks. Keys are Avro records too; they only ever gain optional
//! fields, because a key schema change would change the key bytes and so the
//! partition a key maps to.

use std::marker::PhantomData;

use mamochi_common::kafka::TopicSpec;

use crate::generated::{
    CartAlarm, CartStockLevel, CartTrackingEvent, CredentialsIssued, EmailRequested, MessageKey, RegistrationDecided,
    RegistrationKey, RegistrationReviewed, RegistrationSubmitted, SaleRecorded, StockEvent, VendorKey,
    WeeklyStatementIssued,
};
use crate::{AvroSchemaSource, SchemaSource};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How long a topic keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Delete records older than this many milliseconds.
    Delete { ms: i64 },
    /// Keep the latest record per key.
    Compact,
}

/// Everything about a topic that does not depend on its Rust types.
#[derive(Debug, Clone, Copy)]
pub struct TopicInfo {
    pub name: &'static str,
    pub partitions: i32,
    pub retention: Retention,
    /// `None` for topics that carry raw bytes (dead letters).
    pub key: Option<SchemaSource>,
    /// `None` for topics that carry raw bytes (dead letters).
    pub value: Option<SchemaSource>,
    pub doc: &'static str,
}

/// A topic whose records have key type `K` and value type `V`.
#[derive(Debug)]
pub struct Topic<K, V> {
    pub info: TopicInfo,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K: AvroSchemaSource, V: AvroSchemaSource> Topic<K, V> {
    const fn new(name: &'static str, partitions: i32, retention: Retention, doc: &'static str) -> Self {
        Self {
            info: TopicInfo { name, partitions, retention, key: Some(K::SCHEMA), value: Some(V::SCHEMA), doc },
            types: PhantomData,
        }
    }
}

impl<K, V> Topic<K, V> {
    pub const fn name(&self) -> &'static str {
        self.info.name
    }
}

impl TopicInfo {
    /// Registry subject of the key schema.
    pub fn key_subject(&self) -> String {
        format!("{}-key", self.name)
    }

    /// Registry subject of the value schema.
    pub fn value_subject(&self) -> String {
        format!("{}-value", self.name)
    }

    /// Every (subject, schema) pair this topic registers.
    pub fn subjects(&self) -> Vec<(String, SchemaSource)> {
        let mut subjects = Vec::new();
        if let Some(key) = self.key {
            subjects.push((self.key_subject(), key));
        }
        if let Some(value) = self.value {
            subjects.push((self.value_subject(), value));
        }
        subjects
    }

    /// How the topic is created. Replication is the cluster's default
    /// (1 on the one-node stack, 3 on three nodes).
    pub fn spec(&self) -> TopicSpec<'static> {
        let config = match self.retention {
            Retention::Compact => vec![("cleanup.policy", "compact".to_string())],
            Retention::Delete { ms } => {
                vec![("cleanup.policy", "delete".to_string()), ("retention.ms", ms.to_string())]
            }
        };
        TopicSpec { name: self.name, partitions: self.partitions, replication: None, config }
    }
}

/// The priority lane of a laned topic: partition 0 carries only the records
/// that must be handled first, and their consumers drain it before the
/// other partitions, over which everything else is spread.
pub const PRIORITY_LANE_PARTITION: i32 = 0;

/// The partition reserved for paid registrations: the approval service
/// always drains it before the standard partitions.
pub const PAID_REGISTRATION_PARTITION: i32 = PRIORITY_LANE_PARTITION;

/// Registration forms. Partition 0 carries only paid forms; standard forms
/// are spread over partitions 1..=3 by registration id.
pub const REGISTRATIONS: Topic<RegistrationKey, RegistrationSubmitted> = Topic::new(
    "mamochi.registrations",
    4,
    Retention::Delete { ms: 30 * DAY_MS },
    "Membership forms submitted through the gateway; partition 0 is the paid lane.",
);

// Checked when the crate compiles, so a topic edit that loses the paid lane
// or leaves standard forms without partitions of their own does not build.
const _: () = assert!(
    PAID_REGISTRATION_PARTITION < REGISTRATIONS.info.partitions,
    "the paid lane is a partition of the registrations topic"
);
const _: () = assert!(REGISTRATIONS.info.partitions >= 2, "standard forms need partitions of their own");

/// Decisions on registration forms, keyed like the forms.
pub const REGISTRATION_DECISIONS: Topic<RegistrationKey, RegistrationDecided> = Topic::new(
    "mamochi.registration-decisions",
    3,
    Retention::Delete { ms: 30 * DAY_MS },
    "Approvals, rejections and manual-review flags.",
);

/// Staff reviews of registration forms, made through the admin API.
pub const REGISTRATION_REVIEWS: Topic<RegistrationKey, RegistrationReviewed> = Topic::new(
    "mamochi.registration-reviews",
    3,
    Retention::Delete { ms: 30 * DAY_MS },
    "Approvals and rejections by guild staff, applied by the approval service.",
);

/// Credentials issued to members (public key id only, never the secret).
pub const CREDENTIALS: Topic<VendorKey, CredentialsIssued> =
    Topic::new("mamochi.credentials", 3, Retention::Compact, "The current credentials of each member, by key id.");

/// Every sale, keyed by vendor so a vendor's sales stay in order.
pub const SALES: Topic<VendorKey, SaleRecorded> = Topic::new(
    "mamochi.sales",
    6,
    Retention::Delete { ms: 400 * DAY_MS },
    "Sales recorded by vendors; the source of accounting and stock.",
);

/// Stock-outs, restock requests, restocks and low-stock alerts, keyed by vendor.
pub const STOCK: Topic<VendorKey, StockEvent> = Topic::new(
    "mamochi.stock",
    6,
    Retention::Delete { ms: 30 * DAY_MS },
    "A cart's stock history: depletions, requests, replenishments, alerts.",
);

/// The current stock of every cart, keyed by vendor and compacted: the
/// distributor writes a cart's level after each committed change, and the
/// gateway's stock view is this topic read from the start.
pub const CART_STOCK: Topic<VendorKey, CartStockLevel> = Topic::new(
    "mamochi.cart-stock",
    6,
    Retention::Compact,
    "Each cart's latest committed stock level (compacted by vendor).",
);

/// The partition reserved for MISSING and FOUND cart reports, so a runaway
/// cart is handled before any backlog of location pings.
pub const CART_REPORT_PARTITION: i32 = PRIORITY_LANE_PARTITION;

/// Cart locations and missing/found reports, keyed by vendor (one cart
/// each). Partition 0 carries only reports; location pings are spread over
/// partitions 1..=3 by cart, so one cart's pings stay in order.
pub const CART_TRACKING: Topic<VendorKey, CartTrackingEvent> = Topic::new(
    "mamochi.cart-tracking",
    4,
    Retention::Delete { ms: 7 * DAY_MS },
    "Cart location pings and missing/found reports; partition 0 is the report lane.",
);

// As for registrations: a topic edit that loses the report lane or leaves
// pings without partitions of their own does not build.
const _: () = assert!(
    CART_REPORT_PARTITION < CART_TRACKING.info.partitions,
    "the report lane is a partition of the cart-tracking topic"
);
const _: () = assert!(CART_TRACKING.info.partitions >= 2, "location pings need partitions of their own");

/// Cart incidents opened and closed by the distributor's cart tracking
/// (missing, silent, out of area), keyed by vendor so one cart's alarms stay
/// in order.
pub const CART_ALARMS: Topic<VendorKey, CartAlarm> = Topic::new(
    "mamochi.cart-alarms",
    3,
    Retention::Delete { ms: 30 * DAY_MS },
    "Cart incidents raised and cleared by the distributor's cart tracking.",
);

/// Weekly statements, one per vendor and ISO week.
pub const STATEMENTS: Topic<VendorKey, WeeklyStatementIssued> = Topic::new(
    "mamochi.statements",
    3,
    Retention::Delete { ms: 400 * DAY_MS },
    "Weekly statements issued by accounting.",
);

/// Emails for the notifier to send, keyed by message id.
pub const EMAIL_REQUESTS: Topic<MessageKey, EmailRequested> = Topic::new(
    "mamochi.email-requests",
    3,
    Retention::Delete { ms: 7 * DAY_MS },
    "Emails to send; the notifier sends each message id once.",
);

/// Records no consumer could decode, with headers saying why and from where.
/// Raw bytes in, raw bytes out: nothing is re-encoded, so nothing is lost.
pub const DEAD_LETTERS: TopicInfo = TopicInfo {
    name: "mamochi.dead-letters",
    partitions: 1,
    retention: Retention::Delete { ms: 30 * DAY_MS },
    key: None,
    value: None,
    doc: "Undecodable records, parked for inspection.",
};

/// Every topic of the platform.
pub const ALL: [&TopicInfo; 12] = [
    &REGISTRATIONS.info,
    &REGISTRATION_REVIEWS.info,
    &REGISTRATION_DECISIONS.info,
    &CREDENTIALS.info,
    &SALES.info,
    &STOCK.info,
    &CART_STOCK.info,
    &CART_TRACKING.info,
    &CART_ALARMS.info,
    &STATEMENTS.info,
    &EMAIL_REQUESTS.info,
    &DEAD_LETTERS,
];

/// The specs of every topic, for `ensure_topics`.
pub fn all_specs() -> Vec<TopicSpec<'static>> {
    ALL.iter().map(|topic| topic.spec()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_and_subjects_are_unique() {
        let mut names: Vec<_> = ALL.iter().map(|topic| topic.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        let subjects: Vec<_> = ALL.iter().flat_map(|topic| topic.subjects()).map(|(subject, _)| subject).collect();
        let unique: std::collections::HashSet<_> = subjects.iter().collect();
        assert_eq!(unique.len(), subjects.len());
    }

    #[test]
    fn retention_reaches_the_topic_config() {
        let spec = SALES.info.spec();
        assert!(spec.config.contains(&("retention.ms", (400 * DAY_MS).to_string())));
        assert!(CREDENTIALS.info.spec().config.contains(&("cleanup.policy", "compact".to_string())));
    }

    #[test]
    fn every_schema_file_is_used_by_a_topic() {
        let used: std::collections::HashSet<_> =
            ALL.iter().flat_map(|topic| topic.subjects()).map(|(_, schema)| schema.file).collect();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas");
        for entry in std::fs::read_dir(dir).expect("schemas/") {
            let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
            if name.ends_with(".avsc") {
                assert!(used.contains(name.as_str()), "{name} is not used by any topic");
            }
        }
    }
}
