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

use std::fmt;

use std::str::FromStr;
use tuaton_core::{AccountId, SignatureAlgorithm};

use serde::Serialize;
use serde_json::json;
use sqlx::{Any, Executor};
use time::{Duration, OffsetDateTime};

use crate::audit::{self, AuditEvent};
use crate::{Store, StoreError, Tx, from_ms, new_id, to_ms};

/// How long a retiring key stays published after it stopped signing, even if
/// no expiry was recorded for it: covers a signature made by a process that
/// read the key just before the switch and has not yet recorded its expiry.
pub const RETIRING_GRACE: Duration = Duration::minutes(5);

/// Default pre-publication window: a day, longer than any sensible JWKS cache
/// lifetime, so every relying party has fetched the new key before it signs.
pub const DEFAULT_PREPUBLISH: Duration = Duration::days(1);

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyPurpose {
    /// Signs OpenID Connect id tokens (published in the JWKS).
    IdToken,
    /// The document-signer certificate authority.
    DocumentCa,
    /// The service's own document-signing key.
    Signer,
    /// RFC 3161 time-stamping authority.
    Tsa,
    /// OCSP responder.
    Ocsp,
    /// Signs anchors of the audit chain.
    AuditAnchor,
    /// A citizen's or company's own signing key; one account each.
    UserSigning,
}

impl KeyPurpose {
    /// Every purpose, in a stable order.
    pub const ALL: [KeyPurpose; 7] = [
        KeyPurpose::IdToken,
        KeyPurpose::DocumentCa,
        KeyPurpose::Signer,
        KeyPurpose::Tsa,
        KeyPurpose::Ocsp,
        KeyPurpose::AuditAnchor,
        KeyPurpose::UserSigning,
    ];

    /// The stored and command-line form.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::IdToken => "id-token",
            KeyPurpose::DocumentCa => "document-ca",
            KeyPurpose::Signer => "signer",
            KeyPurpose::Tsa => "tsa",
            KeyPurpose::Ocsp => "ocsp",
            KeyPurpose::AuditAnchor => "audit-anchor",
            KeyPurpose::UserSigning => "user-signing",
        }
    }

    /// Whether keys of this purpose belong to one account (and are created by
    /// the signing service, not rotated by operators).
    pub fn is_per_account(self) -> bool {
        self == KeyPurpose::UserSigning
    }

    fn parse_stored(s: &str) -> Result<Self, StoreError> {
        s.parse()
            .map_err(|_| StoreError::Corrupt(format!("unknown key purpose `{s}`")))
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A purpose name that is not one of [`KeyPurpose::ALL`]. Caller's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key purpose {input:?}; accepted: {}", accepted_purposes())]
pub struct UnknownPurpose {
    /// The name as given (truncated).
    pub input: String,
}

fn accepted_purposes() -> String {
    KeyPurpose::ALL
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for KeyPurpose {
    type Err = UnknownPurpose;

    fn from_str(s: &str) -> Result<Self, UnknownPurpose> {
        KeyPurpose::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPurpose {
                input: s.chars().take(40).collect(),
            })
    }
}

/// Where a key is in its life. States only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published (pre-publication), signs nothing yet.
    Pending,
    /// Published and the one key of its purpose that signs.
    Active,
    /// Published, signs nothing; kept until what it signed has expired.
    Retiring,
    /// Not published, signs nothing; the material still exists.
    Retired,
    /// The material is gone (or being removed) from the backend.
    Destroyed,
}

impl KeyState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
            KeyState::Destroyed => "destroyed",
        }
    }

    /// Whether the public key belongs in the JWKS (and other verifier-facing lists).
    pub fn is_published(self) -> bool {
        matches!(
            self,
            KeyState::Pending | KeyState::Active | KeyState::Retiring
        )
    }

    /// Whether `self → to` is a move the lifecycle allows: `pending → active`,
    /// `active → retiring`, `retiring → retired`, and anything not yet
    /// destroyed `→ destroyed` (a compromised key must be destroyable at any
    /// point; the policy in [`check_destroy`] decides when it may be).
    pub fn check_transition(self, to: KeyState) -> Result<(), TransitionError> {
        use KeyState::*;
        match (self, to) {
            (Pending, Active) | (Active, Retiring) | (Retiring, Retired) => Ok(()),
            (from, Destroyed) if from != Destroyed => Ok(()),
            (from, to) if from == to => Err(TransitionError::Unchanged { state: from }),
            (from, to) if to < from => Err(TransitionError::Backwards { from, to }),
            (Pending, to) => Err(TransitionError::Skips {
                from: Pending,
                to,
                why: "it never signed anything; destroy it instead",
            }),
            (Active, to) => Err(TransitionError::Skips {
                from: Active,
                to,
                why: "it must stay published as retiring while what it signed is valid",
            }),
            (from, to) => Err(TransitionError::Skips {
                from,
                to,
                why: "not a lifecycle step",
            }),
        }
    }

    fn parse_stored(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(KeyState::Pending),
            "active" => Ok(KeyState::Active),
            "retiring" => Ok(KeyState::Retiring),
            "retired" => Ok(KeyState::Retired),
            "destroyed" => Ok(KeyState::Destroyed),
            other => Err(StoreError::Corrupt(format!("unknown key state `{other}`"))),
        }
    }

    /// The column that records when this state was reached.
    fn time_column(self) -> &'static str {
        match self {
            KeyState::Pending => "created_ms",
            KeyState::Active => "activated_ms",
            KeyState::Retiring => "retiring_ms",
            KeyState::Retired => "retired_ms",
            KeyState::Destroyed => "destroyed_ms",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A state change the lifecycle does not allow. Caller's (or operator's) request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The key is already in that state.
    #[error("the key is already {state}")]
    Unchanged {
        /// Its state.
        state: KeyState,
    },
    /// The move goes back in the lifecycle.
    #[error("a {from} key cannot become {to}: states only move forward")]
    Backwards {
        /// Current state.
        from: KeyState,
        /// Requested state.
        to: KeyState,
    },
    /// The move skips a step that protects verifiers.
    #[error("a {from} key cannot become {to} directly: {why}")]
    Skips {
        /// Current state.
        from: KeyState,
        /// Requested state.
        to: KeyState,
        /// Why the step matters.
        why: &'static str,
    },
}

/// What went wrong with a lifecycle operation.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// No managed key has this id. Caller's input.
    #[error("no managed key has id {id:?}")]
    NotFound {
        /// The id given.
        id: String,
    },
    /// The lifecycle does not allow the change. Caller's request.
    #[error("key {id}: {source}")]
    Transition {
        /// The key.
        id: String,
        /// Which rule refused it.
        #[source]
        source: TransitionError,
    },
    /// Another process changed the key between reading and writing it; read
    /// again and decide again. Environment; retryable.
    #[error("key {id} changed concurrently (it was {expected}); look again and retry")]
    Raced {
        /// The key.
        id: String,
        /// The state it had when read.
        expected: KeyState,
    },
    /// A rotation is already in progress for the purpose. Operator's request.
    #[error(
        "a rotation of {purpose} is already pending: key {id} activates at {}; wait for it, or destroy that key first",
        rfc3339(.activate_after)
    )]
    AlreadyPending {
        /// The purpose.
        purpose: KeyPurpose,
        /// The pending key.
        id: String,
        /// When it activates.
        activate_after: OffsetDateTime,
    },
    /// The purpose's active key changed between planning a rotation and
    /// recording its key (another process rotated). Environment; plan again.
    #[error(
        "the active {purpose} key changed while the new key was being generated; look again and retry"
    )]
    PlanStale {
        /// The purpose.
        purpose: KeyPurpose,
    },
    /// Activation asked before the pre-publication window ended. Caller's request.
    #[error("key {id} is still in pre-publication until {}", rfc3339(.activate_after))]
    NotYetDue {
        /// The key.
        id: String,
        /// End of its pre-publication window.
        activate_after: OffsetDateTime,
    },
    /// Something the key signed may still be verified. Operator's request;
    /// overridable with a reason.
    #[error(
        "key {id} must stay verifiable until {} (the last expiry of what it signed); force it with a reason to override",
        rfc3339(.until)
    )]
    StillVerifiable {
        /// The key.
        id: String,
        /// Until when.
        until: OffsetDateTime,
    },
    /// The key is its purpose's signing key. Operator's request; overridable
    /// with a reason.
    #[error(
        "key {id} is the active {purpose} key; rotate to replace it, or force it with a reason to leave {purpose} without a signing key"
    )]
    StillActive {
        /// The key.
        id: String,
        /// Its purpose.
        purpose: KeyPurpose,
    },
    /// An override was asked without saying why. Operator's request.
    #[error("forcing needs a non-empty reason; it is written to the audit log")]
    ReasonRequired,
    /// An expiry was recorded for a key that no longer signs. A bug in the
    /// signer (it signed with a key it should not have).
    #[error("key {id} is {state}: an expiry can only be recorded for an active or retiring key")]
    NotSigning {
        /// The key.
        id: String,
        /// Its state.
        state: KeyState,
    },
    /// Per-account keys are not rotated by purpose, or an account id was
    /// given for a service key (or left out for a per-account one). Caller's request.
    #[error("{purpose} keys {}", if .purpose.is_per_account() { "belong to one account each and are created by the signing service" } else { "belong to the service, not to an account" })]
    AccountMismatch {
        /// The purpose.
        purpose: KeyPurpose,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl KeysError {
    /// Whether the lifecycle or its policy refused the request (the operator
    /// may change the request), as opposed to a fault.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            KeysError::Store(_)
                | KeysError::NotFound { .. }
                | KeysError::Raced { .. }
                | KeysError::PlanStale { .. }
        )
    }
}

impl From<sqlx::Error> for KeysError {
    fn from(e: sqlx::Error) -> Self {
        KeysError::Store(e.into())
    }
}

fn rfc3339(t: &OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A key as recorded in the lifecycle table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagedKey {
    /// Opaque id; also the JWK `kid`.
    pub id: String,
    /// What it is for.
    pub purpose: KeyPurpose,
    /// The owning account, for per-account keys only.
    pub account_id: Option<AccountId>,
    /// Where it is in its life.
    pub state: KeyState,
    /// The algorithm it signs with (stored and shown as its JOSE name).
    pub algorithm: SignatureAlgorithm,
    /// Backend name (`soft`, `pkcs11`).
    pub backend: String,
    /// The backend's reference for the key (`soft:…`, `pkcs11:…`).
    pub key_ref: String,
    /// When it was generated (and published).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// End of pre-publication: it signs only after this.
    #[serde(with = "time::serde::rfc3339")]
    pub activate_after: OffsetDateTime,
    /// When it became active.
    #[serde(with = "time::serde::rfc3339::option")]
    pub activated_at: Option<OffsetDateTime>,
    /// When it stopped signing.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retiring_at: Option<OffsetDateTime>,
    /// When it was unpublished.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
    /// When it was destroyed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub destroyed_at: Option<OffsetDateTime>,
    /// The last expiry of anything it signed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub verify_until: Option<OffsetDateTime>,
    /// Why it was destroyed or forced out early, if an operator said.
    pub destroy_reason: Option<String>,
}

impl ManagedKey {
    /// When a retiring key may be retired: after what it signed has expired
    /// and the grace after it stopped signing. `None` unless retiring.
    pub fn retire_due_at(&self) -> Option<OffsetDateTime> {
        if self.state != KeyState::Retiring {
            return None;
        }
        let grace_end = self.retiring_at.map(|t| t + RETIRING_GRACE);
        Some(match (self.verify_until, grace_end) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => self.created_at,
        })
    }
}

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
    let pending = query_keys(
        tx.conn(),
        "purpose = $1 AND COALESCE(account_id, '') = $2 AND state = 'pending'",
        &[
            new.purpose.as_str(),
            new.account_id.as_ref().map_or("", AccountId::as_str),
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
        "purpose = $1 AND COALESCE(account_id, '') = $2 AND state = 'active'",
        &[
            new.purpose.as_str(),
            new.account_id.as_ref().map_or("", AccountId::as_str),
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

/// What a rotation will do, decided before anything is generated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationPlan {
    /// The purpose rotated.
    pub purpose: KeyPurpose,
    /// The new key's algorithm.
    pub algorithm: SignatureAlgorithm,
    /// When the new key starts signing.
    #[serde(with = "time::serde::rfc3339")]
    pub activate_after: OffsetDateTime,
    /// The active key it will replace, if any.
    pub replaces: Option<String>,
}

impl RotationPlan {
    /// Plans rotating `purpose` given the current keys. The new key is
    /// pre-published for `prepublish`; with no active key there is nothing to
    /// protect (and nothing signing), so it activates at once. Refused while
    /// another rotation of the purpose is pending, and for per-account keys.
    pub fn new(
        purpose: KeyPurpose,
        algorithm: SignatureAlgorithm,
        keys: &[ManagedKey],
        now: OffsetDateTime,
        prepublish: Duration,
    ) -> Result<Self, KeysError> {
        if purpose.is_per_account() {
            return Err(KeysError::AccountMismatch { purpose });
        }
        let mine = keys
            .iter()
            .filter(|k| k.purpose == purpose && k.account_id.is_none());
        if let Some(p) = mine.clone().find(|k| k.state == KeyState::Pending) {
            return Err(KeysError::AlreadyPending {
                purpose,
                id: p.id.clone(),
                activate_after: p.activate_after,
            });
        }
        let replaces = mine
            .clone()
            .find(|k| k.state == KeyState::Active)
            .map(|k| k.id.clone());
        let activate_after = if replaces.is_some() {
            now + prepublish.max(Duration::ZERO)
        } else {
            now
        };
        Ok(RotationPlan {
            purpose,
            algorithm,
            activate_after,
            replaces,
        })
    }

    /// A label for the backend (shown by HSM tools): purpose and date.
    pub fn label(&self, now: OffsetDateTime) -> String {
        format!(
            "tuaton-{}-{:04}{:02}{:02}",
            self.purpose,
            now.year(),
            u8::from(now.month()),
            now.day()
        )
    }

    /// The record for the key generated under this plan.
    pub fn new_key(&self, backend: &str, key_ref: &str) -> NewKey {
        NewKey {
            purpose: self.purpose,
            account_id: None,
            algorithm: self.algorithm,
            backend: backend.to_owned(),
            key_ref: key_ref.to_owned(),
            activate_after: self.activate_after,
            replaces: self.replaces.clone(),
        }
    }
}

/// When a purpose rotated every `every`, with `prepublish` of
/// pre-publication, must generate its next key so that the key takes over
/// `every` after the current one started signing. `None` while a rotation is
/// pending; `UNIX_EPOCH` (due at once) when the purpose has no signing key at
/// all, so an unattended service makes its first key itself.
pub fn next_scheduled_rotation(
    purpose: KeyPurpose,
    keys: &[ManagedKey],
    every: Duration,
    prepublish: Duration,
) -> Option<OffsetDateTime> {
    let mut mine = keys
        .iter()
        .filter(|k| k.purpose == purpose && k.account_id.is_none());
    if mine.clone().any(|k| k.state == KeyState::Pending) {
        return None;
    }
    Some(match mine.find(|k| k.state == KeyState::Active) {
        None => OffsetDateTime::UNIX_EPOCH,
        Some(active) => {
            let since = active.activated_at.unwrap_or(active.activate_after);
            since + every - prepublish.min(every)
        }
    })
}

/// A transition [`tick`] applies when it is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DueTransition {
    /// Pre-publication is over: the pending key becomes active and the
    /// purpose's active key (if any) becomes retiring.
    Activate {
        /// The pending key.
        id: String,
    },
    /// Everything the retiring key signed has expired: it is unpublished.
    Retire {
        /// The retiring key.
        id: String,
    },
}

/// The transitions due at `now` among `keys`; pure, so tests and `tuaton
/// keys list` can show what the next tick will do.
pub fn due_transitions(keys: &[ManagedKey], now: OffsetDateTime) -> Vec<DueTransition> {
    keys.iter()
        .filter_map(|k| match k.state {
            KeyState::Pending if k.activate_after <= now => {
                Some(DueTransition::Activate { id: k.id.clone() })
            }
            KeyState::Retiring if k.retire_due_at().is_some_and(|due| due < now) => {
                Some(DueTransition::Retire { id: k.id.clone() })
            }
            _ => None,
        })
        .collect()
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
        "purpose = $1 AND COALESCE(account_id, '') = $2 AND state = 'active'",
        &[
            key.purpose.as_str(),
            key.account_id.as_ref().map_or("", AccountId::as_str),
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

/// Checks an operator's override: `Some(reason)` forces, and must say why.
fn forced(force: Option<&str>) -> Result<bool, KeysError> {
    match force {
        None => Ok(false),
        Some(r) if r.trim().is_empty() => Err(KeysError::ReasonRequired),
        Some(_) => Ok(true),
    }
}

/// Decides what retiring `key` means now: an active key becomes retiring
/// (stops signing, stays published); a retiring key becomes retired
/// (unpublished) once what it signed has expired. Active service keys and
/// early retirement need `force` (a reason).
pub fn check_retire(
    key: &ManagedKey,
    now: OffsetDateTime,
    force: Option<&str>,
) -> Result<KeyState, KeysError> {
    let forced = forced(force)?;
    let to = match key.state {
        KeyState::Active => KeyState::Retiring,
        KeyState::Retiring => KeyState::Retired,
        other => {
            // Reuse the lifecycle's own explanation of why not.
            let to = if other == KeyState::Pending {
                KeyState::Retiring
            } else {
                KeyState::Retired
            };
            return Err(KeysError::Transition {
                id: key.id.clone(),
                source: other
                    .check_transition(to)
                    .err()
                    .unwrap_or(TransitionError::Unchanged { state: other }),
            });
        }
    };
    if !forced {
        if key.state == KeyState::Active && !key.purpose.is_per_account() {
            return Err(KeysError::StillActive {
                id: key.id.clone(),
                purpose: key.purpose,
            });
        }
        if let Some(due) = key.retire_due_at().filter(|due| *due >= now) {
            return Err(KeysError::StillVerifiable {
                id: key.id.clone(),
                until: due,
            });
        }
    }
    Ok(to)
}

/// Decides whether `key` may be destroyed now: never twice; an active key or
/// one that must stay verifiable (what it signed has not expired) only with
/// `force` (a reason).
pub fn check_destroy(
    key: &ManagedKey,
    now: OffsetDateTime,
    force: Option<&str>,
) -> Result<(), KeysError> {
    let forced = forced(force)?;
    key.state
        .check_transition(KeyState::Destroyed)
        .map_err(|source| KeysError::Transition {
            id: key.id.clone(),
            source,
        })?;
    if forced {
        return Ok(());
    }
    if key.state == KeyState::Active {
        return Err(KeysError::StillActive {
            id: key.id.clone(),
            purpose: key.purpose,
        });
    }
    let until = key.retire_due_at().or(key.verify_until);
    if let Some(until) = until.filter(|u| *u >= now) {
        return Err(KeysError::StillVerifiable {
            id: key.id.clone(),
            until,
        });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_forward_moves_are_allowed() {
        use KeyState::*;
        let all = [Pending, Active, Retiring, Retired, Destroyed];
        let allowed = [
            (Pending, Active),
            (Active, Retiring),
            (Retiring, Retired),
            (Pending, Destroyed),
            (Active, Destroyed),
            (Retiring, Destroyed),
            (Retired, Destroyed),
        ];
        for from in all {
            for to in all {
                let ok = from.check_transition(to).is_ok();
                assert_eq!(ok, allowed.contains(&(from, to)), "{from} -> {to}");
                if to < from {
                    assert!(matches!(
                        from.check_transition(to),
                        Err(TransitionError::Backwards { .. })
                    ));
                }
            }
        }
        assert!(matches!(
            Active.check_transition(Retired),
            Err(TransitionError::Skips { .. })
        ));
    }

    #[test]
    fn purposes_round_trip_and_unknown_lists_accepted() {
        for p in KeyPurpose::ALL {
            assert_eq!(p.as_str().parse::<KeyPurpose>(), Ok(p));
        }
        let e = "id_token"
            .parse::<KeyPurpose>()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "unknown key purpose \"id_token\"; accepted: id-token, document-ca, signer, tsa, ocsp, audit-anchor, user-signing"
            )
        );
    }
}
