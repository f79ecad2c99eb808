//! The registry as a running service: its listener, its state loaded from
//! Kafka, and its HTTP server, stopped by one cancellation token.
//!
//! Guarantees: once [`Application::build`] returns, the port is bound and the
//! state holds everything the topic held, so the first request is answered
//! from complete state and `/readyz` says ready. [`Application::run_until_stopped`]
//! lowers readiness, finishes in-flight requests, then leaves the writer
//! election (stepping down if it was the writer) and stops the log reader,
//! then returns. Reads are served from the start; writes wait for the
//! election (see [`crate::forward`]). `/healthz`, `/readyz` and `/metrics` are served on the API's
//! own port, and every request (those three included) is counted by route.
//! With `registry.basic_auth_users` set, every API request needs one of those
//! users' credentials (see [`crate::auth`]).

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use mamochi_common::ops::{self, Ops, Readiness};
use mamochi_common::Settings;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::auth::{self, BasicAuth};
use crate::election::{ElectionNames, Membership};
use crate::forward::{self, Forwarder};
use crate::kafka_store::KafkaStore;
use crate::metrics::{Metrics, StateCounts};
use crate::{negotiation, routes};

/// A registry bound to its port with its state loaded, ready to serve.
pub struct Application {
    port: u16,
    server: Server,
    readiness: Readiness,
    /// The log reader, the election membership and the writer's term.
    tasks: Vec<JoinHandle<()>>,
    /// Stops those tasks when the application stops or is dropped unrun.
    tasks_stop: DropGuard,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // actix's `Server` has no `Debug`.
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Application {
    /// Binds `settings.registry.listen` (port 0 picks a free port), loads the
    /// state from `settings.registry.topic` and prepares the server.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let listen = &settings.registry.listen;
        let listener = TcpListener::bind(listen).with_context(|| format!("while binding {listen}"))?;
        let bound = listener.local_addr().context("while reading the bound address")?;
        let port = bound.port();
        let own_url = settings.registry.advertised_url.clone().unwrap_or_else(|| format!("http://{bound}"));
        if settings.registry.advertised_url.is_none() && bound.ip().is_unspecified() {
            // Other instances could not reach this one at 0.0.0.0: writes
            // forwarded to it would fail until `advertised_url` is set.
            tracing::warn!(url = %own_url, "registry.advertised_url is not set; other instances cannot forward writes here");
        }

        let tasks_stop = CancellationToken::new();
        // Armed now, so an error below also stops the tasks already started.
        let tasks_guard = tasks_stop.clone().drop_guard();
        let (store, reader) = KafkaStore::open(settings, own_url.clone(), tasks_stop.clone()).await?;
        let store = web::Data::new(store);
        let names = ElectionNames::new(settings);
        let membership = Membership::join(settings, &names, tasks_stop.clone())
            .with_context(|| format!("while joining the registry writer election ({})", names.group))?;
        let term = tokio::spawn(store.clone().into_inner().serve_term(membership.holds, tasks_stop.clone()));
        let counted = store.clone();
        let metrics = Metrics::new(move || {
            let writer = counted.is_writer();
            counted.read(|state| StateCounts {
                schemas: state.schema_count(),
                subjects: state.subjects(false).len(),
                writer,
            })
        })
        .context("while registering metrics")?;
        // The state is complete from here on (see `KafkaStore::open`).
        let readiness = Readiness::default();
        readiness.set(true);
        let ops = Ops { service: "registry", readiness: readiness.clone(), registry: metrics.registry.clone() };
        let http_metrics = web::Data::new(metrics.http.clone());
        let auth = web::Data::new(BasicAuth::new(&settings.registry.basic_auth_users)?);
        let forwarder = web::Data::new(Forwarder::new()?);
        if auth.is_on() {
            tracing::info!("HTTP basic auth is on");
        }

        let server = HttpServer::new(move || {
            // The last `wrap` runs first: every request is counted, then
            // authenticated, then forwarded to the writer if it is a write and
            // this instance is not the writer, then negotiated (a 401 comes
            // before a 406, as in Confluent, whose security handler runs
            // before Jersey; the writer negotiates forwarded requests).
            App::new()
                .wrap(from_fn(negotiation::negotiate_content_type))
                .wrap(from_fn(forward::forward_writes))
                .wrap(from_fn(auth::require))
                .wrap(from_fn(mamochi_common::http_metrics::record))
                .app_data(auth.clone())
                .app_data(forwarder.clone())
                .app_data(http_metrics.clone())
                .app_data(store.clone())
                .configure(ops::configure(ops.clone()))
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        })
        .workers(2)
        // Idle keep-alive connections must not hold a shutdown for actix's default 30 s.
        .shutdown_timeout(5)
        // The process's one cancellation token decides when to stop, not actix.
        .disable_signals()
        .listen(listener)
        .context("while starting the HTTP server")?
        .run();
        tracing::info!(port, topic = %settings.registry.topic, url = %own_url, "schema registry ready");
        let tasks = vec![term, membership.task, reader];
        Ok(Self { port, server, readiness, tasks, tasks_stop: tasks_guard })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then drains and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { server, readiness, tasks, tasks_stop, .. } = self;
        let handle = server.handle();
        let mut server = std::pin::pin!(server);
        tokio::select! {
            served = &mut server => served.context("while serving HTTP")?,
            () = shutdown.cancelled() => {
                tracing::info!("schema registry stopping");
                readiness.set(false);
                // The server future processes the stop command, so it must be
                // polled while the stop is pending: request, then await the server.
                let stopping = handle.stop(true);
                let (stopped, ()) = tokio::join!(server, stopping);
                stopped.context("while stopping the HTTP server")?;
            }
        }
        tracing::debug!("HTTP server stopped; leaving the election and stopping the log reader");
        drop(tasks_stop);
        for task in tasks {
            task.await.context("while stopping the registry's background tasks")?;
        }
        Ok(())
    }
}
