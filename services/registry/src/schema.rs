//! Avro schema text as clients send it: why it is invalid, and when two texts
//! are "the same schema".
//!
//! Guarantees: the text is never rewritten; what a client registered is what
//! it reads back. Identity is equality of the JSON documents (whitespace and
//! key order do not matter, everything else does). Avro's Parsing Canonical
//! Form is deliberately not used for identity: it drops `default`, `doc` and
//! aliases, so two schemas whose compatibility differs (a field with and
//! without a default) would share one id and one text.

use apache_avro::Schema;
use serde_json::Value;

/// A schema that parsed as Avro, with the text it came from.
#[derive(Debug, Clone)]
pub struct AvroSchema {
    pub text: String,
    pub parsed: Schema,
    pub document: Value,
}

impl AvroSchema {
    /// Parses `text`; the error is the parser's own explanation.
    pub fn parse(text: &str) -> Result<Self, String> {
        let document = serde_json::from_str(text).map_err(|error| format!("Invalid schema: {error}"))?;
        let parsed = Schema::parse_str(text).map_err(|error| format!("Invalid schema: {error}"))?;
        Ok(Self { text: text.to_string(), parsed, document })
    }
}

/// The JSON document of a stored schema text, for identity comparisons.
/// A text that is not JSON (another registry's Protobuf, say) is its own document.
pub fn document_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_kept_as_given() {
        let text = "{ \"type\": \"record\", \"name\": \"A\", \"doc\": \"kept\", \"fields\": [] }";

        let schema = AvroSchema::parse(text).expect("valid");

        assert_eq!(schema.text, text);
    }

    #[test]
    fn whitespace_and_key_order_do_not_change_identity_but_defaults_do() {
        let a = AvroSchema::parse(r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#).expect("a");
        let b = AvroSchema::parse(r#"{ "name": "A", "fields": [ {"type":"int", "name":"x"} ], "type": "record" }"#)
            .expect("b");
        let c = AvroSchema::parse(r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int","default":0}]}"#)
            .expect("c");

        assert_eq!(a.document, b.document);
        assert_ne!(a.document, c.document);
    }

    #[test]
    fn invalid_schemas_say_why() {
        let not_json = AvroSchema::parse("{\"type\":").expect_err("not JSON");
        let bad_type = AvroSchema::parse(r#"{"type":"recordz","name":"A"}"#).expect_err("unknown type");
        let no_name = AvroSchema::parse(r#"{"type":"record","fields":[]}"#).expect_err("no name");

        assert!(not_json.starts_with("Invalid schema"), "{not_json}");
        assert!(bad_type.contains("recordz"), "{bad_type}");
        assert!(no_name.starts_with("Invalid schema"), "{no_name}");
    }
}
