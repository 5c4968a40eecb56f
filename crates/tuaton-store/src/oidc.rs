//! The OpenID Provider's records: registered clients, the grants redeemed
//! codes gave, and the ids of client assertions already used.
//!
//! A client's registration is kept as the JSON the protocol crate reads and
//! checks; this module only stores it. Authorization codes themselves are
//! ceremonies (`ceremonies.rs`), stored under their digest.

use sqlx::Row;
use time::OffsetDateTime;
use tuaton_core::AccountId;

use crate::batch::{Query, Statement};
use crate::{Store, StoreError, Tx, from_ms, to_ms};

/// A client as stored.
#[derive(Debug, Clone)]
pub struct StoredClient {
    /// The `client_id`.
    pub client_id: String,
    /// The registration, JSON.
    pub config: String,
    /// SHA-256 of its secret, hex, for a `client_secret_basic` client.
    pub secret_digest: Option<String>,
    /// When registered.
    pub created_at: OffsetDateTime,
    /// When last changed.
    pub updated_at: OffsetDateTime,
}

const CLIENT_COLUMNS: &str = "client_id, config, secret_digest, created_ms, updated_ms";

fn client_from(row: &sqlx::any::AnyRow) -> Result<StoredClient, StoreError> {
    Ok(StoredClient {
        client_id: row.try_get("client_id")?,
        config: row.try_get("config")?,
        secret_digest: row.try_get("secret_digest")?,
        created_at: from_ms(row.try_get("created_ms")?),
        updated_at: from_ms(row.try_get("updated_ms")?),
    })
}

/// Registers a client; an existing `client_id` is a [`StoreError::Conflict`].
pub async fn add_client(
    tx: &mut Tx,
    client_id: &str,
    config: &str,
    secret_digest: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO oidc_clients (client_id, config, secret_digest, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(client_id)
    .bind(config)
    .bind(secret_digest)
    .bind(to_ms(now))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Replaces a client's registration (and its secret digest, when `Some`);
/// `false` if there is no such client.
pub async fn update_client(
    tx: &mut Tx,
    client_id: &str,
    config: &str,
    secret_digest: Option<Option<&str>>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = match secret_digest {
        Some(digest) => sqlx::query(
            "UPDATE oidc_clients SET config = $2, secret_digest = $3, updated_ms = $4 WHERE client_id = $1",
        )
        .bind(client_id)
        .bind(config)
        .bind(digest)
        .bind(to_ms(now))
        .execute(tx.conn())
        .await?,
        None => sqlx::query("UPDATE oidc_clients SET config = $2, updated_ms = $3 WHERE client_id = $1")
            .bind(client_id)
            .bind(config)
            .bind(to_ms(now))
            .execute(tx.conn())
            .await?,
    };
    Ok(done.rows_affected() == 1)
}

/// Removes a client and revokes every grant it holds, in `tx`; `false` if
/// there was no such client.
pub async fn remove_client(
    tx: &mut Tx,
    client_id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let removed = sqlx::query("DELETE FROM oidc_clients WHERE client_id = $1")
        .bind(client_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    sqlx::query(
        "UPDATE oidc_grants SET revoked_ms = $2 WHERE client_id = $1 AND revoked_ms IS NULL",
    )
    .bind(client_id)
    .bind(to_ms(now))
    .execute(tx.conn())
    .await?;
    Ok(removed == 1)
}

/// The client `client_id`, if registered.
pub fn client(client_id: &str) -> Query<Option<StoredClient>> {
    Query::new(
        Statement::new(format!(
            "SELECT {CLIENT_COLUMNS} FROM oidc_clients WHERE client_id = $1"
        ))
        .bind(client_id),
        |out| out.rows.first().map(client_from).transpose(),
    )
}

/// Every client, by id.
pub async fn clients(store: &Store) -> Result<Vec<StoredClient>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {CLIENT_COLUMNS} FROM oidc_clients ORDER BY client_id"
    ))
    .fetch_all(store.conn().await?.conn())
    .await?;
    rows.iter().map(client_from).collect()
}

/// A grant as stored.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Opaque id, named in every token it issued.
    pub id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The person; `None` for a client acting for itself (`client_credentials`).
    pub account_id: Option<AccountId>,
    /// The scopes granted, space-separated.
    pub scopes: String,
    /// When the person logged in.
    pub auth_at: OffsetDateTime,
    /// The authenticator level reached, as stored (`2.2`).
    pub aal: String,
    /// How they logged in (RFC 8176), JSON.
    pub amr: String,
    /// When the code was redeemed.
    pub created_at: OffsetDateTime,
    /// When its last token expires.
    pub expires_at: OffsetDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// The DPoP key (RFC 7638 thumbprint) a public client's refresh tokens
    /// are bound to.
    pub dpop_jkt: Option<String>,
    /// The Tuaton session the login came from (its id's digest).
    pub session_digest: Option<String>,
    /// The company acted for, as JSON (`{juristic_id, name}`).
    pub company: Option<String>,
    /// When the next attempt at its back-channel logout is due, if one is owed.
    pub logout_due_at: Option<OffsetDateTime>,
    /// How many attempts at it failed.
    pub logout_attempts: i64,
}

/// A new grant, to record in the redemption's transaction.
#[derive(Debug, Clone)]
pub struct NewGrant<'a> {
    /// See [`Grant::id`].
    pub id: &'a str,
    /// The SHA-256 of the code, hex.
    pub code_digest: &'a str,
    /// See [`Grant::client_id`].
    pub client_id: &'a str,
    /// See [`Grant::account_id`].
    pub account_id: Option<&'a AccountId>,
    /// See [`Grant::scopes`].
    pub scopes: &'a str,
    /// See [`Grant::auth_at`].
    pub auth_at: OffsetDateTime,
    /// See [`Grant::aal`].
    pub aal: &'a str,
    /// See [`Grant::amr`].
    pub amr: &'a str,
    /// See [`Grant::expires_at`].
    pub expires_at: OffsetDateTime,
    /// See [`Grant::dpop_jkt`].
    pub dpop_jkt: Option<&'a str>,
    /// See [`Grant::session_digest`].
    pub session_digest: Option<&'a str>,
    /// See [`Grant::company`].
    pub company: Option<&'a str>,
}

/// The insert that records `g`.
pub fn insert_grant(g: &NewGrant<'_>, now: OffsetDateTime) -> Statement {
    Statement::new(
        "INSERT INTO oidc_grants (id, code_digest, client_id, account_id, scopes, auth_ms, aal, amr, created_ms, expires_ms, dpop_jkt, session_digest, company) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(g.id)
    .bind(g.code_digest)
    .bind(g.client_id)
    .bind(g.account_id.map(AccountId::as_str))
    .bind(g.scopes)
    .bind(to_ms(g.auth_at))
    .bind(g.aal)
    .bind(g.amr)
    .bind(to_ms(now))
    .bind(to_ms(g.expires_at))
    .bind(g.dpop_jkt)
    .bind(g.session_digest)
    .bind(g.company)
}

fn grant_from(row: &sqlx::any::AnyRow) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        account_id: row
            .try_get::<Option<String>, _>("account_id")?
            .as_deref()
            .map(crate::stored_account_id)
            .transpose()?,
        scopes: row.try_get("scopes")?,
        auth_at: from_ms(row.try_get("auth_ms")?),
        aal: row.try_get("aal")?,
        amr: row.try_get("amr")?,
        created_at: from_ms(row.try_get("created_ms")?),
        expires_at: from_ms(row.try_get("expires_ms")?),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_ms")?.map(from_ms),
        dpop_jkt: row.try_get("dpop_jkt")?,
        session_digest: row.try_get("session_digest")?,
        company: row.try_get("company")?,
        logout_due_at: row.try_get::<Option<i64>, _>("logout_due_ms")?.map(from_ms),
        logout_attempts: row.try_get("logout_attempts")?,
    })
}

const GRANT_COLUMNS: &str = "id, client_id, account_id, scopes, auth_ms, aal, amr, created_ms, expires_ms, revoked_ms, dpop_jkt, \
     session_digest, company, logout_due_ms, logout_attempts";

/// The grant `id`.
pub fn grant(id: &str) -> Query<Option<Grant>> {
    Query::new(
        Statement::new(format!(
            "SELECT {GRANT_COLUMNS} FROM oidc_grants WHERE id = $1"
        ))
        .bind(id),
        |out| out.rows.first().map(grant_from).transpose(),
    )
}

/// The grant a code (by its digest) was redeemed for, if it was.
pub fn grant_by_code(code_digest: &str) -> Query<Option<Grant>> {
    Query::new(
        Statement::new(format!(
            "SELECT {GRANT_COLUMNS} FROM oidc_grants WHERE code_digest = $1"
        ))
        .bind(code_digest),
        |out| out.rows.first().map(grant_from).transpose(),
    )
}

/// Revokes grant `id`: `true` if this call revoked it. Its refresh tokens
/// are refused from then on (their use checks the grant).
pub fn revoke_grant(id: &str, now: OffsetDateTime) -> Query<bool> {
    Query::new(
        Statement::new(
            "UPDATE oidc_grants SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL",
        )
        .bind(id)
        .bind(to_ms(now)),
        |out| Ok(out.rows_affected == 1),
    )
}

/// The insert that stores a refresh token of grant `grant_id` by its digest.
pub fn insert_refresh_token(
    digest: &str,
    grant_id: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Statement {
    Statement::new(
        "INSERT INTO oidc_refresh_tokens (digest, grant_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(digest)
    .bind(grant_id)
    .bind(to_ms(now))
    .bind(to_ms(expires_at))
}

/// A refresh token as stored, with its grant.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// The grant (family) it belongs to.
    pub grant: Grant,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// When it was used (and replaced), if it was.
    pub used_at: Option<OffsetDateTime>,
}

/// The refresh token with this digest, and its grant.
pub fn refresh_token(digest: &str) -> Query<Option<RefreshToken>> {
    Query::new(
        Statement::new(format!(
            "SELECT {}, r.expires_ms AS r_expires_ms, r.used_ms AS r_used_ms \
             FROM oidc_refresh_tokens r JOIN oidc_grants g ON g.id = r.grant_id WHERE r.digest = $1",
            GRANT_COLUMNS
                .split(", ")
                .map(|c| format!("g.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(digest),
        |out| {
            out.rows
                .first()
                .map(|row| {
                    Ok(RefreshToken {
                        grant: grant_from(row)?,
                        expires_at: from_ms(row.try_get("r_expires_ms")?),
                        used_at: row.try_get::<Option<i64>, _>("r_used_ms")?.map(from_ms),
                    })
                })
                .transpose()
        },
    )
}

/// Marks a refresh token used: `true` if this call did (it was unused and
/// its grant not revoked).
pub fn use_refresh_token(digest: &str, now: OffsetDateTime) -> Query<bool> {
    Query::new(
        // Only while its grant stands: a refresh racing a revocation loses.
        Statement::new(
            "UPDATE oidc_refresh_tokens SET used_ms = $2 WHERE digest = $1 AND used_ms IS NULL \
             AND grant_id IN (SELECT id FROM oidc_grants WHERE revoked_ms IS NULL)",
        )
        .bind(digest)
        .bind(to_ms(now)),
        |out| Ok(out.rows_affected == 1),
    )
}

/// Revokes every grant of `account_id`: its agencies' tokens stop working
/// (at recovery, a cloned authenticator, logout everywhere, suspension).
///
/// Each grant ended this way owes its client a back-channel logout token.
pub fn revoke_for_account(account_id: &AccountId, now: OffsetDateTime) -> Statement {
    Statement::new(
        "UPDATE oidc_grants SET revoked_ms = $2, logout_due_ms = $2 \
         WHERE account_id = $1 AND revoked_ms IS NULL",
    )
    .bind(account_id.as_str())
    .bind(to_ms(now))
}

/// Revokes every live grant made by a login of the Tuaton session
/// `session_digest` (it ended), each owing a back-channel logout token.
pub fn revoke_for_session(session_digest: &str, now: OffsetDateTime) -> Statement {
    Statement::new(
        "UPDATE oidc_grants SET revoked_ms = $2, logout_due_ms = $2 \
         WHERE session_digest = $1 AND revoked_ms IS NULL",
    )
    .bind(session_digest)
    .bind(to_ms(now))
}

/// Moves `account_id`'s grants from the session `old` to `new`: a new login
/// in the same browser replaces the session, and what the person is logged
/// in to at agencies carries over to it.
pub fn move_to_session(old: &str, new: &str, account_id: &AccountId) -> Statement {
    Statement::new(
        "UPDATE oidc_grants SET session_digest = $2 WHERE session_digest = $1 AND account_id = $3",
    )
    .bind(old)
    .bind(new)
    .bind(account_id.as_str())
}

/// Up to `limit` grants whose back-channel logout is due at `now`, oldest first.
pub fn logouts_due(now: OffsetDateTime, limit: i64) -> Query<Vec<Grant>> {
    Query::new(
        Statement::new(format!(
            "SELECT {GRANT_COLUMNS} FROM oidc_grants WHERE logout_due_ms <= $1 \
             ORDER BY logout_due_ms LIMIT $2"
        ))
        .bind(to_ms(now))
        .bind(limit),
        |out| out.rows.iter().map(grant_from).collect(),
    )
}

/// Claims grant `id`'s due logout until `lease_until`, if it is still due
/// as `seen` (another sender has not claimed it since): `true` if claimed.
pub fn claim_logout(id: &str, seen: OffsetDateTime, lease_until: OffsetDateTime) -> Query<bool> {
    Query::new(
        Statement::new(
            "UPDATE oidc_grants SET logout_due_ms = $3 WHERE id = $1 AND logout_due_ms = $2",
        )
        .bind(id)
        .bind(to_ms(seen))
        .bind(to_ms(lease_until)),
        |out| Ok(out.rows_affected == 1),
    )
}

/// Records the outcome of an attempt at grant `id`'s logout, made under
/// the lease `held` (nothing changes if another sender has taken it since):
/// `next` is when to try again, `None` when nothing more is owed (sent, or
/// given up). `true` if recorded.
pub fn logout_attempted(
    id: &str,
    held: OffsetDateTime,
    attempts: i64,
    next: Option<OffsetDateTime>,
) -> Query<bool> {
    Query::new(
        Statement::new(
            "UPDATE oidc_grants SET logout_due_ms = $3, logout_attempts = $4 \
             WHERE id = $1 AND logout_due_ms = $2",
        )
        .bind(id)
        .bind(to_ms(held))
        .bind(next.map(to_ms))
        .bind(attempts),
        |out| Ok(out.rows_affected == 1),
    )
}

/// Revokes every live grant `client_id` holds for `account_id` (a consent
/// withdrawn); answers how many.
pub fn revoke_for_account_client(
    account_id: &AccountId,
    client_id: &str,
    now: OffsetDateTime,
) -> Query<u64> {
    Query::new(
        Statement::new(
            "UPDATE oidc_grants SET revoked_ms = $3, logout_due_ms = $3 \
             WHERE account_id = $1 AND client_id = $2 AND revoked_ms IS NULL",
        )
        .bind(account_id.as_str())
        .bind(client_id)
        .bind(to_ms(now)),
        |out| Ok(out.rows_affected),
    )
}

/// Whether `jti` of `client_id` is in the replay cache at `now` (spent, and
/// not yet forgotten); reads only.
pub fn assertion_id_spent(client_id: &str, jti: &str, now: OffsetDateTime) -> Query<bool> {
    Query::new(
        Statement::new(
            "SELECT 1 AS spent FROM oidc_assertion_ids WHERE client_id = $1 AND jti = $2 AND expires_ms > $3",
        )
        .bind(client_id)
        .bind(jti)
        .bind(to_ms(now)),
        |out| Ok(!out.rows.is_empty()),
    )
}

/// Records assertion `jti` of `client_id` as used until `expires_at`:
/// `true` if it was not in use, `false` for a replay. An entry that has
/// expired is taken over.
pub fn use_assertion_id(
    client_id: &str,
    jti: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Query<bool> {
    Query::new(
        Statement::new(
            "INSERT INTO oidc_assertion_ids (client_id, jti, expires_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO UPDATE SET expires_ms = excluded.expires_ms \
             WHERE oidc_assertion_ids.expires_ms <= $4",
        )
        .bind(client_id)
        .bind(jti)
        .bind(to_ms(expires_at))
        .bind(to_ms(now)),
        |out| Ok(out.rows_affected == 1),
    )
}

/// Deletes grants and assertion ids that expired before `now`; returns how many.
pub async fn purge_expired(store: &Store, now: OffsetDateTime) -> Result<u64, StoreError> {
    let mut conn = store.conn().await?;
    let mut n = 0;
    for sql in [
        "DELETE FROM oidc_grants WHERE expires_ms <= $1 AND logout_due_ms IS NULL",
        "DELETE FROM oidc_assertion_ids WHERE expires_ms <= $1",
    ] {
        n += sqlx::query(sql)
            .bind(to_ms(now))
            .execute(conn.conn())
            .await?
            .rows_affected();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::Duration;

    crate::engine_tests! {
        async fn an_assertion_id_is_used_once_until_it_expires(store: &Store) {
            let now = OffsetDateTime::now_utc();
            let exp = now + Duration::minutes(1);
            let mut conn = store.conn().await.unwrap();
            assert!(use_assertion_id("app", "j1", exp, now).run(conn.conn()).await.unwrap());
            assert!(!use_assertion_id("app", "j1", exp, now).run(conn.conn()).await.unwrap());
            assert!(use_assertion_id("other", "j1", exp, now).run(conn.conn()).await.unwrap());
            let later = exp + Duration::seconds(1);
            assert!(use_assertion_id("app", "j1", later + Duration::minutes(1), later).run(conn.conn()).await.unwrap());
        }

        async fn clients_are_added_once_updated_and_removed(store: &Store) {
            let now = OffsetDateTime::now_utc();
            let mut tx = store.begin().await.unwrap();
            add_client(&mut tx, "app", "{}", None, now).await.unwrap();
            tx.commit().await.unwrap();
            let mut tx = store.begin().await.unwrap();
            assert!(matches!(
                add_client(&mut tx, "app", "{}", None, now).await,
                Err(StoreError::Conflict { .. })
            ));
            drop(tx);
            let mut tx = store.begin().await.unwrap();
            assert!(update_client(&mut tx, "app", "{\"a\":1}", Some(Some("d")), now).await.unwrap());
            assert!(!update_client(&mut tx, "nobody", "{}", None, now).await.unwrap());
            tx.commit().await.unwrap();
            let got = client("app").run(store.conn().await.unwrap().conn()).await.unwrap().unwrap();
            assert_eq!((got.config.as_str(), got.secret_digest.as_deref()), ("{\"a\":1}", Some("d")));
            let mut tx = store.begin().await.unwrap();
            assert!(remove_client(&mut tx, "app", now).await.unwrap());
            tx.commit().await.unwrap();
            assert!(clients(store).await.unwrap().is_empty());
        }
    }
}
