//! The command line of `mamochi bench` and the plan it resolves to.
//!
//! Every knob has two defaults, the full run's and `--quick`'s; a flag given
//! explicitly wins over both. The quick plan is sized to finish, setup
//! included, in about two minutes on two cores, so `make test` can run it;
//! the full plan is what the published report is made from.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// `mamochi bench [--quick] [--out DIR] …`
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BenchArgs {
    /// A short run (two rates of two seconds, small backlogs) that still
    /// writes every file; for tests and a first look.
    #[arg(long)]
    pub quick: bool,
    /// Where results.json, the CSV tables, report.md and the plots go.
    #[arg(long, default_value = "docs/report")]
    pub out: PathBuf,
    /// Vendors that register and then sell (full 50, quick 5).
    #[arg(long)]
    pub vendors: Option<usize>,
    /// Offered sales per second of the fixed-rate stages, comma-separated
    /// (full 250,500,1000,2000,4000; quick 250,1000).
    #[arg(long, value_delimiter = ',')]
    pub rates: Option<Vec<f64>>,
    /// Seconds each fixed-rate stage offers load (full 10, quick 2).
    #[arg(long)]
    pub stage_secs: Option<f64>,
    /// Most connections (requests in flight) of the fixed-rate stages (full 256, quick 64).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Connections of the saturation stage, each sending as fast as it is
    /// answered (full 64, quick 32).
    #[arg(long)]
    pub saturation_connections: Option<usize>,
    /// Seconds of the saturation stage (full 10, quick 3).
    #[arg(long)]
    pub saturation_secs: Option<f64>,
    /// Longest wait, after a stage's last request, for answers and for the
    /// consumers to apply everything (full 60, quick 10).
    #[arg(long)]
    pub drain_secs: Option<f64>,
    /// Records for the raw Kafka measurements (full 200000, quick 20000).
    #[arg(long)]
    pub raw_records: Option<u64>,
    /// Sales written straight to the sales topic to measure how fast the
    /// consumers drain a backlog (full 50000, quick 5000; 0 skips).
    #[arg(long)]
    pub burst_sales: Option<u64>,
    /// Sales applied by accounting's store one per transaction and again
    /// batched, to compare the two (full 10000, quick 1000; 0 skips).
    #[arg(long)]
    pub batching_sales: Option<u64>,
    /// Longest wait for both consumers to apply the burst (full 180, quick 30).
    #[arg(long)]
    pub burst_wait_secs: Option<f64>,
    /// Standard registration forms submitted as a backlog (full 10000, quick 500).
    #[arg(long)]
    pub backlog_forms: Option<u64>,
    /// Paid forms submitted behind that backlog (full 10, quick 3).
    #[arg(long)]
    pub paid_forms: Option<u64>,
    /// Longest wait for the backlog to be decided (full 600, quick 30).
    #[arg(long)]
    pub approval_wait_secs: Option<f64>,
    /// Sales in each backlog of the scaling stage, one backlog per consumer
    /// group and instance count (full 30000, quick 1500; 0 skips the stage).
    #[arg(long)]
    pub scaling_sales: Option<u64>,
    /// Instance counts of the scaling stage, comma-separated (default 1,2,3;
    /// more than the sales topic's partitions leaves consumers idle).
    #[arg(long, value_delimiter = ',')]
    pub scaling_instances: Option<Vec<usize>>,
    /// Longest wait for one scaling run to drain its backlog (full 180, quick 30).
    #[arg(long)]
    pub scaling_wait_secs: Option<f64>,
    /// Location pings written straight to the cart-tracking topic while the
    /// distributor runs, with a missing-cart report behind them (full 50000,
    /// quick 5000; 0 skips the stage).
    #[arg(long)]
    pub tracking_pings: Option<u64>,
    /// Longest wait for the pings to be applied and for each report's
    /// alarm (full 180, quick 30).
    #[arg(long)]
    pub tracking_wait_secs: Option<f64>,
    /// Seconds of location pings through the gateway in a closed loop with
    /// the saturation stage's connections (full 10, quick 3; 0 skips).
    #[arg(long)]
    pub tracking_http_secs: Option<f64>,
    /// Send sales without an Idempotency-Key (by default each sale has one,
    /// as the vendor app sends it, which costs the gateway two more writes).
    #[arg(long)]
    pub no_idempotency_keys: bool,
    /// Skip Kafka's own kafka-producer-perf-test.
    #[arg(long)]
    pub skip_perf_test: bool,
    /// The stack script, for `kafka-tool producer-perf-test`.
    #[arg(long, default_value = "deploy/local/stack")]
    pub stack: PathBuf,
    /// Where the SMTP sink keeps mail.
    #[arg(long, env = "MAMOCHI_MAIL_DIR")]
    pub mail_dir: PathBuf,
}

/// The resolved plan: what this run does.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub quick: bool,
    pub out: PathBuf,
    pub vendors: usize,
    pub rates: Vec<f64>,
    pub stage: Duration,
    pub connections: usize,
    pub saturation_connections: usize,
    pub saturation: Duration,
    pub drain: Duration,
    pub raw_records: u64,
    pub burst_sales: u64,
    pub burst_wait: Duration,
    pub batching_sales: u64,
    pub backlog_forms: u64,
    pub paid_forms: u64,
    pub approval_wait: Duration,
    pub scaling_sales: u64,
    pub scaling_instances: Vec<usize>,
    pub scaling_wait: Duration,
    pub tracking_pings: u64,
    pub tracking_wait: Duration,
    pub tracking_http: Duration,
    pub idempotency_keys: bool,
    pub perf_test: bool,
    pub stack: PathBuf,
    pub mail_dir: PathBuf,
}

impl Plan {
    pub fn from_args(args: &BenchArgs) -> anyhow::Result<Self> {
        let quick = args.quick;
        let pick = |given: Option<f64>, full: f64, short: f64| given.unwrap_or(if quick { short } else { full });
        let secs = |given: Option<f64>, full: f64, short: f64| -> anyhow::Result<Duration> {
            Duration::try_from_secs_f64(pick(given, full, short))
                .map_err(|_| anyhow::anyhow!("durations must be positive seconds"))
        };
        let rates = args.rates.clone().unwrap_or_else(|| {
            if quick {
                vec![250.0, 1000.0]
            } else {
                vec![250.0, 500.0, 1000.0, 2000.0, 4000.0]
            }
        });
        if rates.iter().any(|rate| !rate.is_finite() || *rate <= 0.0) {
            anyhow::bail!("--rates must be positive numbers");
        }
        let plan = Self {
            quick,
            out: args.out.clone(),
            vendors: args.vendors.unwrap_or(if quick { 5 } else { 50 }),
            rates,
            stage: secs(args.stage_secs, 10.0, 2.0)?,
            connections: args.connections.unwrap_or(if quick { 64 } else { 256 }),
            saturation_connections: args.saturation_connections.unwrap_or(if quick { 32 } else { 64 }),
            saturation: secs(args.saturation_secs, 10.0, 3.0)?,
            drain: secs(args.drain_secs, 60.0, 10.0)?,
            raw_records: args.raw_records.unwrap_or(if quick { 20_000 } else { 200_000 }),
            burst_sales: args.burst_sales.unwrap_or(if quick { 5_000 } else { 50_000 }),
            burst_wait: secs(args.burst_wait_secs, 180.0, 30.0)?,
            batching_sales: args.batching_sales.unwrap_or(if quick { 1_000 } else { 10_000 }),
            backlog_forms: args.backlog_forms.unwrap_or(if quick { 500 } else { 10_000 }),
            paid_forms: args.paid_forms.unwrap_or(if quick { 3 } else { 10 }),
            approval_wait: secs(args.approval_wait_secs, 600.0, 30.0)?,
            scaling_sales: args.scaling_sales.unwrap_or(if quick { 1_500 } else { 30_000 }),
            scaling_instances: args.scaling_instances.clone().unwrap_or_else(|| vec![1, 2, 3]),
            scaling_wait: secs(args.scaling_wait_secs, 180.0, 30.0)?,
            tracking_pings: args.tracking_pings.unwrap_or(if quick { 5_000 } else { 50_000 }),
            tracking_wait: secs(args.tracking_wait_secs, 180.0, 30.0)?,
            tracking_http: secs(args.tracking_http_secs, 10.0, 3.0)?,
            idempotency_keys: !args.no_idempotency_keys,
            perf_test: !args.skip_perf_test,
            stack: args.stack.clone(),
            mail_dir: args.mail_dir.clone(),
        };
        if plan.vendors == 0 || plan.connections == 0 || plan.saturation_connections == 0 {
            anyhow::bail!("--vendors and the connection counts must be at least 1");
        }
        if plan.scaling_instances.is_empty() || plan.scaling_instances.contains(&0) {
            anyhow::bail!("--scaling-instances must be counts of at least 1");
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_and_full_defaults_differ_and_flags_win() {
        let full = Plan::from_args(&BenchArgs::default()).expect("full");
        let quick = Plan::from_args(&BenchArgs { quick: true, ..BenchArgs::default() }).expect("quick");
        let custom = Plan::from_args(&BenchArgs {
            quick: true,
            rates: Some(vec![10.0]),
            vendors: Some(2),
            ..BenchArgs::default()
        })
        .expect("custom");

        assert_eq!(full.rates, vec![250.0, 500.0, 1000.0, 2000.0, 4000.0]);
        assert_eq!((full.vendors, full.backlog_forms), (50, 10_000));
        assert_eq!((quick.rates.len(), quick.stage), (2, Duration::from_secs(2)));
        assert_eq!((custom.rates.clone(), custom.vendors, custom.backlog_forms), (vec![10.0], 2, 500));
        assert_eq!((quick.scaling_sales, quick.scaling_instances.clone()), (1_500, vec![1, 2, 3]));
        assert_eq!(full.scaling_sales, 30_000);
        assert_eq!((quick.tracking_pings, full.tracking_pings), (5_000, 50_000));
        let skipped = Plan::from_args(&BenchArgs { quick: true, tracking_pings: Some(0), ..BenchArgs::default() });
        assert_eq!(skipped.expect("skipped").tracking_pings, 0, "--tracking-pings 0 skips the stage");
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(Plan::from_args(&BenchArgs { rates: Some(vec![-1.0]), ..BenchArgs::default() }).is_err());
        assert!(Plan::from_args(&BenchArgs { stage_secs: Some(-2.0), ..BenchArgs::default() }).is_err());
        assert!(Plan::from_args(&BenchArgs { vendors: Some(0), ..BenchArgs::default() }).is_err());
        assert!(Plan::from_args(&BenchArgs { scaling_instances: Some(vec![0]), ..BenchArgs::default() }).is_err());
    }
}
