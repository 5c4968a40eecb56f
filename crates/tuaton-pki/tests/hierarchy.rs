//! The CA hierarchy made with keys in the software backend, judged by
//! `openssl verify` (a peer nobody here wrote) for each purpose, and its
//! extensions read back with x509-parser.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ::time::{Duration, OffsetDateTime};
use tuaton_core::{CitizenId, Ial, JuristicId};
use tuaton_keys::{KeyBackend, KeySpec, MasterKey, SignatureAlgorithm, SoftwareBackend};
use tuaton_pki::{Authority, BackendKey, CaSettings, Issued, Signer};
use url::Url;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

struct Kit {
    _dir: tempfile::TempDir,
    backend: Arc<dyn KeyBackend>,
}

fn kit() -> Kit {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn KeyBackend> = Arc::new(
        SoftwareBackend::open(dir.path().join("keys"), MasterKey::from_bytes([7; 32])).unwrap(),
    );
    Kit { _dir: dir, backend }
}

fn key<'a>(kit: &'a Kit, spec: KeySpec, alg: SignatureAlgorithm) -> BackendKey<'a> {
    BackendKey {
        backend: &kit.backend,
        key: kit.backend.generate(spec, "pki test").unwrap(),
        alg,
    }
}

fn p256(kit: &Kit) -> BackendKey<'_> {
    key(kit, KeySpec::EcP256, SignatureAlgorithm::Es256)
}

fn settings() -> CaSettings {
    CaSettings::development(&Url::parse("http://localhost:8080").unwrap()).unwrap()
}

/// `openssl verify` of `leaf` under `root` through `issuing` for `purpose`;
/// its output on failure.
fn openssl_verify(
    dir: &Path,
    root: &Issued,
    issuing: &Issued,
    leaf: &Issued,
    purpose: &str,
) -> Result<(), String> {
    let write = |name: &str, c: &Issued| {
        let p = dir.join(name);
        std::fs::write(&p, c.pem()).unwrap();
        p
    };
    let (r, i, l) = (
        write("root.pem", root),
        write("issuing.pem", issuing),
        write("leaf.pem", leaf),
    );
    let out = Command::new("openssl")
        .args([
            "verify",
            "-x509_strict",
            "-policy_check",
            "-purpose",
            purpose,
            "-CAfile",
        ])
        .arg(&r)
        .arg("-untrusted")
        .arg(&i)
        .arg(&l)
        .output()
        .expect("openssl is installed (scripts/install-test-deps)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains(": OK") {
        Ok(())
    } else {
        Err(text)
    }
}

fn parsed(c: &Issued) -> X509Certificate<'_> {
    X509Certificate::from_der(c.der()).unwrap().1
}

fn somchai() -> CitizenId {
    CitizenId::parse("1-9990-00000-01-7").unwrap()
}

#[test]
fn the_hierarchy_verifies_with_openssl_for_each_purpose() {
    let kit = kit();
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let s = settings();
    let root = Authority::new_root(
        &p256(&kit),
        "root-1",
        &s,
        "Tuaton Root CA (development)",
        Duration::days(3650),
        now,
    )
    .unwrap();
    let issuing = root
        .issue_ca(
            &p256(&kit),
            "issuing-1",
            "Tuaton Issuing CA 1 (development)",
            Duration::days(1825),
            now,
        )
        .unwrap();
    let tsa = issuing
        .issue_tsa(&p256(&kit), "Tuaton TSA 1", Duration::days(730), now)
        .unwrap();
    let ocsp = issuing
        .issue_ocsp(&p256(&kit), "Tuaton OCSP 1", Duration::days(30), now)
        .unwrap();
    let citizen = somchai();
    let signer = issuing
        .issue_signer(
            &p256(&kit),
            &Signer::Citizen {
                given_name: "Somchai",
                family_name: "Jaidee",
                citizen_id: &citizen,
                ial: Ial::Ial2_1,
            },
            now,
        )
        .unwrap();
    let juristic = JuristicId::parse("0105599000019").unwrap();
    let director = issuing
        .issue_signer(
            &p256(&kit),
            &Signer::Representative {
                given_name: "Somchai",
                family_name: "Jaidee",
                citizen_id: &citizen,
                ial: Ial::Ial2_2,
                company: "Siam Example Co., Ltd.",
                juristic_id: &juristic,
            },
            now,
        )
        .unwrap();
    let (r, i) = (root.certificate(), issuing.certificate());
    openssl_verify(dir.path(), r, i, &signer, "smimesign").unwrap();
    openssl_verify(dir.path(), r, i, &director, "smimesign").unwrap();
    openssl_verify(dir.path(), r, i, &tsa, "timestampsign").unwrap();
    openssl_verify(dir.path(), r, i, &ocsp, "ocsphelper").unwrap();
    // Each leaf serves its own purpose only.
    assert!(openssl_verify(dir.path(), r, i, &signer, "timestampsign").is_err());
    assert!(openssl_verify(dir.path(), r, i, &tsa, "sslserver").is_err());
    // Without the issuing CA there is no chain to the root.
    assert!(openssl_verify(dir.path(), r, r, &signer, "smimesign").is_err());

    // The root: CA, path length 1, critical; keyCertSign and cRLSign.
    let rc = parsed(r);
    let bc = rc.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint == Some(1));
    let ku = rc.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
    // The issuing CA: path length 0, its key id named by what it issues.
    let ic = parsed(i);
    assert_eq!(
        ic.basic_constraints()
            .unwrap()
            .unwrap()
            .value
            .path_len_constraint,
        Some(0)
    );
    let ski = ic
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .unwrap();
    for leaf in [&signer, &tsa, &ocsp, &director] {
        let c = parsed(leaf);
        let aki = c
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(aki, ski);
        assert!(c.validity().not_after <= ic.validity().not_after);
        assert!(!c.basic_constraints().unwrap().is_some_and(|b| b.value.ca));
    }

    // The TSA: the one extended key usage timeStamping, critical (RFC 3161 §2.3).
    let t = parsed(&tsa);
    let eku = t.extended_key_usage().unwrap().unwrap();
    assert!(
        eku.critical && eku.value.time_stamping && !eku.value.any && eku.value.other.is_empty()
    );
    assert!(!eku.value.server_auth && !eku.value.client_auth && !eku.value.ocsp_signing);
    // The OCSP responder: OCSPSigning and ocsp-nocheck (RFC 6960 §4.2.2.2.1).
    let o = parsed(&ocsp);
    assert!(o.extended_key_usage().unwrap().unwrap().value.ocsp_signing);
    assert!(
        o.extensions()
            .iter()
            .any(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.48.1.5")
    );

    // The signer: digitalSignature and nonRepudiation; AIA with OCSP and the
    // issuer's certificate; the CRL; the semantics identifier; the level's policy.
    let sc = parsed(&signer);
    let ku = sc.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.non_repudiation() && !ku.key_cert_sign());
    let aia: Vec<String> = sc
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(a) => Some(
                a.accessdescs
                    .iter()
                    .map(|d| format!("{} {:?}", d.access_method.to_id_string(), d.access_location))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap();
    assert!(
        aia.iter()
            .any(|d| d.starts_with("1.3.6.1.5.5.7.48.1 ")
                && d.contains("http://localhost:8080/ocsp")),
        "{aia:?}"
    );
    assert!(
        aia.iter().any(|d| d.starts_with("1.3.6.1.5.5.7.48.2 ")
            && d.contains("http://localhost:8080/pki/ca/issuing-1.crt")),
        "{aia:?}"
    );
    assert!(sc.extensions().iter().any(|e| matches!(
        e.parsed_extension(),
        ParsedExtension::CRLDistributionPoints(_)
    )));
    let serial: Vec<&str> = sc
        .subject()
        .iter_attributes()
        .filter(|a| a.attr_type().to_id_string() == "2.5.4.5")
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(serial, ["PNOTH-1999000000017"]);
    // The level each was proofed at reads back from its policy, and only
    // under the deployment's policy arc.
    let policy = settings().policy;
    assert_eq!(
        tuaton_pki::certified_ial(signer.der(), &policy).unwrap(),
        Some(Ial::Ial2_1)
    );
    assert_eq!(
        tuaton_pki::certified_ial(director.der(), &policy).unwrap(),
        Some(Ial::Ial2_2)
    );
    let elsewhere = tuaton_pki::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.9");
    assert_eq!(
        tuaton_pki::certified_ial(signer.der(), &elsewhere).unwrap(),
        None
    );
    assert!(tuaton_pki::certified_ial(b"not a certificate", &policy).is_err());
    assert_eq!(
        sc.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "Somchai Jaidee"
    );
    let policies = |c: &X509Certificate<'_>| -> Vec<String> {
        c.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::CertificatePolicies(p) => {
                    Some(p.iter().map(|i| i.policy_id.to_id_string()).collect())
                }
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(policies(&sc), [format!("{}.2.2.1", s.policy)]);
    let dc = parsed(&director);
    assert_eq!(policies(&dc), [format!("{}.2.2.2", s.policy)]);
    let org_id: Vec<&str> = dc
        .subject()
        .iter_attributes()
        .filter(|a| a.attr_type().to_id_string() == "2.5.4.97")
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(org_id, ["NTRTH-0105599000019"]);
    // What signing reads back: the person and, for the director, the company.
    let ids = tuaton_pki::subject_ids(director.der()).unwrap();
    assert_eq!(ids.person.as_deref(), Some("PNOTH-1999000000017"));
    assert_eq!(ids.organization.as_deref(), Some("NTRTH-0105599000019"));
    let own = tuaton_pki::subject_ids(signer.der()).unwrap();
    assert_eq!(own.person.as_deref(), Some("PNOTH-1999000000017"));
    assert_eq!(own.organization, None);
    assert_eq!(
        dc.subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "Siam Example Co., Ltd."
    );
    assert_eq!(policies(&rc), [s.policy.to_string()]);
}

/// An authority rebuilt from its stored certificate and its key issues as
/// before, and refuses a key that is not the certificate's.
#[test]
fn an_authority_is_rebuilt_from_its_certificate_and_key() {
    let kit = kit();
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let s = settings();
    let root =
        Authority::new_root(&p256(&kit), "root-1", &s, "Root", Duration::days(3650), now).unwrap();
    let issuing_key = p256(&kit);
    let issuing = root
        .issue_ca(
            &issuing_key,
            "issuing-1",
            "Issuing 1",
            Duration::days(1825),
            now,
        )
        .unwrap();
    let again =
        Authority::from_certificate(issuing.certificate().der(), &issuing_key, "issuing-1", &s)
            .unwrap();
    let citizen = somchai();
    let signer = again
        .issue_signer(
            &p256(&kit),
            &Signer::Citizen {
                given_name: "Somchai",
                family_name: "Jaidee",
                citizen_id: &citizen,
                ial: Ial::Ial3,
            },
            now,
        )
        .unwrap();
    openssl_verify(
        dir.path(),
        root.certificate(),
        issuing.certificate(),
        &signer,
        "smimesign",
    )
    .unwrap();
    let wrong =
        Authority::from_certificate(issuing.certificate().der(), &p256(&kit), "issuing-1", &s);
    assert!(wrong.is_err());
    assert!(
        Authority::from_certificate(b"not a certificate", &issuing_key, "issuing-1", &s).is_err()
    );
}

/// A second issuing CA under the same root: certificates of the old one
/// keep verifying beside those of the new one (CA rotation).
#[test]
fn a_new_issuing_ca_leaves_the_old_ones_certificates_valid() {
    let kit = kit();
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let s = settings();
    let root =
        Authority::new_root(&p256(&kit), "root-1", &s, "Root", Duration::days(3650), now).unwrap();
    let old = root
        .issue_ca(
            &p256(&kit),
            "issuing-1",
            "Issuing 1",
            Duration::days(1825),
            now,
        )
        .unwrap();
    let citizen = somchai();
    let who = Signer::Citizen {
        given_name: "Somchai",
        family_name: "Jaidee",
        citizen_id: &citizen,
        ial: Ial::Ial2_1,
    };
    let before = old.issue_signer(&p256(&kit), &who, now).unwrap();
    let new = root
        .issue_ca(
            &p256(&kit),
            "issuing-2",
            "Issuing 2",
            Duration::days(1825),
            now,
        )
        .unwrap();
    let after = new.issue_signer(&p256(&kit), &who, now).unwrap();
    openssl_verify(
        dir.path(),
        root.certificate(),
        old.certificate(),
        &before,
        "smimesign",
    )
    .unwrap();
    openssl_verify(
        dir.path(),
        root.certificate(),
        new.certificate(),
        &after,
        "smimesign",
    )
    .unwrap();
    // Each leaf chains through its own issuer only.
    assert!(
        openssl_verify(
            dir.path(),
            root.certificate(),
            new.certificate(),
            &before,
            "smimesign"
        )
        .is_err()
    );
}
