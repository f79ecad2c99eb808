//! `schemas/compatibility.toml`: the compatibility level of every registry
//! subject, kept in the repository next to the schemas it governs.
//!
//! The file is read strictly (the `toml` crate, unknown keys refused): two
//! keys, `value` and `key` (the level of every `*-value` and `*-key`
//! subject), and an optional `[subjects]` table of per-subject exceptions.
//! Anything else (an unknown key, an unknown level, malformed TOML) is an
//! error naming where it is, so a typo can never silently leave a subject at
//! the registry's default.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use mamochi_registry::compatibility::CompatibilityLevel;
use serde::Deserialize;

/// The file's name inside a schemas directory.
pub const FILE_NAME: &str = "compatibility.toml";

/// The repository's copy, for `--builtin` runs.
pub const BUILTIN: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/compatibility.toml"));

/// Levels for every subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels {
    value: CompatibilityLevel,
    key: CompatibilityLevel,
    subjects: BTreeMap<String, CompatibilityLevel>,
}

impl Levels {
    /// The level `subject` must have: its exception if it has one, else the
    /// level of its kind (TopicNameStrategy: `*-key` subjects hold keys).
    pub fn level_for(&self, subject: &str) -> CompatibilityLevel {
        match self.subjects.get(subject) {
            Some(level) => *level,
            None if is_key_subject(subject) => self.key,
            None => self.value,
        }
    }

    /// Subjects named in `[subjects]`, to be checked against the catalog.
    pub fn exceptions(&self) -> impl Iterator<Item = &str> {
        self.subjects.keys().map(String::as_str)
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: File = toml::from_str(text).context("schemas/compatibility.toml is not valid")?;
        let level = |name: &str, text: &str| {
            CompatibilityLevel::parse(text).ok_or_else(|| anyhow!("{name}: unknown compatibility level {text:?}"))
        };
        let subjects = file
            .subjects
            .iter()
            .map(|(subject, text)| Ok((subject.clone(), level(subject, text)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { value: level("value", &file.value)?, key: level("key", &file.key)?, subjects })
    }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    value: String,
    key: String,
    #[serde(default)]
    subjects: BTreeMap<String, String>,
}

/// Whether a subject holds a topic's keys (Confluent's TopicNameStrategy).
pub fn is_key_subject(subject: &str) -> bool {
    subject.ends_with("-key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_exceptions_resolve() {
        let levels = Levels::parse(
            "# levels\nvalue = \"BACKWARD_TRANSITIVE\"\nkey = \"full_transitive\" # any case\n\n[subjects]\n\"mamochi.sales-value\" = \"FULL\"\n",
        )
        .expect("parses");
        assert_eq!(levels.level_for("mamochi.stock-value"), CompatibilityLevel::BackwardTransitive);
        assert_eq!(levels.level_for("mamochi.stock-key"), CompatibilityLevel::FullTransitive);
        assert_eq!(levels.level_for("mamochi.sales-value"), CompatibilityLevel::Full);
        assert_eq!(levels.exceptions().collect::<Vec<_>>(), ["mamochi.sales-value"]);
    }

    #[test]
    fn mistakes_are_errors_with_their_line() {
        let unknown_level = Levels::parse("value = \"BACKWARDS\"\nkey = \"FULL\"").expect_err("refused");
        assert!(format!("{unknown_level:#}").contains("BACKWARDS"), "{unknown_level:#}");
        let unknown_key = Levels::parse("value = \"FULL\"\nkey = \"FULL\"\nvalues = \"NONE\"").expect_err("refused");
        assert!(format!("{unknown_key:#}").contains("line 3"), "{unknown_key:#}");
        let twice = Levels::parse("value = \"FULL\"\nvalue = \"NONE\"\nkey = \"FULL\"").expect_err("refused");
        assert!(format!("{twice:#}").contains("line 2"), "{twice:#}");
        assert!(Levels::parse("value = \"FULL\"").is_err(), "the key level is required");
        assert!(Levels::parse("value = FULL\nkey = \"FULL\"").is_err(), "levels are quoted");
    }

    #[test]
    fn the_repository_file_parses() {
        let levels = Levels::parse(BUILTIN).expect("schemas/compatibility.toml parses");
        assert_eq!(levels.level_for("mamochi.sales-key"), CompatibilityLevel::FullTransitive);
    }
}
