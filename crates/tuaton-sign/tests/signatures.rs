//! Tuaton's signatures judged by openssl (a peer nobody here wrote): RFC
//! 3161 time stamps by `openssl ts` (its requests answered, its
//! verification passed, each refusal it can provoke answered with the right
//! failure), and CAdES detached signatures by `openssl cms -verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use tuaton_sign::cades::{Options, sign_detached};

mod common;
use common::{Tsa, openssl, tsa};

/// Asks openssl for a request over `data` with `query_args`, answers it,
/// and returns the paths of the request and the response.
fn stamp(t: &Tsa, name: &str, data: &[u8], query_args: &[&str]) -> (PathBuf, PathBuf) {
    let d = t.dir.path();
    std::fs::write(d.join(format!("{name}.txt")), data).unwrap();
    let mut args = vec!["ts", "-query", "-data"];
    let data_file = format!("{name}.txt");
    let req_file = format!("{name}.tsq");
    args.push(&data_file);
    args.extend_from_slice(query_args);
    args.extend_from_slice(&["-out", &req_file]);
    let (ok, text) = openssl(&args, d);
    assert!(ok, "{text}");
    let req = std::fs::read(d.join(&req_file)).unwrap();
    let resp = t.stamper.respond(&req, OffsetDateTime::now_utc()).unwrap();
    let resp_file = d.join(format!("{name}.tsr"));
    std::fs::write(&resp_file, resp).unwrap();
    (d.join(req_file), resp_file)
}

fn verify(t: &Tsa, extra: &[&str], resp: &Path) -> (bool, String) {
    let mut args = vec![
        "ts",
        "-verify",
        "-in",
        resp.to_str().unwrap(),
        "-CAfile",
        t.root.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    openssl(&args, t.dir.path())
}

#[test]
fn openssl_verifies_the_tokens_against_the_request_and_the_data() {
    let t = tsa();
    let untrusted = t.untrusted.to_str().unwrap().to_owned();
    // With the certificates in the token (certReq) and a nonce (openssl's default).
    let (req, resp) = stamp(&t, "doc", b"the contract, as signed", &["-sha256", "-cert"]);
    let (ok, text) = verify(&t, &["-queryfile", req.to_str().unwrap()], &resp);
    assert!(ok && text.contains("Verification: OK"), "{text}");
    let data = t.dir.path().join("doc.txt");
    let (ok, text) = verify(&t, &["-data", data.to_str().unwrap()], &resp);
    assert!(ok && text.contains("Verification: OK"), "{text}");
    // Other data does not verify.
    std::fs::write(t.dir.path().join("other.txt"), b"another contract").unwrap();
    let other = t.dir.path().join("other.txt");
    let (ok, text) = verify(&t, &["-data", other.to_str().unwrap()], &resp);
    assert!(!ok, "{text}");
    // Without certReq the token names the TSA by its ESS certificate id
    // only; the certificates come from the relying party.
    let (req, resp) = stamp(&t, "bare", b"a second document", &["-sha512", "-no_nonce"]);
    let (ok, text) = verify(&t, &["-queryfile", req.to_str().unwrap()], &resp);
    assert!(!ok, "no certificate to verify with: {text}");
    let (ok, text) = verify(
        &t,
        &[
            "-queryfile",
            req.to_str().unwrap(),
            "-untrusted",
            &untrusted,
        ],
        &resp,
    );
    assert!(ok && text.contains("Verification: OK"), "{text}");
    // The reply as openssl reads it: granted, under Tuaton's policy.
    let (ok, text) = openssl(
        &["ts", "-reply", "-in", resp.to_str().unwrap(), "-text"],
        t.dir.path(),
    );
    assert!(ok, "{text}");
    assert!(text.contains("Status: Granted"), "{text}");
    assert!(
        text.contains("Policy OID: 1.3.6.1.4.1.32473.3861.1"),
        "{text}"
    );
    assert!(text.contains("Hash Algorithm: sha512"), "{text}");
}

#[test]
fn requests_a_tsa_must_refuse_are_answered_with_their_failure() {
    let t = tsa();
    let reply = |resp: &Path| {
        let (ok, text) = openssl(
            &["ts", "-reply", "-in", resp.to_str().unwrap(), "-text"],
            t.dir.path(),
        );
        assert!(ok, "{text}");
        text
    };
    let (_, resp) = stamp(&t, "sha1", b"data", &["-sha1"]);
    let text = reply(&resp);
    assert!(
        text.contains("Status: Rejected") && text.contains("unrecognized or unsupported algorithm"),
        "{text}"
    );
    let (_, resp) = stamp(&t, "policy", b"data", &["-sha256", "-tspolicy", "1.2.3.4"]);
    let text = reply(&resp);
    assert!(
        text.contains("Status: Rejected") && text.contains("policy is not supported by the TSA"),
        "{text}"
    );
    // Not a request at all.
    let resp = t
        .stamper
        .respond(b"\x30\x03\x02\x01\x07", OffsetDateTime::now_utc())
        .unwrap();
    let path = t.dir.path().join("garbage.tsr");
    std::fs::write(&path, resp).unwrap();
    let text = reply(&path);
    assert!(
        text.contains("Status: Rejected")
            && text.contains("transaction not permitted or supported"),
        "{text}"
    );
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    d.as_ref().try_into().unwrap()
}

/// Writes `data` and its detached signature, and asks `openssl cms -verify`.
fn cms_verify(t: &Tsa, name: &str, data: &[u8], p7s: &[u8]) -> (bool, String) {
    let d = t.dir.path();
    std::fs::write(d.join(format!("{name}.bin")), data).unwrap();
    std::fs::write(d.join(format!("{name}.p7s")), p7s).unwrap();
    openssl(
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            &format!("{name}.p7s"),
            "-content",
            &format!("{name}.bin"),
            "-CAfile",
            t.root.to_str().unwrap(),
            "-out",
            "/dev/null",
        ],
        d,
    )
}

fn cms_print(t: &Tsa, name: &str) -> String {
    let (ok, text) = openssl(
        &[
            "cms",
            "-cmsout",
            "-print",
            "-inform",
            "DER",
            "-in",
            &format!("{name}.p7s"),
        ],
        t.dir.path(),
    );
    assert!(ok, "{text}");
    text
}

#[test]
fn a_cades_b_b_signature_verifies_with_openssl_and_any_changed_byte_fails() {
    let t = tsa();
    let data: Vec<u8> = (0u8..64).collect();
    let now = OffsetDateTime::now_utc();
    let p7s = sign_detached(
        &t.signer,
        &sha256(&data),
        Options {
            signing_time: Some(now),
            time_stamp: None,
        },
    )
    .unwrap();
    let (ok, text) = cms_verify(&t, "bb", &data, &p7s);
    assert!(ok, "{text}");
    let printed = cms_print(&t, "bb");
    for attribute in [
        "contentType",
        "messageDigest",
        "signingTime",
        "id-smime-aa-signingCertificateV2",
    ] {
        assert!(
            printed.contains(attribute),
            "{attribute} missing:\n{printed}"
        );
    }
    assert!(!printed.contains("id-smime-aa-timeStampToken"), "{printed}");
    // Every single changed byte of the content is caught.
    for i in 0..data.len() {
        let mut changed = data.clone();
        changed[i] ^= 0x01;
        let (ok, _) = cms_verify(&t, "changed", &changed, &p7s);
        assert!(!ok, "a change at byte {i} went unnoticed");
    }
    // So is a change to the signature itself (the last byte of its value).
    let mut broken = p7s.clone();
    let last = broken.len() - 1;
    broken[last] ^= 0x01;
    let (ok, _) = cms_verify(&t, "broken", &data, &broken);
    assert!(!ok, "a changed signature verified");
}

#[test]
fn a_cades_b_t_signature_carries_a_time_stamp_over_its_signature_value() {
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignedData;
    use der::{Decode, Encode};

    let t = tsa();
    let data = b"a contract, signed and time-stamped".to_vec();
    let p7s = sign_detached(
        &t.signer,
        &sha256(&data),
        Options {
            signing_time: Some(OffsetDateTime::now_utc()),
            time_stamp: Some(&t.stamper),
        },
    )
    .unwrap();
    let (ok, text) = cms_verify(&t, "bt", &data, &p7s);
    assert!(ok, "{text}");
    assert!(cms_print(&t, "bt").contains("id-smime-aa-timeStampToken"));

    // The token, taken out, verifies with `openssl ts` over the SHA-256 of
    // the signature value (RFC 3161 appendix A).
    let content = ContentInfo::from_der(&p7s).unwrap();
    let signed: SignedData = content.content.decode_as().unwrap();
    let info = signed.signer_infos.0.get(0).unwrap();
    let token = info.unsigned_attrs.as_ref().unwrap().get(0).unwrap();
    assert_eq!(token.oid.to_string(), "1.2.840.113549.1.9.16.2.14");
    let token_der = token.values.get(0).unwrap().to_der().unwrap();
    std::fs::write(t.dir.path().join("token.der"), &token_der).unwrap();
    let digest = hex::encode(sha256(info.signature.as_bytes()));
    let (ok, text) = verify(
        &t,
        &[
            "-digest",
            &digest,
            "-token_in",
            "-untrusted",
            t.untrusted.to_str().unwrap(),
        ],
        &t.dir.path().join("token.der"),
    );
    assert!(ok, "{text}");
    // Over another digest it does not.
    let other = hex::encode(sha256(b"another signature"));
    let (ok, _) = verify(
        &t,
        &[
            "-digest",
            &other,
            "-token_in",
            "-untrusted",
            t.untrusted.to_str().unwrap(),
        ],
        &t.dir.path().join("token.der"),
    );
    assert!(!ok);
}

#[test]
fn a_signature_for_a_pdf_has_no_signing_time_and_a_refusing_tsa_makes_none() {
    struct Refusing;
    impl tuaton_sign::TimeStampSource for Refusing {
        fn time_stamp(&self, _: &[u8]) -> Result<Vec<u8>, tuaton_sign::SignError> {
            // A rejection a real TSA could send: badAlg.
            let t = tsa();
            let req = std::fs::read(t.dir.path().join("missing")).unwrap_or_default();
            Ok(t.stamper.respond(&req, OffsetDateTime::now_utc()).unwrap())
        }
    }
    let t = tsa();
    let data = b"%PDF-1.7 bytes".to_vec();
    let p7s = sign_detached(&t.signer, &sha256(&data), Options::default()).unwrap();
    let (ok, text) = cms_verify(&t, "pades", &data, &p7s);
    assert!(ok, "{text}");
    assert!(!cms_print(&t, "pades").contains("signingTime"));

    let refused = sign_detached(
        &t.signer,
        &sha256(&data),
        Options {
            signing_time: None,
            time_stamp: Some(&Refusing),
        },
    )
    .unwrap_err();
    assert!(refused.to_string().contains("refused"), "{refused}");
}
