//! Sessions at the HTTP edge: the cookie, the CSRF check, and the extractor
//! handlers use. Minting and resolving sessions is the service layer's
//! (`tuaton_idm::sessions`); this module only carries them in cookies.
//!
//! The cookie is `HttpOnly`, `SameSite=Strict` (a request started on another
//! site never carries it, not even a top-level link), path `/`, a browser
//! session cookie (no `Max-Age`: closing the browser forgets it, and the
//! server ends the session at its idle and absolute limits either way), and
//! on an https public URL `Secure` with the `__Host-` prefix (which browsers
//! only accept on secure origins, so plain http development uses the
//! unprefixed name).
//! Every state-changing request made with a session must carry the
//! session's CSRF token: in `X-CSRF-Token`, or — an HTML form cannot set a
//! header — in the form's `csrf_token` field ([`csrf_from_form`]). A
//! mismatch is counted and logged, not audited, so a session holder cannot
//! grow the audit log with it.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use time::Duration;
use tuaton_idm::{ActiveSession, IdmError, IssuedSession, SessionSecret};

use crate::{ApiError, AppState};

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The form field an HTML form carries the CSRF token in.
pub const CSRF_FIELD: &str = "csrf_token";

/// Layer: a form post (`application/x-www-form-urlencoded`) without the
/// CSRF header has its `csrf_token` field moved into the header, so the
/// one check in [`SessionAuth`] serves forms and programs alike. The body
/// is read within the body limit and handed on unchanged.
pub async fn csrf_from_form(req: Request, next: Next) -> Response {
    let is_form = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form || req.headers().contains_key(CSRF_HEADER) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                tuaton_core::ErrorCode::BodyTooLarge,
                "The request body is too large or could not be read.",
            )
            .into_response();
        }
    };
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .and_then(|(_, v)| http::HeaderValue::from_str(&v).ok());
    if let Some(t) = token {
        parts.headers.insert(CSRF_HEADER, t);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The session cookie's name for these settings.
pub fn cookie_name(state: &AppState) -> &'static str {
    if state.settings().is_https() {
        "__Host-tuaton-session"
    } else {
        "tuaton-session"
    }
}

/// The session cookie with `value`, as a browser-session cookie.
fn session_cookie<'c>(state: &AppState, value: &str) -> cookie::CookieBuilder<'c> {
    Cookie::build((cookie_name(state), value.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings().is_https())
}

/// The `Set-Cookie` value that hands a new session to the client.
pub fn issued_cookie(state: &AppState, issued: &IssuedSession) -> String {
    session_cookie(state, issued.secret.expose())
        .build()
        .to_string()
}

/// The `Set-Cookie` value that clears the session cookie.
pub fn cleared_cookie(state: &AppState) -> String {
    session_cookie(state, "")
        .max_age(Duration::ZERO)
        .build()
        .to_string()
}

/// The session secret a request's cookie carries, if any.
pub fn presented_secret(state: &AppState, headers: &http::HeaderMap) -> Option<SessionSecret> {
    let name = cookie_name(state);
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| Cookie::parse(c.trim().to_owned()).ok())
        .find(|c| c.name() == name)
        .map(|c| SessionSecret::presented(c.value()))
}

/// A request made within a live session. For methods other than GET and
/// HEAD, extraction also checks the CSRF token.
#[derive(Debug, Clone)]
pub struct SessionAuth(pub ActiveSession);

impl std::ops::Deref for SessionAuth {
    type Target = ActiveSession;

    fn deref(&self) -> &ActiveSession {
        &self.0
    }
}

impl FromRequestParts<AppState> for SessionAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = presented_secret(state, &parts.headers).ok_or(IdmError::LoginRequired)?;
        resolve(parts, state, &secret).await
    }
}

/// The live session `secret` opens, with the CSRF check for a state-changing request.
async fn resolve(
    parts: &Parts,
    state: &AppState,
    secret: &SessionSecret,
) -> Result<SessionAuth, ApiError> {
    let session = state.idm().session(secret, state.now()).await?;
    if !matches!(parts.method, http::Method::GET | http::Method::HEAD) {
        let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if let Err(e) = session.check_csrf(sent) {
            metrics::counter!("tuaton_csrf_refused_total", "code" => e.code().as_str())
                .increment(1);
            tracing::info!(code = e.code().as_str(), "CSRF check failed");
            return Err(e.into());
        }
    }
    Ok(SessionAuth(session))
}

/// `Option<SessionAuth>`: `None` without a session cookie (or with an ended
/// session); a present session still has its CSRF token checked.
impl axum::extract::OptionalFromRequestParts<AppState> for SessionAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        let Some(secret) = presented_secret(state, &parts.headers) else {
            return Ok(None);
        };
        match resolve(parts, state, &secret).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.code() == tuaton_core::ErrorCode::SessionExpired => Ok(None),
            Err(e) => Err(e),
        }
    }
}
