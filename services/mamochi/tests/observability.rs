//! The dashboards and alert rules query only metrics the services really
//! export. Every metric family named by a query in `grafana/dashboards/*.json`
//! or a rule in `deploy/prometheus/alerts.yml` must appear on the `/metrics`
//! of at least one service, after real traffic through every flow:
//! registrations (one paid, one standard) approved and their credentials
//! emailed (the first SMTP attempt refused, so failures and retries are
//! counted), sales until a stock-out and its restock, a client error, a
//! cart's location ping, the cart reported missing and then found (its alarm
//! raised and cleared, each with its emails), and an undecodable record on
//! the sales topic that ends in the dead letters.
//!
//! Families with labels appear only once something increments them, so a
//! name that this traffic cannot produce is reported as missing as well: a
//! panel nobody can ever fill is as wrong as a misspelt one.
//!
//! The services run in this process on the real stack, on ports picked free
//! at run time and consumer groups of their own; the schema registry is the
//! stack's.

mod promql;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mamochi::mailbox;
use mamochi::run::{run_services, Service};
use mamochi_bench::identity::Identities;
use mamochi_common::shutdown::Shutdown;
use mamochi_common::{kafka, Settings};
use mamochi_events::topics;
use rdkafka::producer::FutureRecord;
use serde_json::{json, Value};

/// Where the dashboards, rules and provisioning live.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("dashboard readable");
            let json = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            (format!("grafana/dashboards/{}", path.file_name().unwrap_or_default().to_string_lossy()), json)
        })
        .collect()
}

/// Every queried metric family, with the files that query it.
fn queried_families() -> BTreeMap<String, BTreeSet<String>> {
    let mut queried: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut note = |families: BTreeSet<String>, file: &str| {
        for family in families {
            queried.entry(family).or_default().insert(file.to_string());
        }
    };
    for (file, dashboard) in dashboards() {
        let (exprs, variables) = promql::dashboard_queries(&dashboard);
        assert!(!exprs.is_empty(), "{file} has no queries");
        exprs.iter().for_each(|expr| note(promql::metric_families(expr), &file));
        variables.iter().for_each(|query| note(promql::variable_families(query), &file));
    }
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).expect("alerts.yml readable");
    let exprs = promql::rule_exprs(&rules);
    assert!(!exprs.is_empty(), "alerts.yml has no expressions");
    exprs.iter().for_each(|expr| note(promql::metric_families(expr), "deploy/prometheus/alerts.yml"));
    queried
}

/// The uid of the Prometheus data source Grafana is provisioned with.
fn provisioned_datasource_uid() -> String {
    let path = repo().join("grafana/provisioning/datasources/prometheus.yml");
    let text = std::fs::read_to_string(&path).expect("data source provisioning readable");
    text.lines()
        .find_map(|line| line.trim().strip_prefix("uid:"))
        .map(|uid| uid.trim().trim_matches(['"', '\'']).to_string())
        .unwrap_or_else(|| panic!("{} names no uid", path.display()))
}

#[test]
fn the_dashboards_and_rules_query_the_platform_metrics() {
    // Act
    let queried = queried_families();

    // Assert: a sample of what the dashboards promise, so an extraction that
    // finds nothing cannot pass the scrape test below by accident.
    for family in [
        "mamochi_gateway_http_requests_total",
        "mamochi_kafka_records_produced_total",
        "mamochi_kafka_records_consumed_total",
        "mamochi_kafka_consumer_lag",
        "mamochi_kafka_dead_letters_total",
        "mamochi_approval_wait_seconds",
        "mamochi_accounting_end_to_end_seconds",
        "mamochi_distributor_end_to_end_seconds",
        "mamochi_notifier_end_to_end_seconds",
        "mamochi_notifier_send_failures_total",
    ] {
        assert!(queried.contains_key(family), "nothing queries {family}; queried: {:?}", queried.keys());
    }
    assert!(!queried.contains_key("up"), "Prometheus's own `up` is not a service metric");
    assert!(!queried.keys().any(|family| family.ends_with("_bucket")), "histograms are checked by family");
}

#[test]
fn every_dashboard_uses_the_provisioned_data_source_and_has_titles_and_units() {
    let uid = provisioned_datasource_uid();
    let mut dashboard_uids = BTreeSet::new();
    for (file, dashboard) in dashboards() {
        assert!(dashboard["title"].as_str().is_some_and(|title| !title.is_empty()), "{file}: title");
        let dashboard_uid = dashboard["uid"].as_str().unwrap_or_else(|| panic!("{file}: uid"));
        assert!(dashboard_uids.insert(dashboard_uid.to_string()), "{file}: uid {dashboard_uid} used twice");
        let mut sources = Vec::new();
        collect_datasources(&dashboard, &mut sources);
        assert!(!sources.is_empty(), "{file} names no data source");
        for source in sources {
            // Grafana's own annotations source ("-- Grafana --") is the only other kind.
            if source["type"] == "grafana" {
                continue;
            }
            assert_eq!(source["type"], "prometheus", "{file}: {source}");
            assert_eq!(source["uid"], uid.as_str(), "{file}: data source {source} is not the provisioned one");
        }
        let mut ids = BTreeSet::new();
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{file}: a panel without a title: {panel}");
            assert!(ids.insert(panel["id"].as_i64().unwrap_or(-1)), "{file}: panel id of {title} not unique");
            if panel["type"] == "row" {
                continue;
            }
            assert!(panel["fieldConfig"]["defaults"]["unit"].is_string(), "{file}: {title} has no unit");
            let targets = panel["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
            assert!(!targets.is_empty(), "{file}: {title} has no query");
            let ref_ids: BTreeSet<&str> = targets.iter().filter_map(|target| target["refId"].as_str()).collect();
            assert_eq!(ref_ids.len(), targets.len(), "{file}: {title} needs distinct refIds");
        }
    }
}

fn collect_datasources<'a>(value: &'a Value, sources: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "datasource" && value.is_object() {
                    sources.push(value);
                } else {
                    collect_datasources(value, sources);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_datasources(item, sources)),
        _ => {}
    }
}

/// Every panel, those inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().map(Vec::as_slice).unwrap_or_default() {
        all.push(panel);
        all.extend(panel["panels"].as_array().map(Vec::as_slice).unwrap_or_default());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboards_and_alerts_query_is_exported() {
    // Arrange
    let queried = queried_families();
    let mail_dir: PathBuf =
        std::env::var_os("MAMOCHI_MAIL_DIR").expect("MAMOCHI_MAIL_DIR is set by the test stack").into();
    let mut settings = support::isolated_settings();
    let smtp = FlakySmtp::start(&settings.smtp.host, settings.smtp.port, 1).expect("SMTP proxy");
    settings.smtp.host = "127.0.0.1".to_string();
    settings.smtp.port = smtp.port;
    let gateway = free_port();
    settings.gateway.listen = format!("127.0.0.1:{gateway}");
    settings.gateway.public_url = format!("http://127.0.0.1:{gateway}");
    settings.gateway.ops_listen = format!("127.0.0.1:{}", free_port());
    settings.approval.ops_listen = format!("127.0.0.1:{}", free_port());
    settings.distributor.ops_listen = format!("127.0.0.1:{}", free_port());
    settings.accounting.ops_listen = format!("127.0.0.1:{}", free_port());
    settings.notifier.ops_listen = format!("127.0.0.1:{}", free_port());
    // Three servings: the third sale empties the cart.
    settings.distributor.initial_stock = 3;
    settings.distributor.restock_quantity = 3;
    settings.distributor.low_stock_threshold = 2;
    let shutdown = Shutdown::new();
    let services = {
        let (settings, shutdown) = (settings.clone(), shutdown.clone());
        tokio::spawn(async move { run_services(&settings, &[Service::All], shutdown).await })
    };

    // Act
    let outcome = async {
        drive_every_flow(&settings, &mail_dir).await.context("while driving traffic")?;
        anyhow::ensure!(smtp.refused() >= 1, "the SMTP proxy never refused a connection");
        Ok(scrape_until_exported(&settings, queried.keys(), Duration::from_secs(60)).await)
    }
    .await;
    shutdown.cancel();
    services.await.expect("services task").expect("services stop cleanly");
    let exported = outcome.expect("traffic through every flow");

    // Assert
    let missing: Vec<String> = queried
        .iter()
        .filter(|(family, _)| !exported.values().any(|families| families.contains(*family)))
        .map(|(family, files)| {
            format!("  {family}  (queried in {})", files.iter().cloned().collect::<Vec<_>>().join(", "))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "metric families queried by dashboards or alerts that no service exports:\n{}\n\nexported:\n{}",
        missing.join("\n"),
        exported
            .iter()
            .map(|(service, families)| format!(
                "  {service}: {}",
                families.iter().cloned().collect::<Vec<_>>().join(" ")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Registration (paid and standard) to credentials email, a client error,
/// sales to a stock-out and its restock email, a cart's ping and its
/// missing-then-found incident, and a dead letter.
async fn drive_every_flow(settings: &Settings, mail_dir: &Path) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let api = settings.gateway.public_url.clone();
    mamochi_bench::platform::wait_ready(&http, settings, Duration::from_secs(90)).await?;

    // Registrations, one per lane, and one form the gateway refuses (4xx).
    let identities = Identities::random();
    let mut forms = Vec::new();
    for (index, paid) in [(0, true), (1, false)] {
        let response = http.post(format!("{api}/v1/registrations")).json(&identities.form(index, paid)).send().await?;
        let status = response.status();
        let answer: Value = response.json().await?;
        anyhow::ensure!(status.as_u16() == 202, "registration refused ({status}): {answer}");
        forms.push((identities.email(index), answer));
    }
    let refused = http.post(format!("{api}/v1/registrations")).json(&json!({"full_name": ""})).send().await?;
    anyhow::ensure!(refused.status().is_client_error(), "an empty form answered {}", refused.status());

    let mut keys = Vec::new();
    for (email, answer) in &forms {
        let id = answer["registration_id"].as_str().context("registration_id")?;
        let token = answer["tracking_token"].as_str().context("tracking_token")?;
        wait_until(Duration::from_secs(60), &format!("registration {id} approved"), || async {
            let status: Value = http
                .get(format!("{api}/v1/registrations/{id}"))
                .header("X-Tracking-Token", token)
                .send()
                .await?
                .json()
                .await?;
            match status["status"].as_str() {
                Some("approved") => Ok(true),
                Some(decided @ ("rejected" | "manual_review")) => bail!("registration {id} ended {decided}: {status}"),
                _ => Ok(false),
            }
        })
        .await?;
        let mail = wait_for_mail(mail_dir, email, |mail| mailbox::api_key(&mail.body).is_some()).await?;
        keys.push(mailbox::api_key(&mail.body).context("API key in the credentials email")?);
    }

    // Sales until the cart runs out (third sale), the restock, one more sale.
    let key = &keys[0];
    let sell = |number: u32| {
        http.post(format!("{api}/v1/sales"))
            .bearer_auth(key)
            .header("Idempotency-Key", format!("observability-{number}"))
            .json(&json!({"quantity": 1, "unit_price_clp": 1_500, "payment_method": "cash"}))
            .send()
    };
    for number in 1..=3 {
        let status = sell(number).await?.status();
        anyhow::ensure!(status.as_u16() == 201, "sale {number} answered {status}");
    }
    wait_for_mail(mail_dir, &forms[0].0, |mail| mail.subject.contains("reabastecido")).await?;
    // The gateway learns of the restock from the stock topic; until then it
    // refuses with 409, which the errors dashboard counts as well.
    wait_until(Duration::from_secs(30), "a sale after the restock", || async {
        let status = sell(4).await?.status();
        match status.as_u16() {
            201 => Ok(true),
            409 => Ok(false),
            _ => bail!("sale after the restock answered {status}"),
        }
    })
    .await?;

    // A cart pings, is reported missing (the alarm is raised and emailed),
    // then found (cleared and emailed): the tracking's counters and its
    // latency histogram have their first samples.
    let ping = http
        .post(format!("{api}/v1/carts/me/locations"))
        .bearer_auth(key)
        .json(&json!({"latitude": -33.4378, "longitude": -70.6505, "accuracy_m": 10,
                      "occurred_at": chrono::Utc::now().to_rfc3339()}))
        .send()
        .await?
        .status();
    anyhow::ensure!(ping.as_u16() == 202, "location ping answered {ping}");
    for (kind, subject) in [("missing", "MAMOCHI: alarma de carro"), ("found", "MAMOCHI: carro ubicado")] {
        let report = http
            .post(format!("{api}/v1/carts/me/reports"))
            .bearer_auth(key)
            .json(&json!({"kind": kind}))
            .send()
            .await?
            .status();
        anyhow::ensure!(report.as_u16() == 202, "{kind} report answered {report}");
        wait_for_mail(mail_dir, &forms[0].0, |mail| mail.subject.starts_with(subject)).await?;
    }

    // An undecodable record straight to the sales topic: parked, not handled.
    let producer = kafka::producer(&settings.kafka, "observability-test")?;
    producer
        .send(
            FutureRecord::to(topics::SALES.name()).key("not-a-vendor-key").payload("not an Avro record"),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(error, _)| error)
        .context("while producing the undecodable record")?;
    Ok(())
}

/// Scrapes every service until all of `wanted` is exported or `within`
/// passes (lag gauges follow librdkafka's statistics, every two seconds, and
/// the dead letter arrives after the scrape that follows the traffic).
async fn scrape_until_exported<'a>(
    settings: &Settings,
    wanted: impl Iterator<Item = &'a String> + Clone,
    within: Duration,
) -> BTreeMap<&'static str, BTreeSet<String>> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("HTTP client");
    let endpoints = [
        ("gateway", format!("http://{}/metrics", settings.gateway.ops_listen)),
        ("approval", format!("http://{}/metrics", settings.approval.ops_listen)),
        ("distributor", format!("http://{}/metrics", settings.distributor.ops_listen)),
        ("accounting", format!("http://{}/metrics", settings.accounting.ops_listen)),
        ("notifier", format!("http://{}/metrics", settings.notifier.ops_listen)),
        ("registry", format!("{}/metrics", settings.registry.url.trim_end_matches('/'))),
    ];
    let deadline = Instant::now() + within;
    loop {
        let mut exported = BTreeMap::new();
        for (service, url) in &endpoints {
            let text = match http.get(url).send().await {
                Ok(response) if response.status().is_success() => response.text().await.unwrap_or_default(),
                _ => String::new(),
            };
            exported.insert(*service, promql::exported_families(&text));
        }
        let all_there =
            wanted.clone().all(|family| exported.values().any(|families: &BTreeSet<String>| families.contains(family)));
        if all_there || Instant::now() > deadline {
            return exported;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + within;
    while !check().await? {
        if Instant::now() > deadline {
            bail!("not within {} s: {what}", within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

async fn wait_for_mail(dir: &Path, to: &str, wanted: impl Fn(&mailbox::Mail) -> bool) -> anyhow::Result<mailbox::Mail> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(mail) = mailbox::for_recipient(dir, to)?.into_iter().find(|mail| wanted(mail)) {
            return Ok(mail);
        }
        if Instant::now() > deadline {
            bail!("no such email to {to} within a minute (mail directory {})", dir.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A port nobody listens on now (the service binds it a moment later),
/// outside the range outgoing connections take theirs from.
fn free_port() -> u16 {
    mamochi_common::ports::unused_loopback_port().expect("a free loopback port")
}

/// An SMTP relay in front of the stack's sink that turns the first
/// `refusals` connections away with `421` (try again later), as a relay
/// under maintenance does, and passes every later one through untouched.
#[derive(Debug)]
struct FlakySmtp {
    port: u16,
    refused: Arc<AtomicUsize>,
}

impl FlakySmtp {
    fn start(upstream_host: &str, upstream_port: u16, refusals: usize) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let upstream = format!("{upstream_host}:{upstream_port}");
        let refused = Arc::new(AtomicUsize::new(0));
        let counter = refused.clone();
        // Lives as long as the test process; nothing to join.
        std::thread::spawn(move || {
            for client in listener.incoming().filter_map(Result::ok) {
                if counter.load(Ordering::SeqCst) < refusals {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let mut client = client;
                    let _ = client.write_all(b"421 4.3.2 relay busy, try again later\r\n");
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                pipe(client, server);
            }
        });
        Ok(Self { port, refused })
    }

    fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// Copies bytes both ways until either side closes.
fn pipe(client: TcpStream, server: TcpStream) {
    let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else { return };
    std::thread::spawn(move || copy_then_close(client_reader, server));
    std::thread::spawn(move || copy_then_close(server_reader, client));
}

fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0_u8; 8192];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                if to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}
