//! `tuaton accounts …`: what operators do to accounts, each change audited.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;
use tuaton_store::accounts::{self, Account, AccountState};
use tuaton_store::audit::{self, AuditEvent};
use tuaton_store::{Store, companies, passkeys, sessions};

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
    let result = match cmd {
        AccountsCommand::Show { account, json } => show(&store, &account, json).await,
        AccountsCommand::Suspend { account, reason } => suspend(&store, &account, &reason).await,
        AccountsCommand::Reactivate { account } => reactivate(&store, &account).await,
        AccountsCommand::GrantOfficer { account } => grant_officer(&store, &account).await,
    };
    store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Refusal::Usage(m)) => crate::fail(m),
        Err(Refusal::Refused(m)) => {
            eprintln!("refused: {m}");
            ExitCode::from(crate::EXIT_FAILED)
        }
    }
}

enum Refusal {
    /// Bad input or an unusable database: exit 64.
    Usage(String),
    /// A valid request the account's state does not allow: exit 1.
    Refused(String),
}

impl From<tuaton_store::StoreError> for Refusal {
    fn from(e: tuaton_store::StoreError) -> Self {
        Refusal::Usage(format!("database: {e}"))
    }
}

async fn find(store: &Store, key: &str) -> Result<Account, Refusal> {
    let found = match tuaton_core::CitizenId::parse(key) {
        Ok(cid) => accounts::by_citizen_id(store.conn().await?.conn(), &cid.compact()).await?,
        Err(_) => accounts::by_id(store.conn().await?.conn(), key).await?,
    };
    found.ok_or_else(|| Refusal::Usage("no account with this id or citizen id".into()))
}

async fn show(store: &Store, key: &str, as_json: bool) -> Result<(), Refusal> {
    let a = find(store, key).await?;
    let roles = companies::roles(store.conn().await?.conn(), &a.id).await?;
    let keys = passkeys::for_account(store.conn().await?.conn(), &a.id).await?;
    let active = keys.iter().filter(|k| k.state == "active").count();
    if as_json {
        println!(
            "{}",
            json!({ "id": a.id, "state": a.state, "state_reason": a.state_reason, "ial": a.ial, "roles": roles,
                    "passkeys": keys.len(), "active_passkeys": active })
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
        println!("IAL       {}", a.ial);
        println!(
            "roles     {}",
            if roles.is_empty() {
                "-".to_owned()
            } else {
                roles.join(", ")
            }
        );
        println!("passkeys  {} ({} active)", keys.len(), active);
    }
    Ok(())
}

async fn suspend(store: &Store, key: &str, reason: &str) -> Result<(), Refusal> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(Refusal::Usage(
            "--reason must be 1 to 200 characters".into(),
        ));
    }
    let a = find(store, key).await?;
    if a.state != AccountState::Active {
        return Err(Refusal::Refused(format!(
            "the account is {}, not active",
            a.state.as_str()
        )));
    }
    let now = time::OffsetDateTime::now_utc();
    let mut tx = store.begin().await?;
    accounts::set_state(&mut tx, &a.id, AccountState::Suspended, Some(reason), now).await?;
    let ended = sessions::delete_for_account(&mut tx, &a.id).await?;
    let ev = AuditEvent::success(crate::operator_actor(), "account.suspend", a.id.clone())
        .with_details(json!({ "reason": reason, "sessions_ended": ended }));
    audit::append(&mut tx, now, &ev).await?;
    tx.commit().await?;
    println!("suspended {} ({ended} session(s) ended)", a.id);
    Ok(())
}

async fn reactivate(store: &Store, key: &str) -> Result<(), Refusal> {
    let a = find(store, key).await?;
    if a.state != AccountState::Suspended {
        return Err(Refusal::Refused(format!(
            "the account is {}, not suspended",
            a.state.as_str()
        )));
    }
    let now = time::OffsetDateTime::now_utc();
    let mut tx = store.begin().await?;
    accounts::set_state(&mut tx, &a.id, AccountState::Active, None, now).await?;
    audit::append(
        &mut tx,
        now,
        &AuditEvent::success(crate::operator_actor(), "account.reactivate", a.id.clone()),
    )
    .await?;
    tx.commit().await?;
    println!("reactivated {}", a.id);
    Ok(())
}

async fn grant_officer(store: &Store, key: &str) -> Result<(), Refusal> {
    let a = find(store, key).await?;
    if a.state != AccountState::Active {
        return Err(Refusal::Refused(format!(
            "the account is {}, not active",
            a.state.as_str()
        )));
    }
    let ial: tuaton_core::Ial = a
        .ial
        .parse()
        .map_err(|e| Refusal::Usage(format!("stored level: {e}")))?;
    if ial < tuaton_core::Ial::Ial2_1 {
        return Err(Refusal::Refused(
            "officers must be proofed at IAL2.1 or higher".into(),
        ));
    }
    if companies::roles(store.conn().await?.conn(), &a.id)
        .await?
        .iter()
        .any(|r| r == "officer")
    {
        return Err(Refusal::Refused(
            "the account already holds the officer role".into(),
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    let actor = crate::operator_actor();
    let mut tx = store.begin().await?;
    companies::grant_role(&mut tx, &a.id, "officer", &actor, now).await?;
    audit::append(
        &mut tx,
        now,
        &AuditEvent::success(actor, "account.grant_role", a.id.clone())
            .with_details(json!({ "role": "officer" })),
    )
    .await?;
    tx.commit().await?;
    println!("granted the officer role to {}", a.id);
    Ok(())
}
