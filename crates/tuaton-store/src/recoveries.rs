//! Account recoveries waiting out their cooling-off period.
//!
//! A recovery is asked for with the ID card's details; it stays `pending`
//! until it is cancelled (by the owner, with a passkey) or completed (a
//! passkey registered with the grant it gives once it is ready). Both ends
//! are conditional updates on `state = 'pending'`, so a cancel and a
//! completion racing each other cannot both win. The requester's token is
//! kept only as its SHA-256 digest.

use serde::Serialize;
use sqlx::{Any, Executor};
use time::OffsetDateTime;
use tuaton_core::AccountId;

use crate::{StoreError, Tx, from_ms, to_ms};

/// How a recovery proved the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryPath {
    /// The registry check again, remotely: waits out the cooling-off period.
    Remote,
    /// An officer proofed the person at the counter: ready at once.
    Officer,
    /// The registry check with an accepted, liveness-checked face match: ready at once.
    FaceMatch,
}

impl RecoveryPath {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryPath::Remote => "remote",
            RecoveryPath::Officer => "officer",
            RecoveryPath::FaceMatch => "face_match",
        }
    }

    fn from_stored(s: &str) -> Result<Self, StoreError> {
        [Self::Remote, Self::Officer, Self::FaceMatch]
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown recovery path `{s}`")))
    }
}

/// Where a recovery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryState {
    /// Waiting, or ready to give a grant.
    Pending,
    /// The owner cancelled it.
    Cancelled,
    /// A passkey was registered with its grant.
    Completed,
}

impl RecoveryState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryState::Pending => "pending",
            RecoveryState::Cancelled => "cancelled",
            RecoveryState::Completed => "completed",
        }
    }

    fn from_stored(s: &str) -> Result<Self, StoreError> {
        [Self::Pending, Self::Cancelled, Self::Completed]
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown recovery state `{s}`")))
    }
}

/// One recovery as stored.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryRecord {
    /// Opaque id, named in the owner's notice.
    pub id: String,
    /// The account.
    pub account_id: AccountId,
    /// SHA-256 (hex) of the requester's token.
    #[serde(skip)]
    pub token_digest: String,
    /// The proofing decision it rests on.
    pub decision_id: String,
    /// How the person was proofed.
    pub path: RecoveryPath,
    /// Where it stands.
    pub state: RecoveryState,
    /// When it was asked for.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// From when it gives a grant.
    #[serde(with = "time::serde::rfc3339")]
    pub ready_at: OffsetDateTime,
    /// After this it gives nothing.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was cancelled or completed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
}

impl RecoveryRecord {
    /// Pending and not past its end.
    pub fn is_open(&self, now: OffsetDateTime) -> bool {
        self.state == RecoveryState::Pending && now < self.expires_at
    }
}

const COLUMNS: &str = "id, account_id, token_digest, decision_id, path, state, requested_ms, \
                       ready_ms, expires_ms, ended_ms";

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
);

fn from_row(r: Row) -> Result<RecoveryRecord, StoreError> {
    Ok(RecoveryRecord {
        id: r.0,
        account_id: crate::stored_account_id(&r.1)?,
        token_digest: r.2,
        decision_id: r.3,
        path: RecoveryPath::from_stored(&r.4)?,
        state: RecoveryState::from_stored(&r.5)?,
        requested_at: from_ms(r.6),
        ready_at: from_ms(r.7),
        expires_at: from_ms(r.8),
        ended_at: r.9.map(from_ms),
    })
}

/// Stores a new, pending recovery.
pub async fn insert(tx: &mut Tx, r: &RecoveryRecord) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO recoveries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)"
    ))
    .bind(&r.id)
    .bind(r.account_id.as_str())
    .bind(&r.token_digest)
    .bind(&r.decision_id)
    .bind(r.path.as_str())
    .bind(RecoveryState::Pending.as_str())
    .bind(to_ms(r.requested_at))
    .bind(to_ms(r.ready_at))
    .bind(to_ms(r.expires_at))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One recovery by id.
pub async fn by_id<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
) -> Result<Option<RecoveryRecord>, StoreError> {
    let row: Option<Row> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM recoveries WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?;
    row.map(from_row).transpose()
}

/// The account's recoveries that are pending and not past their end, oldest first.
pub async fn open_for_account<'e, E: Executor<'e, Database = Any>>(
    db: E,
    account_id: &AccountId,
    now: OffsetDateTime,
) -> Result<Vec<RecoveryRecord>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM recoveries WHERE account_id = $1 AND state = 'pending' \
         AND expires_ms > $2 ORDER BY requested_ms, id"
    ))
    .bind(account_id.as_str())
    .bind(to_ms(now))
    .fetch_all(db)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// Ends a pending recovery (`to` is cancelled or completed); `false` if it
/// was no longer pending or already past its end, and then nothing changed.
pub async fn end(
    tx: &mut Tx,
    id: &str,
    to: RecoveryState,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE recoveries SET state = $1, ended_ms = $2 \
         WHERE id = $3 AND state = 'pending' AND expires_ms > $2",
    )
    .bind(to.as_str())
    .bind(to_ms(now))
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Holds the account's row until `tx` ends, so requests for one account are
/// counted and recorded one after another (SQLite's write transaction
/// already serialises every writer).
pub async fn lock_account(tx: &mut Tx, account_id: &AccountId) -> Result<(), StoreError> {
    if tx.engine() == crate::Engine::Postgres {
        sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
            .bind(account_id.as_str())
            .fetch_optional(tx.conn())
            .await?;
    }
    Ok(())
}

/// Cancels every pending recovery of the account but `kept`; returns their ids.
pub async fn cancel_others(
    tx: &mut Tx,
    account_id: &AccountId,
    kept: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "UPDATE recoveries SET state = 'cancelled', ended_ms = $1 \
         WHERE account_id = $2 AND state = 'pending' AND id <> $3 RETURNING id",
    )
    .bind(to_ms(now))
    .bind(account_id.as_str())
    .bind(kept)
    .fetch_all(tx.conn())
    .await?;
    let mut ids: Vec<String> = rows.into_iter().map(|(id,)| id).collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Store;
    use time::Duration;

    async fn an_account(store: &Store, now: OffsetDateTime) -> AccountId {
        let mut tx = store.begin().await.unwrap();
        let new = crate::accounts::NewAccount {
            citizen_id: "1999000000017".into(),
            thai_given: "สมชาย".into(),
            thai_family: "ใจดี".into(),
            en_given: None,
            en_family: None,
            birth_date: "1964-02-22".into(),
            contact_email: None,
            ial: tuaton_core::Ial::Ial2_1,
        };
        let acc = crate::accounts::insert(&mut tx, &new, &crate::new_id(), now)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        acc.id
    }

    crate::engine_tests! {
        async fn a_recovery_ends_once_and_only_while_open(store: &Store) {
            let now = OffsetDateTime::now_utc();
            let account_id = an_account(store, now).await;
            let record = |id: &str| RecoveryRecord {
                id: id.into(),
                account_id: account_id.clone(),
                token_digest: "00".repeat(32),
                decision_id: "d".into(),
                path: RecoveryPath::Remote,
                state: RecoveryState::Pending,
                requested_at: now,
                ready_at: now + Duration::hours(72),
                expires_at: now + Duration::days(10),
                ended_at: None,
            };
            let mut tx = store.begin().await.unwrap();
            insert(&mut tx, &record("r1")).await.unwrap();
            insert(&mut tx, &record("r2")).await.unwrap();
            tx.commit().await.unwrap();
            let open = open_for_account(store.conn().await.unwrap().conn(), &account_id, now).await.unwrap();
            assert_eq!(open.len(), 2);

            let mut tx = store.begin().await.unwrap();
            assert!(end(&mut tx, "r1", RecoveryState::Cancelled, now).await.unwrap());
            assert!(!end(&mut tx, "r1", RecoveryState::Completed, now).await.unwrap(), "ends once");
            let late = now + Duration::days(11);
            assert!(!end(&mut tx, "r2", RecoveryState::Completed, late).await.unwrap(), "not past its end");
            tx.commit().await.unwrap();
            let r1 = by_id(store.conn().await.unwrap().conn(), "r1").await.unwrap().unwrap();
            assert_eq!((r1.state, r1.ended_at.is_some()), (RecoveryState::Cancelled, true));
            assert!(!r1.is_open(now));
            let open = open_for_account(store.conn().await.unwrap().conn(), &account_id, now).await.unwrap();
            assert_eq!(open.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r2"]);
            assert!(open_for_account(store.conn().await.unwrap().conn(), &account_id, late).await.unwrap().is_empty());
        }
    }
}
