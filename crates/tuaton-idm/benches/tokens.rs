//! Token refreshes per second through the OpenID Provider's service layer,
//! on SQLite and PostgreSQL.
//!
//! A refresh is the token endpoint's steady work: the refresh token read
//! with its grant, the account checked, a pairwise `sub` derived, an ID
//! token and an RFC 9068 access token signed (ES256, software key backend),
//! and one transaction that spends the old refresh token, stores the next
//! and appends an audit record. It is what a code redemption does too, less
//! the code's lookup. Each client task holds one family (one login) and
//! refreshes it in a chain, as an agency's back end would.
//!
//! Everything is bounded: a fixed measuring window and a cap on each
//! engine's run. Knobs (environment): `TUATON_BENCH_CLIENTS` (default 8),
//! `TUATON_BENCH_SECONDS` (default 10). PostgreSQL is measured when
//! `TUATON_TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tuaton_core::SignatureAlgorithm;
use tuaton_idm::{Actor, Idm};
use tuaton_oidc::{ClientConfig, SubjectType, TokenAuth, TokenRequest};
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
    let form = pairs(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", "bench"),
    ]);
    let tokens = idm
        .redeem(ISSUER, TokenRequest::parse(&form, None).unwrap(), None, now)
        .await
        .unwrap();
    tokens.refresh_token
}

async fn run(engine: &str, db: &TestDb, clients: usize, measure: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let idm = common::idm(db, dir.path());
    let now = OffsetDateTime::now_utc();
    let mut authn = SoftPasskey::new(true);
    let (evidence, _) = common::enrol_with_passkey(&idm, &mut authn, now).await;
    common::id_token_key(&idm, now).await;
    let client = ClientConfig {
        client_id: "bench".into(),
        name: "Benchmark agency".into(),
        redirect_uris: vec![Url::parse(REDIRECT).unwrap()],
        subject: SubjectType::Pairwise {
            sector: String::new(),
        },
        token_auth: TokenAuth::None,
        scopes: vec!["openid".into()],
        id_token_alg: SignatureAlgorithm::Es256,
        jwks: None,
        jwks_uri: None,
        token_lifetime_secs: 300,
        require_par: false,
        post_logout_redirect_uris: Vec::new(),
        dpop_bound_access_tokens: false,
        purpose: None,
        backchannel_logout_uri: None,
        client_credentials: false,
    };
    idm.client_admin()
        .add(&Actor::Operator("bench".into()), client, now)
        .await
        .unwrap();
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
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "\n== {engine}\nrefreshes: {} in {:.1} s = {:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
    assert!(
        tuaton_store::audit::verify(&db.store)
            .await
            .unwrap()
            .is_intact()
    );
}

fn main() {
    let clients = env_num("TUATON_BENCH_CLIENTS", 8, 256) as usize;
    let measure = Duration::from_secs(env_num("TUATON_BENCH_SECONDS", 10, 300));
    let cap = measure + Duration::from_secs(120);
    println!(
        "token refreshes through the service layer: {clients} client tasks (one family each), {} s measured",
        measure.as_secs()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = TestDb::sqlite().await;
        if tokio::time::timeout(
            cap,
            run("SQLite (WAL, synchronous = FULL)", &db, clients, measure),
        )
        .await
        .is_err()
        {
            println!("SQLite: the run exceeded its cap and was abandoned");
        }
        db.cleanup().await;
        match TestDb::postgres().await {
            Some(db) => {
                if tokio::time::timeout(cap, run("PostgreSQL (fsync on)", &db, clients, measure))
                    .await
                    .is_err()
                {
                    println!("PostgreSQL: the run exceeded its cap and was abandoned");
                }
                db.cleanup().await;
            }
            None => println!("\nPostgreSQL: skipped (TUATON_TEST_POSTGRES_URL not set)"),
        }
    });
}
