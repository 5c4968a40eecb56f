//! Token refreshes and code redemptions per second through the OpenID
//! Provider's service layer, on SQLite and PostgreSQL.
//!
//! A refresh is the token endpoint's steady work: the refresh token read
//! with its grant, the account checked, a pairwise `sub` derived, an ID
//! token and an RFC 9068 access token signed (ES256, software key backend),
//! and one transaction that spends the old refresh token, stores the next
//! and appends an audit record. It is what a code redemption does too, less
//! the code's lookup. Each client task holds one family (one login) and
//! refreshes it in a chain, as an agency's back end would.
//!
//! A code redemption is measured on the secure defaults: a confidential
//! client authenticating with `private_key_jwt` and a DPoP proof with the
//! server's nonce, so the assertion's and the proof's `jti`s are spent too,
//! the code is read and spent, and the grant and its first refresh token
//! are written with the audit record. The codes (each from a request begun
//! and answered with one login), the assertions and the proofs are made
//! before the window, and only `redeem` is timed; `TUATON_BENCH_CODES`
//! (default 150) per client task.
//!
//! Everything is bounded: a fixed measuring window and a cap on each
//! engine's run. Knobs (environment): `TUATON_BENCH_CLIENTS` (default 8),
//! `TUATON_BENCH_SECONDS` (default 10), `TUATON_BENCH_ONLY=redemptions`
//! (no refresh runs). PostgreSQL is measured when
//! `TUATON_TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;
use tuaton_idm::Decision;
use tuaton_oidc::dpop::Presented;

use time::OffsetDateTime;
use tuaton_idm::{Actor, Idm};
use tuaton_oidc::{ClientConfig, TokenRequest};
use tuaton_store::testing::TestDb;
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const ISSUER: &str = "http://localhost:8080";
const REDIRECT: &str = "https://bench.example.go.th/cb";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn env_num(name: &str, default: u64, max: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A family: one login's tokens, as the agency holds them after the code.
async fn family(
    idm: &Idm,
    authn: &mut SoftPasskey,
    evidence: &tuaton_proofing::CitizenEvidence,
) -> String {
    let now = OffsetDateTime::now_utc();
    let request = pairs(&[
        ("response_type", "code"),
        ("client_id", "bench"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    let pending = idm
        .begin_authorization(ISSUER, &request, now)
        .await
        .unwrap();
    let code = common::code_after_login(idm, authn, evidence, ISSUER, &pending.id, now).await;
    common::redeem_code(idm, ISSUER, "bench", REDIRECT, &code, VERIFIER, now)
        .await
        .refresh_token
}

async fn run(engine: &str, db: &TestDb, clients: usize, measure: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let idm = common::idm(db, dir.path());
    let now = OffsetDateTime::now_utc();
    let mut authn = SoftPasskey::new(true);
    let (evidence, _) = common::enrol_with_passkey(&idm, &mut authn, now).await;
    common::id_token_key(&idm, now).await;
    common::public_client(&idm, "bench", REDIRECT, &[], now).await;
    let mut families = Vec::new();
    for _ in 0..clients {
        families.push(family(&idm, &mut authn, &evidence).await);
    }
    let until = Instant::now() + measure;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut token in families {
        let idm = idm.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let form = pairs(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", "bench"),
                ]);
                let t = Instant::now();
                let next = idm
                    .redeem(
                        ISSUER,
                        TokenRequest::parse(&form, None).unwrap(),
                        None,
                        OffsetDateTime::now_utc(),
                    )
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
                token = next.refresh_token;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let (p50, p99) = percentiles(&all);
    println!(
        "\n== {engine}\nrefreshes: {} in {:.1} s = {:.0}/s; latency p50 {p50:.1} ms, p99 {p99:.1} ms",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
    );
    common::audit_intact(db).await;
}

/// Bare JWTs per second signed with the active id-token key (the one the
/// redemptions used), one signer, for about a second.
fn bare_jwt_rate(idm: &Idm, key: &tuaton_store::keys::ManagedKey) -> f64 {
    let signing = tuaton_oidc::jws::SigningKey {
        key_ref: key.key_ref.parse().unwrap(),
        kid: key.id.clone(),
        alg: key.algorithm,
    };
    let claims = json!({ "iss": ISSUER, "sub": "bench", "aud": "bench", "iat": 0, "exp": 1 });
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_secs(1) {
        tuaton_oidc::jws::sign_compact(idm.keys().as_ref(), &signing, "JWT", &claims).unwrap();
        n += 1;
    }
    f64::from(n) / started.elapsed().as_secs_f64()
}

/// Commits per second of the store on its own: `clients` tasks each
/// committing a one-row transaction in a loop, for about a second.
async fn commit_rate(store: &tuaton_store::Store, clients: usize) -> f64 {
    let until = Instant::now() + Duration::from_secs(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..clients {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                let mut tx = store.begin().await.unwrap();
                tuaton_store::batch::Statement::new(
                    "INSERT INTO ceremonies (id, kind, account_id, state, expires_ms) VALUES ($1, 'bench', NULL, '{}', 0)",
                )
                .bind(format!("commit-{t}-{n}"))
                .execute(tx.conn())
                .await
                .unwrap();
                tx.commit().await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// CPU seconds this process has used (user + system), from
/// /proc/self/stat; 0 where it cannot be read.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and
    // stime are the 12th and 13th, in clock ticks of 1/100 s.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// p50 and p99 of `all` (sorted), in milliseconds.
fn percentiles(all: &[Duration]) -> (f64, f64) {
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    };
    (pct(0.50), pct(0.99))
}

/// What one timed redemption sends: the form with its client assertion,
/// and the DPoP proof.
struct Redemption {
    form: Vec<(String, String)>,
    proof: Presented,
}

/// `n` codes for the client `redeemer`, each with a fresh assertion and proof
/// signed with `pkcs8` (the client's key, which also makes the DPoP proofs).
async fn redemptions(
    idm: &Idm,
    authn: &mut SoftPasskey,
    evidence: &tuaton_proofing::CitizenEvidence,
    pkcs8: &[u8],
    jwk: &serde_json::Value,
    n: usize,
) -> Vec<Redemption> {
    let request = pairs(&[
        ("response_type", "code"),
        ("client_id", "redeemer"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    let mut pending = Vec::with_capacity(n);
    for _ in 0..n {
        let begun = idm
            .begin_authorization(ISSUER, &request, OffsetDateTime::now_utc())
            .await
            .unwrap();
        pending.push(begun.id);
    }
    // One login after every request began answers them all.
    let session = common::logged_in(idm, authn, evidence, OffsetDateTime::now_utc()).await;
    let key = jsonwebtoken::EncodingKey::from_ec_der(pkcs8);
    let mut out = Vec::with_capacity(n);
    for id in pending {
        let now = OffsetDateTime::now_utc();
        let back = idm
            .complete_authorization(ISSUER, &id, Some(&session), Decision::Allow, now)
            .await
            .unwrap();
        let code = back
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("k1".into());
        let assertion = jsonwebtoken::encode(
            &header,
            &json!({
                "iss": "redeemer", "sub": "redeemer", "aud": ISSUER, "jti": tuaton_store::new_id(),
                "iat": now.unix_timestamp(), "exp": (now + time::Duration::minutes(4)).unix_timestamp(),
            }),
            &key,
        )
        .unwrap();
        let mut proof_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        proof_header.typ = Some("dpop+jwt".into());
        proof_header.jwk = Some(serde_json::from_value(jwk.clone()).unwrap());
        let proof = jsonwebtoken::encode(
            &proof_header,
            &json!({
                "jti": tuaton_store::new_id(), "htm": "POST", "htu": format!("{ISSUER}/token"),
                "iat": now.unix_timestamp(), "nonce": idm.dpop_nonce(now).await.unwrap(),
            }),
            &key,
        )
        .unwrap();
        out.push(Redemption {
            form: pairs(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                (
                    "client_assertion_type",
                    tuaton_oidc::assertion::ASSERTION_TYPE,
                ),
                ("client_assertion", &assertion),
            ]),
            proof: Presented {
                proof,
                method: "POST",
                uri: Url::parse(&format!("{ISSUER}/token")).unwrap(),
            },
        });
    }
    out
}

/// Code redemptions on the secure defaults (private_key_jwt + DPoP).
async fn run_redemptions(engine: &str, db: &TestDb, clients: usize, per_task: usize) {
    let dir = tempfile::tempdir().unwrap();
    let idm = common::idm(db, dir.path());
    let now = OffsetDateTime::now_utc();
    let mut authn = SoftPasskey::new(true);
    let (evidence, _) = common::enrol_with_passkey(&idm, &mut authn, now).await;
    common::id_token_key(&idm, now).await;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": "k1",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    let client = ClientConfig {
        name: "Benchmark agency back end".into(),
        redirect_uris: vec![Url::parse(REDIRECT).unwrap()],
        jwks: Some(json!({ "keys": [jwk.clone()] })),
        require_par: false,
        ..ClientConfig::new("redeemer")
    };
    idm.client_admin()
        .add(&Actor::Operator("bench".into()), client, now)
        .await
        .unwrap();
    let mut work = Vec::new();
    for _ in 0..clients {
        work.push(redemptions(&idm, &mut authn, &evidence, pkcs8.as_ref(), &jwk, per_task).await);
    }
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let mut tasks = Vec::new();
    for batch in work {
        let idm = idm.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(batch.len());
            for r in batch {
                let t = Instant::now();
                let tokens = idm
                    .redeem(
                        ISSUER,
                        TokenRequest::parse(&r.form, None).unwrap(),
                        Some(&r.proof),
                        OffsetDateTime::now_utc(),
                    )
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
                assert_eq!(tokens.token_type, "DPoP");
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    all.sort_unstable();
    let (p50, p99) = percentiles(&all);
    println!(
        "{engine} code redemptions (private_key_jwt + DPoP): {} in {:.1} s = {:.0}/s; latency p50 {p50:.1} ms, p99 {p99:.1} ms; {:.2} CPU-s = {:.0} µs of CPU each, {:.0}/s per core",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        cpu,
        cpu * 1e6 / all.len() as f64,
        all.len() as f64 / cpu.max(0.01),
    );
    let key = tuaton_store::keys::signing_key(
        idm.store().conn().await.unwrap().conn(),
        tuaton_store::keys::KeyPurpose::IdToken,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap()
    .unwrap();
    println!(
        "{engine} beside them: {:.0} bare JWTs/s signed with the same key (one signer); {:.0} one-row commits/s ({clients} committers)",
        bare_jwt_rate(&idm, &key),
        commit_rate(idm.store(), clients).await,
    );
    common::audit_intact(db).await;
}

fn main() {
    let clients = env_num("TUATON_BENCH_CLIENTS", 8, 256) as usize;
    let measure = Duration::from_secs(env_num("TUATON_BENCH_SECONDS", 10, 300));
    let per_task = env_num("TUATON_BENCH_CODES", 150, 2000) as usize;
    let cap = measure + Duration::from_secs(120);
    println!(
        "token refreshes through the service layer: {clients} client tasks (one family each), {} s measured",
        measure.as_secs()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `TUATON_BENCH_ONLY=redemptions` leaves the refresh runs out.
    let refreshes = std::env::var("TUATON_BENCH_ONLY").map_or(true, |v| v != "redemptions");
    rt.block_on(async {
        let db = TestDb::sqlite().await;
        if refreshes
            && tokio::time::timeout(
                cap,
                run("SQLite (WAL, synchronous = FULL)", &db, clients, measure),
            )
            .await
            .is_err()
        {
            println!("SQLite: the run exceeded its cap and was abandoned");
        }
        db.cleanup().await;
        let db = TestDb::sqlite().await;
        if tokio::time::timeout(cap, run_redemptions("SQLite", &db, clients, per_task))
            .await
            .is_err()
        {
            println!("SQLite: the redemption run exceeded its cap and was abandoned");
        }
        db.cleanup().await;
        match TestDb::postgres().await {
            Some(db) => {
                if refreshes
                    && tokio::time::timeout(
                        cap,
                        run("PostgreSQL (fsync on)", &db, clients, measure),
                    )
                    .await
                    .is_err()
                {
                    println!("PostgreSQL: the run exceeded its cap and was abandoned");
                }
                db.cleanup().await;
                if let Some(db) = TestDb::postgres().await {
                    if tokio::time::timeout(
                        cap,
                        run_redemptions("PostgreSQL", &db, clients, per_task),
                    )
                    .await
                    .is_err()
                    {
                        println!(
                            "PostgreSQL: the redemption run exceeded its cap and was abandoned"
                        );
                    }
                    db.cleanup().await;
                }
            }
            None => println!("\nPostgreSQL: skipped (TUATON_TEST_POSTGRES_URL not set)"),
        }
    });
}
