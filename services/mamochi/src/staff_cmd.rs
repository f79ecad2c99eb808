//! `mamochi staff add|list|revoke`: the named tokens guild staff use on
//! `/v1/admin`. Whoever can run this command against the platform database
//! manages staff access; there is no built-in staff credential. A new token
//! is printed once and only its SHA-256 is stored; a revoked token is refused
//! by every gateway within `gateway.key_cache_ttl_ms` (5 s by default).

use anyhow::Context;
use clap::{Args, Subcommand};
use mamochi_common::{db, Settings};
use mamochi_events::credentials::{self, STAFF_PREFIX};
use mamochi_gateway::store::staff;

#[derive(Debug, Args)]
pub struct StaffArgs {
    #[command(subcommand)]
    command: StaffCommand,
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Creates a token for a member of staff and prints it, once.
    Add {
        /// Who will use it (a-z, 0-9, '.', '_', '-'; never reused): the name
        /// reviews and key changes record.
        name: String,
    },
    /// Lists every staff token by name, with when it was created and revoked.
    List,
    /// Revokes a staff token.
    Revoke { name: String },
}

pub async fn run(settings: &Settings, args: StaffArgs) -> anyhow::Result<()> {
    let pool = db::pool(&settings.database).context("while creating the database pool")?;
    match args.command {
        StaffCommand::Add { name } => {
            let token = credentials::generate_with_prefix(STAFF_PREFIX).context("while generating the token")?;
            staff::add(&pool, &name, &token.sha256).await.with_context(|| format!("while adding {name:?}"))?;
            // The only time the token exists in clear text outside its holder.
            println!("{}", token.clear);
            eprintln!("staff token for {name:?} created; it is shown only now: keep it secret");
        }
        StaffCommand::List => {
            println!("{:<24} {:<26} revoked", "name", "created");
            for row in staff::list(&pool).await.context("while listing staff tokens")? {
                let revoked = row.revoked_at.map_or_else(|| "-".to_string(), |at| at.to_rfc3339());
                println!("{:<24} {:<26} {revoked}", row.name, row.created_at.to_rfc3339());
            }
        }
        StaffCommand::Revoke { name } => {
            if !staff::revoke(&pool, &name).await.with_context(|| format!("while revoking {name:?}"))? {
                anyhow::bail!("no staff token is named {name:?}");
            }
            println!("staff token {name:?} revoked; gateways refuse it within gateway.key_cache_ttl_ms");
        }
    }
    Ok(())
}
