//! Login sessions: the cookie, the CSRF check, and the extractor handlers use.
//!
//! The cookie holds 256 random bits; the store keeps only their SHA-256. It is
//! `HttpOnly`, `SameSite=Lax`, path `/`, and on an https public URL `Secure` with
//! the `__Host-` prefix (which browsers only accept on secure origins, so plain
//! http development uses the unprefixed name). Every state-changing request
//! made with a session must carry the session's CSRF token in `X-CSRF-Token`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use time::Duration;
use tuaton_store::audit::AuditEvent;
use tuaton_store::batch::Batch;
use tuaton_store::sessions::{self, NewSession};

use crate::{ApiError, AppState};

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session cookie's name for these settings.
pub fn cookie_name(state: &AppState) -> &'static str {
    if state.settings().is_https() {
        "__Host-tuaton-session"
    } else {
        "tuaton-session"
    }
}

fn random_token() -> Result<String, ApiError> {
    let mut b = [0u8; 32];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| ApiError::internal("system random source failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

fn hash_secret(secret: &str) -> String {
    hex::encode(digest(&SHA256, secret.as_bytes()))
}

/// A session just created: the `Set-Cookie` value and the CSRF token for the client.
pub struct IssuedSession {
    /// The `Set-Cookie` header value.
    pub set_cookie: String,
    /// The token to send back in `X-CSRF-Token`.
    pub csrf_token: String,
}

/// Starts a session for `account_id` after a successful login, ending the
/// session (if any) the request came with: the id always changes at login and
/// step-up, so an id planted before login is worthless after it. The writes
/// join `batch`, which the caller runs in the login's transaction.
pub fn issue(
    state: &AppState,
    previous_cookie: Option<&str>,
    account_id: &str,
    aal: &str,
    amr: &[&str],
    batch: &mut Batch,
) -> Result<IssuedSession, ApiError> {
    if let Some(old) = previous_cookie {
        batch.push(sessions::delete(&hash_secret(old)));
    }
    let secret = random_token()?;
    let csrf_token = random_token()?;
    let lifetime =
        Duration::try_from(state.settings().session_absolute).unwrap_or(Duration::hours(12));
    let amr_json = serde_json::to_string(amr).map_err(ApiError::internal)?;
    batch.push(sessions::insert(
        &NewSession {
            id_hash: &hash_secret(&secret),
            account_id,
            aal,
            amr: &amr_json,
            csrf_token: &csrf_token,
            lifetime,
        },
        state.now(),
    ));
    Ok(IssuedSession {
        set_cookie: session_cookie(state, &secret, Some(lifetime)),
        csrf_token,
    })
}

/// A `Set-Cookie` value; `max_age: None` clears the cookie.
pub fn session_cookie(state: &AppState, value: &str, max_age: Option<Duration>) -> String {
    let mut c = Cookie::build((cookie_name(state), value.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings().is_https());
    c = match max_age {
        Some(age) => c.max_age(age),
        None => c.max_age(Duration::ZERO),
    };
    c.build().to_string()
}

/// The session cookie's value in a request, if present.
pub fn cookie_value(state: &AppState, headers: &http::HeaderMap) -> Option<String> {
    let name = cookie_name(state);
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| Cookie::parse(c.trim().to_owned()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A request made within a live session. For methods other than GET and HEAD,
/// extraction also checks the CSRF token.
#[derive(Debug, Clone)]
pub struct SessionAuth {
    /// The account.
    pub account_id: String,
    /// The authenticator assurance reached at login.
    pub aal: String,
    /// The authentication methods, RFC 8176 values.
    pub amr: Vec<String>,
    /// SHA-256 of the cookie secret, for logout.
    pub id_hash: String,
    /// When the login happened.
    pub authenticated_at: time::OffsetDateTime,
}

impl FromRequestParts<AppState> for SessionAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(secret) = cookie_value(state, &parts.headers) else {
            return Err(ApiError::unauthorized("login_required", "Log in first."));
        };
        let id_hash = hash_secret(&secret);
        let idle =
            Duration::try_from(state.settings().session_idle).unwrap_or(Duration::minutes(15));
        let Some(session) = sessions::touch(state.store(), &id_hash, idle, state.now()).await?
        else {
            return Err(ApiError::unauthorized(
                "session_expired",
                "Your session has ended. Log in again.",
            ));
        };
        if !matches!(parts.method, http::Method::GET | http::Method::HEAD) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            match sent {
                None => {
                    return Err(ApiError::forbidden(
                        "csrf_token_missing",
                        "This request needs the X-CSRF-Token header.",
                    ));
                }
                Some(t) if !constant_time_eq(t.as_bytes(), session.csrf_token.as_bytes()) => {
                    let ev = AuditEvent::failure(
                        format!("account:{}", session.account_id),
                        "session.csrf_rejected",
                        "session",
                    );
                    let _ =
                        tuaton_store::audit::append_alone(state.store(), state.now(), &ev).await;
                    return Err(ApiError::forbidden(
                        "csrf_token_invalid",
                        "The X-CSRF-Token header does not match this session.",
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(SessionAuth {
            account_id: session.account_id,
            aal: session.aal,
            amr: serde_json::from_str(&session.amr).unwrap_or_default(),
            id_hash,
            authenticated_at: session.created_at,
        })
    }
}

/// `Option<SessionAuth>`: `None` without a session cookie (or with an ended
/// session); a present session still has its CSRF token checked.
impl axum::extract::OptionalFromRequestParts<AppState> for SessionAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        if cookie_value(state, &parts.headers).is_none() {
            return Ok(None);
        }
        match <SessionAuth as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.code() == "session_expired" => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
