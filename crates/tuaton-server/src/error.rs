//! The one place where errors become HTTP responses.
//!
//! Every error leaves as `application/problem+json` (RFC 9457) with a stable,
//! machine-readable `code` and a human sentence. Details that could help an
//! attacker or leak personal data are logged with the request id, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tuaton_core::ErrorCode;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    retry_after: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
/// Problem details (RFC 9457) with Tuaton's stable error code.
pub struct Problem {
    /// `about:blank` or a Tuaton error URI.
    #[serde(rename = "type")]
    kind: String,
    /// Short summary of the status.
    title: String,
    /// The HTTP status.
    status: u16,
    /// Stable machine-readable code, e.g. `invalid_citizen_id`.
    #[schema(value_type = String)]
    code: ErrorCode,
    /// A sentence for a person.
    detail: String,
}

impl ApiError {
    /// An error with an explicit status, code and sentence (the sentence is sent to the client).
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 for input that does not parse or validate.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409 for a request that conflicts with existing state.
    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 403.
    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 401.
    pub fn unauthorized(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 503 with `Retry-After`, for a dependency that is down.
    pub fn unavailable(code: ErrorCode, message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// Adds a `Retry-After` header (seconds).
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 500; `detail` is logged, never sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "Something went wrong on our side. Please try again later.",
        )
    }

    /// The status this error maps to.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(
                code = self.code.as_str(),
                status = self.status.as_u16(),
                "request failed"
            );
        } else {
            tracing::info!(
                code = self.code.as_str(),
                status = self.status.as_u16(),
                "request refused"
            );
        }
        let body = Problem {
            kind: "about:blank".into(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            code: self.code,
            detail: self.message,
        };
        let mut resp = (self.status, Json(body)).into_response();
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/problem+json"),
        );
        if let Some(v) = self
            .retry_after
            .and_then(|secs| http::HeaderValue::from_str(&secs.to_string()).ok())
        {
            resp.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<tuaton_store::StoreError> for ApiError {
    fn from(e: tuaton_store::StoreError) -> Self {
        tuaton_idm::IdmError::Store(e).into()
    }
}

/// JSON body extractor whose rejections come back as Tuaton problems, not axum's plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "Send the body as JSON with Content-Type: application/json.",
            )),
            Err(JsonRejection::JsonSyntaxError(_)) => Err(ApiError::bad_request(
                ErrorCode::MalformedJson,
                "The body is not well-formed JSON.",
            )),
            // The serde message names the field and what was expected; it never echoes values.
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::bad_request(
                ErrorCode::InvalidField,
                e.body_text(),
            )),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                "The request body is too large or could not be read.",
            )),
            Err(_) => Err(ApiError::bad_request(
                ErrorCode::InvalidBody,
                "The request body could not be read.",
            )),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

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
            E::WrongAccountState { .. } | E::RoleAlreadyHeld(_) => {
                (StatusCode::CONFLICT, e.to_string().into())
            }
            E::UnknownAccount => (StatusCode::NOT_FOUND, "No such account.".into()),
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
            E::OfficerRoleRequired => (
                StatusCode::FORBIDDEN,
                "Only officers can record in-person proofing.".into(),
            ),
            E::OfficerRecoveryRequired => (
                StatusCode::FORBIDDEN,
                "This account was proofed in person. Visit an officer with your ID card to recover it.".into(),
            ),
            E::UnknownConsent => (StatusCode::NOT_FOUND, "No live consent with this id.".into()),
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
