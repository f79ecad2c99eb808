//! The notifier's Prometheus metrics, in a registry of its own.
//!
//! The only label is the email category, mapped onto a fixed set so a
//! producer inventing categories cannot grow the series without bound.

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Categories the platform sends; anything else is counted as `other`.
const CATEGORIES: [&str; 5] = ["credentials", "rejection", "restock", "statement", "low_stock"];

/// The bounded metric label for a requested category.
pub fn category_label(category: &str) -> &'static str {
    CATEGORIES.iter().find(|known| **known == category).copied().unwrap_or("other")
}

/// Counters and histograms of what the notifier does.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Emails the relay accepted.
    pub sent: IntCounterVec,
    /// Send attempts that failed and will be retried.
    pub failures: IntCounterVec,
    /// Send attempts on an email whose earlier attempt failed.
    pub retries: IntCounterVec,
    /// Requests skipped because their message id was already sent.
    pub duplicates: IntCounterVec,
    /// Requests that can never be sent (parked in the dead letters).
    pub rejected: IntCounterVec,
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
        let failures = counter("mamochi_notifier_send_failures_total", "SMTP send attempts that failed and will be retried.")?;
        let retries = counter("mamochi_notifier_send_retries_total", "SMTP send attempts on an email whose earlier attempt failed.")?;
        let duplicates = counter(
            "mamochi_notifier_duplicates_skipped_total",
            "Email requests skipped because their message id was already sent.",
        )?;
        let rejected = counter(
            "mamochi_notifier_rejected_total",
            "Email requests that can never be sent (bad address, unopenable secret, permanent refusal).",
        )?;
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
        Ok(Self { registry, sent, failures, retries, duplicates, rejected, send_seconds, end_to_end_seconds })
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
}
