//! Avro schema text as clients send it: why it is invalid, and when two texts
//! are "the same schema".
//!
//! Guarantees: the text is never rewritten; what a client registered is what
//! it reads back. Identity is Confluent's: two texts are the same schema when
//! Avro prints them the same, i.e. equality of the parsed schema written back
//! as JSON (Confluent compares Avro Java's `Schema.toString()`). Equivalent
//! spellings therefore share an id — `{"type":"string"}` and `"string"`, a
//! full name and a name plus namespace, whitespace and key order — while
//! `default`, `doc`, aliases and custom properties still count. Avro's
//! Parsing Canonical Form is deliberately not the identity: it drops
//! defaults, so a new version that only adds a default would be taken for
//! the old one and never registered.

use apache_avro::Schema;
use serde_json::Value;

/// A schema that parsed as Avro, with the text it came from.
#[derive(Debug, Clone)]
pub struct AvroSchema {
    pub text: String,
    pub parsed: Schema,
    /// The text as a JSON document, as written (for diffs and exact comparisons).
    pub document: Value,
    /// What makes two texts the same schema (see the module doc).
    pub identity: Value,
}

impl AvroSchema {
    /// Parses `text`; the error is the parser's own explanation.
    pub fn parse(text: &str) -> Result<Self, String> {
        // apache-avro also accepts a bare name such as `string` that is not
        // JSON; Confluent's Java parser does not, so neither do we.
        let document = serde_json::from_str(text).map_err(|error| format!("Invalid schema: {error}"))?;
        let parsed = Schema::parse_str(text).map_err(|error| format!("Invalid schema: {error}"))?;
        let identity =
            printed(&parsed).ok_or_else(|| "Invalid schema: it cannot be written back as JSON".to_string())?;
        Ok(Self { text: text.to_string(), parsed, document, identity })
    }
}

/// The schema as Avro writes it back: a JSON document in which equivalent
/// spellings coincide. Compared as a `Value`, so key order never matters.
fn printed(schema: &Schema) -> Option<Value> {
    serde_json::to_value(schema).ok()
}

/// The JSON document of a schema text, as written (key order aside). A text
/// that is not JSON (another registry's Protobuf, say) is its own document.
pub fn document_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The identity of a stored schema text. A text that is not Avro (another
/// registry's Protobuf, say) or does not parse is its own identity, so it
/// never matches an Avro schema.
pub fn identity_of(text: &str, is_avro: bool) -> Value {
    let parsed = is_avro.then(|| AvroSchema::parse(text).ok()).flatten();
    parsed.map_or_else(|| Value::String(text.to_string()), |schema| schema.identity)
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
    fn equivalent_spellings_share_an_identity() {
        let same = [
            (r#""string""#, r#"{"type":"string"}"#),
            (
                r#"{"type":"record","name":"cl.mamochi.User","fields":[{"name":"id","type":"long"}]}"#,
                r#"{"type":"record","name":"User","namespace":"cl.mamochi","fields":[{"name":"id","type":{"type":"long"}}]}"#,
            ),
            (r#"{"type":"array","items":"int"}"#, r#"{"items":{"type":"int"},"type":"array"}"#),
        ];

        for (a, b) in same {
            assert_eq!(AvroSchema::parse(a).expect(a).identity, AvroSchema::parse(b).expect(b).identity, "{a} vs {b}");
        }
    }

    #[test]
    fn doc_aliases_and_names_still_tell_schemas_apart() {
        let base = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#;
        let others = [
            r#"{"type":"record","name":"A","doc":"d","fields":[{"name":"x","type":"int"}]}"#,
            r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int","aliases":["y"]}]}"#,
            r#"{"type":"record","name":"B","fields":[{"name":"x","type":"int"}]}"#,
            r#"{"type":"record","name":"A","fields":[{"name":"x","type":"long"}]}"#,
        ];

        let identity = AvroSchema::parse(base).expect("base").identity;
        for other in others {
            assert_ne!(AvroSchema::parse(other).expect(other).identity, identity, "{other}");
        }
    }

    #[test]
    fn stored_texts_that_are_not_avro_are_their_own_identity() {
        let proto = "syntax = \"proto3\"; message A {}";

        assert_eq!(identity_of(proto, false), Value::String(proto.to_string()));
        assert_eq!(identity_of("\"string\"", false), Value::String("\"string\"".to_string()));
        assert_eq!(identity_of("\"string\"", true), AvroSchema::parse("\"string\"").expect("avro").identity);
    }

    #[test]
    fn whitespace_and_key_order_do_not_change_identity_but_defaults_do() {
        let a = AvroSchema::parse(r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#).expect("a");
        let b = AvroSchema::parse(r#"{ "name": "A", "fields": [ {"type":"int", "name":"x"} ], "type": "record" }"#)
            .expect("b");
        let c = AvroSchema::parse(r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int","default":0}]}"#)
            .expect("c");

        assert_eq!(a.identity, b.identity);
        assert_ne!(a.identity, c.identity);
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
