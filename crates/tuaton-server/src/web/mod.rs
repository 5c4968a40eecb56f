//! Server-rendered pages. Today one: the page a recovery notice links to,
//! where the account's owner cancels a recovery with a passkey in one click.
//! The Thai and English pages of the web-pages work join here.
//!
//! Pages are static files compiled in; each ships its script and style as
//! files of its own, so the strict CSP (`script-src 'self'`, no inline
//! script or style) holds. The page calls the JSON API like any client.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

const CANCEL_PAGE: &str = include_str!("assets/recovery-cancel.html");
const CANCEL_SCRIPT: &str = include_str!("assets/recovery-cancel.js");
const STYLE: &str = include_str!("assets/tuaton.css");
const PASSKEY_SCRIPT: &str = include_str!("assets/passkey.js");

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/recovery/cancel", get(cancel_page))
        .route("/assets/recovery-cancel.js", get(cancel_script))
        .route("/assets/passkey.js", get(passkey_script))
        .route("/assets/tuaton.css", get(style))
}

async fn cancel_page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        CANCEL_PAGE,
    )
}

async fn cancel_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CANCEL_SCRIPT,
    )
}

async fn passkey_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        PASSKEY_SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}
