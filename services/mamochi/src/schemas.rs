//! `mamochi schemas check|register`: the schema-evolution workflow.
//!
//! `check` asks the registry whether each schema in `schemas/` is compatible
//! with what its subject already holds, under the subject's compatibility
//! level, and fails with the registry's reasons when one is not. `register`
//! registers them (the raw file text, so docs and defaults are kept).
//! Both read the schemas compiled into the binary, or a directory given with
//! `--dir` (CI registers the previous commit's `schemas/` that way, then checks
//! the current one against it).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use mamochi_events::topics;
use serde_json::{json, Value};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

#[derive(Debug, clap::Args)]
pub struct SchemasArgs {
    #[command(subcommand)]
    action: Action,
    /// Read schema files from this directory instead of the built-in copies.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Exit non-zero if any schema is incompatible with its registered subject.
    Check,
    /// Register every schema under its subject.
    Register,
}

/// One subject and the schema text we hold for it.
struct Candidate {
    subject: String,
    file: &'static str,
    text: String,
}

pub async fn run(registry_url: &str, args: SchemasArgs) -> anyhow::Result<()> {
    let candidates = candidates(args.dir.as_deref())?;
    let client = reqwest::Client::new();
    match args.action {
        Action::Check => check(&client, registry_url, &candidates).await,
        Action::Register => register(&client, registry_url, &candidates).await,
    }
}

fn candidates(dir: Option<&Path>) -> anyhow::Result<Vec<Candidate>> {
    let mut found = Vec::new();
    for topic in topics::ALL {
        for (subject, source) in topic.subjects() {
            let text = match dir {
                None => source.text.to_string(),
                Some(dir) => {
                    let path = dir.join(source.file);
                    if !path.exists() {
                        println!("{subject:<45} skipped: {} not in {}", source.file, dir.display());
                        continue;
                    }
                    std::fs::read_to_string(&path).with_context(|| format!("while reading {}", path.display()))?
                }
            };
            found.push(Candidate { subject, file: source.file, text });
        }
    }
    Ok(found)
}

async fn check(client: &reqwest::Client, registry: &str, candidates: &[Candidate]) -> anyhow::Result<()> {
    let mut incompatible = 0;
    for candidate in candidates {
        let url = format!("{registry}/compatibility/subjects/{}/versions?verbose=true", candidate.subject);
        let (status, body) = post(client, &url, &candidate.text).await?;
        match (status, body["error_code"].as_i64()) {
            (200, _) if body["is_compatible"] == json!(true) => {
                println!("{:<45} compatible ({})", candidate.subject, candidate.file);
            }
            (200, _) => {
                incompatible += 1;
                println!("{:<45} INCOMPATIBLE ({})", candidate.subject, candidate.file);
                for message in body["messages"].as_array().into_iter().flatten() {
                    println!("    {}", message.as_str().unwrap_or_default());
                }
            }
            (404, Some(40401)) => println!("{:<45} new subject ({})", candidate.subject, candidate.file),
            _ => {
                incompatible += 1;
                println!("{:<45} REFUSED ({}): {}", candidate.subject, candidate.file, describe(status, &body));
            }
        }
    }
    if incompatible > 0 {
        bail!("{incompatible} schema(s) would break existing producers or consumers; see docs/schemas.md");
    }
    println!("all {} schemas are compatible with the registry", candidates.len());
    Ok(())
}

async fn register(client: &reqwest::Client, registry: &str, candidates: &[Candidate]) -> anyhow::Result<()> {
    for candidate in candidates {
        let url = format!("{registry}/subjects/{}/versions", candidate.subject);
        let (status, body) = post(client, &url, &candidate.text).await?;
        if status != 200 {
            bail!("registering {} ({}) failed: {}", candidate.subject, candidate.file, describe(status, &body));
        }
        println!("{:<45} id {}", candidate.subject, body["id"]);
    }
    Ok(())
}

async fn post(client: &reqwest::Client, url: &str, schema: &str) -> anyhow::Result<(u16, Value)> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .json(&json!({ "schema": schema }))
        .send()
        .await
        .with_context(|| format!("while calling the schema registry at {url}"))?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

fn describe(status: u16, body: &Value) -> String {
    match body["message"].as_str() {
        Some(message) => format!("HTTP {status}, error {}: {message}", body["error_code"]),
        None => format!("HTTP {status}"),
    }
}
