//! The registry's state in memory: subjects, their versions, schema ids and
//! compatibility levels, rebuilt by applying the topic's records in order.
//!
//! Pure and synchronous: no I/O, no clock. [`Store::apply`] is the only way
//! state changes, so the state of any instance is a function of the prefix of
//! the log it has read; the planning methods (in [`commands`]) never mutate,
//! they return the records a request must write. Records that make no sense
//! here (a tombstone for an unknown version, a level we do not know) are
//! ignored rather than fatal, because the log may have been written by
//! another registry.

mod commands;

use std::collections::{BTreeMap, BTreeSet};

use apache_avro::Schema;
use serde_json::Value;

pub use commands::Plan;

use crate::compatibility::CompatibilityLevel;
use crate::errors::ApiError;
use crate::kafka_log::{LogRecord, SchemaReference, SchemaValue};
use crate::schema::{identity_of, AvroSchema};

/// Everything the registry knows.
#[derive(Debug, Default)]
pub struct Store {
    subjects: BTreeMap<String, BTreeMap<u32, Entry>>,
    configs: BTreeMap<String, CompatibilityLevel>,
    global: Option<CompatibilityLevel>,
    /// The highest id ever seen, deleted or not, so ids are never reused.
    max_id: u32,
}

/// One version of one subject.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u32,
    /// The text exactly as registered.
    pub schema: String,
    /// `None` for Avro, as Confluent stores it.
    pub schema_type: Option<String>,
    pub references: Vec<SchemaReference>,
    pub deleted: bool,
    /// The parsed schema; `None` for a non-Avro schema another registry wrote.
    parsed: Option<Schema>,
    /// What makes two schemas the same (`schema::AvroSchema::identity`).
    identity: Value,
}

/// A version as the API shows it.
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    pub subject: &'a str,
    pub version: u32,
    pub entry: &'a Entry,
}

/// A version as named in a URL: a number, or `latest` (also spelled `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(u32),
}

impl VersionSpec {
    /// Parses a path segment; anything else is Confluent's 42202.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        if text.eq_ignore_ascii_case("latest") || text == "-1" {
            return Ok(Self::Latest);
        }
        match text.parse::<i32>() {
            Ok(number) if number >= 1 => Ok(Self::Number(number.unsigned_abs())),
            _ => Err(ApiError::InvalidVersion(text.to_string())),
        }
    }
}

impl Store {
    /// Applies one record of the topic.
    pub fn apply(&mut self, record: LogRecord) {
        match record {
            LogRecord::Schema { subject, version, value: Some(value) } => self.put_schema(subject, version, value),
            LogRecord::Schema { subject, version, value: None } => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    versions.remove(&version);
                    if versions.is_empty() {
                        self.subjects.remove(&subject);
                    }
                }
            }
            LogRecord::Config { subject, value } => {
                let level = value.and_then(|value| value.compatibility_level).and_then(|name| {
                    let level = CompatibilityLevel::parse(&name);
                    if level.is_none() {
                        tracing::warn!(%name, "ignoring unknown compatibility level in the log");
                    }
                    level
                });
                match (subject, level) {
                    (None, level) => self.global = level,
                    (Some(subject), Some(level)) => {
                        self.configs.insert(subject, level);
                    }
                    (Some(subject), None) => {
                        self.configs.remove(&subject);
                    }
                }
            }
            LogRecord::DeleteSubject(value) => {
                if let Some(versions) = self.subjects.get_mut(&value.subject) {
                    for entry in versions.range_mut(..=value.version).map(|(_, entry)| entry) {
                        entry.deleted = true;
                    }
                }
            }
            LogRecord::Noop | LogRecord::Ignored(_) => {}
        }
    }

    fn put_schema(&mut self, subject: String, version: u32, value: SchemaValue) {
        let is_avro = value.schema_type.as_deref().is_none_or(|kind| kind.eq_ignore_ascii_case("AVRO"));
        let avro = is_avro.then(|| AvroSchema::parse(&value.schema).ok()).flatten();
        let identity =
            avro.as_ref().map_or_else(|| identity_of(&value.schema, false), |schema| schema.identity.clone());
        let parsed = avro.map(|schema| schema.parsed);
        // As Confluent's reader does: an id already bound to another schema keeps
        // it, so that two writers racing for one id cannot make it mean two texts.
        let clash = self.versions_with_id(value.id, true).into_iter().find(|other| {
            other.entry.identity != identity && (other.subject != subject.as_str() || other.version != version)
        });
        if let Some(other) = clash {
            tracing::error!(
                id = value.id, %subject, version, holder = other.subject, holder_version = other.version,
                "ignoring a schema record whose id already belongs to another schema"
            );
            return;
        }
        self.max_id = self.max_id.max(value.id);
        let entry = Entry {
            id: value.id,
            identity,
            schema: value.schema,
            schema_type: value.schema_type,
            references: value.references,
            deleted: value.deleted,
            parsed,
        };
        self.subjects.entry(subject).or_default().insert(version, entry);
    }

    /// Subjects with at least one version (a non-deleted one unless `include_deleted`).
    pub fn subjects(&self, include_deleted: bool) -> Vec<&str> {
        self.subjects
            .iter()
            .filter(|(_, versions)| versions.values().any(|entry| include_deleted || !entry.deleted))
            .map(|(subject, _)| subject.as_str())
            .collect()
    }

    /// Version numbers of `subject`, ascending; 40401 if there are none.
    pub fn versions(&self, subject: &str, include_deleted: bool) -> Result<Vec<u32>, ApiError> {
        let versions: Vec<u32> = self.entries(subject, include_deleted).map(|version| version.version).collect();
        if versions.is_empty() {
            return Err(ApiError::SubjectNotFound(subject.to_string()));
        }
        Ok(versions)
    }

    /// One version of `subject`: 40401 if the subject has none, 40402 if not this one.
    pub fn version(&self, subject: &str, spec: VersionSpec, include_deleted: bool) -> Result<Version<'_>, ApiError> {
        let found = match spec {
            VersionSpec::Latest => self.entries(subject, include_deleted).last(),
            VersionSpec::Number(number) => self.entries(subject, include_deleted).find(|v| v.version == number),
        };
        found.ok_or_else(|| match spec {
            VersionSpec::Number(number) if self.entries(subject, include_deleted).next().is_some() => {
                ApiError::VersionNotFound(number)
            }
            _ => ApiError::SubjectNotFound(subject.to_string()),
        })
    }

    /// The versions of `subject`, ascending.
    pub fn entries(&self, subject: &str, include_deleted: bool) -> impl Iterator<Item = Version<'_>> + '_ {
        self.subjects
            .get_key_value(subject)
            .into_iter()
            .flat_map(|(subject, versions)| {
                versions.iter().map(move |(version, entry)| Version { subject, version: *version, entry })
            })
            .filter(move |version| include_deleted || !version.entry.deleted)
    }

    /// Every version of every subject that carries schema `id`.
    pub fn versions_with_id(&self, id: u32, include_deleted: bool) -> Vec<Version<'_>> {
        self.subjects
            .iter()
            .flat_map(|(subject, versions)| {
                versions.iter().map(move |(version, entry)| Version { subject, version: *version, entry })
            })
            .filter(|version| version.entry.id == id && (include_deleted || !version.entry.deleted))
            .collect()
    }

    /// The schema with `id`. Soft-deleted versions still serve it: consumers
    /// must decode data written before the delete.
    pub fn schema_by_id(&self, id: u32) -> Option<&Entry> {
        self.versions_with_id(id, true).first().map(|version| version.entry)
    }

    /// The version of `subject` holding the same schema as `schema`: 40401 if
    /// the subject has no versions, 40403 if none is this schema.
    pub fn lookup(&self, subject: &str, schema: &AvroSchema, include_deleted: bool) -> Result<Version<'_>, ApiError> {
        let mut versions = self.entries(subject, include_deleted).peekable();
        if versions.peek().is_none() {
            return Err(ApiError::SubjectNotFound(subject.to_string()));
        }
        versions.filter(|version| version.entry.identity == schema.identity).last().ok_or(ApiError::SchemaNotFound)
    }

    /// The registry-wide level, defaulting to BACKWARD.
    pub fn global_level(&self) -> CompatibilityLevel {
        self.global.unwrap_or(CompatibilityLevel::DEFAULT)
    }

    /// The level set on `subject` itself, if any.
    pub fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.configs.get(subject).copied()
    }

    /// The level that governs `subject`.
    pub fn effective_level(&self, subject: &str) -> CompatibilityLevel {
        self.subject_level(subject).unwrap_or_else(|| self.global_level())
    }

    /// The highest schema id ever seen.
    pub fn max_id(&self) -> u32 {
        self.max_id
    }

    /// How many distinct schema ids some version (soft-deleted or not) holds:
    /// the schemas a client can fetch by id now.
    pub fn schema_count(&self) -> usize {
        self.subjects
            .values()
            .flat_map(|versions| versions.values().map(|entry| entry.id))
            .collect::<BTreeSet<u32>>()
            .len()
    }
}

#[cfg(test)]
mod tests;
