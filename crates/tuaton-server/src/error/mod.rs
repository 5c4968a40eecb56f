//! The one place where errors become HTTP responses.
//!
//! Every error leaves as `application/problem+json` (RFC 9457) with a stable,
//! machine-readable `code` (tuaton-core's `ErrorCode`) and a human sentence;
//! a browser that asks for `text/html` gets the same refusal as a page
//! ([`page`]). The service layer's refusals are mapped in one place
//! ([`refusals`]). Details that could help an attacker or leak personal data
//! are logged with the request id, never sent.

pub(crate) mod page;
mod refusals;
#[cfg(test)]
mod tests;

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

#[derive(Clone, Serialize, utoipa::ToSchema)]
/// Problem details (RFC 9457) with Tuaton's stable error code. A response
/// carrying one also keeps it as an extension, so a page can be rendered
/// from it ([`page`]) without reading the JSON back.
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
        let mut resp = (self.status, Json(body.clone())).into_response();
        resp.extensions_mut().insert(body);
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
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::bad_request(
                ErrorCode::InvalidField,
                field_problem(&e.body_text()),
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

/// A sentence for a JSON field that did not fit, naming the field and never
/// the value sent (serde's own message quotes it: `invalid type: string
/// "…"`) nor Rust's type paths. axum's text is `…target type: PATH: MESSAGE`.
pub(crate) fn field_problem(text: &str) -> String {
    let detail = text.split_once("target type: ").map_or(text, |(_, d)| d);
    let (path, message) = detail.split_once(": ").unwrap_or((".", detail));
    let quoted = |m: &str| m.split('`').nth(1).map(str::to_owned);
    let at = if path == "." {
        String::new()
    } else {
        format!(" in `{path}`")
    };
    for (serde, says) in [
        ("missing field ", "is missing"),
        ("unknown field ", "is not accepted here"),
    ] {
        if let Some(name) = message.strip_prefix(serde).and_then(quoted) {
            return format!("The field `{name}` {says}{at}.");
        }
    }
    if path == "." {
        "The body does not have the expected shape.".to_owned()
    } else {
        format!("The field `{path}` has the wrong type or value.")
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}
