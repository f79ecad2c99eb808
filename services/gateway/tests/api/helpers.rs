//! `spawn_app()` and the helpers every gateway test shares; the stack's
//! settings, the readiness wait and the member fixture come from
//! `mamochi_testkit`.
#![allow(dead_code)]

use std::time::Duration;

use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::shutdown::Shutdown;
use mamochi_common::{db, kafka, Settings};
use mamochi_events::codec::EventCodec;
use mamochi_events::credentials;
use mamochi_events::publish::publish;
use mamochi_events::topics::{self, Topic};
use mamochi_events::{AvroSchemaSource, CartStockLevel, VendorKey};
use mamochi_gateway::store::staff;
use mamochi_gateway::Application;
use mamochi_rules::digest::sha256_hex;
use mamochi_testkit::members::{insert_cart, Member};
use mamochi_testkit::{self as kit};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::OnceCell;
use uuid::Uuid;

pub fn settings() -> Settings {
    let mut settings = kit::settings::load();
    // Tests other than `limits.rs` poll and retry faster than a client may.
    settings.gateway.rate_limits.lift();
    settings.gateway.listen = "127.0.0.1:0".into();
    settings.gateway.ops_listen = "127.0.0.1:0".into();
    settings.gateway.public_url = "http://gateway.test".into();
    settings
}

/// Schema migrated once per test process (the stack may predate a migration).
async fn prepared() {
    static PREPARED: OnceCell<()> = OnceCell::const_new();
    PREPARED
        .get_or_init(|| async {
            let settings = settings();
            db::run_migrations(&settings.database).await.expect("migrations apply");
            let admin = kafka::admin(&settings.kafka).expect("admin client");
            kafka::ensure_topics(&admin, &mamochi_events::topics::all_specs()).await.expect("topics exist");
        })
        .await;
}

pub struct TestApp {
    pub address: String,
    /// Base URL of the operations listener (/healthz, /readyz, /metrics).
    pub ops_address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub settings: Settings,
    pub codec: EventCodec,
    /// A staff token of this app's own, for `/v1/admin`.
    pub staff: TestStaff,
    shutdown: Shutdown,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts the gateway (API and operations listeners on port 0) and waits
/// until the operations port's /readyz says ready.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(settings()).await
}

/// [`spawn_app`] with settings of the test's own (start from [`settings`]).
pub async fn spawn_app_with(settings: Settings) -> TestApp {
    prepared().await;
    let application = Application::build(&settings).await.expect("the gateway builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let ops_address = format!("http://127.0.0.1:{}", application.ops_port());
    let shutdown = Shutdown::new();
    tokio::spawn(application.run_until_stopped(shutdown.clone()));
    kit::http::wait_until_ready(&format!("{ops_address}/readyz"), Duration::from_secs(60)).await;
    let client = reqwest::Client::new();
    let pool = kit::settings::pool(&settings);
    let staff = add_staff(&pool).await;
    TestApp {
        address,
        ops_address,
        client,
        pool,
        staff,
        codec: EventCodec::new(&settings.registry.url),
        settings,
        shutdown,
    }
}

/// An HTTP answer: status, headers and JSON body (Null when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        Self { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    /// `(status, error.code, error.field)` of an error answer.
    pub fn error(&self) -> (u16, &str, Option<&str>) {
        let error = &self.body["error"];
        (self.status, error["code"].as_str().unwrap_or("<no code>"), error["field"].as_str())
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Answer {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        Answer::from(request.send().await.expect("request")).await
    }

    pub async fn post(&self, path: &str, body: &Value, bearer: Option<&str>) -> Answer {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        Answer::from(request.send().await.expect("request")).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>, bearer: Option<&str>) -> Answer {
        let mut request = self.client.post(self.url(path)).header("content-type", "application/json").body(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        Answer::from(request.send().await.expect("request")).await
    }

    /// A member with a cart of `stock` servings and a fresh API key, written
    /// in SQL the way the approval service would; the cart's level is
    /// published as the distributor would, and the call returns once the
    /// gateway's stock view shows it.
    pub async fn create_vendor(&self, stock: i32) -> TestVendor {
        let api_key = format!("mamochi_{}", Uuid::new_v4().simple());
        let member =
            Member { full_name: "Rosa Pérez".to_string(), api_key_sha256: sha256_hex(&api_key), ..Member::new() };
        member.insert(&self.pool).await;
        insert_cart(&self.pool, member.id, stock).await;
        let vendor = TestVendor { member_id: member.id, api_key, email: member.email };
        self.set_stock(&vendor, stock).await;
        vendor
    }

    /// Publishes the cart's level on `mamochi.cart-stock`, as the distributor
    /// does after a change, and waits until `GET /v1/me` shows it.
    pub async fn set_stock(&self, vendor: &TestVendor, stock: i32) {
        let level = CartStockLevel { vendor_id: vendor.member_id, stock, restocks: 0, updated_at: chrono::Utc::now() };
        let producer = kafka::producer(&self.settings.kafka, "gateway-test").expect("producer");
        publish(&producer, &self.codec, &topics::CART_STOCK, &VendorKey { vendor_id: vendor.member_id }, &level, None)
            .await
            .expect("level published");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let me = self.get("/v1/me", Some(&vendor.api_key)).await;
            if me.body["stock"] == stock {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "the stock view never showed {stock}: {:?}", me.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs one SQL statement (test setup).
    pub async fn sql(&self, statement: &str) {
        let mut conn = self.pool.get().await.expect("connection");
        diesel::sql_query(statement).execute(&mut conn).await.expect("statement runs");
    }
}

/// A member of staff: the token's name and the token.
#[derive(Debug, Clone)]
pub struct TestStaff {
    pub name: String,
    pub token: String,
}

/// A staff token of its own (named `test-…`), stored as `mamochi staff add`
/// stores one.
pub async fn add_staff(pool: &PgPool) -> TestStaff {
    let name = format!("test-{}", &Uuid::new_v4().simple().to_string()[..16]);
    let token = credentials::generate_with_prefix(credentials::STAFF_PREFIX).expect("random source");
    staff::add(pool, &name, &token.sha256).await.expect("the staff token is stored");
    TestStaff { name, token: token.clear }
}

#[derive(Debug, Clone)]
pub struct TestVendor {
    pub member_id: Uuid,
    pub api_key: String,
    pub email: String,
}

/// A RUT with a valid check digit, different between calls and runs.
pub fn unique_rut() -> String {
    let body = 10_000_000 + (Uuid::new_v4().as_u128() % 89_999_999) as u32;
    // Written the paper way, with dots: the body always has 8 digits.
    let rut = mamochi_rules::rut::for_number(body);
    format!("{}.{}.{}", &rut[..2], &rut[2..5], &rut[5..])
}

/// A valid registration body.
pub fn form(paid: bool) -> Value {
    let tag = Uuid::new_v4().simple().to_string();
    let mut body = serde_json::json!({
        "full_name": "Rosa Pérez Soto",
        "rut": unique_rut(),
        "email": format!("Rosa.{}@Example.cl", &tag[..12]),
        "phone": "+56 9 8765 4321",
        "comuna": "Ñuñoa",
        "cart_plate": "bc-df-12",
        "paid": paid,
    });
    if paid {
        body["payment_reference"] = Value::String(payment_reference());
    }
    body
}

/// A payment reference in the documented format, different between calls
/// and runs (each one is accepted once only).
pub fn payment_reference() -> String {
    format!("TX-{:018}", Uuid::new_v4().as_u128() % 1_000_000_000_000_000_000)
}

/// Reads what lands on a topic after this point, from every partition.
pub struct Tail {
    consumer: StreamConsumer,
}

impl Tail {
    /// Starts at each partition's current end, so earlier records are skipped.
    pub async fn start<K, V>(settings: &Settings, topic: &Topic<K, V>) -> Self {
        let group = format!("gateway-test-{}", Uuid::new_v4());
        let consumer: StreamConsumer =
            kafka::consumer_config(&settings.kafka, &group, "gateway-test").create().expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..topic.info.partitions {
            let (_, high) =
                consumer.fetch_watermarks(topic.name(), partition, Duration::from_secs(10)).expect("watermarks");
            assignment.add_partition_offset(topic.name(), partition, Offset::Offset(high)).expect("offset");
        }
        consumer.assign(&assignment).expect("assign");
        Self { consumer }
    }

    /// Decoded (partition, key, value) records until `done` holds or
    /// `wait` passes without a new record.
    pub async fn collect<K, V>(
        &self,
        codec: &EventCodec,
        wait: Duration,
        done: impl Fn(&[(i32, K, V)]) -> bool,
    ) -> Vec<(i32, K, V)>
    where
        K: AvroSchemaSource + DeserializeOwned,
        V: AvroSchemaSource + DeserializeOwned,
    {
        let mut records = Vec::new();
        while !done(&records) {
            match tokio::time::timeout(wait, self.consumer.recv()).await {
                Ok(Ok(message)) => {
                    let key: K = codec.decode(message.key()).await.expect("key decodes");
                    let value: V = codec.decode(message.payload()).await.expect("value decodes");
                    records.push((message.partition(), key, value));
                }
                Ok(Err(error)) => panic!("consumer error: {error}"),
                Err(_) => break,
            }
        }
        records
    }
}
