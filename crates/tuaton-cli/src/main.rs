//! `tuaton`: the one binary operators run.
//!
//! Scope: argument parsing, loading settings, opening the store, and calling
//! into the library crates; output as text for people or JSON (`--json`) for
//! scripts. Exit codes are part of the public contract and documented in
//! docs/operators/cli.md.
//!
//! Non-goals: logic of its own. Every command is a thin shell over a library call.

mod accounts_cmd;
mod audit_cmd;
mod clients_cmd;
mod dev_cmd;
mod keys_cmd;
mod migrate_cmd;
mod pki_cmd;
mod secret_env;
mod serve_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tuaton: digital identity and e-signatures for government services.
#[derive(Parser)]
#[command(name = "tuaton", version, about, long_about = None)]
struct Cli {
    /// TOML settings file; TUATON_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE", env = "TUATON_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve(serve_cmd::ServeArgs),
    /// Development helpers.
    Dev {
        #[command(subcommand)]
        command: dev_cmd::DevCommand,
    },
    /// Manage signing keys: list, rotate, retire, destroy.
    Keys {
        #[command(subcommand)]
        command: keys_cmd::KeysCommand,
    },
    /// Operator actions on accounts: show, suspend, reactivate, grant the officer role.
    Accounts {
        #[command(subcommand)]
        command: accounts_cmd::AccountsCommand,
    },
    /// Register the agencies' applications with the OpenID Provider.
    Clients {
        #[command(subcommand)]
        command: Box<clients_cmd::ClientsCommand>,
    },
    /// The certificate authority: make the hierarchy, list it, export the root.
    Pki {
        #[command(subcommand)]
        command: pki_cmd::PkiCommand,
    },
    /// Bring the database schema up to date, as the schema's owner.
    Migrate(migrate_cmd::MigrateArgs),
    /// Inspect the audit log.
    Audit {
        #[command(subcommand)]
        command: audit_cmd::AuditCommand,
    },
}

/// Exit status for a command that could not run (bad settings, unreachable database).
pub(crate) const EXIT_USAGE: u8 = 64;
/// Exit status when a check found a problem (a broken audit chain).
pub(crate) const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    if let Some(failed) = secret_env::hand_over() {
        return failed;
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config = cli.config.as_deref();
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve_cmd::run(config, args).await,
            Command::Dev { command } => dev_cmd::run(command).await,
            Command::Keys { command } => keys_cmd::run(config, command).await,
            Command::Migrate(args) => migrate_cmd::run(config, args).await,
            Command::Accounts { command } => accounts_cmd::run(config, command).await,
            Command::Clients { command } => clients_cmd::run(config, *command).await,
            Command::Audit { command } => audit_cmd::run(config, command).await,
            Command::Pki { command } => pki_cmd::run(config, command).await,
        }
    })
}

/// Prints `error: …` and returns the usage exit code.
pub(crate) fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// Loads settings and opens the store, or explains why not.
pub(crate) async fn open(
    config: Option<&std::path::Path>,
    dev: bool,
) -> Result<(tuaton_server::Settings, tuaton_store::Store), ExitCode> {
    let settings = tuaton_server::Settings::load(config, dev).map_err(fail)?;
    if settings.database_url.starts_with("sqlite") {
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
            fail(format!(
                "cannot create data directory {} (TUATON_DATA_DIR): {e}",
                settings.data_dir.display()
            ))
        })?;
    }
    let store = tuaton_store::Store::connect(&settings.database_url, &Default::default())
        .await
        .map_err(|e| {
            fail(format!(
                "cannot open the database {} (TUATON_DATABASE_URL): {e}",
                tuaton_server::settings::redact_url(&settings.database_url)
            ))
        })?;
    Ok((settings, store))
}

/// The audit actor for operator commands, as the audit log names it.
pub(crate) fn operator_actor() -> String {
    operator().to_string()
}

/// The operator running a command: the login name, as far as the shell tells it.
pub(crate) fn operator() -> tuaton_idm::Actor {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    tuaton_idm::Actor::Operator(if clean.is_empty() {
        "cli".to_owned()
    } else {
        clean
    })
}
