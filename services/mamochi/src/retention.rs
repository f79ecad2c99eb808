//! The retention policy: how long each service keeps the rows that absorb
//! redeliveries, decided in this one place from the topic catalog.
//!
//! A dedupe row (`processed_events`) or a finished email record (`emails`)
//! may go once no copy of the record it remembers can reach its consumer
//! again. A copy can come back two ways, and the period covers both, plus
//! Kafka's own slack:
//!
//! 1. redelivery or a re-read of the source topic, for as long as the topic
//!    keeps the record: its `retention.ms` from the catalog;
//! 2. a replay from the dead-letter topic (`mamochi dead-letters replay`),
//!    possible for the dead-letter topic's retention after parking, after
//!    which the replayed copy lives a full source retention again: so the
//!    dead-letter retention is added on top;
//! 3. Kafka deletes whole log segments, and only once a segment's newest
//!    record has expired; a segment rolls after `log.roll.hours` (168 h by
//!    default), so a record can outlive `retention.ms` by up to seven days:
//!    [`MARGIN`] is that week plus one day for the retention checker's period
//!    and clock skew.
//!
//! Period = source retention + dead-letter retention + 8 days. With the
//! catalog as it is: sales consumers (accounting, distributor) 400 + 30 + 8 =
//! 438 days; the distributor's stock consumer and approval's forms and
//! reviews 30 + 30 + 8 = 68 days; the distributor's cart-tracking consumer
//! and the notifier's sent and failed emails 7 + 30 + 8 = 45 days. Rows of a consumer reading a compacted topic would
//! never be pruned (a compacted topic keeps a key's latest record for ever);
//! no deduplicating consumer reads one today.
//!
//! Each service prunes only the rows it owns (its dedupe names, the
//! notifier its emails), from the process that runs it: `mamochi run` starts
//! one pruning task per process for the services it runs. The gateway's
//! idempotency claims (`sale_requests`) are not covered here: they are a
//! client-retry window (24 h), pruned by the gateway itself, and the sale ids
//! they hand out are deduplicated downstream by the rows above.

use std::time::Duration;

use anyhow::Context;
use mamochi_common::retention::{self, Rule};
use mamochi_common::shutdown::Shutdown;
use mamochi_common::{db, Settings};
use mamochi_events::topics::{self, Retention, TopicInfo};

use crate::run::Service;

/// Slack for Kafka's segment-wise deletion (see the module doc).
pub const MARGIN: Duration = Duration::from_secs(8 * 24 * 60 * 60);

/// How long rows remembering records of `source` are kept; `None` for a
/// compacted topic, whose records never expire.
pub fn keep_for(source: &TopicInfo) -> Option<Duration> {
    let source_ms = retention_ms(source)?;
    let dead_letters_ms = retention_ms(&topics::DEAD_LETTERS)?;
    let millis = u64::try_from(source_ms.saturating_add(dead_letters_ms)).ok()?;
    Some(Duration::from_millis(millis) + MARGIN)
}

fn retention_ms(topic: &TopicInfo) -> Option<i64> {
    match topic.retention {
        Retention::Delete { ms } => Some(ms),
        Retention::Compact => None,
    }
}

/// The rows `service` owns, with their periods.
pub fn rules_for(service: Service) -> Vec<Rule> {
    let dedupe =
        |consumer: &str, source: &TopicInfo| keep_for(source).map(|keep| Rule::processed_events(consumer, keep));
    let rules = match service {
        Service::Accounting => vec![dedupe(mamochi_accounting::store::CONSUMER, &topics::SALES.info)],
        Service::Distributor => vec![
            dedupe(mamochi_distributor::store::SALES_CONSUMER, &topics::SALES.info),
            dedupe(mamochi_distributor::store::STOCK_CONSUMER, &topics::STOCK.info),
            // One row per location ping and report: the platform's busiest
            // dedupe name once carts ping.
            dedupe(mamochi_distributor::tracking::TRACKING_GROUP, &topics::CART_TRACKING.info),
        ],
        Service::Approval => vec![
            dedupe(mamochi_approval::store::FORMS, &topics::REGISTRATIONS.info),
            dedupe(mamochi_approval::store::REVIEWS, &topics::REGISTRATION_REVIEWS.info),
        ],
        Service::Notifier => vec![keep_for(&topics::EMAIL_REQUESTS.info).map(Rule::finished_emails)],
        Service::Gateway | Service::All => Vec::new(),
    };
    rules.into_iter().flatten().collect()
}

/// The rules of every service in `services`, each once.
pub fn rules_for_all(services: &[Service]) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    for service in services {
        for rule in rules_for(*service) {
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
    rules
}

/// Starts this process's pruning task for the rows `services` own (none
/// for the gateway alone), on a one-connection pool of its own so pruning
/// never takes a connection a consumer is waiting for.
pub fn start(settings: &Settings, services: &[Service], shutdown: Shutdown) -> anyhow::Result<()> {
    let rules = rules_for_all(services);
    if rules.is_empty() {
        return Ok(());
    }
    let mut database = settings.database.clone();
    database.pool_size = 1;
    let pool = db::pool(&database).context("while creating the pruning task's database pool")?;
    tokio::spawn(retention::run(pool, rules, settings.retention.clone(), shutdown));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamochi_common::retention::Rows;

    fn days(duration: Duration) -> u64 {
        duration.as_secs() / 86_400
    }

    #[test]
    fn every_period_outlasts_its_topic_and_a_dead_letter_replay() {
        for service in [Service::Accounting, Service::Distributor, Service::Approval, Service::Notifier] {
            let rules = rules_for(service);
            assert!(!rules.is_empty(), "{service:?} owns rows to prune");
            for rule in rules {
                assert!(rule.keep > Duration::from_millis(30 * 86_400_000) + MARGIN, "{rule:?}");
            }
        }
    }

    #[test]
    fn sales_dedupe_rows_are_kept_longer_than_the_sales_topic_keeps_sales() {
        let sales_days = match topics::SALES.info.retention {
            Retention::Delete { ms } => u64::try_from(ms / 86_400_000).expect("positive"),
            Retention::Compact => panic!("sales are not compacted"),
        };
        for rule in rules_for(Service::Accounting).into_iter().chain(rules_for(Service::Distributor)) {
            let other_sources =
                [mamochi_distributor::store::STOCK_CONSUMER, mamochi_distributor::tracking::TRACKING_GROUP]
                    .map(|consumer| Rows::ProcessedEvents { consumer: consumer.to_string() });
            if other_sources.contains(&rule.rows) {
                continue;
            }
            assert!(days(rule.keep) > sales_days, "{rule:?} vs {sales_days} days");
        }
    }

    #[test]
    fn compacted_topics_are_never_pruned() {
        assert_eq!(keep_for(&topics::CREDENTIALS.info), None);
    }

    #[test]
    fn all_takes_each_rule_once() {
        let once = rules_for_all(&[Service::Accounting, Service::Distributor, Service::Accounting]);
        assert_eq!(once.len(), 4);
    }
}
