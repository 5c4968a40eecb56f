//! Every state-changing route is checked for the session's CSRF token:
//! the routes are read from the OpenAPI document (the same one the router
//! serves), so a new route that acts on a session without the check fails
//! here. A route that never acts on a session (it starts from nothing, a
//! grant or a ceremony id) must be named below, with the reason.

use http::StatusCode;
use serde_json::{Value, json};
use tuaton_store::testing::TestDb;

use crate::common::*;
use crate::on_both_engines;

/// State-changing routes that act on no session, and so carry no CSRF token.
const SESSIONLESS: &[(&str, &str)] = &[
    ("/api/v1/enrolments", "starts from the card's details alone"),
    ("/api/v1/login/start", "a login starts without a session"),
    (
        "/api/v1/login/finish",
        "a login makes the session; the previous one is replaced, never used",
    ),
    ("/api/v1/recovery", "starts from the card's details alone"),
    (
        "/api/v1/recovery/{id}/grant",
        "the requester's token is the credential",
    ),
    (
        "/api/v1/recovery/{id}/cancel/start",
        "the owner's passkey is the credential",
    ),
    (
        "/api/v1/recovery/{id}/cancel/finish",
        "the owner's passkey is the credential",
    ),
    (
        "/api/v1/passkeys/registration/finish",
        "the ceremony id from start is the credential",
    ),
    (
        "/tsa",
        "a time stamp is asked by anyone, session or not (RFC 3161)",
    ),
    (
        "/ocsp",
        "a certificate's status is asked by anyone, session or not (RFC 6960)",
    ),
];

async fn every_state_changing_route_needs_the_csrf_token(db: TestDb) {
    let mut c = client(&db).await;
    enrolled_and_logged_in(&mut c, somchai()).await;
    let (_, doc) = c.call("GET", "/openapi.json", None, false).await;
    let mut checked = 0;
    let mut sessionless_seen = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            if matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS") {
                continue;
            }
            if let Some((_, why)) = SESSIONLESS.iter().find(|(p, _)| p == path) {
                assert!(!why.is_empty());
                sessionless_seen.push(path.clone());
                continue;
            }
            let concrete = path
                .replace("{id}", "00000000000000000000000000000000")
                .replace("{cred_id}", "AAAA")
                .replace("{juristic_id}", "0105599000019");
            let body: Option<Value> = (method != "DELETE").then(|| json!({}));
            let (s, v) = c.call(&method, &concrete, body, false).await;
            assert_eq!(
                (s, v["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("csrf_token_missing")),
                "{method} {path} acts on the session without its CSRF token: {v}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} routes were checked");
    for (path, _) in SESSIONLESS {
        assert!(
            sessionless_seen.iter().any(|p| p == path),
            "{path} is listed as sessionless but is not a route any more"
        );
    }
    db.cleanup().await;
}

on_both_engines!(every_state_changing_route_needs_the_csrf_token);
