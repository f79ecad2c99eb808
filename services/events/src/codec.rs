//! Confluent's wire format over our generated types.
//!
//! A record is `0x00`, a 4-byte big-endian schema id, then the Avro body
//! written with that schema. Encoding goes through `schema_registry_converter`
//! with TopicNameStrategy and the raw `.avsc` text, so the first encode of a
//! type registers its schema (or finds it registered) and later ones hit the
//! cache. Decoding resolves the record's writer schema (fetched by id, cached)
//! against the reader schema the caller expects, Avro's evolution rules filling
//! defaults and dropping unknown fields: a consumer reads any registered
//! version of a subject into the current Rust type.
//!
//! Decode failures are classified: a transient one (registry unreachable, or
//! refusing our credentials) must be retried; a permanent one (wrong magic
//! byte, unknown id, corrupt body, unreadable schema) will never succeed and
//! goes to the dead letters.
//!
//! Credentials: when the registry asks for HTTP basic auth, they travel as
//! userinfo in its URL (`http://user:password@host:8081`, percent-encoded,
//! Confluent's `basic.auth.credentials.source=URL`). [`RegistryUrl`] takes
//! them out of the URL, so that the URL that reaches error messages and logs
//! never carries the password, and they are sent as an `Authorization` header.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use apache_avro::Schema;
use mamochi_common::kafka_metrics::KafkaMetrics;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SubjectNameStrategy, SuppliedSchema};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::topics::Topic;
use crate::{AvroSchemaSource, SchemaSource};

/// Magic byte of Confluent's wire format.
const MAGIC_BYTE: u8 = 0;
/// Magic byte plus the 4-byte schema id.
const HEADER_LEN: usize = 5;

/// Why a value could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("schema registry refused or failed: {0}")]
    Registry(#[from] SRCError),
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("record has no payload")]
    MissingPayload,
    #[error("record of {0} bytes is shorter than the 5-byte wire-format header")]
    TooShort(usize),
    #[error("wrong magic byte {0:#04x}, expected 0x00: not Confluent wire format")]
    WrongMagicByte(u8),
    #[error("schema id {id} is unknown to the registry: {message}")]
    UnknownSchemaId { id: u32, message: String },
    #[error("body does not decode with writer schema {id} as {reader}: {message}")]
    CorruptBody { id: u32, reader: String, message: String },
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
    #[error("reader schema is invalid: {0}")]
    InvalidReaderSchema(String),
}

impl DecodeError {
    /// Retrying may succeed (the registry may come back); everything else is
    /// a property of the record itself.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RegistryUnavailable(_) | Self::InvalidReaderSchema(_))
    }

    /// Short, stable label for dead-letter headers and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingPayload => "missing_payload",
            Self::TooShort(_) => "too_short",
            Self::WrongMagicByte(_) => "wrong_magic_byte",
            Self::UnknownSchemaId { .. } => "unknown_schema_id",
            Self::CorruptBody { .. } => "corrupt_body",
            Self::RegistryUnavailable(_) => "registry_unavailable",
            Self::InvalidReaderSchema(_) => "invalid_reader_schema",
        }
    }
}

/// A registry's base URL with the basic-auth credentials of its userinfo
/// taken out. A URL that does not parse is kept as given, without credentials
/// (the client then reports the bad URL itself).
#[derive(Debug, Clone)]
pub struct RegistryUrl {
    /// The URL without userinfo and without a trailing `/`: safe to log.
    pub base: String,
    pub credentials: Option<Credentials>,
}

/// HTTP basic-auth credentials for the registry; `Debug` hides the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"[REDACTED]").finish()
    }
}

impl RegistryUrl {
    /// Splits `url` into its base and its percent-decoded userinfo.
    pub fn parse(url: &str) -> Self {
        let trimmed = url.trim().trim_end_matches('/');
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return Self { base: trimmed.to_string(), credentials: None };
        };
        // The authority ends at the path, query or fragment; userinfo ends at its last `@`.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let Some((userinfo, host)) = authority.rsplit_once('@') else {
            return Self { base: trimmed.to_string(), credentials: None };
        };
        let (username, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let credentials = Credentials { username: percent_decode(username), password: percent_decode(password) };
        Self { base: format!("{scheme}://{host}{tail}"), credentials: Some(credentials) }
    }
}

/// Decodes `%XX` escapes (userinfo is percent-encoded in a URL); an invalid
/// escape is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Encodes and decodes events in Confluent's wire format. One per process:
/// it caches schema ids and parsed schemas.
pub struct EventCodec {
    encoder: AvroEncoder,
    decoder: AvroDecoder,
    readers: Mutex<HashMap<&'static str, Arc<Schema>>>,
    lookups: Option<LookupTally>,
}

/// Counts registry look-ups as hits or misses. The converter caches every
/// schema id it resolved for the life of the codec, so the first use of a
/// (subject, schema) or of a writer id is the one miss that asks the
/// registry; the tally mirrors that without reaching into the converter.
struct LookupTally {
    metrics: KafkaMetrics,
    seen: Mutex<HashSet<u64>>,
}

impl LookupTally {
    fn count(&self, kind: &str, what: impl Hash) {
        let mut hasher = std::hash::DefaultHasher::new();
        (kind, what).hash(&mut hasher);
        let first_use = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(hasher.finish());
        let result = if first_use { "miss" } else { "hit" };
        self.metrics.registry_lookups.with_label_values(&[kind, result]).inc();
    }
}

impl std::fmt::Debug for EventCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventCodec").finish_non_exhaustive()
    }
}

impl EventCodec {
    /// A codec talking to the registry at `registry_url`, with the basic-auth
    /// credentials its userinfo carries, if any.
    pub fn new(registry_url: &str) -> Self {
        use_text_uuids();
        let registry = RegistryUrl::parse(registry_url);
        let settings = match &registry.credentials {
            None => SrSettings::new(registry.base.clone()),
            Some(credentials) => SrSettings::new_builder(registry.base.clone())
                .set_basic_authorization(&credentials.username, Some(&credentials.password))
                .build()
                .unwrap_or_else(|error| {
                    // Only a custom header or proxy can fail to build, and none is set;
                    // were it to happen, the registry's 401s would say so.
                    tracing::error!(%error, "registry client with credentials could not be built; sending none");
                    SrSettings::new(registry.base.clone())
                }),
        };
        Self {
            encoder: AvroEncoder::new(settings.clone()),
            decoder: AvroDecoder::new(settings),
            readers: Mutex::default(),
            lookups: None,
        }
    }

    /// The same codec, counting its registry look-ups in `metrics`.
    pub fn measured(mut self, metrics: &KafkaMetrics) -> Self {
        self.lookups = Some(LookupTally { metrics: metrics.clone(), seen: Mutex::default() });
        self
    }

    /// Encodes a record's key and value for `topic`.
    pub async fn encode<K, V>(&self, topic: &Topic<K, V>, key: &K, value: &V) -> Result<(Vec<u8>, Vec<u8>), EncodeError>
    where
        K: AvroSchemaSource + Serialize,
        V: AvroSchemaSource + Serialize,
    {
        let key = self.encode_with_schema(topic.name(), true, K::SCHEMA.text, key).await?;
        let value = self.encode_with_schema(topic.name(), false, V::SCHEMA.text, value).await?;
        Ok((key, value))
    }

    /// Encodes `item` with an explicit schema under `topic`'s key or value
    /// subject. The typed [`EventCodec::encode`] is the normal path; this one
    /// lets tools and tests write with another version of a schema.
    pub async fn encode_with_schema(
        &self,
        topic: &str,
        is_key: bool,
        schema_text: &str,
        item: impl Serialize,
    ) -> Result<Vec<u8>, EncodeError> {
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema_text.to_string());
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(topic.to_string(), is_key, supplied);
        let encoded = self.encoder.encode_struct(item, &strategy).await?;
        if let Some(lookups) = &self.lookups {
            lookups.count("encode", (topic, is_key, schema_text));
        }
        Ok(encoded)
    }

    /// Decodes a record written with any registered version of `T`'s subject.
    pub async fn decode<T>(&self, bytes: Option<&[u8]>) -> Result<T, DecodeError>
    where
        T: AvroSchemaSource + DeserializeOwned,
    {
        self.decode_with_reader(T::SCHEMA, bytes).await
    }

    /// Decodes into `T` using `reader` as the reader schema.
    pub async fn decode_with_reader<T: DeserializeOwned>(
        &self,
        reader: SchemaSource,
        bytes: Option<&[u8]>,
    ) -> Result<T, DecodeError> {
        let bytes = bytes.ok_or(DecodeError::MissingPayload)?;
        let (id, mut body) = split_header(bytes)?;
        let writer = self.decoder.get_schema(id).await.map_err(|error| {
            // Refused credentials are a configuration fault, not a property of
            // the record: retry (the operator fixes and restarts), never park.
            let refused = ["status 401", "status 403"].iter().any(|status| error.error.contains(status));
            if error.retriable || refused {
                DecodeError::RegistryUnavailable(error.to_string())
            } else {
                DecodeError::UnknownSchemaId { id, message: error.to_string() }
            }
        })?;
        if let Some(lookups) = &self.lookups {
            lookups.count("decode", id);
        }
        let reader_schema = self.reader_schema(reader)?;
        let corrupt = |message: String| DecodeError::CorruptBody { id, reader: reader.full_name.to_string(), message };
        let value = apache_avro::reader::datum::GenericDatumReader::builder(&writer.parsed)
            .reader_schema(&reader_schema)
            .build()
            .and_then(|datum_reader| datum_reader.read_value(&mut body))
            .map_err(|error| corrupt(error.to_string()))?;
        if !body.is_empty() {
            return Err(corrupt(format!("{} bytes left after the record", body.len())));
        }
        apache_avro::from_value(&value).map_err(|error| corrupt(error.to_string()))
    }

    fn reader_schema(&self, source: SchemaSource) -> Result<Arc<Schema>, DecodeError> {
        let mut readers = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(schema) = readers.get(source.text) {
            return Ok(schema.clone());
        }
        let schema = Arc::new(
            Schema::parse_str(source.text).map_err(|error| DecodeError::InvalidReaderSchema(error.to_string()))?,
        );
        readers.insert(source.text, schema.clone());
        Ok(schema)
    }
}

/// Makes apache-avro's serde layer present uuids as text. Our schemas declare
/// `uuid` over `string` (as Java and Confluent clients do); in its default
/// binary mode serde would hand over 16 raw bytes, which that schema refuses.
/// The setting is process-wide and set once; every codec asks for the same.
pub fn use_text_uuids() {
    if !apache_avro::util::set_serde_human_readable(true) {
        tracing::error!("apache-avro serde was already set to binary mode; uuid fields will not encode");
    }
}

/// Splits the wire-format header from the Avro body.
pub fn split_header(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    if bytes[0] != MAGIC_BYTE {
        return Err(DecodeError::WrongMagicByte(bytes[0]));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_out_of_the_registry_url_decoded() {
        let with = RegistryUrl::parse("http://ana%40guild:p%3Ass%2Fw@127.0.0.1:8081/");
        let without = RegistryUrl::parse("http://127.0.0.1:8081");
        let user_only = RegistryUrl::parse("http://ana@127.0.0.1:8081");

        let credentials = with.credentials.expect("credentials");
        assert_eq!(with.base, "http://127.0.0.1:8081");
        assert_eq!((credentials.username.as_str(), credentials.password.as_str()), ("ana@guild", "p:ss/w"));
        assert!(!format!("{credentials:?}").contains("p:ss/w"), "Debug hides the password");
        assert_eq!(without.base, "http://127.0.0.1:8081");
        assert!(without.credentials.is_none());
        assert_eq!(user_only.credentials.map(|c| (c.username, c.password)), Some(("ana".into(), String::new())));
    }

    #[test]
    fn the_header_carries_the_schema_id_big_endian() {
        let (id, body) = split_header(&[0, 0, 0, 1, 2, 42, 43]).expect("valid header");
        assert_eq!(id, 258);
        assert_eq!(body, &[42, 43]);
    }

    #[test]
    fn a_wrong_magic_byte_is_permanent() {
        let error = split_header(&[1, 0, 0, 0, 1, 9]).expect_err("magic byte 1");
        assert_eq!(error.reason(), "wrong_magic_byte");
        assert!(!error.is_transient());
    }

    #[test]
    fn a_record_shorter_than_the_header_is_rejected() {
        let error = split_header(&[0, 0, 0]).expect_err("3 bytes");
        assert!(matches!(error, DecodeError::TooShort(3)));
    }
}

#[cfg(test)]
mod avro_mapping_tests {
    //! The generated types map onto their own schemas without a registry:
    //! what serde produces is valid Avro for the schema and reads back equal.

    use super::*;
    use crate::{PaymentMethod, SaleRecorded, StockEvent, StockEventKind};

    fn datum_round_trip<T: AvroSchemaSource + Serialize + DeserializeOwned>(value: &T) -> T {
        use_text_uuids();
        let schema = Schema::parse_str(T::SCHEMA.text).expect("schema parses");
        let avro = apache_avro::to_value(value).expect("to avro value").resolve(&schema).expect("valid for its schema");
        let mut bytes = Vec::new();
        apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .and_then(|writer| writer.write_value(&mut bytes, avro))
            .expect("encodes");
        let read = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
            .build()
            .and_then(|reader| reader.read_value(&mut bytes.as_slice()))
            .expect("decodes");
        apache_avro::from_value(&read).expect("maps back")
    }

    #[test]
    fn a_sale_maps_onto_its_schema_and_back() {
        let now = chrono::DateTime::from_timestamp_millis(1_763_800_000_123).expect("instant");
        let sale = SaleRecorded {
            sale_id: uuid::Uuid::new_v4(),
            vendor_id: uuid::Uuid::new_v4(),
            quantity: 2,
            unit_price_clp: 1_500,
            total_clp: 3_000,
            payment_method: PaymentMethod::Credit,
            occurred_at: now,
            recorded_at: now,
            location: None,
        };
        assert_eq!(datum_round_trip(&sale), sale);
    }

    #[test]
    fn optional_fields_and_enums_map_onto_the_stock_schema() {
        let event = StockEvent {
            event_id: uuid::Uuid::new_v4(),
            vendor_id: uuid::Uuid::new_v4(),
            kind: StockEventKind::Depleted,
            quantity: 0,
            stock_after: 0,
            reason: None,
            occurred_at: chrono::DateTime::from_timestamp_millis(0).expect("epoch"),
        };
        assert_eq!(datum_round_trip(&event), event);
    }
}
