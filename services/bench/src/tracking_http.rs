//! Location pings through the gateway (`POST /v1/carts/me/locations`) in a
//! closed loop: what the ping path costs the gateway next to a sale.
//!
//! Each of `connections` workers sends a ping as soon as its previous one
//! was answered, for the bench vendors in turn, from inside their comuna and
//! stamped with the platform's clock; a 202 means Kafka acknowledged the
//! event. The latency runs from send to answer; 503s (load shed) are counted
//! apart and left out of it, as in the sales stages. Guarantee: a rate
//! counts every 202 over the time from the first send to the last answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mamochi_common::clock::Clock;
use serde_json::json;

use crate::load::SHED_PAUSE;
use crate::progress::Progress;
use crate::results::HttpPings;
use crate::stats::Recorder;

/// What the closed loop needs.
#[derive(Clone)]
pub struct PingClient {
    pub http: reqwest::Client,
    /// `{api}/v1/carts/me/locations`.
    pub url: String,
    /// One API key per bench vendor (one cart each).
    pub keys: Arc<Vec<String>>,
    pub clock: Clock,
    /// The comuna centre the pings come from.
    pub centre: (f64, f64),
}

impl std::fmt::Debug for PingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PingClient").field("url", &self.url).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    shed: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn error(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(error);
    }
}

/// Pings as fast as `connections` clients are answered, for `duration`.
pub async fn closed_loop(
    client: &PingClient,
    connections: usize,
    duration: Duration,
    progress: &Progress,
) -> HttpPings {
    let tally = Arc::new(Tally::default());
    let latencies = Arc::new(Mutex::new(Recorder::new()));
    let started = Instant::now();
    let stop_at = started + duration;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..connections {
        let (client, tally, latencies, progress) = (client.clone(), tally.clone(), latencies.clone(), progress.clone());
        workers.spawn(async move {
            let mut own = Recorder::new();
            let mut sequence = worker as u64;
            while Instant::now() < stop_at {
                let key = &client.keys[(sequence as usize) % client.keys.len().max(1)];
                // About ±100 m around the centre, well inside any radius.
                let offset = ((sequence % 200) as f64 - 100.0) * 1e-5;
                let body = json!({
                    "latitude": client.centre.0 + offset,
                    "longitude": client.centre.1 - offset,
                    "accuracy_m": 12.0,
                    "occurred_at": client.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                });
                sequence += connections as u64;
                let sent = Instant::now();
                tally.sent.fetch_add(1, Ordering::Relaxed);
                let answer = client.http.post(&client.url).bearer_auth(key).json(&body).send().await;
                match answer {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        // Reading the body to its end returns the connection to the pool.
                        let _ = response.bytes().await;
                        match status {
                            202 => {
                                own.record(sent.elapsed());
                                tally.accepted.fetch_add(1, Ordering::Relaxed);
                            }
                            503 => {
                                tally.shed.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(SHED_PAUSE).await;
                            }
                            400..=499 => {
                                own.record(sent.elapsed());
                                tally.refused.fetch_add(1, Ordering::Relaxed);
                                tally
                                    .first_error
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .get_or_insert(format!("HTTP {status}"));
                            }
                            code => tally.error(format!("HTTP {code}")),
                        }
                    }
                    Err(error) => tally.error(error.to_string()),
                }
                progress.set_position(started.elapsed().as_millis() as u64);
            }
            latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).merge(&own);
        });
    }
    while workers.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = tally.accepted.load(Ordering::Relaxed);
    let http = latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).summary();
    let first_error = tally.first_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    HttpPings {
        connections,
        duration_s: duration.as_secs_f64(),
        sent: tally.sent.load(Ordering::Relaxed),
        accepted,
        refused: tally.refused.load(Ordering::Relaxed),
        shed: tally.shed.load(Ordering::Relaxed),
        failed: tally.failed.load(Ordering::Relaxed),
        accepted_per_s: accepted as f64 / elapsed.max(1e-9),
        http,
        first_error,
    }
}
