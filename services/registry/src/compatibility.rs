//! Compatibility levels and the check a new schema must pass, with Avro's
//! reader/writer resolution rules (apache-avro's `SchemaCompatibility`).
//!
//! Meaning, as in Confluent: BACKWARD = the new schema (reader) can read data
//! written with the latest version; FORWARD = the latest version can read data
//! written with the new one; FULL = both. `*_TRANSITIVE` checks against every
//! non-deleted version instead of only the latest. A *partial* resolution
//! (some union branches or enum symbols of the writer unknown to the reader)
//! counts as incompatible, as it does for Confluent: such data fails to decode.

use apache_avro::error::CompatibilityError;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::Schema;
use serde::{Deserialize, Serialize};

/// A subject's (or the registry's) compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl CompatibilityLevel {
    /// The level used when neither the subject nor the registry sets one.
    pub const DEFAULT: Self = Self::Backward;

    /// Parses a level name, ignoring case as Confluent does.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "NONE" => Self::None,
            "BACKWARD" => Self::Backward,
            "BACKWARD_TRANSITIVE" => Self::BackwardTransitive,
            "FORWARD" => Self::Forward,
            "FORWARD_TRANSITIVE" => Self::ForwardTransitive,
            "FULL" => Self::Full,
            "FULL_TRANSITIVE" => Self::FullTransitive,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(self, Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive)
    }

    fn backward(self) -> bool {
        matches!(self, Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive)
    }

    fn forward(self) -> bool {
        matches!(self, Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive)
    }
}

/// An earlier version the new schema is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    pub version: u32,
    pub schema: &'a Schema,
    pub text: &'a str,
}

/// Checks `new` against `previous` (oldest first) under `level`. Returns
/// Confluent-style messages describing the first incompatible version, newest
/// first; an empty list means compatible.
pub fn check(level: CompatibilityLevel, new: &Schema, previous: &[Previous<'_>]) -> Vec<String> {
    let candidates: Vec<&Previous<'_>> =
        if level.transitive() { previous.iter().rev().collect() } else { previous.last().into_iter().collect() };
    for old in candidates {
        let mut problems = Vec::new();
        if level.backward() {
            problems.extend(
                can_read(old.schema, new).err().map(|error| describe(&error, Direction::Backward, old.version)),
            );
        }
        if level.forward() {
            problems
                .extend(can_read(new, old.schema).err().map(|error| describe(&error, Direction::Forward, old.version)));
        }
        if !problems.is_empty() {
            problems.push(format!("{{oldSchemaVersion: {}}}", old.version));
            problems.push(format!("{{oldSchema: '{}'}}", old.text));
            problems.push(format!("{{compatibility: '{}'}}", level.name()));
            return problems;
        }
    }
    Vec::new()
}

/// Why a reader cannot read what a writer wrote.
enum Problem {
    Avro(CompatibilityError),
    Partial,
}

fn can_read(writer: &Schema, reader: &Schema) -> Result<(), Problem> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => Ok(()),
        Ok(Compatibility::Partial) => Err(Problem::Partial),
        Err(error) => Err(Problem::Avro(error)),
    }
}

/// Which side failed to read the other's data.
#[derive(Clone, Copy)]
enum Direction {
    /// The new schema reading old data.
    Backward,
    /// An old version reading new data.
    Forward,
}

/// One Confluent-shaped message: `{errorType:'…', description:'…', additionalInfo:'…'}`.
fn describe(problem: &Problem, direction: Direction, old_version: u32) -> String {
    let direction = match direction {
        Direction::Backward => format!("the new schema cannot read data written with version {old_version}"),
        Direction::Forward => format!("version {old_version} cannot read data written with the new schema"),
    };
    let (error_type, detail, field) = match problem {
        Problem::Partial => (
            "MISSING_UNION_BRANCH_OR_ENUM_SYMBOL",
            "Some values the writer can produce (a union branch or an enum symbol) are unknown to the reader"
                .to_string(),
            None,
        ),
        Problem::Avro(error) => (error_type(error), chain(error), field_of(error)),
    };
    match field {
        Some(field) => {
            format!("{{errorType:'{error_type}', description:'{direction}: {detail}', additionalInfo:'{field}'}}")
        }
        None => format!("{{errorType:'{error_type}', description:'{direction}: {detail}'}}"),
    }
}

/// Confluent's name for the kind of incompatibility.
fn error_type(error: &CompatibilityError) -> &'static str {
    match error {
        CompatibilityError::MissingDefaultValue(_) => "READER_FIELD_MISSING_DEFAULT_VALUE",
        CompatibilityError::MissingSymbols => "MISSING_ENUM_SYMBOLS",
        CompatibilityError::MissingUnionElements | CompatibilityError::SchemaMismatchAllUnionElements => {
            "MISSING_UNION_BRANCH"
        }
        CompatibilityError::FixedMismatch => "FIXED_SIZE_MISMATCH",
        CompatibilityError::NameMismatch { .. } => "NAME_MISMATCH",
        CompatibilityError::FieldTypeMismatch(_, inner) => error_type(inner),
        _ => "TYPE_MISMATCH",
    }
}

/// The field an error is about, when apache-avro says.
fn field_of(error: &CompatibilityError) -> Option<&str> {
    match error {
        CompatibilityError::MissingDefaultValue(field) | CompatibilityError::FieldTypeMismatch(field, _) => Some(field),
        _ => None,
    }
}

/// The error and its causes on one line, so nested field mismatches are explained.
fn chain(error: &CompatibilityError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avro(text: &str) -> Schema {
        Schema::parse_str(text).expect("valid schema")
    }

    fn user(extra_fields: &str) -> Schema {
        avro(&format!(r#"{{"type":"record","name":"User","fields":[{{"name":"id","type":"long"}}{extra_fields}]}}"#))
    }

    fn history(schemas: &[Schema]) -> Vec<Previous<'_>> {
        schemas.iter().zip(1..).map(|(schema, version)| Previous { version, schema, text: "{}" }).collect()
    }

    #[test]
    fn an_added_field_with_a_default_is_backward_compatible() {
        let v1 = [user("")];
        let v2 = user(r#",{"name":"email","type":"string","default":""}"#);

        assert!(check(CompatibilityLevel::Backward, &v2, &history(&v1)).is_empty());
    }

    #[test]
    fn an_added_field_without_a_default_is_not_and_the_message_names_it() {
        let v1 = [user("")];
        let v2 = user(r#",{"name":"email","type":"string"}"#);

        let messages = check(CompatibilityLevel::Backward, &v2, &history(&v1));

        assert!(!messages.is_empty());
        assert!(messages[0].contains("READER_FIELD_MISSING_DEFAULT_VALUE"), "{messages:?}");
        assert!(messages[0].contains("additionalInfo:'email'"), "{messages:?}");
        assert!(messages.contains(&"{oldSchemaVersion: 1}".to_string()), "{messages:?}");
        assert!(messages.contains(&"{compatibility: 'BACKWARD'}".to_string()), "{messages:?}");
    }

    #[test]
    fn a_field_without_a_default_is_still_forward_compatible() {
        // Old readers ignore the new field, so FORWARD accepts what BACKWARD refused.
        let v1 = [user("")];
        let v2 = user(r#",{"name":"email","type":"string"}"#);

        assert!(check(CompatibilityLevel::Forward, &v2, &history(&v1)).is_empty());
        assert!(!check(CompatibilityLevel::Full, &v2, &history(&v1)).is_empty());
    }

    #[test]
    fn a_type_change_is_refused_and_names_the_field() {
        let v1 = [user("")];
        let v2 = avro(r#"{"type":"record","name":"User","fields":[{"name":"id","type":"string"}]}"#);

        let messages = check(CompatibilityLevel::Backward, &v2, &history(&v1));

        assert!(messages[0].contains("TYPE_MISMATCH"), "{messages:?}");
        assert!(messages[0].contains("'id'"), "{messages:?}");
    }

    #[test]
    fn widening_int_to_long_is_backward_but_not_forward() {
        let v1 = [avro(r#"{"type":"record","name":"R","fields":[{"name":"n","type":"int"}]}"#)];
        let v2 = avro(r#"{"type":"record","name":"R","fields":[{"name":"n","type":"long"}]}"#);

        assert!(check(CompatibilityLevel::Backward, &v2, &history(&v1)).is_empty());
        assert!(!check(CompatibilityLevel::Forward, &v2, &history(&v1)).is_empty());
    }

    #[test]
    fn transitive_levels_check_every_version_not_only_the_latest() {
        // v1 has no `email`; v2 adds it with a default; v3 drops the default.
        // v3 reads v2's data (email is present) but not v1's.
        let versions = [user(""), user(r#",{"name":"email","type":"string","default":""}"#)];
        let v3 = user(r#",{"name":"email","type":"string"}"#);

        let latest_only = check(CompatibilityLevel::Backward, &v3, &history(&versions));
        let transitive = check(CompatibilityLevel::BackwardTransitive, &v3, &history(&versions));

        assert!(latest_only.is_empty(), "{latest_only:?}");
        assert!(transitive.contains(&"{oldSchemaVersion: 1}".to_string()), "{transitive:?}");
    }

    #[test]
    fn a_union_losing_a_branch_is_incompatible() {
        let v1 = [avro(r#"{"type":"record","name":"R","fields":[{"name":"n","type":["int","string"]}]}"#)];
        let v2 = avro(r#"{"type":"record","name":"R","fields":[{"name":"n","type":"int"}]}"#);

        assert!(!check(CompatibilityLevel::Backward, &v2, &history(&v1)).is_empty());
    }

    #[test]
    fn none_accepts_anything_and_no_history_is_compatible() {
        let v1 = [avro(r#""string""#)];
        let v2 = avro(r#""int""#);

        assert!(check(CompatibilityLevel::None, &v2, &history(&v1)).is_empty());
        assert!(check(CompatibilityLevel::FullTransitive, &v2, &[]).is_empty());
    }

    #[test]
    fn levels_parse_case_insensitively() {
        assert_eq!(CompatibilityLevel::parse("full_transitive"), Some(CompatibilityLevel::FullTransitive));
        assert_eq!(CompatibilityLevel::parse("FORWARD"), Some(CompatibilityLevel::Forward));
        assert_eq!(CompatibilityLevel::parse("sideways"), None);
    }
}
