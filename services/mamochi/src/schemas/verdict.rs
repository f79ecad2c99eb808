//! What registering one schema file under its subject would do, judged
//! under the repository's compatibility level.
//!
//! The registry is the judge whenever the subject already has the level
//! `compatibility.toml` asks for. When it does not yet (`schemas register`
//! sets it), the same checker the registry runs is applied here, under the
//! repository's level, to every version the registry holds: a check never
//! passes an edit that `register` will then refuse. Key schemas get one rule
//! more: their encoding never changes (see [`KEY_RULE`]).

use mamochi_registry::compatibility::{self, CompatibilityLevel, Previous};
use mamochi_registry::schema::{document_of, AvroSchema};

use super::levels::is_key_subject;
use super::registry::{Registered, Registry};

/// Why a key schema's encoding may not change.
pub const KEY_RULE: &str = "key schemas never change: a key's bytes decide its partition, so a changed key \
schema would send a vendor's new events to another partition than its old ones and break their order; \
keep the key as registered, or give the new key a new topic (docs/schemas.md, \"Keys never change\")";

/// The outcome for one subject.
#[derive(Debug)]
pub enum Verdict {
    /// The subject has no version yet: the file will be its version 1.
    NewSubject,
    /// The file is the latest registered version (formatting aside).
    Unchanged { version: u32 },
    /// A new version the level accepts.
    Compatible { level: String },
    /// A new version the level refuses, with the registry's reasons.
    Incompatible { level: String, messages: Vec<String> },
    /// A key schema whose encoding differs from the registered one.
    KeyChanged { version: u32 },
    /// The file is not a valid Avro schema.
    Invalid(String),
}

impl Verdict {
    /// Whether `register` may go ahead with this file.
    pub fn passes(&self) -> bool {
        matches!(self, Self::NewSubject | Self::Unchanged { .. } | Self::Compatible { .. })
    }
}

/// A verdict, and the registry's own level when it differs from the repository's.
#[derive(Debug)]
pub struct Judgement {
    pub verdict: Verdict,
    pub level_note: Option<String>,
}

/// Judges `text` as the next version of `subject`, under `wanted` (the
/// repository's level), or the registry's level when there is none.
pub async fn judge(
    registry: &Registry,
    subject: &str,
    text: &str,
    wanted: Option<CompatibilityLevel>,
) -> anyhow::Result<Judgement> {
    let plain = |verdict| Ok(Judgement { verdict, level_note: None });
    let schema = match AvroSchema::parse(text) {
        Ok(schema) => schema,
        Err(why) => return plain(Verdict::Invalid(why)),
    };
    let Some(latest) = registry.latest(subject).await? else {
        return plain(Verdict::NewSubject);
    };
    if document_of(&latest.schema) == schema.document {
        return plain(Verdict::Unchanged { version: latest.version });
    }
    if is_key_subject(subject) && changes_encoding(&latest, &schema) {
        return plain(Verdict::KeyChanged { version: latest.version });
    }
    let registry_level = registry.effective_level(subject).await?;
    let (level, messages, level_note) = match wanted {
        Some(wanted) if !wanted.name().eq_ignore_ascii_case(&registry_level) => {
            let history = registry.all_versions(subject).await?;
            let note = format!(
                "the registry holds this subject at {registry_level}: judged here under {} instead, \
                 which `mamochi schemas register` sets",
                wanted.name()
            );
            (wanted.name().to_string(), judge_locally(wanted, &schema, &history), Some(note))
        }
        _ => (registry_level.to_ascii_uppercase(), registry.incompatibilities(subject, text).await?, None),
    };
    let verdict =
        if messages.is_empty() { Verdict::Compatible { level } } else { Verdict::Incompatible { level, messages } };
    Ok(Judgement { verdict, level_note })
}

/// Whether two key schemas write different bytes for the same key: their
/// Parsing Canonical Forms differ (docs and formatting do not count).
fn changes_encoding(latest: &Registered, schema: &AvroSchema) -> bool {
    match AvroSchema::parse(&latest.schema) {
        Ok(registered) => registered.parsed.canonical_form() != schema.parsed.canonical_form(),
        // A registered key we cannot read as Avro is different by definition.
        Err(_) => true,
    }
}

/// The registry's checker, applied here: the Avro versions of `history`
/// (oldest first), as the registry itself would under `level`.
fn judge_locally(level: CompatibilityLevel, schema: &AvroSchema, history: &[Registered]) -> Vec<String> {
    let parsed: Vec<(u32, AvroSchema)> = history
        .iter()
        .filter(|version| version.schema_type.as_deref().is_none_or(|kind| kind.eq_ignore_ascii_case("AVRO")))
        .filter_map(|version| Some((version.version, AvroSchema::parse(&version.schema).ok()?)))
        .collect();
    let previous: Vec<Previous<'_>> = parsed
        .iter()
        .map(|(version, old)| Previous { version: *version, schema: &old.parsed, text: &old.text })
        .collect();
    compatibility::check(level, &schema.parsed, &previous)
}
