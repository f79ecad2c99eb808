//! Layered settings: compiled-in defaults for the local stack, then an optional
//! TOML file, then `MAMOCHI__SECTION__KEY` environment variables.
//!
//! The defaults point at `deploy/local` (Kafka on 9092, PostgreSQL on 55432,
//! the SMTP sink on 1025) so that a developer needs no file at all. The file is
//! named explicitly (`--config` or `MAMOCHI_CONFIG`), never discovered from the
//! current directory, which would break inside a workspace. Secrets are
//! `SecretString` so they never reach a log line through `Debug`.
//!
//! The defaults include development secrets (the admin token, the email seal
//! key, the database password). They are accepted only under the explicit
//! `profile = "local"` that the local stack's environment sets; the default
//! profile is `production`, where services refuse to start while any of them
//! is still in use (see [`validate`], which also holds every other rule
//! `mamochi config check` and `mamochi run` apply).

pub mod validate;

pub use validate::{FieldError, InvalidSettings};

use std::collections::HashMap;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Every setting a MAMOCHI process can read.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Which deployment this is; only `local` accepts the built-in secrets.
    pub profile: Profile,
    pub kafka: KafkaSettings,
    pub database: DatabaseSettings,
    pub smtp: SmtpSettings,
    pub registry: RegistrySettings,
    pub time: crate::clock::TimeSettings,
    pub gateway: GatewaySettings,
    pub approval: ServiceSettings,
    pub distributor: DistributorSettings,
    /// The distributor's cart tracking: when a cart counts as silent or out
    /// of its area, and who hears about it.
    pub tracking: TrackingSettings,
    pub accounting: AccountingSettings,
    pub notifier: NotifierSettings,
    /// How often expired dedupe and email rows are pruned (see `retention`).
    pub retention: crate::retention::RetentionSettings,
    pub secrets: SecretSettings,
    pub log: LogSettings,
}

/// The kind of deployment, which decides whether built-in secrets are allowed.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The loopback-only local stack (`deploy/local/stack env` sets it).
    Local,
    /// Anything else: every secret must be set, none may be a built-in one.
    Production,
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Profile::Local => "local",
            Profile::Production => "production",
        })
    }
}

/// The public REST API.
#[derive(Debug, Clone, Deserialize)]
pub struct GatewaySettings {
    /// Address of the public API.
    pub listen: String,
    /// Address of the operations endpoints (/healthz, /readyz, /metrics),
    /// kept off the public port so only operators reach them.
    pub ops_listen: String,
    /// Base URL clients reach the API at, used in links such as `status_url`.
    pub public_url: String,
    /// Largest JSON body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Write requests (sales, depletions) handled at once; one more is
    /// answered 503 with `Retry-After` at once instead of queueing. Size it
    /// by Little's law: the rate the gateway sustains times the latency you
    /// accept (about 2,000 sales/s × 100 ms on the two-core development
    /// machine, so 256); a larger value only lets requests wait longer.
    pub max_in_flight: usize,
    /// How long the gateway trusts what it read about an API key: a key
    /// revoked in the database stops working within this bound.
    pub key_cache_ttl_ms: u64,
    /// Longest wait for a key look-up, an idempotency claim or room in the
    /// producer's queue before the request is answered 503.
    pub db_wait_ms: u64,
    /// How long an Idempotency-Key's answer is kept; older claims are pruned.
    pub idempotency_retention_hours: u32,
    /// Oldest location ping accepted (`POST /v1/carts/me/locations`), in
    /// seconds before now: an older `occurred_at` is refused 422.
    pub location_max_age_secs: u64,
    /// Abuse limits per client address, vendor and staff token.
    pub rate_limits: RateLimitSettings,
}

/// The gateway's abuse limits. Each is a token bucket (GCRA): `burst`
/// requests at once, then `requests` every `per_secs` seconds; a request
/// over it is answered 429 with `Retry-After`. `requests = 0` turns a limit
/// off. Counts live in each gateway process (N instances allow N times the
/// rate); they exist to stop floods from one client, not to meter usage.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RateLimitSettings {
    /// Comma-separated IP addresses of reverse proxies in front of the
    /// gateway. Only for a request from one of them is the client address
    /// read from `X-Forwarded-For`; empty: the peer address is the client.
    pub trusted_proxies: String,
    /// `POST /v1/registrations`, per client address.
    pub registrations_per_ip: RateLimit,
    /// `GET /v1/registrations/{id}`, per client address.
    pub status_reads_per_ip: RateLimit,
    /// `POST /v1/sales`, per vendor.
    pub sales_per_key: RateLimit,
    /// `POST /v1/stock/depletions`, per vendor (one cart each): each one
    /// restocks the cart and sends an email.
    pub depletions_per_cart: RateLimit,
    /// `POST /v1/carts/me/locations`, per vendor (one cart each).
    pub locations_per_cart: RateLimit,
    /// `POST /v1/carts/me/reports`, per vendor (one cart each): each one
    /// travels on the report lane, ahead of every location ping.
    pub cart_reports_per_cart: RateLimit,
    /// Every other request made with a vendor key (`/v1/me…`, `/v1/vendors/…`), per vendor.
    pub vendor_requests_per_key: RateLimit,
    /// `/v1/admin/…`, per staff token.
    pub admin_per_token: RateLimit,
}

impl RateLimitSettings {
    /// Every limit raised to a million requests a second: for a load
    /// generator or a test that is one client doing the work of thousands.
    /// The limiter stays on the request path, so what is measured includes it.
    pub fn lift(&mut self) {
        let lifted = RateLimit { requests: 1_000_000, per_secs: 1, burst: 1_000_000 };
        for limit in [
            &mut self.registrations_per_ip,
            &mut self.status_reads_per_ip,
            &mut self.sales_per_key,
            &mut self.depletions_per_cart,
            &mut self.locations_per_cart,
            &mut self.cart_reports_per_cart,
            &mut self.vendor_requests_per_key,
            &mut self.admin_per_token,
        ] {
            *limit = lifted;
        }
    }
}

/// One limit: `burst` at once, refilled at `requests` per `per_secs` seconds.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per_secs: u32,
    pub burst: u32,
}

/// A background service: where it serves /healthz, /readyz and /metrics.
/// Every `*.ops_listen` port is instance 1's: `mamochi run --instance N`
/// adds 10 × (N − 1) to it (a port of 0, any free port, stays 0).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServiceSettings {
    pub ops_listen: String,
}

/// Email delivery, and when the notifier gives up on one email.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NotifierSettings {
    pub ops_listen: String,
    /// Most SMTP attempts for one email: when this many have failed (relay
    /// down, 4xx), the email is marked `failed` and its partition moves on.
    pub max_attempts: u32,
    /// Real seconds after an email was requested: a failed attempt later than
    /// this is its last, whatever the attempt count.
    pub give_up_after_secs: u64,
}

/// Stock and restocking rules.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DistributorSettings {
    pub ops_listen: String,
    /// Servings on a new member's cart.
    pub initial_stock: i32,
    /// Servings a restock adds.
    pub restock_quantity: i32,
    /// A low-stock alert fires when stock falls below this many servings.
    pub low_stock_threshold: i32,
    /// Most sales applied in one database transaction (the sales the
    /// consumer has already buffered, never waiting for more).
    pub max_batch: usize,
}

/// Cart tracking rules (the distributor's runaway-cart alarms).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TrackingSettings {
    /// Platform seconds since its last position after which a tracked cart
    /// (one that has reported a position) that sold recently is silent; a
    /// cart that never reported one is not tracked and never silent.
    pub silence_after_secs: u64,
    /// Only a cart that sold within this many platform seconds can be silent
    /// (a cart put away for the day is not missing).
    pub sold_within_secs: u64,
    /// Metres from the centre of the member's comuna beyond which a position
    /// is out of area.
    pub radius_m: f64,
    /// Local hour (America/Santiago) from which silence counts, inclusive.
    pub working_hours_start: u32,
    /// Local hour at which silence stops counting, exclusive (at most 24).
    pub working_hours_end: u32,
    /// How often (real seconds) carts are checked for silence.
    pub check_interval_secs: u64,
    /// Where every alarm is also sent, beside the vendor.
    pub staff_email: String,
    /// Most tracking events handled in one database transaction.
    pub max_batch: usize,
}

/// Weekly closing rules.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AccountingSettings {
    pub ops_listen: String,
    /// How long after a week ends (in platform time) late sales still count in it.
    pub grace_period_secs: i64,
    /// How often (real seconds) quiet weeks are checked for closing.
    pub close_check_interval_secs: u64,
    /// Most sales applied in one database transaction (1 applies each sale
    /// in its own transaction; the benchmark compares the two).
    pub max_batch: usize,
    /// Email each vendor a summary of every Santiago day they sold in, once
    /// the day is over (plus the grace period). Off by default.
    #[serde(default)]
    pub daily_summary: bool,
}

/// Keys that protect data at rest in Kafka.
#[derive(Debug, Clone, Deserialize)]
pub struct SecretSettings {
    /// 32-byte key (64 hex characters) sealing secrets inside email requests,
    /// so an API key never sits in a Kafka log in clear text.
    pub email_seal_key: SecretString,
}

/// The schema registry: where clients find it, and how our own server runs.
#[derive(Debug, Clone, Deserialize)]
pub struct RegistrySettings {
    /// Base URL clients use (Confluent's `schema.registry.url`). When the
    /// registry asks for HTTP basic auth, the client's credentials go in it
    /// as userinfo, percent-encoded: `http://user:password@host:8081`
    /// (Confluent's `basic.auth.credentials.source=URL`).
    pub url: String,
    /// Address the registry server binds to.
    pub listen: String,
    /// Base URL other registry instances forward writes to when this one is
    /// the elected writer; unset, `http://` plus the bound address (set it
    /// when binding `0.0.0.0` or behind a proxy).
    #[serde(default)]
    pub advertised_url: Option<String>,
    /// Compacted topic holding the registry's state (Confluent's `kafkastore.topic`).
    pub topic: String,
    /// Who may call our registry server, each `user:password`; empty (the
    /// default) means no authentication. A TOML list, or one comma-separated
    /// string in `MAMOCHI__REGISTRY__BASIC_AUTH_USERS`.
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub basic_auth_users: Vec<SecretString>,
}

/// A list of secrets from a TOML list or from one comma-separated string (the
/// only form an environment variable can take).
fn list_or_comma_separated<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Joined(String),
    }
    let items = match Form::deserialize(deserializer)? {
        Form::List(items) => items,
        Form::Joined(joined) => joined.split(',').map(str::to_string).collect(),
    };
    let items = items.into_iter().map(|item| item.trim().to_string()).filter(|item| !item.is_empty());
    Ok(items.map(SecretString::from).collect())
}

/// How to reach the Kafka cluster and how our clients behave on it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list, as librdkafka expects it.
    pub bootstrap_servers: String,
    /// Prefix of every `client.id`, so broker logs and metrics name the service.
    pub client_id: String,
    /// How long the producer keeps retrying a record before reporting it failed.
    /// Long enough to ride out a leader election after a broker dies.
    pub message_timeout_ms: u32,
    /// How long the producer waits to fill a batch; trades latency for throughput.
    pub linger_ms: u32,
    /// Prefix of every consumer group name, so two deployments (or test
    /// runs) can share one cluster without sharing offsets.
    pub group_prefix: String,
    /// Longest a consumer may go without polling before its group evicts it
    /// (`max.poll.interval.ms`, at least the 10 s session timeout). Retries
    /// keep polling, so this bounds one handler call, not an outage.
    pub max_poll_interval_ms: u32,
    /// `plaintext` (the dev stack) or `sasl_ssl` (TLS plus SASL, the secure
    /// stack); applied to every client the platform builds.
    pub security_protocol: KafkaSecurity,
    /// SASL mechanism under `sasl_ssl`: `SCRAM-SHA-512` or `SCRAM-SHA-256`.
    pub sasl_mechanism: String,
    /// The principal of this process, unless `principals` names one for the
    /// service being built.
    pub sasl_username: Option<String>,
    #[serde(skip_serializing)]
    pub sasl_password: Option<SecretString>,
    /// PEM file of the CA that signed the brokers' certificates (the
    /// system's trust store when unset).
    pub ssl_ca_location: Option<String>,
    /// Per-service principals (`gateway`, `approval`, …), so one process
    /// running several services still speaks to Kafka as each of them.
    #[serde(default, skip_serializing)]
    pub principals: HashMap<String, KafkaPrincipal>,
}

/// How Kafka clients reach the brokers.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KafkaSecurity {
    Plaintext,
    SaslSsl,
}

/// One SASL principal.
#[derive(Debug, Clone, Deserialize)]
pub struct KafkaPrincipal {
    pub username: String,
    pub password: SecretString,
}

impl KafkaSettings {
    /// These settings as `service` uses them: its own principal when
    /// `principals` has one, the process's otherwise.
    pub fn for_service(&self, service: &str) -> KafkaSettings {
        let mut settings = self.clone();
        if let Some(principal) = self.principals.get(service) {
            settings.sasl_username = Some(principal.username.clone());
            settings.sasl_password = Some(principal.password.clone());
        }
        settings
    }

    /// The full consumer group name for a service's group `name`.
    pub fn group(&self, name: &str) -> String {
        format!("{}{name}", self.group_prefix)
    }
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub pool_size: usize,
}

/// Where outgoing mail is handed over.
#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// `none` for the local sink, `starttls` or `tls` for a real relay.
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: String,
}

/// Transport security towards the SMTP relay.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

/// Log output.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log collectors.
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info,rdkafka=warn`.
    pub filter: String,
}

/// Shape of log lines.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Why settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
}

/// Defaults: the local stack started by `deploy/local/stack up`, except the
/// profile, which must be chosen explicitly to accept the development secrets.
const DEFAULTS: &str = r#"
profile = "production"

[kafka]
bootstrap_servers = "127.0.0.1:9092"
client_id = "mamochi"
message_timeout_ms = 120000
linger_ms = 5
group_prefix = ""
max_poll_interval_ms = 300000
security_protocol = "plaintext"
sasl_mechanism = "SCRAM-SHA-512"

[database]
url = "postgres://mamochi:mamochi-local@127.0.0.1:55432/mamochi"
pool_size = 8

[smtp]
host = "127.0.0.1"
port = 1025
tls = "none"
from = "MAMOCHI <no-reply@mamochi.cl>"

[registry]
url = "http://127.0.0.1:8081"
listen = "127.0.0.1:8081"
topic = "_schemas"

[time]
scale = 1.0

[gateway]
listen = "127.0.0.1:8080"
ops_listen = "127.0.0.1:9100"
public_url = "http://127.0.0.1:8080"
max_body_bytes = 16384
max_in_flight = 256
key_cache_ttl_ms = 5000
db_wait_ms = 2000
idempotency_retention_hours = 24
location_max_age_secs = 3600

[gateway.rate_limits]
# Production-sensible: a person registers a few carts, a vendor sells a few
# times a minute and runs out a few times a day. The benchmark lifts them on
# its own settings; see docs/api-limits.md.
trusted_proxies = ""
registrations_per_ip = { requests = 20, per_secs = 3600, burst = 10 }
status_reads_per_ip = { requests = 300, per_secs = 60, burst = 60 }
sales_per_key = { requests = 20, per_secs = 1, burst = 200 }
depletions_per_cart = { requests = 6, per_secs = 3600, burst = 3 }
locations_per_cart = { requests = 1, per_secs = 1, burst = 30 }
cart_reports_per_cart = { requests = 6, per_secs = 3600, burst = 3 }
vendor_requests_per_key = { requests = 120, per_secs = 60, burst = 60 }
admin_per_token = { requests = 600, per_secs = 60, burst = 120 }

[approval]
ops_listen = "127.0.0.1:9101"

[distributor]
ops_listen = "127.0.0.1:9102"
initial_stock = 10
restock_quantity = 10
low_stock_threshold = 3
max_batch = 5000

[tracking]
silence_after_secs = 900
sold_within_secs = 3600
radius_m = 8000.0
working_hours_start = 8
working_hours_end = 21
check_interval_secs = 5
staff_email = "guardia@mamochi.cl"
max_batch = 2000

[accounting]
ops_listen = "127.0.0.1:9103"
grace_period_secs = 3600
close_check_interval_secs = 5
max_batch = 5000
daily_summary = false

[notifier]
ops_listen = "127.0.0.1:9104"
max_attempts = 100
give_up_after_secs = 86400

[retention]
# How long rows are kept is derived from the topic catalog (`mamochi`'s
# retention policy); these only pace the pruning.
prune_interval_secs = 3600
chunk_rows = 10000

[secrets]
# Development key for the loopback-only local stack; set
# MAMOCHI__SECRETS__EMAIL_SEAL_KEY everywhere else.
email_seal_key = "6d616d6f6368692d6c6f63616c2d6465762d6b65792d6e6f742d736563726574"

[log]
format = "pretty"
filter = "info,librdkafka=warn,rdkafka=warn"
"#;

impl Settings {
    /// Reads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_with_env(file, None)
    }

    /// As [`Settings::load`], with the environment given as a map instead of
    /// read from the process (`None` reads the process environment).
    pub fn load_with_env(file: Option<&Path>, env: Option<HashMap<String, String>>) -> Result<Self, SettingsError> {
        let mut builder =
            config::Config::builder().add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let settings = builder
            .add_source(config::Environment::with_prefix("MAMOCHI").prefix_separator("__").separator("__").source(env))
            .build()?
            .try_deserialize()?;
        Ok(settings)
    }
}

impl DatabaseSettings {
    /// The connection URL; exposed only to the code that opens connections.
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Option<HashMap<String, String>> {
        Some(HashMap::new())
    }

    #[test]
    fn defaults_point_at_the_local_stack() {
        let settings = Settings::load_with_env(None, no_env()).expect("defaults parse");
        assert_eq!(settings.kafka.bootstrap_servers, "127.0.0.1:9092");
        assert_eq!(settings.smtp.port, 1025);
        assert_eq!(settings.smtp.tls, SmtpTls::None);
        assert!(settings.database.url().contains(":55432/"));
    }

    #[test]
    fn a_file_overrides_the_defaults() {
        let dir = std::env::temp_dir().join(format!("mamochi-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("override.toml");
        std::fs::write(&file, "[kafka]\nbootstrap_servers = \"10.0.0.1:9092\"\n").expect("write");

        let settings = Settings::load_with_env(Some(&file), no_env()).expect("file parses");

        assert_eq!(settings.kafka.bootstrap_servers, "10.0.0.1:9092");
        assert_eq!(settings.kafka.client_id, "mamochi", "untouched keys keep defaults");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_environment_overrides_file_and_defaults() {
        let env = HashMap::from([
            ("MAMOCHI__KAFKA__BOOTSTRAP_SERVERS".to_string(), "broker:9093".to_string()),
            ("MAMOCHI__SMTP__PORT".to_string(), "2525".to_string()),
        ]);

        let settings = Settings::load_with_env(None, Some(env)).expect("env parses");

        assert_eq!(settings.kafka.bootstrap_servers, "broker:9093");
        assert_eq!(settings.smtp.port, 2525);
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let err = Settings::load(Some(Path::new("/nonexistent/mamochi.toml")));
        assert!(err.is_err());
    }
}
