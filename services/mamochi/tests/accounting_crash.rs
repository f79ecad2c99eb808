//! The accounting process killed with SIGKILL in the middle of a stream of
//! sales, then started again, ends with exact weekly totals: nothing lost,
//! nothing counted twice. Runs the real binary (`mamochi run accounting`) so
//! the kill is a real process death, not a cancelled task.

mod accounting_support;
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db;
use mamochi_common::schema::weekly_sales;
use mamochi_events::codec::EventCodec;
use mamochi_events::publish::publish;
use mamochi_events::{topics, PaymentMethod, SaleRecorded, VendorKey};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const VENDORS: usize = 4;
const SALES_PER_VENDOR: usize = 5_000;

fn start_accounting(settings: &mamochi_common::Settings) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mamochi"))
        .args(["run", "accounting"])
        .env("MAMOCHI__KAFKA__GROUP_PREFIX", &settings.kafka.group_prefix)
        .env("MAMOCHI__ACCOUNTING__OPS_LISTEN", "127.0.0.1:0")
        .env("MAMOCHI__LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("mamochi run accounting starts")
}

async fn applied(pool: &db::PgPool, vendors: &[uuid::Uuid]) -> (i64, i64) {
    let mut conn = pool.get().await.expect("connection");
    let rows: Vec<(i64, i64)> = weekly_sales::table
        .filter(weekly_sales::vendor_id.eq_any(vendors))
        .select((weekly_sales::sales_count, weekly_sales::earnings_clp))
        .load(&mut conn)
        .await
        .expect("query");
    rows.iter().fold((0, 0), |(count, earnings), row| (count + row.0, earnings + row.1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_then_restart_gives_exact_totals() {
    // Arrange: 20,000 sales of four vendors in Kafka, each with its own price.
    let settings = support::isolated_settings();
    let codec = EventCodec::new(&settings.registry.url);
    let producer = mamochi_common::kafka::producer(&settings.kafka, "test").expect("producer");
    let vendors: Vec<uuid::Uuid> = (0..VENDORS).map(|_| uuid::Uuid::new_v4()).collect();
    let now = chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).expect("now");
    let sales: Vec<SaleRecorded> = (0..VENDORS * SALES_PER_VENDOR)
        .map(|index| SaleRecorded {
            sale_id: uuid::Uuid::new_v4(),
            vendor_id: vendors[index % VENDORS],
            quantity: 1,
            unit_price_clp: 1_000 + (index % VENDORS) as i64,
            total_clp: 1_000 + (index % VENDORS) as i64,
            payment_method: PaymentMethod::Cash,
            occurred_at: now,
            recorded_at: now,
            location: None,
        })
        .collect();
    let expected_earnings: i64 = sales.iter().map(|sale| sale.total_clp).sum();
    futures::future::join_all(sales.iter().map(|sale| {
        let (producer, codec) = (&producer, &codec);
        async move {
            let key = VendorKey { vendor_id: sale.vendor_id };
            publish(producer, codec, &topics::SALES, &key, sale, None).await
        }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .expect("sales acknowledged");
    let sales_end = accounting_support::end_offsets(&settings, topics::SALES.name());
    let group = settings.kafka.group(mamochi_accounting::GROUP);
    let pool = db::pool(&settings.database).expect("pool");

    // Act: start, kill with SIGKILL once part of the stream is applied, restart.
    let mut first = start_accounting(&settings);
    let deadline = Instant::now() + Duration::from_secs(120);
    while applied(&pool, &vendors).await.0 < 2_000 {
        assert!(Instant::now() < deadline, "2,000 sales not applied within 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(Pid::from_raw(first.id() as i32), Signal::SIGKILL).expect("SIGKILL");
    first.wait().expect("reaped");
    let at_kill = applied(&pool, &vendors).await.0;
    println!("killed accounting with {at_kill} of {} sales applied", sales.len());
    let restarted = Instant::now();
    let mut second = start_accounting(&settings);
    // Every sale counted is not every record handled: a sale delivered again
    // after the last new one would double a total only later. The group's
    // committed offsets past the stream's end mean every record was handled.
    accounting_support::wait_until_committed(
        &settings,
        &group,
        topics::SALES.name(),
        &sales_end,
        Duration::from_secs(180),
    )
    .await;
    let (count, earnings) = applied(&pool, &vendors).await;
    eprintln!(
        "restarted accounting committed the rest of the stream {:.2}s after it started (debug build, including \
         start-up and the group's wait for the killed member's session); {count} of {} sales counted",
        restarted.elapsed().as_secs_f64(),
        sales.len()
    );
    kill(Pid::from_raw(second.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    second.wait().expect("reaped");

    // Assert
    assert!(at_kill < sales.len() as i64, "the kill happened mid-stream ({at_kill} applied)");
    assert_eq!(count, sales.len() as i64, "every sale counted exactly once");
    assert_eq!(earnings, expected_earnings);
}
