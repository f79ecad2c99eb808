//! `schemas/compatibility.toml`: the compatibility level of every registry
//! subject, kept in the repository next to the schemas it governs.
//!
//! The file is read strictly: two keys, `value` and `key` (the level of every
//! `*-value` and `*-key` subject), and an optional `[subjects]` table of
//! per-subject exceptions. Anything else (an unknown key, an unknown level, a
//! malformed line) is an error with its line number, so a typo can never
//! silently leave a subject at the registry's default. Only this small subset
//! of TOML is accepted: quoted string values, bare or quoted keys, comments.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use mamochi_registry::compatibility::CompatibilityLevel;

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
        let mut value = None;
        let mut key = None;
        let mut subjects = BTreeMap::new();
        let mut in_subjects = false;
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                match line {
                    "[subjects]" => in_subjects = true,
                    _ => bail!("line {number}: unknown table {line} (only [subjects] is allowed)"),
                }
                continue;
            }
            let (name, level) = entry(line).map_err(|why| anyhow!("line {number}: {why}: {raw}"))?;
            let level = CompatibilityLevel::parse(&level)
                .ok_or_else(|| anyhow!("line {number}: unknown compatibility level {level:?}"))?;
            let slot = if in_subjects {
                subjects.entry(name.clone()).or_insert(None)
            } else {
                match name.as_str() {
                    "value" => &mut value,
                    "key" => &mut key,
                    _ => bail!("line {number}: unknown key {name:?} (expected `value`, `key` or a [subjects] table)"),
                }
            };
            if slot.replace(level).is_some() {
                bail!("line {number}: {name:?} is set twice");
            }
        }
        Ok(Self {
            value: value.ok_or_else(|| anyhow!("no `value = \"…\"` level for value subjects"))?,
            key: key.ok_or_else(|| anyhow!("no `key = \"…\"` level for key subjects"))?,
            subjects: subjects.into_iter().filter_map(|(name, level)| Some((name, level?))).collect(),
        })
    }
}

/// Whether a subject holds a topic's keys (Confluent's TopicNameStrategy).
pub fn is_key_subject(subject: &str) -> bool {
    subject.ends_with("-key")
}

/// `name = "VALUE"` with an optional trailing comment; `name` bare or quoted.
fn entry(line: &str) -> Result<(String, String), &'static str> {
    let (name, rest) = line.split_once('=').ok_or("expected name = \"LEVEL\"")?;
    let name = name.trim();
    let name = match name.strip_prefix('"').and_then(|name| name.strip_suffix('"')) {
        Some(quoted) => quoted,
        None if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => name,
        None => return Err("a key must be bare (letters, digits, _ and -) or quoted"),
    };
    let rest = rest.trim().strip_prefix('"').ok_or("the level must be a quoted string")?;
    let (value, after) = rest.split_once('"').ok_or("unterminated string")?;
    let after = after.trim();
    if !after.is_empty() && !after.starts_with('#') {
        return Err("unexpected text after the value");
    }
    Ok((name.to_string(), value.to_string()))
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
        assert!(unknown_level.to_string().contains("line 1"), "{unknown_level}");
        let unknown_key = Levels::parse("value = \"FULL\"\nkey = \"FULL\"\nvalues = \"NONE\"").expect_err("refused");
        assert!(unknown_key.to_string().contains("line 3"), "{unknown_key}");
        let twice = Levels::parse("value = \"FULL\"\nvalue = \"NONE\"\nkey = \"FULL\"").expect_err("refused");
        assert!(twice.to_string().contains("twice"), "{twice}");
        assert!(Levels::parse("value = \"FULL\"").is_err(), "the key level is required");
        assert!(Levels::parse("value = FULL\nkey = \"FULL\"").is_err(), "levels are quoted");
    }

    #[test]
    fn the_repository_file_parses() {
        let levels = Levels::parse(BUILTIN).expect("schemas/compatibility.toml parses");
        assert_eq!(levels.level_for("mamochi.sales-key"), CompatibilityLevel::FullTransitive);
    }
}
