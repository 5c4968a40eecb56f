//! The service layer's one error type.
//!
//! Each variant names what went wrong and whose fault it is; [`IdmError::code`]
//! gives the stable code a front door answers with and a refusal is audited
//! by. Messages never carry personal data, secrets or internal detail beyond
//! what the variant says: a front door may log them as they are.

use tuaton_core::ErrorCode;
use tuaton_passkeys::PasskeyError;
use tuaton_proofing::{DecisionError, RegistryError};
use tuaton_store::StoreError;
use tuaton_store::accounts::AccountState;
use tuaton_store::ceremonies::TakeError;

use crate::custody::CustodyError;

/// Which action needs a login made within the last few minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreshFor {
    /// Removing a passkey.
    RemovePasskey,
    /// Erasing the account.
    Erase,
    /// Answering an agency's authorization request (a login made after it began).
    Authorize,
    /// Changing a client registration at the admin API.
    ChangeClient,
}

/// Which registry a flow needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    /// The card-status (population) registry.
    CardStatus,
    /// The juristic-person (company) registry.
    Juristic,
}

/// Why a flow did not complete. Nothing was changed unless a variant says so.
#[derive(Debug, thiserror::Error)]
pub enum IdmError {
    /// Input that does not parse or validate; `message` names the field and
    /// what is accepted, never the value. Caller.
    #[error("{message}")]
    Invalid {
        /// Which kind of input.
        code: ErrorCode,
        /// A sentence for the caller.
        message: String,
    },
    /// The ceremony or grant is unknown, used, expired or of another kind. Caller or attacker.
    #[error(transparent)]
    Ceremony(TakeError),
    /// A passkey ceremony failed. Caller, attacker or the authenticator.
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    /// The passkey is not one of this account's. Caller.
    #[error("no such passkey on this account")]
    NoSuchPasskey,
    /// The account's only passkey cannot be removed. Caller.
    #[error("the last passkey cannot be removed")]
    LastPasskey,
    /// No session, or it names no usable account. Caller.
    #[error("log in first")]
    LoginRequired,
    /// The session has ended (idle, absolute lifetime, logout). Caller.
    #[error("the session has ended")]
    SessionExpired,
    /// The action needs a fresh login. Caller.
    #[error("a fresh login is required")]
    FreshLoginRequired(FreshFor),
    /// A state-changing request without the session's CSRF token. Caller or a cross-site attacker.
    #[error("the CSRF token is missing")]
    CsrfTokenMissing,
    /// The CSRF token does not match the session. A cross-site attacker.
    #[error("the CSRF token does not match the session")]
    CsrfTokenInvalid,
    /// The account is suspended or closed.
    #[error("the account is not active")]
    AccountNotActive,
    /// Recovery of a suspended account. The operator reviews it.
    #[error("the account is suspended")]
    AccountSuspended,
    /// An operator's command for an account in another state. Operator.
    #[error("the account is {is}, not {needs}")]
    WrongAccountState {
        /// The state it is in.
        is: &'static str,
        /// The state the command needs.
        needs: &'static str,
    },
    /// No account matches. Operator's input.
    #[error("no account with this id or citizen id")]
    UnknownAccount,
    /// No client is registered with this id.
    #[error("no client is registered with this id")]
    UnknownClient,
    /// A client with this id is registered already.
    #[error("a client with this id is registered already")]
    ClientExists,
    /// An account already exists for the citizen id. Caller.
    #[error("an account already exists for this citizen id")]
    AlreadyEnrolled,
    /// The account has no verified citizen id. Caller.
    #[error("the account has no verified citizen id")]
    NotProofed,
    /// The account's identity level is below what the action needs.
    #[error("identity level {needs} or higher is needed")]
    IalTooLow {
        /// The level needed.
        needs: tuaton_core::Ial,
    },
    /// The login's authenticator level is below what the agency asks for:
    /// a login with a stronger passkey meets it.
    #[error("authenticator level {needs} or higher is needed")]
    AalTooLow {
        /// The level needed.
        needs: tuaton_core::Aal,
    },
    /// The account already holds the role. Operator.
    #[error("the account already holds the {0} role")]
    RoleAlreadyHeld(tuaton_store::companies::Role),
    /// Only officers may record in-person proofing. Caller.
    #[error("the officer role is required")]
    OfficerRoleRequired,
    /// Only client administrators may use the admin API. Caller.
    #[error("the client_admin role is required")]
    ClientAdminRoleRequired,
    /// The account does not hold the role. Operator.
    #[error("the account does not hold the {0} role")]
    RoleNotHeld(tuaton_store::companies::Role),
    /// The account's level needs an officer to recover it. Caller.
    #[error("recovery needs in-person proofing")]
    OfficerRecoveryRequired,
    /// The person's signing certificate was revoked: no new one is made
    /// for the key until an officer acts. Caller.
    #[error("the signing certificate was revoked")]
    CertificateRevoked,
    /// No pending signing request of this account with this id (unknown,
    /// signed already, expired, or another person's). Caller or attacker.
    #[error("no pending signing request with this id")]
    UnknownSigningRequest,
    /// No document an agency posted has this id for this caller, or it is
    /// no longer waiting to be signed. Caller or attacker.
    #[error("no document with this id is waiting")]
    UnknownDocument,
    /// The agency posted the document for another person. Caller.
    #[error("the document is for another person to sign")]
    NotTheSigner,
    /// The director signed this company's document already. Caller.
    #[error("this director signed the document already")]
    AlreadySigned,
    /// The registry no longer lists an earlier signer of the company's
    /// document as a director. Caller (the agency posts it again).
    #[error("an earlier signer is no longer a director")]
    AuthorityChanged,
    /// Another person began signing the document and may still confirm
    /// it. Caller (tries again once their request expires).
    #[error("another person is signing this document")]
    SigningInProgress,
    /// No credential (signing key) of this person with this id. Caller or
    /// attacker.
    #[error("no signing credential of this person with this id")]
    UnknownSigningCredential,
    /// The access token authorises no signature, or the signature it
    /// authorised was made already or has expired. Caller or attacker.
    #[error("the token authorises no signature now")]
    SignatureNotAuthorised,
    /// Hash `index` is not one the person confirmed. Caller or attacker.
    #[error("hash {index} is not one the person confirmed")]
    HashNotConfirmed {
        /// Its place in the request.
        index: usize,
    },
    /// No open recovery with this id and token (unknown, cancelled,
    /// completed or expired: one answer for all). Caller or attacker.
    #[error("no open recovery with this id and token")]
    UnknownRecovery,
    /// The recovery's cooling-off period has not ended. Caller.
    #[error("the recovery is waiting out its cooling-off period")]
    RecoveryCoolingOff {
        /// When it ends.
        ready_at: time::OffsetDateTime,
        /// How long that is from the request.
        wait: time::Duration,
    },
    /// The account has no active passkey to cancel a recovery with. Caller.
    #[error("the account has no active passkey")]
    NoActivePasskey,
    /// A face comparison was asked for, but no matcher is configured. Operator.
    #[error("face comparison is not available")]
    FaceMatchUnavailable,
    /// The face matcher could not compare (unusable capture, or down).
    #[error(transparent)]
    FaceMatch(#[from] tuaton_proofing::FaceMatchError),
    /// No live consent with this id. Caller.
    #[error("no live consent with this id")]
    UnknownConsent,
    /// The identity proofing was refused or could not be made.
    #[error(transparent)]
    Proofing(#[from] DecisionError),
    /// No registry of this kind is configured. Operator.
    #[error("the registry is not configured")]
    RegistryNotConfigured(Registry),
    /// The company registry refused or failed.
    #[error(transparent)]
    CompanyRegistry(#[from] RegistryError),
    /// The registry lists the company as dissolved.
    #[error("the company is dissolved")]
    CompanyDissolved,
    /// The registry does not list the person as a director.
    #[error("not a director of this company")]
    NotADirector,
    /// The account's attempts exceed the per-account limit. Caller or attacker.
    #[error("too many attempts for this account")]
    RateLimited,
    /// Key custody failed.
    #[error(transparent)]
    Custody(#[from] CustodyError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault in Tuaton (a broken invariant, unreadable own data). Bug.
    #[error("internal: {0}")]
    Internal(String),
}

impl IdmError {
    /// Input that does not parse, with the sentence for the caller.
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    /// A broken invariant.
    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        Self::Internal(what.to_string())
    }

    /// The refusal for a command that needs another account state.
    pub(crate) fn wrong_state(is: AccountState, needs: &'static str) -> Self {
        Self::WrongAccountState {
            is: is.as_str(),
            needs,
        }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        use ErrorCode as C;
        match self {
            Self::Invalid { code, .. } => *code,
            Self::Ceremony(e) => e.code(),
            Self::Passkey(e) => e.code(),
            Self::NoSuchPasskey => C::UnknownCredential,
            Self::LastPasskey => C::LastPasskey,
            Self::LoginRequired => C::LoginRequired,
            Self::SessionExpired => C::SessionExpired,
            Self::FreshLoginRequired(_) => C::FreshLoginRequired,
            Self::CsrfTokenMissing => C::CsrfTokenMissing,
            Self::CsrfTokenInvalid => C::CsrfTokenInvalid,
            Self::AccountNotActive => C::AccountNotActive,
            Self::AccountSuspended => C::AccountSuspended,
            Self::WrongAccountState { .. } => C::WrongAccountState,
            Self::UnknownAccount => C::UnknownAccount,
            Self::UnknownClient => C::UnknownClient,
            Self::ClientExists => C::ClientExists,
            Self::AlreadyEnrolled => C::AlreadyEnrolled,
            Self::NotProofed => C::NotProofed,
            Self::IalTooLow { .. } => C::IalTooLow,
            Self::AalTooLow { .. } => C::AalTooLow,
            Self::RoleAlreadyHeld(_) => C::RoleAlreadyHeld,
            Self::OfficerRoleRequired => C::OfficerRoleRequired,
            Self::ClientAdminRoleRequired => C::ClientAdminRoleRequired,
            Self::RoleNotHeld(_) => C::RoleNotHeld,
            Self::OfficerRecoveryRequired => C::OfficerRecoveryRequired,
            Self::UnknownRecovery => C::UnknownRecovery,
            Self::UnknownSigningRequest => C::UnknownSigningRequest,
            Self::UnknownDocument => C::UnknownDocument,
            Self::NotTheSigner => C::NotTheSigner,
            Self::AlreadySigned => C::AlreadySigned,
            Self::AuthorityChanged => C::AuthorityChanged,
            Self::SigningInProgress => C::SigningInProgress,
            Self::UnknownSigningCredential => C::UnknownSigningCredential,
            Self::SignatureNotAuthorised => C::SignatureNotAuthorised,
            Self::HashNotConfirmed { .. } => C::HashNotConfirmed,
            Self::CertificateRevoked => C::CertificateRevoked,
            Self::RecoveryCoolingOff { .. } => C::RecoveryCoolingOff,
            Self::NoActivePasskey => C::NoActivePasskey,
            Self::FaceMatchUnavailable => C::FaceMatchUnavailable,
            Self::FaceMatch(tuaton_proofing::FaceMatchError::UnusableCapture) => C::InvalidEvidence,
            Self::FaceMatch(tuaton_proofing::FaceMatchError::Unavailable) => {
                C::FaceMatchUnavailable
            }
            Self::UnknownConsent => C::UnknownConsent,
            Self::Proofing(e) => e.code(),
            Self::RegistryNotConfigured(_) => C::RegistryNotConfigured,
            Self::CompanyRegistry(e) => e.code(),
            Self::CompanyDissolved => C::CompanyDissolved,
            Self::NotADirector => C::NotADirector,
            Self::RateLimited => C::RateLimited,
            Self::Custody(e) => e.code(),
            Self::Store(e) => e.code(),
            Self::Internal(_) => C::InternalError,
        }
    }
}

impl From<TakeError> for IdmError {
    /// A storage failure while taking a ceremony is a storage failure, not a refusal.
    fn from(e: TakeError) -> Self {
        match e {
            TakeError::Store(s) => IdmError::Store(s),
            other => IdmError::Ceremony(other),
        }
    }
}

/// A stored value that does not read back is corrupt, never defaulted.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> IdmError {
    IdmError::Store(StoreError::Corrupt(what.to_string()))
}
