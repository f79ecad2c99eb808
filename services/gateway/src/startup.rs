//! Building and running the HTTP server: state shared by every worker (one
//! producer, one codec, one pool, one clock, the in-memory views, the
//! idempotency writer and the admission limit), the routes, the error
//! envelope, metrics, and the operational endpoints (`/healthz`, `/readyz`,
//! `/metrics`) on a listener of their own (`gateway.ops_listen`): the public
//! port answers them 404.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use mamochi_common::clock::Clock;
use mamochi_common::db::PgPool;
use mamochi_common::http_metrics::{self, HttpMetrics};
use mamochi_common::kafka_metrics::KafkaMetrics;
use mamochi_common::ops::{self, Ops, Readiness};
use mamochi_common::seal::Sealer;
use mamochi_common::shutdown::Shutdown;
use mamochi_common::{db, kafka, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::publish::Publisher;
use mamochi_events::topics;
use prometheus::Registry;
use rdkafka::producer::{FutureProducer, Producer};

use crate::admission::Admission;
use crate::domain::rotation::RotationSecret;
use crate::errors;
use crate::limits::{self, Limits};
use crate::routes::carts::LocationMaxAge;
use crate::routes::me::KeyRevocationBound;
use crate::routes::{self, PublicUrl};
use crate::store::sale_requests::ClaimBook;
use crate::views::{CartView, KeyDirectory, StaffDirectory, StockView};

/// How often readiness is re-checked once the gateway is up.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How long one Kafka probe may take.
const KAFKA_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The gateway, bound and ready to run.
pub struct Application {
    server: Server,
    port: u16,
    /// The operations listener and its bound port.
    ops_server: Server,
    ops_port: u16,
    producer: FutureProducer,
    pool: PgPool,
    readiness: Readiness,
    kafka: mamochi_common::config::KafkaSettings,
    stock: Arc<StockView>,
    carts: Arc<CartView>,
    codec: Arc<EventCodec>,
    /// Stops the background tasks (stock and cart views, pruning) with the server.
    tasks: Shutdown,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Application {
    /// Creates the clients and binds `settings.gateway.listen` (port 0 picks one).
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        settings.refuse_builtin_secrets()?;
        let clock = Clock::from_settings(&settings.time).context("while reading time settings")?;
        let pool = db::pool(&settings.database).context("while creating the database pool")?;
        let producer = kafka::producer(&settings.kafka, "gateway").context("while creating the producer")?;
        // One Prometheus registry for the gateway's own and its Kafka clients' metrics.
        let metrics_registry = Registry::new();
        let http_metrics = HttpMetrics::register(&metrics_registry, "gateway").context("while registering metrics")?;
        let kafka_metrics = KafkaMetrics::new(&metrics_registry).context("while registering Kafka metrics")?;
        let codec = Arc::new(EventCodec::new(&settings.registry.url).measured(&kafka_metrics));
        let gateway = &settings.gateway;
        let wait = Duration::from_millis(gateway.db_wait_ms);
        let publisher = Publisher::new(producer.clone(), codec.clone(), kafka_metrics).with_queue_timeout(wait);
        let tasks = Shutdown::new();
        let keys = KeyDirectory::new(pool.clone(), Duration::from_millis(gateway.key_cache_ttl_ms), wait);
        let stock = Arc::new(StockView::new(settings.distributor.initial_stock));
        let carts = Arc::new(CartView::new());
        // Each in-flight request has at most one claim operation queued, and
        // settlements need no reply: twice the in-flight limit is never full
        // unless the database has stopped answering.
        let retention = Duration::from_secs(u64::from(gateway.idempotency_retention_hours) * 3_600);
        let claims = ClaimBook::start(pool.clone(), gateway.max_in_flight * 2, wait, retention, tasks.clone());
        let admission = web::Data::new(Admission::new(gateway.max_in_flight));
        let limits = Arc::new(Limits::new(&gateway.rate_limits).context("while reading the rate limits")?);
        tokio::spawn(limits.clone().prune_until(tasks.clone()));
        let limits = web::Data::from(limits);
        let readiness = Readiness::default();
        let ops = Ops { service: "gateway", readiness: readiness.clone(), registry: metrics_registry.clone() };
        let limit = settings.gateway.max_body_bytes;

        let pool_data = web::Data::new(pool.clone());
        let publisher = web::Data::new(publisher);
        let clock = web::Data::new(clock);
        let public_url = web::Data::new(PublicUrl(settings.gateway.public_url.clone()));
        // Staff tokens are refused within the same bound as vendor keys.
        let key_ttl = Duration::from_millis(gateway.key_cache_ttl_ms);
        let staff = web::Data::new(StaffDirectory::new(pool.clone(), key_ttl, wait));
        let key_bound = web::Data::new(KeyRevocationBound(key_ttl));
        let sealer = web::Data::new(
            Sealer::from_hex(&settings.secrets.email_seal_key).context("while reading secrets.email_seal_key")?,
        );
        let rotation = web::Data::new(RotationSecret::from_seal_key(&settings.secrets.email_seal_key));
        let http_metrics = web::Data::new(http_metrics);
        let keys = web::Data::new(keys);
        let claims = web::Data::new(claims);
        let stock_data = web::Data::from(stock.clone());
        let carts_data = web::Data::from(carts.clone());
        let max_age = i64::try_from(gateway.location_max_age_secs).unwrap_or(i64::MAX);
        let location_max_age =
            web::Data::new(LocationMaxAge(chrono::Duration::try_seconds(max_age).unwrap_or(chrono::Duration::MAX)));

        let listener = TcpListener::bind(&settings.gateway.listen)
            .with_context(|| format!("while binding {}", settings.gateway.listen))?;
        let port = listener.local_addr().context("while reading the bound address")?.port();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(limits::enforce))
                .wrap(errors::enveloped_errors())
                .wrap(from_fn(http_metrics::record))
                .app_data(errors::json_config(limit))
                .app_data(errors::payload_config(limit))
                .app_data(errors::query_config())
                .app_data(pool_data.clone())
                .app_data(publisher.clone())
                .app_data(clock.clone())
                .app_data(public_url.clone())
                .app_data(staff.clone())
                .app_data(key_bound.clone())
                .app_data(sealer.clone())
                .app_data(rotation.clone())
                .app_data(http_metrics.clone())
                .app_data(keys.clone())
                .app_data(claims.clone())
                .app_data(stock_data.clone())
                .app_data(carts_data.clone())
                .app_data(location_max_age.clone())
                .app_data(limits.clone())
                .app_data(admission.clone())
                .configure(routes::configure)
                .default_service(web::to(errors::route_not_found))
        })
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)
        .context("while starting the HTTP server")?
        .run();
        let (ops_server, ops_port) = ops::serve(&settings.gateway.ops_listen, ops)
            .with_context(|| format!("while binding {}", settings.gateway.ops_listen))?;
        Ok(Self {
            server,
            port,
            ops_server,
            ops_port,
            producer,
            pool,
            readiness,
            kafka: settings.kafka.clone(),
            stock,
            carts,
            codec,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/healthz`, `/readyz` and `/metrics`.
    pub fn ops_port(&self) -> u16 {
        self.ops_port
    }

    /// Serves until `shutdown` is cancelled, then finishes in-flight requests
    /// and flushes the producer.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let Self { server, port, ops_server, ops_port, producer, pool, readiness, kafka, stock, carts, codec, tasks } =
            self;
        let handle = server.handle();
        let ops_handle = ops_server.handle();
        let ops_server = tokio::spawn(ops_server);
        let follower = tokio::spawn(stock.clone().follow(kafka.clone(), codec.clone(), tasks.clone()));
        let cart_follower = tokio::spawn(carts.clone().follow(kafka.clone(), codec, tasks.clone()));
        let views = Views { stock, carts };
        let probe =
            tokio::spawn(probe_readiness(producer.clone(), pool, views, readiness.clone(), kafka, shutdown.clone()));
        tracing::info!(port, ops_port, "gateway listening");
        let server = tokio::spawn(server);
        shutdown.cancelled().await;
        readiness.set(false);
        handle.stop(true).await;
        server.await.context("while joining the HTTP server")?.context("HTTP server")?;
        ops_handle.stop(true).await;
        ops_server.await.context("while joining the operations server")?.context("operations server")?;
        probe.abort();
        tasks.cancel();
        let _ = follower.await;
        let _ = cart_follower.await;
        // Requests answered 2xx were acknowledged already; this only drains
        // what an interrupted request left queued.
        tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(10)))
            .await
            .context("while flushing the producer")?
            .context("producer flush")?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// The views readiness waits for.
struct Views {
    stock: Arc<StockView>,
    carts: Arc<CartView>,
}

/// Raises readiness once Kafka (topics ensured) and PostgreSQL answered, the
/// stock view has caught up and the cart view follows its topic, then keeps checking Kafka and PostgreSQL
/// and lowers it while either is unreachable.
async fn probe_readiness(
    producer: FutureProducer,
    pool: PgPool,
    views: Views,
    readiness: Readiness,
    settings: mamochi_common::config::KafkaSettings,
    shutdown: Shutdown,
) {
    let mut topics_ensured = false;
    loop {
        if !topics_ensured {
            topics_ensured = match kafka::admin(&settings) {
                Ok(admin) => match kafka::ensure_topics(&admin, &topics::all_specs()).await {
                    Ok(()) => true,
                    Err(error) => {
                        tracing::warn!(%error, "Kafka topics not ensured yet");
                        false
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "no Kafka admin client");
                    false
                }
            };
        }
        let client = producer.clone();
        let kafka_ok = tokio::task::spawn_blocking(move || client.client().fetch_metadata(None, KAFKA_PROBE_TIMEOUT))
            .await
            .is_ok_and(|result| result.is_ok());
        let database = crate::store::ping(&pool).await;
        if let Err(error) = &database {
            tracing::warn!(%error, "PostgreSQL does not answer");
        }
        let ready =
            topics_ensured && kafka_ok && database.is_ok() && views.stock.caught_up() && views.carts.following();
        if ready != readiness.is_ready() {
            tracing::info!(ready, "gateway readiness changed");
        }
        readiness.set(ready);
        let wait = if ready { PROBE_INTERVAL } else { Duration::from_millis(100) };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Runs the gateway until `shutdown` is cancelled.
pub async fn run(settings: &Settings, shutdown: Shutdown) -> anyhow::Result<()> {
    let application = Application::build(settings).await.context("while building the gateway")?;
    application.run_until_stopped(shutdown).await
}
