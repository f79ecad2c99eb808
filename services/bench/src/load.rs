//! Sales over HTTP: the open-loop generator of the fixed-rate stages and the
//! closed loop of the saturation stage.
//!
//! Open loop: request `i` is due at `i / rate` ([`crate::schedule`]); it is
//! handed to a task at its due time whatever the earlier ones are doing, and
//! waits there for one of `connections` slots (keep-alive connections to the
//! gateway). Its latency runs from the due time, so time spent queued behind
//! a slow server counts. Whatever is still unanswered when the drain
//! deadline passes is cut off and counted as `unfinished`, with the time it
//! had waited so far recorded as its latency (a lower bound).
//!
//! Closed loop: `connections` workers each send the next sale as soon as the
//! previous one is answered; this finds the most the gateway accepts, and
//! its latency is per request (from send to answer).
//!
//! Load shedding: a 503 is the gateway saying it is over capacity (with
//! `Retry-After`), not a failure. It is counted apart (`shed`), does not
//! enter the HTTP latency histogram (a fast refusal would make the accepted
//! sales' latency look better than it is) and never aborts a stage. The
//! generator does not wait the `Retry-After` seconds, so the offered load
//! stays what the stage says; a closed-loop worker pauses [`SHED_PAUSE`]
//! after a 503 so it does not spin on refusals.
//! Every accepted sale is handed to a [`Watcher`], which looks for its
//! committed rows while the load runs ([`crate::commits`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::commits::Watcher;
use crate::progress::Progress;
use crate::schedule::{vendor_for, Timetable};
use crate::stats::Recorder;

/// How long a closed-loop worker waits after a 503 before its next sale.
pub const SHED_PAUSE: Duration = Duration::from_millis(10);

/// A sale the gateway accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub sale_id: Uuid,
    /// The gateway's recorded time (the `occurred_at` of the answer).
    pub recorded_at: DateTime<Utc>,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accepted(Accepted),
    /// A 4xx: the request was refused (a 409 is a stock refusal).
    Refused(u16),
    /// A 503: the gateway shed the request because it is over capacity.
    Shed,
    /// A 5xx or no answer.
    Failed(String),
}

#[derive(Deserialize)]
struct Created {
    sale_id: Uuid,
    occurred_at: DateTime<Utc>,
}

/// Sends sales for the bench vendors.
#[derive(Debug, Clone)]
pub struct SaleClient {
    http: reqwest::Client,
    url: String,
    keys: Arc<Vec<String>>,
    idempotency_keys: bool,
}

impl SaleClient {
    pub fn new(http: reqwest::Client, api: &str, keys: Vec<String>, idempotency_keys: bool) -> Self {
        Self { http, url: format!("{api}/v1/sales"), keys: Arc::new(keys), idempotency_keys }
    }

    /// Whether each sale carries an Idempotency-Key header.
    pub fn idempotency_keys(&self) -> bool {
        self.idempotency_keys
    }

    /// Sale number `index`, sold by the vendor whose turn it is.
    pub async fn sell(&self, index: u64) -> Answer {
        let key = &self.keys[vendor_for(index, self.keys.len())];
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(key)
            .header("Content-Type", "application/json")
            .body(r#"{"quantity":1,"unit_price_clp":1500,"payment_method":"cash"}"#);
        if self.idempotency_keys {
            request = request.header("Idempotency-Key", Uuid::new_v4().simple().to_string());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Answer::Failed(error.to_string()),
        };
        let status = response.status();
        // Reading the body to its end lets the connection go back to the pool.
        let body = response.bytes().await;
        match (status.as_u16(), body) {
            (201, Ok(body)) => match serde_json::from_slice::<Created>(&body) {
                Ok(created) => {
                    Answer::Accepted(Accepted { sale_id: created.sale_id, recorded_at: created.occurred_at })
                }
                Err(error) => Answer::Failed(format!("unreadable 201 answer: {error}")),
            },
            (code @ 400..=499, _) => Answer::Refused(code),
            (503, _) => Answer::Shed,
            (code, _) => Answer::Failed(format!("HTTP {code}")),
        }
    }
}

/// What one stage of load saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub sent: u64,
    pub accepted: Vec<Accepted>,
    pub refused: u64,
    /// Of `refused`, the 409s: the cart was empty until its restock landed.
    pub refused_stock: u64,
    /// 503 answers (load shed), not in `http`.
    pub shed: u64,
    pub failed: u64,
    pub unfinished: u64,
    pub http: Recorder,
    /// Stage start to the last answer (or the cut-off).
    pub elapsed: Duration,
    pub first_error: Option<String>,
}

impl Outcome {
    fn take(&mut self, latency: Duration, answer: Answer) {
        if answer == Answer::Shed {
            self.shed += 1;
            return;
        }
        self.http.record(latency);
        match answer {
            Answer::Shed => {}
            Answer::Accepted(sale) => self.accepted.push(sale),
            Answer::Refused(code) => {
                self.refused += 1;
                if code == 409 {
                    self.refused_stock += 1;
                }
                self.first_error.get_or_insert_with(|| format!("HTTP {code}"));
            }
            Answer::Failed(error) => {
                self.failed += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }
}

/// Offers `rate` sales per second for `duration` on at most `connections`
/// connections; waits at most `drain` after the last due time. Accepted
/// sales are handed to `watcher` as they are answered.
pub async fn open_loop(
    client: &SaleClient,
    watcher: &Watcher,
    rate: f64,
    duration: Duration,
    connections: usize,
    drain: Duration,
    progress: &Progress,
) -> Outcome {
    let table = Timetable::new(rate, duration);
    progress.set_length(table.count());
    let slots = Arc::new(Semaphore::new(connections));
    let (answers, mut received) = mpsc::unbounded_channel::<(u64, Duration, Answer)>();
    // A short lead so the first due times are not already late.
    let start = Instant::now() + Duration::from_millis(20);
    let deadline = start + duration + drain;

    let collector = {
        let progress = progress.clone();
        let watcher = watcher.clone();
        tokio::spawn(async move {
            let mut outcome = Outcome::default();
            let mut answered = vec![false; table.count() as usize];
            let mut last = Duration::ZERO;
            while let Some((index, latency, answer)) = received.recv().await {
                answered[index as usize] = true;
                last = last.max(start.elapsed());
                if let Answer::Accepted(sale) = &answer {
                    watcher.watch(sale.sale_id);
                }
                outcome.take(latency, answer);
                progress.inc(1);
            }
            (outcome, answered, last)
        })
    };

    let mut requests = JoinSet::new();
    for index in 0..table.count() {
        let due = start + table.due(index);
        tokio::time::sleep_until(due).await;
        let (client, slots, answers) = (client.clone(), slots.clone(), answers.clone());
        requests.spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else { return };
            let answer = client.sell(index).await;
            let _ = answers.send((index, due.elapsed(), answer));
        });
    }
    drop(answers);
    // Wait for every answer, or cut off at the deadline.
    let everything = async { while requests.join_next().await.is_some() {} };
    if tokio::time::timeout_at(deadline, everything).await.is_err() {
        requests.abort_all();
        while requests.join_next().await.is_some() {}
    }
    let (mut outcome, answered, last) = collector.await.unwrap_or_default();
    outcome.sent = table.count();
    for (index, done) in answered.iter().enumerate() {
        if !done {
            outcome.unfinished += 1;
            outcome.http.record(deadline.saturating_duration_since(start + table.due(index as u64)));
        }
    }
    outcome.elapsed = if outcome.unfinished > 0 { deadline - start } else { last.max(duration) };
    outcome
}

/// `connections` workers selling back to back for `duration`; accepted
/// sales are handed to `watcher`.
pub async fn closed_loop(
    client: &SaleClient,
    watcher: &Watcher,
    duration: Duration,
    connections: usize,
    progress: &Progress,
) -> Outcome {
    let start = Instant::now();
    let end = start + duration;
    let (answers, mut received) = mpsc::unbounded_channel::<(Duration, Answer)>();
    let mut workers = JoinSet::new();
    for worker in 0..connections {
        let (client, answers) = (client.clone(), answers.clone());
        workers.spawn(async move {
            let mut index = worker as u64;
            while Instant::now() < end {
                let sent = Instant::now();
                let answer = client.sell(index).await;
                let shed = answer == Answer::Shed;
                let _ = answers.send((sent.elapsed(), answer));
                index += connections as u64;
                if shed {
                    tokio::time::sleep(SHED_PAUSE).await;
                }
            }
        });
    }
    drop(answers);
    let mut outcome = Outcome::default();
    while let Some((latency, answer)) = received.recv().await {
        outcome.sent += 1;
        if let Answer::Accepted(sale) = &answer {
            watcher.watch(sale.sale_id);
        }
        outcome.take(latency, answer);
        progress.set_position(start.elapsed().as_millis() as u64);
    }
    while workers.join_next().await.is_some() {}
    outcome.elapsed = start.elapsed();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_tallied_by_kind() {
        let mut outcome = Outcome::default();
        let sale = Accepted { sale_id: Uuid::nil(), recorded_at: DateTime::from_timestamp_millis(0).expect("epoch") };

        outcome.take(Duration::from_millis(3), Answer::Accepted(sale));
        outcome.take(Duration::from_millis(4), Answer::Refused(409));
        outcome.take(Duration::from_millis(4), Answer::Refused(422));
        outcome.take(Duration::from_millis(5), Answer::Failed("HTTP 500".into()));
        outcome.take(Duration::from_millis(1), Answer::Shed);

        assert_eq!((outcome.accepted.len(), outcome.refused, outcome.failed, outcome.shed), (1, 2, 1, 1));
        assert_eq!(outcome.refused_stock, 1, "only the 409 is a stock refusal");
        assert_eq!(outcome.http.count(), 4, "a shed request is not in the HTTP latency");
        assert_eq!(outcome.first_error.as_deref(), Some("HTTP 409"));
    }
}
