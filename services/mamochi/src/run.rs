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
//!
//! **Several processes of one service** (`--instance N`, default 1) join the
//! same consumer groups, so Kafka spreads the partitions among them and moves
//! a dead one's partitions to the others. What makes instance N distinct on
//! one host ([`as_instance`]): every `*.ops_listen` port moves up by
//! 10 × (N − 1) (9103 → 9113 for accounting instance 2; a port of 0 stays 0,
//! any free port), the Kafka `client.id` prefix becomes
//! `<kafka.client_id>-N` for N ≥ 2 (instance 1 keeps a single process's
//! names), and the services' log lines carry `instance=N` (a span around the
//! run; librdkafka's own threads and the few tasks a service spawns, such as
//! its ops server, log without it). The first line logged names the ports
//! and the client id. Metrics need no label of their own: each instance is
//! its own scrape target, which Prometheus labels `instance`. The gateway's public `gateway.listen` does
//! not move: gateways scale behind a load balancer, each on its own address.
//!
//! Why every consumer service is correct with several instances: a partition
//! has one owner at a time, and what a moved partition delivers again (the
//! records after its last committed offset) is absorbed where the effect
//! lives, in PostgreSQL — accounting and the distributor by their dedupe rows
//! in the effect's own transaction, approval by its decision dedupe, the
//! notifier by claiming a message id under a row lock before sending.
//! Accounting's closer runs in every instance; they compute the same horizon
//! and closing is idempotent ([`mamochi_accounting::horizon`]). Approval's
//! paid lane is kept by whichever instance owns partition 0. Each instance
//! also prunes its services' expired rows; concurrent deletes of expired rows
//! are harmless. `tests/scaling.rs` runs accounting and the distributor
//! 1 → 3 → 2 → 1 processes under flowing sales.

use anyhow::Context;
use futures::future::try_join_all;
use mamochi_common::shutdown::{self, Shutdown};
use mamochi_common::Settings;
use tracing::Instrument;

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
    /// Which process of the service(s) this is, when several run at once:
    /// instance N listens on the ops ports plus 10 × (N − 1) and names its
    /// Kafka clients `<kafka.client_id>-N`; all share the consumer groups.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=MAX_INSTANCE as i64))]
    instance: u16,
}

/// Highest `--instance`: keeps 10 × (N − 1) below the gap between the default
/// ops ports and the ephemeral range.
pub const MAX_INSTANCE: u16 = 100;

/// How far apart the ops ports of consecutive instances are: room for the
/// five services' ports (9100–9104) of each instance.
pub const OPS_PORT_STRIDE: u16 = 10;

pub async fn run(settings: &Settings, args: RunArgs) -> anyhow::Result<()> {
    let settings = as_instance(settings, args.instance)?;
    let span = tracing::info_span!("instance", instance = args.instance);
    async {
        tracing::info!(
            services = ?args.services,
            kafka_client_id = %settings.kafka.client_id,
            gateway_ops = %settings.gateway.ops_listen,
            approval_ops = %settings.approval.ops_listen,
            distributor_ops = %settings.distributor.ops_listen,
            accounting_ops = %settings.accounting.ops_listen,
            notifier_ops = %settings.notifier.ops_listen,
            "starting (an ops port of 0 is any free one)"
        );
        run_services(&settings, &args.services, shutdown::on_signals()).await
    }
    .instrument(span)
    .await
}

/// `settings` as instance `instance` (1-based) of every service uses them:
/// ops ports moved up by [`OPS_PORT_STRIDE`] × (instance − 1) (port 0 left
/// alone), and the Kafka `client.id` prefix suffixed `-instance` from
/// instance 2 on. An address that is not `host:port` is left for
/// [`Settings::validate`] to name.
pub fn as_instance(settings: &Settings, instance: u16) -> anyhow::Result<Settings> {
    anyhow::ensure!((1..=MAX_INSTANCE).contains(&instance), "--instance must be 1 to {MAX_INSTANCE}, not {instance}");
    let mut own = settings.clone();
    if instance == 1 {
        return Ok(own);
    }
    let offset = OPS_PORT_STRIDE * (instance - 1);
    for (key, listen) in [
        ("gateway.ops_listen", &mut own.gateway.ops_listen),
        ("approval.ops_listen", &mut own.approval.ops_listen),
        ("distributor.ops_listen", &mut own.distributor.ops_listen),
        ("accounting.ops_listen", &mut own.accounting.ops_listen),
        ("notifier.ops_listen", &mut own.notifier.ops_listen),
    ] {
        *listen = offset_port(listen, offset).with_context(|| format!("while moving {key} for instance {instance}"))?;
    }
    own.kafka.client_id = format!("{}-{instance}", settings.kafka.client_id);
    Ok(own)
}

/// `listen` with its port plus `offset`; port 0 and addresses that are not
/// `host:port` unchanged.
fn offset_port(listen: &str, offset: u16) -> anyhow::Result<String> {
    let Some((host, port)) = listen.rsplit_once(':') else { return Ok(listen.to_string()) };
    let Ok(port) = port.parse::<u16>() else { return Ok(listen.to_string()) };
    if port == 0 {
        return Ok(listen.to_string());
    }
    let moved = port.checked_add(offset).with_context(|| format!("port {port} + {offset} is past 65535"))?;
    Ok(format!("{host}:{moved}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::load_with_env(None, Some(Default::default())).expect("defaults load")
    }

    #[test]
    fn instance_one_is_a_single_process_unchanged() {
        let base = settings();
        let one = as_instance(&base, 1).expect("instance 1");
        assert_eq!(one.accounting.ops_listen, base.accounting.ops_listen);
        assert_eq!(one.kafka.client_id, base.kafka.client_id);
    }

    #[test]
    fn instance_n_moves_every_ops_port_by_ten_per_instance_and_suffixes_the_client_id() {
        let mut base = settings();
        base.gateway.ops_listen = "127.0.0.1:9100".into();
        base.approval.ops_listen = "127.0.0.1:9101".into();
        base.distributor.ops_listen = "0.0.0.0:9102".into();
        base.accounting.ops_listen = "[::1]:9103".into();
        base.notifier.ops_listen = "127.0.0.1:0".into();
        base.kafka.client_id = "mamochi".into();

        let third = as_instance(&base, 3).expect("instance 3");

        assert_eq!(third.gateway.ops_listen, "127.0.0.1:9120");
        assert_eq!(third.approval.ops_listen, "127.0.0.1:9121");
        assert_eq!(third.distributor.ops_listen, "0.0.0.0:9122");
        assert_eq!(third.accounting.ops_listen, "[::1]:9123");
        assert_eq!(third.notifier.ops_listen, "127.0.0.1:0", "port 0 stays any free port");
        assert_eq!(third.kafka.client_id, "mamochi-3");
        assert_eq!(third.gateway.listen, base.gateway.listen, "the public API address does not move");
    }

    #[test]
    fn an_instance_whose_port_would_pass_65535_is_refused() {
        let mut base = settings();
        base.accounting.ops_listen = "127.0.0.1:65530".into();
        assert!(as_instance(&base, 2).is_err());
        assert!(as_instance(&base, 0).is_err());
        assert!(as_instance(&base, MAX_INSTANCE + 1).is_err());
    }
}
