//! The records of the registry's compacted topic, in Confluent Schema
//! Registry's own JSON format, so that Confluent's server can read a topic we
//! wrote and we can read one it wrote.
//!
//! Guarantees: keys serialize byte-for-byte as Confluent writes them
//! (`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`, the global
//! config as `{"keytype":"CONFIG","subject":null,"magic":0}`), because log
//! compaction keeps one record per *key bytes*: a key spelled differently
//! would never replace the old one. Values tolerate unknown fields, and key
//! types we do not use (`MODE`, `CONTEXT`, …) decode to [`LogRecord::Ignored`]
//! instead of failing, so a topic shared with a newer Confluent server loads.

use serde::{Deserialize, Serialize};

/// Confluent's magic byte for schema keys; every other key type uses 0.
const SCHEMA_KEY_MAGIC: u8 = 1;

/// One decoded record of the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRecord {
    /// A version of a subject; `None` is a tombstone (permanent delete).
    Schema { subject: String, version: u32, value: Option<SchemaValue> },
    /// A compatibility level; `subject: None` is the global one; `value: None` removes it.
    Config { subject: Option<String>, value: Option<ConfigValue> },
    /// Soft-deletes every version of `subject` up to `version`.
    DeleteSubject(DeleteSubjectValue),
    /// Written by Confluent's server to find the end of the log; carries no state.
    Noop,
    /// A key type this registry does not manage (modes, contexts…), named for the log.
    Ignored(String),
}

/// Value of a `SCHEMA` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaValue {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    /// Absent for Avro, as Confluent writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
}

/// A reference from one schema to another, kept as read (we never create them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaReference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// Value of a `CONFIG` record. The level stays a string so that a level this
/// registry does not know decodes (and is then ignored) rather than failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigValue {
    #[serde(default)]
    pub compatibility_level: Option<String>,
}

/// Value of a `DELETE_SUBJECT` record: versions `1..=version` are soft-deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSubjectValue {
    pub subject: String,
    pub version: u32,
}

/// The key as Confluent spells it; field order is the serialized order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
enum RawKey {
    Schema {
        subject: String,
        version: u32,
        #[serde(default)]
        magic: u8,
    },
    Config {
        #[serde(default)]
        subject: Option<String>,
        #[serde(default)]
        magic: u8,
    },
    DeleteSubject {
        subject: String,
        #[serde(default)]
        magic: u8,
    },
    Noop {
        #[serde(default)]
        magic: u8,
    },
    #[serde(other)]
    Unknown,
}

/// Why a record of the topic could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("record has no key")]
    MissingKey,
    #[error("malformed key: {0}")]
    Key(#[source] serde_json::Error),
    #[error("malformed value: {0}")]
    Value(#[source] serde_json::Error),
    #[error("DELETE_SUBJECT record without a value")]
    MissingValue,
}

/// Decodes one record of the topic.
pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<LogRecord, DecodeError> {
    let key_bytes = key.ok_or(DecodeError::MissingKey)?;
    let key: RawKey = serde_json::from_slice(key_bytes).map_err(DecodeError::Key)?;
    Ok(match key {
        RawKey::Schema { subject, version, .. } => {
            LogRecord::Schema { subject, version, value: value.map(parse).transpose()? }
        }
        RawKey::Config { subject, .. } => LogRecord::Config { subject, value: value.map(parse).transpose()? },
        RawKey::DeleteSubject { .. } => LogRecord::DeleteSubject(parse(value.ok_or(DecodeError::MissingValue)?)?),
        RawKey::Noop { .. } => LogRecord::Noop,
        RawKey::Unknown => LogRecord::Ignored(keytype_of(key_bytes)),
    })
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(bytes).map_err(DecodeError::Value)
}

/// The `keytype` of a key we do not manage, only to name it in the log.
fn keytype_of(key: &[u8]) -> String {
    #[derive(Deserialize)]
    struct KeyType {
        keytype: String,
    }
    serde_json::from_slice::<KeyType>(key).map_or_else(|_| "unknown".to_string(), |key| key.keytype)
}

/// Encodes a record as (key, value) bytes; `None` value is a tombstone.
pub fn encode(record: &LogRecord) -> Result<(Vec<u8>, Option<Vec<u8>>), serde_json::Error> {
    let (key, value) = match record {
        LogRecord::Schema { subject, version, value } => (
            RawKey::Schema { subject: subject.clone(), version: *version, magic: SCHEMA_KEY_MAGIC },
            value.as_ref().map(serde_json::to_vec).transpose()?,
        ),
        LogRecord::Config { subject, value } => {
            (RawKey::Config { subject: subject.clone(), magic: 0 }, value.as_ref().map(serde_json::to_vec).transpose()?)
        }
        LogRecord::DeleteSubject(value) => {
            (RawKey::DeleteSubject { subject: value.subject.clone(), magic: 0 }, Some(serde_json::to_vec(value)?))
        }
        LogRecord::Noop => (RawKey::Noop { magic: 0 }, None),
        LogRecord::Ignored(_) => (RawKey::Unknown, None),
    };
    Ok((serde_json::to_vec(&key)?, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn keys_are_spelled_as_confluent_spells_them() {
        let schema = LogRecord::Schema { subject: "s".into(), version: 3, value: None };
        let global = LogRecord::Config { subject: None, value: None };
        let subject_config = LogRecord::Config { subject: Some("s".into()), value: None };
        let delete = LogRecord::DeleteSubject(DeleteSubjectValue { subject: "s".into(), version: 2 });

        assert_eq!(
            text(&encode(&schema).expect("encodes").0),
            r#"{"keytype":"SCHEMA","subject":"s","version":3,"magic":1}"#
        );
        assert_eq!(text(&encode(&global).expect("encodes").0), r#"{"keytype":"CONFIG","subject":null,"magic":0}"#);
        assert_eq!(
            text(&encode(&subject_config).expect("encodes").0),
            r#"{"keytype":"CONFIG","subject":"s","magic":0}"#
        );
        let (key, value) = encode(&delete).expect("encodes");
        assert_eq!(text(&key), r#"{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}"#);
        assert_eq!(text(&value.expect("a value")), r#"{"subject":"s","version":2}"#);
        assert_eq!(text(&encode(&LogRecord::Noop).expect("encodes").0), r#"{"keytype":"NOOP","magic":0}"#);
    }

    #[test]
    fn a_schema_value_omits_avro_type_and_empty_references() {
        let value = SchemaValue {
            subject: "s".into(),
            version: 1,
            id: 7,
            schema_type: None,
            references: vec![],
            schema: r#"{"type":"string"}"#.into(),
            deleted: false,
        };
        let record = LogRecord::Schema { subject: "s".into(), version: 1, value: Some(value) };

        let (_, bytes) = encode(&record).expect("encodes");

        assert_eq!(
            text(&bytes.expect("a value")),
            r#"{"subject":"s","version":1,"id":7,"schema":"{\"type\":\"string\"}","deleted":false}"#
        );
    }

    #[test]
    fn records_written_by_confluent_decode() {
        let key = br#"{"keytype":"SCHEMA","subject":"orders-value","version":2,"magic":1}"#;
        let value = br#"{"subject":"orders-value","version":2,"id":21,"schemaType":"PROTOBUF","md5":"x","schema":"syntax","deleted":true,"metadata":null}"#;

        let record = decode(Some(key), Some(value)).expect("decodes");

        let LogRecord::Schema { subject, version, value: Some(value) } = record else { panic!("{record:?}") };
        assert_eq!((subject.as_str(), version, value.id, value.deleted), ("orders-value", 2, 21, true));
        assert_eq!(value.schema_type.as_deref(), Some("PROTOBUF"));
    }

    #[test]
    fn tombstones_global_config_and_unknown_keys_decode() {
        let tombstone = decode(Some(br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#), None);
        let global = decode(Some(br#"{"keytype":"CONFIG","magic":0}"#), Some(br#"{"compatibilityLevel":"FULL"}"#));
        let mode = decode(Some(br#"{"keytype":"MODE","subject":null,"magic":0}"#), Some(br#"{"mode":"READWRITE"}"#));

        assert_eq!(tombstone.expect("decodes"), LogRecord::Schema { subject: "s".into(), version: 1, value: None });
        assert_eq!(
            global.expect("decodes"),
            LogRecord::Config { subject: None, value: Some(ConfigValue { compatibility_level: Some("FULL".into()) }) }
        );
        assert_eq!(mode.expect("decodes"), LogRecord::Ignored("MODE".into()));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(None, Some(b"{}")).is_err());
        assert!(decode(Some(b"not json"), None).is_err());
        assert!(decode(Some(br#"{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}"#), None).is_err());
    }
}
