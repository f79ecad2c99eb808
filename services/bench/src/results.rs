//! Everything one run measured, as one serialisable value: `results.json`
//! is this, and the tables, plots and report text are all computed from it
//! (never from anything else), so a report can be regenerated from the JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::perftest::PerfSummary;
use crate::stats::Latency;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub meta: Meta,
    pub raw_kafka: RawKafka,
    pub setup: Setup,
    pub sales: Vec<SalesStage>,
    pub burst: Option<Burst>,
    /// Accounting's store, one sale per transaction against batched.
    pub batching: Option<BatchingRun>,
    pub lag: Vec<LagSample>,
    pub approval: Option<ApprovalRun>,
    /// Each consumer group draining a backlog with 1, 2 and 3 instances.
    #[serde(default)]
    pub scaling: Option<Scaling>,
    /// Location pings drained by the distributor's tracking group, and a
    /// missing-cart report behind them (see [`crate::tracking`]).
    #[serde(default)]
    pub tracking: Option<TrackingRun>,
    /// Things the reader must know to read the figures right (what was
    /// interpolated, what was skipped and why).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub quick: bool,
    pub machine: Machine,
    pub kafka_brokers: usize,
    pub sales_partitions: i32,
    /// The plan as run (rates, durations, counts).
    pub plan: serde_json::Value,
    /// The stock rule chosen for the bench (see the report).
    pub stock_policy: String,
    /// Platform settings that bound throughput, as the services ran.
    pub db_pool_size: usize,
    pub kafka_linger_ms: u32,
}

/// The broker's limits measured without the platform.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RawKafka {
    pub platform_producer: Option<ProducerRun>,
    pub platform_producer_error: Option<String>,
    pub perf_test: Option<PerfSummary>,
    pub perf_test_error: Option<String>,
}

/// The platform's own producer configuration writing encoded sales.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProducerRun {
    pub topic: String,
    pub partitions: i32,
    pub records: u64,
    pub failed: u64,
    pub key_bytes: usize,
    pub value_bytes: usize,
    pub elapsed_s: f64,
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    /// Enqueue to acks=all acknowledgement.
    pub ack: Latency,
    /// Largest number of records in flight (enqueued, not yet acknowledged).
    pub max_in_flight: u64,
}

/// Vendors registering over HTTP.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Setup {
    pub vendors: usize,
    pub approved: usize,
    /// POST /v1/registrations answered (202), client side.
    pub submit_http: Latency,
    /// Submission to the credentials .eml landing in the SMTP sink
    /// (the file's modification time).
    pub submit_to_email: Latency,
    pub elapsed_s: f64,
}

/// One stage of sales over HTTP.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SalesStage {
    pub name: String,
    /// `open` (fixed rate, timetable) or `closed` (saturation).
    pub mode: String,
    /// Whether every sale carried an Idempotency-Key (the keyed path).
    #[serde(default)]
    pub idempotency_keys: bool,
    /// Requests per second offered; `None` for the closed loop.
    pub offered_per_s: Option<f64>,
    pub connections: usize,
    pub duration_s: f64,
    pub sent: u64,
    /// 201 Created.
    pub accepted: u64,
    /// Other 4xx (a 409 is a stock refusal: the cart ran out before its
    /// restock arrived).
    pub refused: u64,
    /// Of `refused`, the 409s (no stock until the restock lands).
    #[serde(default)]
    pub refused_stock: u64,
    /// 503 answers: the gateway shed the request (over capacity). Not in
    /// the HTTP latency.
    #[serde(default)]
    pub shed: u64,
    /// 5xx and transport errors.
    pub failed: u64,
    /// Still unanswered when the drain deadline passed; counted in the
    /// latency histogram at that deadline (a lower bound).
    pub unfinished: u64,
    /// Accepted sales per second over the stage (sending time plus the tail
    /// of answers).
    pub accepted_per_s: f64,
    /// Due time (open loop) or send time (closed loop) to the 201.
    pub http: Latency,
    /// The gateway's produce histogram for the sales topic, diffed around
    /// the stage (bucket-interpolated).
    pub kafka_ack: Option<Latency>,
    /// Sale recorded (gateway clock) to its accounting row seen committed
    /// (see [`crate::commits`]: at or after the commit, at most one poll late).
    pub accounting: Option<Latency>,
    /// Sale recorded to its distributor (stock) row seen committed.
    pub distributor: Option<Latency>,
    /// Accepted sales accounting had committed when the wait ended.
    pub accounting_applied: u64,
    /// Accepted sales the distributor had committed when the wait ended.
    #[serde(default)]
    pub distributor_applied: u64,
    /// Accounting rows per second over the stage (first to last row seen
    /// committed; only when every accepted sale was).
    pub accounting_applied_per_s: Option<f64>,
    /// Seconds after the last answer until accounting's last row was seen committed.
    pub accounting_drain_s: Option<f64>,
    /// How long each poll of the commit watcher took (its resolution).
    #[serde(default)]
    pub commit_poll: Option<Latency>,
    /// Bench-clock seconds when the stage started and ended (for the lag plot).
    pub started_s: f64,
    pub ended_s: f64,
}

impl SalesStage {
    /// Accepted (201) sales as a share of the sales the gateway could take:
    /// the requests sent less the 409s for an empty cart, which are the
    /// right answer to those sales rather than a failure to take them;
    /// 0–1, `None` when there was nothing to take.
    pub fn accepted_share(&self) -> Option<f64> {
        let takeable = self.sent.saturating_sub(self.refused_stock);
        (takeable > 0).then(|| self.accepted as f64 / takeable as f64)
    }

    /// 503 answers as a share of the requests sent, 0–1.
    pub fn shed_share(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.shed as f64 / self.sent as f64)
    }
}

/// Sales written straight to the sales topic in one burst, to measure how
/// fast the consumers apply a backlog when the gateway is not the limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Burst {
    pub records: u64,
    pub produce_s: f64,
    pub accounting_applied: u64,
    /// From the first record written to the last one seen committed; `None`
    /// when not all of them were within the wait.
    pub accounting_s: Option<f64>,
    /// `records / accounting_s`.
    pub accounting_per_s: Option<f64>,
    pub distributor_applied: u64,
    pub distributor_s: Option<f64>,
    pub distributor_per_s: Option<f64>,
    /// How long each poll of the commit watcher took (its resolution).
    #[serde(default)]
    pub commit_poll: Option<Latency>,
    /// Peak lag of accounting's group during the burst.
    pub peak_lag: i64,
    /// Peak lag of the distributor's sales group during the burst.
    #[serde(default)]
    pub distributor_peak_lag: i64,
    pub started_s: f64,
    pub ended_s: f64,
}

/// The same number of fresh sales applied by accounting's store one per
/// transaction, then in batches (see [`crate::batching`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BatchingRun {
    pub sales: u64,
    pub batch_size: usize,
    pub one_by_one_s: f64,
    pub one_by_one_per_s: f64,
    pub batched_s: f64,
    pub batched_per_s: f64,
}

/// One reading of a consumer group's lag (high watermark minus committed
/// offset, summed over the topic's partitions).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LagSample {
    /// Seconds since the bench started.
    pub t_s: f64,
    pub stage: String,
    pub group: String,
    pub topic: String,
    pub lag: i64,
}

/// Paid forms behind a backlog of standard ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApprovalRun {
    pub standard_submitted: u64,
    pub paid_submitted: u64,
    pub submit_failed: u64,
    /// Standard forms accepted per second by the gateway.
    pub submit_per_s: f64,
    pub submit_s: f64,
    /// Standard forms still undecided when the first paid form was sent:
    /// the backlog the paid lane had to overtake.
    pub backlog_when_paid: u64,
    pub standard: LaneWait,
    pub paid: LaneWait,
    /// Forms decided per second: decided forms over the time from the first
    /// submission to the moment the bench saw the last decision committed
    /// (polled every [`crate::approval::POLL`]).
    pub decided_per_s: Option<f64>,
    /// Every form: lane, submission offset and wait, for the plot and CSV.
    pub forms: Vec<FormWait>,
    pub started_s: f64,
    pub ended_s: f64,
}

/// Submission to decision, for one lane.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LaneWait {
    pub wait: Latency,
    pub decided: u64,
    pub approved: u64,
    pub rejected: u64,
    pub manual_review: u64,
    /// Not decided when the wait ended.
    pub undecided: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FormWait {
    pub paid: bool,
    /// Seconds after the first standard form was submitted.
    pub submitted_s: f64,
    /// `None` while undecided (or sent to manual review, which has no decision time).
    pub wait_ms: Option<f64>,
    pub status: String,
}

/// The scaling stage: each consumer group drains a backlog of its own with
/// 1, 2, 3… instances (see [`crate::scaling`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scaling {
    /// Partitions of the sales topic: no group uses more consumers than this.
    pub partitions: i32,
    /// How the instances ran (in this process, each its own service).
    pub how: String,
    pub runs: Vec<ScalingRun>,
}

/// One group with one instance count, draining one backlog.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScalingRun {
    /// The group's short name (`accounting`, `distributor`).
    pub group: String,
    pub instances: usize,
    /// Sales written while the group was stopped.
    pub records: u64,
    /// Of them, seen committed by the group's consumer before the wait ended.
    pub applied: u64,
    /// Seconds to write the backlog (before the instances started).
    pub produce_s: f64,
    /// Instances started → the first sale seen committed (start-up, joining
    /// the group, the first batch).
    pub first_commit_s: Option<f64>,
    /// Instances started → the last sale seen committed: the lag-drain time.
    /// `None` when not every sale was committed within the wait.
    pub drain_s: Option<f64>,
    /// `records / drain_s`.
    pub records_per_s: Option<f64>,
    /// Records over the span from the first to the last sale seen committed:
    /// the rate once every instance works, start-up left out.
    pub steady_per_s: Option<f64>,
    pub peak_lag: i64,
    /// Sales whose row was already committed before the instances started:
    /// another group on the shared stack with the same consumer name applied
    /// them, so this run took them as duplicates (cheaper than the work).
    #[serde(default)]
    pub applied_elsewhere: u64,
    /// (seconds since the instances started, the group's lag).
    pub lag: Vec<(f64, i64)>,
    /// Why this run measured nothing, if it did not.
    pub error: Option<String>,
}

/// Location pings written straight to the cart-tracking topic while the
/// distributor runs, and a MISSING then FOUND report behind them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrackingRun {
    pub pings: u64,
    /// Bench carts the pings were spread over (each batch stores at most
    /// one position per cart).
    pub carts: usize,
    /// `tracking.max_batch`: events per tracking transaction at most.
    pub max_batch: usize,
    /// Seconds to write the backlog (the distributor applying meanwhile).
    pub produce_s: f64,
    /// Pings seen committed by the tracking group before the wait ended.
    pub applied: u64,
    /// First ping written → last ping seen committed; `None` when not every
    /// ping was within the wait.
    pub drain_s: Option<f64>,
    /// `pings / drain_s`.
    pub pings_per_s: Option<f64>,
    /// Pings over the span from the first to the last seen committed.
    pub steady_per_s: Option<f64>,
    /// Peak lag of the tracking group during the stage.
    pub peak_lag: i64,
    /// How long each poll of the commit watcher took (its resolution).
    pub commit_poll: Option<Latency>,
    /// Pings not committed when the MISSING report had been acknowledged
    /// (counted just after: a lower bound).
    pub pings_pending_at_report: u64,
    /// Pings not committed when its RAISED alarm had been read (counted
    /// just after: a lower bound of the backlog the report overtook).
    #[serde(default)]
    pub pings_pending_at_alarm: u64,
    /// MISSING report → RAISED alarm.
    pub missing: Option<ReportTiming>,
    /// FOUND report → CLEARED alarm.
    pub found: Option<ReportTiming>,
    /// What went wrong, if a report's alarm never came.
    pub error: Option<String>,
    /// Location pings through the gateway in a closed loop, if run.
    #[serde(default)]
    pub http: Option<HttpPings>,
    pub started_s: f64,
    pub ended_s: f64,
}

/// One report's way to its alarm.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ReportTiming {
    /// The alarm's `decided_at` minus the report's `occurred_at` (real ms).
    pub decided_ms: f64,
    /// Report written (just before the produce) → alarm read back from
    /// `mamochi.cart-alarms` by the bench (ms).
    pub seen_ms: f64,
}

/// `POST /v1/carts/me/locations` in a closed loop (see [`crate::tracking_http`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HttpPings {
    pub connections: usize,
    pub duration_s: f64,
    pub sent: u64,
    /// 202 Accepted: Kafka acknowledged the ping.
    pub accepted: u64,
    /// Other 4xx.
    pub refused: u64,
    /// 503 answers (load shed), not in `http`.
    pub shed: u64,
    /// 5xx and transport errors.
    pub failed: u64,
    pub accepted_per_s: f64,
    /// Send to answer, 202s and 4xx.
    pub http: Latency,
    pub first_error: Option<String>,
}
