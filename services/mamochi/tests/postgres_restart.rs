//! PostgreSQL restarted (a fast stop, a pause, a start) while sales flow
//! through accounting and the distributor, both running as real processes
//! (`mamochi run accounting`, `mamochi run distributor`): every sale is
//! counted by accounting and applied to its cart by the distributor exactly
//! once — nothing lost, nothing doubled — and neither service exits: their
//! failures during the outage are transient, retried while the consumers
//! keep polling.
//!
//! Built only with `--features fault-tests`: it stops the shared stack's
//! PostgreSQL (by `pg_ctl` on the stack's data directory, checked against
//! the stack's PID file, which it updates after the restart), so it runs
//! alone, after the main suite.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::{self, PgPool};
use mamochi_common::kafka;
use mamochi_common::schema::{carts, processed_events};
use mamochi_common::Settings;
use mamochi_events::codec::EventCodec;
use mamochi_events::topics::SALES;
use mamochi_events::{PaymentMethod, SaleRecorded, VendorKey};
use mamochi_testkit::members::{insert_cart, Member};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use uuid::Uuid;

const VENDORS: usize = 8;
const SALES_PER_VENDOR: usize = 150;
const STOCK: i32 = 1_000_000;
/// Pace of the sales: the whole stream lasts about 24 s.
const SALE_EVERY: Duration = Duration::from_millis(20);
/// How far into the stream PostgreSQL stops, and for how long.
const STOP_AFTER_SALES: usize = 300;
const DOWN_FOR: Duration = Duration::from_secs(8);
const WAIT: Duration = Duration::from_secs(240);

fn start(service: &str, settings: &Settings) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mamochi"))
        .args(["run", service])
        .env("MAMOCHI__KAFKA__GROUP_PREFIX", &settings.kafka.group_prefix)
        .env(format!("MAMOCHI__{}__OPS_LISTEN", service.to_uppercase()), "127.0.0.1:0")
        .env("MAMOCHI__LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("mamochi run {service} starts: {error}"))
}

/// The newest installed PostgreSQL's `pg_ctl`, as `deploy/local/stack` picks it.
fn pg_ctl_binary() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin").join("pg_ctl")))
        .filter(|path| path.exists())
        .collect();
    versions.sort_by_key(|path| {
        let version = path.ancestors().nth(2).and_then(Path::file_name).and_then(|name| name.to_str()).unwrap_or("0");
        version.parse::<u32>().unwrap_or(0)
    });
    versions.pop().expect("a pg_ctl")
}

/// Runs `pg_ctl -D <stack data dir> <args>` as the data directory's owner.
fn pg_ctl(args: &[&str]) {
    let data = pg_home().join("data");
    let binary = pg_ctl_binary();
    // As the stack does: root runs PostgreSQL's tools as `postgres`, the
    // data directory's owner.
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data).expect("data directory"));
    let me = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc/self"));
    let mut command = if me == 0 && owner != 0 {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(&binary);
        command
    } else {
        Command::new(&binary)
    };
    let status = command.arg("-D").arg(&data).args(args).stdout(Stdio::null()).status().expect("pg_ctl runs");
    assert!(status.success(), "pg_ctl {args:?} failed: {status}");
}

/// The stack's PostgreSQL home (`.state/…/postgres`, possibly a symlink).
fn pg_home() -> PathBuf {
    let home = support::state_dir().join("postgres");
    std::fs::canonicalize(&home).unwrap_or(home)
}

/// Starts PostgreSQL exactly as `deploy/local/stack` does (same port,
/// listen address, socket directory and log) and points the stack's PID
/// file at the new postmaster; returns its PID.
fn start_postgres(port: u16) -> i32 {
    let log = support::state_dir().join("logs").join("postgres.log");
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=on",
        pg_home().display()
    );
    pg_ctl(&["-l", log.to_str().expect("UTF-8 path"), "-w", "-t", "60", "start", "-o", &options]);
    let pid = postmaster_pid().expect("a running postmaster");
    std::fs::write(support::state_dir().join("run").join("postgres.pid"), format!("{pid}\n")).expect("PID file");
    pid
}

/// Restarts PostgreSQL if the test ends (or panics) while it is stopped, and
/// kills the services this test started: the shared stack is left as found.
struct Restore {
    port: u16,
    children: Vec<Child>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if postmaster_pid().is_none() {
            start_postgres(self.port);
        }
    }
}

/// The running postmaster's port (line 4 of `postmaster.pid`).
fn postmaster_port() -> u16 {
    let text = std::fs::read_to_string(pg_home().join("data").join("postmaster.pid")).expect("postmaster.pid");
    text.lines().nth(3).and_then(|line| line.trim().parse().ok()).expect("a port in postmaster.pid")
}

/// The postmaster's PID from the data directory (its first line); `None`
/// when PostgreSQL is stopped (`pg_ctl stop -w` removes the file).
fn postmaster_pid() -> Option<i32> {
    let file = pg_home().join("data").join("postmaster.pid");
    let text = std::fs::read_to_string(&file).ok()?;
    text.lines().next().and_then(|line| line.trim().parse().ok())
}

async fn member_with_cart(pool: &PgPool) -> Uuid {
    let member = Member::new();
    member.insert(pool).await;
    insert_cart(pool, member.id, STOCK).await;
    member.id
}

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct Counted {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    vendor_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    sales: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    earnings: i64,
}

/// What accounting counted, by vendor; empty while PostgreSQL is down.
async fn counted(pool: &PgPool, vendors: &[Uuid]) -> HashMap<Uuid, (i64, i64)> {
    let Ok(mut conn) = pool.get().await else { return HashMap::new() };
    diesel::sql_query(
        "SELECT vendor_id, sum(sales_count)::int8 AS sales, sum(earnings_clp)::int8 AS earnings \
         FROM weekly_sales WHERE vendor_id = ANY($1) GROUP BY vendor_id",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(vendors)
    .load::<Counted>(&mut conn)
    .await
    .unwrap_or_default()
    .into_iter()
    .map(|row| (row.vendor_id, (row.sales, row.earnings)))
    .collect()
}

/// How many of `sale_ids` the distributor applied; 0 while PostgreSQL is down.
async fn applied(pool: &PgPool, sale_ids: &[Uuid]) -> i64 {
    let Ok(mut conn) = pool.get().await else { return 0 };
    processed_events::table
        .filter(processed_events::consumer.eq("distributor"))
        .filter(processed_events::event_id.eq_any(sale_ids))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_while_sales_flow_loses_and_doubles_nothing() {
    // Arrange: vendors with large carts (no depletion, no alerts), this
    // test's own consumer groups at the end of the sales, both services up.
    let settings = support::isolated_settings();
    let pool = db::pool(&settings.database).expect("pool");
    let mut vendors = Vec::with_capacity(VENDORS);
    for _ in 0..VENDORS {
        vendors.push(member_with_cart(&pool).await);
    }
    let stack_pid: i32 = std::fs::read_to_string(support::state_dir().join("run").join("postgres.pid"))
        .expect("the stack's PostgreSQL PID file")
        .trim()
        .parse()
        .expect("a PID");
    assert_eq!(Some(stack_pid), postmaster_pid(), "the stack's PID file names the running postmaster");
    let port = postmaster_port();
    let mut restore = Restore { port, children: Vec::new() };
    restore.children.push(start("accounting", &settings));
    restore.children.push(start("distributor", &settings));
    let codec = EventCodec::new(&settings.registry.url);
    let producer = kafka::producer(&settings.kafka, "pg-restart-test").expect("producer");
    let mut sales = Vec::with_capacity(VENDORS * SALES_PER_VENDOR);
    for index in 0..VENDORS * SALES_PER_VENDOR {
        let now = Utc::now();
        let quantity = 1 + (index % 3) as i32;
        sales.push(SaleRecorded {
            sale_id: Uuid::new_v4(),
            vendor_id: vendors[index % VENDORS],
            quantity,
            unit_price_clp: 1_500,
            total_clp: i64::from(quantity) * 1_500,
            payment_method: PaymentMethod::Cash,
            occurred_at: now,
            recorded_at: now,
            location: None,
        });
    }

    // Act: sales at a steady pace; a fifth of the way in, PostgreSQL stops
    // (fast: sessions are terminated), stays down, and starts again.
    let mut restarted_pid = None;
    let mut back_at = None;
    for (index, sale) in sales.iter().enumerate() {
        if index == STOP_AFTER_SALES {
            pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]);
            let stopped = postmaster_pid().is_none();
            tokio::time::sleep(DOWN_FOR).await;
            // Also points `stack status` and `stack down` at the new postmaster.
            restarted_pid = Some(start_postgres(port));
            back_at = Some(tokio::time::Instant::now());
            assert!(stopped, "PostgreSQL was down");
        }
        let (key, value) =
            codec.encode(&SALES, &VendorKey { vendor_id: sale.vendor_id }, sale).await.expect("sale encodes");
        producer
            .send(FutureRecord::to(SALES.name()).key(&key).payload(&value), Timeout::After(Duration::from_secs(60)))
            .await
            .map_err(|(error, _)| error)
            .expect("sale acknowledged");
        tokio::time::sleep(SALE_EVERY).await;
    }
    let stream_ended = tokio::time::Instant::now();
    let sale_ids: Vec<Uuid> = sales.iter().map(|sale| sale.sale_id).collect();
    let mut expected: HashMap<Uuid, (i64, i64)> = HashMap::new();
    let mut sold: HashMap<Uuid, i32> = HashMap::new();
    for sale in &sales {
        let entry = expected.entry(sale.vendor_id).or_default();
        entry.0 += 1;
        entry.1 += sale.total_clp;
        *sold.entry(sale.vendor_id).or_default() += sale.quantity;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let all_counted = counted(&pool, &vendors).await == expected;
        let all_applied = applied(&pool, &sale_ids).await == sale_ids.len() as i64;
        if all_counted && all_applied {
            break;
        }
        for child in &mut restore.children {
            assert!(child.try_wait().expect("service status").is_none(), "a service exited");
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: every sale counted and applied");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Some(back_at) = back_at {
        eprintln!(
            "PostgreSQL down {}s; all {} sales counted and applied {:.1}s after it was back, {:.1}s after the last \
             sale was acknowledged (polled every 0.5s)",
            DOWN_FOR.as_secs(),
            sales.len(),
            back_at.elapsed().as_secs_f64(),
            stream_ended.elapsed().as_secs_f64()
        );
    }
    let running = restore.children.iter_mut().all(|child| child.try_wait().is_ok_and(|status| status.is_none()));
    let mut conn = pool.get().await.expect("connection");
    let stocks: HashMap<Uuid, i32> = carts::table
        .filter(carts::vendor_id.eq_any(&vendors))
        .select((carts::vendor_id, carts::stock))
        .load::<(Uuid, i32)>(&mut conn)
        .await
        .expect("carts")
        .into_iter()
        .collect();
    for child in &restore.children {
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    }
    let stop_deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut stopped_cleanly = true;
    for child in &mut restore.children {
        loop {
            match child.try_wait().expect("service status") {
                Some(status) => {
                    stopped_cleanly &= status.success();
                    break;
                }
                None if tokio::time::Instant::now() >= stop_deadline => {
                    stopped_cleanly = false;
                    break;
                }
                None => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    drop(restore);

    // Assert
    assert!(restarted_pid.is_some_and(|pid| pid != stack_pid), "PostgreSQL really restarted");
    assert!(running, "both services rode out the restart");
    assert!(stopped_cleanly, "both services stop cleanly on SIGTERM after the restart");
    assert_eq!(counted(&pool, &vendors).await, expected, "each sale counted once: count and CLP exact");
    assert_eq!(applied(&pool, &sale_ids).await, sale_ids.len() as i64, "each sale applied once");
    let expected_stock: HashMap<Uuid, i32> = sold.iter().map(|(vendor, sold)| (*vendor, STOCK - sold)).collect();
    assert_eq!(stocks, expected_stock, "each sale took its servings from its cart once");
}
