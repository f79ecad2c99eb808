//! Which schema files a `mamochi schemas` run reads, and from where.
//!
//! By default the working tree's `schemas/`: the nearest directory of that
//! name holding `.avsc` files, from the current directory upward, so a check
//! always sees the edits being made, not what was compiled. `--dir` names
//! another directory (CI registers an older commit's files that way);
//! `--builtin` takes the copies compiled into the binary. Every run prints
//! which one it read. Subjects and file names come from the topic catalog.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use mamochi_events::topics;

use super::levels::{self, Levels};

/// Where the schemas come from, as the command line asked.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Read the schema files (and compatibility.toml) from this directory
    /// [default: the nearest `schemas/` from the current directory upward].
    #[arg(long, conflicts_with = "builtin")]
    dir: Option<PathBuf>,
    /// Use the schemas compiled into this binary instead of any files.
    #[arg(long)]
    builtin: bool,
}

/// One subject and the schema text we hold for it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub subject: String,
    pub file: String,
    pub text: String,
}

/// Everything a run reads: the schemas, and the levels if there are any.
#[derive(Debug)]
pub struct SchemaSet {
    pub candidates: Vec<Candidate>,
    pub levels: Option<Levels>,
}

/// A directory of schema files and how it was chosen, for the header line.
struct Directory {
    path: PathBuf,
    shown: String,
    how: &'static str,
}

impl SourceArgs {
    /// Reads the schemas and levels, printing where they came from.
    pub fn load(&self) -> anyhow::Result<SchemaSet> {
        if self.builtin {
            println!("schemas: the copies built into this binary (--builtin)");
            println!("levels:  the compatibility.toml built into this binary");
            let candidates = catalog()
                .map(|(subject, source)| Candidate {
                    subject,
                    file: source.file.to_string(),
                    text: source.text.to_string(),
                })
                .collect();
            let levels = Levels::parse(levels::BUILTIN).context("while reading the built-in compatibility.toml")?;
            return Ok(SchemaSet { candidates, levels: Some(levels) });
        }
        let directory = match &self.dir {
            Some(dir) => Directory { path: dir.clone(), shown: dir.display().to_string(), how: "--dir" },
            None => find_from_current_dir()?,
        };
        read_dir(&directory)
    }
}

/// The levels for a run that checks files outside a schemas directory:
/// `compatibility.toml` beside `file`, else the nearest `schemas/` one.
pub fn levels_near(file: &Path) -> anyhow::Result<Option<Levels>> {
    let beside = file.parent().map(|dir| dir.join(levels::FILE_NAME));
    let path = match beside.filter(|path| path.is_file()) {
        Some(path) => Some(path),
        None => find_from_current_dir().ok().map(|dir| dir.path.join(levels::FILE_NAME)).filter(|path| path.is_file()),
    };
    match path {
        Some(path) => {
            println!("levels:  {}", path.display());
            read_levels(&path).map(Some)
        }
        None => {
            println!("levels:  no {} found; the registry's level applies", levels::FILE_NAME);
            Ok(None)
        }
    }
}

/// Every (subject, built-in schema) of the topic catalog.
pub fn catalog() -> impl Iterator<Item = (String, mamochi_events::SchemaSource)> {
    topics::ALL.iter().flat_map(|topic| topic.subjects())
}

fn find_from_current_dir() -> anyhow::Result<Directory> {
    let cwd = std::env::current_dir().context("while reading the current directory")?;
    for (depth, ancestor) in cwd.ancestors().enumerate() {
        let path = ancestor.join("schemas");
        if holds_avsc(&path) {
            let shown = if depth == 0 { "./schemas".to_string() } else { format!("{}schemas", "../".repeat(depth)) };
            return Ok(Directory { path, shown, how: "nearest schemas/ at or above the current directory" });
        }
    }
    bail!(
        "no schemas/ directory with .avsc files in {} or above it; run from the repository, or pass --dir or --builtin",
        cwd.display()
    )
}

fn holds_avsc(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().any(|entry| entry.path().extension().is_some_and(|ext| ext == "avsc")))
        .unwrap_or(false)
}

fn read_dir(directory: &Directory) -> anyhow::Result<SchemaSet> {
    let dir = &directory.path;
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    println!("schemas: {} ({})", directory.shown, directory.how);
    let levels_path = dir.join(levels::FILE_NAME);
    let levels = if levels_path.is_file() {
        println!("levels:  {}/{}", directory.shown, levels::FILE_NAME);
        Some(read_levels(&levels_path)?)
    } else {
        println!("levels:  no {} in {}; each subject keeps the registry's level", levels::FILE_NAME, directory.shown);
        None
    };
    let mut candidates = Vec::new();
    for (subject, source) in catalog() {
        let path = dir.join(source.file);
        if !path.exists() {
            println!("{subject:<40} skipped: no {} in {}", source.file, directory.shown);
            continue;
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("while reading {}", path.display()))?;
        candidates.push(Candidate { subject, file: source.file.to_string(), text });
    }
    warn_about_unused_files(dir, &directory.shown)?;
    Ok(SchemaSet { candidates, levels })
}

fn read_levels(path: &Path) -> anyhow::Result<Levels> {
    let text = std::fs::read_to_string(path).with_context(|| format!("while reading {}", path.display()))?;
    let levels = Levels::parse(&text).with_context(|| format!("in {}", path.display()))?;
    let known: Vec<String> = catalog().map(|(subject, _)| subject).collect();
    for subject in levels.exceptions() {
        if !known.iter().any(|known| known == subject) {
            bail!("{}: [subjects] names {subject:?}, which is no subject of the topic catalog", path.display());
        }
    }
    Ok(levels)
}

/// A schema file no topic uses is never registered; say so rather than
/// let a user believe it was checked.
fn warn_about_unused_files(dir: &Path, shown: &str) -> anyhow::Result<()> {
    let used: Vec<&str> = catalog().map(|(_, source)| source.file).collect();
    let mut unused = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("while listing {}", dir.display()))? {
        let name = entry.context("while listing the schemas directory")?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".avsc") && !used.contains(&name.as_str()) {
            unused.push(name);
        }
    }
    unused.sort();
    for name in unused {
        println!("{shown}/{name}: not checked: no topic in services/events/src/topics.rs uses it yet");
    }
    Ok(())
}
