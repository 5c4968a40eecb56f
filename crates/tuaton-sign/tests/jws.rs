//! JWS over JSON documents: each serialisation and option checked against
//! RFC 7515 and RFC 7797 by recomputing the signing input and verifying
//! the signature with the certificate in `x5c` (ring). A standard JOSE
//! library in another language (panva's jose) judges them in the browser
//! journey (tests/node/passkeys.test.mjs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use der::Decode as _;
use serde_json::Value;
use tuaton_sign::jws::{self, JwsOptions};

mod common;

/// Verifies `signature` over `input` with the key of `x5c[0]`.
fn verifies(header: &Value, input: &[u8], signature: &str) -> bool {
    let der = STANDARD.decode(header["x5c"][0].as_str().unwrap()).unwrap();
    let cert = x509_cert::Certificate::from_der(&der).unwrap();
    let key = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, key)
        .verify(input, &URL_SAFE_NO_PAD.decode(signature).unwrap())
        .is_ok()
}

fn header_of(protected: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(protected).unwrap()).unwrap()
}

#[test]
fn attached_and_detached_jws_verify_with_the_certificate_they_carry() {
    let t = common::tsa();
    let invoice = r#"{"invoice":"INV-2026-0042","total":"1,070.00","vat":7.0,"buyer":"สมชาย ใจดี"}"#
        .as_bytes();

    // Attached, base64url: both serialisations, one signature.
    let signed = jws::sign(&t.signer, invoice, JwsOptions::default()).unwrap();
    let compact = signed.compact.unwrap();
    let parts: Vec<&str> = compact.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = header_of(parts[0]);
    assert_eq!(header["alg"], "ES256");
    assert!(header.get("b64").is_none());
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[1]).unwrap(), invoice);
    assert!(verifies(
        &header,
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        parts[2]
    ));
    assert_eq!(signed.json["protected"], parts[0]);
    assert_eq!(signed.json["payload"], parts[1]);
    assert_eq!(signed.json["signature"], parts[2]);
    // The chain: the signer's certificate, then the issuing CA's; the
    // thumbprint is the signer's.
    let x5c = header["x5c"].as_array().unwrap();
    assert_eq!(x5c.len(), 2);
    let signer_der = STANDARD.decode(x5c[0].as_str().unwrap()).unwrap();
    assert_eq!(signer_der, t.signer.certificate_der());
    assert_eq!(
        header["x5t#S256"],
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &signer_der))
    );

    // Detached and unencoded (RFC 7797): the document's own bytes signed.
    let detached = JwsOptions {
        detached: true,
        unencoded: true,
    };
    let signed = jws::sign(&t.signer, invoice, detached).unwrap();
    let compact = signed.compact.unwrap();
    let parts: Vec<&str> = compact.split('.').collect();
    assert_eq!(parts[1], "", "the payload is left out");
    let header = header_of(parts[0]);
    assert_eq!(header["b64"], false);
    assert_eq!(header["crit"], serde_json::json!(["b64"]));
    let mut input = format!("{}.", parts[0]).into_bytes();
    input.extend_from_slice(invoice);
    assert!(verifies(&header, &input, parts[2]));
    assert!(signed.json.get("payload").is_none());
    // A changed document does not verify.
    let mut changed = format!("{}.", parts[0]).into_bytes();
    changed.extend_from_slice(&invoice.replace("1,070.00", "9,070.00"));
    assert!(!verifies(&header, &changed, parts[2]));

    // Attached and unencoded: a document with a `.` has no compact form,
    // and its JSON serialisation carries the document as it is.
    let signed = jws::sign(
        &t.signer,
        invoice,
        JwsOptions {
            detached: false,
            unencoded: true,
        },
    )
    .unwrap();
    assert!(signed.compact.is_none());
    assert_eq!(signed.json["payload"].as_str().unwrap().as_bytes(), invoice);
}

trait Replace {
    fn replace(&self, from: &str, to: &str) -> Vec<u8>;
}

impl Replace for [u8] {
    fn replace(&self, from: &str, to: &str) -> Vec<u8> {
        String::from_utf8(self.to_vec())
            .unwrap()
            .replace(from, to)
            .into_bytes()
    }
}

#[test]
fn only_json_is_signed_with_a_jws() {
    let t = common::tsa();
    for bad in [&b"not json"[..], b"{\"a\":", b"\xff\xfe"] {
        let err = jws::sign(&t.signer, bad, JwsOptions::default()).unwrap_err();
        assert!(err.to_string().contains("JSON"), "{err}");
    }
}
