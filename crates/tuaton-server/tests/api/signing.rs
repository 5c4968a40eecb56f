//! Signing documents through the JSON API as an app would: digests in, the
//! person's passkey confirmation, CAdES B-T signatures out that `openssl
//! cms -verify` accepts against the root the server publishes; PDFs in,
//! signed twice in the file (PAdES B-T), which pyHanko and pdfsig accept;
//! and the refusals an app sees.

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

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn python() -> std::path::PathBuf {
    std::env::var_os("TUATON_TEST_PYTHON").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/test-venv/bin/python")
        },
        std::path::PathBuf::from,
    )
}

/// pyHanko (Tuaton's root the only trust anchor) and pdfsig on `file`:
/// how many signatures each judges valid.
fn judged_valid(dir: &std::path::Path, file: &str) -> (usize, usize) {
    let run = |program: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new(program)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("pyHanko and pdfsig are installed (scripts/install-test-deps)");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let hanko = run(
        &python(),
        &[
            "-m",
            "pyhanko",
            "sign",
            "validate",
            "--pretty-print",
            "--no-revocation-check",
            "--trust-replace",
            "--trust",
            "root.pem",
            file,
        ],
    );
    let poppler = run(std::path::Path::new("pdfsig"), &[file]);
    (
        hanko.matches("The signature is judged VALID").count(),
        poppler.matches("Signature is Valid.").count(),
    )
}

/// Asks to sign `pdf` in the file, confirms with `phone` and finishes with
/// `again` (the PDFs sent the second time).
async fn sign_pdf(
    c: &mut Client,
    phone: &mut webauthn_authenticator_rs::softpasskey::SoftPasskey,
    pdf: &[u8],
    visible: Option<Value>,
) -> (String, Value) {
    let mut document = json!({
        "name": "application.pdf",
        "size": pdf.len(),
        "sha256": sha256_hex(pdf),
        "pdf": { "content": STANDARD.encode(pdf) },
    });
    if let Some(v) = visible {
        document["pdf"]["visible"] = v;
    }
    let (s, asked) = c
        .call(
            "POST",
            "/api/v1/signatures",
            Some(json!({ "documents": [document] })),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{asked}");
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": asked["public_key"] })).unwrap();
    let credential = phone
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .unwrap();
    let finish = format!(
        "/api/v1/signatures/{}/finish",
        asked["request_id"].as_str().unwrap()
    );
    (finish, json!({ "asked": asked, "credential": credential }))
}

async fn a_person_signs_a_pdf_twice_in_the_file_and_pyhanko_and_pdfsig_accept_both(db: TestDb) {
    let state = state_with(&db, std::sync::Arc::new(tuaton_core::SystemClock), &[]);
    let mut c = Client {
        app: tuaton_server::build_router(state.clone()),
        cookie: None,
        csrf: None,
    };
    let mut phone = enrolled_and_logged_in(&mut c, somchai()).await;
    state
        .idm()
        .certify_hierarchy(state.now(), "operator:test", true)
        .await
        .unwrap();
    let form = fixture("agency-form-xref-stream.pdf");

    // Bytes that are not the file described, or not a PDF, are refused
    // before anything is asked.
    let mut lying = json!({ "documents": [{
        "name": "a.pdf", "size": form.len(), "sha256": sha256_hex(b"other"),
        "pdf": { "content": STANDARD.encode(&form) },
    }]});
    for bad in [
        lying.clone(),
        json!({ "documents": [{
            "name": "a.pdf", "size": 9, "sha256": sha256_hex(b"not a pdf"),
            "pdf": { "content": STANDARD.encode(b"not a pdf") },
        }]}),
        json!({ "documents": [{
            "name": "a.pdf", "size": form.len(), "sha256": sha256_hex(&form),
            "pdf": { "content": STANDARD.encode(&form), "visible": { "page": 3, "rect": [10, 10, 200, 60] } },
        }]}),
        json!({ "documents": [{
            "name": "a.pdf", "size": form.len(), "sha256": sha256_hex(&form),
            "pdf": { "content": "***" },
        }]}),
        // A JWS is made over JSON only, and a document is a PDF or JSON.
        json!({ "documents": [{
            "name": "a.json", "size": 9, "sha256": sha256_hex(b"not json!"),
            "json": { "content": STANDARD.encode(b"not json!") },
        }]}),
        json!({ "documents": [{
            "name": "a.pdf", "size": form.len(), "sha256": sha256_hex(&form),
            "pdf": { "content": STANDARD.encode(&form) },
            "json": { "content": STANDARD.encode(&form) },
        }]}),
        // XAdES is made over well-formed XML without a DTD only.
        json!({ "documents": [{
            "name": "a.xml", "size": 9, "sha256": sha256_hex(b"<a><b></a"),
            "xml": { "content": STANDARD.encode(b"<a><b></a") },
        }]}),
        json!({ "documents": [{
            "name": "a.xml", "size": 49, "sha256": sha256_hex(b"<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///e\">]><a/>"),
            "xml": { "content": STANDARD.encode(b"<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///e\">]><a/>") },
        }]}),
    ] {
        let (s, v) = c.call("POST", "/api/v1/signatures", Some(bad), true).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_documents")),
            "{v}"
        );
    }
    // Refused, they made no signing key and no certificate.
    let (made,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM managed_keys WHERE purpose = 'user-signing'")
            .fetch_one(state.store().conn().await.unwrap().conn())
            .await
            .unwrap();
    assert_eq!(made, 0, "a refused signing request made a key");
    lying["documents"][0]["sha256"] = json!(sha256_hex(&form));

    let (finish, asked) = sign_pdf(
        &mut c,
        &mut phone,
        &form,
        Some(json!({ "page": 2, "rect": [330, 40, 560, 110] })),
    )
    .await;
    assert_eq!(asked["asked"]["documents"][0]["format"], "PAdES-B-T");
    assert_eq!(asked["asked"]["documents"][0]["pages"], 2);
    let credential = &asked["credential"];

    // Finishing without the PDF, or with another file, is refused and
    // spends nothing: the same confirmation still finishes afterwards.
    for contents in [
        json!([]),
        json!([STANDARD.encode(fixture("agency-form.pdf"))]),
    ] {
        let (s, v) = c
            .call(
                "POST",
                &finish,
                Some(json!({ "credential": credential, "contents": contents })),
                true,
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_documents")),
            "{v}"
        );
    }
    let (s, done) = c
        .call(
            "POST",
            &finish,
            Some(json!({ "credential": credential, "contents": [STANDARD.encode(&form)] })),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    let sig = &done["signatures"][0];
    assert_eq!(sig["format"], "PAdES-B-T");
    assert!(sig.get("signature").is_none(), "{sig}");
    let once = STANDARD.decode(sig["pdf"].as_str().unwrap()).unwrap();
    assert!(once.starts_with(&form), "an incremental update");

    // The same person signs the signed file again.
    let (finish, asked) = sign_pdf(&mut c, &mut phone, &once, None).await;
    let (s, done) = c
        .call(
            "POST",
            &finish,
            Some(
                json!({ "credential": asked["credential"], "contents": [STANDARD.encode(&once)] }),
            ),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    let twice = STANDARD
        .decode(done["signatures"][0]["pdf"].as_str().unwrap())
        .unwrap();
    assert!(twice.starts_with(&once));

    let dir = tempfile::tempdir().unwrap();
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
    std::fs::write(dir.path().join("once.pdf"), &once).unwrap();
    std::fs::write(dir.path().join("twice.pdf"), &twice).unwrap();
    assert_eq!(judged_valid(dir.path(), "once.pdf"), (1, 1));
    assert_eq!(judged_valid(dir.path(), "twice.pdf"), (2, 2));

    // Each signing is one audit record naming the format and the digest
    // signed, and the chain is whole.
    let report = tuaton_store::audit::verify(&db.store).await.unwrap();
    assert!(report.broken.is_none(), "{:?}", report.broken);
}

on_both_engines!(a_person_signs_a_pdf_twice_in_the_file_and_pyhanko_and_pdfsig_accept_both);
