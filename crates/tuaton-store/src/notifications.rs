//! Notices owed to a person (e.g. "recovery of your account started"), queued
//! in the same transaction as the event they announce, and the bookkeeping of
//! their delivery.
//!
//! The address is copied at queuing time so that changing the contact after
//! the event cannot redirect the notice about it.
//!
//! Delivery (the server's upkeep, `tuaton-server/src/notify/`) claims due
//! notices with [`claim_due`]: a conditional `UPDATE` writes a random claim
//! token and a lease end on rows nobody holds, then the rows carrying that
//! token are read back. Several processes on one PostgreSQL therefore never
//! send the same notice at once; a process that dies mid-send leaves its lease
//! to run out, and the notice is due again (so a notice is sent at least once,
//! and twice only if a process died between the relay accepting it and
//! [`mark_sent`]). A failed attempt is retried after a delay that doubles
//! ([`RetryPolicy`]); after the last attempt delivery is given up and audited.
//!
//! Non-goals: composing or sending messages (the server does that), and
//! reasons with personal data: `last_error` holds a short cause such as
//! `relay refused: 550`, never an address.

use serde::Serialize;
use serde_json::json;
use sqlx::{Any, Executor};
use time::{Duration, OffsetDateTime};
use tuaton_core::AccountId;

use crate::audit::{self, AuditEvent};
use crate::{Store, StoreError, Tx, from_ms, new_id, to_ms};

/// The audit action written when delivery of a notice is given up.
pub const GAVE_UP: &str = "notification.give_up";

/// The longest `last_error` kept; a relay's reason is cut to this.
const MAX_REASON_CHARS: usize = 200;

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Someone asked to recover the account with the ID card's details; the
    /// notice carries the link that cancels it.
    RecoveryRequested,
    /// A recovery was completed: a passkey was added without a login.
    RecoveryCompleted,
}

impl NotificationKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::RecoveryRequested => "recovery_requested",
            NotificationKind::RecoveryCompleted => "recovery_completed",
        }
    }

    /// The kind a stored form names; `None` for a kind this build does not know
    /// (written by a newer version sharing the database).
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "recovery_requested" => Some(NotificationKind::RecoveryRequested),
            // Written before recoveries waited: the grant had been given.
            "recovery_completed" | "recovery_started" => Some(NotificationKind::RecoveryCompleted),
            _ => None,
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

    /// The channel a stored form names; `None` for one this build does not know.
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Channel::Email),
            _ => None,
        }
    }
}

/// A notice to queue.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// The account it concerns.
    pub account_id: &'a AccountId,
    /// What it is about.
    pub kind: NotificationKind,
    /// How it is to be delivered.
    pub channel: Channel,
    /// Where to (personal data).
    pub address: &'a str,
    /// What it is about (a recovery's id), for the link it carries.
    pub reference: Option<&'a str>,
}

/// A notice as stored.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationRecord {
    /// Opaque id.
    pub id: String,
    /// The account it concerns.
    pub account_id: AccountId,
    /// Stored form of [`NotificationKind`].
    pub kind: String,
    /// Stored form of [`Channel`].
    pub channel: String,
    /// Where to.
    pub address: String,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the relay accepted it; `None` while waiting or after giving up.
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    /// Delivery attempts made, successful or not.
    pub attempts: i64,
    /// When it is next due (meaningless once sent or given up).
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    /// Why the last attempt failed, without personal data.
    pub last_error: Option<String>,
    /// When delivery was given up for good.
    #[serde(with = "time::serde::rfc3339::option")]
    pub failed_at: Option<OffsetDateTime>,
    /// What it is about (a recovery's id), for the link it carries.
    pub reference: Option<String>,
}

const COLUMNS: &str = "id, account_id, kind, channel, address, created_ms, sent_ms, \
                       attempts, next_attempt_ms, last_error, failed_ms, reference";

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
);

fn from_row(r: Row) -> Result<NotificationRecord, StoreError> {
    Ok(NotificationRecord {
        id: r.0,
        account_id: crate::stored_account_id(&r.1)?,
        kind: r.2,
        channel: r.3,
        address: r.4,
        created_at: from_ms(r.5),
        sent_at: r.6.map(from_ms),
        attempts: r.7,
        next_attempt_at: from_ms(r.8),
        last_error: r.9,
        failed_at: r.10.map(from_ms),
        reference: r.11,
    })
}

/// Queues a notice, due at once; returns its id.
pub async fn queue(
    tx: &mut Tx,
    n: &NewNotification<'_>,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO notifications (id, account_id, kind, channel, address, created_ms, sent_ms, \
         attempts, next_attempt_ms, reference) VALUES ($1, $2, $3, $4, $5, $6, NULL, 0, $6, $7)",
    )
    .bind(&id)
    .bind(n.account_id.as_str())
    .bind(n.kind.as_str())
    .bind(n.channel.as_str())
    .bind(n.address)
    .bind(to_ms(now))
    .bind(n.reference)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// Every notice about an account, oldest first.
pub async fn for_account<'e, E: Executor<'e, Database = Any>>(
    db: E,
    account_id: &AccountId,
) -> Result<Vec<NotificationRecord>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE account_id = $1 ORDER BY created_ms, id"
    ))
    .bind(account_id.as_str())
    .fetch_all(db)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// One notice by id.
pub async fn by_id<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
) -> Result<Option<NotificationRecord>, StoreError> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.map(from_row).transpose()
}

/// Deletes notices created before `cutoff` (retention: they hold a contact
/// address); returns how many.
pub async fn purge_before(store: &Store, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM notifications WHERE created_ms < $1")
        .bind(to_ms(cutoff))
        .execute(store.conn().await?.conn())
        .await?;
    Ok(r.rows_affected())
}

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt; each further failure doubles it.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// After this many failed attempts delivery is given up.
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    /// One minute doubling up to six hours, twelve attempts: a relay that is
    /// restarted costs a minute, and one down for a night (the attempts span
    /// about twenty hours) loses nothing; the cap keeps the late attempts four
    /// a day rather than one a week.
    fn default() -> Self {
        Self {
            first_delay: Duration::minutes(1),
            max_delay: Duration::hours(6),
            max_attempts: 12,
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt, after `failed` failed attempts (1 or more).
    pub fn delay_after(&self, failed: i64) -> Duration {
        // Past 2^20 the cap has long been reached; bounding the shift keeps
        // the multiplication from overflowing.
        let doublings = u32::try_from(failed.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        self.first_delay
            .checked_mul(1i32 << doublings)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }
}

/// A notice claimed for sending: until `claimed_until` no other claimer gets it.
#[derive(Debug, Clone)]
pub struct ClaimedNotification {
    /// The notice as it was when claimed.
    pub notice: NotificationRecord,
    /// The claim; [`mark_sent`], [`mark_failed`] and [`release`] act only while it holds.
    token: String,
    /// When the lease runs out.
    pub claimed_until: OffsetDateTime,
}

/// Which notices are waiting and due at `$1` with no live lease.
const DUE: &str = "sent_ms IS NULL AND failed_ms IS NULL AND next_attempt_ms <= $1 \
                   AND (claimed_until_ms IS NULL OR claimed_until_ms <= $1)";

/// Claims up to `limit` notices due at `now`, oldest due first, for `lease`.
///
/// The claim is one conditional `UPDATE`: of two processes claiming at once,
/// the second finds the rows the first took no longer due (PostgreSQL
/// re-checks the condition on the row it waited for; SQLite has one writer),
/// so no notice is claimed twice. The lease must outlast the sending of the
/// whole batch, or another process may send a notice again.
pub async fn claim_due(
    store: &Store,
    now: OffsetDateTime,
    lease: Duration,
    limit: i64,
) -> Result<Vec<ClaimedNotification>, StoreError> {
    let token = new_id();
    let until = now + lease;
    let claimed = sqlx::query(&format!(
        "UPDATE notifications SET claim_token = $2, claimed_until_ms = $3 \
         WHERE id IN (SELECT id FROM notifications WHERE {DUE} \
                      ORDER BY next_attempt_ms, created_ms LIMIT $4) \
         AND {DUE}"
    ))
    .bind(to_ms(now))
    .bind(&token)
    .bind(to_ms(until))
    .bind(limit)
    .execute(store.conn().await?.conn())
    .await?;
    if claimed.rows_affected() == 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE claim_token = $1 \
         ORDER BY next_attempt_ms, created_ms"
    ))
    .bind(&token)
    .fetch_all(store.conn().await?.conn())
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(ClaimedNotification {
                notice: from_row(r)?,
                token: token.clone(),
                claimed_until: until,
            })
        })
        .collect()
}

/// Records that the relay accepted the notice. Returns `false` if the claim
/// no longer held (the lease ran out and another process took the notice).
pub async fn mark_sent(
    store: &Store,
    claimed: &ClaimedNotification,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut conn = store.conn().await?;
    let done = sqlx::query(
        "UPDATE notifications SET sent_ms = $1, attempts = attempts + 1, last_error = NULL, \
         claim_token = NULL, claimed_until_ms = NULL \
         WHERE id = $2 AND claim_token = $3 AND sent_ms IS NULL AND failed_ms IS NULL",
    )
    .bind(to_ms(now))
    .bind(&claimed.notice.id)
    .bind(&claimed.token)
    .execute(conn.conn())
    .await?;
    let forgotten = forget_if_erased(conn.conn(), &claimed.notice.id).await?;
    drop(conn);
    if forgotten {
        store.flush_erasure().await?;
    }
    Ok(done.rows_affected() == 1)
}

/// Deletes a delivered (or given-up) notice of an erased account: it was
/// kept past the erasure only to be delivered. `true` if it was deleted (the
/// caller then makes the erasure final on disk).
async fn forget_if_erased<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "DELETE FROM notifications WHERE id = $1 AND (sent_ms IS NOT NULL OR failed_ms IS NOT NULL) \
         AND account_id IN (SELECT id FROM accounts WHERE state_reason = 'erased')",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Gives a claimed notice back unattempted (the batch was cut short), due
/// again at once and with no attempt counted. Returns `false` if the claim no
/// longer held.
pub async fn release(store: &Store, claimed: &ClaimedNotification) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE notifications SET claim_token = NULL, claimed_until_ms = NULL \
         WHERE id = $1 AND claim_token = $2 AND sent_ms IS NULL AND failed_ms IS NULL",
    )
    .bind(&claimed.notice.id)
    .bind(&claimed.token)
    .execute(store.conn().await?.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What [`mark_failed`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// The notice will be tried again at this time.
    RetryAt(OffsetDateTime),
    /// That was the last attempt: delivery is given up, and audited.
    GaveUp,
    /// The claim no longer held; nothing was recorded.
    ClaimLost,
}

/// Records a failed attempt with `reason` (a short cause without personal
/// data: it is stored and may be audited). Schedules the next attempt by
/// `policy`, or gives delivery up after the last one, writing an audit record
/// (ids only) in the same transaction.
pub async fn mark_failed(
    store: &Store,
    claimed: &ClaimedNotification,
    now: OffsetDateTime,
    reason: &str,
    policy: &RetryPolicy,
) -> Result<FailureOutcome, StoreError> {
    let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
    let mut tx = store.begin().await?;
    // Counting the attempt and releasing the claim first takes the row (lock on
    // PostgreSQL, write lock on SQLite), so the decision below is made once.
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "UPDATE notifications SET attempts = attempts + 1, last_error = $1, \
         claim_token = NULL, claimed_until_ms = NULL \
         WHERE id = $2 AND claim_token = $3 AND sent_ms IS NULL AND failed_ms IS NULL \
         RETURNING attempts, account_id, kind",
    )
    .bind(&reason)
    .bind(&claimed.notice.id)
    .bind(&claimed.token)
    .fetch_optional(tx.conn())
    .await?;
    let Some((attempts, account_id, kind)) = row else {
        tx.rollback().await?;
        return Ok(FailureOutcome::ClaimLost);
    };
    let mut forgotten = false;
    let outcome = if attempts >= policy.max_attempts {
        sqlx::query("UPDATE notifications SET failed_ms = $1 WHERE id = $2")
            .bind(to_ms(now))
            .bind(&claimed.notice.id)
            .execute(tx.conn())
            .await?;
        let event =
            AuditEvent::failure("system", GAVE_UP, claimed.notice.id.clone()).with_details(json!({
                "account_id": account_id,
                "kind": kind,
                "channel": claimed.notice.channel,
                "attempts": attempts,
                "last_error": reason,
            }));
        audit::append(&mut tx, now, &event).await?;
        forgotten = forget_if_erased(tx.conn(), &claimed.notice.id).await?;
        FailureOutcome::GaveUp
    } else {
        let next = now + policy.delay_after(attempts);
        sqlx::query("UPDATE notifications SET next_attempt_ms = $1 WHERE id = $2")
            .bind(to_ms(next))
            .bind(&claimed.notice.id)
            .execute(tx.conn())
            .await?;
        FailureOutcome::RetryAt(next)
    };
    tx.commit().await?;
    if forgotten {
        store.flush_erasure().await?;
    }
    Ok(outcome)
}

/// How many notices are waiting (neither sent nor given up), due or not.
pub async fn waiting_count(store: &Store) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM notifications WHERE sent_ms IS NULL AND failed_ms IS NULL",
    )
    .fetch_one(store.conn().await?.conn())
    .await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::HashSet;

    use super::*;
    use crate::accounts::{self, NewAccount};

    const LEASE: Duration = Duration::minutes(5);

    fn t0() -> OffsetDateTime {
        // Whole milliseconds, as the database keeps them.
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    async fn account(store: &Store) -> AccountId {
        let mut tx = store.begin().await.unwrap();
        let a = accounts::insert(
            &mut tx,
            &NewAccount {
                citizen_id: format!("1{}", &new_id()[..12]),
                thai_given: "สมชาย".into(),
                thai_family: "ใจดี".into(),
                en_given: None,
                en_family: None,
                birth_date: "1964-02-22".into(),
                contact_email: Some("somchai@example.test".into()),
                ial: tuaton_core::Ial::Ial2_1,
            },
            &new_id(),
            t0(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        a.id
    }

    async fn queue_n(
        store: &Store,
        account_id: &AccountId,
        n: usize,
        at: OffsetDateTime,
    ) -> Vec<String> {
        let mut tx = store.begin().await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..n {
            let new = NewNotification {
                account_id,
                kind: NotificationKind::RecoveryRequested,
                channel: Channel::Email,
                address: "somchai@example.test",
                reference: None,
            };
            ids.push(queue(&mut tx, &new, at).await.unwrap());
        }
        tx.commit().await.unwrap();
        ids
    }

    async fn notice(store: &Store, id: &str) -> NotificationRecord {
        by_id(store.conn().await.unwrap().conn(), id)
            .await
            .unwrap()
            .unwrap()
    }

    #[test]
    fn the_delay_doubles_from_a_minute_and_stops_at_six_hours() {
        let p = RetryPolicy::default();
        let minutes: Vec<i64> = (1..=12).map(|n| p.delay_after(n).whole_minutes()).collect();
        assert_eq!(
            minutes,
            vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360, 360]
        );
        assert_eq!(p.delay_after(i64::MAX), Duration::hours(6));
        assert_eq!(p.delay_after(0), Duration::minutes(1));
    }

    crate::engine_tests! {
        async fn a_notice_is_claimed_by_one_claimer_only(store: &Store) {
            let acc = account(store).await;
            let ids = queue_n(store, &acc, 30, t0()).await;
            // Three processes claiming at once: no notice in two batches.
            let (a, b, c) = tokio::join!(
                claim_due(store, t0(), LEASE, 8),
                claim_due(store, t0(), LEASE, 8),
                claim_due(store, t0(), LEASE, 8)
            );
            let batches: Vec<Vec<String>> = [a, b, c]
                .into_iter()
                .map(|r| r.unwrap().into_iter().map(|c| c.notice.id).collect())
                .collect();
            let mut seen: Vec<String> = batches.concat();
            let distinct: HashSet<&String> = seen.iter().collect();
            assert_eq!(distinct.len(), seen.len(), "a notice was claimed twice: {batches:?}");
            // Whatever is left goes to later claims, each notice exactly once.
            loop {
                let more = claim_due(store, t0(), LEASE, 8).await.unwrap();
                if more.is_empty() {
                    break;
                }
                seen.extend(more.into_iter().map(|c| c.notice.id));
            }
            seen.sort();
            let mut expected = ids.clone();
            expected.sort();
            assert_eq!(seen, expected);
            assert_eq!(waiting_count(store).await.unwrap(), 30, "claimed is still waiting");
        }

        async fn an_expired_lease_makes_the_notice_due_again(store: &Store) {
            let acc = account(store).await;
            let ids = queue_n(store, &acc, 1, t0()).await;
            let first = claim_due(store, t0(), LEASE, 10).await.unwrap();
            assert_eq!(first.len(), 1);
            assert_eq!(first[0].claimed_until, t0() + LEASE);
            // Within the lease nobody else gets it.
            let later = t0() + LEASE - Duration::seconds(1);
            assert!(claim_due(store, later, LEASE, 10).await.unwrap().is_empty());
            // The first claimer died; once its lease runs out the notice is due again.
            let after = t0() + LEASE;
            let second = claim_due(store, after, LEASE, 10).await.unwrap();
            assert_eq!(second.len(), 1);
            assert_eq!(second[0].notice.id, ids[0]);
            // The first claimer's late report changes nothing; the holder's counts.
            assert!(!mark_sent(store, &first[0], after).await.unwrap());
            assert_eq!(
                mark_failed(store, &first[0], after, "relay timed out", &RetryPolicy::default()).await.unwrap(),
                FailureOutcome::ClaimLost
            );
            assert!(notice(store, &ids[0]).await.sent_at.is_none());
            assert!(mark_sent(store, &second[0], after).await.unwrap());
            let n = notice(store, &ids[0]).await;
            assert_eq!((n.sent_at, n.attempts), (Some(after), 1));
            assert_eq!(waiting_count(store).await.unwrap(), 0);
            // Sent is never due again.
            assert!(claim_due(store, after + Duration::days(1), LEASE, 10).await.unwrap().is_empty());
        }

        async fn a_released_notice_is_due_at_once_with_no_attempt_counted(store: &Store) {
            let acc = account(store).await;
            let ids = queue_n(store, &acc, 1, t0()).await;
            let c = claim_due(store, t0(), LEASE, 10).await.unwrap();
            assert!(release(store, &c[0]).await.unwrap());
            let again = claim_due(store, t0(), LEASE, 10).await.unwrap();
            assert_eq!(again.len(), 1);
            assert_eq!(notice(store, &ids[0]).await.attempts, 0);
            assert!(!release(store, &c[0]).await.unwrap(), "the old claim is gone");
        }

        async fn failed_attempts_back_off_doubling(store: &Store) {
            let acc = account(store).await;
            let ids = queue_n(store, &acc, 1, t0()).await;
            let policy = RetryPolicy::default();
            let mut now = t0();
            for (attempt, wait) in [(1, 1), (2, 2), (3, 4), (4, 8)] {
                let c = claim_due(store, now, LEASE, 10).await.unwrap();
                assert_eq!(c.len(), 1, "due at attempt {attempt}");
                let outcome = mark_failed(store, &c[0], now, "relay refused: 451", &policy).await.unwrap();
                let next = now + Duration::minutes(wait);
                assert_eq!(outcome, FailureOutcome::RetryAt(next));
                let n = notice(store, &ids[0]).await;
                assert_eq!(
                    (n.attempts, n.next_attempt_at, n.last_error.as_deref(), n.sent_at, n.failed_at),
                    (attempt, next, Some("relay refused: 451"), None, None)
                );
                // Not due a moment before its time.
                assert!(claim_due(store, next - Duration::seconds(1), LEASE, 10).await.unwrap().is_empty());
                now = next;
            }
            assert_eq!(waiting_count(store).await.unwrap(), 1, "nothing lost");
        }

        async fn delivery_is_given_up_after_the_last_attempt_and_audited(store: &Store) {
            let acc = account(store).await;
            let ids = queue_n(store, &acc, 1, t0()).await;
            let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
            let mut now = t0();
            let mut outcomes = Vec::new();
            for _ in 0..3 {
                let c = claim_due(store, now, LEASE, 10).await.unwrap();
                assert_eq!(c.len(), 1);
                let long = format!("relay refused: 550 {}", "x".repeat(400));
                outcomes.push(mark_failed(store, &c[0], now, &long, &policy).await.unwrap());
                now += Duration::hours(1);
            }
            assert!(matches!(outcomes[0], FailureOutcome::RetryAt(_)));
            assert!(matches!(outcomes[1], FailureOutcome::RetryAt(_)));
            assert_eq!(outcomes[2], FailureOutcome::GaveUp);
            let n = notice(store, &ids[0]).await;
            assert_eq!((n.attempts, n.failed_at, n.sent_at), (3, Some(t0() + Duration::hours(2)), None));
            assert_eq!(n.last_error.as_ref().map(|e| e.chars().count()), Some(MAX_REASON_CHARS));
            assert!(claim_due(store, now + Duration::days(30), LEASE, 10).await.unwrap().is_empty());
            assert_eq!(waiting_count(store).await.unwrap(), 0);

            let recs = audit::list(store, 0, 100).await.unwrap();
            let gave_up: Vec<_> = recs.iter().filter(|r| r.action == GAVE_UP).collect();
            assert_eq!(gave_up.len(), 1, "one record, for the last attempt only");
            let r = gave_up[0];
            assert_eq!((r.target.as_str(), r.outcome.as_str(), r.actor.as_str()), (ids[0].as_str(), "failure", "system"));
            assert!(r.details.contains(acc.as_str()) && r.details.contains("\"attempts\":3"), "{}", r.details);
            assert!(!r.details.contains("somchai") && !r.details.contains("example.test"), "{}", r.details);
            assert!(audit::verify(store).await.unwrap().is_intact());
        }
    }
}
