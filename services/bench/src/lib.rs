//! `mamochi bench`: a benchmark of the real platform on the running local
//! stack (Kafka, PostgreSQL, the SMTP sink and the schema registry, as
//! `deploy/local/stack up` leaves them), written up as a report.
//!
//! In order, on the same broker in the same run:
//! 1. the broker's raw limits: the platform's producer configuration writing
//!    encoded sales ([`raw_kafka`]) and Kafka's own perf test ([`perftest`]);
//! 2. every service started in this process, isolated ([`platform`]), and
//!    vendors registered over HTTP, keys read from their emails ([`setup`]);
//! 3. sales over HTTP at fixed offered rates (open loop) and at saturation
//!    (closed loop), each measured from the client's 201 to the consumers'
//!    rows seen committed ([`stages`], [`load`], [`commits`]); 503s (load
//!    shed) are counted apart;
//! 4. a burst written straight to the sales topic, to see accounting and
//!    the distributor drain a backlog, each until its last record is
//!    committed ([`burst`]), with consumer lag sampled throughout ([`lag`]);
//! 5. before and after: accounting's store one sale per transaction against
//!    batched ([`batching`]), and saturation without Idempotency-Key headers;
//! 6. paid forms behind a backlog of standard ones ([`approval`]);
//! 7. location pings written straight to the cart-tracking topic, drained
//!    by the distributor's tracking group, with a missing-cart report behind
//!    them timed to its alarm ([`tracking`]);
//! 8. with the platform stopped, each consumer group draining a backlog of
//!    its own with 1, 2 and 3 instances ([`scaling`]), and the measured lag
//!    replayed through KEDA's scaling rule ([`keda_replay`]);
//! 9. report.md, summary CSV tables and SVG plots to commit, and the raw
//!    samples beside them, not committed ([`report`], [`plots`]).
//!
//! The figures are reported, never asserted: the bench fails only when it
//! cannot measure (the stack is down, a service does not start).

pub mod approval;
pub mod batching;
pub mod burst;
pub mod commits;
pub mod effects;
pub mod identity;
pub mod keda_replay;
pub mod lag;
pub mod load;
pub mod machine;
pub mod mail;
pub mod perftest;
pub mod plan;
pub mod platform;
pub mod plots;
pub mod progress;
pub mod raw_kafka;
pub mod report;
pub mod results;
pub mod scaling;
pub mod scaling_plots;
pub mod scaling_report;
pub mod schedule;
pub mod scrape;
pub mod setup;
pub mod stages;
pub mod stats;
pub mod table;
pub mod tracking;
pub mod tracking_http;
pub mod tracking_report;

use std::time::{Duration, Instant};

use anyhow::Context;
use mamochi_common::shutdown::Shutdown;
use mamochi_common::{db, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::topics;
use rdkafka::consumer::{BaseConsumer, Consumer};

pub use plan::{BenchArgs, Plan};
pub use platform::Platform;

use crate::lag::{LagSampler, Watched};
use crate::load::SaleClient;
use crate::progress::Bars;
use crate::results::Results;
use crate::stages::Load;

/// The name of the saturation stage run without Idempotency-Key headers.
pub const SATURATION_NO_KEYS: &str = "saturation, no Idempotency-Key";
/// The lag samples' label of the cart-tracking stage.
const TRACKING_STAGE: &str = "cart tracking";
/// Longest wait for the in-process services to answer `/readyz`.
const READY_WITHIN: Duration = Duration::from_secs(90);
/// Longest wait for the setup vendors' credentials emails.
const CREDENTIALS_WITHIN: Duration = Duration::from_secs(120);

/// Runs the benchmark and writes the report into `args.out`.
pub async fn run(settings: &Settings, args: BenchArgs, platform: impl Platform) -> anyhow::Result<()> {
    let plan = Plan::from_args(&args)?;
    let bars = Bars::new();
    let epoch = Instant::now();
    let mut results = Results::default();
    results.meta.started_at = Some(chrono::Utc::now());
    results.meta.quick = plan.quick;
    results.meta.machine = machine::Machine::detect();
    results.meta.plan = serde_json::to_value(&plan)?;
    results.meta.sales_partitions = topics::SALES.info.partitions;
    results.meta.kafka_brokers = broker_count(settings).await.unwrap_or(0);
    results.meta.db_pool_size = settings.database.pool_size;
    results.meta.kafka_linger_ms = settings.kafka.linger_ms;
    results.meta.stock_policy = format!(
        "carts start with {} servings and a restock brings {} (distributor.initial_stock and restock_quantity, set for the bench's platform only); sales are quantity 1, so under load carts run out and depletion → restock → email runs alongside the sales; a sale refused while a cart waits for its restock is a 409 (refused)",
        stats::fmt_count(f64::from(platform::BENCH_STOCK)),
        stats::fmt_count(f64::from(platform::BENCH_STOCK))
    );
    bars.say(format!(
        "MAMOCHI bench{}: {} vendors, rates {:?}/s × {:.0} s, saturation ×{} for {:.0} s, backlog {} forms → {}",
        if plan.quick { " (quick)" } else { "" },
        plan.vendors,
        plan.rates,
        plan.stage.as_secs_f64(),
        plan.saturation_connections,
        plan.saturation.as_secs_f64(),
        plan.backlog_forms,
        plan.out.display()
    ));

    let codec = EventCodec::new(&settings.registry.url);
    raw_limits(settings, &plan, &codec, &bars, &mut results).await?;

    // The platform, in this process, with its own groups and ports.
    let run_tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let (platform_settings, endpoints) = platform::isolated_settings(settings, &run_tag)?;
    let shutdown = Shutdown::new();
    let services = tokio::spawn(platform.run(platform_settings.clone(), shutdown.clone()));
    let measured = measure(&platform_settings, &endpoints, &plan, &codec, &platform, &bars, epoch, &mut results).await;
    shutdown.cancel();
    let stopped = services.await.context("services task")?;
    let vendors = measured?;
    stopped.context("a platform service failed")?;
    if plan.scaling_sales > 0 && !vendors.is_empty() {
        results.scaling = Some(scale_out(&platform_settings, &plan, &codec, &vendors, &run_tag, &bars).await?);
    }

    results.meta.finished_at = Some(chrono::Utc::now());
    add_notes(&plan, &mut results);
    report::write(&results, &plan.out)?;
    let plots = plots::write_all(&results, &plan.out)?;
    bars.say(format!(
        "report written: {} (report.md, results.json, {} CSV tables, {})",
        plan.out.display(),
        report::tables(&results).len(),
        plots.join(", ")
    ));
    Ok(())
}

/// Raw Kafka limits, before the services start so nothing else competes.
async fn raw_limits(
    settings: &Settings,
    plan: &Plan,
    codec: &EventCodec,
    bars: &Bars,
    results: &mut Results,
) -> anyhow::Result<()> {
    raw_kafka::ensure_bench_topics(settings).await?;
    let bar = bars.stage("raw Kafka (rdkafka)", Some(plan.raw_records));
    match raw_kafka::platform_producer(settings, codec, plan.raw_records, &bar).await {
        Ok(run) => {
            bar.finish(format!("{}/s", stats::fmt_count(run.records_per_sec)));
            bars.say(format!(
                "raw Kafka, platform producer: {} records of {} bytes at {}/s, ack p50 {} p99 {} ms",
                run.records,
                run.value_bytes,
                stats::fmt_count(run.records_per_sec),
                stats::fmt_ms(run.ack.p50_ms),
                stats::fmt_ms(run.ack.p99_ms)
            ));
            results.raw_kafka.platform_producer = Some(run);
        }
        Err(error) => {
            bar.finish("failed");
            results.raw_kafka.platform_producer_error = Some(format!("{error:#}"));
        }
    }
    if !plan.perf_test {
        results.raw_kafka.perf_test_error = Some("skipped (--skip-perf-test)".to_string());
        return Ok(());
    }
    let record_size = results.raw_kafka.platform_producer.as_ref().map_or(100, |run| run.value_bytes);
    let bar = bars.stage("raw Kafka (perf test)", None);
    bar.set_message("kafka-producer-perf-test");
    let request = perftest::PerfRequest {
        stack: &plan.stack,
        bootstrap_servers: &settings.kafka.bootstrap_servers,
        topic: raw_kafka::PERF_TEST_TOPIC,
        records: plan.raw_records,
        record_size,
        timeout: Duration::from_secs(300),
    };
    match perftest::run(&request).await {
        Ok((summary, _)) => {
            bar.finish(format!("{}/s", stats::fmt_count(summary.records_per_sec)));
            bars.say(format!(
                "raw Kafka, kafka-producer-perf-test: {} records of {} bytes at {}/s, p50 {} p99 {} ms",
                summary.records,
                record_size,
                stats::fmt_count(summary.records_per_sec),
                stats::fmt_ms(summary.p50_ms),
                stats::fmt_ms(summary.p99_ms)
            ));
            results.raw_kafka.perf_test = Some(summary);
        }
        Err(error) => {
            bar.finish("failed");
            bars.say(format!("kafka-producer-perf-test not measured: {error:#}"));
            results.raw_kafka.perf_test_error = Some(format!("{error:#}"));
        }
    }
    Ok(())
}

/// The scaling stage, after the platform's own consumers have stopped.
async fn scale_out(
    settings: &Settings,
    plan: &Plan,
    codec: &EventCodec,
    vendors: &[uuid::Uuid],
    run_tag: &str,
    bars: &Bars,
) -> anyhow::Result<results::Scaling> {
    let pool = db::pool(&settings.database).context("while creating the database pool")?;
    let case = scaling::Case {
        settings,
        codec,
        pool: &pool,
        vendors,
        run_tag,
        records: plan.scaling_sales,
        wait: plan.scaling_wait,
    };
    let mut runs = Vec::new();
    for scaled in scaling::Scaled::ALL {
        for &instances in &plan.scaling_instances {
            let bar = bars.stage(&format!("scaling: {} × {instances}", scaled.label()), Some(plan.scaling_sales));
            let run = scaling::run(&case, scaled, instances, &bar).await?;
            bar.finish(
                run.records_per_s
                    .map_or_else(|| "not drained".to_string(), |rate| format!("{}/s", stats::fmt_count(rate))),
            );
            bars.say(format!(
                "scaling: {} × {}: {} of {} sales committed, drained in {} s ({}/s; {}/s once running), peak lag {}{}",
                run.group,
                run.instances,
                run.applied,
                run.records,
                run.drain_s.map_or_else(|| "–".to_string(), |seconds| format!("{seconds:.2}")),
                run.records_per_s.map_or_else(|| "–".to_string(), stats::fmt_count),
                run.steady_per_s.map_or_else(|| "–".to_string(), stats::fmt_count),
                run.peak_lag,
                run.error.as_ref().map_or_else(String::new, |error| format!("; {error}"))
            ));
            runs.push(run);
        }
    }
    Ok(results::Scaling {
        partitions: topics::SALES.info.partitions,
        how: "in this process: N independent copies of the service, each on its own thread with its own async runtime, group member, producer, database pool and ops port".to_string(),
        runs,
    })
}

/// Everything that needs the running platform; returns the member ids of
/// the bench vendors (for the scaling stage, which runs after it).
#[allow(clippy::too_many_arguments)]
async fn measure(
    settings: &Settings,
    endpoints: &platform::Endpoints,
    plan: &Plan,
    codec: &EventCodec,
    platform: &dyn Platform,
    bars: &Bars,
    epoch: Instant,
    results: &mut Results,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    let connections = plan.connections.max(plan.saturation_connections);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(120))
        .build()
        .context("while building the HTTP client")?;
    let bar = bars.stage("starting services", None);
    platform::wait_ready(&http, settings, READY_WITHIN).await?;
    bar.finish("ready");
    let pool = db::pool(&settings.database).context("while creating the database pool")?;
    let identities = identity::Identities::unused(
        &pool,
        &[setup::FIRST_INDEX..setup::FIRST_INDEX + plan.vendors as u64, 0..plan.backlog_forms + plan.paid_forms],
    )
    .await?;

    // Setup: vendors and their keys.
    let mut mail = mail::MailWatcher::start(&plan.mail_dir).context("while opening the mail directory")?;
    let bar = bars.stage("vendors register", Some(plan.vendors as u64));
    let (vendors, setup) =
        setup::vendors(&http, &endpoints.api, &identities, plan.vendors, &mut mail, platform, CREDENTIALS_WITHIN, &bar)
            .await?;
    bar.finish(format!("{} keys read from email", vendors.len()));
    bars.say(format!(
        "setup: {} vendors approved; submitted → credentials email p50 {} ms, max {} ms",
        setup.approved,
        stats::fmt_ms(setup.submit_to_email.p50_ms),
        stats::fmt_ms(setup.submit_to_email.max_ms)
    ));
    results.setup = setup;
    let emails: Vec<String> = vendors.iter().map(|vendor| vendor.email.clone()).collect();
    let member_ids: Vec<uuid::Uuid> = effects::members_by_email(&pool, &emails).await?.into_values().collect();

    let watched = [
        (mamochi_accounting::GROUP, topics::SALES.info),
        (mamochi_distributor::service::SALES_GROUP, topics::SALES.info),
        (mamochi_approval::FORMS_GROUP, topics::REGISTRATIONS.info),
        (mamochi_distributor::service::TRACKING_GROUP, topics::CART_TRACKING.info),
    ]
    .into_iter()
    .map(|(group, topic)| Watched {
        label: group.to_string(),
        group: settings.kafka.group(group),
        topic: topic.name.to_string(),
        partitions: topic.partitions,
    })
    .collect();
    let lag = LagSampler::start(&settings.kafka, watched, epoch)?;

    let sales = SaleClient::new(
        http.clone(),
        &endpoints.api,
        vendors.iter().map(|vendor| vendor.api_key.clone()).collect(),
        plan.idempotency_keys,
    );
    let ctx = stages::Context {
        sales: &sales,
        http: &http,
        api: &endpoints.api,
        gateway_metrics: &endpoints.gateway_metrics,
        pool: &pool,
        drain: plan.drain,
        epoch,
        bars,
    };
    let outcome = async {
        for rate in &plan.rates {
            let name = format!("{}/s", stats::fmt_count(*rate));
            lag.set_stage(&name);
            let load = Load::Open { rate: *rate, duration: plan.stage, connections: plan.connections };
            results.sales.push(stages::run(&ctx, &name, load).await?);
        }
        lag.set_stage("saturation");
        let load = Load::Closed { duration: plan.saturation, connections: plan.saturation_connections };
        results.sales.push(stages::run(&ctx, "saturation", load).await?);

        if plan.burst_sales > 0 && !member_ids.is_empty() {
            lag.set_stage("burst");
            let bar = bars.stage("burst to sales topic", Some(plan.burst_sales));
            let burst = burst::run(settings, codec, &pool, &member_ids, plan.burst_sales, plan.burst_wait, epoch, &bar).await?;
            bar.finish("applied");
            bars.say(format!(
                "burst: {} sales written straight to the topic; accounting applied them at {}/s, distributor at {}/s",
                burst.records,
                burst.accounting_per_s.map_or_else(|| "–".to_string(), stats::fmt_count),
                burst.distributor_per_s.map_or_else(|| "–".to_string(), stats::fmt_count)
            ));
            results.burst = Some(burst);
        }

        if plan.batching_sales > 0 && !member_ids.is_empty() {
            let bar = bars.stage("accounting store: one by one, then batched", Some(2 * plan.batching_sales));
            let grace = chrono::Duration::seconds(settings.accounting.grace_period_secs);
            let run = batching::compare(&pool, &member_ids, plan.batching_sales, settings.accounting.max_batch, grace, &bar)
                .await?;
            bar.finish(format!("{:.1}× faster batched", run.batched_per_s / run.one_by_one_per_s.max(1e-9)));
            bars.say(format!(
                "accounting store: {} sales one per transaction at {}/s, in batches of {} at {}/s",
                run.sales,
                stats::fmt_count(run.one_by_one_per_s),
                run.batch_size,
                stats::fmt_count(run.batched_per_s)
            ));
            results.batching = Some(run);
        }

        if plan.idempotency_keys {
            // What the Idempotency-Key claim costs the gateway: the same
            // closed loop, the same vendors, no header.
            lag.set_stage("saturation, no keys");
            let keyless = SaleClient::new(
                http.clone(),
                &endpoints.api,
                vendors.iter().map(|vendor| vendor.api_key.clone()).collect(),
                false,
            );
            let keyless_ctx = stages::Context { sales: &keyless, ..ctx };
            let load = Load::Closed { duration: plan.saturation, connections: plan.saturation_connections };
            results.sales.push(stages::run(&keyless_ctx, SATURATION_NO_KEYS, load).await?);
        }

        if plan.backlog_forms + plan.paid_forms > 0 {
            lag.set_stage("approval backlog");
            let bar = bars.stage("approval backlog", Some(plan.backlog_forms + plan.paid_forms));
            let run = approval::backlog(
                &http,
                &endpoints.api,
                &identities,
                &pool,
                plan.backlog_forms,
                plan.paid_forms,
                plan.saturation_connections,
                plan.approval_wait,
                epoch,
                &bar,
            )
            .await?;
            bar.finish("decided");
            bars.say(format!(
                "approval: {} standard forms ({} undecided when the paid ones arrived); paid wait p50 {} max {} ms; standard p50 {} p99 {} max {} ms",
                run.standard_submitted,
                run.backlog_when_paid,
                stats::fmt_ms(run.paid.wait.p50_ms),
                stats::fmt_ms(run.paid.wait.max_ms),
                stats::fmt_ms(run.standard.wait.p50_ms),
                stats::fmt_ms(run.standard.wait.p99_ms),
                stats::fmt_ms(run.standard.wait.max_ms)
            ));
            results.approval = Some(run);
        }

        if plan.tracking_pings > 0 && !member_ids.is_empty() {
            lag.set_stage(TRACKING_STAGE);
            let bar = bars.stage("cart tracking", Some(plan.tracking_pings));
            let case = tracking::Case {
                settings,
                codec,
                pool: &pool,
                carts: &member_ids,
                pings: plan.tracking_pings,
                wait: plan.tracking_wait,
                epoch,
            };
            let mut run = tracking::run(&case, &bar).await?;
            bar.finish(run.pings_per_s.map_or_else(|| "not drained".to_string(), |rate| format!("{}/s", stats::fmt_count(rate))));
            bars.say(tracking_report::summary_line(&run));
            if !plan.tracking_http.is_zero() {
                lag.set_stage("location pings over HTTP");
                let bar = bars.stage("pings over HTTP", Some(plan.tracking_http.as_millis() as u64));
                let client = tracking_http::PingClient {
                    http: http.clone(),
                    url: format!("{}/v1/carts/me/locations", endpoints.api),
                    keys: std::sync::Arc::new(vendors.iter().map(|vendor| vendor.api_key.clone()).collect()),
                    clock: mamochi_common::clock::Clock::from_settings(&settings.time)?,
                    centre: tracking::centre()?,
                };
                let pings =
                    tracking_http::closed_loop(&client, plan.saturation_connections, plan.tracking_http, &bar).await;
                bar.finish(format!("{}/s", stats::fmt_count(pings.accepted_per_s)));
                bars.say(tracking_report::http_line(&pings));
                run.http = Some(pings);
            }
            results.tracking = Some(run);
        }
        anyhow::Ok(())
    }
    .await;
    results.lag = lag.stop();
    if let Some(burst) = &mut results.burst {
        let peak = |group: &str| {
            results
                .lag
                .iter()
                .filter(|sample| sample.stage == "burst" && sample.group == group)
                .map(|sample| sample.lag)
                .max()
                .unwrap_or(0)
        };
        burst.peak_lag = peak(mamochi_accounting::GROUP);
        burst.distributor_peak_lag = peak(mamochi_distributor::service::SALES_GROUP);
    }
    if let Some(run) = &mut results.tracking {
        run.peak_lag = results
            .lag
            .iter()
            .filter(|sample| {
                sample.stage == TRACKING_STAGE && sample.group == mamochi_distributor::service::TRACKING_GROUP
            })
            .map(|sample| sample.lag)
            .max()
            .unwrap_or(0);
    }
    outcome.map(|()| member_ids)
}

/// How many brokers the cluster has (blocking metadata call, off the runtime).
async fn broker_count(settings: &Settings) -> anyhow::Result<usize> {
    let kafka = settings.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = mamochi_common::kafka::client_config(&kafka, "bench-brokers").create()?;
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
        anyhow::Ok(metadata.brokers().len())
    })
    .await?
}

/// What a reader needs to know to read the figures right.
fn add_notes(plan: &Plan, results: &mut Results) {
    let notes = [
        "(i) HTTP latency is measured by the client with an HDR histogram. In fixed-rate stages it runs from each request's scheduled send time, so time spent queued behind a slow server counts (no coordinated omission); requests still unanswered at the drain deadline are counted as unfinished, with the time waited so far as their latency (a lower bound).".to_string(),
        "(ii) Kafka acknowledgement inside the gateway comes from its produce histogram for the sales topic, scraped from /metrics before and after each stage; its percentiles are interpolated inside Prometheus buckets and its max is a bucket bound.".to_string(),
        format!("(iii) Committed: the moment the bench first saw the consumer's processed_events row from another session (it polls every {} ms while the load runs, longer when a poll takes longer), minus the sale's recorded_at stamped by the gateway. A row another session sees has committed, so this is at or after the commit, late by at most one poll cycle (the 'commit watcher poll' rows give its duration); the row's own processed_at is not used because PostgreSQL's now() is the transaction's start. Drain rates count until the last record was seen committed.", commits::POLL_INTERVAL.as_millis()),
        format!("A 503 answer is the gateway shedding load (over capacity, with Retry-After): it is counted as shed, not as an error, does not stop the stage and is left out of the HTTP latency; the generator does not wait the Retry-After (a closed-loop worker pauses {} ms after a 503), so the offered load stays what the stage says.", load::SHED_PAUSE.as_millis()),
        "Latency targets are read only from stages that accepted at least 99 % of the sales they offered. Carts hold 100 servings and are restocked on depletion, so sales are refused (409) while a restock is on its way; those are the right answer to a sale from an empty cart, not a failure to take it, so they are left out of that share (and shown in their own column).".to_string(),
        "(iv) Email: the credentials .eml file's modification time in the SMTP sink minus the client's submission time.".to_string(),
        "Lag is the broker's view (high watermark − committed offset), sampled every 250 ms. Services commit offsets every second in the background, so a group that keeps up still shows up to about one second of traffic.".to_string(),
        format!(
            "Sales carry {} Idempotency-Key header (the gateway then also claims and settles the key in PostgreSQL).",
            if plan.idempotency_keys { "an" } else { "no" }
        ),
        "The load generator runs in the same process, on the same cores, as every service, Kafka, PostgreSQL and the SMTP sink: on a small machine it takes CPU from what it measures.".to_string(),
        format!("Consumer groups are fresh for this run (prefix per run, started at the end of their topics), so no earlier backlog is processed or counted. Raw Kafka runs write to bench topics with the sales topic's {} partitions.", results.meta.sales_partitions),
        "Cart tracking (section 9): the tracking group's lag in the other stages is other tests' pings on the shared stack, which the bench's distributor also applies (its group starts at the topic's end when the run starts, then takes every ping written after); the alarm figures are read for the bench's own cart only, and the FOUND report closes the incident the MISSING one opened.".to_string(),
        "Scaling runs (section 7) each use a fresh group and fresh sales; the N instances of a run are N copies of the service in the bench's process, each with its own async runtime, sharing the machine's cores with Kafka and PostgreSQL. Other consumers on the shared stack (other tests, other groups) are not stopped and take CPU too.".to_string(),
    ];
    results.notes.extend(notes);
    if results.meta.machine.debug_build {
        results.notes.push("This binary is a debug build: services run unoptimised, so throughput is a floor, not the platform's capacity.".to_string());
    }
}
