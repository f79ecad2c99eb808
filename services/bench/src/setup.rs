//! The vendors of the bench, made the way real ones are: each registers over
//! HTTP, is approved by the approval service, and reads its API key from the
//! credentials email in the SMTP sink. Submission → email-in-the-sink is
//! measured on the way (the registration flow's end to end, notifier and
//! SMTP included).

use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt};
use serde_json::Value;

use crate::identity::Identities;

/// Index of the first setup form: setup forms use the top of the index
/// range, the approval backlog the bottom.
pub const FIRST_INDEX: u64 = 1_000_000;
use crate::mail::MailWatcher;
use crate::platform::Platform;
use crate::progress::Progress;
use crate::results::Setup;
use crate::stats::Recorder;

/// Registrations in flight at once during setup.
const PARALLEL: usize = 16;

/// A vendor ready to sell.
#[derive(Debug, Clone)]
pub struct Vendor {
    pub email: String,
    pub api_key: String,
}

/// Registers `count` vendors and waits (at most `within`) for every key.
#[allow(clippy::too_many_arguments)]
pub async fn vendors(
    http: &reqwest::Client,
    api: &str,
    identities: &Identities,
    count: usize,
    mail: &mut MailWatcher,
    platform: &dyn Platform,
    within: Duration,
    progress: &Progress,
) -> anyhow::Result<(Vec<Vendor>, Setup)> {
    let started = Instant::now();
    let url = format!("{api}/v1/registrations");
    let first = FIRST_INDEX;
    let submitted: Vec<anyhow::Result<(String, SystemTime, Duration)>> = stream::iter(0..count as u64)
        .map(|offset| {
            let (http, url) = (http.clone(), url.clone());
            let form = identities.form(first + offset, offset % 2 == 0);
            let email = identities.email(first + offset);
            async move {
                let at = SystemTime::now();
                let sent = Instant::now();
                let response = http.post(&url).json(&form).send().await.context("while registering a vendor")?;
                let status = response.status();
                let answer: Value = response.json().await.unwrap_or_default();
                if status.as_u16() != 202 {
                    bail!("registration refused ({status}): {answer}");
                }
                Ok((email, at, sent.elapsed()))
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut submit_http = Recorder::new();
    let mut pending = Vec::with_capacity(count);
    for result in submitted {
        let (email, at, latency) = result?;
        submit_http.record(latency);
        pending.push((email, at));
    }
    progress.set_message("waiting for credentials emails");

    let mut to_email = Recorder::new();
    let mut vendors = Vec::with_capacity(count);
    let deadline = Instant::now() + within;
    while !pending.is_empty() {
        mail.poll().context("while reading the mail directory")?;
        pending.retain(|(email, submitted_at)| {
            let key =
                mail.to(email).iter().find_map(|arrived| platform.api_key(&arrived.body).map(|key| (key, arrived.at)));
            match key {
                Some((api_key, arrived)) => {
                    to_email.record(arrived.duration_since(*submitted_at).unwrap_or_default());
                    vendors.push(Vendor { email: email.clone(), api_key });
                    progress.inc(1);
                    false
                }
                None => true,
            }
        });
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {count} vendors got no credentials email within {} s (mail directory {:?})",
                pending.len(),
                within.as_secs(),
                pending.first().map(|(email, _)| email)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let setup = Setup {
        vendors: count,
        approved: vendors.len(),
        submit_http: submit_http.summary(),
        submit_to_email: to_email.summary(),
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    Ok((vendors, setup))
}
