//! Passkey credentials registered to accounts.

use serde::Serialize;
use sqlx::{Any, Executor, Row as _};
use time::OffsetDateTime;

use tuaton_core::{Aal, AccountId};

use crate::accounts::AccountState;
use crate::batch::{Query, Statement};
use crate::{StoreError, Tx, from_ms, to_ms};

/// Whether a credential may be used to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PasskeyState {
    /// Usable.
    Active,
    /// Stopped after a cloned-authenticator signal; never used again.
    Suspended,
}

impl PasskeyState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            PasskeyState::Active => "active",
            PasskeyState::Suspended => "suspended",
        }
    }

    /// The stored form read back.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(PasskeyState::Active),
            "suspended" => Ok(PasskeyState::Suspended),
            other => Err(StoreError::Corrupt(format!(
                "unknown passkey state `{other}`"
            ))),
        }
    }
}

/// A credential as stored. `credential` is the WebAuthn library's serialized
/// form (public key, counter, flags); it holds no secret.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyRecord {
    /// Credential id, base64url.
    pub cred_id: String,
    /// The account.
    pub account_id: AccountId,
    /// The name the person gave it.
    pub name: String,
    /// The authenticator model (AAGUID), if it said.
    pub aaguid: Option<String>,
    /// Serialized credential, opaque here.
    #[serde(skip)]
    pub credential: String,
    /// Authenticator assurance it gives (shown as the NDID number in text).
    #[serde(serialize_with = "Aal::serialize_as_text")]
    pub aal: Aal,
    /// Whether its attestation was verified against the allow-list.
    pub attested: bool,
    /// May be synced to other devices.
    pub backup_eligible: bool,
    /// Is synced.
    pub backup_state: bool,
    /// Last signature counter seen.
    pub sign_count: i64,
    /// Whether it may log in (a cloned-authenticator signal suspends it).
    pub state: PasskeyState,
    /// Registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last successful login.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// The row's seal (hex HMAC over the account, the state and the stored
    /// credential); `None` for a row stored before sealing began, or by someone
    /// who could not make one.
    #[serde(skip)]
    pub seal: Option<String>,
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    String,
    i64,
    Option<i64>,
    Option<String>,
);

fn from_row(r: Row) -> Result<PasskeyRecord, StoreError> {
    Ok(PasskeyRecord {
        cred_id: r.0,
        account_id: crate::stored_account_id(&r.1)?,
        name: r.2,
        aaguid: r.3,
        credential: r.4,
        aal: Aal::from_stored(&r.5)
            .map_err(|_| StoreError::Corrupt("unknown authenticator level".into()))?,
        attested: r.6 != 0,
        backup_eligible: r.7 != 0,
        backup_state: r.8 != 0,
        sign_count: r.9,
        state: PasskeyState::parse(&r.10)?,
        created_at: from_ms(r.11),
        last_used_at: r.12.map(from_ms),
        seal: r.13,
    })
}

const COLUMNS: &str = "cred_id, account_id, name, aaguid, credential, aal, attested, backup_eligible, backup_state, \
                       sign_count, state, created_ms, last_used_ms, seal";

/// Registers a credential. The same credential id on any account is refused
/// ([`StoreError::Conflict`]), as WebAuthn requires.
pub async fn insert(tx: &mut Tx, p: &PasskeyRecord) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO passkeys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(&p.cred_id)
    .bind(p.account_id.as_str())
    .bind(&p.name)
    .bind(&p.aaguid)
    .bind(&p.credential)
    .bind(p.aal.number())
    .bind(i64::from(p.attested))
    .bind(i64::from(p.backup_eligible))
    .bind(i64::from(p.backup_state))
    .bind(p.sign_count)
    .bind(p.state.as_str())
    .bind(to_ms(p.created_at))
    .bind(p.last_used_at.map(to_ms))
    .bind(&p.seal)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Every credential of an account, oldest first.
pub async fn for_account<'e, E: Executor<'e, Database = Any>>(
    db: E,
    account_id: &AccountId,
) -> Result<Vec<PasskeyRecord>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM passkeys WHERE account_id = $1 ORDER BY created_ms, cred_id"
    ))
    .bind(account_id.as_str())
    .fetch_all(db)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// The account a credential belongs to, as a login needs it.
#[derive(Debug, Clone)]
pub struct CredentialOwner {
    /// The WebAuthn user handle of the account.
    pub user_handle: String,
    /// Whether the account may log in.
    pub state: AccountState,
}

/// One credential by id, with its account; read together because a login
/// needs both and a round trip to the database is the dearest part of it.
pub fn with_owner(cred_id: &str) -> Query<Option<(PasskeyRecord, CredentialOwner)>> {
    // The account's columns are renamed in a subquery, so the passkey's own
    // names in COLUMNS stay unambiguous and come first, where its row type
    // reads them by position.
    Query::new(
        Statement::new(format!(
            "SELECT {COLUMNS}, owner_handle, owner_state FROM passkeys \
             JOIN (SELECT id AS owner_id, user_handle AS owner_handle, state AS owner_state FROM accounts) o \
             ON o.owner_id = passkeys.account_id WHERE cred_id = $1"
        ))
        .bind(cred_id),
        |out| {
            let Some(row) = out.rows.first() else {
                return Ok(None);
            };
            let record = from_row(<Row as sqlx::FromRow<'_, sqlx::any::AnyRow>>::from_row(
                row,
            )?)?;
            let state: String = row.try_get("owner_state")?;
            let owner = CredentialOwner {
                user_handle: row.try_get("owner_handle")?,
                state: AccountState::parse(&state)?,
            };
            Ok(Some((record, owner)))
        },
    )
}

/// The account and the active credentials to offer when a login names a
/// citizen id (compact digits); `None` when no account has that id. One query.
pub async fn login_candidates<'e, E: Executor<'e, Database = Any>>(
    db: E,
    citizen_id: &str,
) -> Result<Option<(AccountId, Vec<String>)>, StoreError> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT a.id, p.credential FROM accounts a \
         LEFT JOIN passkeys p ON p.account_id = a.id AND p.state = 'active' \
         WHERE a.citizen_id = $1 ORDER BY p.created_ms, p.cred_id",
    )
    .bind(citizen_id)
    .fetch_all(db)
    .await?;
    let Some(account_id) = rows.first().map(|(id, _)| id.as_str()) else {
        return Ok(None);
    };
    let account_id = crate::stored_account_id(account_id)?;
    Ok(Some((
        account_id,
        rows.into_iter().filter_map(|(_, c)| c).collect(),
    )))
}

/// Records a successful login: new credential state, counter, backup flag,
/// time, and the row's new seal.
pub fn record_use(
    cred_id: &str,
    credential: &str,
    sign_count: i64,
    backup_state: bool,
    seal: &str,
    now: OffsetDateTime,
) -> Statement {
    Statement::new("UPDATE passkeys SET credential = $1, sign_count = $2, backup_state = $3, last_used_ms = $4, seal = $6 WHERE cred_id = $5")
        .bind(credential)
        .bind(sign_count)
        .bind(backup_state)
        .bind(to_ms(now))
        .bind(cred_id)
        .bind(seal)
}

/// Suspends a credential (cloned-authenticator signal), with the row's new
/// seal.
pub fn suspend(cred_id: &str, seal: &str) -> Statement {
    Statement::new("UPDATE passkeys SET state = 'suspended', seal = $2 WHERE cred_id = $1")
        .bind(cred_id)
        .bind(seal)
}

/// Removes every credential of an account but `kept`; returns the removed ids.
pub async fn delete_all_but(
    tx: &mut Tx,
    account_id: &AccountId,
    kept: &str,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "DELETE FROM passkeys WHERE account_id = $1 AND cred_id <> $2 RETURNING cred_id",
    )
    .bind(account_id.as_str())
    .bind(kept)
    .fetch_all(tx.conn())
    .await?;
    let mut ids: Vec<String> = rows.into_iter().map(|(id,)| id).collect();
    ids.sort();
    Ok(ids)
}

/// Removes a credential of an account; false if there was none.
pub async fn delete(
    tx: &mut Tx,
    account_id: &AccountId,
    cred_id: &str,
) -> Result<bool, StoreError> {
    let r = sqlx::query("DELETE FROM passkeys WHERE account_id = $1 AND cred_id = $2")
        .bind(account_id.as_str())
        .bind(cred_id)
        .execute(tx.conn())
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Every row's credential id, account, state and stored credential.
pub async fn all_credentials(
    tx: &mut Tx,
) -> Result<Vec<(String, AccountId, PasskeyState, String)>, StoreError> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT cred_id, account_id, state, credential FROM passkeys ORDER BY cred_id",
    )
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|(c, a, state, cred)| {
            Ok((
                c,
                crate::stored_account_id(&a)?,
                PasskeyState::parse(&state)?,
                cred,
            ))
        })
        .collect()
}

/// Sets the seal of the row of credential `cred_id`.
pub async fn set_seal(tx: &mut Tx, cred_id: &str, seal: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE passkeys SET seal = $1 WHERE cred_id = $2")
        .bind(seal)
        .bind(cred_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}
