//! Starts every platform service in this process, isolated from anything
//! else on the stack, and waits until they answer.
//!
//! Isolation: consumer groups get a prefix of their own and start at the
//! current end of their topics (as the integration tests do), so backlogs
//! left by earlier runs or tests are not ours to process and do not inflate
//! lag; the gateway and the ops endpoints listen on ports picked free at run
//! time, so a developer's `make run` can stay up beside the bench.
//!
//! Stock: every new cart starts with [`BENCH_STOCK`] servings, a realistic
//! cart, and a restock brings it back to that many, so under load carts run
//! out and the whole depletion → restock → email path runs alongside the
//! sales (at 1,000 sales/s over 50 vendors a cart empties every five
//! seconds). Sales are quantity 1; a sale the gateway refuses because the
//! cart is empty until its restock lands is a 409, counted as refused.
//! These are set here, on the bench's own settings, not in the defaults.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::future::BoxFuture;
use mamochi_common::kafka;
use mamochi_common::shutdown::Shutdown;
use mamochi_common::Settings;
use mamochi_events::topics;

/// The platform the bench drives, given by the `mamochi` binary (which owns
/// the service list and the credentials-email format).
pub trait Platform: Send + Sync + 'static {
    /// Runs every platform service with `settings` until `shutdown` is cancelled.
    fn run(&self, settings: Settings, shutdown: Shutdown) -> BoxFuture<'static, anyhow::Result<()>>;
    /// The API key in a credentials email's body, if there is one.
    fn api_key(&self, body: &str) -> Option<String>;
}

/// Consumer groups of the platform, with the topic each starts on.
pub const GROUPS: [(&str, &str); 7] = [
    (mamochi_approval::FORMS_GROUP, topics::REGISTRATIONS.info.name),
    (mamochi_approval::REVIEWS_GROUP, topics::REGISTRATION_REVIEWS.info.name),
    (mamochi_distributor::service::SALES_GROUP, topics::SALES.info.name),
    (mamochi_distributor::service::STOCK_GROUP, topics::STOCK.info.name),
    (mamochi_distributor::service::TRACKING_GROUP, topics::CART_TRACKING.info.name),
    (mamochi_accounting::GROUP, topics::SALES.info.name),
    (mamochi_notifier::service::GROUP, topics::EMAIL_REQUESTS.info.name),
];

/// Servings on a bench cart, at start and after each restock.
pub const BENCH_STOCK: i32 = 100;

/// Where the in-process platform answers.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Base URL of the gateway (`http://127.0.0.1:PORT`).
    pub api: String,
    /// `/metrics` of the gateway, on its operations port.
    pub gateway_metrics: String,
    /// `/metrics` of the accounting service.
    pub accounting_metrics: String,
}

/// Settings for the bench's own copy of the platform.
pub fn isolated_settings(base: &Settings, run_tag: &str) -> anyhow::Result<(Settings, Endpoints)> {
    let mut settings = base.clone();
    settings.kafka.group_prefix = format!("bench-{run_tag}-");
    for (group, topic) in GROUPS {
        kafka::start_group_at_end(&settings.kafka, &settings.kafka.group(group), topic)
            .with_context(|| format!("while starting group {group} at the end of {topic}"))?;
    }
    let gateway = free_port()?;
    settings.gateway.listen = format!("127.0.0.1:{gateway}");
    settings.gateway.public_url = format!("http://127.0.0.1:{gateway}");
    settings.gateway.ops_listen = format!("127.0.0.1:{}", free_port()?);
    settings.approval.ops_listen = format!("127.0.0.1:{}", free_port()?);
    settings.distributor.ops_listen = format!("127.0.0.1:{}", free_port()?);
    let accounting = free_port()?;
    settings.accounting.ops_listen = format!("127.0.0.1:{accounting}");
    settings.notifier.ops_listen = format!("127.0.0.1:{}", free_port()?);
    settings.distributor.initial_stock = BENCH_STOCK;
    settings.distributor.restock_quantity = BENCH_STOCK;
    // One client sending thousands of requests a second from a few keys and
    // hundreds of forms from one address, which the abuse limits exist to
    // refuse: lifted, not turned off, so the limiter stays on the measured path.
    settings.gateway.rate_limits.lift();
    let endpoints = Endpoints {
        api: settings.gateway.public_url.clone(),
        gateway_metrics: format!("http://{}/metrics", settings.gateway.ops_listen),
        accounting_metrics: format!("http://127.0.0.1:{accounting}/metrics"),
    };
    Ok((settings, endpoints))
}

/// A port nobody listens on now, outside the range outgoing connections
/// take theirs from; should another listener take it before the service
/// binds it, the service fails to start loudly rather than measure wrongly.
fn free_port() -> anyhow::Result<u16> {
    mamochi_common::ports::unused_loopback_port().context("while looking for a free port")
}

/// Waits until the gateway and every ops endpoint answer `/readyz`.
pub async fn wait_ready(client: &reqwest::Client, settings: &Settings, within: Duration) -> anyhow::Result<()> {
    let urls = [
        format!("http://{}/readyz", settings.gateway.ops_listen),
        format!("http://{}/readyz", settings.approval.ops_listen),
        format!("http://{}/readyz", settings.distributor.ops_listen),
        format!("http://{}/readyz", settings.accounting.ops_listen),
        format!("http://{}/readyz", settings.notifier.ops_listen),
    ];
    let deadline = Instant::now() + within;
    for url in &urls {
        loop {
            let ready = client.get(url).send().await.is_ok_and(|response| response.status().is_success());
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!("{url} did not become ready within {} s", within.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
