//! Passkey ceremonies through the API: what an attacker would try, and what must hold.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};
use tuaton_store::testing::TestDb;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use crate::common::*;
use crate::on_both_engines;

async fn login_start(c: &mut Client, citizen: &str) -> (String, RequestChallengeResponse) {
    let (s, start) = c
        .call(
            "POST",
            "/api/v1/login/start",
            Some(json!({ "citizen_id": citizen })),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{start}");
    let rcr = serde_json::from_value(json!({ "publicKey": start["public_key"] })).unwrap();
    (start["ceremony_id"].as_str().unwrap().to_owned(), rcr)
}

async fn finish(c: &mut Client, ceremony: &str, cred: &Value) -> (StatusCode, Value) {
    c.call(
        "POST",
        "/api/v1/login/finish",
        Some(json!({ "ceremony_id": ceremony, "credential": cred })),
        false,
    )
    .await
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

async fn wrong_origin_replay_and_expiry_are_rejected(db: TestDb) {
    let clock = fixed_clock();
    let mut c = Client {
        app: app_with_clock(&db, clock.clone()),
        cookie: None,
        csrf: None,
    };
    let mut authn = enrolled_and_logged_in(&mut c, somchai()).await;
    c.cookie = None;

    // An origin other than Tuaton's (another port on the same host).
    let (id, rcr) = login_start(&mut c, "1999000000017").await;
    let phished = authn
        .do_authentication(Url::parse("http://localhost:9090").unwrap(), rcr)
        .unwrap();
    let (s, v) = finish(&mut c, &id, &serde_json::to_value(&phished).unwrap()).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("wrong_origin")),
        "{v}"
    );

    // A good assertion works once; replaying it fails, with the same or a new ceremony.
    let (id, rcr) = login_start(&mut c, "1999000000017").await;
    let good = serde_json::to_value(authn.do_authentication(origin(), rcr).unwrap()).unwrap();
    assert_eq!(finish(&mut c, &id, &good).await.0, StatusCode::OK);
    let (s, v) = finish(&mut c, &id, &good).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unknown_ceremony")),
        "{v}"
    );
    let (id2, _) = login_start(&mut c, "1999000000017").await;
    let (s, v) = finish(&mut c, &id2, &good).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");

    // A ceremony finished after five minutes has expired.
    let (id, rcr) = login_start(&mut c, "1999000000017").await;
    let late = serde_json::to_value(authn.do_authentication(origin(), rcr).unwrap()).unwrap();
    clock.advance(time::Duration::minutes(6));
    let (s, v) = finish(&mut c, &id, &late).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("ceremony_expired")),
        "{v}"
    );

    // Every failure is audited, without personal data.
    let recs = tuaton_store::audit::list(&db.store, 0, 1000).await.unwrap();
    let failures: Vec<_> = recs
        .iter()
        .filter(|r| r.action == "login.passkey" && r.outcome == "failure")
        .collect();
    assert!(failures.len() >= 2, "{failures:?}");
    assert!(
        recs.iter()
            .all(|r| !r.details.contains("1999000000017") && !r.details.contains("สมชาย"))
    );
    db.cleanup().await;
}

async fn racing_finishes_of_one_ceremony_give_one_session(db: TestDb) {
    let limits = [
        ("TUATON_RATE_LIMIT_PER_ADDRESS", "1000"),
        ("TUATON_RATE_LIMIT_PER_ACCOUNT", "1000"),
    ];
    let mut c = Client {
        app: app_with(&db, Arc::new(tuaton_core::SystemClock), &limits),
        cookie: None,
        csrf: None,
    };
    let mut authn = enrolled_and_logged_in(&mut c, somchai()).await;
    c.cookie = None;
    let sessions_before = count(&db, "sessions").await;
    for _ in 0..3 {
        let (id, rcr) = login_start(&mut c, "1999000000017").await;
        let good = serde_json::to_value(authn.do_authentication(origin(), rcr).unwrap()).unwrap();
        // Eight copies of one assertion at once, as from a replaying attacker.
        let mut racers = Vec::new();
        for _ in 0..8 {
            let mut racer = Client {
                app: c.app.clone(),
                cookie: None,
                csrf: None,
            };
            let (id, good) = (id.clone(), good.clone());
            racers.push(tokio::spawn(
                async move { finish(&mut racer, &id, &good).await },
            ));
        }
        let mut ok = 0;
        for r in racers {
            let (s, v) = r.await.unwrap();
            if s == StatusCode::OK {
                ok += 1;
            } else {
                assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
            }
        }
        assert_eq!(ok, 1, "exactly one finish of a ceremony succeeds");
    }
    assert_eq!(count(&db, "sessions").await, sessions_before + 3);
    assert_eq!(count(&db, "ceremonies").await, 0, "every ceremony is spent");
    let (suspended,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM passkeys WHERE state <> 'active'")
            .fetch_one(db.store.conn().await.unwrap().conn())
            .await
            .unwrap();
    assert_eq!(suspended, 0, "losing a race is not a cloned authenticator");
    db.cleanup().await;
}

async fn a_cloned_authenticator_is_suspended(db: TestDb) {
    let mut c = client(&db).await;
    let (s, enrolled) = c
        .call("POST", "/api/v1/enrolments", Some(somchai()), false)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (mut token, _ca) = SoftToken::new(true).unwrap();
    let (s, start) = c
        .call(
            "POST",
            "/api/v1/passkeys/registration/start",
            Some(json!({ "enrolment_token": enrolled["enrolment_token"] })),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{start}");
    let ccr: CreationChallengeResponse =
        serde_json::from_value(json!({ "publicKey": start["public_key"] })).unwrap();
    let cred = token.do_registration(origin(), ccr).unwrap();
    let (s, v) = c
        .call(
            "POST",
            "/api/v1/passkeys/registration/finish",
            Some(json!({ "ceremony_id": start["ceremony_id"], "name": "key", "credential": cred })),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let registered = v["cred_id"].as_str().unwrap().to_owned();

    // The attacker copies the key; the owner keeps using the original.
    let mut clone = SoftToken::from_cbor(&token.to_cbor().unwrap()).unwrap();
    for _ in 0..2 {
        let (id, rcr) = login_start(&mut c, "1999000000017").await;
        let a = serde_json::to_value(token.do_authentication(origin(), rcr).unwrap()).unwrap();
        assert_eq!(finish(&mut c, &id, &a).await.0, StatusCode::OK);
    }
    let (id, rcr) = login_start(&mut c, "1999000000017").await;
    let a = serde_json::to_value(clone.do_authentication(origin(), rcr).unwrap()).unwrap();
    let (s, _) = c.call("GET", "/api/v1/me", None, false).await;
    assert_eq!(s, StatusCode::OK, "the owner is logged in");
    let (s, v) = finish(&mut c, &id, &a).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("credential_suspended")),
        "{v}"
    );
    // Whoever holds the copy may already be logged in with it: every
    // session of the account ended with the suspension.
    let (s, v) = c.call("GET", "/api/v1/me", None, false).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("session_expired"))
    );
    assert_eq!(count(&db, "sessions").await, 0);
    // Suspended for everyone, including the owner, until recovery: a login by
    // citizen id no longer offers the credential (only a stand-in, as for an
    // id nobody enrolled).
    let (s, start) = c
        .call(
            "POST",
            "/api/v1/login/start",
            Some(json!({ "citizen_id": "1999000000017" })),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let offered: Vec<&str> = start["public_key"]["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(!offered.contains(&registered.as_str()), "{start}");
    let mut owner = client(&db).await;
    let (id, _) = login_start(&mut owner, "1999000000017").await;
    let (s, _) = finish(&mut owner, &id, &a).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (state,): (String,) = sqlx::query_as("SELECT state FROM passkeys")
        .fetch_one(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    assert_eq!(state, "suspended");
    let recs = tuaton_store::audit::list(&db.store, 0, 1000).await.unwrap();
    assert!(recs.iter().any(|r| r.action == "passkey.suspend_cloned"));
    db.cleanup().await;
}

async fn aal3_only_for_allow_listed_attested_authenticators(db: TestDb) {
    let (mut token, _ca) = SoftToken::new(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("aal3.json");
    aal3_allow_list(&token, &list);
    let app = app_with(
        &db,
        Arc::new(tuaton_core::SystemClock),
        &[("TUATON_AAL3_ALLOW_LIST", list.to_str().unwrap())],
    );
    let mut c = Client {
        app,
        cookie: None,
        csrf: None,
    };
    enrolled_and_logged_in(&mut c, somchai()).await;

    // A plain passkey asking for AAL3 is refused.
    let (s, start) = c
        .call(
            "POST",
            "/api/v1/passkeys/registration/start",
            Some(json!({ "want_aal3": true })),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{start}");
    let ccr: CreationChallengeResponse =
        serde_json::from_value(json!({ "publicKey": start["public_key"] })).unwrap();
    // A second, unattested passkey (the first is excluded from the ceremony,
    // so an authenticator holding it would refuse to register at all).
    let mut plain = SoftPasskey::new(true);
    let cred = plain
        .do_registration(origin(), ccr)
        .expect("a plain passkey answers the ceremony; the server must be the one to refuse");
    let (s, v) = c
        .call(
            "POST",
            "/api/v1/passkeys/registration/finish",
            Some(json!({ "ceremony_id": start["ceremony_id"], "name": "x", "credential": cred })),
            true,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("authenticator_not_allow_listed")
        ),
        "{v}"
    );

    // The allow-listed, attested token reaches AAL3, and logging in with it gives acr AAL3 and amr hwk.
    let (s, start) = c
        .call(
            "POST",
            "/api/v1/passkeys/registration/start",
            Some(json!({ "want_aal3": true })),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let ccr: CreationChallengeResponse =
        serde_json::from_value(json!({ "publicKey": start["public_key"] })).unwrap();
    let cred = token.do_registration(origin(), ccr).unwrap();
    let (s, v) = c
        .call("POST", "/api/v1/passkeys/registration/finish", Some(json!({ "ceremony_id": start["ceremony_id"], "name": "hardware key", "credential": cred })), true)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["aal"].as_str(), v["attested"].as_bool()),
        (Some("3"), Some(true)),
        "{v}"
    );
    let (id, rcr) = login_start(&mut c, "1999000000017").await;
    let a = serde_json::to_value(token.do_authentication(origin(), rcr).unwrap()).unwrap();
    let (s, v) = finish(&mut c, &id, &a).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["acr"], "urn:tuaton:aal:3");
    assert!(v["amr"].as_array().unwrap().contains(&json!("hwk")), "{v}");
    db.cleanup().await;
}

async fn sessions_rotate_at_login_and_guard_state_changes(db: TestDb) {
    let mut c = client(&db).await;
    // A session id planted before login is not accepted, and never becomes the session.
    c.cookie = Some("tuaton-session=planted-by-attacker".into());
    let (s, _) = c.call("GET", "/api/v1/me", None, false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut authn = enrolled_and_logged_in(&mut c, somchai()).await;
    let first = c.cookie.clone().unwrap();
    assert_ne!(first, "tuaton-session=planted-by-attacker");
    // Logging in again issues a new id and ends the old one.
    let (s, _) = crate::common::login(&mut c, &mut authn, Some("1999000000017")).await;
    assert_eq!(s, StatusCode::OK);
    let second = c.cookie.clone().unwrap();
    assert_ne!(first, second);
    let mut old = Client {
        app: c.app.clone(),
        cookie: Some(first),
        csrf: None,
    };
    assert_eq!(
        old.call("GET", "/api/v1/me", None, false).await.0,
        StatusCode::UNAUTHORIZED
    );
    // CSRF: missing and wrong tokens are both refused.
    let (s, v) = c
        .call("POST", "/api/v1/logout/everywhere", None, false)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_token_missing"))
    );
    let real = c.csrf.replace("not-the-token".into());
    let (s, v) = c
        .call("POST", "/api/v1/logout/everywhere", None, true)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_token_invalid"))
    );
    c.csrf = real;
    // The only passkey cannot be removed.
    let (_, list) = c.call("GET", "/api/v1/passkeys", None, false).await;
    let cred_id = list[0]["cred_id"].as_str().unwrap().to_owned();
    let (s, v) = c
        .call("DELETE", &format!("/api/v1/passkeys/{cred_id}"), None, true)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_passkey"))
    );
    // Log out everywhere ends every session.
    let (s, v) = c
        .call("POST", "/api/v1/logout/everywhere", None, true)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        c.call("GET", "/api/v1/me", None, false).await.0,
        StatusCode::UNAUTHORIZED
    );
    db.cleanup().await;
}

async fn removing_a_passkey_needs_a_fresh_login(db: TestDb) {
    let clock = fixed_clock();
    let mut c = Client {
        app: app_with_clock(&db, clock.clone()),
        cookie: None,
        csrf: None,
    };
    let _phone = enrolled_and_logged_in(&mut c, somchai()).await;
    let mut laptop = SoftPasskey::new(true);
    crate::common::register(&mut c, &mut laptop, None, "laptop").await;
    let (_, list) = c.call("GET", "/api/v1/passkeys", None, false).await;
    let cred_id = list[1]["cred_id"].as_str().unwrap().to_owned();
    clock.advance(time::Duration::minutes(6));
    let (s, v) = c
        .call("DELETE", &format!("/api/v1/passkeys/{cred_id}"), None, true)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("fresh_login_required"))
    );
    crate::common::login(&mut c, &mut laptop, Some("1999000000017")).await;
    let (s, _) = c
        .call("DELETE", &format!("/api/v1/passkeys/{cred_id}"), None, true)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(count(&db, "passkeys").await, 1);
    db.cleanup().await;
}

on_both_engines!(
    wrong_origin_replay_and_expiry_are_rejected,
    racing_finishes_of_one_ceremony_give_one_session,
    a_cloned_authenticator_is_suspended,
    aal3_only_for_allow_listed_attested_authenticators,
    sessions_rotate_at_login_and_guard_state_changes,
    removing_a_passkey_needs_a_fresh_login,
);
