//! Signing throughput: each backend beside the raw primitive it wraps.
//!
//! - `ring`: ring's key pair signing directly; `soft`: the software backend.
//! - `cryptoki`: `C_Sign` on one directly opened SoftHSM2 session (with the
//!   same ring digest for ECDSA that the backend computes); `pkcs11`: the
//!   PKCS#11 backend with its session pool.
//! - `*/2threads`, `*/8threads`: that many concurrent signers (raw cryptoki
//!   with one session per thread); criterion's time per iteration is then
//!   wall time per signature across all threads.
//!
//! Like the conformance suite, the binary re-executes itself with
//! `SOFTHSM2_CONF` pointing at a fresh token (the workspace forbids the
//! `unsafe` `set_var`). Needs Debian's `softhsm2`.
//!
//! Run: `cargo bench -p tuaton-keys --bench signing`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, black_box};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use tuaton_keys::{
    KeyBackend, KeySpec, MasterKey, Pin, Pkcs11Backend, Pkcs11Config, SignatureAlgorithm,
    SignatureFormat, SoftwareBackend,
};

const CHILD: &str = "TUATON_KEYS_BENCH_CHILD";
const TOKEN: &str = "tuaton-bench";
const PIN: &str = "bench-pin-1234";
const MSG: &[u8] = b"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL3R1YXRvbi5leGFtcGxlIiwic3ViIjoiMTIzNDUiLCJhdWQiOiJhZ2VuY3kiLCJleHAiOjE3MDAwMDAwMDB9";
/// Concurrent signers measured beside the single-threaded run.
const THREAD_COUNTS: [usize; 2] = [2, 8];

fn main() {
    if let Err(code) = tuaton_keys::testing::in_own_softhsm_token(CHILD, TOKEN, PIN) {
        std::process::exit(code);
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    run(&mut c);
    c.final_summary();
}

fn raw_c_sign(session: &Session, handle: ObjectHandle, alg: SignatureAlgorithm) -> Vec<u8> {
    // The same mechanisms the backend uses: ECDSA hashed outside the token
    // (SoftHSM2 has no CKM_ECDSA_SHA384), the rest hashed by the token.
    let pss = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    let digest;
    let (mechanism, input) = match alg {
        SignatureAlgorithm::Es256 => {
            digest = ring::digest::digest(&ring::digest::SHA256, MSG);
            (Mechanism::Ecdsa, digest.as_ref())
        }
        SignatureAlgorithm::Es384 => {
            digest = ring::digest::digest(&ring::digest::SHA384, MSG);
            (Mechanism::Ecdsa, digest.as_ref())
        }
        SignatureAlgorithm::EdDsa => (
            Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            MSG,
        ),
        SignatureAlgorithm::Rs256 => (Mechanism::Sha256RsaPkcs, MSG),
        SignatureAlgorithm::Ps256 => (Mechanism::Sha256RsaPkcsPss(pss), MSG),
    };
    session.sign(&mechanism, handle, input).unwrap()
}

/// Raw ring signing with a fresh key of `spec`, as the software backend would make it.
fn ring_signer(spec: KeySpec, alg: SignatureAlgorithm) -> Box<dyn Fn() -> Vec<u8> + Sync> {
    let rng = SystemRandom::new();
    let ecdsa = |a: &'static signature::EcdsaSigningAlgorithm| -> Box<dyn Fn() -> Vec<u8> + Sync> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(a, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(a, doc.as_ref(), &rng).unwrap();
        Box::new(move || pair.sign(&rng, MSG).unwrap().as_ref().to_vec())
    };
    match spec {
        KeySpec::EcP256 => ecdsa(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        KeySpec::EcP384 => ecdsa(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        KeySpec::Ed25519 => {
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
            Box::new(move || pair.sign(MSG).as_ref().to_vec())
        }
        _ => {
            use rsa::pkcs8::EncodePrivateKey as _;
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
            let pair = RsaKeyPair::from_pkcs8(key.to_pkcs8_der().unwrap().as_bytes()).unwrap();
            let padding: &'static dyn signature::RsaEncoding = if alg == SignatureAlgorithm::Ps256 {
                &signature::RSA_PSS_SHA256
            } else {
                &signature::RSA_PKCS1_SHA256
            };
            Box::new(move || {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, MSG, &mut sig).unwrap();
                sig
            })
        }
    }
}

/// Runs `iters` signatures spread over `threads` threads; returns wall time.
fn parallel(threads: usize, iters: u64, sign: impl Fn(usize) + Sync) -> Duration {
    let per_thread = iters.div_ceil(threads as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let sign = &sign;
            s.spawn(move || {
                for _ in 0..per_thread {
                    sign(t);
                }
            });
        }
    });
    // Normalise to the requested iteration count.
    start
        .elapsed()
        .mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
}

fn run(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let soft = SoftwareBackend::open(dir.path(), MasterKey::from_bytes([7; 32])).unwrap();
    let pkcs11 = Pkcs11Backend::open(Pkcs11Config::new(
        tuaton_keys::testing::softhsm_module(),
        TOKEN,
        Pin::new(PIN),
    ))
    .unwrap();

    let cases = [
        (KeySpec::EcP256, SignatureAlgorithm::Es256),
        (KeySpec::EcP384, SignatureAlgorithm::Es384),
        (KeySpec::Ed25519, SignatureAlgorithm::EdDsa),
        (KeySpec::Rsa2048, SignatureAlgorithm::Rs256),
        (KeySpec::Rsa2048, SignatureAlgorithm::Ps256),
    ];
    let most_threads = THREAD_COUNTS.into_iter().max().unwrap_or(1);
    for (spec, alg) in cases {
        let mut group = c.benchmark_group(alg.jose_name());
        let ring_sign = ring_signer(spec, alg);
        let soft_key = soft.generate(spec, "bench").unwrap();
        let hsm_key = pkcs11.generate(spec, "bench").unwrap();
        // One directly opened session per thread for raw C_Sign.
        let sessions: Vec<Mutex<(Session, ObjectHandle)>> = (0..most_threads)
            .map(|_| {
                Mutex::new(tuaton_keys::testing::own_session(
                    &pkcs11, TOKEN, PIN, &hsm_key,
                ))
            })
            .collect();
        let soft_sign = || {
            black_box(
                soft.sign(&soft_key, alg, SignatureFormat::Raw, MSG)
                    .unwrap(),
            );
        };
        let raw_sign = |t: usize| {
            let guard = sessions[t].lock().unwrap();
            black_box(raw_c_sign(&guard.0, guard.1, alg));
        };
        let pkcs11_sign = || {
            black_box(
                pkcs11
                    .sign(&hsm_key, alg, SignatureFormat::Raw, MSG)
                    .unwrap(),
            );
        };

        group.bench_function(BenchmarkId::new("ring", "1thread"), |b| {
            b.iter(|| black_box(ring_sign()))
        });
        group.bench_function(BenchmarkId::new("soft", "1thread"), |b| b.iter(soft_sign));
        group.bench_function(BenchmarkId::new("cryptoki", "1thread"), |b| {
            b.iter(|| raw_sign(0))
        });
        group.bench_function(BenchmarkId::new("pkcs11", "1thread"), |b| {
            b.iter(pkcs11_sign)
        });
        for threads in THREAD_COUNTS {
            let id = format!("{threads}threads");
            group.bench_function(BenchmarkId::new("ring", &id), |b| {
                b.iter_custom(|iters| parallel(threads, iters, |_| drop(black_box(ring_sign()))))
            });
            group.bench_function(BenchmarkId::new("soft", &id), |b| {
                b.iter_custom(|iters| parallel(threads, iters, |_| soft_sign()))
            });
            group.bench_function(BenchmarkId::new("cryptoki", &id), |b| {
                b.iter_custom(|iters| parallel(threads, iters, raw_sign))
            });
            group.bench_function(BenchmarkId::new("pkcs11", &id), |b| {
                b.iter_custom(|iters| parallel(threads, iters, |_| pkcs11_sign()))
            });
        }
        group.finish();
    }
}
