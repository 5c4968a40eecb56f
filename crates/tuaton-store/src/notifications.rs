//! Notices owed to a person (e.g. "recovery of your account started"), queued
//! in the same transaction as the event they announce.
//!
//! Only the queue is built: no relay sends them yet, so `sent_at` stays empty.
//! The address is copied at queuing time so that changing the contact after
//! the event cannot redirect the notice about it.

use serde::Serialize;
use sqlx::{Any, Executor};
use time::OffsetDateTime;

use crate::{StoreError, Tx, from_ms, new_id, to_ms};

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Someone re-proofed the person's identity to add a passkey without logging in.
    RecoveryStarted,
}

impl NotificationKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::RecoveryStarted => "recovery_started",
        }
    }
}

/// How a notice reaches the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// To the account's contact e-mail address.
    Email,
}

impl Channel {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
        }
    }
}

/// A notice to queue.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// The account it concerns.
    pub account_id: &'a str,
    /// What it is about.
    pub kind: NotificationKind,
    /// How it is to be delivered.
    pub channel: Channel,
    /// Where to (personal data).
    pub address: &'a str,
}

/// A notice as stored.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationRecord {
    /// Opaque id.
    pub id: String,
    /// The account it concerns.
    pub account_id: String,
    /// Stored form of [`NotificationKind`].
    pub kind: String,
    /// Stored form of [`Channel`].
    pub channel: String,
    /// Where to.
    pub address: String,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was handed to the relay; `None` while queued.
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

type Row = (String, String, String, String, String, i64, Option<i64>);

fn from_row(r: Row) -> NotificationRecord {
    NotificationRecord {
        id: r.0,
        account_id: r.1,
        kind: r.2,
        channel: r.3,
        address: r.4,
        created_at: from_ms(r.5),
        sent_at: r.6.map(from_ms),
    }
}

/// Queues a notice; returns its id.
pub async fn queue(
    tx: &mut Tx,
    n: &NewNotification<'_>,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO notifications (id, account_id, kind, channel, address, created_ms, sent_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL)",
    )
    .bind(&id)
    .bind(n.account_id)
    .bind(n.kind.as_str())
    .bind(n.channel.as_str())
    .bind(n.address)
    .bind(to_ms(now))
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// Every notice about an account, oldest first.
pub async fn for_account<'e, E: Executor<'e, Database = Any>>(
    db: E,
    account_id: &str,
) -> Result<Vec<NotificationRecord>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, account_id, kind, channel, address, created_ms, sent_ms \
         FROM notifications WHERE account_id = $1 ORDER BY created_ms, id",
    )
    .bind(account_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Deletes notices created before `cutoff` (retention: they hold a contact
/// address); returns how many.
pub async fn purge_before(store: &crate::Store, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM notifications WHERE created_ms < $1")
        .bind(to_ms(cutoff))
        .execute(store.pool())
        .await?;
    Ok(r.rows_affected())
}
