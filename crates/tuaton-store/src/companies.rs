//! Companies a person may act for, and operator-granted roles.

use serde::Serialize;
use sqlx::{Any, Executor};
use time::OffsetDateTime;
use tuaton_core::AccountId;

use crate::{StoreError, Tx, from_ms, to_ms};

/// A link between a person and a company they direct.
#[derive(Debug, Clone, Serialize)]
pub struct CompanyLink {
    /// The juristic id (13 digits).
    pub juristic_id: String,
    /// The company's registered name.
    pub company_name: String,
    /// When linked.
    #[serde(with = "time::serde::rfc3339")]
    pub linked_at: OffsetDateTime,
    /// When the registry last confirmed the authority.
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
}

/// Links (or re-confirms) a company for an account.
pub async fn link(
    tx: &mut Tx,
    account_id: &AccountId,
    juristic_id: &str,
    name: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let ms = to_ms(now);
    let updated = sqlx::query("UPDATE company_links SET company_name = $1, checked_ms = $2 WHERE account_id = $3 AND juristic_id = $4")
        .bind(name)
        .bind(ms)
        .bind(account_id.as_str())
        .bind(juristic_id)
        .execute(tx.conn())
        .await?;
    if updated.rows_affected() == 0 {
        sqlx::query("INSERT INTO company_links (account_id, juristic_id, company_name, linked_ms, checked_ms) VALUES ($1, $2, $3, $4, $4)")
            .bind(account_id.as_str())
            .bind(juristic_id)
            .bind(name)
            .bind(ms)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// Removes a link (authority no longer holds).
pub async fn unlink(
    tx: &mut Tx,
    account_id: &AccountId,
    juristic_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM company_links WHERE account_id = $1 AND juristic_id = $2")
        .bind(account_id.as_str())
        .bind(juristic_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The companies an account is linked to.
pub async fn for_account<'e, E: Executor<'e, Database = Any>>(
    db: E,
    account_id: &AccountId,
) -> Result<Vec<CompanyLink>, StoreError> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT juristic_id, company_name, linked_ms, checked_ms FROM company_links WHERE account_id = $1 ORDER BY juristic_id",
    )
    .bind(account_id.as_str())
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| CompanyLink {
            juristic_id: r.0,
            company_name: r.1,
            linked_at: from_ms(r.2),
            checked_at: from_ms(r.3),
        })
        .collect())
}

/// A role an account holds beside being a citizen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Records in-person proofing at a counter.
    Officer,
    /// Registers and changes the agencies' OpenID Connect clients through
    /// the admin API.
    ClientAdmin,
}

impl Role {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::ClientAdmin => "client_admin",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "officer" => Ok(Role::Officer),
            "client_admin" => Ok(Role::ClientAdmin),
            other => Err(StoreError::Corrupt(format!("unknown role `{other}`"))),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Grants a role.
pub async fn grant_role(
    tx: &mut Tx,
    account_id: &AccountId,
    role: Role,
    granted_by: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO account_roles (account_id, role, granted_by, granted_ms) VALUES ($1, $2, $3, $4)")
        .bind(account_id.as_str())
        .bind(role.as_str())
        .bind(granted_by)
        .bind(to_ms(now))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Takes a role away; `false` when the account did not hold it.
pub async fn revoke_role(
    tx: &mut Tx,
    account_id: &AccountId,
    role: Role,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM account_roles WHERE account_id = $1 AND role = $2")
        .bind(account_id.as_str())
        .bind(role.as_str())
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The roles an account holds.
pub async fn roles<'e, E: Executor<'e, Database = Any>>(
    db: E,
    account_id: &AccountId,
) -> Result<Vec<Role>, StoreError> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT role FROM account_roles WHERE account_id = $1 ORDER BY role")
            .bind(account_id.as_str())
            .fetch_all(db)
            .await?;
    rows.into_iter().map(|r| Role::parse(&r.0)).collect()
}
