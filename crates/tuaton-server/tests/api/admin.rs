//! The admin API for client registrations: only a client administrator
//! logged in at AAL3 uses it, a change needs a fresh login and the CSRF
//! token, and a refused request writes nothing.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};
use tuaton_core::{Clock as _, FixedClock};
use tuaton_idm::{AccountAdmin, Actor};
use tuaton_store::companies::Role;
use tuaton_store::testing::TestDb;
use webauthn_authenticator_rs::softtoken::SoftToken;

use crate::common::*;
use crate::on_both_engines;

const SOMCHAI: &str = "1999000000017";
const CLIENTS: &str = "/api/v1/admin/clients";

/// Somchai, enrolled with a phone passkey and an allow-listed security key,
/// logged in with the phone (AAL2).
async fn somchai_with_security_key(
    db: &TestDb,
    clock: Arc<FixedClock>,
) -> (Client, SoftToken, tempfile::TempDir) {
    let (token, _ca) = SoftToken::new(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("aal3.json");
    aal3_allow_list(&token, &list);
    let mut c = Client {
        app: app_with(
            db,
            clock,
            &[("TUATON_AAL3_ALLOW_LIST", list.to_str().unwrap())],
        ),
        cookie: None,
        csrf: None,
    };
    let mut phone = enrolled_and_logged_in(&mut c, somchai()).await;
    let mut token = token;
    let key = register_with(&mut c, &mut token, json!({ "want_aal3": true }), "key").await;
    assert_eq!(key["aal"], "3", "{key}");
    // Back on the phone: the session is AAL2.
    let (s, v) = login(&mut c, &mut phone, Some(SOMCHAI)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (c, token, dir)
}

async fn role(db: &TestDb, grant: bool, clock: &FixedClock) {
    let admin = AccountAdmin::new(db.store.clone());
    let operator = Actor::Operator("test".into());
    if grant {
        admin
            .grant_role(&operator, SOMCHAI, Role::ClientAdmin, clock.now())
            .await
            .unwrap();
    } else {
        admin
            .revoke_role(&operator, SOMCHAI, Role::ClientAdmin, clock.now())
            .await
            .unwrap();
    }
}

fn refused(got: (StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(
        (got.0, got.1["code"].as_str()),
        (status, Some(code)),
        "{}",
        got.1
    );
}

fn registration() -> Value {
    json!({
        "client_id": "revenue-efiling",
        "name": "กรมสรรพากร · Revenue Department e-Filing",
        "redirect_uris": ["https://efiling.rd.example/callback"],
        "jwks": { "keys": [{ "kty": "EC", "crv": "P-256", "kid": "k1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] }
    })
}

async fn clients_and_audit(db: &TestDb) -> (i64, i64) {
    (
        count(db, "oidc_clients").await,
        count(db, "audit_log").await,
    )
}

async fn only_a_client_admin_at_aal3_manages_clients(db: TestDb) {
    let clock = fixed_clock();
    let (mut c, mut token, _dir) = somchai_with_security_key(&db, clock.clone()).await;

    // An ordinary citizen sees nothing, not even whether clients exist.
    refused(
        c.call("GET", CLIENTS, None, false).await,
        StatusCode::FORBIDDEN,
        "client_admin_role_required",
    );
    // The role, but a phone passkey (a synced or copied one would do as much).
    role(&db, true, &clock).await;
    refused(
        c.call("GET", CLIENTS, None, false).await,
        StatusCode::FORBIDDEN,
        "aal_too_low",
    );
    refused(
        c.call("POST", CLIENTS, Some(registration()), true).await,
        StatusCode::FORBIDDEN,
        "aal_too_low",
    );
    // With the security key: AAL3.
    let (s, v) = login(&mut c, &mut token, Some(SOMCHAI)).await;
    assert_eq!(
        (s, v["acr"].as_str()),
        (StatusCode::OK, Some("urn:tuaton:aal:3"))
    );
    let (s, v) = c.call("GET", CLIENTS, None, false).await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({ "clients": [] })));

    // Refused writes leave no client and no audit record.
    let before = clients_and_audit(&db).await;
    refused(
        c.call("POST", CLIENTS, Some(registration()), false).await,
        StatusCode::FORBIDDEN,
        "csrf_token_missing",
    );
    let mut misspelt = registration();
    misspelt["redirect_uri"] = misspelt["redirect_uris"].take();
    let got = c.call("POST", CLIENTS, Some(misspelt), true).await;
    assert!(
        got.1["detail"].as_str().unwrap().contains("redirect_uri"),
        "the sentence names the field: {}",
        got.1
    );
    refused(got, StatusCode::BAD_REQUEST, "invalid_field");
    let mut plain_http = registration();
    plain_http["redirect_uris"] = json!(["http://efiling.rd.example/callback"]);
    refused(
        c.call("POST", CLIENTS, Some(plain_http), true).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    refused(
        c.call("POST", CLIENTS, Some(json!(["not", "an", "object"])), true)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    refused(
        c.call("POST", CLIENTS, Some(json!({ "name": "no id" })), true)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    assert_eq!(clients_and_audit(&db).await, before);

    // A registration on the secure defaults.
    let (s, v) = c.call("POST", CLIENTS, Some(registration()), true).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["token_auth"], "private_key_jwt");
    assert_eq!(v["id_token_alg"], "ES256");
    assert_eq!(
        (
            v["require_par"].as_bool(),
            v["dpop_bound_access_tokens"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(
        v["subject"],
        json!({ "type": "pairwise", "sector": "efiling.rd.example" })
    );
    assert!(v.get("client_secret").is_none(), "{v}");
    refused(
        c.call("POST", CLIENTS, Some(registration()), true).await,
        StatusCode::CONFLICT,
        "client_exists",
    );
    let one = format!("{CLIENTS}/revenue-efiling");
    let (s, shown) = c.call("GET", &one, None, false).await;
    assert_eq!((s, &shown["name"]), (StatusCode::OK, &v["name"]));
    refused(
        c.call("GET", &format!("{CLIENTS}/no-such-client"), None, false)
            .await,
        StatusCode::NOT_FOUND,
        "unknown_client",
    );

    // A merge patch (RFC 7396) that breaks a rule changes nothing.
    let before = clients_and_audit(&db).await;
    let patch = "application/merge-patch+json";
    refused(
        c.call_as(
            patch,
            "PATCH",
            &one,
            Some(json!({ "client_id": "another" })),
            true,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    refused(
        c.call_as(
            patch,
            "PATCH",
            &one,
            Some(json!({ "token_lifetime_secs": 86400 })),
            true,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    refused(
        c.call_as(
            patch,
            "PATCH",
            &one,
            Some(json!({ "redirect_uris": null })),
            true,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    // A new subject type would give every person a new sub: only when meant.
    let public = json!({ "subject": { "type": "public" } });
    refused(
        c.call_as(patch, "PATCH", &one, Some(public.clone()), true)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    assert_eq!(clients_and_audit(&db).await, before);
    assert_eq!(c.call("GET", &one, None, false).await.1, shown);
    let confirmed = format!("{one}?confirm_subject_change=true");
    let (s, v) = c
        .call_as(patch, "PATCH", &confirmed, Some(public), true)
        .await;
    assert_eq!(
        (s, &v["subject"]),
        (StatusCode::OK, &json!({ "type": "public" })),
        "{v}"
    );
    let back = json!({ "subject": { "type": "pairwise", "sector": "efiling.rd.example" } });
    let (s, v) = c
        .call_as(patch, "PATCH", &confirmed, Some(back), true)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The compatibility path: a secret, shown once; a new one replaces it.
    let (s, v) = c
        .call_as(patch, "PATCH", &one, Some(json!({ "token_auth": "client_secret_basic", "jwks": null, "token_lifetime_secs": 600 })), true)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["has_secret"].as_bool(), v["token_lifetime_secs"].as_u64()),
        (Some(true), Some(600))
    );
    assert!(v.get("jwks").is_none(), "{v}");
    let first = v["client_secret"].as_str().unwrap().to_owned();
    assert!(
        c.call("GET", &one, None, false)
            .await
            .1
            .get("client_secret")
            .is_none()
    );
    let (s, v) = c.call("POST", &format!("{one}/secret"), None, true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let second = v["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(first, second);

    let (s, _) = c.call("DELETE", &one, None, true).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    refused(
        c.call("DELETE", &one, None, true).await,
        StatusCode::NOT_FOUND,
        "unknown_client",
    );

    // Each change is audited with the administrator as actor, and no
    // record holds a secret.
    let recs = tuaton_store::audit::list(&db.store, 0, 1000).await.unwrap();
    let changes: Vec<_> = recs
        .iter()
        .filter(|r| r.action.starts_with("oidc.client."))
        .map(|r| (r.actor.split(':').next().unwrap(), r.action.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("client_admin", "oidc.client.add"),
            ("client_admin", "oidc.client.update"),
            ("client_admin", "oidc.client.update"),
            ("client_admin", "oidc.client.update"),
            ("client_admin", "oidc.client.update"),
            ("client_admin", "oidc.client.remove"),
        ]
    );
    for r in &recs {
        let text = serde_json::to_string(&r.details).unwrap();
        assert!(!text.contains(&first) && !text.contains(&second));
    }
    db.cleanup().await;
}

async fn a_change_needs_a_fresh_login_and_a_revoked_role_ends_at_once(db: TestDb) {
    let clock = fixed_clock();
    let (mut c, mut token, _dir) = somchai_with_security_key(&db, clock.clone()).await;
    role(&db, true, &clock).await;
    login(&mut c, &mut token, Some(SOMCHAI)).await;
    // Ten minutes on, with requests in between (the session stays alive):
    // reading still works, a change needs the key again.
    for _ in 0..2 {
        clock.advance(time::Duration::minutes(5));
        assert_eq!(c.call("GET", CLIENTS, None, false).await.0, StatusCode::OK);
    }
    let before = clients_and_audit(&db).await;
    refused(
        c.call("POST", CLIENTS, Some(registration()), true).await,
        StatusCode::FORBIDDEN,
        "fresh_login_required",
    );
    assert_eq!(clients_and_audit(&db).await, before);
    login(&mut c, &mut token, Some(SOMCHAI)).await;
    let (s, v) = c.call("POST", CLIENTS, Some(registration()), true).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // The operator takes the role away: the session, still live, can do nothing.
    role(&db, false, &clock).await;
    refused(
        c.call("GET", CLIENTS, None, false).await,
        StatusCode::FORBIDDEN,
        "client_admin_role_required",
    );
    refused(
        c.call("DELETE", &format!("{CLIENTS}/revenue-efiling"), None, true)
            .await,
        StatusCode::FORBIDDEN,
        "client_admin_role_required",
    );
    assert_eq!(count(&db, "oidc_clients").await, 1);
    db.cleanup().await;
}

on_both_engines!(
    only_a_client_admin_at_aal3_manages_clients,
    a_change_needs_a_fresh_login_and_a_revoked_role_ends_at_once,
);
