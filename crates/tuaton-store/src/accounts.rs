//! Accounts: one per citizen id, with lifecycle and the personal data proofing recorded.

use serde::Serialize;
use sqlx::{Any, Executor};
use time::OffsetDateTime;

use tuaton_core::{AccountId, Ial};

use crate::{StoreError, Tx, from_ms, new_id, to_ms};

/// Where an account is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountState {
    /// May log in and act.
    Active,
    /// Stopped by an operator (with a reason); may be reactivated.
    Suspended,
    /// Closed for good (erased on request, or ended); never reactivated.
    Closed,
}

impl AccountState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Active => "active",
            AccountState::Suspended => "suspended",
            AccountState::Closed => "closed",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(AccountState::Active),
            "suspended" => Ok(AccountState::Suspended),
            "closed" => Ok(AccountState::Closed),
            other => Err(StoreError::Corrupt(format!(
                "unknown account state `{other}`"
            ))),
        }
    }
}

/// The personal data a new account starts with.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Thirteen digits, compact form.
    pub citizen_id: String,
    /// Given name in Thai.
    pub thai_given: String,
    /// Family name in Thai.
    pub thai_family: String,
    /// Given name in English, if known.
    pub en_given: Option<String>,
    /// Family name in English, if known.
    pub en_family: Option<String>,
    /// ISO 8601 date.
    pub birth_date: String,
    /// Where recovery and security notices go.
    pub contact_email: Option<String>,
    /// The identity assurance level reached at enrolment.
    pub ial: Ial,
}

/// An account as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// Opaque id, safe for logs and audit records.
    pub id: AccountId,
    /// The citizen id; `None` once erased.
    pub citizen_id: Option<String>,
    /// The WebAuthn user handle (random; reveals nothing).
    pub user_handle: String,
    /// Lifecycle state.
    pub state: AccountState,
    /// Why it was suspended or closed.
    pub state_reason: Option<String>,
    /// Identity assurance level (shown as the NDID number in text, e.g. `"2.1"`).
    #[serde(serialize_with = "Ial::serialize_as_text")]
    pub ial: Ial,
    /// Given name in Thai.
    pub thai_given: Option<String>,
    /// Family name in Thai.
    pub thai_family: Option<String>,
    /// Given name in English.
    pub en_given: Option<String>,
    /// Family name in English.
    pub en_family: Option<String>,
    /// ISO 8601 date of birth.
    pub birth_date: Option<String>,
    /// Contact address for notices.
    pub contact_email: Option<String>,
    /// When the account was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    citizen_id: Option<String>,
    user_handle: String,
    state: String,
    state_reason: Option<String>,
    ial: String,
    thai_given: Option<String>,
    thai_family: Option<String>,
    en_given: Option<String>,
    en_family: Option<String>,
    birth_date: Option<String>,
    contact_email: Option<String>,
    created_ms: i64,
    updated_ms: i64,
}

impl TryFrom<Row> for Account {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Account {
            id: crate::stored_account_id(&r.id)?,
            citizen_id: r.citizen_id,
            user_handle: r.user_handle,
            state: AccountState::parse(&r.state)?,
            state_reason: r.state_reason,
            ial: Ial::from_stored(&r.ial)
                .map_err(|_| StoreError::Corrupt("unknown identity level".into()))?,
            thai_given: r.thai_given,
            thai_family: r.thai_family,
            en_given: r.en_given,
            en_family: r.en_family,
            birth_date: r.birth_date,
            contact_email: r.contact_email,
            created_at: from_ms(r.created_ms),
            updated_at: from_ms(r.updated_ms),
        })
    }
}

const COLUMNS: &str = "id, citizen_id, user_handle, state, state_reason, ial, thai_given, thai_family, \
                       en_given, en_family, birth_date, contact_email, created_ms, updated_ms";

/// Creates an account. A second account for the same citizen id is refused with
/// [`StoreError::Conflict`]: the caller re-proofs the existing one instead.
pub async fn insert(
    tx: &mut Tx,
    new: &NewAccount,
    user_handle: &str,
    now: OffsetDateTime,
) -> Result<Account, StoreError> {
    let id = new_id();
    let ms = to_ms(now);
    sqlx::query(
        "INSERT INTO accounts (id, citizen_id, user_handle, state, ial, thai_given, thai_family, en_given, en_family, \
         birth_date, contact_email, created_ms, updated_ms) VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(&id)
    .bind(&new.citizen_id)
    .bind(user_handle)
    .bind(new.ial.number())
    .bind(&new.thai_given)
    .bind(&new.thai_family)
    .bind(&new.en_given)
    .bind(&new.en_family)
    .bind(&new.birth_date)
    .bind(&new.contact_email)
    .bind(ms)
    .execute(tx.conn())
    .await?;
    fetch(tx.conn(), "id", &id)
        .await?
        .ok_or(StoreError::NotFound { what: "account" })
}

/// The account's evidence key (hex), storing `offered` first if it has none;
/// `None` for an erased account, whose key is gone for good.
pub async fn evidence_key(
    tx: &mut Tx,
    id: &AccountId,
    offered: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query(
        "UPDATE accounts SET evidence_key = $1 WHERE id = $2 AND evidence_key IS NULL \
         AND (state_reason IS NULL OR state_reason <> 'erased')",
    )
    .bind(offered)
    .bind(id.as_str())
    .execute(tx.conn())
    .await?;
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT evidence_key FROM accounts WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(tx.conn())
            .await?;
    Ok(row.and_then(|(k,)| k))
}

/// The account with this opaque id.
pub async fn by_id<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &AccountId,
) -> Result<Option<Account>, StoreError> {
    fetch(db, "id", id.as_str()).await
}

/// The account the ceremony `ceremony_id` names (an authorization code's
/// login), read as a batch query beside the ceremony itself.
pub fn of_ceremony(ceremony_id: &str) -> crate::batch::Query<Option<Account>> {
    crate::batch::Query::new(
        crate::batch::Statement::new(format!(
            "SELECT {COLUMNS} FROM accounts WHERE id = (SELECT account_id FROM ceremonies WHERE id = $1)"
        ))
        .bind(ceremony_id),
        crate::batch::first_as::<Row, Account>,
    )
}

/// The account for this citizen id (compact digits), if any.
pub async fn by_citizen_id<'e, E: Executor<'e, Database = Any>>(
    db: E,
    citizen_id: &str,
) -> Result<Option<Account>, StoreError> {
    fetch(db, "citizen_id", citizen_id).await
}

/// The account for this WebAuthn user handle.
pub async fn by_user_handle<'e, E: Executor<'e, Database = Any>>(
    db: E,
    handle: &str,
) -> Result<Option<Account>, StoreError> {
    fetch(db, "user_handle", handle).await
}

async fn fetch<'e, E: Executor<'e, Database = Any>>(
    db: E,
    column: &'static str,
    value: &str,
) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE {column} = $1");
    let row: Option<Row> = sqlx::query_as(&sql).bind(value).fetch_optional(db).await?;
    row.map(Account::try_from).transpose()
}

/// Moves an account to `state` with a reason. Closed accounts never change again.
pub async fn set_state(
    tx: &mut Tx,
    id: &AccountId,
    state: AccountState,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE accounts SET state = $1, state_reason = $2, updated_ms = $3 WHERE id = $4 AND state <> 'closed'")
        .bind(state.as_str())
        .bind(reason)
        .bind(to_ms(now))
        .bind(id.as_str())
        .execute(tx.conn())
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "open account",
        });
    }
    Ok(())
}

/// Records a new identity assurance level (after re-proofing).
pub async fn set_ial(
    tx: &mut Tx,
    id: &AccountId,
    ial: Ial,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE accounts SET ial = $1, updated_ms = $2 WHERE id = $3")
        .bind(ial.number())
        .bind(to_ms(now))
        .bind(id.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Erases a person (PDPA right to erasure): clears every personal field, closes
/// the account, and removes credentials, sessions, company links, roles and
/// queued notifications (they hold the contact address).
/// Proofing decisions and consents stay: they hold only digests and the opaque
/// account id, and are the record of what was done lawfully.
pub async fn erase(tx: &mut Tx, id: &AccountId, now: OffsetDateTime) -> Result<(), StoreError> {
    let id = id.as_str();
    for sql in [
        "DELETE FROM sessions WHERE account_id = $1",
        "DELETE FROM passkeys WHERE account_id = $1",
        "DELETE FROM company_links WHERE account_id = $1",
        "DELETE FROM account_roles WHERE account_id = $1",
        "DELETE FROM ceremonies WHERE account_id = $1",
        "DELETE FROM recoveries WHERE account_id = $1",
        "DELETE FROM oidc_grants WHERE account_id = $1",
        // A notice still waiting is delivered (a recovery's warning must
        // reach its owner even so); delivery forgets it once it is done.
        "DELETE FROM notifications WHERE account_id = $1 AND (sent_ms IS NOT NULL OR failed_ms IS NOT NULL)",
        // The registry's raw answers go; the decisions' level, method and
        // digest stay as the record of what was done.
        "UPDATE proofing_decisions SET registry_answer = 'null' WHERE account_id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(tx.conn()).await?;
    }
    sqlx::query(
        "UPDATE consents SET withdrawn_ms = $1 WHERE account_id = $2 AND withdrawn_ms IS NULL",
    )
    .bind(to_ms(now))
    .bind(id)
    .execute(tx.conn())
    .await?;
    // A fresh random user handle: the old one could link erased data to a passkey.
    let done = sqlx::query(
        "UPDATE accounts SET citizen_id = NULL, thai_given = NULL, thai_family = NULL, en_given = NULL, \
         en_family = NULL, birth_date = NULL, contact_email = NULL, evidence_key = NULL, state = 'closed', state_reason = 'erased', \
         user_handle = $1, updated_ms = $2 WHERE id = $3",
    )
    .bind(format!("erased-{}", new_id()))
    .bind(to_ms(now))
    .bind(id)
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: "account" });
    }
    Ok(())
}
