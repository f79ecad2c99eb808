//! What each write request must append to the log, decided against the
//! current state without changing it.
//!
//! Guarantees: a plan is either an error (nothing is written) or the exact
//! records Confluent's server would write for the same request, plus the
//! answer to give once they are applied. Plans are valid only against the
//! state they were made from, so the caller makes and writes them under the
//! single-writer lock.

use super::{Store, Version, VersionSpec};
use crate::compatibility::{self, CompatibilityLevel, Previous};
use crate::errors::ApiError;
use crate::kafka_log::{ConfigValue, DeleteSubjectValue, LogRecord, SchemaValue};
use crate::schema::AvroSchema;

/// Records to append, and the answer once they are applied.
#[derive(Debug)]
pub struct Plan<T> {
    pub records: Vec<LogRecord>,
    pub outcome: T,
}

impl<T> Plan<T> {
    fn nothing_to_write(outcome: T) -> Self {
        Self { records: Vec::new(), outcome }
    }
}

impl Store {
    /// Registers `schema` under `subject`; the outcome is its global id.
    /// A schema already among the subject's live versions is not registered
    /// again. A schema known under any subject keeps its id and its text, so
    /// that one id always means one text.
    pub fn plan_register(&self, subject: &str, schema: &AvroSchema) -> Result<Plan<u32>, ApiError> {
        if let Ok(existing) = self.lookup(subject, schema, false) {
            return Ok(Plan::nothing_to_write(existing.entry.id));
        }
        let messages = self.compatibility_messages(subject, schema, None)?;
        if !messages.is_empty() {
            return Err(ApiError::Incompatible(format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                messages.join(", ")
            )));
        }
        let known = self
            .subjects
            .values()
            .flat_map(|versions| versions.values())
            .find(|entry| entry.schema_type.is_none() && entry.identity == schema.identity);
        let (id, text) = match known {
            Some(entry) => (entry.id, entry.schema.clone()),
            None => (self.max_id + 1, schema.text.clone()),
        };
        // Versions continue after soft-deleted ones, as in Confluent.
        let version = self.entries(subject, true).last().map_or(1, |latest| latest.version + 1);
        let value = SchemaValue {
            subject: subject.to_string(),
            version,
            id,
            schema_type: None,
            references: Vec::new(),
            schema: text,
            deleted: false,
        };
        let record = LogRecord::Schema { subject: subject.to_string(), version, value: Some(value) };
        Ok(Plan { records: vec![record], outcome: id })
    }

    /// Checks `schema` against `subject` under the subject's level: against
    /// one version when `only` names it, else against the live versions the
    /// level asks for. Returns Confluent-style messages; empty means compatible.
    pub fn compatibility_messages(
        &self,
        subject: &str,
        schema: &AvroSchema,
        only: Option<VersionSpec>,
    ) -> Result<Vec<String>, ApiError> {
        let versions: Vec<Version<'_>> = match only {
            None | Some(VersionSpec::Latest) if self.entries(subject, false).next().is_none() => Vec::new(),
            None => self.entries(subject, false).collect(),
            Some(spec) => vec![self.version(subject, spec, false)?],
        };
        let previous: Vec<Previous<'_>> = versions
            .iter()
            .filter_map(|version| {
                let parsed = version.entry.parsed.as_ref()?;
                Some(Previous { version: version.version, schema: parsed, text: &version.entry.schema })
            })
            .collect();
        Ok(compatibility::check(self.effective_level(subject), &schema.parsed, &previous))
    }

    /// Deletes `subject`: soft (a `DELETE_SUBJECT` record, and the subject's
    /// level goes with it) or permanent (a tombstone per version, allowed only
    /// after a soft delete). The outcome is the versions deleted.
    pub fn plan_delete_subject(&self, subject: &str, permanent: bool) -> Result<Plan<Vec<u32>>, ApiError> {
        let all = self.versions(subject, true)?;
        let live = self.entries(subject, false).map(|version| version.version).collect::<Vec<_>>();
        let records = if permanent {
            if !live.is_empty() {
                return Err(ApiError::SubjectNotSoftDeleted(subject.to_string()));
            }
            all.iter()
                .map(|&version| LogRecord::Schema { subject: subject.to_string(), version, value: None })
                .collect()
        } else {
            let Some(&latest) = live.last() else {
                return Err(ApiError::SubjectSoftDeleted(subject.to_string()));
            };
            let mut records =
                vec![LogRecord::DeleteSubject(DeleteSubjectValue { subject: subject.to_string(), version: latest })];
            records.extend(self.config_tombstone(subject));
            records
        };
        Ok(Plan { records, outcome: if permanent { all } else { live } })
    }

    /// Deletes one version: soft (rewritten with `deleted: true`; the subject's
    /// level goes when its last live version does) or permanent (a tombstone,
    /// allowed only after a soft delete). `latest` means the latest live
    /// version for a soft delete and the latest of all for a permanent one.
    pub fn plan_delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<Plan<u32>, ApiError> {
        // A numbered version is found even when soft-deleted, so that deleting
        // it again says "already soft deleted" (40406), not "not found".
        let include_deleted = permanent || matches!(spec, VersionSpec::Number(_));
        let target = self.version(subject, spec, include_deleted)?;
        let version = target.version;
        let records = match (permanent, target.entry.deleted) {
            (true, false) => return Err(ApiError::VersionNotSoftDeleted(subject.to_string(), version)),
            (false, true) => return Err(ApiError::VersionSoftDeleted(subject.to_string(), version)),
            (true, true) => vec![LogRecord::Schema { subject: subject.to_string(), version, value: None }],
            (false, false) => {
                let entry = target.entry;
                let value = SchemaValue {
                    subject: subject.to_string(),
                    version,
                    id: entry.id,
                    schema_type: entry.schema_type.clone(),
                    references: entry.references.clone(),
                    schema: entry.schema.clone(),
                    deleted: true,
                };
                let mut records = vec![LogRecord::Schema { subject: subject.to_string(), version, value: Some(value) }];
                let last_live = self.entries(subject, false).all(|live| live.version == version);
                if last_live {
                    records.extend(self.config_tombstone(subject));
                }
                records
            }
        };
        Ok(Plan { records, outcome: version })
    }

    /// Sets the level of `subject`, or the global one for `None`.
    pub fn plan_set_config(&self, subject: Option<&str>, level: CompatibilityLevel) -> Plan<CompatibilityLevel> {
        let value = ConfigValue { compatibility_level: Some(level.name().to_string()) };
        let record = LogRecord::Config { subject: subject.map(str::to_string), value: Some(value) };
        Plan { records: vec![record], outcome: level }
    }

    /// Removes the level set on `subject`; the outcome is the level removed.
    pub fn plan_delete_config(&self, subject: &str) -> Result<Plan<CompatibilityLevel>, ApiError> {
        let level = self.subject_level(subject).ok_or_else(|| ApiError::SubjectNotFound(subject.to_string()))?;
        Ok(Plan { records: self.config_tombstone(subject).into_iter().collect(), outcome: level })
    }

    fn config_tombstone(&self, subject: &str) -> Option<LogRecord> {
        self.subject_level(subject).map(|_| LogRecord::Config { subject: Some(subject.to_string()), value: None })
    }
}
