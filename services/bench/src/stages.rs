//! One sales stage, measured at every step a sale goes through:
//! (i) the client's 201, (ii) Kafka's acknowledgement inside the gateway
//! (its produce histogram, scraped before and after the stage), (iii) the
//! accounting and distributor rows committed, per sale: observed from
//! outside the consumers' transactions by [`crate::commits`] while the load
//! runs, so each time is at or after the commit (an upper bound, late by at
//! most one poll cycle), never the transaction's start.
//!
//! Each stage waits for the consumers to apply its sales before the next
//! begins, so a stage's figures are its own and not the previous stage's
//! backlog; the lag sampler keeps running through those waits.

use std::time::{Duration, Instant};

use chrono::Utc;
use mamochi_common::db::PgPool;
use mamochi_events::topics;

use crate::commits::{CommitWatch, Observed};
use crate::effects::millis_between;
use crate::load::{self, Outcome, SaleClient};
use crate::progress::Bars;
use crate::results::SalesStage;
use crate::scrape;
use crate::stats::{fmt_count, fmt_ms, Latency, Recorder};

/// Names the gateway's produce histogram has had (new first).
const PRODUCE_HISTOGRAMS: [&str; 2] = ["mamochi_kafka_produce_seconds", "mamochi_gateway_produce_duration_seconds"];

/// How load is offered.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// A fixed rate on a timetable.
    Open { rate: f64, duration: Duration, connections: usize },
    /// As fast as `connections` clients are answered.
    Closed { duration: Duration, connections: usize },
}

/// What every stage shares.
pub struct Context<'a> {
    pub sales: &'a SaleClient,
    pub http: &'a reqwest::Client,
    pub api: &'a str,
    /// The gateway's `/metrics` (its operations port, not the API's).
    pub gateway_metrics: &'a str,
    pub pool: &'a PgPool,
    pub drain: Duration,
    pub epoch: Instant,
    pub bars: &'a Bars,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("api", &self.api).field("drain", &self.drain).finish_non_exhaustive()
    }
}

pub async fn run(ctx: &Context<'_>, name: &str, load: Load) -> anyhow::Result<SalesStage> {
    let metrics_url = ctx.gateway_metrics;
    let sales_label = format!("topic=\"{}\"", topics::SALES.name());
    let produce_before = scrape_produce(ctx, metrics_url, &sales_label).await;
    let started_s = ctx.epoch.elapsed().as_secs_f64();
    let started_at = Utc::now();
    let consumers = [mamochi_accounting::store::CONSUMER, mamochi_distributor::store::SALES_CONSUMER];
    let watch = CommitWatch::start(ctx.pool, &consumers);
    let watcher = watch.watcher();

    let (outcome, mode, offered, connections, duration) = match load {
        Load::Open { rate, duration, connections } => {
            let bar = ctx.bars.stage(name, Some(0));
            let outcome = load::open_loop(ctx.sales, &watcher, rate, duration, connections, ctx.drain, &bar).await;
            bar.finish(format!("{} accepted", outcome.accepted.len()));
            (outcome, "open", Some(rate), connections, duration)
        }
        Load::Closed { duration, connections } => {
            let bar = ctx.bars.stage(name, Some(duration.as_millis() as u64));
            let outcome = load::closed_loop(ctx.sales, &watcher, duration, connections, &bar).await;
            bar.finish(format!("{} accepted", outcome.accepted.len()));
            (outcome, "closed", None, connections, duration)
        }
    };
    let answered_at = started_at + chrono::Duration::from_std(outcome.elapsed).unwrap_or_default();
    let produce_after = scrape_produce(ctx, metrics_url, &sales_label).await;
    // The series appears with the gateway's first sale: absent before means zero.
    let kafka_ack = produce_after.and_then(|after| after.since(&produce_before.unwrap_or_default()).summary());

    let bar = ctx.bars.stage(&format!("{name} apply"), None);
    bar.set_message("waiting for accounting and distributor");
    drop(watcher);
    let observed = watch.finish(ctx.drain).await?;
    let effects = consumer_effects(&outcome, &observed, answered_at);
    bar.finish("applied");

    let stage = SalesStage {
        name: name.to_string(),
        mode: mode.to_string(),
        idempotency_keys: ctx.sales.idempotency_keys(),
        offered_per_s: offered,
        connections,
        duration_s: duration.as_secs_f64(),
        sent: outcome.sent,
        accepted: outcome.accepted.len() as u64,
        refused: outcome.refused,
        refused_stock: outcome.refused_stock,
        shed: outcome.shed,
        failed: outcome.failed,
        unfinished: outcome.unfinished,
        accepted_per_s: outcome.accepted.len() as f64 / outcome.elapsed.as_secs_f64().max(1e-9),
        http: outcome.http.summary(),
        kafka_ack,
        accounting: effects.accounting,
        distributor: effects.distributor,
        accounting_applied: effects.accounting_applied,
        distributor_applied: effects.distributor_applied,
        commit_poll: (observed.watched > 0).then_some(observed.cycle),
        accounting_applied_per_s: effects.accounting_per_s,
        accounting_drain_s: effects.accounting_drain_s,
        started_s,
        ended_s: ctx.epoch.elapsed().as_secs_f64(),
    };
    ctx.bars.say(summary_line(&stage, outcome.first_error.as_deref()));
    Ok(stage)
}

async fn scrape_produce(ctx: &Context<'_>, url: &str, label: &str) -> Option<crate::stats::Buckets> {
    let text = scrape::fetch(ctx.http, url).await?;
    scrape::first_histogram(&text, &PRODUCE_HISTOGRAMS, Some(label)).map(|(_, buckets)| buckets)
}

#[derive(Debug, Default)]
struct Effects {
    accounting: Option<Latency>,
    distributor: Option<Latency>,
    accounting_applied: u64,
    distributor_applied: u64,
    accounting_per_s: Option<f64>,
    accounting_drain_s: Option<f64>,
}

/// Per accepted sale, recorded → commit observed, for both consumers (in
/// the order [`run`] started the watch: accounting, then distributor).
fn consumer_effects(outcome: &Outcome, observed: &Observed, answered_at: chrono::DateTime<Utc>) -> Effects {
    let mut result = Effects::default();
    for (index, seen) in observed.seen.iter().enumerate() {
        let mut latencies = Recorder::new();
        for sale in &outcome.accepted {
            if let Some(at) = seen.get(&sale.sale_id) {
                latencies.record_ms(millis_between(sale.recorded_at, *at));
            }
        }
        let summary = (latencies.count() > 0).then(|| latencies.summary());
        if index == 0 {
            result.accounting = summary;
            result.accounting_applied = seen.len() as u64;
            let first = seen.values().min();
            if let (Some(first), Some(last)) = (first, observed.last_commit(index)) {
                let span = millis_between(*first, last) / 1000.0;
                // A span under 10 ms says nothing about a rate.
                result.accounting_per_s = (span > 0.01).then(|| seen.len() as f64 / span);
                result.accounting_drain_s = Some((millis_between(answered_at, last) / 1000.0).max(0.0));
            }
        } else {
            result.distributor = summary;
            result.distributor_applied = seen.len() as u64;
        }
    }
    result
}

/// One line per stage for the log.
fn summary_line(stage: &SalesStage, first_error: Option<&str>) -> String {
    let offered = stage
        .offered_per_s
        .map_or_else(|| format!("closed loop ×{}", stage.connections), |rate| format!("{}/s offered", fmt_count(rate)));
    let accounting = stage.accounting.map_or_else(|| "–".to_string(), |latency| fmt_ms(latency.p99_ms));
    let mut line = format!(
        "{:<14} {:<18} accepted {:>7}/s  HTTP p50 {} p99 {} ms  accounting p99 {} ms  ({} sent, {} refused ({} for stock), {} shed (503), {} failed, {} unfinished)",
        stage.name,
        offered,
        fmt_count(stage.accepted_per_s),
        fmt_ms(stage.http.p50_ms),
        fmt_ms(stage.http.p99_ms),
        accounting,
        stage.sent,
        stage.refused,
        stage.refused_stock,
        stage.shed,
        stage.failed,
        stage.unfinished,
    );
    if let Some(error) = first_error {
        line.push_str(&format!("; first error: {error}"));
    }
    line
}
