//! `mamochi run SERVICE…`: runs one, several or all services in this process
//! until SIGINT or SIGTERM, then shuts every one down cleanly.
//!
//! Each service is also a library with its own `run`, so production can run
//! each in its own process (`mamochi run approval`) and scale them apart; the
//! local stack and the demo run them together (`mamochi run all`).
//!
//! Nothing starts unless the settings pass every rule of
//! [`Settings::validate`] (outside the local profile that includes: no
//! built-in development secret), so `mamochi config check` predicts exactly
//! what `run` accepts.
//!
//! Each process also prunes the expired dedupe and email rows of the services
//! it runs, one pruning task per process (see [`crate::retention`]).

use anyhow::Context;
use futures::future::try_join_all;
use mamochi_common::shutdown::{self, Shutdown};
use mamochi_common::Settings;

/// The services this binary can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// Every service below.
    All,
    Gateway,
    Approval,
    Distributor,
    Accounting,
    Notifier,
}

impl Service {
    const EVERY: [Service; 5] =
        [Service::Gateway, Service::Approval, Service::Distributor, Service::Accounting, Service::Notifier];

    /// The key of this service's Kafka principal in `kafka.principals`.
    pub fn principal(self) -> &'static str {
        match self {
            Service::All => "all",
            Service::Gateway => "gateway",
            Service::Approval => "approval",
            Service::Distributor => "distributor",
            Service::Accounting => "accounting",
            Service::Notifier => "notifier",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Which services to run.
    #[arg(required = true, value_enum)]
    services: Vec<Service>,
}

pub async fn run(settings: &Settings, args: RunArgs) -> anyhow::Result<()> {
    run_services(settings, &args.services, shutdown::on_signals()).await
}

/// Runs `services` until `shutdown` is cancelled or one of them fails.
pub async fn run_services(settings: &Settings, services: &[Service], shutdown: Shutdown) -> anyhow::Result<()> {
    settings.validate()?;
    let mut chosen: Vec<Service> =
        if services.contains(&Service::All) { Service::EVERY.to_vec() } else { services.to_vec() };
    chosen.dedup();
    crate::retention::start(settings, &chosen, shutdown.clone())?;
    let tasks = chosen.into_iter().map(|service| {
        let settings = settings.clone();
        let shutdown = shutdown.clone();
        async move { start(service, &settings, shutdown).await.with_context(|| format!("service {service:?}")) }
    });
    let result = try_join_all(tasks).await;
    // One service failing stops the others: a half-running platform is worse.
    shutdown.cancel();
    result.map(|_| ())
}

async fn start(service: Service, settings: &Settings, shutdown: Shutdown) -> anyhow::Result<()> {
    // Each service speaks to Kafka as its own principal (when the settings
    // name one), even when several share this process: the cluster's ACLs
    // then hold each to its own topics and groups.
    let mut own = settings.clone();
    own.kafka = settings.kafka.for_service(service.principal());
    let settings = &own;
    match service {
        Service::Gateway => mamochi_gateway::run(settings, shutdown).await,
        Service::Approval => mamochi_approval::run(settings, shutdown).await,
        Service::Distributor => mamochi_distributor::run(settings, shutdown).await,
        Service::Accounting => mamochi_accounting::run(settings, shutdown).await,
        Service::Notifier => mamochi_notifier::run(settings, shutdown).await,
        Service::All => Ok(()),
    }
}
