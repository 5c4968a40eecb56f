//! Backend conformance suite: the same cases against the software backend
//! and the PKCS#11 backend on SoftHSM2.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` when the module initialises, and
//! initialisation is once per process. The workspace forbids `unsafe`, so
//! `std::env::set_var` is out; instead this binary (harness = false) runs
//! twice: the parent creates a temporary token directory, initialises the
//! tokens with `softhsm2-util`, and re-executes itself with `SOFTHSM2_CONF`
//! set; the child runs the cases one after another (they share one module
//! state, and some deliberately break it) and reports like libtest.
//! Arguments that are not flags filter cases by substring, as with libtest.
//!
//! SoftHSM2 missing is a failure, not a skip: `apt-get install softhsm2`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

use cryptoki::context::Pkcs11;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use tuaton_keys::{
    BackendSigningKey, KeyBackend, KeyError, KeyRef, KeySpec, MasterKey, Pin, Pkcs11Backend,
    Pkcs11Config, SignatureAlgorithm, SignatureFormat, SoftwareBackend,
};

const CHILD: &str = "TUATON_KEYS_CONFORMANCE_CHILD";
const MAIN_TOKEN: &str = "tuaton-conformance";
const VANISH_TOKEN: &str = "tuaton-vanishing";
// Distinctive values so that a leak is easy to grep for.
const PIN: &str = "pin-7b3e9d51";
const SO_PIN: &str = "so-pin-c4a2f086";
const MASTER_HEX: &str = "5ecf00d5ecf00d5ecf00d5ecf00d5ecf00d5ecf00d5ecf00d5ecf00d5ecf00d1";

const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib/softhsm/libsofthsm2.so.2",
];

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        child()
    } else {
        parent()
    }
}

// ---------------------------------------------------------------- parent --

fn find_module() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TUATON_PKCS11_MODULE") {
        return Some(PathBuf::from(p));
    }
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn init_token(conf: &Path, label: &str) -> Result<(), String> {
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .args(["--init-token", "--free", "--label", label])
        .args(["--so-pin", SO_PIN, "--pin", PIN])
        .output()
        .map_err(|e| format!("cannot run softhsm2-util: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn token_dirs(tokens: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tokens)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

fn parent() -> ExitCode {
    let missing = "SoftHSM2 is required for the PKCS#11 conformance tests and was not \
                   found. Install it with `apt-get install -y softhsm2` (Debian/Ubuntu), \
                   or set TUATON_PKCS11_MODULE to the path of libsofthsm2.so.";
    let Some(module) = find_module().filter(|p| p.exists()) else {
        eprintln!("error: {missing}");
        return ExitCode::FAILURE;
    };
    let tmp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: temp dir: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tokens = tmp.path().join("tokens");
    let conf = tmp.path().join("softhsm2.conf");
    let setup = || -> Result<PathBuf, String> {
        std::fs::create_dir(&tokens).map_err(|e| e.to_string())?;
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        // The vanishing token first, so its directory is the only one.
        init_token(&conf, VANISH_TOKEN)?;
        let vanish_dir = token_dirs(&tokens)
            .into_iter()
            .next()
            .ok_or("softhsm2-util created no token directory")?;
        init_token(&conf, MAIN_TOKEN)?;
        Ok(vanish_dir)
    };
    let vanish_dir = match setup() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: setting up SoftHSM2 tokens: {e}\n{missing}");
            return ExitCode::FAILURE;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: current_exe: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD, "1")
        .env("SOFTHSM2_CONF", &conf)
        .env("TUATON_TEST_MODULE", &module)
        .env("TUATON_TEST_VANISH_DIR", &vanish_dir)
        .env("TUATON_TEST_MASTER_KEY", MASTER_HEX)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: could not run the conformance child: {e}");
            ExitCode::FAILURE
        }
    }
}

// ----------------------------------------------------------------- child --

struct Env {
    module: PathBuf,
    vanish_dir: PathBuf,
}

fn env() -> Env {
    Env {
        module: std::env::var_os("TUATON_TEST_MODULE").unwrap().into(),
        vanish_dir: std::env::var_os("TUATON_TEST_VANISH_DIR").unwrap().into(),
    }
}

type Case = (&'static str, fn(&Env));

fn child() -> ExitCode {
    let cases: &[Case] = &[
        (
            "round_trip_every_algorithm_verifies_with_ring",
            round_trip_every_algorithm,
        ),
        ("rsa_3072_generates_and_signs_ps256", rsa_larger_keys),
        (
            "ed25519_signs_a_message_the_same_every_time",
            ed25519_is_deterministic,
        ),
        (
            "ecdsa_raw_and_der_are_distinct_encodings",
            ecdsa_formats_are_distinct,
        ),
        (
            "algorithm_not_matching_key_is_refused",
            algorithm_mismatch_refused,
        ),
        (
            "a_digest_signed_verifies_as_its_message_would",
            digest_signing,
        ),
        ("unknown_key_gives_key_not_found", unknown_key_not_found),
        ("foreign_key_ref_is_refused", foreign_key_ref_refused),
        ("destroy_makes_key_unusable", destroy_makes_key_unusable),
        ("keys_survive_reopening_the_backend", keys_survive_reopen),
        ("concurrent_signers_all_verify", concurrent_signers),
        ("rcgen_signs_certificates_with_backend_keys", rcgen_adapter),
        ("jwk_export_matches_public_key", jwk_export),
        ("soft_sealed_file_is_not_pkcs8", soft_sealed_file_not_pkcs8),
        ("soft_wrong_master_key_fails_clearly", soft_wrong_master_key),
        (
            "soft_swapped_or_modified_file_is_detected",
            soft_tamper_detected,
        ),
        ("soft_master_key_from_env_and_file", soft_master_key_sources),
        (
            "pkcs11_private_key_is_sensitive_and_not_extractable",
            pkcs11_not_extractable,
        ),
        ("pkcs11_wrong_pin_gives_wrong_pin", pkcs11_wrong_pin),
        (
            "pkcs11_stops_logging_in_after_a_wrong_pin",
            pkcs11_stops_logging_in_after_a_wrong_pin,
        ),
        (
            "pkcs11_missing_module_gives_module_not_found",
            pkcs11_missing_module,
        ),
        (
            "pkcs11_missing_token_gives_token_not_found",
            pkcs11_missing_token,
        ),
        (
            "pkcs11_recovers_after_library_finalized_elsewhere",
            pkcs11_recovers_finalize,
        ),
        (
            "pkcs11_recovers_after_logout_elsewhere",
            pkcs11_recovers_logout,
        ),
        (
            "pkcs11_vanished_token_is_retryable_and_recovers",
            pkcs11_token_vanishes,
        ),
        ("debug_output_shows_no_pin_or_key_bytes", debug_is_redacted),
    ];
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<&Case> = cases
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    let env = env();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, case) in &selected {
        let start = Instant::now();
        let result = std::panic::catch_unwind(|| case(&env));
        let secs = start.elapsed().as_secs_f32();
        match result {
            Ok(()) => println!("test {name} ... ok ({secs:.1}s)"),
            Err(_) => {
                println!("test {name} ... FAILED ({secs:.1}s)");
                failed.push(*name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len()
    );
    for f in &failed {
        println!("    {f}");
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// --------------------------------------------------------------- helpers --

struct Subject {
    name: &'static str,
    backend: Arc<dyn KeyBackend>,
    _dir: Option<tempfile::TempDir>,
}

fn master() -> MasterKey {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(MASTER_HEX, &mut bytes).unwrap();
    MasterKey::from_bytes(bytes)
}

fn soft() -> (SoftwareBackend, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let b = SoftwareBackend::open(dir.path().join("keys"), master()).unwrap();
    (b, dir)
}

fn pkcs11_config(env: &Env, token: &str, pin: &str) -> Pkcs11Config {
    Pkcs11Config::new(&env.module, token, Pin::new(pin))
}

fn pkcs11(env: &Env) -> Pkcs11Backend {
    Pkcs11Backend::open(pkcs11_config(env, MAIN_TOKEN, PIN)).unwrap()
}

fn subjects(env: &Env) -> Vec<Subject> {
    let (s, dir) = soft();
    vec![
        Subject {
            name: "soft",
            backend: Arc::new(s),
            _dir: Some(dir),
        },
        Subject {
            name: "pkcs11",
            backend: Arc::new(pkcs11(env)),
            _dir: None,
        },
    ]
}

const PAIRS: &[(KeySpec, SignatureAlgorithm)] = &[
    (KeySpec::EcP256, SignatureAlgorithm::Es256),
    (KeySpec::EcP384, SignatureAlgorithm::Es384),
    (KeySpec::Ed25519, SignatureAlgorithm::EdDsa),
    (KeySpec::Rsa2048, SignatureAlgorithm::Rs256),
    (KeySpec::Rsa2048, SignatureAlgorithm::Ps256),
];

fn formats(alg: SignatureAlgorithm) -> &'static [SignatureFormat] {
    if alg.is_ecdsa() {
        &[SignatureFormat::Raw, SignatureFormat::Der]
    } else {
        &[SignatureFormat::Raw]
    }
}

/// Signs and checks with ring directly from the SPKI the backend reported.
fn assert_signs_and_verifies(s: &Subject, key: &KeyRef, alg: SignatureAlgorithm) {
    let public = s.backend.public_key(key).unwrap();
    let msg = format!("tuaton {} {alg}", s.name);
    for &format in formats(alg) {
        let sig = s.backend.sign(key, alg, format, msg.as_bytes()).unwrap();
        public
            .verify(alg, format, msg.as_bytes(), &sig)
            .unwrap_or_else(|e| panic!("{} {alg} {format:?}: {e}", s.name));
        assert!(
            matches!(
                public.verify(alg, format, b"another message", &sig),
                Err(KeyError::BadSignature)
            ),
            "{} {alg}: signature verified over the wrong message",
            s.name
        );
        verify_with_ring_spki(public.spki_der(), alg, format, msg.as_bytes(), &sig);
    }
}

/// An independent check: take the key out of the SPKI with x509-parser and
/// verify with ring, without going through `PublicKey::verify`.
fn verify_with_ring_spki(
    spki: &[u8],
    alg: SignatureAlgorithm,
    format: SignatureFormat,
    msg: &[u8],
    sig: &[u8],
) {
    use ring::signature as rs;
    use x509_parser::prelude::FromDer;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).unwrap();
    let algo: &dyn rs::VerificationAlgorithm = match (alg, format) {
        (SignatureAlgorithm::Es256, SignatureFormat::Raw) => &rs::ECDSA_P256_SHA256_FIXED,
        (SignatureAlgorithm::Es256, SignatureFormat::Der) => &rs::ECDSA_P256_SHA256_ASN1,
        (SignatureAlgorithm::Es384, SignatureFormat::Raw) => &rs::ECDSA_P384_SHA384_FIXED,
        (SignatureAlgorithm::Es384, SignatureFormat::Der) => &rs::ECDSA_P384_SHA384_ASN1,
        (SignatureAlgorithm::EdDsa, _) => &rs::ED25519,
        (SignatureAlgorithm::Rs256, _) => &rs::RSA_PKCS1_2048_8192_SHA256,
        (SignatureAlgorithm::Ps256, _) => &rs::RSA_PSS_2048_8192_SHA256,
    };
    rs::UnparsedPublicKey::new(algo, &info.subject_public_key.data)
        .verify(msg, sig)
        .unwrap();
}

// ----------------------------------------------------------------- cases --

fn round_trip_every_algorithm(env: &Env) {
    for s in subjects(env) {
        let mut rsa: Option<KeyRef> = None;
        for &(spec, alg) in PAIRS {
            let key = match (spec, &rsa) {
                (KeySpec::Rsa2048, Some(k)) => k.clone(),
                _ => s
                    .backend
                    .generate(spec, &format!("conformance {spec}"))
                    .unwrap(),
            };
            if spec == KeySpec::Rsa2048 {
                rsa = Some(key.clone());
            }
            assert_eq!(s.backend.public_key(&key).unwrap().spec(), spec);
            assert_eq!(key.to_string().parse::<KeyRef>().unwrap(), key);
            assert_signs_and_verifies(&s, &key, alg);
        }
    }
}

/// RFC 8032: an Ed25519 signature is a function of the key and the
/// message. Tuaton derives the passkey sealing key from one, so every
/// backend must give the same bytes each time, also after reopening.
fn ed25519_is_deterministic(env: &Env) {
    let sign = |b: &dyn KeyBackend, key: &KeyRef, message: &[u8]| {
        b.sign(
            key,
            SignatureAlgorithm::EdDsa,
            SignatureFormat::Raw,
            message,
        )
        .unwrap()
    };
    for s in subjects(env) {
        let key = s
            .backend
            .generate(KeySpec::Ed25519, "deterministic")
            .unwrap();
        let first = sign(s.backend.as_ref(), &key, b"label");
        assert_eq!(
            first,
            sign(s.backend.as_ref(), &key, b"label"),
            "{}",
            s.name
        );
        assert_ne!(
            first,
            sign(s.backend.as_ref(), &key, b"other"),
            "{}",
            s.name
        );
    }
    // The same key, the token opened again.
    let pkcs = pkcs11(env);
    let key = pkcs
        .generate(KeySpec::Ed25519, "deterministic reopened")
        .unwrap();
    let before = sign(&pkcs, &key, b"label");
    drop(pkcs);
    assert_eq!(
        before,
        sign(&pkcs11(env), &key, b"label"),
        "after reopening"
    );
}

fn rsa_larger_keys(env: &Env) {
    for s in subjects(env) {
        let key = s.backend.generate(KeySpec::Rsa3072, "rsa 3072").unwrap();
        assert_eq!(s.backend.public_key(&key).unwrap().spec(), KeySpec::Rsa3072);
        assert_signs_and_verifies(&s, &key, SignatureAlgorithm::Ps256);
        s.backend.destroy(&key).unwrap();
    }
}

fn ecdsa_formats_are_distinct(env: &Env) {
    for s in subjects(env) {
        let key = s.backend.generate(KeySpec::EcP384, "formats").unwrap();
        let public = s.backend.public_key(&key).unwrap();
        let alg = SignatureAlgorithm::Es384;
        let raw = s
            .backend
            .sign(&key, alg, SignatureFormat::Raw, b"m")
            .unwrap();
        let der = s
            .backend
            .sign(&key, alg, SignatureFormat::Der, b"m")
            .unwrap();
        assert_eq!(raw.len(), 96, "{}: raw P-384 signature is r||s", s.name);
        assert_eq!(der[0], 0x30, "{}: DER signature is a SEQUENCE", s.name);
        assert!(
            public
                .verify(alg, SignatureFormat::Der, b"m", &raw)
                .is_err()
        );
        assert!(
            public
                .verify(alg, SignatureFormat::Raw, b"m", &der)
                .is_err()
        );
    }
}

/// A digest computed here and signed by the backend verifies as a
/// signature over the message it is the digest of; a digest of the wrong
/// length, an algorithm without digest signing, and a key of another type
/// are refused.
fn digest_signing(env: &Env) {
    use ring::digest::{SHA256, digest};
    for s in subjects(env) {
        let key = s.backend.generate(KeySpec::EcP256, "digest").unwrap();
        let public = s.backend.public_key(&key).unwrap();
        let msg = format!("signHash {}", s.name);
        let hash = digest(&SHA256, msg.as_bytes());
        for &format in formats(SignatureAlgorithm::Es256) {
            let sig = s
                .backend
                .sign_digest(&key, SignatureAlgorithm::Es256, format, hash.as_ref())
                .unwrap();
            public
                .verify(SignatureAlgorithm::Es256, format, msg.as_bytes(), &sig)
                .unwrap_or_else(|e| panic!("{} {format:?}: {e}", s.name));
            verify_with_ring_spki(
                public.spki_der(),
                SignatureAlgorithm::Es256,
                format,
                msg.as_bytes(),
                &sig,
            );
        }
        let short = s.backend.sign_digest(
            &key,
            SignatureAlgorithm::Es256,
            SignatureFormat::Der,
            &hash.as_ref()[..31],
        );
        assert!(
            matches!(
                short,
                Err(KeyError::DigestLength {
                    expected: 32,
                    got: 31,
                    ..
                })
            ),
            "{}: {short:?}",
            s.name
        );
        let rsa = s.backend.sign_digest(
            &key,
            SignatureAlgorithm::Rs256,
            SignatureFormat::Raw,
            hash.as_ref(),
        );
        assert!(
            matches!(rsa, Err(KeyError::AlgorithmNotSupportedHere { .. })),
            "{}: {rsa:?}",
            s.name
        );
        let ed = s.backend.generate(KeySpec::Ed25519, "digest ed").unwrap();
        let other = s.backend.sign_digest(
            &ed,
            SignatureAlgorithm::Es256,
            SignatureFormat::Raw,
            hash.as_ref(),
        );
        assert!(
            matches!(other, Err(KeyError::AlgorithmMismatch { .. })),
            "{}: {other:?}",
            s.name
        );
    }
}

fn algorithm_mismatch_refused(env: &Env) {
    for s in subjects(env) {
        let key = s.backend.generate(KeySpec::Ed25519, "mismatch").unwrap();
        let err = s
            .backend
            .sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"x")
            .unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::AlgorithmMismatch {
                    spec: KeySpec::Ed25519,
                    ..
                }
            ),
            "{}: {err:?}",
            s.name
        );
    }
}

fn unknown_key_not_found(env: &Env) {
    for s in subjects(env) {
        let unknown: KeyRef = match s.name {
            "soft" => "soft:00000000000000000000000000000000".parse().unwrap(),
            _ => format!("pkcs11:token={MAIN_TOKEN};id=%de%ad%be%ef;type=private")
                .parse()
                .unwrap(),
        };
        let err = s
            .backend
            .sign(
                &unknown,
                SignatureAlgorithm::Es256,
                SignatureFormat::Raw,
                b"x",
            )
            .unwrap_err();
        assert!(
            matches!(err, KeyError::KeyNotFound { .. }),
            "{}: {err:?}",
            s.name
        );
        assert!(!err.is_retryable());
        let err = s.backend.public_key(&unknown).unwrap_err();
        assert!(
            matches!(err, KeyError::KeyNotFound { .. }),
            "{}: {err:?}",
            s.name
        );
    }
}

fn foreign_key_ref_refused(env: &Env) {
    for s in subjects(env) {
        let foreign: KeyRef = match s.name {
            "soft" => "pkcs11:token=x;id=%01;type=private".parse().unwrap(),
            _ => "pkcs11:token=some-other-token;id=%01;type=private"
                .parse()
                .unwrap(),
        };
        let err = s.backend.public_key(&foreign).unwrap_err();
        assert!(
            matches!(err, KeyError::ForeignKeyRef { .. }),
            "{}: {err:?}",
            s.name
        );
    }
}

fn destroy_makes_key_unusable(env: &Env) {
    for s in subjects(env) {
        let key = s.backend.generate(KeySpec::EcP256, "to destroy").unwrap();
        s.backend
            .sign(
                &key,
                SignatureAlgorithm::Es256,
                SignatureFormat::Raw,
                b"before",
            )
            .unwrap();
        s.backend.destroy(&key).unwrap();
        let err = s
            .backend
            .sign(
                &key,
                SignatureAlgorithm::Es256,
                SignatureFormat::Raw,
                b"after",
            )
            .unwrap_err();
        assert!(
            matches!(err, KeyError::KeyNotFound { .. }),
            "{}: {err:?}",
            s.name
        );
        assert!(matches!(
            s.backend.public_key(&key),
            Err(KeyError::KeyNotFound { .. })
        ));
        assert!(matches!(
            s.backend.destroy(&key),
            Err(KeyError::KeyNotFound { .. })
        ));
    }
    // On the token, neither half is left.
    let b = pkcs11(env);
    let key = b.generate(KeySpec::EcP256, "to destroy 2").unwrap();
    let (_, id) = key.pkcs11_id().unwrap();
    let id = id.to_vec();
    b.destroy(&key).unwrap();
    let session = open_user_session(&b);
    let left = session.find_objects(&[Attribute::Id(id)]).unwrap();
    assert!(left.is_empty(), "objects left on the token: {}", left.len());
}

fn keys_survive_reopen(env: &Env) {
    let dir = tempfile::tempdir().unwrap();
    let key = {
        let b = SoftwareBackend::open(dir.path(), master()).unwrap();
        b.generate(KeySpec::EcP256, "persistent").unwrap()
    };
    let b = SoftwareBackend::open(dir.path(), master())
        .unwrap()
        .with_key_cache(false);
    let sig = b
        .sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"m")
        .unwrap();
    b.public_key(&key)
        .unwrap()
        .verify(SignatureAlgorithm::Es256, SignatureFormat::Raw, b"m", &sig)
        .unwrap();

    let key = pkcs11(env).generate(KeySpec::EcP256, "persistent").unwrap();
    let b = pkcs11(env);
    let sig = b
        .sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"m")
        .unwrap();
    b.public_key(&key)
        .unwrap()
        .verify(SignatureAlgorithm::Es256, SignatureFormat::Raw, b"m", &sig)
        .unwrap();
}

fn concurrent_signers(env: &Env) {
    for s in subjects(env) {
        let key = s.backend.generate(KeySpec::EcP256, "concurrent").unwrap();
        let public = s.backend.public_key(&key).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (backend, key, public) = (&s.backend, &key, &public);
                scope.spawn(move || {
                    for i in 0..50 {
                        let msg = format!("{t}/{i}");
                        let sig = backend
                            .sign(
                                key,
                                SignatureAlgorithm::Es256,
                                SignatureFormat::Der,
                                msg.as_bytes(),
                            )
                            .unwrap();
                        public
                            .verify(
                                SignatureAlgorithm::Es256,
                                SignatureFormat::Der,
                                msg.as_bytes(),
                                &sig,
                            )
                            .unwrap();
                    }
                });
            }
        });
    }
}

fn rcgen_adapter(env: &Env) {
    use x509_parser::prelude::{FromDer, X509Certificate};
    for s in subjects(env) {
        let rsa = s.backend.generate(KeySpec::Rsa2048, "ca rsa").unwrap();
        for (spec, alg) in [
            (KeySpec::EcP256, SignatureAlgorithm::Es256),
            (KeySpec::EcP384, SignatureAlgorithm::Es384),
            (KeySpec::Ed25519, SignatureAlgorithm::EdDsa),
            (KeySpec::Rsa2048, SignatureAlgorithm::Rs256),
        ] {
            let key = if spec == KeySpec::Rsa2048 {
                rsa.clone()
            } else {
                s.backend.generate(spec, "ca").unwrap()
            };
            let signer = BackendSigningKey::new(Arc::clone(&s.backend), key, alg).unwrap();
            let params = rcgen::CertificateParams::new(vec!["tuaton.test".to_owned()]).unwrap();
            let cert = params.self_signed(&signer).unwrap();
            let (_, parsed) = X509Certificate::from_der(cert.der()).unwrap();
            assert_eq!(parsed.public_key().raw, signer.public_key().spki_der());
            signer
                .public_key()
                .verify(
                    alg,
                    SignatureFormat::Der,
                    parsed.tbs_certificate.as_ref(),
                    &parsed.signature_value.data,
                )
                .unwrap_or_else(|e| panic!("{} {alg}: certificate signature: {e}", s.name));
        }
        let err = BackendSigningKey::new(Arc::clone(&s.backend), rsa, SignatureAlgorithm::Ps256)
            .unwrap_err();
        assert!(matches!(err, KeyError::AlgorithmNotSupportedHere { .. }));
    }
}

fn jwk_export(env: &Env) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for s in subjects(env) {
        let key = s.backend.generate(KeySpec::EcP256, "jwk").unwrap();
        let public = s.backend.public_key(&key).unwrap();
        let jwk = public.to_jwk("kid-1");
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["kid"], "kid-1");
        let x = b64.decode(jwk["x"].as_str().unwrap()).unwrap();
        let y = b64.decode(jwk["y"].as_str().unwrap()).unwrap();
        assert_eq!([&[4u8][..], &x, &y].concat(), public.raw());

        let key = s.backend.generate(KeySpec::Rsa2048, "jwk rsa").unwrap();
        let jwk = s.backend.public_key(&key).unwrap().to_jwk("kid-2");
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(b64.decode(jwk["n"].as_str().unwrap()).unwrap().len(), 256);
        assert_eq!(jwk["e"], "AQAB");

        let key = s.backend.generate(KeySpec::Ed25519, "jwk ed").unwrap();
        let jwk = s.backend.public_key(&key).unwrap().to_jwk("kid-3");
        assert_eq!(
            (jwk["kty"].as_str(), jwk["crv"].as_str()),
            (Some("OKP"), Some("Ed25519"))
        );
    }
}

fn soft_sealed_file_not_pkcs8(_env: &Env) {
    let (b, _dir) = soft();
    for spec in [KeySpec::EcP256, KeySpec::Ed25519, KeySpec::Rsa2048] {
        let key = b.generate(spec, "sealed").unwrap();
        let bytes = std::fs::read(b.sealed_path(&key).unwrap()).unwrap();
        let rng = ring::rand::SystemRandom::new();
        // No prefix or suffix of the file parses as a private key...
        for start in 0..64.min(bytes.len()) {
            let tail = &bytes[start..];
            assert!(
                ring::signature::EcdsaKeyPair::from_pkcs8(
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    tail,
                    &rng
                )
                .is_err()
            );
            assert!(ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(tail).is_err());
            assert!(ring::signature::RsaKeyPair::from_pkcs8(tail).is_err());
        }
        // ...and the algorithm OIDs a plaintext PKCS#8 carries are absent.
        for oid in [
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01][..],
            &[0x06, 0x03, 0x2b, 0x65, 0x70][..],
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01][..],
        ] {
            assert!(
                !bytes.windows(oid.len()).any(|w| w == oid),
                "{spec}: OID in clear"
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(b.sealed_path(&key).unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "sealed file readable by others");
        }
    }
}

fn soft_wrong_master_key(_env: &Env) {
    let dir = tempfile::tempdir().unwrap();
    let key = SoftwareBackend::open(dir.path(), master())
        .unwrap()
        .generate(KeySpec::EcP256, "mk")
        .unwrap();
    let other = SoftwareBackend::open(dir.path(), MasterKey::from_bytes([9; 32])).unwrap();
    let err = other
        .sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"x")
        .unwrap_err();
    assert!(matches!(err, KeyError::WrongMasterKey { .. }), "{err:?}");
    assert!(err.to_string().contains("different master key"));
    assert!(matches!(
        other.public_key(&key),
        Err(KeyError::WrongMasterKey { .. })
    ));
}

fn soft_tamper_detected(_env: &Env) {
    let (b, _dir) = soft();
    let b = b.with_key_cache(false);
    let k1 = b.generate(KeySpec::EcP256, "one").unwrap();
    let k2 = b.generate(KeySpec::EcP256, "two").unwrap();
    let (p1, p2) = (b.sealed_path(&k1).unwrap(), b.sealed_path(&k2).unwrap());
    // Swap: key two's file under key one's name.
    std::fs::copy(&p2, &p1).unwrap();
    let err = b.public_key(&k1).unwrap_err();
    assert!(matches!(err, KeyError::SealedKeyCorrupt { .. }), "{err:?}");
    // Modify one ciphertext byte.
    let mut bytes = std::fs::read(&p2).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&p2, &bytes).unwrap();
    let err = b.public_key(&k2).unwrap_err();
    assert!(matches!(err, KeyError::SealedKeyCorrupt { .. }), "{err:?}");
    // Edit the label in the header.
    bytes[last] ^= 1;
    let label_at = bytes.windows(3).position(|w| w == b"two").unwrap();
    bytes[label_at] = b'T';
    std::fs::write(&p2, &bytes).unwrap();
    assert!(matches!(
        b.public_key(&k2),
        Err(KeyError::SealedKeyCorrupt { .. })
    ));
}

fn soft_master_key_sources(_env: &Env) {
    let from_env = MasterKey::from_env("TUATON_TEST_MASTER_KEY").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = SoftwareBackend::open(dir.path(), master())
        .unwrap()
        .generate(KeySpec::Ed25519, "env")
        .unwrap();
    SoftwareBackend::open(dir.path(), from_env)
        .unwrap()
        .sign(&key, SignatureAlgorithm::EdDsa, SignatureFormat::Raw, b"x")
        .unwrap();
    let err = MasterKey::from_env("TUATON_TEST_NO_SUCH_VARIABLE").unwrap_err();
    assert!(matches!(err, KeyError::MasterKeyUnavailable { .. }));

    let file = dir.path().join("master.key");
    let created = MasterKey::create_file(&file).unwrap();
    let key = SoftwareBackend::open(dir.path().join("k2"), created)
        .unwrap()
        .generate(KeySpec::EcP256, "file")
        .unwrap();
    let read = MasterKey::from_file(&file).unwrap();
    SoftwareBackend::open(dir.path().join("k2"), read)
        .unwrap()
        .sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"x")
        .unwrap();
    assert!(
        MasterKey::create_file(&file).is_err(),
        "create_file overwrote a key"
    );
    std::fs::write(&file, "too short").unwrap();
    assert!(matches!(
        MasterKey::from_file(&file),
        Err(KeyError::MalformedMasterKey { .. })
    ));
}

/// The slot holding the token labelled `label`.
fn slot_of(ctx: &Pkcs11, label: &str) -> cryptoki::slot::Slot {
    ctx.get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == label)
        .unwrap()
}

fn open_user_session(b: &Pkcs11Backend) -> cryptoki::session::Session {
    // The backend is logged in, so this session is too (login is per app).
    b.context()
        .open_ro_session(slot_of(b.context(), b.token_label()))
        .unwrap()
}

fn pkcs11_not_extractable(env: &Env) {
    let b = pkcs11(env);
    for spec in [KeySpec::EcP256, KeySpec::Ed25519, KeySpec::Rsa2048] {
        let key = b.generate(spec, "non-extractable").unwrap();
        let (_, id) = key.pkcs11_id().unwrap();
        let session = open_user_session(&b);
        let handle = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(id.to_vec()),
            ])
            .unwrap()[0];
        let info = session
            .get_attribute_info(
                handle,
                &[AttributeType::Value, AttributeType::PrivateExponent],
            )
            .unwrap();
        for i in &info {
            assert!(
                matches!(i, AttributeInfo::Sensitive | AttributeInfo::TypeInvalid),
                "{spec}: private value readable: {i:?}"
            );
        }
        assert!(info.iter().any(|i| matches!(i, AttributeInfo::Sensitive)));
        let attrs = session
            .get_attributes(
                handle,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::Token,
                ],
            )
            .unwrap();
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => assert!(v, "{spec}: CKA_SENSITIVE false"),
                Attribute::Extractable(v) => assert!(!v, "{spec}: CKA_EXTRACTABLE true"),
                Attribute::NeverExtractable(v) => assert!(v, "{spec}: was extractable"),
                Attribute::AlwaysSensitive(v) => assert!(v, "{spec}: was not sensitive"),
                Attribute::Token(v) => assert!(v, "{spec}: session object"),
                other => panic!("unexpected {other:?}"),
            }
        }
        // Nothing can change the key to extractable.
        assert!(
            session
                .update_attributes(handle, &[Attribute::Extractable(true)])
                .is_err()
        );
    }
}

fn pkcs11_wrong_pin(env: &Env) {
    let err = Pkcs11Backend::open(pkcs11_config(env, MAIN_TOKEN, "not-the-pin")).unwrap_err();
    // Login state is per application: log the process out first so the PIN
    // is actually checked, then make sure the good PIN still works.
    assert!(
        matches!(err, KeyError::WrongPin) || {
            let b = pkcs11(env);
            open_user_session(&b).logout().unwrap();
            drop(b);
            matches!(
                Pkcs11Backend::open(pkcs11_config(env, MAIN_TOKEN, "not-the-pin")),
                Err(KeyError::WrongPin)
            )
        },
        "{err:?}"
    );
    assert!(!KeyError::WrongPin.is_retryable());
    assert!(!KeyError::WrongPin.to_string().contains("not-the-pin"));
    pkcs11(env);
}

fn pkcs11_stops_logging_in_after_a_wrong_pin(env: &Env) {
    let b = pkcs11(env);
    let key = b.generate(KeySpec::EcP256, "pin-change").unwrap();
    b.sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"1")
        .unwrap();
    // The user PIN is changed behind the service's back, and the token
    // forgets the login (as after an HSM restart).
    let session = b
        .context()
        .open_rw_session(slot_of(b.context(), MAIN_TOKEN))
        .unwrap();
    let changed = cryptoki::types::AuthPin::new("changed-pin-91".into());
    session
        .set_pin(&cryptoki::types::AuthPin::new(PIN.into()), &changed)
        .unwrap();
    session.logout().unwrap();
    drop(session);
    let before = b.login_attempts();
    for i in 0..5 {
        let err = b
            .sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"2")
            .unwrap_err();
        assert!(matches!(err, KeyError::WrongPin), "attempt {i}: {err:?}");
    }
    assert_eq!(
        b.login_attempts(),
        before + 1,
        "one refused login, then no more attempts that would lock the token"
    );
    drop(b);
    // Put the PIN back for the other cases.
    let ctx = Pkcs11::new(&env.module).unwrap();
    let _ = ctx.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    let session = ctx.open_rw_session(slot_of(&ctx, MAIN_TOKEN)).unwrap();
    let _ = session.logout();
    session
        .login(cryptoki::session::UserType::User, Some(&changed))
        .unwrap();
    session
        .set_pin(&changed, &cryptoki::types::AuthPin::new(PIN.into()))
        .unwrap();
    session.logout().unwrap();
    pkcs11(env);
}

fn pkcs11_missing_module(env: &Env) {
    let mut config = pkcs11_config(env, MAIN_TOKEN, PIN);
    config.module_path = "/nonexistent/libnothing.so".into();
    let err = Pkcs11Backend::open(config).unwrap_err();
    assert!(matches!(err, KeyError::ModuleNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/libnothing.so"));
}

fn pkcs11_missing_token(env: &Env) {
    let err = Pkcs11Backend::open(pkcs11_config(env, "no-such-token", PIN)).unwrap_err();
    assert!(
        matches!(&err, KeyError::TokenNotFound { label } if label == "no-such-token"),
        "{err:?}"
    );
}

fn pkcs11_recovers_finalize(env: &Env) {
    let b = pkcs11(env);
    let key = b.generate(KeySpec::EcP256, "recover").unwrap();
    let public = b.public_key(&key).unwrap();
    b.sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"1")
        .unwrap();
    // Someone else in the process finalises the module: every session and
    // the login are gone, as after an HSM or proxy restart.
    Pkcs11::new(&env.module).unwrap().finalize().unwrap();
    let sig = b
        .sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"2")
        .unwrap();
    public
        .verify(SignatureAlgorithm::Es256, SignatureFormat::Raw, b"2", &sig)
        .unwrap();
}

fn pkcs11_recovers_logout(env: &Env) {
    let b = pkcs11(env);
    let key = b.generate(KeySpec::EcP256, "relogin").unwrap();
    b.sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"1")
        .unwrap();
    open_user_session(&b).logout().unwrap();
    b.sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"2")
        .unwrap();
}

fn pkcs11_token_vanishes(env: &Env) {
    let b = Pkcs11Backend::open(pkcs11_config(env, VANISH_TOKEN, PIN)).unwrap();
    let key = b.generate(KeySpec::EcP256, "vanishing").unwrap();
    b.sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"1")
        .unwrap();
    // Outside the token directory: SoftHSM2 treats every directory in it
    // as a token, whatever its name.
    let away = env
        .vanish_dir
        .parent()
        .unwrap()
        .with_file_name("vanished-token");
    std::fs::rename(&env.vanish_dir, &away).unwrap();
    // SoftHSM2 2.6 then reports CKR_KEY_HANDLE_INVALID for the key and
    // CKR_GENERAL_ERROR from C_GetTokenInfo, and keeps the token failed
    // until C_Initialize. Every call must fail retryably meanwhile.
    let signing = b.sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"2");
    let health = b.check_health();
    let lookup = b.public_key(&key);
    std::fs::rename(&away, &env.vanish_dir).unwrap();
    for result in [signing.map(|_| ()), health, lookup.map(|_| ())] {
        let err = result.expect_err("the key was usable with its token directory gone");
        assert!(err.is_retryable(), "not retryable: {err:?}");
    }
    // A caller retries with backoff; the backend re-initialises the module
    // at most once a second, so give it a few seconds.
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    let sig = loop {
        match b.sign(&key, SignatureAlgorithm::Es256, SignatureFormat::Raw, b"3") {
            Ok(sig) => break sig,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => panic!("did not recover: {e:?}"),
        }
    };
    b.check_health().unwrap();
    b.public_key(&key)
        .unwrap()
        .verify(SignatureAlgorithm::Es256, SignatureFormat::Raw, b"3", &sig)
        .unwrap();
}

fn debug_is_redacted(env: &Env) {
    let b = pkcs11(env);
    let config = pkcs11_config(env, MAIN_TOKEN, PIN);
    let (s, _dir) = soft();
    let key = s.generate(KeySpec::EcP256, "debug").unwrap();
    let texts = [
        format!("{b:?}"),
        format!("{config:?}"),
        format!("{:?}", Pin::new(PIN)),
        format!("{s:?}"),
        format!("{:?}", master()),
        format!(
            "{:?}",
            MasterKey::from_env("TUATON_TEST_MASTER_KEY").unwrap()
        ),
        format!("{:?}", KeyError::WrongPin),
        format!("{:?}", s.public_key(&key).unwrap()),
    ];
    use base64::Engine as _;
    let mut master_bytes = [0u8; 32];
    hex::decode_to_slice(MASTER_HEX, &mut master_bytes).unwrap();
    let forbidden = [
        PIN.to_owned(),
        SO_PIN.to_owned(),
        MASTER_HEX.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(master_bytes),
        format!("{master_bytes:?}"),
        hex::encode(&master_bytes[..8]),
    ];
    for t in &texts {
        for f in &forbidden {
            assert!(!t.contains(f.as_str()), "secret in Debug output: {t}");
        }
    }
    assert!(texts[0].contains("[redacted]") && texts[1].contains("[redacted]"));
    assert!(texts[3].contains("[redacted]"));
    // The session count is printed, the pool works: make the test fail if
    // it were to print the wrong thing.
    assert!(texts[0].contains("pkcs11") || texts[0].contains("Pkcs11Backend"));
    let _ = UserType::User;
}
