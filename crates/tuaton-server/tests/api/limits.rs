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

/// One login start from TCP peer `peer`, with `X-Forwarded-For: forwarded`
/// if given, as the server sees a request that came over a socket.
async fn login_start_from(app: &axum::Router, peer: &str, forwarded: Option<&str>) -> StatusCode {
    use tower::ServiceExt;
    let mut req =
        http::Request::post("/api/v1/login/start").header("content-type", "application/json");
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    let mut req = req.body(axum::body::Body::from("{}")).unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(
            peer.parse().unwrap(),
        ));
    app.clone().oneshot(req).await.unwrap().status()
}

async fn clients_behind_a_trusted_proxy_are_limited_per_client_address(db: TestDb) {
    let app = app_with(
        &db,
        Arc::new(SystemClock),
        &[
            ("TUATON_RATE_LIMIT_PER_ADDRESS", "2"),
            ("TUATON_TRUSTED_PROXIES", "10.0.0.1"),
        ],
    );
    let proxy = "10.0.0.1:40000";
    // Two people behind the proxy: each has a budget of two.
    for client in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            assert_eq!(
                login_start_from(&app, proxy, Some(client)).await,
                StatusCode::OK
            );
        }
        assert_eq!(
            login_start_from(&app, proxy, Some(client)).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{client}"
        );
    }
    // A client that names itself further left is still counted by the
    // address the proxy saw.
    assert_eq!(
        login_start_from(&app, proxy, Some("192.0.2.99, 198.51.100.1")).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // A direct client spends its budget, then forges the header with a fresh
    // address: it is not a proxy, so the header is ignored.
    let direct = "203.0.113.9:51000";
    for _ in 0..2 {
        assert_eq!(login_start_from(&app, direct, None).await, StatusCode::OK);
    }
    for forged in ["198.51.100.77", "10.0.0.1"] {
        assert_eq!(
            login_start_from(&app, direct, Some(forged)).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{forged}"
        );
    }
    db.cleanup().await;
}

/// A login start by citizen id from TCP peer `peer`.
async fn login_start_for(app: &axum::Router, peer: &str, citizen: &str) -> StatusCode {
    use tower::ServiceExt;
    let body = json!({ "citizen_id": citizen }).to_string();
    let mut req = http::Request::post("/api/v1/login/start")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(
            peer.parse().unwrap(),
        ));
    app.clone().oneshot(req).await.unwrap().status()
}

async fn a_stranger_cannot_spend_the_owners_per_account_limit(db: TestDb) {
    let app = app_with(
        &db,
        Arc::new(SystemClock),
        &[("TUATON_RATE_LIMIT_PER_ACCOUNT", "8")],
    );
    let mut owner = Client {
        app: app.clone(),
        cookie: None,
        csrf: None,
    };
    enrolled_and_logged_in(&mut owner, somchai()).await;
    // A stranger (one address) starts logins with Somchai's citizen id, the
    // one printed on every photocopy of his card, until refused.
    let stranger = "203.0.113.50:41000";
    let mut refused = false;
    for _ in 0..10 {
        refused |=
            login_start_for(&app, stranger, "1999000000017").await == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(refused, "the stranger's own share is limited");
    // Somchai, from his own address, is not locked out.
    assert_eq!(
        login_start_for(&app, "198.51.100.20:52000", "1999000000017").await,
        StatusCode::OK
    );
    // An unknown citizen id is limited alike (a stand-in account's share).
    let mut refused = false;
    for _ in 0..10 {
        refused |=
            login_start_for(&app, stranger, "1999000000025").await == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(refused);
    db.cleanup().await;
}

on_both_engines!(
    a_stranger_cannot_spend_the_owners_per_account_limit,
    ceremonies_are_rate_limited_per_address_and_per_account,
    clients_behind_a_trusted_proxy_are_limited_per_client_address
);
