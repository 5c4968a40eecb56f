//! The error codes of OAuth 2.0 (RFC 6749 §4.1.2.1, §5.2) and OpenID
//! Connect Core 1.0 (§3.1.2.6), and whether an error may go back to the client.

use serde::Serialize;
use url::Url;

/// An error code a client is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthError {
    /// A parameter is missing, repeated, malformed or not allowed.
    InvalidRequest,
    /// The client may not use this grant or response type.
    UnauthorizedClient,
    /// The person or the server refused.
    AccessDenied,
    /// Only `code` is supported.
    UnsupportedResponseType,
    /// A scope is unknown or not allowed to the client.
    InvalidScope,
    /// The server failed.
    ServerError,
    /// The server cannot answer now.
    TemporarilyUnavailable,
    /// `prompt=none` but nobody is logged in.
    LoginRequired,
    /// `prompt=none` but consent is needed.
    ConsentRequired,
    /// `prompt=none` but the person must act.
    InteractionRequired,
    /// A `request` object was sent and is not supported.
    RequestNotSupported,
    /// A `request_uri` was sent and is not supported.
    RequestUriNotSupported,
    /// The request object does not verify or breaks a rule (OpenID Connect Core 1.0 §3.1.2.6).
    InvalidRequestObject,
    /// The assurance asked for cannot be reached (OpenID Connect Core errata).
    UnmetAuthenticationRequirements,
    /// The code, verifier or refresh token is wrong, used or expired.
    InvalidGrant,
    /// The client failed to authenticate.
    InvalidClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// A bearer token is missing, malformed, expired or revoked (RFC 6750 §3.1).
    InvalidToken,
    /// A DPoP proof is missing, malformed or names another request (RFC 9449 §5, §7.1).
    InvalidDpopProof,
    /// A DPoP proof lacks the server's current nonce (RFC 9449 §8).
    UseDpopNonce,
    /// `authorization_details` is malformed or names a type not supported
    /// (RFC 9396 §5).
    InvalidAuthorizationDetails,
}

impl OAuthError {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidRequestObject => "invalid_request_object",
            Self::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidClient => "invalid_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidToken => "invalid_token",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidAuthorizationDetails => "invalid_authorization_details",
        }
    }
}

/// Why an authorization request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizeError {
    /// The client or the redirect URI cannot be trusted (unknown client,
    /// a redirect URI not registered, the client or redirect given twice):
    /// the error is shown to the person and never sent to the URI
    /// (RFC 6749 §4.1.2.1; an open redirector otherwise).
    #[error("{description}")]
    Direct {
        /// The code.
        error: OAuthError,
        /// A sentence for the person.
        description: String,
    },
    /// Anything else: sent back to the client's redirect URI with `state`
    /// and `iss` (RFC 9207).
    #[error("{description}")]
    Redirect {
        /// Where to.
        redirect_uri: Box<Url>,
        /// The code.
        error: OAuthError,
        /// A sentence for the client's developer.
        description: String,
        /// The client's `state`, echoed.
        state: Option<String>,
    },
}

impl AuthorizeError {
    /// The code.
    pub fn error(&self) -> OAuthError {
        match self {
            Self::Direct { error, .. } | Self::Redirect { error, .. } => *error,
        }
    }

    /// The redirect carrying the error (RFC 6749 §4.1.2.1 with RFC 9207's
    /// `iss`), or `None` for one that must not leave the page.
    pub fn redirect(&self, issuer: &str) -> Option<Url> {
        let Self::Redirect {
            redirect_uri,
            error,
            description,
            state,
        } = self
        else {
            return None;
        };
        let mut url = (**redirect_uri).clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("error", error.as_str());
            q.append_pair("error_description", description);
            if let Some(s) = state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", issuer);
        }
        Some(url)
    }
}

/// Why a token request was refused (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{description}")]
pub struct TokenError {
    /// The code.
    pub error: OAuthError,
    /// A sentence for the client's developer; never a secret.
    pub description: String,
}

impl TokenError {
    /// A refusal with `error` and `description`.
    pub fn new(error: OAuthError, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }

    /// `invalid_request`.
    pub fn request(description: impl Into<String>) -> Self {
        Self::new(OAuthError::InvalidRequest, description)
    }

    /// `invalid_client`.
    pub fn client(description: impl Into<String>) -> Self {
        Self::new(OAuthError::InvalidClient, description)
    }

    /// `invalid_grant`.
    pub fn grant(description: impl Into<String>) -> Self {
        Self::new(OAuthError::InvalidGrant, description)
    }

    /// The HTTP status: 401 for a client that failed to authenticate, 400 otherwise.
    pub fn status(&self) -> u16 {
        if self.error == OAuthError::InvalidClient {
            401
        } else {
            400
        }
    }

    /// The body (RFC 6749 §5.2).
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.error.as_str(),
            "error_description": self.description,
        })
    }
}
