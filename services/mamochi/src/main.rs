//! `mamochi`: one binary for every MAMOCHI process.
//!
//! Thin on purpose: it parses the command line, loads settings, installs
//! logging and hands over to the code that does the work.

use mamochi::{bench_cmd, config_cmd, dead_letters_cmd, demo, run, schemas, staff_cmd, topics_cmd};

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mamochi_common::{db, shutdown, telemetry, Settings};

#[derive(Debug, Parser)]
#[command(name = "mamochi", version, about = "MAMOCHI event platform")]
struct Cli {
    /// A TOML file layered over the built-in defaults (environment variables
    /// `MAMOCHI__SECTION__KEY` override both).
    #[arg(long, global = true, env = "MAMOCHI_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks the configuration (`config check`): names every bad setting.
    Config(config_cmd::ConfigArgs),
    /// Applies pending database migrations and exits.
    Migrate,
    /// Creates every topic of the catalog that does not exist yet.
    Topics,
    /// The schema-evolution workflow: check, diff, register, download and
    /// test-compatibility of the event schemas against the schema registry.
    Schemas(schemas::SchemasArgs),
    /// Runs the schema registry (Confluent-compatible REST API) until stopped.
    Registry,
    /// Runs platform services until stopped.
    Run(run::RunArgs),
    /// Manages the named tokens of guild staff (add, list, revoke).
    Staff(staff_cmd::StaffArgs),
    /// Lists records parked in the dead-letter topic, or replays chosen ones
    /// to their source topic.
    DeadLetters(dead_letters_cmd::DeadLettersArgs),
    /// Shows events flowing through Kafka on the running stack.
    Demo(demo::DemoArgs),
    /// Benchmarks the platform on the running stack and writes a report.
    // Boxed: its many options would otherwise size every command.
    Bench(Box<mamochi_bench::BenchArgs>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Config(args) = &cli.command {
        // Before loading: a configuration that cannot be read is a verdict
        // to print, not an error to abort with.
        std::process::exit(config_cmd::run(cli.config.as_deref(), args));
    }
    let mut settings = Settings::load(cli.config.as_deref()).context("while loading settings")?;
    if matches!(cli.command, Command::Bench(_)) && std::env::var_os("MAMOCHI__LOG__FILTER").is_none() {
        // Service logs would scroll the progress bars away; warnings still show.
        settings.log.filter = "warn,librdkafka=error,rdkafka=error".to_string();
    }
    telemetry::init(&settings.log);

    match cli.command {
        Command::Migrate => {
            let applied = db::run_migrations(&settings.database).await.context("while applying migrations")?;
            if applied.is_empty() {
                println!("database schema is up to date");
            } else {
                for version in applied {
                    println!("applied migration {version}");
                }
            }
            Ok(())
        }
        Command::Topics => topics_cmd::run(&settings).await,
        Command::Schemas(args) => schemas::run(&settings.registry.url, args).await,
        Command::Registry => {
            settings.refuse_builtin_secrets()?;
            let app =
                mamochi_registry::Application::build(&settings).await.context("while starting the schema registry")?;
            tracing::info!(port = app.port(), "schema registry listening");
            app.run_until_stopped(shutdown::on_signals()).await
        }
        Command::Config(_) => Ok(()),
        Command::Run(args) => run::run(&settings, args).await,
        Command::Staff(args) => staff_cmd::run(&settings, args).await,
        Command::DeadLetters(args) => dead_letters_cmd::run(&settings, args).await,
        Command::Demo(args) => demo::run(&settings, args).await.map(|_| ()),
        Command::Bench(args) => bench_cmd::run(&settings, *args).await,
    }
}
