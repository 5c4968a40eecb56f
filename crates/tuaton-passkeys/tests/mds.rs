//! FIDO MDS3 BLOB import: who signed it, and which entries join the AAL3
//! allow-list.
//!
//! Each test builds its own root → intermediate → signing-certificate chain
//! with rcgen (the signing certificate issued for mds.fidoalliance.org, like
//! the FIDO Alliance's) and signs BLOBs with ring. The RS256 signer uses a
//! fixed RSA test key (tests/fixtures), because ring cannot generate RSA keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::{date, datetime};
use tuaton_core::Aal;
use tuaton_passkeys::{
    Aal3Policy, FIDO_MDS_SIGNER, MdsTrustAnchors, MetadataBlobError, PasskeyConfig, PasskeyError,
    PasskeyUser, Passkeys, Url, Uuid,
};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softtoken::{self, SoftToken};

const NOW: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);
const RSA_TEST_KEY: &str = include_str!("fixtures/mds-rs256-test-key.pk8.pem");

// ---- a test PKI and signer ---------------------------------------------------

/// A BLOB signer: the key and the x5c chain (signing certificate first).
struct Signer {
    alg: &'static str,
    pkcs8: Vec<u8>,
    x5c: Vec<Vec<u8>>,
}

impl Signer {
    fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self.alg {
            "ES256" => {
                let kp =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8, &rng)
                        .unwrap();
                kp.sign(&rng, input).unwrap().as_ref().to_vec()
            }
            "RS256" => {
                let kp = RsaKeyPair::from_pkcs8(&self.pkcs8).unwrap();
                let mut sig = vec![0; kp.public().modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &rng, input, &mut sig).unwrap();
                sig
            }
            other => panic!("no signer for {other}"),
        }
    }

    /// The same chain with another key: a forger who copied the certificates.
    fn with_other_key(&self) -> Signer {
        Signer {
            alg: "ES256",
            pkcs8: KeyPair::generate().unwrap().serialize_der(),
            x5c: self.x5c.clone(),
        }
    }
}

/// A root, an intermediate under it, and signing certificates under that.
struct Pki {
    root_der: Vec<u8>,
    root_pem: String,
    intermediate: Issuer<'static, KeyPair>,
    intermediate_der: Vec<u8>,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

impl Pki {
    fn new(name: &str) -> Self {
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca_params(&format!("{name} Root"));
        let root_cert = root_params.self_signed(&root_key).unwrap();
        let root = Issuer::new(root_params, root_key);

        let int_key = KeyPair::generate().unwrap();
        let int_params = ca_params(&format!("{name} Issuing CA"));
        let int_cert = int_params.signed_by(&int_key, &root).unwrap();
        Pki {
            root_der: root_cert.der().to_vec(),
            root_pem: root_cert.pem(),
            intermediate: Issuer::new(int_params, int_key),
            intermediate_der: int_cert.der().to_vec(),
        }
    }

    fn roots(&self) -> MdsTrustAnchors {
        MdsTrustAnchors::from_der(vec![self.root_der.clone()]).unwrap()
    }

    /// A signing certificate for `name` with `key`, shaped by `adjust`.
    fn signer_with(
        &self,
        alg: &'static str,
        key: KeyPair,
        name: &str,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Signer {
        let mut p = CertificateParams::new(vec![name.to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        adjust(&mut p);
        let cert = p.signed_by(&key, &self.intermediate).unwrap();
        Signer {
            alg,
            pkcs8: key.serialize_der(),
            x5c: vec![cert.der().to_vec(), self.intermediate_der.clone()],
        }
    }

    fn es256(&self) -> Signer {
        self.signer_with(
            "ES256",
            KeyPair::generate().unwrap(),
            FIDO_MDS_SIGNER,
            |_| {},
        )
    }

    fn rs256(&self) -> Signer {
        let key =
            KeyPair::from_pkcs8_pem_and_sign_algo(RSA_TEST_KEY, &rcgen::PKCS_RSA_SHA256).unwrap();
        self.signer_with("RS256", key, FIDO_MDS_SIGNER, |_| {})
    }
}

// ---- BLOBs -------------------------------------------------------------------

fn payload(entries: Vec<Value>, next_update: &str) -> Value {
    json!({
        "legalHeader": "test",
        "no": 7,
        "nextUpdate": next_update,
        "entries": entries,
    })
}

/// `header.payload.signature`, the header holding `alg` and `x5c` as given.
fn jws(header: &Value, payload: &Value, signer: &Signer) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let sig = signer.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn header_for(signer: &Signer) -> Value {
    let x5c: Vec<String> = signer.x5c.iter().map(|c| STANDARD.encode(c)).collect();
    json!({ "alg": signer.alg, "typ": "JWT", "x5c": x5c })
}

fn signed(signer: &Signer, payload: &Value) -> String {
    jws(&header_for(signer), payload, signer)
}

fn import(blob: &str, pki: &Pki) -> Result<Aal3Policy, PasskeyError> {
    Aal3Policy::from_fido_mds_blob(blob, &pki.roots(), NOW)
}

fn refusal(r: Result<Aal3Policy, PasskeyError>) -> MetadataBlobError {
    match r {
        Err(PasskeyError::MetadataBlob(e)) => e,
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(p) => panic!("accepted ({} models)", p.len()),
    }
}

fn mds_entry(aaguid: &str, ca_der: &[u8], status: &str, key_protection: &[&str]) -> Value {
    json!({
        "aaguid": aaguid,
        "metadataStatement": {
            "aaguid": aaguid,
            "description": "Test hardware key",
            "keyProtection": key_protection,
            "attestationRootCertificates": [STANDARD.encode(ca_der)],
        },
        "statusReports": [
            { "status": "NOT_FIDO_CERTIFIED", "effectiveDate": "2024-01-01" },
            { "status": status, "effectiveDate": "2025-01-01" }
        ],
        "timeOfLastStatusChange": "2025-01-01"
    })
}

/// A SoftToken with its own attestation CA, and that CA's DER.
fn attesting_token() -> (SoftToken, Vec<u8>) {
    let (token, _ca) = SoftToken::new(true).unwrap();
    let cbor = token.to_cbor().unwrap();
    let map: BTreeMap<String, serde_cbor_2::Value> = serde_cbor_2::from_slice(&cbor).unwrap();
    let Some(serde_cbor_2::Value::Text(b64)) = map.get("ca_cert") else {
        panic!("SoftToken CBOR has no ca_cert");
    };
    (token, URL_SAFE_NO_PAD.decode(b64).unwrap())
}

fn one_entry_payload() -> Value {
    let (_, ca) = attesting_token();
    payload(
        vec![mds_entry(
            &softtoken::AAGUID.to_string(),
            &ca,
            "FIDO_CERTIFIED_L2",
            &["hardware"],
        )],
        "2026-04-01",
    )
}

// ---- what a signed BLOB gives --------------------------------------------------

#[test]
fn signed_blob_is_accepted_and_only_certified_hardware_models_are_imported() {
    let pki = Pki::new("FIDO Test");
    let (mut token, ca) = attesting_token();
    let aaguid = softtoken::AAGUID.to_string();
    let body = payload(
        vec![
            mds_entry(
                &aaguid,
                &ca,
                "FIDO_CERTIFIED_L2",
                &["hardware", "secure_element"],
            ),
            mds_entry(
                "00000000-0000-0000-0000-000000000001",
                &ca,
                "FIDO_CERTIFIED_L1",
                &["software"],
            ),
            mds_entry(
                "00000000-0000-0000-0000-000000000002",
                &ca,
                "NOT_FIDO_CERTIFIED",
                &["hardware"],
            ),
            mds_entry(
                "00000000-0000-0000-0000-000000000003",
                &ca,
                "REVOKED",
                &["hardware"],
            ),
            mds_entry(
                "00000000-0000-0000-0000-000000000004",
                b"garbage",
                "FIDO_CERTIFIED_L1",
                &["hardware"],
            ),
        ],
        "2026-04-01",
    );
    let policy = import(&signed(&pki.es256(), &body), &pki).unwrap();
    assert_eq!(policy.len(), 1);
    assert!(policy.allows(&softtoken::AAGUID));

    // The imported root really vouches for the token at registration.
    let mut cfg = PasskeyConfig::new(Url::parse("http://localhost:8080").unwrap(), "t");
    cfg.aal3 = policy;
    let pk = Passkeys::new(cfg).unwrap();
    let user = PasskeyUser {
        handle: Uuid::from_u128(7),
        name: "x".into(),
        display_name: "X".into(),
    };
    let (ccr, state) = pk.start_registration(&user, &[], true, NOW).unwrap();
    let response = token
        .do_registration(Url::parse("http://localhost:8080").unwrap(), ccr)
        .unwrap();
    let (_, facts) = pk
        .finish_registration(state, &response, NOW + Duration::from_secs(5))
        .unwrap();
    assert_eq!(facts.aal, Aal::Aal3);
}

#[test]
fn rs256_blob_from_an_rsa_signing_certificate_is_accepted() {
    let pki = Pki::new("FIDO Test");
    let policy = import(&signed(&pki.rs256(), &one_entry_payload()), &pki).unwrap();
    assert!(policy.allows(&softtoken::AAGUID));
}

#[test]
fn root_file_in_pem_with_several_roots_is_accepted() {
    let pki = Pki::new("FIDO Test");
    let other = Pki::new("Other");
    let pem = format!("{}{}", other.root_pem, pki.root_pem);
    let roots = MdsTrustAnchors::parse(pem.as_bytes()).unwrap();
    assert_eq!(roots.len(), 2);
    let blob = signed(&pki.es256(), &one_entry_payload());
    assert_eq!(
        Aal3Policy::from_fido_mds_blob(&blob, &roots, NOW)
            .unwrap()
            .len(),
        1
    );
    // A single DER certificate, as roots are often downloaded, works too.
    assert_eq!(MdsTrustAnchors::parse(&pki.root_der).unwrap().len(), 1);
}

#[test]
fn unusable_root_files_are_refused() {
    for bad in [
        b"".as_slice(),
        b"not a certificate",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        assert!(
            matches!(MdsTrustAnchors::parse(bad), Err(PasskeyError::Config(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(matches!(
        MdsTrustAnchors::from_der(vec![]),
        Err(PasskeyError::Config(_))
    ));
}

// ---- what is refused -------------------------------------------------------------

#[test]
fn payload_changed_after_signing_is_refused() {
    let pki = Pki::new("FIDO Test");
    let blob = signed(&pki.es256(), &one_entry_payload());
    let parts: Vec<&str> = blob.split('.').collect();
    let mut body = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
    let at = body.windows(12).position(|w| w == b"hardware key").unwrap();
    body[at + 11] ^= 0x01; // "key" becomes "kex": still valid JSON
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(body), parts[2]);
    assert_eq!(
        refusal(import(&tampered, &pki)),
        MetadataBlobError::BadSignature
    );

    // Same for the RS256 path.
    let blob = signed(&pki.rs256(), &one_entry_payload());
    let mut parts: Vec<String> = blob.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(payload(vec![], "2026-04-01").to_string());
    assert_eq!(
        refusal(import(&parts.join("."), &pki)),
        MetadataBlobError::BadSignature
    );
}

#[test]
fn signature_by_another_key_than_the_certificates_is_refused() {
    let pki = Pki::new("FIDO Test");
    let forger = pki.es256().with_other_key();
    assert_eq!(
        refusal(import(&signed(&forger, &one_entry_payload()), &pki)),
        MetadataBlobError::BadSignature
    );
}

#[test]
fn chain_to_an_untrusted_root_is_refused() {
    let trusted = Pki::new("FIDO Test");
    let attacker = Pki::new("Attacker");
    let e = refusal(import(
        &signed(&attacker.es256(), &one_entry_payload()),
        &trusted,
    ));
    assert!(
        matches!(&e, MetadataBlobError::UntrustedSigner(m) if m.contains("trusted root")),
        "{e}"
    );
    // A look-alike chain (same names, other keys) fails on the signatures.
    let lookalike = Pki::new("FIDO Test");
    assert!(matches!(
        refusal(import(
            &signed(&lookalike.es256(), &one_entry_payload()),
            &trusted
        )),
        MetadataBlobError::UntrustedSigner(_)
    ));
    // Leaving the intermediate out breaks the chain as well.
    let mut signer = trusted.es256();
    signer.x5c.truncate(1);
    assert!(matches!(
        refusal(import(&signed(&signer, &one_entry_payload()), &trusted)),
        MetadataBlobError::UntrustedSigner(_)
    ));
}

/// The FIDO root also issues ordinary TLS certificates; one of those must not
/// be able to sign a BLOB.
#[test]
fn certificate_from_the_trusted_root_for_another_name_is_refused() {
    let pki = Pki::new("FIDO Test");
    let other = pki.signer_with(
        "ES256",
        KeyPair::generate().unwrap(),
        "shop.example.com",
        |_| {},
    );
    let e = refusal(import(&signed(&other, &one_entry_payload()), &pki));
    assert!(
        matches!(&e, MetadataBlobError::UntrustedSigner(m) if m.contains(FIDO_MDS_SIGNER)),
        "{e}"
    );
}

#[test]
fn expired_signing_certificate_is_refused_with_its_date() {
    let pki = Pki::new("FIDO Test");
    let expired = pki.signer_with(
        "ES256",
        KeyPair::generate().unwrap(),
        FIDO_MDS_SIGNER,
        |p| {
            p.not_before = rcgen::date_time_ymd(2025, 1, 1);
            p.not_after = rcgen::date_time_ymd(2026, 1, 31);
        },
    );
    let e = refusal(import(&signed(&expired, &one_entry_payload()), &pki));
    assert!(
        matches!(&e, MetadataBlobError::UntrustedSigner(m) if m.contains("2026-01-31")),
        "{e}"
    );
}

#[test]
fn signing_certificate_for_another_purpose_is_refused() {
    let pki = Pki::new("FIDO Test");
    let code_signing = pki.signer_with(
        "ES256",
        KeyPair::generate().unwrap(),
        FIDO_MDS_SIGNER,
        |p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning],
    );
    assert!(matches!(
        refusal(import(&signed(&code_signing, &one_entry_payload()), &pki)),
        MetadataBlobError::UntrustedSigner(_)
    ));
    // Without the extension at all, any use is allowed (RFC 5280).
    let no_eku = pki.signer_with(
        "ES256",
        KeyPair::generate().unwrap(),
        FIDO_MDS_SIGNER,
        |p| p.extended_key_usages.clear(),
    );
    assert!(import(&signed(&no_eku, &one_entry_payload()), &pki).is_ok());
}

#[test]
fn stale_blob_is_refused_naming_its_next_update() {
    let pki = Pki::new("FIDO Test");
    let blob = signed(&pki.es256(), &payload(vec![], "2026-02-28"));
    let e = refusal(import(&blob, &pki));
    assert_eq!(
        e,
        MetadataBlobError::Stale {
            next_update: date!(2026 - 02 - 28)
        }
    );
    assert!(e.to_string().contains("2026-02-28"), "{e}");
    // Due today is still fresh.
    let blob = signed(&pki.es256(), &payload(vec![], "2026-03-01"));
    assert!(import(&blob, &pki).is_ok());
}

#[test]
fn unsigned_or_weakly_signed_blobs_are_refused() {
    let pki = Pki::new("FIDO Test");
    let signer = pki.es256();
    let body = URL_SAFE_NO_PAD.encode(one_entry_payload().to_string());
    for alg in ["none", "HS256", "ES384", "PS256", ""] {
        let mut header = header_for(&signer);
        header["alg"] = json!(alg);
        let blob = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(header.to_string()));
        assert_eq!(
            refusal(import(&blob, &pki)),
            MetadataBlobError::UnsupportedAlgorithm(alg.to_owned())
        );
    }
}

#[test]
fn blob_without_a_certificate_chain_is_refused() {
    let pki = Pki::new("FIDO Test");
    let signer = pki.es256();
    for header in [
        json!({ "alg": "ES256", "typ": "JWT" }),
        json!({ "alg": "ES256", "typ": "JWT", "x5c": [] }),
    ] {
        let blob = jws(&header, &one_entry_payload(), &signer);
        assert_eq!(
            refusal(import(&blob, &pki)),
            MetadataBlobError::MissingCertificateChain
        );
    }
}

#[test]
fn malformed_blobs_are_refused() {
    let pki = Pki::new("FIDO Test");
    let signer = pki.es256();
    let mut bad_x5c = header_for(&signer);
    bad_x5c["x5c"][0] = json!("not*base64");
    let mut crit = header_for(&signer);
    crit["crit"] = json!(["exp"]);
    let mut rs_on_ec = header_for(&signer);
    rs_on_ec["alg"] = json!("RS256");
    for blob in [
        "not.a-jwt".to_owned(),
        "a.b.c.d".to_owned(),
        "e30.e30.c2ln".to_owned(), // `{}` header: no alg
        jws(&bad_x5c, &one_entry_payload(), &signer),
        jws(&crit, &one_entry_payload(), &signer),
        jws(&rs_on_ec, &one_entry_payload(), &signer),
        signed(
            &signer,
            &json!({ "nextUpdate": "2026-04-01", "entries": [] }),
        ), // no `no`
        signed(&signer, &payload(vec![], "1 April 2026")),
        signed(&signer, &json!("not an object")),
    ] {
        assert!(
            matches!(
                refusal(import(&blob, &pki)),
                MetadataBlobError::Malformed(_)
            ),
            "{blob}"
        );
    }
}

#[test]
fn model_once_reported_compromised_is_skipped() {
    let pki = Pki::new("FIDO Test");
    let (_, ca) = attesting_token();
    let mut entry = mds_entry(
        &softtoken::AAGUID.to_string(),
        &ca,
        "FIDO_CERTIFIED_L1",
        &["hardware"],
    );
    entry["statusReports"] = json!([
        { "status": "USER_VERIFICATION_BYPASS", "effectiveDate": "2024-06-01" },
        { "status": "FIDO_CERTIFIED_L1", "effectiveDate": "2025-01-01" }
    ]);
    let blob = signed(&pki.es256(), &payload(vec![entry], "2026-04-01"));
    assert!(import(&blob, &pki).unwrap().is_empty());
}

#[test]
fn unverified_import_skips_the_signature_but_not_staleness() {
    let pki = Pki::new("FIDO Test");
    let forged = signed(&pki.es256().with_other_key(), &one_entry_payload());
    let policy = Aal3Policy::danger_from_unverified_fido_mds_blob(&forged, NOW).unwrap();
    assert!(policy.allows(&softtoken::AAGUID));
    let stale = signed(&pki.es256(), &payload(vec![], "2026-01-01"));
    assert!(matches!(
        refusal(Aal3Policy::danger_from_unverified_fido_mds_blob(
            &stale, NOW
        )),
        MetadataBlobError::Stale { .. }
    ));
}
