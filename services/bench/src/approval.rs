//! The paid lane under a backlog: standard forms are submitted as fast as
//! the gateway takes them, then a few paid ones; every form's wait from
//! submission to decision is read from the `registrations` table.
//!
//! Both ends of a wait come from the platform: `submitted_at` is stamped by
//! the gateway, `decided_at` by the approval service, on the same machine
//! and clock. The backlog the paid forms had to overtake is measured too
//! (standard forms still undecided when the first paid one was sent): a
//! paid form that waited behind an empty queue proves nothing.
//!
//! The decision rate of the backlog counts until its last form: every
//! submitted form over the time from the first submission to the poll
//! ([`POLL`]) that first found none of them undecided, a moment after
//! the last decision committed. A backlog not decided within the wait has
//! no rate.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::stream::{self, StreamExt};
use mamochi_common::db::PgPool;
use serde_json::Value;
use uuid::Uuid;

use crate::effects::{self, millis_between};
use crate::identity::Identities;
use crate::progress::Progress;
use crate::results::{ApprovalRun, FormWait, LaneWait};
use crate::stats::Recorder;

/// How often the bench looks for forms still undecided.
pub const POLL: Duration = Duration::from_millis(100);

/// Submits `forms` (index, paid) with `parallel` requests in flight;
/// returns the accepted registration ids and the number refused.
async fn submit(
    http: &reqwest::Client,
    api: &str,
    identities: &Identities,
    forms: Vec<(u64, bool)>,
    parallel: usize,
    progress: &Progress,
) -> (Vec<Uuid>, u64) {
    let url = format!("{api}/v1/registrations");
    let answers: Vec<Option<Uuid>> = stream::iter(forms)
        .map(|(index, paid)| {
            let (http, url, form) = (http.clone(), url.clone(), identities.form(index, paid));
            async move {
                let response = http.post(&url).json(&form).send().await.ok()?;
                if response.status().as_u16() != 202 {
                    return None;
                }
                let answer: Value = response.json().await.ok()?;
                answer["registration_id"].as_str().and_then(|id| Uuid::parse_str(id).ok())
            }
        })
        .buffer_unordered(parallel)
        .inspect(|_| progress.inc(1))
        .collect()
        .await;
    let refused = answers.iter().filter(|id| id.is_none()).count() as u64;
    (answers.into_iter().flatten().collect(), refused)
}

/// Runs the backlog; `epoch` is the bench's clock origin (for the lag plot).
#[allow(clippy::too_many_arguments)]
pub async fn backlog(
    http: &reqwest::Client,
    api: &str,
    identities: &Identities,
    pool: &PgPool,
    standard: u64,
    paid: u64,
    parallel: usize,
    within: Duration,
    epoch: Instant,
    progress: &Progress,
) -> anyhow::Result<ApprovalRun> {
    let started_s = epoch.elapsed().as_secs_f64();
    progress.set_length(standard + paid);
    progress.set_message("submitting standard forms");
    let submit_started = Instant::now();
    let (standard_ids, refused_standard) =
        submit(http, api, identities, (0..standard).map(|index| (index, false)).collect(), parallel, progress).await;
    let submit_s = submit_started.elapsed().as_secs_f64();

    let backlog_when_paid = effects::count_undecided(pool, &standard_ids).await?;
    progress.set_message("submitting paid forms");
    let (paid_ids, refused_paid) = submit(
        http,
        api,
        identities,
        (standard..standard + paid).map(|index| (index, true)).collect(),
        paid.max(1) as usize,
        progress,
    )
    .await;

    let all: Vec<Uuid> = standard_ids.iter().chain(&paid_ids).copied().collect();
    progress.set_position(0);
    progress.set_length(all.len() as u64);
    progress.set_message("waiting for decisions");
    let deadline = Instant::now() + within;
    let mut all_decided_after: Option<Duration> = None;
    loop {
        let undecided = effects::count_undecided(pool, &all).await?;
        progress.set_position(all.len() as u64 - undecided.min(all.len() as u64));
        if undecided == 0 {
            // Taken after the answer: every decision had committed before.
            all_decided_after = Some(submit_started.elapsed());
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }

    let fates = effects::form_fates(pool, &all).await.context("while reading decisions")?;
    let first_submitted = fates.values().map(|fate| fate.submitted_at).min();
    let mut lanes = [LaneTally::default(), LaneTally::default()];
    let mut forms = Vec::with_capacity(all.len());
    for id in &all {
        let Some(fate) = fates.get(id) else {
            lanes[usize::from(paid_ids.contains(id))].lane.undecided += 1;
            continue;
        };
        let tally = &mut lanes[usize::from(fate.paid)];
        let wait_ms = fate.decided_at.map(|decided| millis_between(fate.submitted_at, decided));
        match fate.status.as_str() {
            "approved" => tally.lane.approved += 1,
            "rejected" => tally.lane.rejected += 1,
            "manual_review" => tally.lane.manual_review += 1,
            _ => tally.lane.undecided += 1,
        }
        if let Some(wait) = wait_ms {
            tally.lane.decided += 1;
            tally.waits.record_ms(wait);
        }
        forms.push(FormWait {
            paid: fate.paid,
            submitted_s: first_submitted.map_or(0.0, |first| millis_between(first, fate.submitted_at) / 1000.0),
            wait_ms,
            status: fate.status.clone(),
        });
    }
    // Over the whole backlog: from the first submission to the last
    // decision seen committed (manual review is a decision too).
    let decided_per_s = all_decided_after
        .filter(|elapsed| !all.is_empty() && !elapsed.is_zero())
        .map(|elapsed| all.len() as f64 / elapsed.as_secs_f64());
    let [standard_lane, paid_lane] = lanes;
    Ok(ApprovalRun {
        standard_submitted: standard_ids.len() as u64,
        paid_submitted: paid_ids.len() as u64,
        submit_failed: refused_standard + refused_paid,
        submit_per_s: standard_ids.len() as f64 / submit_s.max(1e-9),
        submit_s,
        backlog_when_paid,
        standard: standard_lane.finish(),
        paid: paid_lane.finish(),
        decided_per_s,
        forms,
        started_s,
        ended_s: epoch.elapsed().as_secs_f64(),
    })
}

#[derive(Debug, Default)]
struct LaneTally {
    lane: LaneWait,
    waits: Recorder,
}

impl LaneTally {
    fn finish(mut self) -> LaneWait {
        self.lane.wait = self.waits.summary();
        self.lane
    }
}
