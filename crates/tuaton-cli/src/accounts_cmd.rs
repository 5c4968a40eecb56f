//! `tuaton accounts …`: what operators do to accounts, each change audited
//! by the service layer's account administration.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use tuaton_idm::{AccountAdmin, IdmError};
use tuaton_store::companies::Role;

#[derive(Subcommand)]
pub(crate) enum AccountsCommand {
    /// Show an account's state, level, roles and passkey count (no personal data).
    Show {
        /// Account id, or a 13-digit citizen id to look the account up by.
        account: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Suspend an account: it can no longer log in, and its sessions end.
    Suspend {
        /// Account id, or a 13-digit citizen id.
        account: String,
        /// Why, for the audit log (no personal data).
        #[arg(long)]
        reason: String,
    },
    /// Lift a suspension.
    Reactivate {
        /// Account id, or a 13-digit citizen id.
        account: String,
    },
    /// Grant the officer role (in-person proofing at a counter).
    GrantOfficer {
        /// Account id, or a 13-digit citizen id.
        account: String,
    },
}

pub(crate) async fn run(config: Option<&Path>, cmd: AccountsCommand) -> ExitCode {
    let (_, store) = match crate::open(config, false).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let admin = AccountAdmin::new(store.clone());
    let result = execute(&admin, cmd).await;
    store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => refusal(&e),
    }
}

/// Bad input or an unusable database exit 64; a valid request the account's state does not allow exits 1.
fn refusal(e: &IdmError) -> ExitCode {
    match e {
        IdmError::WrongAccountState { .. }
        | IdmError::IalTooLow { .. }
        | IdmError::RoleAlreadyHeld(_) => {
            let message = match e {
                IdmError::IalTooLow { .. } => {
                    "officers must be proofed at IAL2.1 or higher".to_owned()
                }
                other => other.to_string(),
            };
            eprintln!("refused: {message}");
            ExitCode::from(crate::EXIT_FAILED)
        }
        IdmError::Store(s) => crate::fail(format!("database: {s}")),
        other => crate::fail(other),
    }
}

async fn execute(admin: &AccountAdmin, cmd: AccountsCommand) -> Result<(), IdmError> {
    let now = time::OffsetDateTime::now_utc();
    let operator = crate::operator();
    match cmd {
        AccountsCommand::Show { account, json } => {
            let a = admin.account_summary(&account).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_value(&a).map_err(|e| IdmError::Internal(e.to_string()))?
                );
            } else {
                println!("account   {}", a.id);
                println!(
                    "state     {}{}",
                    a.state.as_str(),
                    a.state_reason
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
                println!("IAL       {}", a.ial.number());
                let roles: Vec<&str> = a.roles.iter().map(|r| r.as_str()).collect();
                println!(
                    "roles     {}",
                    if roles.is_empty() {
                        "-".to_owned()
                    } else {
                        roles.join(", ")
                    }
                );
                println!("passkeys  {} ({} active)", a.passkeys, a.active_passkeys);
            }
        }
        AccountsCommand::Suspend { account, reason } => {
            let (id, ended) = admin
                .suspend_account(&operator, &account, &reason, now)
                .await?;
            println!("suspended {id} ({ended} session(s) ended)");
        }
        AccountsCommand::Reactivate { account } => {
            let id = admin.reactivate_account(&operator, &account, now).await?;
            println!("reactivated {id}");
        }
        AccountsCommand::GrantOfficer { account } => {
            let id = admin
                .grant_role(&operator, &account, Role::Officer, now)
                .await?;
            println!("granted the officer role to {id}");
        }
    }
    Ok(())
}
