//! Key lifecycle: which backend key serves which purpose, and where it is in its life.
//!
//! A managed key moves `pending → active → retiring → retired → destroyed`,
//! forward only ([`KeyState::check_transition`]). Rotation publishes the next
//! key (pending: in the JWKS, signing nothing) for a pre-publication window,
//! then in one transaction demotes the active key to retiring and activates
//! the new one. A retiring key stays published until everything it signed has
//! expired (`verify_until`, recorded by signers through
//! [`extend_verify_until`]) plus [`RETIRING_GRACE`]; then it is retired
//! (unpublished) and may be destroyed.
//!
//! The decisions are pure functions of the stored keys and a time passed in
//! ([`RotationPlan::new`], [`due_transitions`], [`check_retire`],
//! [`check_destroy`]); the functions that write apply them with conditional
//! `UPDATE`s (`WHERE state = 'pending' AND activate_after_ms <= now`…), so
//! several processes sharing one PostgreSQL running [`tick`] at once apply
//! each transition exactly once. Every transition appends an audit record in
//! the same transaction.
//!
//! Non-goals: key material and the backend (the caller generates the key in
//! its backend and hands the reference here; it destroys the material after
//! [`destroy`] commits). Algorithms are tuaton-core's
//! [`SignatureAlgorithm`], stored by their JOSE names.

mod error;
mod lifecycle;

use serde::Serialize;
use serde_json::json;
use sqlx::{Any, Executor};
use time::OffsetDateTime;
use tuaton_core::{AccountId, SignatureAlgorithm};

pub use error::KeysError;
use error::rfc3339;
pub use lifecycle::*;

use crate::audit::{self, AuditEvent};
use crate::{Store, StoreError, Tx, from_ms, new_id, to_ms};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    purpose: String,
    account_id: Option<String>,
    state: String,
    algorithm: String,
    backend: String,
    key_ref: String,
    created_ms: i64,
    activate_after_ms: i64,
    activated_ms: Option<i64>,
    retiring_ms: Option<i64>,
    retired_ms: Option<i64>,
    destroyed_ms: Option<i64>,
    verify_until_ms: Option<i64>,
    destroy_reason: Option<String>,
}

impl TryFrom<Row> for ManagedKey {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(ManagedKey {
            id: r.id,
            purpose: KeyPurpose::parse_stored(&r.purpose)?,
            account_id: r
                .account_id
                .as_deref()
                .map(crate::stored_account_id)
                .transpose()?,
            state: KeyState::parse_stored(&r.state)?,
            algorithm: r
                .algorithm
                .parse()
                .map_err(|_| StoreError::Corrupt("a managed key's algorithm is unknown".into()))?,
            backend: r.backend,
            key_ref: r.key_ref,
            created_at: from_ms(r.created_ms),
            activate_after: from_ms(r.activate_after_ms),
            activated_at: r.activated_ms.map(from_ms),
            retiring_at: r.retiring_ms.map(from_ms),
            retired_at: r.retired_ms.map(from_ms),
            destroyed_at: r.destroyed_ms.map(from_ms),
            verify_until: r.verify_until_ms.map(from_ms),
            destroy_reason: r.destroy_reason,
        })
    }
}

const COLUMNS: &str = "id, purpose, account_id, state, algorithm, backend, key_ref, created_ms, \
                       activate_after_ms, activated_ms, retiring_ms, retired_ms, destroyed_ms, \
                       verify_until_ms, destroy_reason";

async fn query_keys<'e, E: Executor<'e, Database = Any>>(
    db: E,
    condition: &str,
    binds: &[&str],
    ms: Option<i64>,
) -> Result<Vec<ManagedKey>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM managed_keys WHERE {condition} ORDER BY purpose, created_ms, activate_after_ms, id"
    );
    let mut q = sqlx::query_as::<_, Row>(&sql);
    for b in binds {
        q = q.bind(*b);
    }
    if let Some(ms) = ms {
        q = q.bind(ms);
    }
    q.fetch_all(db)
        .await?
        .into_iter()
        .map(ManagedKey::try_from)
        .collect()
}

/// Every managed key, by purpose and age.
pub async fn list<'e, E: Executor<'e, Database = Any>>(
    db: E,
) -> Result<Vec<ManagedKey>, StoreError> {
    query_keys(db, "1 = 1", &[], None).await
}

/// The key with this id.
pub async fn by_id<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
) -> Result<Option<ManagedKey>, StoreError> {
    Ok(query_keys(db, "id = $1", &[id], None)
        .await?
        .into_iter()
        .next())
}

/// The keys of a purpose whose public keys verifiers must be able to fetch
/// now: pending (pre-published), active and retiring.
pub async fn publishable<'e, E: Executor<'e, Database = Any>>(
    db: E,
    purpose: KeyPurpose,
) -> Result<Vec<ManagedKey>, StoreError> {
    query_keys(
        db,
        "purpose = $1 AND state IN ('pending', 'active', 'retiring')",
        &[purpose.as_str()],
        None,
    )
    .await
}

/// The service key that signs for `purpose` now, if any. A key is never
/// returned before its pre-publication window ended, whatever its state.
pub async fn signing_key<'e, E: Executor<'e, Database = Any>>(
    db: E,
    purpose: KeyPurpose,
    now: OffsetDateTime,
) -> Result<Option<ManagedKey>, StoreError> {
    Ok(query_keys(
        db,
        "purpose = $1 AND account_id IS NULL AND state = 'active' AND activate_after_ms <= $2",
        &[purpose.as_str()],
        Some(to_ms(now)),
    )
    .await?
    .into_iter()
    .next())
}

/// The key of `purpose`'s `algorithm` line that signs now, if any: a
/// purpose may keep a line per algorithm (an agency's ID tokens in RS256
/// beside the ES256 default).
pub async fn signing_key_for<'e, E: Executor<'e, Database = Any>>(
    db: E,
    purpose: KeyPurpose,
    algorithm: SignatureAlgorithm,
    now: OffsetDateTime,
) -> Result<Option<ManagedKey>, StoreError> {
    Ok(query_keys(
        db,
        "purpose = $1 AND account_id IS NULL AND state = 'active' AND algorithm = $2 \
         AND activate_after_ms <= $3",
        &[purpose.as_str(), algorithm.jose_name()],
        Some(to_ms(now)),
    )
    .await?
    .into_iter()
    .next())
}

/// [`signing_key_for`] as a batch query, read in one round trip with others.
pub fn signing_key_query(
    purpose: KeyPurpose,
    algorithm: SignatureAlgorithm,
    now: OffsetDateTime,
) -> crate::batch::Query<Option<ManagedKey>> {
    crate::batch::Query::new(
        crate::batch::Statement::new(format!(
            "SELECT {COLUMNS} FROM managed_keys WHERE purpose = $1 AND account_id IS NULL \
             AND state = 'active' AND algorithm = $2 AND activate_after_ms <= $3 \
             ORDER BY purpose, created_ms, activate_after_ms, id"
        ))
        .bind(purpose.as_str())
        .bind(algorithm.jose_name())
        .bind(to_ms(now)),
        crate::batch::first_as::<Row, ManagedKey>,
    )
}

/// The key of the certificate signing request `request_id` signs under,
/// for a batch.
pub fn of_signing_request(request_id: &str) -> crate::batch::Query<Option<ManagedKey>> {
    crate::batch::Query::new(
        crate::batch::Statement::new(format!(
            "SELECT {COLUMNS} FROM managed_keys WHERE id = (SELECT key_id FROM certificates \
             WHERE id = (SELECT certificate_id FROM signing_requests WHERE id = $1))"
        ))
        .bind(request_id),
        crate::batch::first_as::<Row, ManagedKey>,
    )
}

/// The account's own signing key now, if any.
pub async fn user_signing_key<'e, E: Executor<'e, Database = Any>>(
    db: E,
    account_id: &AccountId,
    now: OffsetDateTime,
) -> Result<Option<ManagedKey>, StoreError> {
    Ok(query_keys(
        db,
        "purpose = $1 AND account_id = $2 AND state = 'active' AND activate_after_ms <= $3",
        &[KeyPurpose::UserSigning.as_str(), account_id.as_str()],
        Some(to_ms(now)),
    )
    .await?
    .into_iter()
    .next())
}

/// Pending keys whose pre-publication window has ended.
pub async fn due_for_activation<'e, E: Executor<'e, Database = Any>>(
    db: E,
    now: OffsetDateTime,
) -> Result<Vec<ManagedKey>, StoreError> {
    query_keys(
        db,
        "state = 'pending' AND activate_after_ms <= $1",
        &[],
        Some(to_ms(now)),
    )
    .await
}

/// Records that `id` signed something valid until `until`: the key stays
/// verifiable (published, not destroyable) at least that long. Only moves
/// `verify_until` later. Signers call it for what they sign (an id token's
/// `exp`, a certificate's `notAfter`); not audited, since it is on the signing path.
pub async fn extend_verify_until(
    store: &Store,
    id: &str,
    until: OffsetDateTime,
) -> Result<(), KeysError> {
    let mut tx = store.begin().await?;
    let done = sqlx::query(
        "UPDATE managed_keys SET verify_until_ms = CASE \
           WHEN verify_until_ms IS NULL OR verify_until_ms < $1 THEN $1 ELSE verify_until_ms END \
         WHERE id = $2 AND state IN ('active', 'retiring')",
    )
    .bind(to_ms(until))
    .bind(id)
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 0 {
        let key = by_id(tx.conn(), id).await?;
        return Err(match key {
            None => KeysError::NotFound { id: id.to_owned() },
            Some(k) => KeysError::NotSigning {
                id: k.id,
                state: k.state,
            },
        });
    }
    tx.commit().await?;
    Ok(())
}

/// A key just generated in a backend, to record as pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// What it is for.
    pub purpose: KeyPurpose,
    /// The owning account, for per-account keys only.
    pub account_id: Option<AccountId>,
    /// The algorithm.
    pub algorithm: SignatureAlgorithm,
    /// Backend name.
    pub backend: String,
    /// The backend's reference.
    pub key_ref: String,
    /// End of its pre-publication window.
    pub activate_after: OffsetDateTime,
    /// The active key the rotation was planned against (`None`: there was
    /// none). If another process changed the active key meanwhile, the plan
    /// (and its pre-publication window) no longer holds and the insert is
    /// refused.
    pub replaces: Option<String>,
}

/// Records a freshly generated key as pending (published, not signing), with
/// its audit record. A second pending key for the same purpose (or account)
/// is refused with [`KeysError::AlreadyPending`].
pub async fn insert_pending(
    tx: &mut Tx,
    new: &NewKey,
    now: OffsetDateTime,
    actor: &str,
) -> Result<ManagedKey, KeysError> {
    if new.purpose.is_per_account() != new.account_id.is_some() {
        return Err(KeysError::AccountMismatch {
            purpose: new.purpose,
        });
    }
    // Checked first because a failed INSERT aborts a PostgreSQL transaction;
    // the unique index still refuses the loser of a race (as a conflict).
    // Service keys have a line per algorithm; per-user keys one line.
    let line = new.purpose.line(new.algorithm);
    let pending = query_keys(
        tx.conn(),
        "purpose = $1 AND COALESCE(account_id, '') = $2 AND state = 'pending' \
         AND ($3 = '' OR algorithm = $3 OR account_id IS NOT NULL)",
        &[
            new.purpose.as_str(),
            new.account_id.as_ref().map_or("", AccountId::as_str),
            line,
        ],
        None,
    )
    .await?;
    if let Some(p) = pending.into_iter().next() {
        return Err(KeysError::AlreadyPending {
            purpose: p.purpose,
            id: p.id,
            activate_after: p.activate_after,
        });
    }
    let active = query_keys(
        tx.conn(),
        "purpose = $1 AND COALESCE(account_id, '') = $2 AND state = 'active' \
         AND ($3 = '' OR algorithm = $3 OR account_id IS NOT NULL)",
        &[
            new.purpose.as_str(),
            new.account_id.as_ref().map_or("", AccountId::as_str),
            line,
        ],
        None,
    )
    .await?
    .into_iter()
    .next()
    .map(|k| k.id);
    if active != new.replaces {
        return Err(KeysError::PlanStale {
            purpose: new.purpose,
        });
    }
    let id = new_id();
    sqlx::query(
        "INSERT INTO managed_keys (id, purpose, account_id, state, algorithm, backend, key_ref, \
         created_ms, activate_after_ms) VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(new.purpose.as_str())
    .bind(new.account_id.as_ref().map(AccountId::as_str))
    .bind(new.algorithm.jose_name())
    .bind(&new.backend)
    .bind(&new.key_ref)
    .bind(to_ms(now))
    .bind(to_ms(new.activate_after.max(now)))
    .execute(tx.conn())
    .await?;
    let key = by_id(tx.conn(), &id).await?.ok_or(StoreError::NotFound {
        what: "managed key",
    })?;
    let details = json!({
        "purpose": key.purpose,
        "account_id": key.account_id,
        "algorithm": key.algorithm,
        "backend": key.backend,
        "key_ref": key.key_ref,
        "activate_after": rfc3339(&key.activate_after),
    });
    audit::append(
        tx,
        now,
        &AuditEvent::success(actor, "key.pending", &key.id).with_details(details),
    )
    .await?;
    Ok(key)
}

/// A transition that was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedTransition {
    /// The key.
    pub id: String,
    /// Its purpose.
    pub purpose: KeyPurpose,
    /// State before.
    pub from: KeyState,
    /// State after.
    pub to: KeyState,
}

/// What one [`tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// The transitions this call applied (not those another process applied).
    pub applied: Vec<AppliedTransition>,
}

/// The audit actor for transitions the lifecycle makes by itself.
pub const SYSTEM_ACTOR: &str = "system";

/// Applies every transition due at `now`. Idempotent, and safe to run from
/// several processes at once: each transition is a conditional `UPDATE` in
/// its own transaction, and one that finds the key already moved changes
/// nothing and writes no audit record.
pub async fn tick(store: &Store, now: OffsetDateTime) -> Result<TickReport, KeysError> {
    let candidates = query_keys(
        store.conn().await?.conn(),
        "state IN ('pending', 'retiring')",
        &[],
        None,
    )
    .await?;
    let mut report = TickReport::default();
    for due in due_transitions(&candidates, now) {
        let id = match &due {
            DueTransition::Activate { id } | DueTransition::Retire { id } => id,
        };
        let Some(key) = candidates.iter().find(|k| &k.id == id) else {
            continue;
        };
        let mut tx = store.begin().await?;
        let applied = match due {
            DueTransition::Activate { .. } => activate(&mut tx, key, now, SYSTEM_ACTOR).await?,
            DueTransition::Retire { .. } => {
                let guard = format!(
                    "AND COALESCE(verify_until_ms, 0) < $2 AND retiring_ms + {} < $2",
                    RETIRING_GRACE.whole_milliseconds()
                );
                apply(
                    &mut tx,
                    key,
                    KeyState::Retired,
                    now,
                    SYSTEM_ACTOR,
                    &guard,
                    json!({ "why": "everything it signed has expired" }),
                )
                .await?
            }
        };
        if applied.is_empty() {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
            report.applied.extend(applied);
        }
    }
    Ok(report)
}

/// Moves `key` to `to` if it is still in the state it was read in and
/// `guard` (extra SQL, `$2` = now in ms) holds, writing the audit record.
/// Returns the transitions applied: none if the key had moved meanwhile.
async fn apply(
    tx: &mut Tx,
    key: &ManagedKey,
    to: KeyState,
    now: OffsetDateTime,
    actor: &str,
    guard: &str,
    details: serde_json::Value,
) -> Result<Vec<AppliedTransition>, KeysError> {
    key.state
        .check_transition(to)
        .map_err(|source| KeysError::Transition {
            id: key.id.clone(),
            source,
        })?;
    let reason = details.get("reason").and_then(|r| r.as_str());
    let sql = format!(
        "UPDATE managed_keys SET state = $1, {col} = $2, destroy_reason = COALESCE($3, destroy_reason) \
         WHERE id = $4 AND state = $5 {guard}",
        col = to.time_column()
    );
    let done = sqlx::query(&sql)
        .bind(to.as_str())
        .bind(to_ms(now))
        .bind(reason)
        .bind(&key.id)
        .bind(key.state.as_str())
        .execute(tx.conn())
        .await?;
    if done.rows_affected() == 0 {
        return Ok(Vec::new());
    }
    let mut details = details;
    if let Some(map) = details.as_object_mut() {
        map.insert("purpose".into(), json!(key.purpose));
        map.insert("from".into(), json!(key.state));
        map.insert("to".into(), json!(to));
        map.insert("key_ref".into(), json!(key.key_ref));
    }
    audit::append(
        tx,
        now,
        &AuditEvent::success(actor, format!("key.{to}"), &key.id).with_details(details),
    )
    .await?;
    Ok(vec![AppliedTransition {
        id: key.id.clone(),
        purpose: key.purpose,
        from: key.state,
        to,
    }])
}

/// Activates a pending key whose window has ended, demoting its purpose's
/// active key to retiring first (so the one-active index never sees two), in
/// the caller's transaction. Returns nothing applied if it was no longer
/// pending or not yet due (another process got there first).
async fn activate(
    tx: &mut Tx,
    key: &ManagedKey,
    now: OffsetDateTime,
    actor: &str,
) -> Result<Vec<AppliedTransition>, KeysError> {
    let ms = to_ms(now);
    // Take the pending row first: of two racing processes the second waits
    // here and then finds it no longer pending, before touching anything else.
    let still_due = sqlx::query(
        "UPDATE managed_keys SET activate_after_ms = activate_after_ms \
         WHERE id = $1 AND state = 'pending' AND activate_after_ms <= $2",
    )
    .bind(&key.id)
    .bind(ms)
    .execute(tx.conn())
    .await?;
    if still_due.rows_affected() == 0 {
        return Ok(Vec::new());
    }
    let current = query_keys(
        tx.conn(),
        "purpose = $1 AND COALESCE(account_id, '') = $2 AND state = 'active' \
         AND ($3 = '' OR algorithm = $3 OR account_id IS NOT NULL)",
        &[
            key.purpose.as_str(),
            key.account_id.as_ref().map_or("", AccountId::as_str),
            key.purpose.line(key.algorithm),
        ],
        None,
    )
    .await?;
    let mut applied = Vec::new();
    for old in &current {
        let moved = apply(
            tx,
            old,
            KeyState::Retiring,
            now,
            actor,
            "",
            json!({ "replaced_by": key.id }),
        )
        .await?;
        if moved.is_empty() {
            return Err(KeysError::Raced {
                id: old.id.clone(),
                expected: KeyState::Active,
            });
        }
        applied.extend(moved);
    }
    let replaces: Vec<&str> = current.iter().map(|k| k.id.as_str()).collect();
    let moved = apply(
        tx,
        key,
        KeyState::Active,
        now,
        actor,
        "AND activate_after_ms <= $2",
        json!({ "replaces": replaces }),
    )
    .await?;
    if moved.is_empty() {
        return Err(KeysError::Raced {
            id: key.id.clone(),
            expected: KeyState::Pending,
        });
    }
    applied.extend(moved);
    Ok(applied)
}

/// Retires key `id` (see [`check_retire`]), audited as `key.retiring` or
/// `key.retired`. A refusal is audited too, as a failure.
pub async fn retire(
    store: &Store,
    id: &str,
    now: OffsetDateTime,
    actor: &str,
    force: Option<&str>,
) -> Result<ManagedKey, KeysError> {
    operator_transition(store, id, now, actor, force, "key.retire", check_retire).await
}

/// Marks key `id` destroyed (see [`check_destroy`]), audited as
/// `key.destroyed` with the reason; a refusal is audited as a failure. The
/// caller then removes the material from the backend: once marked, nothing
/// signs with or publishes the key, and removing the material can be retried.
pub async fn destroy(
    store: &Store,
    id: &str,
    now: OffsetDateTime,
    actor: &str,
    force: Option<&str>,
) -> Result<ManagedKey, KeysError> {
    operator_transition(store, id, now, actor, force, "key.destroy", |k, now, f| {
        check_destroy(k, now, f).map(|()| KeyState::Destroyed)
    })
    .await
}

async fn operator_transition(
    store: &Store,
    id: &str,
    now: OffsetDateTime,
    actor: &str,
    force: Option<&str>,
    action: &str,
    check: impl Fn(&ManagedKey, OffsetDateTime, Option<&str>) -> Result<KeyState, KeysError>,
) -> Result<ManagedKey, KeysError> {
    let mut tx = store.begin().await?;
    let key = by_id(tx.conn(), id)
        .await?
        .ok_or_else(|| KeysError::NotFound { id: id.to_owned() })?;
    let to = match check(&key, now, force) {
        Ok(to) => to,
        Err(refusal) => {
            drop(tx);
            let event = AuditEvent::failure(actor, action, &key.id).with_details(json!({
                "purpose": key.purpose,
                "state": key.state,
                "refused": refusal.to_string(),
            }));
            audit::append_alone(store, now, &event).await?;
            return Err(refusal);
        }
    };
    let overrides = force.is_some() && check(&key, now, None).is_err();
    // Without an override the policy is re-checked in SQL, so a signer that
    // extended verify_until since the read wins over this change.
    let guard = if overrides || to == KeyState::Retiring {
        ""
    } else {
        "AND (verify_until_ms IS NULL OR verify_until_ms < $2)"
    };
    let mut details = json!({ "forced": overrides });
    if let (Some(reason), Some(map)) = (force, details.as_object_mut()) {
        map.insert("reason".into(), json!(reason.trim()));
    }
    let applied = apply(&mut tx, &key, to, now, actor, guard, details).await?;
    if applied.is_empty() {
        return Err(KeysError::Raced {
            id: key.id,
            expected: key.state,
        });
    }
    let key = by_id(tx.conn(), id).await?.ok_or(StoreError::NotFound {
        what: "managed key",
    })?;
    tx.commit().await?;
    Ok(key)
}
