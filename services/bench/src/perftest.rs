//! Kafka's own producer benchmark, `kafka-producer-perf-test`, run through
//! `deploy/local/stack kafka-tool producer-perf-test` against the same
//! broker, and its summary line parsed.
//!
//! It is the reference for "what this broker can take on this machine":
//! Apache Kafka's Java producer, no schema registry, no HTTP, no database.
//! The tool prints a progress line every five seconds and, last, a summary
//! line that also carries percentiles; only that last one is read.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// The summary line of one `kafka-producer-perf-test` run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PerfSummary {
    pub records: u64,
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// Reads the final summary line, e.g.
/// `100000 records sent, 48520.1 records/sec (9.25 MB/sec), 1543.23 ms avg
/// latency, 2001.00 ms max latency, 1608 ms 50th, 1954 ms 95th, 1991 ms 99th,
/// 2000 ms 99.9th.` Progress lines (no percentiles) are not summaries.
pub fn parse_summary(line: &str) -> Option<PerfSummary> {
    let mut summary = PerfSummary::default();
    let mut seen_p50 = false;
    for part in line.trim().trim_end_matches('.').split(',') {
        let part = part.trim();
        // "48520.1 records/sec (9.25 MB/sec)" holds two figures.
        let (part, extra) = match part.split_once('(') {
            Some((head, tail)) => (head.trim(), Some(tail.trim_end_matches(')').trim())),
            None => (part, None),
        };
        let (number, label) = part.split_once(' ')?;
        let value: f64 = number.trim().parse().ok()?;
        match label.trim() {
            "records sent" => summary.records = value as u64,
            "records/sec" => summary.records_per_sec = value,
            "ms avg latency" => summary.avg_ms = value,
            "ms max latency" => summary.max_ms = value,
            "ms 50th" => {
                summary.p50_ms = value;
                seen_p50 = true;
            }
            "ms 95th" => summary.p95_ms = value,
            "ms 99th" => summary.p99_ms = value,
            _ => {}
        }
        if let Some(extra) = extra {
            if let Some(mb) = extra.strip_suffix("MB/sec") {
                summary.mb_per_sec = mb.trim().parse().ok()?;
            }
        }
    }
    (seen_p50 && summary.records > 0).then_some(summary)
}

/// The last summary line in the tool's whole output.
pub fn find_summary(output: &str) -> Option<PerfSummary> {
    output.lines().rev().find_map(parse_summary)
}

/// What to run.
#[derive(Debug, Clone)]
pub struct PerfRequest<'a> {
    /// `deploy/local/stack`.
    pub stack: &'a Path,
    pub bootstrap_servers: &'a str,
    pub topic: &'a str,
    pub records: u64,
    pub record_size: usize,
    pub timeout: Duration,
}

/// Runs the tool with `acks=all` and unlimited throughput; returns the
/// summary and the tool's raw output (kept in results.json).
pub async fn run(request: &PerfRequest<'_>) -> anyhow::Result<(PerfSummary, String)> {
    if !request.stack.exists() {
        bail!("{} not found (run the bench from the repository root or pass --stack)", request.stack.display());
    }
    let mut command = tokio::process::Command::new("bash");
    command
        .arg(request.stack)
        .args(["kafka-tool", "producer-perf-test", "--topic", request.topic])
        .args(["--num-records", &request.records.to_string()])
        .args(["--record-size", &request.record_size.to_string()])
        .args(["--throughput", "-1", "--producer-props"])
        .arg(format!("bootstrap.servers={}", request.bootstrap_servers))
        // Same delivery promise as the platform's producers.
        .args(["acks=all", "enable.idempotence=true"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(request.timeout, command.output())
        .await
        .context("kafka-producer-perf-test did not finish in time")?
        .context("while starting kafka-producer-perf-test")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        bail!("kafka-producer-perf-test failed ({}): {}", output.status, tail(&stderr, 800));
    }
    let summary = find_summary(&stdout).with_context(|| format!("no summary line in: {}", tail(&stdout, 800)))?;
    Ok((summary, stdout))
}

fn tail(text: &str, chars: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(chars)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
243921 records sent, 48774.4 records/sec (9.30 MB/sec), 1.9 ms avg latency, 232.0 ms max latency.
100000 records sent, 48520.135856 records/sec (9.25 MB/sec), 1543.23 ms avg latency, 2001.00 ms max latency, 1608 ms 50th, 1954 ms 95th, 1991 ms 99th, 2000 ms 99.9th.
";

    #[test]
    fn the_summary_line_is_parsed() {
        let summary = find_summary(OUTPUT).expect("summary");
        assert_eq!(summary.records, 100_000);
        assert!((summary.records_per_sec - 48_520.135_856).abs() < 1e-6);
        assert!((summary.mb_per_sec - 9.25).abs() < 1e-9);
        assert!((summary.avg_ms - 1543.23).abs() < 1e-9);
        assert!((summary.max_ms - 2001.0).abs() < 1e-9);
        assert_eq!((summary.p50_ms, summary.p95_ms, summary.p99_ms), (1608.0, 1954.0, 1991.0));
    }

    #[test]
    fn progress_lines_are_not_summaries() {
        assert_eq!(parse_summary(OUTPUT.lines().next().expect("line")), None);
        assert_eq!(parse_summary(""), None);
        assert_eq!(parse_summary("[2026-01-01 10:00:00] WARN something, else"), None);
    }

    #[test]
    fn a_missing_summary_is_none() {
        assert_eq!(
            find_summary("5 records sent, 1.0 records/sec (0.00 MB/sec), 1.0 ms avg latency, 2.0 ms max latency.\n"),
            None
        );
    }
}
