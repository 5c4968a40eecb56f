//! Rate limits on ceremonies, per client address and per account.

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;
use tuaton_core::SystemClock;
use tuaton_store::testing::TestDb;

use crate::common::*;
use crate::on_both_engines;

async fn ceremonies_are_rate_limited_per_address_and_per_account(db: TestDb) {
    let app = app_with(
        &db,
        Arc::new(SystemClock),
        &[("TUATON_RATE_LIMIT_PER_ADDRESS", "4")],
    );
    let mut c = Client {
        app,
        cookie: None,
        csrf: None,
    };
    for _ in 0..4 {
        let (s, _) = c
            .call("POST", "/api/v1/login/start", Some(json!({})), false)
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, v) = c
        .call("POST", "/api/v1/login/start", Some(json!({})), false)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")),
        "{v}"
    );
    // Other endpoints are not ceremony endpoints and are not limited this way.
    assert_eq!(
        c.call("GET", "/api/v1/me", None, false).await.0,
        StatusCode::UNAUTHORIZED
    );

    let app = app_with(
        &db,
        Arc::new(SystemClock),
        &[("TUATON_RATE_LIMIT_PER_ACCOUNT", "3")],
    );
    let mut c = Client {
        app,
        cookie: None,
        csrf: None,
    };
    // Enrolment, registration start and finish, login start: the account's budget of three is spent by the fourth call.
    let (s, enrolled) = c
        .call("POST", "/api/v1/enrolments", Some(somchai()), false)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let mut authn = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
    register(
        &mut c,
        &mut authn,
        Some(enrolled["enrolment_token"].as_str().unwrap()),
        "phone",
    )
    .await;
    let (s, _) = c
        .call(
            "POST",
            "/api/v1/login/start",
            Some(json!({ "citizen_id": "1999000000017" })),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = c
        .call(
            "POST",
            "/api/v1/login/start",
            Some(json!({ "citizen_id": "1999000000017" })),
            false,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")),
        "{v}"
    );
    db.cleanup().await;
}

on_both_engines!(ceremonies_are_rate_limited_per_address_and_per_account);
