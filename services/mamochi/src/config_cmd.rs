//! `mamochi config check`: reads a configuration exactly as `mamochi run`
//! does (defaults, then `--config FILE`, then `MAMOCHI__…` variables) and
//! applies the same rules `run` applies at start-up
//! ([`mamochi_common::Settings::validate`]).
//!
//! Guarantees: every broken rule is printed at once, each with its setting's
//! path and why, and the command exits non-zero; a valid configuration
//! prints `configuration OK, profile …` and exits 0. Secret values are never
//! printed.

use std::collections::HashMap;
use std::path::Path;

use mamochi_common::Settings;

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ConfigCommand {
    /// Validates the configuration and names every bad setting; exits 0
    /// only when it is valid.
    Check,
}

/// What a check found, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub valid: bool,
    pub text: String,
}

/// Checks the configuration from `file` and `env` (`None`: the process's
/// environment).
pub fn check(file: Option<&Path>, env: Option<HashMap<String, String>>) -> Verdict {
    let settings = match Settings::load_with_env(file, env) {
        Ok(settings) => settings,
        Err(error) => {
            // A value of the wrong type (a word for a port, say) stops the
            // reading itself, so only that first problem can be named.
            return Verdict { valid: false, text: format!("the configuration cannot be read: {error}") };
        }
    };
    match settings.validate() {
        Ok(()) => {
            let mut text = format!("configuration OK, profile {}", settings.profile);
            let builtin = settings.builtin_secrets_in_use();
            if !builtin.is_empty() {
                text.push_str(&format!(
                    "\nbuilt-in development secrets in use (accepted by the local profile only): {}",
                    builtin.join(", ")
                ));
            }
            Verdict { valid: true, text }
        }
        Err(invalid) => Verdict { valid: false, text: invalid.to_string() },
    }
}

/// Runs the subcommand; returns the process's exit code.
pub fn run(file: Option<&Path>, args: &ConfigArgs) -> i32 {
    match args.command {
        ConfigCommand::Check => {
            let verdict = check(file, None);
            if verdict.valid {
                println!("{}", verdict.text);
                0
            } else {
                eprintln!("{}", verdict.text);
                1
            }
        }
    }
}
