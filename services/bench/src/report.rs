//! Turns [`Results`] into the report's tables (markdown and CSV) and its
//! text. Every sentence that states a figure is generated from the results:
//! nothing here claims what the run did not measure, and a stage that did
//! not run says so instead of showing zeros.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::results::{Results, SalesStage};
use crate::stats::{fmt_count, fmt_ms, Latency};
use crate::table::Table;
use crate::SATURATION_NO_KEYS;

/// The product owner's targets (reported, never asserted).
pub const TARGET_GATEWAY_PER_S: f64 = 20_000.0;
/// The keyed gateway rate as a share of the raw producer limit of the same run.
pub const TARGET_GATEWAY_SHARE: f64 = 0.15;
/// The offered rate at which the latency targets are read.
pub const TARGET_AT_RATE: f64 = 1_000.0;
/// A latency target is read only from a stage that accepted this share of
/// what it was offered: a stage that shed or refused more would show the
/// latency of the lucky few.
pub const TARGET_MIN_ACCEPTED: f64 = 0.99;
pub const TARGET_HTTP_P99_MS: f64 = 20.0;
pub const TARGET_ACCOUNTING_P99_MS: f64 = 50.0;
pub const TARGET_DISTRIBUTOR_P99_MS: f64 = 100.0;
/// Sales per second each consumer drains a backlog at (to its last commit).
pub const TARGET_DRAIN_PER_S: f64 = 20_000.0;
pub const TARGET_APPROVAL_PER_S: f64 = 2_000.0;
pub const TARGET_PAID_WAIT_MS: f64 = 1_000.0;
pub const TARGET_PAID_BACKLOG: u64 = 10_000;

fn opt_ms(latency: Option<Latency>, pick: fn(&Latency) -> f64) -> String {
    latency.map_or_else(|| "–".to_string(), |latency| fmt_ms(pick(&latency)))
}

fn opt_rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_string(), fmt_count)
}

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 && part.is_finite() {
        format!("{:.1} %", part / whole * 100.0)
    } else {
        "–".to_string()
    }
}

fn stage_label(stage: &SalesStage) -> String {
    match stage.offered_per_s {
        Some(rate) => format!("{}/s", fmt_count(rate)),
        None => format!("{} ×{}", stage.name, stage.connections),
    }
}

/// The highest accepted rate of any sales stage.
pub fn best_gateway_rate(results: &Results) -> Option<f64> {
    results.sales.iter().map(|stage| stage.accepted_per_s).filter(|rate| *rate > 0.0).reduce(f64::max)
}

/// The headline gateway stage: saturation on the keyed path (every sale with
/// an Idempotency-Key, as the vendor app sends them).
pub fn keyed_saturation(results: &Results) -> Option<&SalesStage> {
    results.sales.iter().find(|stage| stage.offered_per_s.is_none() && stage.idempotency_keys)
}

/// The fixed-rate stage nearest to `rate` (exact when the plan has it).
pub fn stage_nearest(results: &Results, rate: f64) -> Option<&SalesStage> {
    results.sales.iter().filter(|stage| stage.offered_per_s.is_some()).min_by(|a, b| {
        let distance = |stage: &SalesStage| (stage.offered_per_s.unwrap_or(f64::INFINITY) - rate).abs();
        distance(a).total_cmp(&distance(b))
    })
}

/// The fixed-rate stage offered exactly `rate` (within 1 %).
pub fn stage_at(results: &Results, rate: f64) -> Option<&SalesStage> {
    stage_nearest(results, rate)
        .filter(|stage| stage.offered_per_s.is_some_and(|offered| (offered - rate).abs() <= rate * 0.01))
}

/// A stage kept up when it accepted at least 95 % of what it was offered
/// and nothing was left unanswered.
pub fn kept_up(stage: &SalesStage) -> bool {
    stage
        .offered_per_s
        .is_some_and(|rate| stage.accepted_per_s >= 0.95 * rate && stage.unfinished == 0 && stage.failed == 0)
}

/// A stage's latency, or why it is not reported: nothing was measured, or
/// the stage accepted less than [`TARGET_MIN_ACCEPTED`] of its sales.
pub fn gated_latency(stage: &SalesStage, latency: Option<Latency>) -> Result<Latency, String> {
    let share = stage.accepted_share().unwrap_or(0.0);
    if share < TARGET_MIN_ACCEPTED {
        return Err(format!("not measured: stage accepted {}", percent(share, 1.0)));
    }
    latency.filter(|latency| latency.count > 0).ok_or_else(|| "not measured: no sale was seen committed".to_string())
}

/// The raw producer limit of this run (the platform's producer config).
fn raw_limit(results: &Results) -> Option<f64> {
    results.raw_kafka.platform_producer.as_ref().map(|run| run.records_per_sec).filter(|rate| *rate > 0.0)
}

pub fn targets(results: &Results) -> Table {
    let mut table = Table::new(["target", "goal", "this run", "÷ raw producer limit", "met"]);
    let limit = raw_limit(results);
    let share = |rate: f64| limit.map_or_else(|| "–".to_string(), |limit| percent(rate, limit));
    let verdict = |met: Option<bool>| {
        match met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not measured",
        }
        .to_string()
    };

    let keyed = keyed_saturation(results);
    table.row([
        "gateway: keyed sales (Idempotency-Key) accepted at saturation".to_string(),
        format!(
            "≥ {}/s and ≥ {} of the raw limit",
            fmt_count(TARGET_GATEWAY_PER_S),
            percent(TARGET_GATEWAY_SHARE, 1.0)
        ),
        keyed.map_or_else(
            || "not measured: no keyed saturation stage ran".to_string(),
            |stage| {
                format!(
                    "{}/s (closed loop ×{}, {} shed)",
                    fmt_count(stage.accepted_per_s),
                    stage.connections,
                    percent(stage.shed_share().unwrap_or(0.0), 1.0)
                )
            },
        ),
        keyed.map_or_else(|| "–".to_string(), |stage| share(stage.accepted_per_s)),
        verdict(keyed.map(|stage| {
            stage.accepted_per_s >= TARGET_GATEWAY_PER_S
                && limit.is_some_and(|limit| stage.accepted_per_s >= TARGET_GATEWAY_SHARE * limit)
        })),
    ]);

    let at_rate = stage_at(results, TARGET_AT_RATE);
    let load_share = format!("load {}", share(TARGET_AT_RATE));
    type Pick = fn(&SalesStage) -> Option<Latency>;
    let latencies: [(&str, f64, Pick); 3] = [
        ("HTTP 201 p99", TARGET_HTTP_P99_MS, |stage| Some(stage.http)),
        ("sale recorded → accounting committed p99", TARGET_ACCOUNTING_P99_MS, |stage| stage.accounting),
        ("sale recorded → distributor committed p99", TARGET_DISTRIBUTOR_P99_MS, |stage| stage.distributor),
    ];
    for (what, goal, pick) in latencies {
        let reading = at_rate.map_or_else(
            || Err(format!("not measured: no {}/s stage ran", fmt_count(TARGET_AT_RATE))),
            |stage| gated_latency(stage, pick(stage)),
        );
        table.row([
            format!("{what} at {} sales/s offered", fmt_count(TARGET_AT_RATE)),
            format!("≤ {} ms, ≥ {} accepted", fmt_ms(goal), percent(TARGET_MIN_ACCEPTED, 1.0)),
            match &reading {
                Ok(latency) => format!("{} ms", fmt_ms(latency.p99_ms)),
                Err(why) => why.clone(),
            },
            load_share.clone(),
            verdict(reading.ok().map(|latency| latency.p99_ms <= goal)),
        ]);
    }

    let burst = results.burst.as_ref();
    let drains: [(&str, Option<f64>, u64); 2] = [
        (
            "distributor",
            burst.and_then(|burst| burst.distributor_per_s),
            burst.map_or(0, |burst| burst.distributor_applied),
        ),
        (
            "accounting",
            burst.and_then(|burst| burst.accounting_per_s),
            burst.map_or(0, |burst| burst.accounting_applied),
        ),
    ];
    for (consumer, rate, applied) in drains {
        table.row([
            format!("{consumer} draining a backlog of sales, to its last commit"),
            format!("≥ {}/s", fmt_count(TARGET_DRAIN_PER_S)),
            match (burst, rate) {
                (None, _) => "not measured: no burst ran".to_string(),
                (Some(_), Some(rate)) => format!("{}/s", fmt_count(rate)),
                (Some(burst), None) => format!(
                    "not measured: {} of {} committed within the wait",
                    fmt_count(applied as f64),
                    fmt_count(burst.records as f64)
                ),
            },
            rate.map_or_else(|| "–".to_string(), share),
            verdict(rate.map(|rate| rate >= TARGET_DRAIN_PER_S)),
        ]);
    }

    let approval = results.approval.as_ref();
    let decided = approval.and_then(|run| run.decided_per_s);
    table.row([
        "approval: forms decided/s over a backlog, to its last decision".to_string(),
        format!("≥ {}/s", fmt_count(TARGET_APPROVAL_PER_S)),
        match (approval, decided) {
            (None, _) => "not measured: no approval backlog ran".to_string(),
            (Some(run), Some(rate)) => format!(
                "{}/s over {} forms",
                fmt_count(rate),
                fmt_count((run.standard_submitted + run.paid_submitted) as f64)
            ),
            (Some(_), None) => "not measured: the backlog was not decided within the wait".to_string(),
        },
        decided.map_or_else(|| "–".to_string(), share),
        verdict(decided.map(|rate| rate >= TARGET_APPROVAL_PER_S)),
    ]);

    let paid = approval.filter(|run| run.paid.decided > 0);
    let full_backlog = paid.filter(|run| run.standard_submitted >= TARGET_PAID_BACKLOG);
    table.row([
        format!("paid form decided behind {} standard forms", fmt_count(TARGET_PAID_BACKLOG as f64)),
        format!("≤ {} s", fmt_count(TARGET_PAID_WAIT_MS / 1000.0)),
        paid.map_or_else(
            || "not measured: no paid form was decided".to_string(),
            |run| {
                format!(
                    "max {} ms behind {} standard forms ({} undecided when the paid ones arrived){}",
                    fmt_ms(run.paid.wait.max_ms),
                    fmt_count(run.standard_submitted as f64),
                    fmt_count(run.backlog_when_paid as f64),
                    if full_backlog.is_some() { "" } else { "; backlog smaller than the target's" }
                )
            },
        ),
        paid.map_or_else(|| "–".to_string(), |run| format!("backlog sent at {}", share(run.submit_per_s))),
        verdict(full_backlog.map(|run| run.paid.wait.max_ms <= TARGET_PAID_WAIT_MS && run.paid.undecided == 0)),
    ]);
    table
}

pub fn raw_kafka(results: &Results) -> Table {
    let mut table = Table::new([
        "measurement",
        "records",
        "value bytes",
        "records/s",
        "MB/s",
        "avg ms",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
    ]);
    if let Some(run) = &results.raw_kafka.platform_producer {
        table.row([
            "rdkafka, platform producer config (idempotent, acks=all), Avro SaleRecorded".to_string(),
            fmt_count(run.records as f64),
            format!("{} (+{} key)", run.value_bytes, run.key_bytes),
            fmt_count(run.records_per_sec),
            format!("{:.2}", run.mb_per_sec),
            fmt_ms(run.ack.mean_ms),
            fmt_ms(run.ack.p50_ms),
            fmt_ms(run.ack.p95_ms),
            fmt_ms(run.ack.p99_ms),
            fmt_ms(run.ack.max_ms),
        ]);
    }
    if let Some(perf) = &results.raw_kafka.perf_test {
        table.row([
            "kafka-producer-perf-test (Java client, acks=all)".to_string(),
            fmt_count(perf.records as f64),
            results.raw_kafka.platform_producer.as_ref().map_or_else(String::new, |run| run.value_bytes.to_string()),
            fmt_count(perf.records_per_sec),
            format!("{:.2}", perf.mb_per_sec),
            fmt_ms(perf.avg_ms),
            fmt_ms(perf.p50_ms),
            fmt_ms(perf.p95_ms),
            fmt_ms(perf.p99_ms),
            fmt_ms(perf.max_ms),
        ]);
    }
    table
}

pub fn setup(results: &Results) -> Table {
    let mut table = Table::new(["step", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"]);
    let setup = &results.setup;
    for (step, latency) in [
        ("POST /v1/registrations answered (202)", setup.submit_http),
        ("submitted → credentials email in the SMTP sink", setup.submit_to_email),
    ] {
        table.row([
            step.to_string(),
            latency.count.to_string(),
            fmt_ms(latency.p50_ms),
            fmt_ms(latency.p95_ms),
            fmt_ms(latency.p99_ms),
            fmt_ms(latency.max_ms),
        ]);
    }
    table
}

pub fn sales_throughput(results: &Results) -> Table {
    let mut table = Table::new([
        "stage",
        "offered/s",
        "sent",
        "accepted",
        "no stock (409)",
        "other 4xx",
        "accepted % (of sent − 409)",
        "shed (503)",
        "503 %",
        "failed",
        "unfinished",
        "accepted/s",
        "accounting committed/s",
        "accounting caught up after (s)",
    ]);
    let share = |value: Option<f64>| value.map_or_else(|| "–".to_string(), |value| percent(value, 1.0));
    for stage in &results.sales {
        table.row([
            stage_label(stage),
            opt_rate(stage.offered_per_s),
            fmt_count(stage.sent as f64),
            fmt_count(stage.accepted as f64),
            fmt_count(stage.refused_stock as f64),
            fmt_count(stage.refused.saturating_sub(stage.refused_stock) as f64),
            share(stage.accepted_share()),
            fmt_count(stage.shed as f64),
            share(stage.shed_share()),
            fmt_count(stage.failed as f64),
            fmt_count(stage.unfinished as f64),
            fmt_count(stage.accepted_per_s),
            opt_rate(stage.accounting_applied_per_s),
            stage.accounting_drain_s.map_or_else(|| "–".to_string(), |seconds| format!("{seconds:.2}")),
        ]);
    }
    table
}

pub fn sales_latency(results: &Results) -> Table {
    let mut table = Table::new(["stage", "step", "count", "mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms"]);
    for stage in &results.sales {
        let steps = [
            ("(i) HTTP answered (not 503)", Some(stage.http)),
            ("(ii) Kafka ack in the gateway (interpolated)", stage.kafka_ack),
            ("(iii) recorded → accounting committed (seen)", stage.accounting),
            ("(iii) recorded → distributor committed (seen)", stage.distributor),
            ("    commit watcher poll (resolution)", stage.commit_poll),
        ];
        for (step, latency) in steps {
            table.row([
                stage_label(stage),
                step.to_string(),
                latency.map_or_else(|| "–".to_string(), |latency| latency.count.to_string()),
                opt_ms(latency, |l| l.mean_ms),
                opt_ms(latency, |l| l.p50_ms),
                opt_ms(latency, |l| l.p95_ms),
                opt_ms(latency, |l| l.p99_ms),
                opt_ms(latency, |l| l.max_ms),
            ]);
        }
    }
    table
}

pub fn burst(results: &Results) -> Table {
    let mut table = Table::new([
        "consumer",
        "records",
        "committed",
        "first written → last committed (s)",
        "sales/s",
        "peak lag",
        "÷ raw producer limit",
    ]);
    if let Some(burst) = &results.burst {
        let seconds =
            |value: Option<f64>| value.map_or_else(|| "not drained".to_string(), |seconds| format!("{seconds:.2}"));
        let share = |rate: Option<f64>| match (rate, raw_limit(results)) {
            (Some(rate), Some(limit)) => percent(rate, limit),
            _ => "–".to_string(),
        };
        for (consumer, applied, drained_s, rate, lag) in [
            ("accounting", burst.accounting_applied, burst.accounting_s, burst.accounting_per_s, burst.peak_lag),
            (
                "distributor",
                burst.distributor_applied,
                burst.distributor_s,
                burst.distributor_per_s,
                burst.distributor_peak_lag,
            ),
        ] {
            table.row([
                consumer.to_string(),
                fmt_count(burst.records as f64),
                fmt_count(applied as f64),
                seconds(drained_s),
                opt_rate(rate),
                fmt_count(lag as f64),
                share(rate),
            ]);
        }
    }
    table
}

/// Peak and final lag per stage and group.
pub fn lag_summary(results: &Results) -> Table {
    let mut table = Table::new(["stage", "group", "topic", "samples", "peak lag", "lag at stage end"]);
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for sample in &results.lag {
        let key = (sample.stage.clone(), sample.group.clone(), sample.topic.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    for (stage, group, topic) in keys {
        let samples: Vec<i64> = results
            .lag
            .iter()
            .filter(|s| s.stage == stage && s.group == group && s.topic == topic)
            .map(|s| s.lag)
            .collect();
        table.row([
            stage,
            group,
            topic,
            samples.len().to_string(),
            fmt_count(samples.iter().copied().max().unwrap_or(0) as f64),
            fmt_count(samples.last().copied().unwrap_or(0) as f64),
        ]);
    }
    table
}

pub fn lag_samples(results: &Results) -> Table {
    let mut table = Table::new(["t_s", "stage", "group", "topic", "lag"]);
    for sample in &results.lag {
        table.row([
            format!("{:.3}", sample.t_s),
            sample.stage.clone(),
            sample.group.clone(),
            sample.topic.clone(),
            sample.lag.to_string(),
        ]);
    }
    table
}

pub fn approval(results: &Results) -> Table {
    let mut table = Table::new([
        "lane",
        "submitted",
        "decided",
        "approved",
        "rejected",
        "manual review",
        "undecided",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
    ]);
    if let Some(run) = &results.approval {
        for (lane, submitted, wait) in
            [("paid", run.paid_submitted, &run.paid), ("standard", run.standard_submitted, &run.standard)]
        {
            table.row([
                lane.to_string(),
                fmt_count(submitted as f64),
                fmt_count(wait.decided as f64),
                fmt_count(wait.approved as f64),
                fmt_count(wait.rejected as f64),
                fmt_count(wait.manual_review as f64),
                fmt_count(wait.undecided as f64),
                fmt_ms(wait.wait.p50_ms),
                fmt_ms(wait.wait.p95_ms),
                fmt_ms(wait.wait.p99_ms),
                fmt_ms(wait.wait.max_ms),
            ]);
        }
    }
    table
}

pub fn approval_forms(results: &Results) -> Table {
    let mut table = Table::new(["lane", "submitted_s", "wait_ms", "status"]);
    for form in results.approval.iter().flat_map(|run| &run.forms) {
        table.row([
            if form.paid { "paid" } else { "standard" }.to_string(),
            format!("{:.3}", form.submitted_s),
            form.wait_ms.map_or_else(String::new, |wait| format!("{wait:.1}")),
            form.status.clone(),
        ]);
    }
    table
}

/// "Question 3": how latency and throughput change as more messages flow,
/// stated from this run's figures.
pub fn question_3(results: &Results) -> String {
    let mut text = String::new();
    let mut open: Vec<&SalesStage> = results.sales.iter().filter(|stage| stage.offered_per_s.is_some()).collect();
    open.sort_by(|a, b| a.offered_per_s.unwrap_or(0.0).total_cmp(&b.offered_per_s.unwrap_or(0.0)));
    if open.is_empty() {
        text.push_str("No fixed-rate stage ran, so this run cannot say how load changes latency.\n");
        return text;
    }
    let kept: Vec<&&SalesStage> = open.iter().filter(|stage| kept_up(stage)).collect();
    let behind = open.iter().find(|stage| !kept_up(stage));
    match (kept.last(), behind) {
        (Some(last), None) => {
            let _ = writeln!(
                text,
                "- **Throughput.** The platform kept up with every offered rate, up to {}/s (accepted {}/s). The saturation point lies above the rates tried.",
                fmt_count(last.offered_per_s.unwrap_or(0.0)),
                fmt_count(last.accepted_per_s)
            );
        }
        (Some(last), Some(first_behind)) => {
            let _ = writeln!(
                text,
                "- **Throughput.** Accepted sales followed the offered rate up to {}/s (accepted {}/s). At {}/s offered it accepted only {}/s ({} of offered): the gateway saturates between those two rates on this machine.",
                fmt_count(last.offered_per_s.unwrap_or(0.0)),
                fmt_count(last.accepted_per_s),
                fmt_count(first_behind.offered_per_s.unwrap_or(0.0)),
                fmt_count(first_behind.accepted_per_s),
                percent(first_behind.accepted_per_s, first_behind.offered_per_s.unwrap_or(0.0)),
            );
        }
        (None, Some(first_behind)) => {
            let _ = writeln!(
                text,
                "- **Throughput.** Even the lowest offered rate, {}/s, was not sustained: {}/s were accepted ({} of offered).",
                fmt_count(first_behind.offered_per_s.unwrap_or(0.0)),
                fmt_count(first_behind.accepted_per_s),
                percent(first_behind.accepted_per_s, first_behind.offered_per_s.unwrap_or(0.0)),
            );
        }
        (None, None) => {}
    }
    if let Some(saturation) = results.sales.iter().find(|stage| stage.offered_per_s.is_none()) {
        let _ = writeln!(
            text,
            "- **Saturation.** With {} connections sending {} back to back, the gateway accepted {}/s ({} shed with 503), with HTTP p50 {} ms and p99 {} ms per request.",
            saturation.connections,
            if saturation.idempotency_keys { "keyed sales" } else { "sales without an Idempotency-Key" },
            fmt_count(saturation.accepted_per_s),
            percent(saturation.shed_share().unwrap_or(0.0), 1.0),
            fmt_ms(saturation.http.p50_ms),
            fmt_ms(saturation.http.p99_ms),
        );
    }
    let (low, high) = (open[0], open[open.len() - 1]);
    if open.len() > 1 {
        let factor = if low.http.p99_ms > 0.0 { high.http.p99_ms / low.http.p99_ms } else { f64::NAN };
        let _ = writeln!(
            text,
            "- **HTTP latency.** From {}/s to {}/s offered, p50 went from {} to {} ms and p99 from {} to {} ms (×{:.1}), measured from each request's scheduled send time.",
            fmt_count(low.offered_per_s.unwrap_or(0.0)),
            fmt_count(high.offered_per_s.unwrap_or(0.0)),
            fmt_ms(low.http.p50_ms),
            fmt_ms(high.http.p50_ms),
            fmt_ms(low.http.p99_ms),
            fmt_ms(high.http.p99_ms),
            factor,
        );
        if let (Some(first), Some(last)) = (kept.first(), kept.last()) {
            if first.offered_per_s != last.offered_per_s {
                let ratio = last.http.p99_ms / first.http.p99_ms.max(1e-9);
                let shape = if ratio <= 2.0 { "stayed nearly flat" } else { "already rose" };
                let _ = writeln!(
                    text,
                    "  While the platform kept up ({}/s to {}/s), p99 {} ({} → {} ms); past saturation, requests queue and latency grows with the time spent over capacity.",
                    fmt_count(first.offered_per_s.unwrap_or(0.0)),
                    fmt_count(last.offered_per_s.unwrap_or(0.0)),
                    shape,
                    fmt_ms(first.http.p99_ms),
                    fmt_ms(last.http.p99_ms),
                );
            }
        }
    }
    // Only stages that accepted enough for their latency to mean something.
    let accounting: Vec<(&SalesStage, Latency)> =
        open.iter().filter_map(|stage| Some((*stage, gated_latency(stage, stage.accounting).ok()?))).collect();
    if let [(only, latency)] = accounting.as_slice() {
        let _ = writeln!(
            text,
            "- **End to end.** Sale recorded → accounting row seen committed (stages that accepted ≥ 99 %): p50 {} ms and p99 {} ms at {}/s, the only such stage.",
            fmt_ms(latency.p50_ms),
            fmt_ms(latency.p99_ms),
            fmt_count(only.offered_per_s.unwrap_or(0.0)),
        );
    } else if let (Some((first, low_latency)), Some((last, high_latency))) = (accounting.first(), accounting.last()) {
        let _ = writeln!(
            text,
            "- **End to end.** Sale recorded → accounting row seen committed (stages that accepted ≥ 99 %): p50 {} ms and p99 {} ms at {}/s; p50 {} ms and p99 {} ms at {}/s.",
            fmt_ms(low_latency.p50_ms),
            fmt_ms(low_latency.p99_ms),
            fmt_count(first.offered_per_s.unwrap_or(0.0)),
            fmt_ms(high_latency.p50_ms),
            fmt_ms(high_latency.p99_ms),
            fmt_count(last.offered_per_s.unwrap_or(0.0)),
        );
    }
    let peak = results.lag.iter().filter(|sample| sample.group == "accounting").max_by_key(|sample| sample.lag);
    if let Some(peak) = peak {
        let _ = writeln!(
            text,
            "- **Backlog.** The accounting group's lag peaked at {} records (stage {}, {:.1} s into the run). The services commit offsets every second, so a group that keeps up still shows about one second of traffic as lag; lag that keeps growing is a backlog.",
            fmt_count(peak.lag as f64),
            peak.stage,
            peak.t_s
        );
    }
    if let Some(burst) = &results.burst {
        let _ = writeln!(
            text,
            "- **Draining a backlog.** {} sales written straight to the topic were applied by accounting {} and by the distributor {}; lag peaked at {} records.",
            fmt_count(burst.records as f64),
            burst.accounting_per_s.map_or_else(|| "not completely within the wait".to_string(), |rate| format!("at {}/s", fmt_count(rate))),
            burst.distributor_per_s.map_or_else(|| "not completely within the wait".to_string(), |rate| format!("at {}/s", fmt_count(rate))),
            fmt_count(burst.peak_lag as f64),
        );
    }
    if let Some(run) = &results.approval {
        let _ = writeln!(
            text,
            "- **Priority under a backlog.** With {} standard forms submitted ({} still undecided when the paid forms arrived), paid forms waited p50 {} ms, max {} ms; standard forms p50 {} ms, p99 {} ms, max {} ms.",
            fmt_count(run.standard_submitted as f64),
            fmt_count(run.backlog_when_paid as f64),
            fmt_ms(run.paid.wait.p50_ms),
            fmt_ms(run.paid.wait.max_ms),
            fmt_ms(run.standard.wait.p50_ms),
            fmt_ms(run.standard.wait.p99_ms),
            fmt_ms(run.standard.wait.max_ms),
        );
    }
    text
}

/// Before and after, measured in this run: batching accounting's
/// transactions, and the gateway with and without the Idempotency-Key claim.
pub fn before_after(results: &Results) -> Table {
    let mut table = Table::new(["comparison", "before", "after", "after ÷ before"]);
    let ratio =
        |before: f64, after: f64| if before > 0.0 { format!("{:.1}×", after / before) } else { "–".to_string() };
    if let Some(run) = &results.batching {
        table.row([
            format!(
                "accounting store, {} fresh sales: one per transaction → batches of {} (sales/s)",
                fmt_count(run.sales as f64),
                fmt_count(run.batch_size as f64)
            ),
            fmt_count(run.one_by_one_per_s),
            fmt_count(run.batched_per_s),
            ratio(run.one_by_one_per_s, run.batched_per_s),
        ]);
    }
    let keyed = results.sales.iter().find(|stage| stage.offered_per_s.is_none() && stage.name != SATURATION_NO_KEYS);
    let keyless = results.sales.iter().find(|stage| stage.name == SATURATION_NO_KEYS);
    if let (Some(keyed), Some(keyless)) = (keyed, keyless) {
        table.row([
            format!(
                "gateway at saturation ×{}: sales with an Idempotency-Key → without (accepted/s)",
                keyed.connections
            ),
            fmt_count(keyed.accepted_per_s),
            fmt_count(keyless.accepted_per_s),
            ratio(keyed.accepted_per_s, keyless.accepted_per_s),
        ]);
        table.row([
            "  the same, HTTP p50 (ms)".to_string(),
            fmt_ms(keyed.http.p50_ms),
            fmt_ms(keyless.http.p50_ms),
            ratio(keyed.http.p50_ms, keyless.http.p50_ms),
        ]);
    }
    table
}

/// Our throughput as a share of the two raw limits.
pub fn ratios(results: &Results) -> Table {
    let mut table =
        Table::new(["our throughput", "sales/s", "÷ platform producer config", "÷ kafka-producer-perf-test"]);
    let producer = results.raw_kafka.platform_producer.as_ref().map(|run| run.records_per_sec);
    let perf = results.raw_kafka.perf_test.map(|summary| summary.records_per_sec);
    let share = |ours: f64, limit: Option<f64>| limit.map_or_else(|| "–".to_string(), |limit| percent(ours, limit));
    let mut row = |label: String, ours: Option<f64>| {
        if let Some(ours) = ours {
            table.row([label, fmt_count(ours), share(ours, producer), share(ours, perf)]);
        }
    };
    row(
        "gateway, keyed sales at saturation (HTTP, acks=all)".to_string(),
        keyed_saturation(results).map(|stage| stage.accepted_per_s),
    );
    row("gateway, best accepted rate of any stage".to_string(), best_gateway_rate(results));
    row("accounting, draining a backlog".to_string(), results.burst.as_ref().and_then(|burst| burst.accounting_per_s));
    row(
        "distributor, draining a backlog".to_string(),
        results.burst.as_ref().and_then(|burst| burst.distributor_per_s),
    );
    row(
        "distributor-tracking, draining location pings (pings/s)".to_string(),
        results.tracking.as_ref().and_then(|run| run.pings_per_s),
    );
    table
}

/// Every table with its CSV name, in report order.
pub fn tables(results: &Results) -> Vec<(&'static str, Table)> {
    vec![
        ("targets.csv", targets(results)),
        ("raw_kafka.csv", raw_kafka(results)),
        ("setup.csv", setup(results)),
        ("sales_throughput.csv", sales_throughput(results)),
        ("sales_latency.csv", sales_latency(results)),
        ("burst.csv", burst(results)),
        ("before_after.csv", before_after(results)),
        ("lag_summary.csv", lag_summary(results)),
        ("lag_samples.csv", lag_samples(results)),
        ("approval.csv", approval(results)),
        ("approval_forms.csv", approval_forms(results)),
        ("ratios.csv", ratios(results)),
        ("scaling.csv", crate::scaling_report::scaling_table(results)),
        ("autoscaling.csv", crate::scaling_report::autoscaling_table(results)),
        ("tracking_drain.csv", crate::tracking_report::drain_table(results)),
        ("tracking_reports.csv", crate::tracking_report::reports_table(results)),
        ("tracking_http.csv", crate::tracking_report::http_table(results)),
    ]
}

/// report.md.
pub fn markdown(results: &Results) -> String {
    let meta = &results.meta;
    let machine = &meta.machine;
    let mut text = String::new();
    let _ = writeln!(text, "# MAMOCHI benchmark report\n");
    let _ = writeln!(
        text,
        "Generated by `mamochi bench{}` on {} (UTC), run took {:.0} s. Every figure below was measured in this run on the real local stack. Each summary table is also a CSV file beside this report; the raw samples ({}) are written beside it too but are not committed.\n",
        if meta.quick { " --quick" } else { "" },
        meta.started_at.map_or_else(|| "?".to_string(), |at| at.format("%Y-%m-%d %H:%M").to_string()),
        match (meta.started_at, meta.finished_at) {
            (Some(start), Some(end)) => (end - start).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        },
        RAW_FILES.join(", ")
    );
    let mut machine_table = Table::text(["machine", "value"]);
    machine_table.row(["CPU", &format!("{} logical cores, {}", machine.cores, machine.cpu_model)]);
    machine_table.row(["memory", &format!("{:.1} GiB", machine.memory_gib)]);
    machine_table.row(["kernel", &machine.kernel]);
    machine_table.row([
        "Kafka",
        &format!("{} broker(s), sales topic with {} partitions", meta.kafka_brokers, meta.sales_partitions),
    ]);
    machine_table.row([
        "build",
        if machine.debug_build {
            "debug (cargo build without --release): figures are well below what a release build reaches"
        } else {
            "release"
        },
    ]);
    machine_table.row([
        "load generator",
        "in the same process and on the same cores as every service, Kafka, PostgreSQL and the SMTP sink",
    ]);
    machine_table.row([
        "platform settings",
        &format!(
            "as configured (no bench overrides but stock): database pool {} connections per service, producer linger.ms {}",
            meta.db_pool_size, meta.kafka_linger_ms
        ),
    ]);
    machine_table.row(["stock", &meta.stock_policy]);
    text.push_str(&machine_table.to_markdown());

    let _ = writeln!(
        text,
        "\n## Targets\n\nThe product owner's targets, next to what this run reached (reported, not asserted). A latency is read only from a stage that accepted at least {} of the sales it was offered (201 answers ÷ requests sent, less the 409s for an empty cart, which are the right answer to those sales); otherwise the row says what the stage accepted. The ÷ column relates each figure to the raw producer limit of this run (section 1): a rate as a share of it, a latency by the load it was measured at.\n",
        percent(TARGET_MIN_ACCEPTED, 1.0)
    );
    text.push_str(&targets(results).to_markdown());

    let _ = writeln!(text, "\n## 1. Raw Kafka limits on the same broker\n");
    text.push_str(&raw_kafka(results).to_markdown());
    for error in [&results.raw_kafka.platform_producer_error, &results.raw_kafka.perf_test_error].into_iter().flatten()
    {
        let _ = writeln!(text, "\n> not measured: {error}");
    }

    let _ = writeln!(text, "\n## 2. Setup: {} vendors register over HTTP\n", results.setup.vendors);
    text.push_str(&setup(results).to_markdown());

    let _ = writeln!(
        text,
        "\n## 3. Sales over HTTP\n\nFixed-rate stages are open loop (each request has a scheduled send time and its latency counts from then, so queueing is not hidden); the saturation stages are closed loop. Each stage waits for the consumers to commit its sales before the next starts. A 503 (the gateway shedding load, with Retry-After) is counted apart from errors and left out of the HTTP latency; the 503 % column is its share of the requests sent. Committed means the consumer's row was seen by another session (polled while the load runs): at or after the commit, never the transaction's start.\n"
    );
    text.push_str(&sales_throughput(results).to_markdown());
    text.push('\n');
    text.push_str(&sales_latency(results).to_markdown());
    let _ = writeln!(
        text,
        "\n![latency vs offered load](latency_vs_load.svg)\n\n![throughput vs offered load](throughput_vs_load.svg)"
    );

    let _ = writeln!(
        text,
        "\n## 4. Consumers draining a backlog\n\nSales written straight to the sales topic, so the gateway is not the limit; accounting and the distributor both consume them. Each rate is the records over the time from the first record written to that consumer's **last** row seen committed.\n"
    );
    if results.burst.is_some() {
        text.push_str(&burst(results).to_markdown());
    } else {
        text.push_str("Not run in this plan.\n");
    }

    let _ = writeln!(
        text,
        "\n### Before and after, in this run\n\nAccounting applies sales in batches of `accounting.max_batch`, one transaction (one commit, one fsync of PostgreSQL's log) per batch; before, it committed each sale. Here its store applies the same number of fresh sales both ways, straight from the bench (no Kafka in the path). The second comparison repeats the saturation stage without Idempotency-Key headers: each key's claim and its settle are two more rows per sale in the gateway, written in group commits shared with other requests (multi-row statements that do not wait for PostgreSQL's log flush).\n"
    );
    let comparisons = before_after(results);
    if comparisons.rows.is_empty() {
        text.push_str("Not run in this plan.\n");
    } else {
        text.push_str(&comparisons.to_markdown());
    }

    let _ = writeln!(text, "\n## 5. Consumer lag over time\n");
    text.push_str(&lag_summary(results).to_markdown());
    let _ = writeln!(text, "\n![consumer lag](consumer_lag.svg)");

    let _ = writeln!(text, "\n## 6. Paid vs standard approval wait under a backlog\n");
    if let Some(run) = &results.approval {
        let _ = writeln!(
            text,
            "{} standard forms submitted at {}/s ({} refused), then {} paid forms; {} standard forms were still undecided when the first paid form was sent. Approval decided {} forms/s over the run.\n",
            fmt_count(run.standard_submitted as f64),
            fmt_count(run.submit_per_s),
            run.submit_failed,
            run.paid_submitted,
            fmt_count(run.backlog_when_paid as f64),
            opt_rate(run.decided_per_s),
        );
        text.push_str(&approval(results).to_markdown());
    } else {
        text.push_str("Not run in this plan.\n");
    }
    let _ = writeln!(text, "\n![approval wait](approval_wait.svg)");
    text.push_str(&crate::scaling_report::markdown(results));
    text.push_str(&crate::tracking_report::markdown(results));

    let _ = writeln!(text, "\n## Question 3: how latency and throughput change as more messages flow\n");
    text.push_str(&question_3(results));

    let _ = writeln!(text, "\n## Our throughput as a share of the raw Kafka limits\n");
    text.push_str(&ratios(results).to_markdown());

    let _ = writeln!(text, "\n## How to read these figures\n");
    for note in &results.notes {
        let _ = writeln!(text, "- {note}");
    }
    text
}

/// Per-sample files: written beside the report, never committed
/// (docs/report/.gitignore lists them).
pub const RAW_FILES: [&str; 3] = ["results.json", "lag_samples.csv", "approval_forms.csv"];

/// Writes results.json, every CSV and report.md into `dir`.
pub fn write(results: &Results, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(results)?;
    std::fs::write(dir.join("results.json"), json).context("while writing results.json")?;
    for (name, table) in tables(results) {
        table.write_csv(&dir.join(name))?;
    }
    std::fs::write(dir.join("report.md"), markdown(results)).context("while writing report.md")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{ApprovalRun, BatchingRun, Burst, LaneWait, ProducerRun};

    fn stage(rate: Option<f64>, accepted: f64, p99: f64) -> SalesStage {
        SalesStage {
            name: "s".into(),
            offered_per_s: rate,
            idempotency_keys: true,
            connections: 8,
            sent: 1_000,
            accepted: 1_000,
            accepted_per_s: accepted,
            http: Latency { count: 10, p50_ms: p99 / 3.0, p99_ms: p99, ..Latency::default() },
            accounting: Some(Latency { count: 10, p50_ms: 8.0, p99_ms: 30.0, ..Latency::default() }),
            ..SalesStage::default()
        }
    }

    fn sample() -> Results {
        Results {
            sales: vec![
                stage(Some(250.0), 250.0, 9.0),
                stage(Some(1000.0), 990.0, 12.0),
                stage(Some(4000.0), 1500.0, 2400.0),
                stage(None, 1600.0, 40.0),
            ],
            approval: Some(ApprovalRun {
                standard_submitted: 10_000,
                backlog_when_paid: 9_000,
                paid: LaneWait {
                    decided: 3,
                    wait: Latency { max_ms: 400.0, ..Latency::default() },
                    ..LaneWait::default()
                },
                ..ApprovalRun::default()
            }),
            ..Results::default()
        }
    }

    #[test]
    fn question_3_is_stated_from_the_figures() {
        let text = question_3(&sample());
        assert!(text.contains("up to 1,000/s (accepted 990/s)"), "{text}");
        assert!(text.contains("At 4,000/s offered it accepted only 1,500/s (37.5 % of offered)"), "{text}");
        assert!(text.contains("accepted 1,600/s"), "{text}");
        assert!(text.contains("stayed nearly flat"), "{text}");
    }

    #[test]
    fn targets_say_what_was_reached_and_what_was_not_measured() {
        let mut results = sample();
        results.raw_kafka.platform_producer =
            Some(ProducerRun { records_per_sec: 100_000.0, ..ProducerRun::default() });
        results.sales.push(SalesStage {
            name: SATURATION_NO_KEYS.into(),
            idempotency_keys: false,
            ..stage(None, 30_000.0, 20.0)
        });
        results.burst = Some(Burst {
            records: 50_000,
            accounting_applied: 50_000,
            accounting_per_s: Some(25_000.0),
            distributor_applied: 49_000,
            ..Burst::default()
        });

        let table = targets(&results);

        let row = |start: &str| {
            table.rows.iter().find(|row| row[0].starts_with(start)).unwrap_or_else(|| panic!("row {start}")).clone()
        };
        let gateway = row("gateway");
        assert_eq!(gateway[2], "1,600/s (closed loop ×8, 0.0 % shed)", "the keyed stage, not the faster keyless one");
        assert_eq!((gateway[3].as_str(), gateway[4].as_str()), ("1.6 %", "no"));
        let http = row("HTTP 201 p99");
        assert_eq!((http[2].as_str(), http[3].as_str(), http[4].as_str()), ("12.0 ms", "load 1.0 %", "yes"));
        assert_eq!(row("sale recorded → accounting")[4], "yes", "p99 30 ms at 1,000/s meets ≤ 50 ms");
        assert_eq!(row("sale recorded → distributor")[2], "not measured: no sale was seen committed");
        assert_eq!(
            (row("accounting draining")[2].as_str(), row("accounting draining")[4].as_str()),
            ("25,000/s", "yes")
        );
        assert_eq!(row("distributor draining")[2], "not measured: 49,000 of 50,000 committed within the wait");
        assert_eq!(row("approval")[4], "not measured");
        let paid = row("paid form");
        assert!(paid[2].contains("max 400 ms behind 10,000 standard forms"), "{paid:?}");
        assert_eq!(paid[4], "yes");
    }

    #[test]
    fn a_latency_is_not_a_target_reading_when_the_stage_shed_its_load() {
        let mut results = sample();
        let at_1000 = results.sales.iter_mut().find(|stage| stage.offered_per_s == Some(1000.0)).expect("stage");
        at_1000.accepted = 600;
        at_1000.shed = 400;

        let table = targets(&results);

        for row in table.rows.iter().filter(|row| row[0].contains("p99 at 1,000 sales/s")) {
            assert_eq!(row[2], "not measured: stage accepted 60.0 %", "{row:?}");
            assert_eq!(row[4], "not measured");
        }
        let throughput = sales_throughput(&results);
        let shed = throughput.rows.iter().find(|row| row[0] == "1,000/s").expect("row");
        assert_eq!((shed[6].as_str(), shed[7].as_str(), shed[8].as_str()), ("60.0 %", "400", "40.0 %"));
        let at_4000 = results.sales.iter_mut().find(|stage| stage.offered_per_s == Some(4000.0)).expect("stage");
        at_4000.accepted = 900;
        let text = question_3(&results);
        let end_to_end = text.lines().find(|line| line.contains("End to end")).expect("end to end line");
        assert!(
            end_to_end.ends_with("at 250/s, the only such stage."),
            "only the stage that accepted enough: {end_to_end}"
        );
    }

    #[test]
    fn before_and_after_compares_what_ran_in_the_same_run() {
        assert!(before_after(&sample()).rows.is_empty(), "nothing to compare without the ablations");
        let mut results = sample();
        results.batching = Some(BatchingRun {
            sales: 1_000,
            batch_size: 5_000,
            one_by_one_per_s: 400.0,
            batched_per_s: 12_000.0,
            ..BatchingRun::default()
        });
        results.sales.push(SalesStage { name: SATURATION_NO_KEYS.into(), ..stage(None, 2_400.0, 20.0) });
        let table = before_after(&results);
        assert_eq!(table.rows[0][1..], ["400", "12,000", "30.0×"]);
        assert_eq!(table.rows[1][1..], ["1,600", "2,400", "1.5×"], "keyed saturation first, keyless second");
        assert!(table.rows[1][0].contains("×8"));
        assert!(markdown(&results).contains("### Before and after, in this run"));
    }

    #[test]
    fn a_stage_keeps_up_only_near_its_offered_rate_with_nothing_left_over() {
        assert!(kept_up(&stage(Some(1000.0), 960.0, 1.0)));
        assert!(!kept_up(&stage(Some(1000.0), 900.0, 1.0)));
        assert!(!kept_up(&SalesStage { unfinished: 1, ..stage(Some(1000.0), 1000.0, 1.0) }));
        assert!(!kept_up(&stage(None, 1000.0, 1.0)));
    }

    #[test]
    fn sales_refused_for_an_empty_cart_do_not_close_the_gate_but_other_refusals_do() {
        let mut results = sample();
        let at_1000 = results.sales.iter_mut().find(|stage| stage.offered_per_s == Some(1000.0)).expect("stage");
        (at_1000.accepted, at_1000.refused, at_1000.refused_stock) = (950, 50, 50);
        let gated = |results: &Results| {
            targets(results).rows.iter().find(|row| row[0].starts_with("HTTP")).expect("row")[2].clone()
        };

        assert_eq!(gated(&results), "12.0 ms", "950 of the 950 sales that had stock were accepted");

        let at_1000 = results.sales.iter_mut().find(|stage| stage.offered_per_s == Some(1000.0)).expect("stage");
        at_1000.refused_stock = 0;
        assert_eq!(gated(&results), "not measured: stage accepted 95.0 %");
    }

    #[test]
    fn the_raw_files_are_the_ones_docs_report_keeps_out_of_git() {
        let ignored = include_str!("../../../docs/report/.gitignore");
        let listed: Vec<&str> = ignored.lines().filter(|line| !line.starts_with('#') && !line.is_empty()).collect();

        for raw in RAW_FILES {
            assert!(listed.contains(&raw), "{raw} is written but not ignored");
        }
        for (name, _) in tables(&sample()) {
            assert!(!listed.contains(&name) || RAW_FILES.contains(&name), "{name}");
        }
        let markdown = markdown(&sample());
        assert!(markdown.contains("results.json, lag_samples.csv, approval_forms.csv"), "the report names them");
    }

    #[test]
    fn an_empty_run_still_renders_every_section() {
        let markdown = markdown(&Results::default());
        for heading in
            ["## Targets", "## 1. Raw Kafka", "## 3. Sales over HTTP", "## Question 3", "## Our throughput as a share"]
        {
            assert!(markdown.contains(heading), "{heading}");
        }
        assert!(markdown.contains("No fixed-rate stage ran"));
    }
}
