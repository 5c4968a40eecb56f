//! The service layer's refusals as HTTP: a status and a sentence for a
//! person per code. The code itself comes from `IdmError::code`.

use axum::http::StatusCode;
use tuaton_core::ErrorCode;

use super::ApiError;

/// The one mapping from the service layer's refusals to HTTP: a status and
/// a sentence for a person per code; the detail stays in the log.
impl From<tuaton_idm::IdmError> for ApiError {
    fn from(e: tuaton_idm::IdmError) -> Self {
        use tuaton_idm::{FreshFor, IdmError as E, Registry};
        use tuaton_passkeys::PasskeyError as P;
        let code = e.code();
        let (status, message): (StatusCode, std::borrow::Cow<'static, str>) = match &e {
            E::Invalid { message, .. } => (StatusCode::BAD_REQUEST, message.clone().into()),
            E::Ceremony(tuaton_store::ceremonies::TakeError::Expired) | E::Passkey(P::Expired) => {
                (StatusCode::UNAUTHORIZED, "The request took too long. Start again.".into())
            }
            E::Ceremony(_) => (
                StatusCode::UNAUTHORIZED,
                "This request is unknown or was already used. Start again.".into(),
            ),
            E::Passkey(P::CounterRegression) => (
                StatusCode::UNAUTHORIZED,
                "This passkey shows signs of being copied and has been suspended. Use another passkey or recover your account.".into(),
            ),
            E::Passkey(P::NotAllowListed) => (
                StatusCode::FORBIDDEN,
                "This authenticator is not on the list approved for the highest assurance level.".into(),
            ),
            E::Passkey(P::AlreadyRegistered) => {
                (StatusCode::CONFLICT, "This passkey is already registered.".into())
            }
            E::Passkey(p) if p.code() == ErrorCode::InternalError => return ApiError::internal(p),
            E::Passkey(_) => (
                StatusCode::UNAUTHORIZED,
                "The passkey response could not be verified.".into(),
            ),
            E::NoSuchPasskey => (StatusCode::NOT_FOUND, "No such passkey on this account.".into()),
            E::LastPasskey => (
                StatusCode::CONFLICT,
                "This is your only passkey. Add another first, or start account recovery.".into(),
            ),
            E::LoginRequired => (StatusCode::UNAUTHORIZED, "Log in first.".into()),
            E::SessionExpired => (
                StatusCode::UNAUTHORIZED,
                "Your session has ended. Log in again.".into(),
            ),
            E::FreshLoginRequired(FreshFor::RemovePasskey) => {
                (StatusCode::FORBIDDEN, "Log in again to remove a passkey.".into())
            }
            E::FreshLoginRequired(FreshFor::Erase) => {
                (StatusCode::FORBIDDEN, "Log in again to erase your account.".into())
            }
            E::FreshLoginRequired(FreshFor::ChangeClient) => (
                StatusCode::FORBIDDEN,
                "Log in again with your security key to change client registrations.".into(),
            ),
            E::FreshLoginRequired(FreshFor::Authorize) => (
                StatusCode::FORBIDDEN,
                "Log in with your passkey to continue to the agency.".into(),
            ),
            E::CsrfTokenMissing => (
                StatusCode::FORBIDDEN,
                "This request needs the X-CSRF-Token header.".into(),
            ),
            E::CsrfTokenInvalid => (
                StatusCode::FORBIDDEN,
                "The X-CSRF-Token header does not match this session.".into(),
            ),
            E::AccountNotActive => (
                StatusCode::FORBIDDEN,
                "This account is suspended or closed.".into(),
            ),
            E::AccountSuspended => (
                StatusCode::FORBIDDEN,
                "This account is suspended. Contact the operator to have it reviewed.".into(),
            ),
            E::WrongAccountState { .. } | E::RoleAlreadyHeld(_) | E::RoleNotHeld(_) => {
                (StatusCode::CONFLICT, e.to_string().into())
            }
            E::UnknownAccount => (StatusCode::NOT_FOUND, "No such account.".into()),
            E::UnknownClient => (StatusCode::NOT_FOUND, "No such client.".into()),
            E::ClientExists => (
                StatusCode::CONFLICT,
                "A client with this id is registered already.".into(),
            ),
            E::AlreadyEnrolled => (
                StatusCode::CONFLICT,
                "An account already exists for this citizen id. Log in with your passkey, or recover the account if you lost it.".into(),
            ),
            E::NotProofed => (
                StatusCode::FORBIDDEN,
                "This account has no verified citizen id.".into(),
            ),
            E::IalTooLow { .. } => (
                StatusCode::FORBIDDEN,
                "Acting for a company needs identity verified at IAL2.1 or higher.".into(),
            ),
            E::AalTooLow { needs } => (
                StatusCode::FORBIDDEN,
                format!(
                    "This needs a login with a passkey at authenticator level {} (a hardware security key). Log in with one.",
                    needs.number()
                )
                .into(),
            ),
            E::OfficerRoleRequired => (
                StatusCode::FORBIDDEN,
                "Only officers can record in-person proofing.".into(),
            ),
            E::ClientAdminRoleRequired => (
                StatusCode::FORBIDDEN,
                "Only client administrators can manage client registrations.".into(),
            ),
            E::OfficerRecoveryRequired => (
                StatusCode::FORBIDDEN,
                "This account was proofed in person. Visit an officer with your ID card to recover it.".into(),
            ),
            E::UnknownConsent => (StatusCode::NOT_FOUND, "No live consent with this id.".into()),
            E::CertificateRevoked => (
                StatusCode::FORBIDDEN,
                "Your signing certificate was revoked. An officer can issue a new one once they have checked why.".into(),
            ),
            E::UnknownSigningRequest => (
                StatusCode::NOT_FOUND,
                "No pending signing request matches. It may have been signed already or expired.".into(),
            ),
            E::UnknownDocument => (
                StatusCode::NOT_FOUND,
                "No document with this id is waiting to be signed. It may have been signed or declined already, or expired.".into(),
            ),
            E::NotTheSigner => (
                StatusCode::FORBIDDEN,
                "The agency asked another person to sign this document. Log in as that person, or ask the agency.".into(),
            ),
            E::AlreadySigned => (
                StatusCode::CONFLICT,
                "You have signed this document for the company already. It waits for another director; the agency asks them.".into(),
            ),
            E::AuthorityChanged => (
                StatusCode::CONFLICT,
                "An earlier signer of this document is no longer a director the company registry lists, or can no longer sign, so it cannot be completed. The agency must post it again.".into(),
            ),
            E::SigningInProgress => (
                StatusCode::CONFLICT,
                "Another person is confirming this document now. Try again in a few minutes, once their signing has ended.".into(),
            ),
            E::UnknownSigningCredential => (
                StatusCode::NOT_FOUND,
                "No credential of this person has this id.".into(),
            ),
            E::SignatureNotAuthorised => (
                StatusCode::FORBIDDEN,
                "The token authorises no signature now: the person's confirmation was used already, has expired, or was given to another agency. Send the person through an authorization request with the hashes again.".into(),
            ),
            E::HashNotConfirmed { index } => (
                StatusCode::FORBIDDEN,
                format!("Hash {index} is not one the person confirmed; only confirmed hashes are signed.").into(),
            ),
            E::UnknownRecovery => (
                StatusCode::NOT_FOUND,
                "No open recovery matches. It may have been cancelled by the account's owner, completed or expired, or the token is wrong.".into(),
            ),
            E::RecoveryCoolingOff { ready_at, wait } => {
                let when = ready_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                return ApiError::new(
                    StatusCode::CONFLICT,
                    code,
                    format!("The owner of the account has until {when} to cancel this recovery. Come back then."),
                )
                .with_retry_after(u64::try_from(wait.whole_seconds()).unwrap_or(0).max(1));
            }
            E::NoActivePasskey => (
                StatusCode::CONFLICT,
                "This account has no active passkey to confirm with. Contact the service, or visit an officer with your ID card.".into(),
            ),
            E::FaceMatchUnavailable | E::FaceMatch(tuaton_proofing::FaceMatchError::Unavailable) => {
                return ApiError::unavailable(
                    code,
                    "Face comparison is not available here. Leave the capture out; the recovery then waits out its cooling-off period.",
                    3600,
                );
            }
            E::FaceMatch(tuaton_proofing::FaceMatchError::UnusableCapture) => (
                StatusCode::BAD_REQUEST,
                "The face capture cannot be used. Take it again in good light, facing the camera.".into(),
            ),
            E::Proofing(d) => match d.code() {
                ErrorCode::CardNotFound => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "No valid ID card was found for these details. Check the laser code on the back of your current card.".into(),
                ),
                ErrorCode::DetailsMismatch => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "The details do not match the population registry. Check the names and date of birth as printed on the card.".into(),
                ),
                ErrorCode::RegistryUnavailable => {
                    return ApiError::unavailable(
                        code,
                        "The population registry cannot be reached right now. Nothing was saved; please try again later.",
                        60,
                    );
                }
                ErrorCode::InvalidAttestation => (StatusCode::BAD_REQUEST, d.to_string().into()),
                _ => return ApiError::internal(d),
            },
            E::RegistryNotConfigured(Registry::CardStatus) => {
                return ApiError::unavailable(
                    code,
                    "Identity proofing is not available on this server yet. Please try again later.",
                    3600,
                );
            }
            E::RegistryNotConfigured(Registry::Juristic) => {
                return ApiError::unavailable(
                    code,
                    "Company linking and checks are not available on this server yet.",
                    3600,
                );
            }
            E::CompanyRegistry(tuaton_proofing::RegistryError::NotFound) => (
                StatusCode::NOT_FOUND,
                "No company is registered under this id.".into(),
            ),
            E::CompanyRegistry(tuaton_proofing::RegistryError::Unavailable { .. }) => {
                return ApiError::unavailable(
                    code,
                    "The company registry cannot be reached right now. Please try again later.",
                    60,
                );
            }
            E::CompanyDissolved => (
                StatusCode::FORBIDDEN,
                "The registry lists this company as dissolved.".into(),
            ),
            E::NotADirector => (
                StatusCode::FORBIDDEN,
                "The registry does not list you as a director of this company.".into(),
            ),
            E::RateLimited => return crate::ratelimit::refused("account"),
            E::Custody(tuaton_idm::custody::CustodyError::NoCertificate(what)) => {
                tracing::warn!(authority = what, "the CA hierarchy is not set up");
                return ApiError::unavailable(
                    ErrorCode::KeysUnavailable,
                    format!("The {what} is not set up on this server."),
                    60,
                );
            }
            E::Custody(tuaton_idm::custody::CustodyError::TimeStampUnavailable(why)) => {
                tracing::warn!(reason = %why, "a signature got no time stamp");
                return ApiError::unavailable(
                    ErrorCode::TimeStampUnavailable,
                    "The time-stamping authority gave no time stamp, so nothing was signed. Please confirm again shortly.",
                    5,
                );
            }
            E::Custody(c) if c.is_retryable() => {
                tracing::error!(error = %c, "key custody failed");
                return ApiError::unavailable(
                    ErrorCode::KeysUnavailable,
                    "The signing keys cannot be read right now. Please try again shortly.",
                    5,
                );
            }
            E::Store(tuaton_store::StoreError::Unavailable(_)) => {
                tracing::warn!(error = %e, "database unavailable");
                return ApiError::unavailable(
                    code,
                    "The service is temporarily unavailable. Please try again shortly.",
                    5,
                );
            }
            E::Store(tuaton_store::StoreError::Conflict { .. }) => (
                StatusCode::CONFLICT,
                "The request conflicts with the current state.".into(),
            ),
            E::Store(tuaton_store::StoreError::NotFound { what }) => {
                (StatusCode::NOT_FOUND, format!("The {what} was not found.").into())
            }
            E::Custody(_) | E::Store(_) | E::Internal(_) => return ApiError::internal(&e),
        };
        ApiError::new(status, code, message)
    }
}
