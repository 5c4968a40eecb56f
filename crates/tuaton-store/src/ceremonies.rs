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

use sqlx::Row;
use time::OffsetDateTime;
use tuaton_core::AccountId;

use crate::batch::{Batch, Output, Query, Statement};
use crate::{Store, StoreError, new_id, to_ms};

/// What a ceremony is for; each kind carries its lifetime, the one place
/// that lifetime is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// A WebAuthn registration challenge.
    PasskeyRegistration,
    /// A WebAuthn authentication challenge.
    PasskeyLogin,
    /// The grant, after enrolment or recovery, to register a first passkey.
    EnrolmentGrant,
    /// A WebAuthn challenge that cancels an account recovery.
    RecoveryCancel,
    /// A client's authorization request, waiting for the person to log in.
    OidcAuthorization,
    /// A pushed authorization request (RFC 9126), waiting for the browser.
    PushedAuthorization,
    /// An authorization code, stored under its digest until redeemed.
    AuthorizationCode,
    /// A WebAuthn challenge that confirms a signing request (sole control).
    SigningConfirmation,
    /// A confirmed signing request of hashes an agency computed, under the
    /// request's id, with the confirmation's evidence: spent by the CSC
    /// `signatures/signHash` call that signs them.
    SignatureActivation,
    /// A CSC Signature Activation Data value, under its digest, naming the
    /// confirmed request it activates (`credentials/authorize`).
    SignatureActivationData,
}

impl CeremonyKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::PasskeyRegistration => "passkey-registration",
            CeremonyKind::PasskeyLogin => "passkey-login",
            CeremonyKind::EnrolmentGrant => "enrolment",
            CeremonyKind::RecoveryCancel => "recovery-cancel",
            CeremonyKind::OidcAuthorization => "oidc-authorization",
            CeremonyKind::PushedAuthorization => "oidc-pushed",
            CeremonyKind::AuthorizationCode => "authorization-code",
            CeremonyKind::SigningConfirmation => "signing-confirmation",
            CeremonyKind::SignatureActivation => "signature-activation",
            CeremonyKind::SignatureActivationData => "signature-activation-data",
        }
    }

    /// How long a ceremony of this kind stays usable: five minutes for a
    /// WebAuthn challenge (the timeout the browser is given too), fifteen
    /// for an enrolment grant, enough to find and set up an authenticator;
    /// ten for an authorization request to be logged in to; one for an
    /// authorization code, which the client redeems at once (RFC 6749
    /// §4.1.2 asks for a short lifetime), and for a pushed request, which
    /// the browser brings at once.
    pub fn lifetime(self) -> time::Duration {
        match self {
            CeremonyKind::PasskeyRegistration
            | CeremonyKind::PasskeyLogin
            | CeremonyKind::RecoveryCancel
            | CeremonyKind::SigningConfirmation
            | CeremonyKind::SignatureActivation
            | CeremonyKind::SignatureActivationData => time::Duration::minutes(5),
            CeremonyKind::EnrolmentGrant => time::Duration::minutes(15),
            CeremonyKind::OidcAuthorization => time::Duration::minutes(10),
            CeremonyKind::AuthorizationCode | CeremonyKind::PushedAuthorization => {
                time::Duration::minutes(1)
            }
        }
    }

    fn from_stored(s: &str) -> Result<Self, StoreError> {
        [
            CeremonyKind::PasskeyRegistration,
            CeremonyKind::PasskeyLogin,
            CeremonyKind::EnrolmentGrant,
            CeremonyKind::RecoveryCancel,
            CeremonyKind::OidcAuthorization,
            CeremonyKind::PushedAuthorization,
            CeremonyKind::AuthorizationCode,
            CeremonyKind::SigningConfirmation,
            CeremonyKind::SignatureActivation,
            CeremonyKind::SignatureActivationData,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown ceremony kind `{s}`")))
    }
}

/// A ceremony taken out of the store.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// What kind it was stored as.
    pub kind: CeremonyKind,
    /// The account it belongs to, if known when it began.
    pub account_id: Option<AccountId>,
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

impl TakeError {
    /// The stable code a client is answered with.
    pub fn code(&self) -> tuaton_core::ErrorCode {
        match self {
            Self::Expired => tuaton_core::ErrorCode::CeremonyExpired,
            Self::Unknown | Self::WrongKind => tuaton_core::ErrorCode::UnknownCeremony,
            Self::Store(s) => s.code(),
        }
    }
}

/// The insert that stores a ceremony, as a batch of its own; returns it with the new id.
fn insert(
    kind: CeremonyKind,
    account_id: Option<&AccountId>,
    state: &str,
    expires_at: OffsetDateTime,
) -> (String, Batch) {
    let id = new_id();
    let mut batch = Batch::new();
    batch.push(insert_as(&id, kind, account_id, state, expires_at));
    (id, batch)
}

/// The insert that stores a ceremony under `id` (a digest of a secret the
/// client holds, say), for the caller's transaction.
pub fn insert_as(
    id: &str,
    kind: CeremonyKind,
    account_id: Option<&AccountId>,
    state: &str,
    expires_at: OffsetDateTime,
) -> Statement {
    Statement::new(
        "INSERT INTO ceremonies (id, kind, account_id, state, expires_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(kind.as_str())
    .bind(account_id.map(AccountId::as_str))
    .bind(state)
    .bind(to_ms(expires_at))
}

/// Stores a ceremony like [`insert_as`] unless `account_id` already holds
/// `cap` live ones of `kind` at `now`: `true` if it was stored. One
/// statement, so the count and the insert see the same rows.
pub fn insert_capped(
    id: &str,
    kind: CeremonyKind,
    account_id: &AccountId,
    state: &str,
    expires_at: OffsetDateTime,
    cap: i64,
    now: OffsetDateTime,
) -> Query<bool> {
    Query::new(
        Statement::new(
            "INSERT INTO ceremonies (id, kind, account_id, state, expires_ms) \
             SELECT $1, $2, $3, $4, $5 WHERE (SELECT COUNT(*) FROM ceremonies \
             WHERE kind = $2 AND account_id = $3 AND expires_ms > $6) < $7",
        )
        .bind(id)
        .bind(kind.as_str())
        .bind(account_id.as_str())
        .bind(state)
        .bind(to_ms(expires_at))
        .bind(to_ms(now))
        .bind(cap),
        |out| Ok(out.rows_affected == 1),
    )
}

/// A ceremony just stored: the id to give the client, and when it stops working.
#[derive(Debug, Clone)]
pub struct Begun {
    /// Opaque, single-use.
    pub id: String,
    /// `now` plus the kind's lifetime.
    pub expires_at: OffsetDateTime,
}

/// Stores `state` for the kind's lifetime from `now`, durably (a grant
/// handed out after proofing must survive a power cut).
pub async fn put(
    store: &Store,
    kind: CeremonyKind,
    account_id: Option<&AccountId>,
    state: &str,
    now: OffsetDateTime,
) -> Result<Begun, StoreError> {
    let expires_at = now + kind.lifetime();
    let (id, batch) = insert(kind, account_id, state, expires_at);
    batch.run(store.conn().await?.conn()).await?;
    Ok(Begun { id, expires_at })
}

/// Stores a WebAuthn challenge's `state` for the kind's lifetime without
/// waiting for the disk ([`Store::write_relaxed`]): one lost in a power cut
/// only makes the person ask for a new challenge.
pub async fn put_challenge(
    store: &Store,
    kind: CeremonyKind,
    account_id: Option<&AccountId>,
    state: &str,
    now: OffsetDateTime,
) -> Result<Begun, StoreError> {
    let expires_at = now + kind.lifetime();
    let (id, batch) = insert(kind, account_id, state, expires_at);
    store.write_relaxed(batch).await?;
    Ok(Begun { id, expires_at })
}

/// A ceremony row as stored, before its kind and expiry are checked.
pub struct Stored {
    kind: String,
    account_id: Option<String>,
    state: String,
    expires_ms: i64,
}

impl Stored {
    /// The ceremony, if it is of `kind` and still live at `now`.
    pub fn live(self, kind: CeremonyKind, now: OffsetDateTime) -> Result<Ceremony, TakeError> {
        if self.kind != kind.as_str() {
            return Err(TakeError::WrongKind);
        }
        if self.expires_ms <= to_ms(now) {
            return Err(TakeError::Expired);
        }
        Ok(Ceremony {
            kind: CeremonyKind::from_stored(&self.kind)?,
            account_id: self
                .account_id
                .as_deref()
                .map(crate::stored_account_id)
                .transpose()?,
            state: self.state,
        })
    }
}

fn first_stored(out: Output) -> Result<Option<Stored>, StoreError> {
    let Some(row) = out.rows.first() else {
        return Ok(None);
    };
    Ok(Some(Stored {
        kind: row.try_get("kind")?,
        account_id: row.try_get("account_id")?,
        state: row.try_get("state")?,
        expires_ms: row.try_get("expires_ms")?,
    }))
}

/// Removes and returns the ceremony `id` of `kind`; whatever the outcome, it cannot be taken again.
pub async fn take(
    store: &Store,
    id: &str,
    kind: CeremonyKind,
    now: OffsetDateTime,
) -> Result<Ceremony, TakeError> {
    let taken = Query::new(
        Statement::new(
            "DELETE FROM ceremonies WHERE id = $1 AND kind = $2 RETURNING kind, account_id, state, expires_ms",
        )
        .bind(id)
        .bind(kind.as_str()),
        first_stored,
    )
    .run(store.conn().await?.conn())
    .await?;
    taken.ok_or(TakeError::Unknown)?.live(kind, now)
}

/// Spends ceremony `id` of `kind` in the caller's transaction: `true` if this
/// call removed it, `false` if it was already gone (used by a concurrent
/// request, or never there). Commit the outcome only on `true`.
pub fn spend(id: &str, kind: CeremonyKind) -> Query<bool> {
    Query::new(
        Statement::new("DELETE FROM ceremonies WHERE id = $1 AND kind = $2")
            .bind(id)
            .bind(kind.as_str()),
        |out| Ok(out.rows_affected == 1),
    )
}

/// Spends ceremony `id` of `kind` as [`spend`] does, returning what it
/// held (`None`: already gone), so that [`restore`] can put it back when
/// what it was spent for came to nothing.
pub fn spend_keeping(id: &str, kind: CeremonyKind) -> Query<Option<Stored>> {
    Query::new(
        Statement::new(
            "DELETE FROM ceremonies WHERE id = $1 AND kind = $2 RETURNING kind, account_id, state, expires_ms",
        )
        .bind(id)
        .bind(kind.as_str()),
        first_stored,
    )
}

/// Puts back ceremony `id` as [`spend_keeping`] returned it, with the
/// lifetime it had: `false` if a ceremony with that id exists.
pub fn restore(id: &str, spent: &Stored) -> Query<bool> {
    Query::new(
        Statement::new(
            "INSERT INTO ceremonies (id, kind, account_id, state, expires_ms) \
             SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM ceremonies WHERE id = $1)",
        )
        .bind(id)
        .bind(spent.kind.as_str())
        .bind(spent.account_id.as_deref())
        .bind(spent.state.as_str())
        .bind(spent.expires_ms),
        |out| Ok(out.rows_affected == 1),
    )
}

/// Deletes ceremonies that expired before `now`; returns how many.
pub async fn purge_expired(store: &Store, now: OffsetDateTime) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM ceremonies WHERE expires_ms <= $1")
        .bind(to_ms(now))
        .execute(store.conn().await?.conn())
        .await?;
    Ok(r.rows_affected())
}

/// The ceremony `id` as stored, without taking it; check it with [`Stored::live`].
pub fn lookup(id: &str) -> Query<Option<Stored>> {
    Query::new(
        Statement::new("SELECT kind, account_id, state, expires_ms FROM ceremonies WHERE id = $1")
            .bind(id),
        first_stored,
    )
}

/// Reads a live ceremony without taking it (for tokens that may be presented
/// more than once before they are spent, like an enrolment grant).
pub async fn peek(
    store: &Store,
    id: &str,
    kind: CeremonyKind,
    now: OffsetDateTime,
) -> Result<Ceremony, TakeError> {
    let found = lookup(id).run(store.conn().await?.conn()).await?;
    found.ok_or(TakeError::Unknown)?.live(kind, now)
}
