//! Server-side login sessions, shared by every instance.
//!
//! The cookie carries a random secret; the table holds only its SHA-256, so a
//! copy of the database does not hold live sessions.

use time::{Duration, OffsetDateTime};
use tuaton_core::AccountId;

use crate::batch::Statement;
use crate::{Store, StoreError, Tx, from_ms, to_ms};

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The account logged in.
    pub account_id: AccountId,
    /// Authenticator assurance reached.
    pub aal: tuaton_core::Aal,
    /// Authentication methods (RFC 8176 values), JSON array text.
    pub amr: String,
    /// The anti-CSRF token bound to this session.
    pub csrf_token: String,
    /// When it began.
    pub created_at: OffsetDateTime,
    /// Last request seen.
    pub last_seen_at: OffsetDateTime,
    /// Absolute end.
    pub expires_at: OffsetDateTime,
}

/// What a new session starts with.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// SHA-256 of the cookie secret, hex.
    pub id_hash: &'a str,
    /// The account.
    pub account_id: &'a AccountId,
    /// See [`Session::aal`].
    pub aal: tuaton_core::Aal,
    /// See [`Session::amr`].
    pub amr: &'a str,
    /// See [`Session::csrf_token`].
    pub csrf_token: &'a str,
    /// Absolute lifetime.
    pub lifetime: Duration,
}

/// Creates a session.
pub fn insert(s: &NewSession<'_>, now: OffsetDateTime) -> Statement {
    Statement::new(
        "INSERT INTO sessions (id_hash, account_id, aal, amr, csrf_token, created_ms, last_seen_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
    )
    .bind(s.id_hash)
    .bind(s.account_id.as_str())
    .bind(s.aal.number())
    .bind(s.amr)
    .bind(s.csrf_token)
    .bind(to_ms(now))
    .bind(to_ms(now + s.lifetime))
}

/// The live session for `id_hash`: not past its absolute end nor idle longer than `idle`.
/// A session found dead is deleted. A live one has its last-seen time moved on.
pub async fn touch(
    store: &Store,
    id_hash: &str,
    idle: Duration,
    now: OffsetDateTime,
) -> Result<Option<Session>, StoreError> {
    let row: Option<(String, String, String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT account_id, aal, amr, csrf_token, created_ms, last_seen_ms, expires_ms FROM sessions WHERE id_hash = $1",
    )
    .bind(id_hash)
    .fetch_optional(store.conn().await?.conn())
    .await?;
    let Some((account_id, aal, amr, csrf_token, created_ms, last_seen_ms, expires_ms)) = row else {
        return Ok(None);
    };
    let now_ms = to_ms(now);
    let idle_ms = idle.whole_milliseconds() as i64;
    if expires_ms <= now_ms || last_seen_ms + idle_ms <= now_ms {
        delete(id_hash).execute(store.conn().await?.conn()).await?;
        return Ok(None);
    }
    // Writing last-seen on every request would make each read a write; a
    // minute's precision is plenty against idle timeouts measured in minutes.
    if now_ms - last_seen_ms > 60_000 {
        sqlx::query("UPDATE sessions SET last_seen_ms = $1 WHERE id_hash = $2")
            .bind(now_ms)
            .bind(id_hash)
            .execute(store.conn().await?.conn())
            .await?;
    }
    Ok(Some(Session {
        account_id: crate::stored_account_id(&account_id)?,
        aal: tuaton_core::Aal::from_stored(&aal)
            .map_err(|_| StoreError::Corrupt("unknown authenticator level".into()))?,
        amr,
        csrf_token,
        created_at: from_ms(created_ms),
        last_seen_at: from_ms(last_seen_ms),
        expires_at: from_ms(expires_ms),
    }))
}

/// Ends one session (on [`crate::Store::conn`], or in the login's batch to rotate the id).
pub fn delete(id_hash: &str) -> Statement {
    Statement::new("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash)
}

/// Whether the session stored under `id_hash` is live at `now` (a read:
/// a code redeemed after its login's session ended is refused).
pub fn live(id_hash: &str, now: OffsetDateTime) -> crate::batch::Query<bool> {
    crate::batch::Query::new(
        Statement::new("SELECT 1 AS live FROM sessions WHERE id_hash = $1 AND expires_ms > $2")
            .bind(id_hash)
            .bind(crate::to_ms(now)),
        |out| Ok(!out.rows.is_empty()),
    )
}

/// Ends every session of an account ("log out everywhere"); returns how many.
pub async fn delete_for_account(
    tx: &mut Tx,
    account_id: &AccountId,
    now: time::OffsetDateTime,
) -> Result<u64, StoreError> {
    let ended = end_all(account_id).execute(tx.conn()).await?;
    // What the account is logged in to at agencies ends with it.
    crate::oidc::revoke_for_account(account_id, now)
        .execute(tx.conn())
        .await?;
    Ok(ended)
}

/// Ends every session of an account, as a statement for a batch.
pub fn end_all(account_id: &AccountId) -> Statement {
    Statement::new("DELETE FROM sessions WHERE account_id = $1").bind(account_id.as_str())
}

/// Deletes sessions past their absolute end; returns how many.
pub async fn purge_expired(store: &Store, now: OffsetDateTime) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
        .bind(to_ms(now))
        .execute(store.conn().await?.conn())
        .await?;
    Ok(r.rows_affected())
}
