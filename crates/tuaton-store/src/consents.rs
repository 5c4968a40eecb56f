//! PDPA consent records: per agency and purpose, given and withdrawn.

use serde::Serialize;
use sqlx::{Any, Executor};
use time::OffsetDateTime;
use tuaton_core::AccountId;

use crate::{StoreError, Tx, from_ms, new_id, to_ms};

/// A consent as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentRecord {
    /// Opaque id.
    pub id: String,
    /// The account.
    pub account_id: AccountId,
    /// The relying agency (its client id).
    pub agency: String,
    /// What the data is for.
    pub purpose: String,
    /// Version of the purpose text.
    pub purpose_version: String,
    /// The claims released.
    pub claims: Vec<String>,
    /// SHA-256 of the notice text shown, hex.
    pub notice_digest: String,
    /// Language of the notice (`th`, `en`).
    pub locale: String,
    /// PDPA lawful basis (`consent`, `contract`, `legal_obligation`, …).
    pub lawful_basis: String,
    /// When given.
    #[serde(with = "time::serde::rfc3339")]
    pub given_at: OffsetDateTime,
    /// When withdrawn, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub withdrawn_at: Option<OffsetDateTime>,
}

/// A consent to record.
#[derive(Debug, Clone)]
pub struct NewConsent {
    /// See [`ConsentRecord::agency`].
    pub agency: String,
    /// See [`ConsentRecord::purpose`].
    pub purpose: String,
    /// See [`ConsentRecord::purpose_version`].
    pub purpose_version: String,
    /// See [`ConsentRecord::claims`].
    pub claims: Vec<String>,
    /// See [`ConsentRecord::notice_digest`].
    pub notice_digest: String,
    /// See [`ConsentRecord::locale`].
    pub locale: String,
    /// See [`ConsentRecord::lawful_basis`].
    pub lawful_basis: String,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
);

fn from_row(r: Row) -> Result<ConsentRecord, StoreError> {
    Ok(ConsentRecord {
        id: r.0,
        account_id: crate::stored_account_id(&r.1)?,
        agency: r.2,
        purpose: r.3,
        purpose_version: r.4,
        claims: serde_json::from_str(&r.5).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        notice_digest: r.6,
        locale: r.7,
        lawful_basis: r.8,
        given_at: from_ms(r.9),
        withdrawn_at: r.10.map(from_ms),
    })
}

const COLUMNS: &str = "id, account_id, agency, purpose, purpose_version, claims, notice_digest, locale, lawful_basis, given_ms, withdrawn_ms";

/// Records a consent. An earlier live consent for the same agency and purpose is
/// superseded (marked withdrawn at the same instant), so one is live at a time.
pub async fn give(
    tx: &mut Tx,
    account_id: &AccountId,
    c: &NewConsent,
    now: OffsetDateTime,
) -> Result<ConsentRecord, StoreError> {
    let ms = to_ms(now);
    sqlx::query("UPDATE consents SET withdrawn_ms = $1 WHERE account_id = $2 AND agency = $3 AND purpose = $4 AND withdrawn_ms IS NULL")
        .bind(ms)
        .bind(account_id.as_str())
        .bind(&c.agency)
        .bind(&c.purpose)
        .execute(tx.conn())
        .await?;
    let id = new_id();
    let claims =
        serde_json::to_string(&c.claims).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(&format!(
        "INSERT INTO consents ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)"
    ))
    .bind(&id)
    .bind(account_id.as_str())
    .bind(&c.agency)
    .bind(&c.purpose)
    .bind(&c.purpose_version)
    .bind(claims)
    .bind(&c.notice_digest)
    .bind(&c.locale)
    .bind(&c.lawful_basis)
    .bind(ms)
    .execute(tx.conn())
    .await?;
    by_id(tx.conn(), account_id, &id)
        .await?
        .ok_or(StoreError::NotFound { what: "consent" })
}

/// Withdraws a live consent; false if there was none to withdraw.
pub async fn withdraw(
    tx: &mut Tx,
    account_id: &AccountId,
    id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let r = sqlx::query("UPDATE consents SET withdrawn_ms = $1 WHERE id = $2 AND account_id = $3 AND withdrawn_ms IS NULL")
        .bind(to_ms(now))
        .bind(id)
        .bind(account_id.as_str())
        .execute(tx.conn())
        .await?;
    Ok(r.rows_affected() > 0)
}

/// One consent of an account.
pub async fn by_id<'e, E: Executor<'e, Database = Any>>(
    db: E,
    account_id: &AccountId,
    id: &str,
) -> Result<Option<ConsentRecord>, StoreError> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM consents WHERE id = $1 AND account_id = $2"
    ))
    .bind(id)
    .bind(account_id.as_str())
    .fetch_optional(db)
    .await?;
    row.map(from_row).transpose()
}

/// Every consent of an account, oldest first (live and withdrawn).
pub async fn for_account<'e, E: Executor<'e, Database = Any>>(
    db: E,
    account_id: &AccountId,
) -> Result<Vec<ConsentRecord>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM consents WHERE account_id = $1 ORDER BY given_ms, id"
    ))
    .bind(account_id.as_str())
    .fetch_all(db)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// Deletes consent records withdrawn before `cutoff` (retention); returns how many.
/// Live consents are never purged.
pub async fn purge_withdrawn_before(
    store: &crate::Store,
    cutoff: OffsetDateTime,
) -> Result<u64, StoreError> {
    let r =
        sqlx::query("DELETE FROM consents WHERE withdrawn_ms IS NOT NULL AND withdrawn_ms < $1")
            .bind(to_ms(cutoff))
            .execute(store.conn().await?.conn())
            .await?;
    Ok(r.rows_affected())
}
