//! Server-side ceremony state that can be used once.
//!
//! WebAuthn challenges (and later authorization codes and signing requests)
//! are stored under a random id and used once, in one of two ways:
//!
//! - [`take`]: removed with `DELETE … RETURNING` *before* they are checked,
//!   so a second use finds nothing, even when two requests race on
//!   different instances;
//! - [`peek`] to check, then [`spend`] inside the transaction that writes
//!   the outcome (a session, say), refusing if the ceremony is already gone.
//!   Only one transaction can delete the row, so only one outcome is ever
//!   committed; a refused attempt spends the ceremony too. This saves a
//!   commit on the hottest path (login) without giving up single use.

use time::OffsetDateTime;

use crate::{Store, StoreError, Tx, new_id, to_ms};

/// A ceremony taken out of the store.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// What kind it was stored as.
    pub kind: String,
    /// The account it belongs to, if known when it began.
    pub account_id: Option<String>,
    /// The opaque state.
    pub state: String,
}

/// Why a ceremony could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    /// No such ceremony: never started, already used, or cleaned up. Caller or attacker.
    #[error("unknown or already used ceremony")]
    Unknown,
    /// It existed but its time ran out. Caller.
    #[error("the ceremony expired")]
    Expired,
    /// It belongs to another kind of ceremony. Caller or attacker.
    #[error("the ceremony is of another kind")]
    WrongKind,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores `state` until `expires_at`; returns the ceremony id to give the client.
pub async fn put(
    store: &Store,
    kind: &str,
    account_id: Option<&str>,
    state: &str,
    expires_at: OffsetDateTime,
) -> Result<String, StoreError> {
    let id = new_id();
    sqlx::query("INSERT INTO ceremonies (id, kind, account_id, state, expires_ms) VALUES ($1, $2, $3, $4, $5)")
        .bind(&id)
        .bind(kind)
        .bind(account_id)
        .bind(state)
        .bind(to_ms(expires_at))
        .execute(store.writer().await?.conn())
        .await?;
    Ok(id)
}

/// Removes and returns the ceremony `id` of `kind`; whatever the outcome, it cannot be taken again.
pub async fn take(
    store: &Store,
    id: &str,
    kind: &str,
    now: OffsetDateTime,
) -> Result<Ceremony, TakeError> {
    let row: Option<(String, Option<String>, String, i64)> = sqlx::query_as(
        "DELETE FROM ceremonies WHERE id = $1 RETURNING kind, account_id, state, expires_ms",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(StoreError::from)?;
    let (stored_kind, account_id, state, expires_ms) = row.ok_or(TakeError::Unknown)?;
    if stored_kind != kind {
        return Err(TakeError::WrongKind);
    }
    if expires_ms <= to_ms(now) {
        return Err(TakeError::Expired);
    }
    Ok(Ceremony {
        kind: stored_kind,
        account_id,
        state,
    })
}

/// Spends ceremony `id` of `kind` in the caller's transaction: `true` if this
/// call removed it, `false` if it was already gone (used by a concurrent
/// request, or never there). Commit the outcome only on `true`.
pub async fn spend(tx: &mut Tx, id: &str, kind: &str) -> Result<bool, StoreError> {
    let r = sqlx::query("DELETE FROM ceremonies WHERE id = $1 AND kind = $2")
        .bind(id)
        .bind(kind)
        .execute(tx.conn())
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Deletes ceremonies that expired before `now`; returns how many.
pub async fn purge_expired(store: &Store, now: OffsetDateTime) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM ceremonies WHERE expires_ms <= $1")
        .bind(to_ms(now))
        .execute(store.writer().await?.conn())
        .await?;
    Ok(r.rows_affected())
}

/// Reads a live ceremony without taking it (for tokens that may be presented
/// more than once before they are spent, like an enrolment grant).
pub async fn peek(
    store: &Store,
    id: &str,
    kind: &str,
    now: OffsetDateTime,
) -> Result<Ceremony, TakeError> {
    let row: Option<(String, Option<String>, String, i64)> =
        sqlx::query_as("SELECT kind, account_id, state, expires_ms FROM ceremonies WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await
            .map_err(StoreError::from)?;
    let (stored_kind, account_id, state, expires_ms) = row.ok_or(TakeError::Unknown)?;
    if stored_kind != kind {
        return Err(TakeError::WrongKind);
    }
    if expires_ms <= to_ms(now) {
        return Err(TakeError::Expired);
    }
    Ok(Ceremony {
        kind: stored_kind,
        account_id,
        state,
    })
}
