//! The fixtures the signature suites share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use ::time::{Duration, OffsetDateTime};
use tuaton_core::{CitizenId, Ial};
use tuaton_keys::{KeyBackend, KeySpec, MasterKey, SignatureAlgorithm, SoftwareBackend};
use tuaton_pki::{Authority, BackendKey, CaSettings, Signer};
use tuaton_sign::{CmsSigner, TimeStamper};
use url::Url;

/// A development hierarchy in a temporary directory: a TSA, a citizen's
/// signer, the root's PEM and the TSA's chain as PEM.
pub struct Tsa {
    pub dir: tempfile::TempDir,
    pub stamper: TimeStamper,
    pub signer: CmsSigner,
    pub root: PathBuf,
    pub untrusted: PathBuf,
}

pub fn key(b: &Arc<dyn KeyBackend>) -> BackendKey<'_> {
    BackendKey {
        backend: b,
        key: b.generate(KeySpec::EcP256, "tsa test").unwrap(),
        alg: SignatureAlgorithm::Es256,
    }
}

pub fn tsa() -> Tsa {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn KeyBackend> = Arc::new(
        SoftwareBackend::open(dir.path().join("keys"), MasterKey::from_bytes([5; 32])).unwrap(),
    );
    let now = OffsetDateTime::now_utc();
    let settings = CaSettings::development(&Url::parse("http://localhost:8080").unwrap()).unwrap();
    let root = Authority::new_root(
        &key(&backend),
        "root-1",
        &settings,
        "Root",
        Duration::days(3650),
        now,
    )
    .unwrap();
    let issuing = root
        .issue_ca(
            &key(&backend),
            "issuing-1",
            "Issuing 1",
            Duration::days(1825),
            now,
        )
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
    let signer_key = key(&backend);
    let citizen = CitizenId::parse("1-9990-00000-01-7").unwrap();
    let signer_cert = issuing
        .issue_signer(
            &signer_key,
            &Signer::Citizen {
                given_name: "Somchai",
                family_name: "Jaidee",
                citizen_id: &citizen,
                ial: Ial::Ial2_1,
            },
            now,
        )
        .unwrap();
    let signer = CmsSigner::new(
        backend.clone(),
        signer_key.key.clone(),
        SignatureAlgorithm::Es256,
        signer_cert.der(),
        &[issuing.certificate().der().to_vec()],
    )
    .unwrap();
    // A certificate for another key is refused.
    assert!(
        CmsSigner::new(
            backend.clone(),
            key(&backend).key,
            SignatureAlgorithm::Es256,
            signer_cert.der(),
            &[],
        )
        .is_err()
    );
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
        signer,
        root: root_pem,
        untrusted,
    }
}

pub fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
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

/// A PDF written by hand: `objects` numbered from 1 (the first the
/// catalog), a cross-reference table and its trailer.
pub fn classic_pdf(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(o);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f\r\n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<</Size {}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// The Python test peers' interpreter (scripts/install-test-deps).
pub fn python() -> PathBuf {
    std::env::var_os("TUATON_TEST_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python"),
        PathBuf::from,
    )
}

/// Runs `program` with `args` in `dir`: whether it succeeded, and what it
/// printed on both streams.
pub fn run<S: AsRef<std::ffi::OsStr>>(program: &Path, args: &[S], dir: &Path) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} cannot run ({e}): run scripts/install-test-deps",
                program.display()
            )
        });
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
