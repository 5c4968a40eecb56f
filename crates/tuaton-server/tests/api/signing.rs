//! Signing documents through the JSON API as an app would: digests in, the
//! person's passkey confirmation, CAdES B-T signatures out that `openssl
//! cms -verify` accepts against the root the server publishes; and the
//! refusals an app sees.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::RequestChallengeResponse;

use crate::common::*;
use crate::on_both_engines;
use tuaton_store::testing::TestDb;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (scripts/install-test-deps)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn raw_get(app: &axum::Router, path: &str) -> Vec<u8> {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let resp = app
        .clone()
        .oneshot(
            http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

async fn a_person_signs_a_document_through_the_api_and_openssl_verifies_it(db: TestDb) {
    let state = state_with(&db, std::sync::Arc::new(tuaton_core::SystemClock), &[]);
    let mut c = Client {
        app: tuaton_server::build_router(state.clone()),
        cookie: None,
        csrf: None,
    };
    let mut phone = enrolled_and_logged_in(&mut c, somchai()).await;
    let contract = b"a rental contract, two pages".to_vec();
    let body = json!({ "documents": [
        { "name": "rental.pdf", "size": contract.len(), "sha256": sha256_hex(&contract) }
    ]});

    // No CA yet: the server says so.
    let (s, v) = c
        .call("POST", "/api/v1/signatures", Some(body.clone()), true)
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["code"], "keys_unavailable");
    state
        .idm()
        .certify_hierarchy(state.now(), "operator:test", true)
        .await
        .unwrap();

    // Malformed documents are refused, naming the field.
    for bad in [
        json!({ "documents": [] }),
        json!({ "documents": [{ "name": "x.pdf", "size": 1, "sha256": "abc" }] }),
        json!({ "documents": [{ "name": "", "size": 1, "sha256": sha256_hex(b"x") }] }),
    ] {
        let (s, v) = c.call("POST", "/api/v1/signatures", Some(bad), true).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_documents")),
            "{v}"
        );
    }

    let (s, asked) = c.call("POST", "/api/v1/signatures", Some(body), true).await;
    assert_eq!(s, StatusCode::OK, "{asked}");
    assert_eq!(asked["documents"][0]["name"], "rental.pdf");
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": asked["public_key"] })).unwrap();
    let credential = phone
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .unwrap();
    let finish = format!(
        "/api/v1/signatures/{}/finish",
        asked["request_id"].as_str().unwrap()
    );
    let (s, done) = c
        .call(
            "POST",
            &finish,
            Some(json!({ "credential": credential })),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    let sig: &Value = &done["signatures"][0];
    assert_eq!(sig["format"], "CAdES-B-T");
    assert_eq!(sig["sha256"], sha256_hex(&contract));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rental.pdf"), &contract).unwrap();
    std::fs::write(
        dir.path().join("rental.pdf.p7s"),
        STANDARD.decode(sig["signature"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("root.der"),
        raw_get(&c.app, "/pki/root.crt").await,
    )
    .unwrap();
    let (ok, text) = openssl(
        dir.path(),
        &[
            "x509", "-inform", "DER", "-in", "root.der", "-out", "root.pem",
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = openssl(
        dir.path(),
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "rental.pdf.p7s",
            "-content",
            "rental.pdf",
            "-CAfile",
            "root.pem",
            "-out",
            "/dev/null",
        ],
    );
    assert!(ok, "{text}");

    // The same confirmation again signs nothing more.
    let (s, v) = c
        .call(
            "POST",
            &finish,
            Some(json!({ "credential": credential })),
            true,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_signing_request")),
        "{v}"
    );
    // Another person's request id is as unknown as a made-up one.
    let (s, v) = c
        .call(
            "POST",
            "/api/v1/signatures/0123/finish",
            Some(json!({ "credential": credential })),
            true,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_signing_request")),
        "{v}"
    );
    // Every record is in the audit chain, without a gap.
    let report = tuaton_store::audit::verify(&db.store).await.unwrap();
    assert!(report.broken.is_none(), "{:?}", report.broken);
}

on_both_engines!(a_person_signs_a_document_through_the_api_and_openssl_verifies_it);
