//! The one error type of this crate, and the one place webauthn-rs errors are
//! mapped onto it.
//!
//! Variants are named after the fault. Messages never carry credential ids,
//! user handles, challenges or key material: the server may log them as they
//! are and show the user only a coarse sentence.

use webauthn_rs::prelude::WebauthnError;

/// Why a passkey ceremony or a policy operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyError {
    /// The ceremony state is past its `expires_at`. The user took too long (or
    /// an attacker replays an old exchange); the client starts a new ceremony.
    #[error("the passkey ceremony has expired; start again")]
    Expired,
    /// The response answers a different challenge than the one in the state:
    /// a replayed or crossed response. Attacker, or a client bug.
    #[error("the response does not answer this ceremony's challenge")]
    ChallengeMismatch,
    /// The client says the response was made for another origin: a phishing
    /// page or a misconfigured proxy/public URL. Attacker or operator.
    #[error("the response was made for another origin")]
    WrongOrigin,
    /// The authenticator signed for another relying-party id. Attacker, or a
    /// changed `public_url` host (which orphans every registered passkey).
    #[error("the response was made for another relying party")]
    WrongRelyingParty,
    /// The authenticator did not verify the user (no PIN or biometric). We
    /// always require it. A weak or misbehaving authenticator or client.
    #[error("the authenticator did not verify the user")]
    UserVerificationMissing,
    /// The authenticator did not record user presence. Misbehaving
    /// authenticator or a forged response.
    #[error("the authenticator did not confirm user presence")]
    UserPresenceMissing,
    /// The signature counter did not increase: the credential's key may have
    /// been cloned. The server suspends the credential and audits. Attacker,
    /// rarely a buggy authenticator.
    #[error("signature counter went backwards; the credential may be cloned")]
    CounterRegression,
    /// The authenticator changed its backup-eligibility flag, which a
    /// credential cannot legitimately do in that direction. Misbehaving
    /// authenticator or a key moved out of the hardware it was made in.
    #[error("the authenticator's backup flags are inconsistent with the stored credential")]
    BackupStateInconsistent,
    /// AAL3 was asked for but the authenticator is not attested by a root on
    /// the allow-list, its AAGUID is not allow-listed, or its key is
    /// synchronisable. The user's authenticator, not an attack by itself; the
    /// server may offer a plain (AAL2.2) registration instead.
    #[error("this authenticator is not on the allow-list for AAL3")]
    NotAllowListed,
    /// The credential in the response is not the one given (or not among the
    /// ones allowed for this ceremony), or belongs to another user. Client, or
    /// an attacker probing credentials.
    #[error("unknown credential")]
    UnknownCredential,
    /// The credential being registered is already registered (it was in the
    /// exclude list). User error: the authenticator is already enrolled.
    #[error("this authenticator is already registered")]
    AlreadyRegistered,
    /// The assertion or attestation signature does not verify. Attacker, or a
    /// corrupted response.
    #[error("the signature does not verify")]
    BadSignature,
    /// The response is malformed or uses something we do not support
    /// (encoding, ceremony type, algorithm, attestation format). Client or
    /// attacker; the text is safe to log.
    #[error("invalid WebAuthn response: {0}")]
    InvalidResponse(String),
    /// A stored ceremony state or credential does not deserialise. Server bug
    /// or database corruption; never the user's fault.
    #[error("stored passkey data is unreadable: {0}")]
    CorruptState(String),
    /// The configuration or the AAL3 allow-list is unusable. Operator.
    #[error("passkey configuration: {0}")]
    Config(String),
    /// A FIDO metadata (MDS3) BLOB was refused; the inner error says why.
    #[error("FIDO metadata BLOB: {0}")]
    MetadataBlob(#[from] MetadataBlobError),
}

impl PasskeyError {
    /// The stable code a client is answered with and a refusal is audited by.
    pub fn code(&self) -> tuaton_core::ErrorCode {
        use tuaton_core::ErrorCode as C;
        match self {
            Self::Expired => C::CeremonyExpired,
            Self::ChallengeMismatch => C::ChallengeMismatch,
            Self::WrongOrigin => C::WrongOrigin,
            Self::UserVerificationMissing => C::UserVerificationRequired,
            Self::CounterRegression => C::CredentialSuspended,
            Self::NotAllowListed => C::AuthenticatorNotAllowListed,
            Self::UnknownCredential => C::UnknownCredential,
            Self::AlreadyRegistered => C::CredentialExists,
            Self::CorruptState(_) | Self::Config(_) | Self::MetadataBlob(_) => C::InternalError,
            Self::WrongRelyingParty
            | Self::UserPresenceMissing
            | Self::BackupStateInconsistent
            | Self::BadSignature
            | Self::InvalidResponse(_) => C::InvalidCredential,
        }
    }
}

/// Why a FIDO Metadata Service (MDS3) BLOB was refused. Every case stops the
/// import as a whole: a BLOB is trusted entirely or not at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataBlobError {
    /// Not a JWS in compact serialisation, or a part is not the base64url JSON
    /// MDS3 prescribes. The operator's file (wrong or truncated download).
    #[error("malformed: {0}")]
    Malformed(String),
    /// The header's `alg` is not RS256 or ES256. `none` lands here: an
    /// unsigned BLOB is an attacker's or a test file, never the FIDO
    /// Alliance's.
    #[error("signature algorithm {0:?} is not accepted (only RS256 and ES256)")]
    UnsupportedAlgorithm(String),
    /// The header carries no `x5c` certificate chain, so there is nothing to
    /// tie the signature to the trusted root. Wrong file, or an attacker.
    #[error("the header has no x5c certificate chain")]
    MissingCertificateChain,
    /// The signing certificate does not chain to a configured root, is
    /// outside its validity period, or is not the FIDO Alliance's BLOB
    /// signing certificate. An attacker, a wrong root file, or a clock far off.
    #[error("the signing certificate is not trusted: {0}")]
    UntrustedSigner(String),
    /// The signature does not verify with the signing certificate's key: the
    /// BLOB was changed after signing. An attacker or a corrupted file.
    #[error("the signature does not verify")]
    BadSignature,
    /// `nextUpdate` is before today: the FIDO Alliance has published newer
    /// statuses (perhaps a compromise report) since. The operator downloads
    /// a fresh BLOB.
    #[error("stale: nextUpdate was {next_update}; download a fresh BLOB")]
    Stale {
        /// The BLOB's `nextUpdate` date.
        next_update: time::Date,
    },
}

/// Which ceremony a webauthn-rs error came from; a few errors mean different
/// things depending on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Register,
    RegisterAttested,
    Login,
}

impl PasskeyError {
    /// Maps a webauthn-rs error to the most specific variant.
    pub(crate) fn from_webauthn(e: WebauthnError, stage: Stage) -> Self {
        use WebauthnError as W;
        let attested = stage == Stage::RegisterAttested;
        match e {
            W::MismatchedChallenge | W::ChallengeNotFound => Self::ChallengeMismatch,
            W::InvalidRPOrigin | W::CredentialCrossOrigin => Self::WrongOrigin,
            W::InvalidRPIDHash => Self::WrongRelyingParty,
            W::UserNotVerified => Self::UserVerificationMissing,
            W::UserNotPresent => Self::UserPresenceMissing,
            W::CredentialPossibleCompromise => Self::CounterRegression,
            W::CredentialNotFound => Self::UnknownCredential,
            W::CredentialAlreadyExists | W::CredentialExcludedFromRequest => {
                Self::AlreadyRegistered
            }
            W::AuthenticationFailure | W::SignatureInvalid => Self::BadSignature,
            W::CredentialBackupEligibilityInconsistent => Self::BackupStateInconsistent,
            // Trust decisions about the attestation: the authenticator is
            // simply not one we accept for AAL3.
            W::AttestationChainNotTrusted(_)
            | W::AttestationNotVerifiable
            | W::AttestationUntrustedAaguid
            | W::AttestationFormatMissingAaguid
            | W::AttestationTrustFailure
            | W::AttestationLeafCertMissing
            | W::AttestationCertificateTrustStoreEmpty
            | W::AttestationNotSupported
                if attested =>
            {
                Self::NotAllowListed
            }
            // A synchronisable (backup-eligible) key is not hardware-bound.
            W::CredentialMayNotBeHardwareBound if attested => Self::NotAllowListed,
            W::CredentialMayNotBeHardwareBound => Self::BackupStateInconsistent,
            W::AttestationStatementSigInvalid => Self::BadSignature,
            W::Configuration | W::MissingAttestationCaList => Self::Config(e.to_string()),
            other => Self::InvalidResponse(other.to_string()),
        }
    }
}
