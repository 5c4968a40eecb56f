//! What can go wrong with a lifecycle operation.

use time::OffsetDateTime;

use super::{KeyPurpose, KeyState, TransitionError};
use crate::StoreError;

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
    /// The stable code a front door answers with.
    pub fn code(&self) -> tuaton_core::ErrorCode {
        use tuaton_core::ErrorCode as C;
        match self {
            KeysError::Store(s) => s.code(),
            KeysError::NotFound { .. } => C::NotFound,
            KeysError::Raced { .. } | KeysError::PlanStale { .. } => C::Conflict,
            _ => C::KeyRefused,
        }
    }

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

pub(super) use crate::rfc3339;
