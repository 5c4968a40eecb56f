//! The stable error codes every front door answers with.
//!
//! A code names what went wrong in a word a program can branch on; it is what
//! problem documents carry in `code`, what audit records give as a refusal's
//! `reason`, and what each crate's error returns from `code()`. Codes are part
//! of the public contract: a code, once published, keeps its meaning.

use std::fmt;

macro_rules! codes {
    ( $( $(#[$doc:meta])* $variant:ident = $text:literal, )+ ) => {
        /// A stable, machine-readable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )+
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )+ ];

            /// The published form, e.g. `"ceremony_expired"`.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $text, )+ }
            }
        }
    };
}

codes! {
    // Input that does not parse or validate.
    /// A JSON field is missing, unknown or of the wrong type, or a value is out of range.
    InvalidField = "invalid_field",
    /// The body is not well-formed JSON.
    MalformedJson = "malformed_json",
    /// The body could not be read.
    InvalidBody = "invalid_body",
    /// The body is not in a media type the endpoint accepts.
    UnsupportedMediaType = "unsupported_media_type",
    /// The body is larger than the server accepts.
    BodyTooLarge = "body_too_large",
    /// A citizen id is malformed or fails its check digit.
    InvalidCitizenId = "invalid_citizen_id",
    /// A juristic-person id is malformed or fails its check digit.
    InvalidJuristicId = "invalid_juristic_id",
    /// The ID card's details do not parse.
    InvalidEvidence = "invalid_evidence",
    /// A contact address is not an e-mail address.
    InvalidContactEmail = "invalid_contact_email",
    /// A passkey's name is empty or too long.
    InvalidName = "invalid_name",
    /// An officer's attestation is incomplete.
    InvalidAttestation = "invalid_attestation",
    // Ceremonies and credentials.
    /// The ceremony's time ran out.
    CeremonyExpired = "ceremony_expired",
    /// The ceremony is unknown or was already used.
    UnknownCeremony = "unknown_ceremony",
    /// The passkey is not known (for this account).
    UnknownCredential = "unknown_credential",
    /// The passkey is suspended (a cloned authenticator was detected).
    CredentialSuspended = "credential_suspended",
    /// The passkey is already registered.
    CredentialExists = "credential_exists",
    /// The authenticator did not verify its user.
    UserVerificationRequired = "user_verification_required",
    /// The response came from an origin that is not Tuaton's.
    WrongOrigin = "wrong_origin",
    /// The response answers another challenge.
    ChallengeMismatch = "challenge_mismatch",
    /// The authenticator is not on the AAL3 allow-list.
    AuthenticatorNotAllowListed = "authenticator_not_allow_listed",
    /// The passkey response could not be verified.
    InvalidCredential = "invalid_credential",
    /// The account's only passkey cannot be removed.
    LastPasskey = "last_passkey",
    // Sessions and accounts.
    /// The request needs a login.
    LoginRequired = "login_required",
    /// The session has ended.
    SessionExpired = "session_expired",
    /// The action needs a login within the last few minutes.
    FreshLoginRequired = "fresh_login_required",
    /// A state-changing request came without the session's CSRF token.
    CsrfTokenMissing = "csrf_token_missing",
    /// The CSRF token does not match the session.
    CsrfTokenInvalid = "csrf_token_invalid",
    /// The account is suspended or closed.
    AccountNotActive = "account_not_active",
    /// The account is suspended (recovery refused).
    AccountSuspended = "account_suspended",
    /// The account is not in the state the operator's command needs.
    WrongAccountState = "wrong_account_state",
    /// An account already exists for the citizen id.
    AlreadyEnrolled = "already_enrolled",
    /// The account has no verified citizen id.
    NotProofed = "not_proofed",
    /// The account's identity level is too low for the action.
    IalTooLow = "ial_too_low",
    /// The login's authenticator level is below what is asked for.
    AalTooLow = "aal_too_low",
    /// The account already holds the role.
    RoleAlreadyHeld = "role_already_held",
    /// Only officers may do this.
    OfficerRoleRequired = "officer_role_required",
    /// Only client administrators may use the admin API.
    ClientAdminRoleRequired = "client_admin_role_required",
    /// The account does not hold the role.
    RoleNotHeld = "role_not_held",
    /// The account's level needs in-person re-proofing to recover.
    OfficerRecoveryRequired = "officer_recovery_required",
    /// No recoverable account for these details.
    NoOpenAccount = "no_open_account",
    /// No open recovery with this id and token.
    UnknownRecovery = "unknown_recovery",
    /// The recovery's cooling-off period has not ended.
    RecoveryCoolingOff = "recovery_cooling_off",
    /// The account already has as many open recoveries as it may.
    TooManyRecoveries = "too_many_recoveries",
    /// The account has no active passkey to confirm with.
    NoActivePasskey = "no_active_passkey",
    /// No face matcher is configured.
    FaceMatchUnavailable = "face_match_unavailable",
    /// No such account.
    UnknownAccount = "unknown_account",
    /// No client is registered with this id.
    UnknownClient = "unknown_client",
    /// An agency's authorization request names an unknown client or a
    /// redirect URI not registered for it, so it cannot be answered there.
    InvalidAuthorizationRequest = "invalid_authorization_request",
    /// No authorization request is waiting in this browser, or it expired.
    NoPendingAuthorization = "no_pending_authorization",
    /// A client with this id is registered already.
    ClientExists = "client_exists",
    /// No live consent with this id.
    UnknownConsent = "unknown_consent",
    /// No pending signing request of this account with this id (unknown,
    /// signed already, expired, or another person's).
    UnknownSigningRequest = "unknown_signing_request",
    /// The person's signing certificate was revoked; an officer issues a
    /// new one after checking why.
    CertificateRevoked = "certificate_revoked",
    /// No signing credential (signing key) of this person with this id.
    UnknownSigningCredential = "unknown_signing_credential",
    /// The access token authorises no signature, or the one it authorised
    /// was made already or has expired.
    SignatureNotAuthorised = "signature_not_authorised",
    /// A hash to sign is not one the person confirmed.
    HashNotConfirmed = "hash_not_confirmed",
    /// No document an agency posted has this id for this caller (unknown,
    /// expired, another agency's), or it is no longer waiting to be signed.
    UnknownDocument = "unknown_document",
    /// The agency posted the document for another person than the one
    /// logged in.
    NotTheSigner = "not_the_signer",
    /// The director logged in signed this company's document already; it
    /// waits for another director.
    AlreadySigned = "already_signed",
    /// The registry no longer lists an earlier signer of a company's
    /// document as a director, or that signer can no longer sign: the
    /// document cannot be completed.
    AuthorityChanged = "authority_changed",
    /// Another person is confirming this document now; it is theirs to
    /// sign or leave until their signing request expires.
    SigningInProgress = "signing_in_progress",
    /// The documents of a signing request do not fit (none, too many, a
    /// name or a digest malformed).
    InvalidDocuments = "invalid_documents",
    // Registries.
    /// No valid card for these details.
    CardNotFound = "card_not_found",
    /// The card's details do not match the registry.
    DetailsMismatch = "details_mismatch",
    /// The registry cannot be reached.
    RegistryUnavailable = "registry_unavailable",
    /// No registry is configured on this server.
    RegistryNotConfigured = "registry_not_configured",
    /// No company under this juristic id.
    CompanyNotFound = "company_not_found",
    /// The registry lists the company as dissolved.
    CompanyDissolved = "company_dissolved",
    /// The registry does not list the person as a director.
    NotADirector = "not_a_director",
    // Keys.
    /// The key lifecycle refused the change.
    KeyRefused = "key_refused",
    /// The key backend failed or is unreachable.
    KeyBackendUnavailable = "key_backend_unavailable",
    /// The published signing keys cannot be read.
    KeysUnavailable = "keys_unavailable",
    /// The time-stamping authority gave no time stamp for a signature;
    /// nothing was signed, try again shortly.
    TimeStampUnavailable = "time_stamp_unavailable",
    // The service itself.
    /// Too many attempts.
    RateLimited = "rate_limited",
    /// The request conflicts with the current state.
    Conflict = "conflict",
    /// The thing asked for was not found.
    NotFound = "not_found",
    /// No endpoint at this address.
    NoSuchEndpoint = "no_such_endpoint",
    /// The endpoint does not answer this method.
    MethodNotAllowed = "method_not_allowed",
    /// The database is unavailable.
    DatabaseUnavailable = "database_unavailable",
    /// The request took too long.
    RequestTimeout = "request_timeout",
    /// A fault on Tuaton's side.
    InternalError = "internal_error",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()),
                "{c}"
            );
        }
    }
}
