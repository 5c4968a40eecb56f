//! RFC 3161 time stamps judged by `openssl ts` (a peer nobody here wrote):
//! its requests answered, its verification passed, and each refusal it can
//! provoke answered with the right failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use ::time::{Duration, OffsetDateTime};
use tuaton_keys::{KeyBackend, KeySpec, MasterKey, SignatureAlgorithm, SoftwareBackend};
use tuaton_pki::{Authority, BackendKey, CaSettings};
use tuaton_sign::TimeStamper;
use url::Url;

struct Tsa {
    dir: tempfile::TempDir,
    stamper: TimeStamper,
    root: PathBuf,
    untrusted: PathBuf,
}

fn key(b: &Arc<dyn KeyBackend>) -> BackendKey<'_> {
    BackendKey {
        backend: b,
        key: b.generate(KeySpec::EcP256, "tsa test").unwrap(),
        alg: SignatureAlgorithm::Es256,
    }
}

fn tsa() -> Tsa {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn KeyBackend> = Arc::new(
        SoftwareBackend::open(dir.path().join("keys"), MasterKey::from_bytes([5; 32])).unwrap(),
    );
    let now = OffsetDateTime::now_utc();
    let settings = CaSettings::development(&Url::parse("http://localhost:8080").unwrap()).unwrap();
    let root =
        Authority::new_root(&key(&backend), &settings, "Root", Duration::days(3650), now).unwrap();
    let issuing = root
        .issue_ca(&key(&backend), "Issuing 1", Duration::days(1825), now)
        .unwrap();
    let tsa_key = key(&backend);
    let cert = issuing
        .issue_tsa(&tsa_key, "Tuaton TSA 1", Duration::days(730), now)
        .unwrap();
    let stamper = TimeStamper::new(
        backend.clone(),
        tsa_key.key.clone(),
        SignatureAlgorithm::Es256,
        cert.der(),
        &[issuing.certificate().der().to_vec()],
        settings.policy,
    )
    .unwrap();
    let root_pem = dir.path().join("root.pem");
    std::fs::write(&root_pem, root.certificate().pem()).unwrap();
    let untrusted = dir.path().join("untrusted.pem");
    std::fs::write(
        &untrusted,
        format!("{}{}", cert.pem(), issuing.certificate().pem()),
    )
    .unwrap();
    Tsa {
        dir,
        stamper,
        root: root_pem,
        untrusted,
    }
}

fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (scripts/install-test-deps)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

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
