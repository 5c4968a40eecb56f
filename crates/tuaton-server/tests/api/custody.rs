//! Key custody as relying parties and operators see it: the JWK Set, rotation
//! on a schedule without a failed verification, and readiness that reflects
//! the key backend.

use std::sync::Arc;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use time::Duration;
use tower::ServiceExt;
use tuaton_keys::{KeyRef, SignatureAlgorithm, SignatureFormat};
use tuaton_server::AppState;
use tuaton_store::keys::{self, KeyPurpose, KeyState};
use tuaton_store::testing::TestDb;

use crate::common::*;
use crate::on_both_engines;

/// The id-token keys (upkeep also makes the audit-anchor key when it first anchors).
async fn id_token_keys(db: &TestDb) -> Vec<keys::ManagedKey> {
    keys::list(db.store.conn().await.unwrap().conn())
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.purpose == KeyPurpose::IdToken)
        .collect()
}

async fn get(state: &AppState, path: &str) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let resp = tuaton_server::build_router(state.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

/// The JWK Set as a relying party fetches it. The server re-reads the store at
/// most every second, so a test that changed keys waits that long first.
async fn fetch_jwks(state: &AppState) -> Vec<Value> {
    tokio::time::sleep(tuaton_server::custody::JWKS_REFRESH + std::time::Duration::from_millis(50))
        .await;
    let (status, headers, body) = get(state, "/.well-known/jwks.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["keys"].as_array().unwrap().clone()
}

/// Signs as the service will sign an ID token: with the purpose's signing key now.
async fn sign_now(state: &AppState, msg: &[u8]) -> (String, Vec<u8>) {
    let key = keys::signing_key(
        state.store().conn().await.unwrap().conn(),
        KeyPurpose::IdToken,
        state.now(),
    )
    .await
    .unwrap()
    .expect("a signing key");
    let key_ref: KeyRef = key.key_ref.parse().unwrap();
    let sig = state
        .services()
        .keys
        .sign(
            &key_ref,
            SignatureAlgorithm::Es256,
            SignatureFormat::Raw,
            msg,
        )
        .unwrap();
    (key.id, sig)
}

/// What a relying party does: find the `kid` in the set it holds and verify.
fn verifies(jwks: &[Value], kid: &str, msg: &[u8], sig: &[u8]) -> bool {
    let Some(jwk) = jwks.iter().find(|j| j["kid"] == kid) else {
        return false;
    };
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    let coord = |c: &str| URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
    let mut point = vec![4u8];
    point.extend(coord("x"));
    point.extend(coord("y"));
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(msg, sig)
        .is_ok()
}

async fn a_scheduled_rotation_never_fails_a_relying_party(db: TestDb) {
    let clock = fixed_clock();
    let state = state_with(
        &db,
        clock.clone(),
        &[("TUATON_ROTATION", "id-token:ES256:1d:1h")],
    );
    assert!(fetch_jwks(&state).await.is_empty(), "no key before upkeep");

    // First upkeep round: nothing signs id-tokens yet, so a key is made and signs at once.
    tuaton_server::maintenance::run_once(&state).await;
    let jwks_t0 = fetch_jwks(&state).await;
    assert_eq!(jwks_t0.len(), 1);
    let (first, sig_first) = sign_now(&state, b"token signed at t0").await;
    assert!(verifies(
        &jwks_t0,
        &first,
        b"token signed at t0",
        &sig_first
    ));
    tuaton_server::maintenance::run_once(&state).await;
    assert_eq!(
        id_token_keys(&db).await.len(),
        1,
        "not due again (upkeep's audit anchors have a key of their own)"
    );

    // An hour before the day is out the next key is published, not yet signing.
    clock.advance(Duration::hours(23));
    tuaton_server::maintenance::run_once(&state).await;
    let jwks_t23 = fetch_jwks(&state).await;
    assert_eq!(jwks_t23.len(), 2);
    assert_eq!(
        sign_now(&state, b"x").await.0,
        first,
        "the old key still signs"
    );

    // At a day the new key signs; a relying party holding either set verifies both.
    clock.advance(Duration::hours(1));
    tuaton_server::maintenance::run_once(&state).await;
    let (second, sig_second) = sign_now(&state, b"token signed at t24").await;
    assert_ne!(second, first);
    assert_eq!(
        keys::by_id(db.store.conn().await.unwrap().conn(), &first)
            .await
            .unwrap()
            .unwrap()
            .state,
        KeyState::Retiring
    );
    assert!(verifies(
        &jwks_t23,
        &second,
        b"token signed at t24",
        &sig_second
    ));
    let jwks_t24 = fetch_jwks(&state).await;
    assert!(verifies(
        &jwks_t24,
        &first,
        b"token signed at t0",
        &sig_first
    ));
    assert!(verifies(
        &jwks_t24,
        &second,
        b"token signed at t24",
        &sig_second
    ));
    let by_system = tuaton_store::audit::list(&db.store, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.action == "key.pending" && r.actor == "system" && r.details.contains("\"id-token\"")
        })
        .count();
    assert_eq!(
        by_system, 2,
        "each scheduled key is audited with the system as actor"
    );
    db.cleanup().await;
}

async fn a_key_whose_material_is_gone_makes_the_jwks_unavailable_not_wrong(db: TestDb) {
    let clock = fixed_clock();
    let state = state_with(
        &db,
        clock.clone(),
        &[("TUATON_ROTATION", "id-token:ES256:1d:1h")],
    );
    tuaton_server::maintenance::run_once(&state).await;
    let key = &id_token_keys(&db).await[0];
    // Another process's view: its backend never read this key before.
    let fresh = state_with(&db, clock, &[]);
    fresh
        .services()
        .keys
        .destroy(&key.key_ref.parse().unwrap())
        .unwrap();
    let (status, headers, body) = get(&fresh, "/.well-known/jwks.json").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["content-type"], "application/problem+json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], "keys_unavailable");
    assert!(!String::from_utf8_lossy(&body).contains(&key.key_ref));
    db.cleanup().await;
}

on_both_engines!(
    a_scheduled_rotation_never_fails_a_relying_party,
    a_key_whose_material_is_gone_makes_the_jwks_unavailable_not_wrong
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_key_backend() {
    let db = TestDb::sqlite().await;
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let state = state_with(
        &db,
        Arc::new(tuaton_core::SystemClock),
        &[("TUATON_DATA_DIR", data_dir.to_str().unwrap())],
    );
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::OK);
    // The key directory's volume goes away.
    let moved = data.path().join("moved");
    std::fs::rename(&data_dir, &moved).unwrap();
    let (status, _, body) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, b"key backend unavailable\n");
    std::fs::rename(&moved, &data_dir).unwrap();
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::OK);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_is_in_the_openapi_document() {
    let db = TestDb::sqlite().await;
    let state = state_with(&db, Arc::new(tuaton_core::SystemClock), &[]);
    let (_, _, body) = get(&state, "/openapi.json").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["paths"]["/.well-known/jwks.json"]["get"].is_object());
    db.cleanup().await;
}
