//! `tuaton accounts …`: what operators do to accounts, each change audited
//! by the service layer's account administration.

use std::path::Path;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
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
    /// Grant a role: officer (in-person proofing at a counter) or
    /// client-admin (the admin API for client registrations).
    GrantRole {
        /// Account id, or a 13-digit citizen id.
        account: String,
        /// The role.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Take a role away; it stops working at the account's next request.
    RevokeRole {
        /// Account id, or a 13-digit citizen id.
        account: String,
        /// The role.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
}

/// The roles an operator grants.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum RoleArg {
    /// Records in-person proofing at a counter (the account needs IAL2.1).
    Officer,
    /// Registers and changes clients through the admin API (it logs in at AAL3).
    ClientAdmin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Officer => Role::Officer,
            RoleArg::ClientAdmin => Role::ClientAdmin,
        }
    }
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
        | IdmError::RoleAlreadyHeld(_)
        | IdmError::RoleNotHeld(_) => {
            let message = match e {
                IdmError::IalTooLow { .. } => {
                    "a role needs an account proofed at IAL2.1 or higher".to_owned()
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
        AccountsCommand::GrantRole { account, role } => {
            let role = Role::from(role);
            let id = admin.grant_role(&operator, &account, role, now).await?;
            println!("granted the {role} role to {id}");
        }
        AccountsCommand::RevokeRole { account, role } => {
            let role = Role::from(role);
            let id = admin.revoke_role(&operator, &account, role, now).await?;
            println!("took the {role} role from {id}");
        }
    }
    Ok(())
}
