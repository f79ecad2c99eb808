//! `mamochi schemas`: the schema-evolution workflow against the registry.
//!
//! - `check`: would every schema file be accepted as its subject's next
//!   version, under the level `compatibility.toml` gives it? Exits non-zero
//!   with the registry's reasons when one would not, and refuses any change to
//!   a key schema's encoding.
//! - `register`: the same check, then (only if every file passes) sets each
//!   subject's level from `compatibility.toml` and registers the raw file text,
//!   so docs and defaults are kept.
//! - `diff`: what each file changes against its subject's latest version,
//!   field by field.
//! - `download`: every registered version of every subject, as files.
//! - `test-compatibility`: `check` for one file and one subject.
//!
//! `check`, `register` and `diff` read the working tree's `schemas/` (found
//! from the current directory upward), another directory with `--dir`, or the
//! copies compiled into the binary with `--builtin`; every run prints which.

mod diff;
mod levels;
mod registry;
mod source;
mod verdict;

use std::path::PathBuf;

use anyhow::{bail, Context};
use mamochi_registry::schema::document_of;

use registry::Registry;
use source::{Candidate, SourceArgs};
use verdict::{judge, Judgement, Verdict};

/// Width of the subject column, enough for the catalog's longest subject.
const SUBJECT_WIDTH: usize = 38;

#[derive(Debug, clap::Args)]
pub struct SchemasArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Exit non-zero if any schema file would not be accepted as its subject's next version.
    Check(SourceArgs),
    /// Check, then set every subject's level and register every schema file.
    Register(SourceArgs),
    /// Show what each schema file changes against its subject's latest version, field by field
    /// (subjects whose file is unchanged are only counted).
    Diff(SourceArgs),
    /// Write every registered version of every subject to files under --dir.
    Download(DownloadArgs),
    /// Check one schema file as the next version of one subject.
    TestCompatibility(TestArgs),
}

#[derive(Debug, clap::Args)]
struct DownloadArgs {
    /// Directory to write `<subject>/v<version>.avsc` files into (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Download only these subjects [default: every subject of the topic catalog].
    #[arg(long = "subject")]
    subjects: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    /// The registry subject, e.g. `mamochi.sales-value`.
    #[arg(long)]
    subject: String,
    /// The schema file to test.
    #[arg(long)]
    file: PathBuf,
}

pub async fn run(registry_url: &str, args: SchemasArgs) -> anyhow::Result<()> {
    let registry = Registry::new(registry_url);
    match args.action {
        Action::Check(source) => check(&registry, &source).await,
        Action::Register(source) => register(&registry, &source).await,
        Action::Diff(source) => diff(&registry, &source).await,
        Action::Download(args) => download(&registry, &args).await,
        Action::TestCompatibility(args) => test_compatibility(&registry, &args).await,
    }
}

async fn check(registry: &Registry, source: &SourceArgs) -> anyhow::Result<()> {
    let set = source.load()?;
    let judgements = judge_all(registry, &set, Show::Every).await?;
    let failed = judgements.iter().filter(|(_, judgement)| !judgement.verdict.passes()).count();
    if failed > 0 {
        bail!("{failed} of {} schemas would not be accepted by the registry; see docs/schemas.md", judgements.len());
    }
    println!("{}; all compatible with the registry", summary(&judgements));
    Ok(())
}

async fn register(registry: &Registry, source: &SourceArgs) -> anyhow::Result<()> {
    let set = source.load()?;
    // Nothing is written unless every file passes, so a refused edit never
    // leaves the registry half updated.
    let judgements = judge_all(registry, &set, Show::Refused).await?;
    let failed = judgements.iter().filter(|(_, judgement)| !judgement.verdict.passes()).count();
    if failed > 0 {
        bail!("{failed} of {} schemas would not be accepted; nothing was registered", judgements.len());
    }
    for (candidate, judgement) in &judgements {
        let level = match &set.levels {
            Some(levels) => {
                let wanted = levels.level_for(&candidate.subject).name();
                let current = registry.subject_level(&candidate.subject).await?;
                if current.as_deref().is_some_and(|current| current.eq_ignore_ascii_case(wanted)) {
                    format!("level {wanted} kept")
                } else {
                    registry.set_level(&candidate.subject, wanted).await?;
                    format!("level {wanted} set")
                }
            }
            None => "registry's level".to_string(),
        };
        let id = registry.register(&candidate.subject, &candidate.text).await?;
        let what = match judgement.verdict {
            Verdict::NewSubject => "new subject",
            Verdict::Unchanged { .. } => "unchanged",
            _ => "new version",
        };
        println!("{:<SUBJECT_WIDTH$} id {id}, {what} ({}, {level})", candidate.subject, candidate.file);
    }
    println!("{}; registered", summary(&judgements));
    Ok(())
}

/// Which verdicts `judge_all` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    Every,
    Refused,
}

/// Judges every candidate, printing verdicts as it goes.
async fn judge_all(
    registry: &Registry,
    set: &source::SchemaSet,
    show: Show,
) -> anyhow::Result<Vec<(Candidate, Judgement)>> {
    let mut judgements = Vec::new();
    for candidate in &set.candidates {
        let wanted = set.levels.as_ref().map(|levels| levels.level_for(&candidate.subject));
        let judgement = judge(registry, &candidate.subject, &candidate.text, wanted).await?;
        if show == Show::Every || !judgement.verdict.passes() {
            print_judgement(&candidate.subject, &candidate.file, &judgement);
        }
        judgements.push((candidate.clone(), judgement));
    }
    Ok(judgements)
}

fn print_judgement(subject: &str, file: &str, judgement: &Judgement) {
    let line = match &judgement.verdict {
        Verdict::NewSubject => format!("new subject ({file})"),
        Verdict::Unchanged { version } => format!("unchanged ({file} is version {version})"),
        Verdict::Compatible { level } => format!("compatible under {level} ({file})"),
        Verdict::Incompatible { level, .. } => format!("INCOMPATIBLE under {level} ({file})"),
        Verdict::KeyChanged { version } => format!("REFUSED ({file} changes the key schema of version {version})"),
        Verdict::Invalid(why) => format!("INVALID ({file}): {why}"),
    };
    println!("{subject:<SUBJECT_WIDTH$} {line}");
    match &judgement.verdict {
        Verdict::Incompatible { messages, .. } => {
            // The old schema's whole text adds nothing the file and the version number do not say.
            for message in messages.iter().filter(|message| !message.starts_with("{oldSchema:")) {
                println!("    {message}");
            }
        }
        Verdict::KeyChanged { .. } => println!("    {}", verdict::KEY_RULE),
        _ => {}
    }
    if let Some(note) = &judgement.level_note {
        println!("    level: {note}");
    }
}

fn summary(judgements: &[(Candidate, Judgement)]) -> String {
    let count =
        |wanted: fn(&Verdict) -> bool| judgements.iter().filter(|(_, judgement)| wanted(&judgement.verdict)).count();
    format!(
        "{} schemas: {} unchanged, {} changed compatibly, {} new subjects",
        judgements.len(),
        count(|verdict| matches!(verdict, Verdict::Unchanged { .. })),
        count(|verdict| matches!(verdict, Verdict::Compatible { .. })),
        count(|verdict| matches!(verdict, Verdict::NewSubject)),
    )
}

async fn diff(registry: &Registry, source: &SourceArgs) -> anyhow::Result<()> {
    let set = source.load()?;
    let mut changed = 0;
    for candidate in &set.candidates {
        let (subject, file) = (&candidate.subject, &candidate.file);
        let Some(latest) = registry.latest(subject).await? else {
            println!("{subject:<SUBJECT_WIDTH$} new subject ({file}): no registered version to compare with");
            changed += 1;
            continue;
        };
        let lines = diff::diff(&document_of(&latest.schema), &document_of(&candidate.text));
        if lines.is_empty() {
            // Only what differs is worth reading; the summary counts the rest.
            continue;
        }
        changed += 1;
        println!("{subject:<SUBJECT_WIDTH$} {file} against version {} (id {}):", latest.version, latest.id);
        for line in lines {
            println!("    {line}");
        }
    }
    let total = set.candidates.len();
    println!("{total} schemas: {} unchanged, {changed} changed or new", total - changed);
    Ok(())
}

async fn download(registry: &Registry, args: &DownloadArgs) -> anyhow::Result<()> {
    let subjects: Vec<String> = if args.subjects.is_empty() {
        source::catalog().map(|(subject, _)| subject).collect()
    } else {
        args.subjects.clone()
    };
    let mut written = 0;
    for subject in &subjects {
        let versions = registry.all_versions(subject).await?;
        if versions.is_empty() {
            println!("{subject:<SUBJECT_WIDTH$} not registered");
            continue;
        }
        let dir = args.dir.join(subject);
        std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
        let mut names = Vec::new();
        for version in &versions {
            let name = format!("v{}.avsc", version.version);
            let path = dir.join(&name);
            // The text exactly as registered: what producers wrote with.
            std::fs::write(&path, &version.schema).with_context(|| format!("while writing {}", path.display()))?;
            names.push(format!("{name} (id {})", version.id));
            written += 1;
        }
        println!("{subject:<SUBJECT_WIDTH$} {}/{}", dir.display(), names.join(", "));
    }
    let plural = |count: usize, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
    println!(
        "{} of {} written under {}",
        plural(written, "version"),
        plural(subjects.len(), "subject"),
        args.dir.display()
    );
    Ok(())
}

async fn test_compatibility(registry: &Registry, args: &TestArgs) -> anyhow::Result<()> {
    println!("schema:  {}", args.file.display());
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("while reading {}", args.file.display()))?;
    let levels = source::levels_near(&args.file)?;
    let wanted = levels.as_ref().map(|levels| levels.level_for(&args.subject));
    let judgement = judge(registry, &args.subject, &text, wanted).await?;
    let file = args.file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    print_judgement(&args.subject, &file, &judgement);
    if !judgement.verdict.passes() {
        bail!("{} would not be accepted under {}", args.file.display(), args.subject);
    }
    Ok(())
}
