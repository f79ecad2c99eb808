//! The secure stack (`deploy/local/stack --secure up`, settings from
//! `stack --secure env`): Kafka over SASL_SSL with one SCRAM principal per
//! service and ACLs, PostgreSQL over TLS only. The guild's whole journey runs
//! on it with every service speaking as its own principal; a Kafka client
//! without valid credentials gets nothing, a service principal cannot write a
//! topic it does not own, and PostgreSQL refuses a connection without TLS.
//!
//! Built only with `--features secure-tests` (deploy/local/secure-tests runs
//! it): on the plain stack there is nothing to refuse.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::sql_types::Bool;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi::demo;
use mamochi_common::config::{KafkaSecurity, KafkaSettings};
use mamochi_common::{db, kafka, Settings};
use mamochi_events::topics::{DEAD_LETTERS, SALES};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use rdkafka::ClientContext;

const SERVICES: [&str; 5] = ["gateway", "approval", "distributor", "accounting", "notifier"];

/// The secure stack's settings; fails loudly when the plain stack's are loaded.
fn secure_settings() -> Settings {
    let settings = support::settings();
    assert_eq!(
        settings.kafka.security_protocol,
        KafkaSecurity::SaslSsl,
        "load the secure stack's settings: eval \"$(deploy/local/stack --secure env)\""
    );
    for service in SERVICES {
        assert!(settings.kafka.principals.contains_key(service), "kafka.principals names {service}");
    }
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_journey_works_with_each_service_as_its_own_principal() {
    // Arrange: the platform's own consumer groups (the ACLs grant each
    // service its groups by name, so no per-test prefix here).
    let settings = secure_settings();
    let args = support::short_journey();

    // Act
    let reports = demo::run(&settings, args).await.expect("the journey completes on the secure stack");

    // Assert
    support::assert_journey(&reports);
}

/// Keeps every error librdkafka reports outside a call (failed logins).
#[derive(Debug, Default, Clone)]
struct Errors(Arc<Mutex<Vec<KafkaError>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("client error (expected here): {error}: {reason}");
        self.push(error);
    }
}

impl ConsumerContext for Errors {}

impl Errors {
    fn push(&self, error: KafkaError) {
        if let Ok(mut errors) = self.0.lock() {
            errors.push(error);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.lock().map(|errors| errors.is_empty()).unwrap_or(true)
    }

    fn saw(&self, code: RDKafkaErrorCode) -> bool {
        self.0.lock().map(|errors| errors.iter().any(|error| error.rdkafka_error_code() == Some(code))).unwrap_or(false)
    }
}

fn metadata_with(kafka: &KafkaSettings) -> (Result<usize, KafkaError>, Errors) {
    let errors = Errors::default();
    let consumer: BaseConsumer<Errors> =
        kafka::client_config(kafka, "secure-test").create_with_context(errors.clone()).expect("client builds");
    let result = consumer.fetch_metadata(None, Duration::from_secs(10)).map(|metadata| metadata.topics().len());
    if result.is_err() {
        // librdkafka hands its own errors (a refused login) to the context
        // only while the client is polled; poll until one arrives or 10 s pass.
        let deadline = Instant::now() + Duration::from_secs(10);
        while errors.is_empty() && Instant::now() < deadline {
            if let Some(Err(error)) = consumer.poll(Duration::from_millis(200)) {
                errors.push(error);
            }
        }
    }
    (result, errors)
}

#[test]
fn a_kafka_client_without_valid_credentials_gets_nothing() {
    // Arrange
    let settings = secure_settings();
    let mut plaintext = settings.kafka.clone();
    plaintext.security_protocol = KafkaSecurity::Plaintext;
    let mut wrong_password = settings.kafka.for_service("notifier");
    wrong_password.sasl_password = settings.kafka.principals["gateway"].password.clone().into();

    // Act
    let (with_credentials, _) = metadata_with(&settings.kafka.for_service("notifier"));
    let (without_tls_or_sasl, _) = metadata_with(&plaintext);
    let (with_a_wrong_password, errors) = metadata_with(&wrong_password);

    // Assert
    assert!(with_credentials.is_ok(), "the service's own credentials work: {with_credentials:?}");
    assert!(without_tls_or_sasl.is_err(), "a plaintext client is answered: {without_tls_or_sasl:?}");
    assert!(with_a_wrong_password.is_err(), "a wrong password is answered: {with_a_wrong_password:?}");
    assert!(errors.saw(RDKafkaErrorCode::Authentication), "the broker refused the login as such: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_principal_cannot_write_a_topic_it_does_not_own() {
    // Arrange: the notifier owns only the dead-letter topic; sales are the
    // gateway's to write.
    let settings = secure_settings();
    let mut notifier = settings.kafka.for_service("notifier");
    notifier.message_timeout_ms = 20_000;
    let producer = kafka::producer(&notifier, "secure-test").expect("producer");
    let key = uuid::Uuid::new_v4().to_string();

    // Act
    let foreign = producer
        .send(FutureRecord::<str, [u8]>::to(SALES.name()).key(&key).payload(b"not a sale"), Duration::from_secs(20))
        .await;

    // Assert
    match foreign {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert_eq!(code, RDKafkaErrorCode::TopicAuthorizationFailed, "refused by the ACLs")
        }
        other => panic!("the notifier wrote to {}: {other:?}", SALES.name()),
    }
    // The same producer may still write where the notifier does: its
    // credentials were fine, only the topic was not its own.
    let started = Instant::now();
    let own = producer
        .send(
            FutureRecord::<str, [u8]>::to(DEAD_LETTERS.name).key(&key).payload(b"secure-stack test"),
            Duration::from_secs(20),
        )
        .await;
    assert!(own.is_ok(), "the notifier writes its own topic: {own:?} after {:?}", started.elapsed());
}

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_speaks_only_tls() {
    // Arrange
    let settings = secure_settings();
    let url = settings.database.url().to_string();
    let (base, query) = url.split_once('?').expect("the secure URL carries sslmode");
    assert!(query.contains("sslmode=verify-full"), "clients verify the server: {query}");
    let plain = format!("{base}?sslmode=disable");

    // Act
    let refused = db::connect(plain).await;
    let mut connection = db::connect(url.clone()).await.expect("a verify-full connection opens");
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut connection)
        .await
        .expect("pg_stat_ssl answers");

    // Assert
    let error = refused.err().expect("a connection without TLS is refused").to_string();
    assert!(error.contains("no encryption"), "refused by pg_hba's hostssl rule: {error}");
    assert!(row.ssl, "the platform's own connection is encrypted");
}
