//! The notifier's Prometheus metrics, in a registry of its own.
//!
//! Labels are bounded: the email category, mapped onto a fixed set so a
//! producer inventing categories cannot grow the series without bound, and
//! for failed emails one of [`FAILURE_REASONS`]. Every failed-email series
//! exists at 0 from the start, so the first failure is an increase the
//! `EmailFailed` alert sees.

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Categories the platform sends; anything else is counted as `other`.
const CATEGORIES: [&str; 5] = ["credentials", "rejection", "restock", "statement", "low_stock"];

/// Label for the categories outside [`CATEGORIES`].
const OTHER: &str = "other";

/// Why an email was marked `failed`: the relay refused it for good (5xx),
/// the request can never make a message (a bad address, a secret that does
/// not open), or its retry budget ran out (see `budget`).
pub mod reason {
    pub const REFUSED: &str = "refused";
    pub const INVALID: &str = "invalid";
    pub const ATTEMPTS_EXHAUSTED: &str = "attempts_exhausted";
    pub const EXPIRED: &str = "expired";
}

/// Every value of the failed-email `reason` label.
pub const FAILURE_REASONS: [&str; 4] = [reason::REFUSED, reason::INVALID, reason::ATTEMPTS_EXHAUSTED, reason::EXPIRED];

/// The bounded metric label for a requested category.
pub fn category_label(category: &str) -> &'static str {
    CATEGORIES.iter().find(|known| **known == category).copied().unwrap_or(OTHER)
}

/// Counters and histograms of what the notifier does.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Emails the relay accepted.
    pub sent: IntCounterVec,
    /// Send attempts that failed for a reason that may pass; retried within the budget.
    pub failures: IntCounterVec,
    /// Send attempts on an email whose earlier attempt failed.
    pub retries: IntCounterVec,
    /// Requests skipped because their message id was already sent.
    pub duplicates: IntCounterVec,
    /// Emails marked `failed` (parked in the dead letters), by category and reason.
    pub failed: IntCounterVec,
    /// Time the relay took to accept one message.
    pub send_seconds: Histogram,
    /// From `requested_at` to the relay's acceptance, in real seconds.
    pub end_to_end_seconds: HistogramVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounterVec, prometheus::Error> {
            let counter = IntCounterVec::new(Opts::new(name, help), &["category"])?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        let sent = counter("mamochi_notifier_emails_sent_total", "Emails accepted by the SMTP relay.")?;
        let failures = counter(
            "mamochi_notifier_send_failures_total",
            "SMTP send attempts that failed for a reason that may pass (relay down, 4xx answer).",
        )?;
        let retries = counter(
            "mamochi_notifier_send_retries_total",
            "SMTP send attempts on an email whose earlier attempt failed.",
        )?;
        let duplicates = counter(
            "mamochi_notifier_duplicates_skipped_total",
            "Email requests skipped because their message id was already sent.",
        )?;
        let failed = IntCounterVec::new(
            Opts::new(
                "mamochi_notifier_emails_failed_total",
                "Emails marked failed and never sent: refused by the relay (5xx), invalid, or out of retries.",
            ),
            &["category", "reason"],
        )?;
        registry.register(Box::new(failed.clone()))?;
        for category in CATEGORIES.iter().chain(&[OTHER]) {
            for reason in FAILURE_REASONS {
                failed.with_label_values(&[category, reason]);
            }
        }
        let send_seconds = Histogram::with_opts(
            HistogramOpts::new("mamochi_notifier_send_seconds", "Time the SMTP relay took to accept one message.")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0]),
        )?;
        registry.register(Box::new(send_seconds.clone()))?;
        let end_to_end_seconds = HistogramVec::new(
            HistogramOpts::new(
                "mamochi_notifier_end_to_end_seconds",
                "Real seconds from the email request (requested_at) to the relay accepting it.",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
            &["category"],
        )?;
        registry.register(Box::new(end_to_end_seconds.clone()))?;
        Ok(Self { registry, sent, failures, retries, duplicates, failed, send_seconds, end_to_end_seconds })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_categories_share_one_label() {
        assert_eq!(category_label("restock"), "restock");
        assert_eq!(category_label("anything-a-producer-made-up"), "other");
    }

    #[test]
    fn every_metric_is_registered_with_help() {
        let metrics = Metrics::new().expect("metrics");
        metrics.sent.with_label_values(&["restock"]).inc();
        metrics.send_seconds.observe(0.1);
        metrics.end_to_end_seconds.with_label_values(&["restock"]).observe(0.1);
        for family in metrics.registry.gather() {
            assert!(family.name().starts_with("mamochi_notifier_"), "{}", family.name());
            assert!(!family.help().is_empty(), "{} has HELP", family.name());
        }
    }

    #[test]
    fn every_failed_email_series_is_exported_at_zero_before_any_failure() {
        let metrics = Metrics::new().expect("metrics");

        let families = metrics.registry.gather();

        let failed = families
            .iter()
            .find(|family| family.name() == "mamochi_notifier_emails_failed_total")
            .expect("exported before any failure");
        assert_eq!(failed.get_metric().len(), (CATEGORIES.len() + 1) * FAILURE_REASONS.len());
        assert!(failed.get_metric().iter().all(|series| series.get_counter().get_value() == 0.0));
    }
}
