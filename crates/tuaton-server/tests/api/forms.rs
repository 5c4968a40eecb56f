//! An HTML form cannot send a header: its CSRF token comes in a field, and
//! the same check applies to it as to `X-CSRF-Token`.

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tuaton_store::testing::TestDb;

use crate::common::*;
use crate::on_both_engines;

/// Posts `form` to `path` as a browser form would, with the client's cookie.
async fn post_form(client: &Client, path: &str, form: &str) -> (StatusCode, serde_json::Value) {
    let req = Request::post(path)
        .header("cookie", client.cookie.as_deref().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    let resp = client.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

async fn a_form_carries_the_csrf_token_in_a_field(db: TestDb) {
    let mut c = client(&db).await;
    enrolled_and_logged_in(&mut c, somchai()).await;
    let token = c.csrf.clone().unwrap();

    let (s, v) = post_form(&c, "/api/v1/logout/everywhere", "note=x").await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_token_missing"))
    );
    let (s, v) = post_form(&c, "/api/v1/logout/everywhere", "csrf_token=forged").await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_token_invalid"))
    );
    let (s, _) = c.call("GET", "/api/v1/me", None, false).await;
    assert_eq!(s, StatusCode::OK, "refused forms changed nothing");

    let form = format!(
        "csrf_token={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let (s, v) = post_form(&c, "/api/v1/logout/everywhere", &form).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sessions_ended"], 1);
    let (s, _) = c.call("GET", "/api/v1/me", None, false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the session has ended");
    db.cleanup().await;
}

on_both_engines!(a_form_carries_the_csrf_token_in_a_field);
