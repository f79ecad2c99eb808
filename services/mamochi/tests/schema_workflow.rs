//! docs/schemas.md's workflow, run as its users run it: the real `mamochi`
//! binary, started from inside a temporary copy of the repository's
//! `schemas/`, against a schema registry of the test's own (in-process, on a
//! fresh `_schemas`-like topic), so nothing touches the shared registry.
//!
//! Each test edits the copy the way the docs say (a field without a default,
//! then with one; a key schema; a compatibility level) and asserts what the
//! commands print and how they exit.

use std::path::{Path, PathBuf};
use std::process::Output;

use mamochi_common::shutdown::Shutdown;
use mamochi_common::Settings;
use serde_json::Value;

/// A registry on a topic of its own, stopped and its topic deleted at the end.
struct PrivateRegistry {
    url: String,
    topic: String,
    /// The writer-election topic the registry creates beside its state topic.
    election_topic: String,
    shutdown: Shutdown,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl PrivateRegistry {
    async fn start() -> Self {
        let topic = format!("_schemas-workflow-test-{}", uuid::Uuid::new_v4().simple());
        let mut settings = Settings::load(None).expect("settings load from the environment (stack env)");
        settings.registry.topic = topic.clone();
        settings.registry.listen = "127.0.0.1:0".to_string();
        let election_topic = mamochi_registry::election::ElectionNames::new(&settings).topic;
        let app = mamochi_registry::Application::build(&settings).await.expect("the registry starts");
        let url = format!("http://127.0.0.1:{}", app.port());
        let shutdown = Shutdown::new();
        let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        Self { url, topic, election_topic, shutdown, server }
    }

    async fn get(&self, path: &str) -> Value {
        let response = reqwest::get(format!("{}{path}", self.url)).await.expect("the registry answers");
        response.json().await.expect("a JSON answer")
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.expect("the server task ends").expect("the registry stops cleanly");
        let settings = Settings::load(None).expect("settings");
        let admin = mamochi_common::kafka::admin(&settings.kafka).expect("admin client");
        let options = rdkafka::admin::AdminOptions::new();
        for result in admin
            .delete_topics(&[self.topic.as_str(), self.election_topic.as_str()], &options)
            .await
            .expect("delete request")
        {
            result.expect("the test's registry topics are deleted");
        }
    }
}

/// A temporary directory holding a copy of the repository's `schemas/` and
/// an empty `services/` to run commands from (so `schemas/` is found upward).
struct Workdir {
    root: PathBuf,
}

impl Workdir {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!("mamochi-schema-workflow-{}", uuid::Uuid::new_v4().simple()));
        copy_dir(&repository_schemas(), &root.join("schemas"));
        std::fs::create_dir_all(root.join("services")).expect("services/ in the work directory");
        Self { root }
    }

    fn schemas(&self) -> PathBuf {
        self.root.join("schemas")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.schemas().join(name)
    }

    /// Replaces `from` (which must occur exactly once) with `to` in a schema file.
    fn edit(&self, name: &str, from: &str, to: &str) {
        let path = self.file(name);
        let text = std::fs::read_to_string(&path).expect("schema file");
        assert_eq!(text.matches(from).count(), 1, "{from:?} occurs once in {name}");
        std::fs::write(&path, text.replace(from, to)).expect("edited");
    }

    /// Runs `mamochi <args>` from `services/` inside the copy, as a user would.
    async fn mamochi(&self, registry: &PrivateRegistry, args: &[&str]) -> Run {
        self.mamochi_in(&self.root.join("services"), registry, args).await
    }

    async fn mamochi_in(&self, cwd: &Path, registry: &PrivateRegistry, args: &[&str]) -> Run {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_mamochi"))
            .args(args)
            .current_dir(cwd)
            .env("MAMOCHI__REGISTRY__URL", &registry.url)
            // Errors print as users see them, without a backtrace.
            .env_remove("RUST_BACKTRACE")
            .output()
            .await
            .expect("mamochi runs");
        Run::from(args, output)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// What one command printed and how it exited.
struct Run {
    command: String,
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(args: &[&str], output: Output) -> Self {
        Self {
            command: format!("mamochi {}", args.join(" ")),
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn assert_success(&self) -> &Self {
        assert!(self.success, "{} failed:\n{}\n{}", self.command, self.stdout, self.stderr);
        self
    }

    fn assert_failure(&self) -> &Self {
        assert!(!self.success, "{} should have failed:\n{}", self.command, self.stdout);
        self
    }

    /// The line about `subject` (the first one starting with it).
    fn line(&self, subject: &str) -> &str {
        self.stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(subject))
            .unwrap_or_else(|| panic!("{} printed no line for {subject}:\n{}", self.command, self.stdout))
    }

    /// The indented lines printed under `subject`'s line.
    fn details(&self, subject: &str) -> String {
        let mut lines = self.stdout.lines().skip_while(|line| line.split_whitespace().next() != Some(subject)).skip(1);
        let mut details = Vec::new();
        for line in lines.by_ref() {
            if !line.starts_with("    ") {
                break;
            }
            details.push(line);
        }
        details.join("\n")
    }
}

fn repository_schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("target directory");
    for entry in std::fs::read_dir(from).expect("schemas/ of the repository") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copied");
    }
}

const NO_DEFAULT_TIP: &str =
    r#"{"name": "tip_clp", "type": "long", "doc": "Tip left by the customer, in Chilean pesos."}"#;
const DEFAULT_TIP: &str =
    r#"{"name": "tip_clp", "type": "long", "default": 0, "doc": "Tip left by the customer, in Chilean pesos."}"#;
const LAST_SALE_FIELD: &str = r#""doc": "When the gateway accepted it; start of the end-to-end latency."}"#;

/// The registry as a running stack has it: every schema of the previous
/// release registered, a release without the cart-stock topic and without
/// `compatibility.toml` (so every subject is at the registry's default level).
async fn registry_with_previous_release(work: &Workdir) -> PrivateRegistry {
    let registry = PrivateRegistry::start().await;
    let previous = work.root.join("previous-release");
    copy_dir(&work.schemas(), &previous);
    std::fs::remove_file(previous.join("cart_stock_level.avsc"))
        .expect("the previous release had no cart-stock schema");
    std::fs::remove_file(previous.join("compatibility.toml")).expect("nor levels: its subjects are at the registry's");
    let previous = previous.to_string_lossy().into_owned();
    work.mamochi(&registry, &["schemas", "register", "--dir", &previous]).await.assert_success();
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_workflow_refuses_a_field_without_default_and_registers_it_with_one() {
    // Arrange: docs/schemas.md assumes a running stack that holds the current schemas.
    let work = Workdir::new();
    let registry = registry_with_previous_release(&work).await;

    // A new schema file (a new topic's) is a new subject; the untouched ones are unchanged.
    let untouched = work.mamochi(&registry, &["schemas", "check"]).await;
    untouched.assert_success();
    assert!(untouched.stdout.starts_with("schemas: ../schemas (nearest schemas/ at or above"), "{}", untouched.stdout);
    assert!(untouched.stdout.contains("levels:  ../schemas/compatibility.toml"), "{}", untouched.stdout);
    assert!(untouched.line("mamochi.cart-stock-value").contains("new subject (cart_stock_level.avsc)"));
    assert!(untouched.line("mamochi.sales-value").contains("unchanged (sale_recorded.avsc is version 1)"));

    // Step 1: add a field without a default. Step 2: check.
    work.edit("sale_recorded.avsc", LAST_SALE_FIELD, &format!("{LAST_SALE_FIELD},\n    {NO_DEFAULT_TIP}"));
    let refused = work.mamochi(&registry, &["schemas", "check"]).await;
    refused.assert_failure();
    assert!(refused
        .line("mamochi.sales-value")
        .contains("INCOMPATIBLE under BACKWARD_TRANSITIVE (sale_recorded.avsc)"));
    let reasons = refused.details("mamochi.sales-value");
    assert!(reasons.contains("READER_FIELD_MISSING_DEFAULT_VALUE") && reasons.contains("tip_clp"), "{reasons}");
    assert!(refused.stderr.contains("1 of 22 schemas would not be accepted"), "{}", refused.stderr);

    // The same edit through the other verbs.
    let diff = work.mamochi(&registry, &["schemas", "diff"]).await;
    diff.assert_success();
    assert_eq!(diff.details("mamochi.sales-value"), "    + tip_clp: long, no default");
    let file = work.file("sale_recorded.avsc").to_string_lossy().into_owned();
    let single = ["schemas", "test-compatibility", "--subject", "mamochi.sales-value", "--file", &file];
    work.mamochi(&registry, &single).await.assert_failure();

    // The built-in copies, only on request, and they do not see the edit.
    let builtin = work.mamochi(&registry, &["schemas", "check", "--builtin"]).await;
    builtin.assert_success();
    assert!(builtin.stdout.starts_with("schemas: the copies built into this binary"), "{}", builtin.stdout);
    assert!(builtin.line("mamochi.sales-value").contains("unchanged"));

    // Give the field a default: compatible.
    work.edit("sale_recorded.avsc", NO_DEFAULT_TIP, DEFAULT_TIP);
    let accepted = work.mamochi(&registry, &["schemas", "check"]).await;
    accepted.assert_success();
    assert!(accepted.line("mamochi.sales-value").contains("compatible under BACKWARD_TRANSITIVE (sale_recorded.avsc)"));
    work.mamochi(&registry, &single).await.assert_success();

    // Register: levels from compatibility.toml, then the new version.
    let registered = work.mamochi(&registry, &["schemas", "register"]).await;
    registered.assert_success();
    assert!(
        registered.stdout.contains("new version (sale_recorded.avsc, level BACKWARD_TRANSITIVE set)"),
        "{}",
        registered.stdout
    );
    assert_eq!(registry.get("/config/mamochi.sales-value").await["compatibilityLevel"], "BACKWARD_TRANSITIVE");
    assert_eq!(registry.get("/config/mamochi.sales-key").await["compatibilityLevel"], "FULL_TRANSITIVE");
    assert_eq!(registry.get("/subjects/mamochi.sales-value/versions").await, serde_json::json!([1, 2]));

    // Download: every registered version, as registered.
    let downloads = work.root.join("downloaded");
    let downloads_arg = downloads.to_string_lossy().into_owned();
    work.mamochi(&registry, &["schemas", "download", "--dir", &downloads_arg]).await.assert_success();
    let version =
        |n: u32| std::fs::read_to_string(downloads.join(format!("mamochi.sales-value/v{n}.avsc"))).expect("downloaded");
    assert_eq!(version(1), std::fs::read_to_string(repository_schemas().join("sale_recorded.avsc")).expect("original"));
    assert_eq!(version(2), std::fs::read_to_string(work.file("sale_recorded.avsc")).expect("edited"));
    let after = work.mamochi(&registry, &["schemas", "check"]).await;
    assert!(after.assert_success().line("mamochi.sales-value").contains("unchanged (sale_recorded.avsc is version 2)"));

    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_schema_edit_is_refused_because_keys_never_change() {
    // Arrange
    let work = Workdir::new();
    let registry = registry_with_previous_release(&work).await;
    // An optional field with a default: even FULL_TRANSITIVE would take it,
    // but it changes every key's bytes, and so the partition each key maps to.
    let only_field = r#""doc": "The vendor (member) the event belongs to."}"#;
    work.edit(
        "vendor_key.avsc",
        only_field,
        &format!(r#"{only_field}, {{"name": "region", "type": ["null", "string"], "default": null}}"#),
    );

    // Act
    let check = work.mamochi(&registry, &["schemas", "check"]).await;
    let register = work.mamochi(&registry, &["schemas", "register"]).await;

    // Assert
    check.assert_failure();
    assert!(check.line("mamochi.sales-key").contains("REFUSED (vendor_key.avsc changes the key schema of version 1)"));
    assert!(check
        .details("mamochi.sales-key")
        .contains("key schemas never change: a key's bytes decide its partition"));
    register.assert_failure();
    assert!(register.stderr.contains("nothing was registered"), "{}", register.stderr);
    assert_eq!(registry.get("/subjects/mamochi.sales-key/versions").await, serde_json::json!([1]));

    // A doc-only edit writes the same bytes: not a key change.
    work.edit("vendor_key.avsc", r#", {"name": "region", "type": ["null", "string"], "default": null}"#, "");
    work.edit("vendor_key.avsc", "The vendor (member) the event belongs to.", "The member the event belongs to.");
    let docs_only = work.mamochi(&registry, &["schemas", "check"]).await;
    assert!(docs_only.assert_success().line("mamochi.sales-key").contains("compatible under FULL_TRANSITIVE"));

    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_level_in_compatibility_toml_decides_against_which_versions_a_schema_is_checked() {
    // Arrange: v2 adds an int `tip`, v3 drops it; the file brings `tip` back as a
    // string. It reads v3's records (default) but not v2's (an int is no string).
    let work = Workdir::new();
    let registry = registry_with_previous_release(&work).await;
    let with_tip = |tip: &str| format!("{LAST_SALE_FIELD},\n    {tip}");
    work.edit("sale_recorded.avsc", LAST_SALE_FIELD, &with_tip(r#"{"name": "tip", "type": "int", "default": 0}"#));
    work.mamochi(&registry, &["schemas", "register"]).await.assert_success();
    work.edit("sale_recorded.avsc", &with_tip(r#"{"name": "tip", "type": "int", "default": 0}"#), LAST_SALE_FIELD);
    // A doc edit too, or this version would be version 1 again, not a new one.
    work.edit("sale_recorded.avsc", "A vendor recorded a sale. The", "A vendor recorded a sale: the");
    work.mamochi(&registry, &["schemas", "register"]).await.assert_success();
    assert_eq!(registry.get("/subjects/mamochi.sales-value/versions").await, serde_json::json!([1, 2, 3]));
    work.edit("sale_recorded.avsc", LAST_SALE_FIELD, &with_tip(r#"{"name": "tip", "type": "string", "default": ""}"#));

    // Act: the repository's level (BACKWARD_TRANSITIVE), then BACKWARD.
    let transitive = work.mamochi(&registry, &["schemas", "check"]).await;
    let levels = work.file("compatibility.toml");
    let text = std::fs::read_to_string(&levels).expect("compatibility.toml");
    std::fs::write(&levels, text.replace(r#"value = "BACKWARD_TRANSITIVE""#, r#"value = "BACKWARD""#)).expect("edited");
    let latest_only = work.mamochi(&registry, &["schemas", "check"]).await;

    // Assert
    transitive.assert_failure();
    assert!(transitive.line("mamochi.sales-value").contains("INCOMPATIBLE under BACKWARD_TRANSITIVE"));
    assert!(
        transitive.details("mamochi.sales-value").contains("{oldSchemaVersion: 2}"),
        "only one version back? {}",
        transitive.stdout
    );
    latest_only.assert_success();
    assert!(latest_only.line("mamochi.sales-value").contains("compatible under BACKWARD (sale_recorded.avsc)"));
    assert!(latest_only
        .details("mamochi.sales-value")
        .contains("level: the registry holds this subject at BACKWARD_TRANSITIVE"));

    registry.stop().await;
}

/// One block of docs/schemas.md's worked example, in document order.
#[derive(Debug)]
enum Step {
    /// A field to add after `recorded_at` in `sale_recorded.avsc` (or, after
    /// the first, to put in place of the one added before).
    Field(String),
    /// `$ mamochi …` and what it prints (stdout, then stderr).
    Command { args: Vec<String>, output: String },
}

fn worked_example() -> Vec<Step> {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas.md"))
        .expect("docs/schemas.md");
    let section =
        docs.split("\n## ").find(|section| section.starts_with("Worked example")).expect("a Worked example section");
    let mut steps = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let kind = match line.trim() {
            "```json" => "json",
            "```console" => "console",
            _ => continue,
        };
        let block: Vec<&str> = lines.by_ref().take_while(|line| line.trim() != "```").collect();
        if kind == "json" {
            steps.push(Step::Field(block.join("\n").trim().to_string()));
            continue;
        }
        let (command, output) = block.split_first().expect("a console block starts with its command");
        let args = command.strip_prefix("$ mamochi ").expect("the command is `$ mamochi …`");
        steps.push(Step::Command {
            args: args.split_whitespace().map(str::to_string).collect(),
            output: output.join("\n"),
        });
    }
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worked_example_in_the_docs_prints_what_the_docs_show() {
    // Arrange: the docs start from a stack that holds the current schemas, at
    // their levels; commands run from the repository root.
    let work = Workdir::new();
    let registry = PrivateRegistry::start().await;
    work.mamochi_in(&work.root, &registry, &["schemas", "register"]).await.assert_success();
    let steps = worked_example();
    assert!(steps.iter().filter(|step| matches!(step, Step::Command { .. })).count() >= 4, "{steps:?}");

    // Act and assert, block by block.
    let mut added: Option<String> = None;
    for step in steps {
        match step {
            Step::Field(field) => {
                match &added {
                    None => {
                        work.edit("sale_recorded.avsc", LAST_SALE_FIELD, &format!("{LAST_SALE_FIELD},\n    {field}"))
                    }
                    Some(before) => work.edit("sale_recorded.avsc", before, &field),
                }
                added = Some(field);
            }
            Step::Command { args, output } => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run = work.mamochi_in(&work.root, &registry, &args).await;
                let printed = format!("{}{}", run.stdout, run.stderr);
                assert!(
                    printed.trim_end() == output.trim_end(),
                    "docs/schemas.md shows other output for `{}`; it prints:\n{printed}",
                    run.command
                );
                let failed = output.lines().any(|line| line.starts_with("Error: "));
                assert_eq!(run.success, !failed, "exit status of {}", run.command);
            }
        }
    }

    registry.stop().await;
}
