//! Scaling out and in under load: while 20,000 sales of the test's own
//! vendors flow, the accounting and the distributor consumer groups go from
//! 1 to 3 to 2 to 1 processes (`mamochi run <service> --instance N` started
//! as real child processes, taken away with SIGKILL), each step taken while
//! sales are still being produced. Then every vendor's weekly totals equal
//! what the test sold, every cart's stock is its start minus what it sold
//! plus what it was restocked, every low-stock and restock email is
//! requested under exactly one message id (a sale applied twice in effect
//! would add one), and both groups' lag drains to 0 within a deadline.
//!
//! The groups have a prefix of their own and start at the end of their
//! topics, so other traffic on the stack does not share their offsets; they
//! still read it (and must drain it), which is why the drain deadline is
//! generous. Weekly statements are not closed here: the sales are in the
//! open week, and the closers run with a grace of ten years so they close no
//! other test's week either; the two-instance accounting test covers racing
//! closers and one statement email per vendor and week.
//! Every child process is killed when the test ends, however it ends.
//! `--nocapture` prints what was measured: when each step came, how long the
//! groups took to settle on their new members (a SIGKILLed member holds its
//! partitions until its 10 s session expires), the peak sales lag of each
//! group between steps, and how long the lag took to drain.

mod accounting_support;
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accounting_support::{add_member, end_offsets, eventually, wait_until_committed, EmailRequests};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::{self, PgPool};
use mamochi_common::schema::{carts, weekly_sales};
use mamochi_common::{kafka, Settings};
use mamochi_distributor::rules::{apply_sale, Cart};
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::{SALES, STOCK};
use mamochi_events::{PaymentMethod, SaleRecorded, VendorKey};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

const VENDORS: usize = 40;
const SALES_PER_VENDOR: usize = 500;
const TOTAL: usize = VENDORS * SALES_PER_VENDOR;
/// Sales produced per second: 20,000 flow for about 80 s, long enough for
/// three steps that each wait out a killed member's 10 s session.
const RATE: usize = 250;
/// How long a group may take to show the members a step asked for.
const SETTLE: Duration = Duration::from_secs(45);
/// How long the lag may take to drain once production has ended (the
/// groups also drain whatever else reaches the shared sales topic).
const DRAIN: Duration = Duration::from_secs(180);
const TEN_YEARS_SECS: i64 = 10 * 365 * 24 * 3600;

/// The `mamochi run` child processes of the test, by service and instance;
/// whatever is still running when it is dropped is killed and reaped.
#[derive(Debug, Default)]
struct Fleet(BTreeMap<(&'static str, u16), Child>);

impl Fleet {
    fn start(&mut self, settings: &Settings, service: &'static str, instance: u16) {
        let child = Command::new(env!("CARGO_BIN_EXE_mamochi"))
            .args(["run", service, "--instance", &instance.to_string()])
            .env("MAMOCHI__KAFKA__GROUP_PREFIX", &settings.kafka.group_prefix)
            // Any free port: instance N would otherwise move the configured one.
            .env(format!("MAMOCHI__{}__OPS_LISTEN", service.to_uppercase()), "127.0.0.1:0")
            // A grace of ten years: these closers close no week, so they
            // never close one that another test on the shared stack is
            // still filling (its sales reach these groups too).
            .env("MAMOCHI__ACCOUNTING__GRACE_PERIOD_SECS", TEN_YEARS_SECS.to_string())
            .env("MAMOCHI__LOG__FILTER", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("mamochi run {service} --instance {instance} starts: {error}"));
        self.0.insert((service, instance), child);
    }

    /// SIGKILL: a real process death, no leaving the group, no last commit.
    fn kill(&mut self, service: &'static str, instance: u16) {
        let mut child = self.0.remove(&(service, instance)).expect("a running instance");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("SIGKILL sent");
        child.wait().expect("reaped");
    }

    /// SIGTERM to every process left; each must stop cleanly.
    fn stop_all(&mut self) {
        for ((service, instance), mut child) in std::mem::take(&mut self.0) {
            kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM sent");
            let status = child.wait().expect("reaped");
            assert!(status.success(), "{service} instance {instance} stops cleanly: {status}");
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in self.0.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The instance numbers of `group`'s members now, read from their Kafka
/// client ids (`<client_id>-N-…` for instance N ≥ 2, `<client_id>-…` for 1).
fn member_instances(settings: &Settings, group: &str) -> Vec<u16> {
    let probe: BaseConsumer = kafka::consumer_config(&settings.kafka, group, "test-probe").create().expect("probe");
    let Ok(list) = probe.fetch_group_list(Some(group), Duration::from_secs(10)) else { return Vec::new() };
    let prefix = format!("{}-", settings.kafka.client_id);
    let mut instances: Vec<u16> = list
        .groups()
        .iter()
        .flat_map(|group| group.members())
        .map(|member| {
            let rest = member.client_id().strip_prefix(&prefix).unwrap_or(member.client_id());
            rest.split('-').next().and_then(|head| head.parse().ok()).unwrap_or(1)
        })
        .collect();
    instances.sort_unstable();
    instances
}

/// Waits until each of `groups` has exactly the members `instances`.
async fn wait_for_members(settings: &Settings, groups: &[String], instances: &[u16]) {
    eventually(SETTLE, &format!("groups {groups:?} with instances {instances:?}"), || async {
        groups.iter().all(|group| member_instances(settings, group) == instances).then_some(())
    })
    .await;
}

/// Records of `topic` the probe's group has not committed yet, over all partitions.
fn lag(probe: &BaseConsumer, topic: &str) -> Option<i64> {
    let timeout = Duration::from_secs(5);
    let metadata = probe.fetch_metadata(Some(topic), timeout).ok()?;
    let mut list = TopicPartitionList::new();
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions()).map(|p| p.id()).collect();
    for partition in &partitions {
        list.add_partition(topic, *partition);
    }
    let committed = probe.committed_offsets(list, timeout).ok()?;
    let mut total = 0;
    for partition in partitions {
        let (low, high) = probe.fetch_watermarks(topic, partition, timeout).ok()?;
        let position = match committed.find_partition(topic, partition).map(|element| element.offset()) {
            Some(Offset::Offset(offset)) => offset,
            _ => low,
        };
        total += (high - position).max(0);
    }
    Some(total)
}

/// Samples the sales lag of the accounting and the distributor groups every
/// 500 ms until `stop` is set: (seconds since `since`, accounting, distributor).
async fn sample_lag(
    settings: Settings,
    groups: [String; 2],
    since: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<(f64, i64, i64)> {
    let probes: Vec<BaseConsumer> = groups
        .iter()
        .map(|group| kafka::consumer_config(&settings.kafka, group, "test-probe").create().expect("probe"))
        .collect();
    let mut samples = Vec::new();
    while !AtomicBool::load(&stop, Ordering::SeqCst) {
        if let (Some(accounting), Some(distributor)) = (lag(&probes[0], SALES.name()), lag(&probes[1], SALES.name())) {
            samples.push((since.elapsed().as_secs_f64(), accounting, distributor));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    samples
}

/// Sales (count, units, CLP) accounting holds for each vendor, all weeks.
async fn accounted(pool: &PgPool, vendors: &[Uuid]) -> HashMap<Uuid, (i64, i64, i64)> {
    let mut conn = pool.get().await.expect("connection");
    let rows: Vec<(Uuid, i64, i64, i64)> = weekly_sales::table
        .filter(weekly_sales::vendor_id.eq_any(vendors))
        .select((weekly_sales::vendor_id, weekly_sales::sales_count, weekly_sales::units, weekly_sales::earnings_clp))
        .load(&mut conn)
        .await
        .expect("query weekly_sales");
    let mut totals: HashMap<Uuid, (i64, i64, i64)> = HashMap::new();
    for (vendor, count, units, earnings) in rows {
        let total = totals.entry(vendor).or_default();
        *total = (total.0 + count, total.1 + units, total.2 + earnings);
    }
    totals
}

/// (stock, restocks) of each vendor's cart.
async fn carts_of(pool: &PgPool, vendors: &[Uuid]) -> HashMap<Uuid, (i32, i32)> {
    let mut conn = pool.get().await.expect("connection");
    carts::table
        .filter(carts::vendor_id.eq_any(vendors))
        .select((carts::vendor_id, carts::stock, carts::restocks))
        .load::<(Uuid, i32, i32)>(&mut conn)
        .await
        .expect("carts")
        .into_iter()
        .map(|(vendor, stock, restocks)| (vendor, (stock, restocks)))
        .collect()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// Distributor outbox rows of these vendors not yet produced to Kafka.
async fn outbox_rows(pool: &PgPool, vendors: &[Uuid]) -> i64 {
    let mut conn = pool.get().await.expect("connection");
    let vendors: Vec<String> = vendors.iter().map(Uuid::to_string).collect();
    diesel::sql_query("SELECT count(*) AS count FROM distributor_outbox WHERE record->>'vendor_id' = ANY($1)")
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(vendors)
        .get_result::<Count>(&mut conn)
        .await
        .expect("outbox count")
        .count
}

/// What the distributor's rules give for one vendor's sales applied one at
/// a time: final stock before any restock, low-stock alerts, depletions.
fn oracle(initial: i32, sales: usize, threshold: i32) -> (i32, usize, usize) {
    let mut cart = Cart { stock: initial, low_stock_alerted: false };
    let (mut alerts, mut depletions) = (0, 0);
    for _ in 0..sales {
        let effect = apply_sale(cart, 1, threshold).expect("a valid sale");
        alerts += usize::from(effect.low_stock_alert);
        depletions += usize::from(effect.depleted);
        cart = Cart { stock: effect.stock_after, low_stock_alerted: cart.low_stock_alerted || effect.low_stock_alert };
    }
    (cart.stock, alerts, depletions)
}

/// Produces the encoded sales in order at [`RATE`] a second, counting each
/// one handed to the producer in `produced`, then waits for every
/// acknowledgement.
async fn produce_paced(settings: Settings, encoded: Vec<(Vec<u8>, Vec<u8>)>, produced: Arc<AtomicUsize>) {
    let producer = kafka::producer(&settings.kafka, "test").expect("producer");
    let started = tokio::time::Instant::now();
    let mut deliveries = Vec::with_capacity(encoded.len());
    for (index, (key, payload)) in encoded.iter().enumerate() {
        let due = started + Duration::from_secs_f64(index as f64 / RATE as f64);
        tokio::time::sleep_until(due).await;
        loop {
            let record = rdkafka::producer::FutureRecord::to(SALES.name()).key(key).payload(payload);
            match producer.send_result(record) {
                Ok(delivery) => break deliveries.push(delivery),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(rdkafka::error::RDKafkaErrorCode::QueueFull),
                    _,
                )) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err((error, _)) => panic!("sale not enqueued: {error}"),
            }
        }
        produced.store(index + 1, Ordering::SeqCst);
    }
    for delivery in futures::future::join_all(deliveries).await {
        delivery.expect("delivery reported").expect("sale acknowledged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_scale_1_3_2_1_under_flowing_sales_with_exact_totals_stock_and_one_email_each() {
    // Arrange: 40 members with carts; even ones hold exactly their 500
    // sales (a low-stock alert, then depleted by the last and restocked),
    // odd ones 1 to 5 servings more (an alert or not). 20,000 sales of one
    // serving, vendors interleaved so every partition flows throughout.
    let settings = support::isolated_settings();
    let pool = db::pool(&settings.database).expect("pool");
    let codec = EventCodec::new(&settings.registry.url);
    let threshold = settings.distributor.low_stock_threshold;
    let restock_quantity = settings.distributor.restock_quantity;
    let now = chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).expect("now");
    let mut vendors = Vec::new();
    for index in 0..VENDORS {
        let vendor = Uuid::new_v4();
        let margin = if index % 2 == 0 { 0 } else { 1 + (index / 2 % 5) as i32 };
        let initial = SALES_PER_VENDOR as i32 + margin;
        add_member(&pool, vendor, &format!("scale-{}@test.mamochi.cl", vendor.simple()), now).await;
        let mut conn = pool.get().await.expect("connection");
        diesel::insert_into(carts::table)
            .values((carts::vendor_id.eq(vendor), carts::stock.eq(initial)))
            .execute(&mut conn)
            .await
            .expect("cart fixture");
        vendors.push((vendor, initial));
    }
    let vendor_ids: Vec<Uuid> = vendors.iter().map(|(vendor, _)| *vendor).collect();
    let mut sold: HashMap<Uuid, (i64, i64, i64)> = HashMap::new();
    let sales: Vec<SaleRecorded> = (0..TOTAL)
        .map(|index| {
            let number = index % VENDORS;
            let vendor = vendor_ids[number];
            let price = 1_000 + number as i64 * 10 + (index % 5) as i64 * 100;
            let total = sold.entry(vendor).or_default();
            *total = (total.0 + 1, total.1 + 1, total.2 + price);
            SaleRecorded {
                sale_id: Uuid::new_v4(),
                vendor_id: vendor,
                quantity: 1,
                unit_price_clp: price,
                total_clp: price,
                payment_method: PaymentMethod::Cash,
                occurred_at: now,
                recorded_at: now,
                location: None,
            }
        })
        .collect();
    let mut encoded = Vec::with_capacity(sales.len());
    for sale in &sales {
        encoded.push(codec.encode(&SALES, &VendorKey { vendor_id: sale.vendor_id }, sale).await.expect("encodes"));
    }
    let emails = EmailRequests::from_now(&settings);
    let accounting_group = settings.kafka.group(mamochi_accounting::GROUP);
    let sales_group = settings.kafka.group(mamochi_distributor::service::SALES_GROUP);
    let stock_group = settings.kafka.group(mamochi_distributor::service::STOCK_GROUP);
    let accounting_groups = [accounting_group.clone()];
    let distributor_groups = [sales_group.clone(), stock_group.clone()];
    let mut fleet = Fleet::default();

    // Act: one process of each, then sales flow while the groups go
    // 1 → 3 → 2 → 1, each step once a share of the sales has been produced.
    let started = Instant::now();
    fleet.start(&settings, "accounting", 1);
    fleet.start(&settings, "distributor", 1);
    wait_for_members(&settings, &accounting_groups, &[1]).await;
    wait_for_members(&settings, &distributor_groups, &[1]).await;
    println!("one process of each in its groups after {:.1}s", started.elapsed().as_secs_f64());
    let produced = Arc::new(AtomicUsize::new(0));
    let flow_started = Instant::now();
    let production = tokio::spawn(produce_paced(settings.clone(), encoded, produced.clone()));
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample_lag(
        settings.clone(),
        [accounting_group.clone(), sales_group.clone()],
        flow_started,
        stop_sampling.clone(),
    ));
    let steps: [(&str, usize, &[u16]); 3] = [
        ("1 → 3", TOTAL * 15 / 100, &[1, 2, 3]),
        ("3 → 2", TOTAL * 45 / 100, &[2, 3]),
        ("2 → 1", TOTAL * 75 / 100, &[3]),
    ];
    let mut produced_at_steps = Vec::new();
    for (label, after, members) in steps {
        while AtomicUsize::load(&produced, Ordering::SeqCst) < after {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let at = AtomicUsize::load(&produced, Ordering::SeqCst);
        let step_started = Instant::now();
        let taken_at = flow_started.elapsed().as_secs_f64();
        for service in ["accounting", "distributor"] {
            match label {
                "1 → 3" => (2..=3).for_each(|instance| fleet.start(&settings, service, instance)),
                "3 → 2" => fleet.kill(service, 1),
                _ => fleet.kill(service, 2),
            }
        }
        wait_for_members(&settings, &accounting_groups, members).await;
        wait_for_members(&settings, &distributor_groups, members).await;
        println!(
            "step {label}: taken at {:.1}s with {at} of {TOTAL} sales produced; groups settled on instances \
             {members:?} in {:.1}s ({} produced by then)",
            taken_at,
            step_started.elapsed().as_secs_f64(),
            AtomicUsize::load(&produced, Ordering::SeqCst)
        );
        produced_at_steps.push((at, taken_at));
    }
    production.await.expect("production finished");
    let flowed = flow_started.elapsed();
    println!("{TOTAL} sales produced and acknowledged in {:.1}s", flowed.as_secs_f64());
    let sales_end = end_offsets(&settings, SALES.name());
    let drain_started = Instant::now();
    wait_until_committed(&settings, &accounting_group, SALES.name(), &sales_end, DRAIN).await;
    let accounting_drained = drain_started.elapsed();
    wait_until_committed(&settings, &sales_group, SALES.name(), &sales_end, DRAIN).await;
    let distributor_drained = drain_started.elapsed();
    let depleting: Vec<Uuid> =
        vendors.iter().filter(|(_, initial)| *initial as usize == SALES_PER_VENDOR).map(|(id, _)| *id).collect();
    eventually(DRAIN, "every depleted cart restocked and the outbox empty", || async {
        let restocked = carts_of(&pool, &depleting).await.values().all(|(_, restocks)| *restocks >= 1);
        (restocked && outbox_rows(&pool, &vendor_ids).await == 0).then_some(())
    })
    .await;
    let stock_end = end_offsets(&settings, STOCK.name());
    wait_until_committed(&settings, &stock_group, STOCK.name(), &stock_end, DRAIN).await;
    println!(
        "lag drained to 0 after the last sale was acknowledged: accounting {:.1}s, distributor sales {:.1}s, \
         restocks and stock events {:.1}s (debug build, 2 shared cores, other traffic on the stack)",
        accounting_drained.as_secs_f64(),
        distributor_drained.as_secs_f64(),
        drain_started.elapsed().as_secs_f64()
    );
    AtomicBool::store(&stop_sampling, true, Ordering::SeqCst);
    let samples = sampler.await.expect("lag samples");
    let step_times: Vec<f64> = produced_at_steps.iter().map(|(_, at)| *at).collect();
    for (index, window) in ["1 process", "3 processes", "2 processes", "1 process, then the drain"].iter().enumerate() {
        let from = if index == 0 { 0.0 } else { step_times[index - 1] };
        let to = step_times.get(index).copied().unwrap_or(f64::MAX);
        let peak = samples
            .iter()
            .filter(|(at, _, _)| *at >= from && *at < to)
            .fold((0, 0), |peak, (_, accounting, distributor)| (peak.0.max(*accounting), peak.1.max(*distributor)));
        println!(
            "peak sales lag with {window} (from {from:.1}s): accounting {} records, distributor {} records",
            peak.0, peak.1
        );
    }
    let requests = emails.read_to_end(&settings, Duration::from_secs(60)).await;
    let final_carts = carts_of(&pool, &vendor_ids).await;
    let totals = accounted(&pool, &vendor_ids).await;
    fleet.stop_all();
    println!("whole run {:.1}s", started.elapsed().as_secs_f64());

    // Assert
    for (step, (at, _)) in produced_at_steps.iter().enumerate() {
        assert!(*at < TOTAL, "step {} was taken while sales flowed ({at} of {TOTAL} produced)", step + 1);
    }
    let mut low_stock_total = 0;
    let mut restock_total = 0;
    for (vendor, initial) in &vendors {
        assert_eq!(totals.get(vendor), Some(&sold[vendor]), "weekly totals (sales, units, CLP) of {vendor}");
        let (stock_before_restock, alerts, depletions) = oracle(*initial, SALES_PER_VENDOR, threshold);
        let restocked = depletions as i32 * restock_quantity;
        assert_eq!(
            final_carts[vendor],
            (stock_before_restock + restocked, depletions as i32),
            "cart of {vendor}: start {initial} − {SALES_PER_VENDOR} sold + {restocked} restocked"
        );
        let to = format!("scale-{}@test.mamochi.cl", vendor.simple());
        let ids = |category: &str| -> BTreeSet<Uuid> {
            requests
                .iter()
                .filter(|request| request.to == to && request.category == category)
                .map(|request| request.message_id)
                .collect()
        };
        assert_eq!(ids("low_stock").len(), alerts, "one low-stock email per alert for {vendor}");
        assert_eq!(ids("restock").len(), depletions, "one restock email per depletion for {vendor}");
        low_stock_total += alerts;
        restock_total += depletions;
    }
    assert_eq!(restock_total, VENDORS / 2, "every exactly-stocked vendor depleted and was restocked once");
    println!(
        "{low_stock_total} low-stock and {restock_total} restock emails, each under one message id ({} email \
         request records of these vendors, repeats after a SIGKILL included)",
        requests.iter().filter(|request| request.to.starts_with("scale-")).count()
    );
}
