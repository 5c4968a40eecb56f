//! CSC `signatures/signHash` throughput through the service layer, in
//! batches of 100 hashes, with the person's key in the software backend and
//! in SoftHSM2 through PKCS#11, beside the rate the key signs digests alone
//! in the same run (and, for SoftHSM2, raw `C_Sign` on a session of our own).
//!
//! One timed call is what the route does after the token is checked: the
//! confirmed request and its certificate read, the challenge recomputed
//! and compared with the stored one and the client data the authenticator
//! signed, the activation spent, 100 ECDSA P-256 signatures made, and one
//! transaction that marks the request signed and appends the audit record.
//! Each batch is confirmed before the window the way a person confirms it:
//! an authorization request naming the 100 hashes, a passkey login, the
//! passkey assertion over the signing challenge, the code redeemed for the
//! access token that carries the request. Calls run one after another, as
//! one agency back end would send them; run the binary pinned to one core
//! (scripts/bench signhash does) for a per-core figure.
//!
//! Bounded: `TUATON_BENCH_BATCHES` (default 150, at most 400) batches per
//! run. PostgreSQL is measured (software keys) when
//! `TUATON_TEST_POSTGRES_URL` is set. Needs Debian's `softhsm2`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cryptoki::mechanism::Mechanism;
use serde_json::json;
use time::OffsetDateTime;
use tuaton_idm::csc::SignatureCaller;
use tuaton_idm::{Answer, Decision, Idm, OidcError, SignatureConfirmation};
use tuaton_keys::{
    KeyBackend, KeyRef, Pin, Pkcs11Backend, Pkcs11Config, SignatureAlgorithm, SignatureFormat,
};
use tuaton_store::testing::TestDb;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const CHILD: &str = "TUATON_SIGN_HASH_BENCH_CHILD";
const TOKEN: &str = "tuaton-bench";
const PIN: &str = "bench-pin-1234";
const ISSUER: &str = "http://localhost:8080";
const REDIRECT: &str = "https://bench.example.go.th/cb";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const BATCH: usize = 100;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn random_hashes() -> Vec<[u8; 32]> {
    let rng = ring::rand::SystemRandom::new();
    (0..BATCH)
        .map(|_| {
            let mut h = [0u8; 32];
            ring::rand::SecureRandom::fill(&rng, &mut h).unwrap();
            h
        })
        .collect()
}

/// A batch the person confirmed: its hashes and the access token's request.
struct Confirmed {
    hashes: Vec<[u8; 32]>,
    signing_request: String,
}

/// The person confirms a fresh batch of hashes for `credential_id`, as the
/// signing page has them do; returns the request the access token carries.
async fn confirm_batch(
    idm: &Idm,
    authn: &mut SoftPasskey,
    evidence: &tuaton_proofing::CitizenEvidence,
    credential_id: &str,
) -> Confirmed {
    let now = OffsetDateTime::now_utc();
    let hashes = random_hashes();
    let digests: Vec<_> = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| json!({ "hash": STANDARD.encode(h), "label": format!("page {i}") }))
        .collect();
    let details = json!([{
        "type": "credential", "credentialID": credential_id,
        "hashAlgorithmOID": SHA256, "documentDigests": digests,
    }])
    .to_string();
    let request = pairs(&[
        ("response_type", "code"),
        ("client_id", "bench"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("authorization_details", &details),
    ]);
    let pending = idm
        .begin_authorization(ISSUER, &request, now)
        .await
        .unwrap();
    let session = common::logged_in(idm, authn, evidence, now).await;
    let asked = idm
        .complete_authorization(ISSUER, &pending.id, Some(&session), Decision::Allow, now)
        .await;
    let Err(OidcError::SignatureNeeded(ask)) = asked else {
        panic!("the signing page should be asked for: {asked:?}");
    };
    let response = authn
        .do_authentication(
            Url::parse(common::ORIGIN).unwrap(),
            common::options(&ask.challenge.options),
        )
        .unwrap();
    let back = idm
        .complete_authorization(
            ISSUER,
            &pending.id,
            Some(&session),
            Answer {
                decision: Decision::Allow,
                company: None,
                confirmation: Some(SignatureConfirmation {
                    request: ask.challenge.request_id.clone(),
                    response: Box::new(response),
                }),
            },
            now,
        )
        .await
        .unwrap();
    let tokens = common::redeem_code(
        idm,
        ISSUER,
        "bench",
        REDIRECT,
        &common::code_in(&back),
        VERIFIER,
        now,
    )
    .await;
    let payload = tokens.access_token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    Confirmed {
        hashes,
        signing_request: claims["signing_request"].as_str().unwrap().to_owned(),
    }
}

/// Digest signatures per second by the key alone, through the backend.
fn backend_rate(keys: &dyn KeyBackend, key: &KeyRef) -> f64 {
    let hashes = random_hashes();
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        for h in &hashes {
            keys.sign_digest(key, SignatureAlgorithm::Es256, SignatureFormat::Der, h)
                .unwrap();
        }
        n += BATCH as u32;
    }
    f64::from(n) / started.elapsed().as_secs_f64()
}

/// Raw `C_Sign` (`CKM_ECDSA` over a 32-byte digest) per second on a
/// session of our own on the bench token.
fn c_sign_rate(backend: &Pkcs11Backend, key: &KeyRef) -> f64 {
    let (session, handle) = tuaton_keys::testing::own_session(backend, TOKEN, PIN, key);
    let hashes = random_hashes();
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        for h in &hashes {
            session.sign(&Mechanism::Ecdsa, handle, h).unwrap();
        }
        n += BATCH as u32;
    }
    f64::from(n) / started.elapsed().as_secs_f64()
}

/// One engine and backend: prepares `batches` confirmed batches, then signs
/// each through `csc_sign_hash`, timed one after another.
async fn run(label: &str, db: &TestDb, idm: Idm, batches: usize, raw: Option<&Pkcs11Backend>) {
    let now = OffsetDateTime::now_utc();
    idm.certify_hierarchy(now, "operator:bench", true)
        .await
        .unwrap();
    let mut authn = SoftPasskey::new(true);
    let (evidence, account_id) = common::enrol_with_passkey(&idm, &mut authn, now).await;
    common::id_token_key(&idm, now).await;
    common::public_client(&idm, "bench", REDIRECT, &["credential"], now).await;
    let account = tuaton_store::accounts::by_id(db.store.conn().await.unwrap().conn(), &account_id)
        .await
        .unwrap()
        .unwrap();
    let credential = idm.csc_credentials(&account, now).await.unwrap().remove(0);
    let prepared_at = Instant::now();
    let mut confirmed = Vec::with_capacity(batches);
    for _ in 0..batches {
        confirmed.push(confirm_batch(&idm, &mut authn, &evidence, &credential.id).await);
    }
    let prepared = prepared_at.elapsed();

    let mut latencies = Vec::with_capacity(batches);
    let started = Instant::now();
    for c in &confirmed {
        let caller = SignatureCaller {
            account: &account,
            client_id: "bench",
            signing_request: Some(&c.signing_request),
            credential_id: &credential.id,
        };
        let t = Instant::now();
        let signatures = idm
            .csc_sign_hash(&caller, None, &c.hashes, OffsetDateTime::now_utc())
            .await
            .unwrap();
        latencies.push(t.elapsed());
        assert_eq!(signatures.len(), BATCH);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let key = tuaton_store::keys::by_id(db.store.conn().await.unwrap().conn(), &credential.id)
        .await
        .unwrap()
        .unwrap();
    let key_ref: KeyRef = key.key_ref.parse().unwrap();
    let alone = backend_rate(idm.keys().as_ref(), &key_ref);
    let hashes = (batches * BATCH) as f64;
    println!(
        "\n== {label}\nsignHash: {batches} calls of {BATCH} hashes in {:.2} s = {:.0} hashes/s; \
         per call p50 {:.2} ms, p99 {:.2} ms (confirming the batches took {:.1} s before)\n\
         the key alone through the backend: {alone:.0} digests/s; signHash / backend {:.0}%",
        elapsed.as_secs_f64(),
        hashes / elapsed.as_secs_f64(),
        ms(latencies[latencies.len() / 2]),
        ms(latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]),
        prepared.as_secs_f64(),
        100.0 * hashes / elapsed.as_secs_f64() / alone,
    );
    if let Some(backend) = raw {
        let raw = c_sign_rate(backend, &key_ref);
        println!(
            "raw C_Sign on a session of our own: {raw:.0}/s; signHash / C_Sign {:.0}%",
            100.0 * hashes / elapsed.as_secs_f64() / raw
        );
    }
    common::audit_intact(db).await;
}

fn main() {
    if let Err(code) = tuaton_keys::testing::in_own_softhsm_token(CHILD, TOKEN, PIN) {
        std::process::exit(code);
    }
    let batches = std::env::var("TUATON_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150usize)
        .clamp(1, 400);
    println!(
        "signatures/signHash through the service layer: {batches} batches of {BATCH} hashes per run"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cap = Duration::from_secs(300);
    rt.block_on(async {
        let bounded = |name: &'static str| {
            move |r: Result<(), tokio::time::error::Elapsed>| {
                if r.is_err() {
                    println!("{name}: the run exceeded its cap and was abandoned");
                }
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::sqlite().await;
        let idm = common::idm(&db, dir.path());
        bounded("SQLite, software keys")(
            tokio::time::timeout(
                cap,
                run("SQLite, software keys (P-256)", &db, idm, batches, None),
            )
            .await,
        );
        db.cleanup().await;

        let db = TestDb::sqlite().await;
        let hsm = Arc::new(
            Pkcs11Backend::open(Pkcs11Config::new(
                tuaton_keys::testing::softhsm_module(),
                TOKEN,
                Pin::new(PIN),
            ))
            .unwrap(),
        );
        let idm = common::idm_with_keys(&db, hsm.clone());
        bounded("SQLite, SoftHSM2")(
            tokio::time::timeout(
                cap,
                run(
                    "SQLite, SoftHSM2 through PKCS#11 (P-256)",
                    &db,
                    idm,
                    batches,
                    Some(&hsm),
                ),
            )
            .await,
        );
        db.cleanup().await;

        match TestDb::postgres().await {
            Some(db) => {
                let dir = tempfile::tempdir().unwrap();
                let idm = common::idm(&db, dir.path());
                bounded("PostgreSQL, software keys")(
                    tokio::time::timeout(
                        cap,
                        run("PostgreSQL, software keys (P-256)", &db, idm, batches, None),
                    )
                    .await,
                );
                db.cleanup().await;
            }
            None => println!("\n(PostgreSQL not measured: TUATON_TEST_POSTGRES_URL is unset)"),
        }
    });
}
