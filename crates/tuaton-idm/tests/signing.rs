//! The certificate authority in service, driven as a front door drives it:
//! the hierarchy made through the key backend and stored, made again
//! without doubles, rotated while what the old keys certified keeps
//! validating, and the time-stamping authority answering from it, judged by
//! `openssl ts -verify`; and a person signing documents under sole
//! control: a passkey confirmation over exactly the documents' digests,
//! CAdES B-T signatures that `openssl cms -verify` accepts, and every
//! attempt to sign what was not confirmed refused without a write. On
//! SQLite, and on PostgreSQL when the run has one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use time::{Duration, OffsetDateTime};
use tuaton_core::{ErrorCode, SignatureAlgorithm};
use tuaton_idm::Idm;
use tuaton_idm::custody::{Trigger, rotate_key};
use tuaton_store::certificates::{self, CertificateRole};
use tuaton_store::keys::KeyPurpose;
use tuaton_store::on_both_engines;
use tuaton_store::testing::TestDb;

mod common;
use common::{answer, enrol_with_passkey, idm, idm_making_keys_at_enrolment, logged_in};
use tuaton_idm::DocumentDigest;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (scripts/install-test-deps)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Asks `idm`'s TSA for a token over `data` and returns the reply's file
/// name in `dir`, with the request beside it.
async fn stamp(idm: &Idm, dir: &Path, name: &str, now: OffsetDateTime) -> String {
    std::fs::write(dir.join(format!("{name}.txt")), name).unwrap();
    let (ok, text) = openssl(
        dir,
        &[
            "ts",
            "-query",
            "-data",
            &format!("{name}.txt"),
            "-sha256",
            "-cert",
            "-out",
            &format!("{name}.tsq"),
        ],
    );
    assert!(ok, "{text}");
    let request = std::fs::read(dir.join(format!("{name}.tsq"))).unwrap();
    let reply = idm.time_stamp(request, now).await.unwrap();
    std::fs::write(dir.join(format!("{name}.tsr")), reply).unwrap();
    format!("{name}.tsr")
}

fn verifies(dir: &Path, name: &str) -> (bool, String) {
    openssl(
        dir,
        &[
            "ts",
            "-verify",
            "-in",
            &format!("{name}.tsr"),
            "-queryfile",
            &format!("{name}.tsq"),
            "-CAfile",
            "root.pem",
        ],
    )
}

async fn audit_actions(db: &TestDb, action: &str) -> usize {
    tuaton_store::audit::list(&db.store, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == action && r.outcome == "success")
        .count()
}

/// The audit chain holds every record, unbroken and without gaps.
async fn chain_intact(db: &TestDb) {
    let report = tuaton_store::audit::verify(&db.store).await.unwrap();
    assert!(report.broken.is_none(), "{:?}", report.broken);
}

async fn refusals(db: &TestDb, action: &str) -> usize {
    tuaton_store::audit::list(&db.store, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == action && r.outcome != "success")
        .count()
}

async fn the_hierarchy_is_made_once_and_time_stamps_verify_with_openssl(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let idm = idm(&db, &dir.path().join("keys"));
    let now = OffsetDateTime::now_utc();

    let made = idm
        .certify_hierarchy(now, "operator:test", true)
        .await
        .unwrap();
    let roles: Vec<CertificateRole> = made.iter().map(|c| c.role).collect();
    assert_eq!(
        roles,
        [
            CertificateRole::Root,
            CertificateRole::IssuingCa,
            CertificateRole::Tsa,
            CertificateRole::Ocsp
        ]
    );
    assert_eq!(audit_actions(&db, "certificate.issued").await, 4);
    // Issuers are linked: the root has none, the issuing CA names the root,
    // the responders name the issuing CA.
    assert_eq!(made[0].issuer_id, None);
    assert_eq!(made[1].issuer_id.as_deref(), Some(made[0].id.as_str()));
    assert_eq!(made[2].issuer_id.as_deref(), Some(made[1].id.as_str()));
    assert_eq!(made[3].issuer_id.as_deref(), Some(made[1].id.as_str()));

    // Again, and twice at the same moment: nothing more is made.
    let (a, b) = tokio::join!(
        idm.certify_hierarchy(now, "operator:test", true),
        idm.certify_hierarchy(now, "operator:test", true)
    );
    assert!(a.unwrap().is_empty() && b.unwrap().is_empty());
    let stored = certificates::hierarchy(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    assert_eq!(stored.len(), 4);
    assert_eq!(audit_actions(&db, "certificate.issued").await, 4);

    // The root is published, and the issuing CA under its key's id.
    let root = idm.root_certificate(now).await.unwrap();
    assert_eq!(root, made[0].der);
    std::fs::write(dir.path().join("root.pem"), tuaton_idm::pki::pem(&root)).unwrap();
    assert_eq!(
        idm.published_ca_certificate(&made[1].key_id).await.unwrap(),
        Some(made[1].der.clone())
    );
    // A responder's certificate is not published as a CA's.
    assert_eq!(
        idm.published_ca_certificate(&made[2].key_id).await.unwrap(),
        None
    );
    assert_eq!(
        idm.published_ca_certificate("no-such-key").await.unwrap(),
        None
    );

    stamp(&idm, dir.path(), "first", now).await;
    let (ok, text) = verifies(dir.path(), "first");
    assert!(ok, "{text}");

    // A request that is not one gets a rejection, not an error.
    let reply = idm
        .time_stamp(b"not a request".to_vec(), now)
        .await
        .unwrap();
    std::fs::write(dir.path().join("bad.tsr"), reply).unwrap();
    let (_, text) = openssl(dir.path(), &["ts", "-reply", "-in", "bad.tsr", "-text"]);
    assert!(text.contains("Rejected"), "{text}");
    chain_intact(&db).await;
}

async fn a_rotated_issuing_ca_and_tsa_leave_earlier_time_stamps_valid(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let idm = idm(&db, &dir.path().join("keys"));
    let now = OffsetDateTime::now_utc();
    let first = idm
        .certify_hierarchy(now, "operator:test", true)
        .await
        .unwrap();
    std::fs::write(
        dir.path().join("root.pem"),
        tuaton_idm::pki::pem(&first[0].der),
    )
    .unwrap();
    stamp(&idm, dir.path(), "before", now).await;

    // The operator rotates the issuing CA, then the TSA; the upkeep's round
    // certifies each new key (no new keys made).
    let later = now + Duration::minutes(1);
    for purpose in [KeyPurpose::DocumentCa, KeyPurpose::Tsa] {
        rotate_key(
            &db.store,
            idm.keys().clone(),
            purpose,
            SignatureAlgorithm::Es256,
            Duration::ZERO,
            later,
            "operator:test",
            Trigger::Operator,
        )
        .await
        .unwrap();
        let made = idm.certify_hierarchy(later, "system", false).await.unwrap();
        assert_eq!(made.len(), 1, "{purpose}: {made:?}");
    }
    let all = certificates::hierarchy(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    let issuing: Vec<_> = all
        .iter()
        .filter(|c| c.role == CertificateRole::IssuingCa)
        .collect();
    assert_eq!(issuing.len(), 2);
    let new_tsa = all
        .iter()
        .filter(|c| c.role == CertificateRole::Tsa)
        .max_by_key(|c| c.created)
        .unwrap();
    assert_eq!(new_tsa.issuer_id.as_deref(), Some(issuing[1].id.as_str()));
    // One root throughout.
    assert_eq!(
        all.iter()
            .filter(|c| c.role == CertificateRole::Root)
            .count(),
        1
    );

    stamp(&idm, dir.path(), "after", later).await;
    for name in ["before", "after"] {
        let (ok, text) = verifies(dir.path(), name);
        assert!(ok, "{name}: {text}");
    }
}

async fn without_a_hierarchy_the_tsa_refuses_and_writes_nothing(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let idm = idm(&db, &dir.path().join("keys"));
    let now = OffsetDateTime::now_utc();
    let before = tuaton_store::audit::list(&db.store, 0, 10_000)
        .await
        .unwrap()
        .len();
    let e = idm.time_stamp(vec![0x30, 0x00], now).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::KeysUnavailable);
    assert!(e.to_string().contains("tuaton pki init"), "{e}");
    let e = idm.root_certificate(now).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::KeysUnavailable);
    // Certifying without making keys, with none there, makes nothing.
    assert!(
        idm.certify_hierarchy(now, "system", false)
            .await
            .unwrap()
            .is_empty()
    );
    let after = tuaton_store::audit::list(&db.store, 0, 10_000)
        .await
        .unwrap()
        .len();
    assert_eq!(before, after);
}

fn document(name: &str, bytes: &[u8]) -> DocumentDigest {
    DocumentDigest {
        name: name.into(),
        size: bytes.len() as u64,
        sha256: ring::digest::digest(&ring::digest::SHA256, bytes)
            .as_ref()
            .try_into()
            .unwrap(),
        pdf: None,
        json: None,
        xml: None,
    }
}

/// A service layer made by `make` over `db`, with its CA hierarchy
/// certified, its keys in a fresh directory, and the time it starts at.
async fn with_hierarchy(
    db: &TestDb,
    make: fn(&TestDb, &Path) -> Idm,
) -> (tempfile::TempDir, Idm, OffsetDateTime) {
    let dir = tempfile::tempdir().unwrap();
    let idm = make(db, &dir.path().join("keys"));
    let now = OffsetDateTime::now_utc();
    idm.certify_hierarchy(now, "operator:test", true)
        .await
        .unwrap();
    (dir, idm, now)
}

/// Writes the issuing CA's certificate to `dir`/issuing.pem; returns the
/// hierarchy.
async fn issuing_pem(db: &TestDb, dir: &Path) -> Vec<certificates::StoredCertificate> {
    let hierarchy = certificates::hierarchy(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    let issuing = hierarchy
        .iter()
        .find(|c| c.role == CertificateRole::IssuingCa)
        .unwrap();
    std::fs::write(dir.join("issuing.pem"), tuaton_idm::pki::pem(&issuing.der)).unwrap();
    hierarchy
}

async fn count(db: &TestDb, table: &str, filter: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {filter}");
    let (n,): (i64,) = sqlx::query_as(&sql)
        .fetch_one(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    n
}

async fn a_citizen_signs_two_documents_with_one_confirmation_and_openssl_accepts_them(db: TestDb) {
    let (dir, idm, now) = with_hierarchy(&db, idm).await;
    let root = idm.root_certificate(now).await.unwrap();
    std::fs::write(dir.path().join("root.pem"), tuaton_idm::pki::pem(&root)).unwrap();
    let mut phone = SoftPasskey::new(true);
    let (evidence, account) = enrol_with_passkey(&idm, &mut phone, now).await;
    // By default the signing key waits for the first signing.
    let signer_rows = format!("account_id = '{account}' AND role = 'signer'");
    assert_eq!(count(&db, "certificates", &signer_rows).await, 0);
    let session = logged_in(&idm, &mut phone, &evidence, now).await;

    let contract = b"a lease for a flat in Bangkok".to_vec();
    let annex = vec![7u8; 4096];
    let asked = idm
        .start_signing(
            &session,
            &[
                document("lease.pdf", &contract),
                document("annex.bin", &annex),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(asked.documents.len(), 2);
    // The challenge the passkey signs is the one the request commits to.
    let expected = tuaton_idm::signing::confirmation_challenge(
        &asked.request_id,
        &asked.certificate,
        &asked.documents,
    );
    let offered: &[u8] = asked.options.public_key.challenge.as_ref();
    assert_eq!(offered, &expected[..]);
    // The certificate names the person (PNOTH- and the citizen id).
    std::fs::write(dir.path().join("signer.der"), &asked.certificate).unwrap();
    let (_, subject) = openssl(
        dir.path(),
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            "signer.der",
            "-noout",
            "-subject",
        ],
    );
    assert!(subject.contains("PNOTH-1999000000017"), "{subject}");

    let assertion = answer(&mut phone, &asked.options);
    let signed = idm
        .finish_signing(&session, &asked.request_id, &assertion, Vec::new(), now)
        .await
        .unwrap();
    assert_eq!(signed.len(), 2);
    for (doc, bytes) in signed.iter().zip([&contract, &annex]) {
        std::fs::write(dir.path().join("doc.bin"), bytes).unwrap();
        let tuaton_idm::Signed::Detached(p7s) = &doc.signed else {
            panic!("{}: a detached signature", doc.name);
        };
        std::fs::write(dir.path().join("doc.p7s"), p7s).unwrap();
        let (ok, text) = openssl(
            dir.path(),
            &[
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                "doc.p7s",
                "-content",
                "doc.bin",
                "-CAfile",
                "root.pem",
                "-out",
                "/dev/null",
            ],
        );
        assert!(ok, "{}: {text}", doc.name);
        let (_, printed) = openssl(
            dir.path(),
            &[
                "cms", "-cmsout", "-print", "-inform", "DER", "-in", "doc.p7s",
            ],
        );
        assert!(
            printed.contains("id-smime-aa-timeStampToken"),
            "B-T expected"
        );
    }
    // The request is kept with its evidence; the signing is audited once.
    let stored =
        tuaton_store::signing::by_id(db.store.conn().await.unwrap().conn(), &asked.request_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(stored.state, tuaton_store::signing::RequestState::Signed);
    let evidence = stored.evidence.unwrap();
    assert!(evidence["client_data_json"].is_string() && evidence["signature"].is_string());
    assert_eq!(audit_actions(&db, "signature.create").await, 1);
    // One key for the person, made at the first signing; a second request
    // uses it and its certificate again.
    let again = idm
        .start_signing(&session, &[document("receipt.xml", b"<r/>")], now)
        .await
        .unwrap();
    assert_eq!(again.certificate, asked.certificate);
    assert_eq!(
        count(
            &db,
            "managed_keys",
            &format!("purpose = 'user-signing' AND account_id = '{account}'")
        )
        .await,
        1
    );

    // The same assertion again: the request is signed, nothing more is.
    let replay = idm
        .finish_signing(&session, &asked.request_id, &assertion, Vec::new(), now)
        .await
        .unwrap_err();
    assert_eq!(replay.code(), ErrorCode::UnknownSigningRequest);
    assert_eq!(audit_actions(&db, "signature.create").await, 1);

    // The CRLs say the signer certificate is good, until the account is
    // erased: then it is revoked (and the key destroyed).
    let hierarchy = issuing_pem(&db, dir.path()).await;
    let issuing = hierarchy
        .iter()
        .find(|c| c.role == CertificateRole::IssuingCa)
        .unwrap();
    let root_cert = hierarchy
        .iter()
        .find(|c| c.role == CertificateRole::Root)
        .unwrap();
    std::fs::write(
        dir.path().join("signer.pem"),
        tuaton_idm::pki::pem(&asked.certificate),
    )
    .unwrap();
    let crls = |idm: &Idm| {
        let idm = idm.clone();
        let issuing_key = issuing.key_id.clone();
        let root_key = root_cert.key_id.clone();
        let dir = dir.path().to_owned();
        async move {
            for (key, file) in [(issuing_key, "issuing.crl"), (root_key, "root.crl")] {
                let der = idm
                    .crl(&key, OffsetDateTime::now_utc())
                    .await
                    .unwrap()
                    .unwrap();
                std::fs::write(dir.join(format!("{file}.der")), der.as_ref()).unwrap();
                let (ok, text) = openssl(
                    &dir,
                    &[
                        "crl",
                        "-inform",
                        "DER",
                        "-in",
                        &format!("{file}.der"),
                        "-out",
                        file,
                    ],
                );
                assert!(ok, "{text}");
            }
            std::fs::write(
                dir.join("crls.pem"),
                [
                    std::fs::read(dir.join("issuing.crl")).unwrap(),
                    std::fs::read(dir.join("root.crl")).unwrap(),
                ]
                .concat(),
            )
            .unwrap();
            openssl(
                &dir,
                &[
                    "verify",
                    "-crl_check_all",
                    "-CRLfile",
                    "crls.pem",
                    "-CAfile",
                    "root.pem",
                    "-untrusted",
                    "issuing.pem",
                    "signer.pem",
                ],
            )
        }
    };
    let (ok, text) = crls(&idm).await;
    assert!(ok, "{text}");
    // The OCSP responder says the same, judged by openssl ocsp.
    let text = ocsp_status(&idm, dir.path(), "issuing.pem", "signer.pem").await;
    assert!(text.contains("signer.pem: good"), "{text}");
    assert_eq!(text.matches("Response verify OK").count(), 2, "{text}");
    assert!(!text.contains("Nonce Verify error"), "{text}");
    idm.erase(&session, now).await.unwrap();
    let (ok, text) = crls(&idm).await;
    assert!(!ok && text.contains("revoked"), "{text}");
    assert_eq!(audit_actions(&db, "certificate.revoked").await, 1);
    let text = ocsp_status(&idm, dir.path(), "issuing.pem", "signer.pem").await;
    assert!(text.contains("signer.pem: revoked"), "{text}");
    assert!(text.contains("Reason: cessationOfOperation"), "{text}");

    // An operator revokes the TSA's certificate (a key thought
    // compromised): OCSP answers revoked, with the reason, at once.
    let tsa = hierarchy
        .iter()
        .find(|c| c.role == CertificateRole::Tsa)
        .unwrap();
    std::fs::write(dir.path().join("tsa.pem"), tuaton_idm::pki::pem(&tsa.der)).unwrap();
    let text = ocsp_status(&idm, dir.path(), "issuing.pem", "tsa.pem").await;
    assert!(text.contains("tsa.pem: good"), "{text}");
    for (serial, reason) in [
        ("zz", "keyCompromise"),
        (tsa.serial_hex.as_str(), "lost it"),
        ("abcdef", "keyCompromise"),
    ] {
        assert!(
            tuaton_idm::pki::revoke_certificate(&db.store, serial, reason, "operator:test", now)
                .await
                .is_err(),
            "{serial} {reason}"
        );
    }
    let revoked = tuaton_idm::pki::revoke_certificate(
        &db.store,
        &tsa.serial_hex.to_uppercase(),
        "keyCompromise",
        "operator:test",
        now,
    )
    .await
    .unwrap();
    assert_eq!(revoked.id, tsa.id);
    let text = ocsp_status(&idm, dir.path(), "issuing.pem", "tsa.pem").await;
    assert!(
        text.contains("tsa.pem: revoked") && text.contains("Reason: keyCompromise"),
        "{text}"
    );
    assert!(
        tuaton_idm::pki::revoke_certificate(
            &db.store,
            &tsa.serial_hex,
            "keyCompromise",
            "operator:test",
            now
        )
        .await
        .is_err(),
        "revoked once"
    );
    // The issuing CA's own status is the root's CRL's to give, not OCSP's;
    // a request that is not one is malformed.
    std::fs::write(
        dir.path().join("root-ca.pem"),
        tuaton_idm::pki::pem(&root_cert.der),
    )
    .unwrap();
    let text = ocsp_status(&idm, dir.path(), "root-ca.pem", "issuing.pem").await;
    assert!(text.contains("unauthorized"), "{text}");
    let refused = idm.ocsp(b"not a request", now).await.unwrap();
    std::fs::write(dir.path().join("bad.der"), refused).unwrap();
    let (_, text) = openssl(
        dir.path(),
        &["ocsp", "-respin", "bad.der", "-resp_text", "-noverify"],
    );
    assert!(text.contains("malformedrequest"), "{text}");
    // A revoked, erased account signs nothing more, and what named the
    // person is gone: the requests and the certificate's DER.
    assert!(
        idm.start_signing(&session, &[document("x.pdf", b"x")], now)
            .await
            .is_err()
    );
    assert_eq!(
        count(
            &db,
            "signing_requests",
            &format!("account_id = '{account}'")
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "certificates",
            &format!("account_id = '{account}' AND der_base64 <> ''")
        )
        .await,
        0
    );
    // The audit record names the documents by digest, not by name.
    let records = tuaton_store::audit::list(&db.store, 0, 10_000)
        .await
        .unwrap();
    let signing = records
        .iter()
        .find(|r| r.action == "signature.create")
        .unwrap();
    assert!(
        !signing.details.contains("lease.pdf"),
        "{}",
        signing.details
    );
    assert!(signing.details.contains(&asked.documents[0].sha256));
    chain_intact(&db).await;
}

async fn with_keys_at_enrolment_the_signer_certificate_is_made_when_the_person_enrols(db: TestDb) {
    let (_dir, idm, now) = with_hierarchy(&db, idm_making_keys_at_enrolment).await;
    let mut phone = SoftPasskey::new(true);
    let (evidence, account) = enrol_with_passkey(&idm, &mut phone, now).await;
    let signer_rows = format!("account_id = '{account}' AND role = 'signer'");
    assert_eq!(count(&db, "certificates", &signer_rows).await, 1);
    // The first signing uses that certificate; it makes no other.
    let session = logged_in(&idm, &mut phone, &evidence, now).await;
    let asked = idm
        .start_signing(&session, &[document("a.txt", b"a note")], now)
        .await
        .unwrap();
    let serial = tuaton_pki::Facts::of(&asked.certificate)
        .unwrap()
        .serial_hex;
    let stored = certificates::by_serial(db.store.conn().await.unwrap().conn(), &serial)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(stored.account_id.as_ref(), Some(&account));
    assert_eq!(count(&db, "certificates", &signer_rows).await, 1);
    chain_intact(&db).await;
}

/// Asks Tuaton's OCSP responder about `cert` (issued by `issuer`) with a
/// request openssl made, and has openssl check the signed answer (with its
/// nonce) against the root; returns what openssl printed.
async fn ocsp_status(idm: &Idm, dir: &Path, issuer: &str, cert: &str) -> String {
    let (ok, text) = openssl(
        dir,
        &[
            "ocsp", "-issuer", issuer, "-cert", cert, "-reqout", "req.der",
        ],
    );
    assert!(ok, "{text}");
    let request = std::fs::read(dir.join("req.der")).unwrap();
    let response = idm.ocsp(&request, OffsetDateTime::now_utc()).await.unwrap();
    std::fs::write(dir.join("resp.der"), response).unwrap();
    // The nonce echoed and the signature good (openssl checks both when
    // given the request) ...
    let (_, checked) = openssl(
        dir,
        &[
            "ocsp", "-reqin", "req.der", "-respin", "resp.der", "-issuer", issuer, "-CAfile",
            "root.pem",
        ],
    );
    // ... and the status of `cert` (a request of openssl's own, so without
    // the nonce).
    let (_, status) = openssl(
        dir,
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-issuer",
            issuer,
            "-cert",
            cert,
            "-CAfile",
            "root.pem",
            "-no_nonce",
            "-resp_text",
        ],
    );
    format!("{checked}{status}")
}

async fn what_the_passkey_did_not_confirm_is_never_signed(db: TestDb) {
    let (_dir, idm, now) = with_hierarchy(&db, idm).await;
    let mut phone = SoftPasskey::new(true);
    let (evidence, _) = enrol_with_passkey(&idm, &mut phone, now).await;
    let session = logged_in(&idm, &mut phone, &evidence, now).await;

    let wanted = idm
        .start_signing(
            &session,
            &[document("loan.pdf", b"borrow 10,000 baht")],
            now,
        )
        .await
        .unwrap();
    let other = idm
        .start_signing(
            &session,
            &[document("loan.pdf", b"borrow 900,000 baht")],
            now,
        )
        .await
        .unwrap();
    let confirmed_other = answer(&mut phone, &other.options);
    let signatures = || async { audit_actions(&db, "signature.create").await };
    // An assertion over other digests does not sign these.
    let e = idm
        .finish_signing(
            &session,
            &wanted.request_id,
            &confirmed_other,
            Vec::new(),
            now,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ChallengeMismatch, "{e}");
    // A refused confirmation ends its request: no second try with it.
    let again = answer(&mut phone, &wanted.options);
    let e = idm
        .finish_signing(&session, &wanted.request_id, &again, Vec::new(), now)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnknownCeremony, "{e}");
    let wanted = idm
        .start_signing(
            &session,
            &[document("loan.pdf", b"borrow 10,000 baht")],
            now,
        )
        .await
        .unwrap();
    // An assertion for a login does not sign anything.
    let login = idm
        .start_login(Some(&evidence.citizen_id), now)
        .await
        .unwrap();
    let login_assertion = answer(&mut phone, &login.options);
    let e = idm
        .finish_signing(
            &session,
            &wanted.request_id,
            &login_assertion,
            Vec::new(),
            now,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ChallengeMismatch, "{e}");
    let wanted = idm
        .start_signing(
            &session,
            &[document("loan.pdf", b"borrow 10,000 baht")],
            now,
        )
        .await
        .unwrap();
    // A database writer who changes the documents of a pending request
    // gets the request refused, not signed.
    sqlx::query("UPDATE signing_requests SET documents = REPLACE(documents, 'loan.pdf', 'gift.pdf') WHERE id = $1")
        .bind(&other.request_id)
        .execute(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    let e = idm
        .finish_signing(
            &session,
            &other.request_id,
            &confirmed_other,
            Vec::new(),
            now,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ChallengeMismatch, "{e}");
    // After its lifetime a request is not signed.
    let late = now
        + tuaton_store::ceremonies::CeremonyKind::SigningConfirmation.lifetime()
        + Duration::seconds(1);
    let wanted_assertion = answer(&mut phone, &wanted.options);
    let e = idm
        .finish_signing(
            &session,
            &wanted.request_id,
            &wanted_assertion,
            Vec::new(),
            late,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnknownSigningRequest);
    assert_eq!(signatures().await, 0);
    // Each refused confirmation is audited as refused.
    assert!(refusals(&db, "signature.create").await >= 3);
    assert_eq!(count(&db, "signing_requests", "state = 'signed'").await, 0);

    // A revoked certificate stops the key: no new certificate is made for
    // it, and a request begun before the revocation is not signed.
    let pending = idm
        .start_signing(
            &session,
            &[document("loan.pdf", b"borrow 10,000 baht")],
            now,
        )
        .await
        .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    certificates::revoke_of_account(
        &mut tx,
        &session.account_id,
        "keyCompromise",
        now,
        "officer:test",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let e = idm
        .start_signing(&session, &[document("loan.pdf", b"x")], now)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::CertificateRevoked, "{e}");
    let confirmed = answer(&mut phone, &pending.options);
    let e = idm
        .finish_signing(&session, &pending.request_id, &confirmed, Vec::new(), now)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::CertificateRevoked, "{e}");
    assert_eq!(signatures().await, 0);

    chain_intact(&db).await;

    // Bad documents are refused before anything is made.
    for bad in [
        vec![],
        vec![document("", b"x")],
        vec![document("a\nb.pdf", b"x")],
        vec![DocumentDigest {
            size: 0,
            ..document("empty.pdf", b"x")
        }],
        (0..101)
            .map(|i| document(&format!("{i}.pdf"), b"x"))
            .collect(),
    ] {
        let e = idm.start_signing(&session, &bad, now).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidDocuments, "{e}");
    }
}

async fn a_suspended_accounts_certificate_is_on_hold_until_it_is_reactivated(db: TestDb) {
    let (dir, idm, now) = with_hierarchy(&db, idm).await;
    let root = idm.root_certificate(now).await.unwrap();
    std::fs::write(dir.path().join("root.pem"), tuaton_idm::pki::pem(&root)).unwrap();
    issuing_pem(&db, dir.path()).await;
    let mut phone = SoftPasskey::new(true);
    let (evidence, account) = enrol_with_passkey(&idm, &mut phone, now).await;
    let session = logged_in(&idm, &mut phone, &evidence, now).await;
    let pending = idm
        .start_signing(&session, &[document("loan.pdf", b"borrow")], now)
        .await
        .unwrap();
    std::fs::write(
        dir.path().join("signer.pem"),
        tuaton_idm::pki::pem(&pending.certificate),
    )
    .unwrap();
    let status = || ocsp_status(&idm, dir.path(), "issuing.pem", "signer.pem");
    assert!(status().await.contains("signer.pem: good"));

    // An officer suspends the account (a phone reported lost, say): its
    // certificate is on hold at once, and a request begun before signs
    // nothing.
    let officer = tuaton_idm::Actor::Operator("test".into());
    idm.admin()
        .suspend_account(&officer, account.as_str(), "phone reported lost", now)
        .await
        .unwrap();
    let text = status().await;
    assert!(text.contains("signer.pem: revoked"), "{text}");
    assert!(text.contains("Reason: certificateHold"), "{text}");
    // An operator cannot release it while the account is suspended.
    let (_, printed) = openssl(
        dir.path(),
        &["x509", "-in", "signer.pem", "-noout", "-serial"],
    );
    let serial = printed.trim().trim_start_matches("serial=").to_owned();
    assert!(
        tuaton_idm::pki::release_certificate(&db.store, &serial, "operator:test", now)
            .await
            .is_err()
    );
    let confirmed = answer(&mut phone, &pending.options);
    assert!(
        idm.finish_signing(&session, &pending.request_id, &confirmed, Vec::new(), now)
            .await
            .is_err()
    );

    // Reactivated, the same certificate is good again and signs.
    idm.admin()
        .reactivate_account(&officer, account.as_str(), now)
        .await
        .unwrap();
    assert!(status().await.contains("signer.pem: good"));
    assert_eq!(audit_actions(&db, "certificate.released").await, 1);
    let session = logged_in(&idm, &mut phone, &evidence, now).await;
    let again = idm
        .start_signing(&session, &[document("loan.pdf", b"borrow")], now)
        .await
        .unwrap();
    assert_eq!(again.certificate, pending.certificate);
    let confirmed = answer(&mut phone, &again.options);
    idm.finish_signing(&session, &again.request_id, &confirmed, Vec::new(), now)
        .await
        .unwrap();

    // An operator's hold is released the same way; a certificate not on
    // hold is not "released"; a held one can still be revoked for good,
    // and then no release brings it back.
    let revoke = |reason: &'static str| {
        tuaton_idm::pki::revoke_certificate(&db.store, &serial, reason, "operator:test", now)
    };
    let release = || tuaton_idm::pki::release_certificate(&db.store, &serial, "operator:test", now);
    assert!(release().await.is_err());
    revoke("certificateHold").await.unwrap();
    assert!(
        revoke("certificateHold").await.is_err(),
        "a held certificate is not held twice"
    );
    release().await.unwrap();
    assert!(status().await.contains("signer.pem: good"));
    revoke("certificateHold").await.unwrap();
    // The operator's hold outlasts a suspension of the account: lifting
    // the suspension releases only what the suspension held.
    idm.admin()
        .suspend_account(&officer, account.as_str(), "phone reported lost", now)
        .await
        .unwrap();
    idm.admin()
        .reactivate_account(&officer, account.as_str(), now)
        .await
        .unwrap();
    let text = status().await;
    assert!(text.contains("Reason: certificateHold"), "{text}");
    assert_eq!(audit_actions(&db, "certificate.released").await, 2);
    revoke("keyCompromise").await.unwrap();
    let text = status().await;
    assert!(text.contains("Reason: keyCompromise"), "{text}");
    assert!(release().await.is_err());
    chain_intact(&db).await;
}

/// An external time-stamping authority made with OpenSSL
/// (tests/tsa/make-external-tsa) in `dir`, answering each request with
/// `openssl ts -reply`; counts the time stamps it gave.
struct OpensslTsa {
    dir: std::path::PathBuf,
    given: std::sync::atomic::AtomicUsize,
}

impl tuaton_sign::tsp::TimeStampSource for OpensslTsa {
    fn time_stamp(&self, request: &[u8]) -> Result<Vec<u8>, tuaton_sign::SignError> {
        let n = self.given.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let query = self.dir.join(format!("{n}.tsq"));
        let reply = self.dir.join(format!("{n}.tsr"));
        std::fs::write(&query, request).unwrap();
        let (ok, text) = openssl(
            &self.dir,
            &[
                "ts",
                "-reply",
                "-config",
                "tsa.cnf",
                "-queryfile",
                query.to_str().unwrap(),
                "-out",
                reply.to_str().unwrap(),
            ],
        );
        if !ok {
            return Err(tuaton_sign::SignError::TimeStamp(text));
        }
        Ok(std::fs::read(reply).unwrap())
    }
}

async fn with_an_external_tsa_the_signatures_carry_its_time_stamps(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let tsa_dir = dir.path().join("external-tsa");
    let made = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/tsa/make-external-tsa"
        ))
        .arg(&tsa_dir)
        .status()
        .unwrap();
    assert!(made.success());
    let tsa = std::sync::Arc::new(OpensslTsa {
        dir: tsa_dir.clone(),
        given: std::sync::atomic::AtomicUsize::new(0),
    });
    let idm = common::idm_with_tsa(&db, &dir.path().join("keys"), tsa.clone());
    let now = OffsetDateTime::now_utc();
    idm.certify_hierarchy(now, "operator:test", true)
        .await
        .unwrap();
    let mut phone = SoftPasskey::new(true);
    let (evidence, _) = enrol_with_passkey(&idm, &mut phone, now).await;
    let session = logged_in(&idm, &mut phone, &evidence, now).await;
    let lease = b"a lease, time-stamped elsewhere";
    let asked = idm
        .start_signing(&session, &[document("lease.txt", lease)], now)
        .await
        .unwrap();
    let assertion = answer(&mut phone, &asked.options);
    let signed = idm
        .finish_signing(&session, &asked.request_id, &assertion, Vec::new(), now)
        .await
        .unwrap();
    assert_eq!(tsa.given.load(std::sync::atomic::Ordering::SeqCst), 1);
    let tuaton_idm::Signed::Detached(p7s) = &signed[0].signed else {
        panic!("a detached signature");
    };
    // The token in the signature's unsigned attributes verifies with the
    // external TSA's root, over the signature value (RFC 3161 Appendix A).
    use der::{Decode as _, Encode as _};
    let info = cms::content_info::ContentInfo::from_der(p7s).unwrap();
    let data = info
        .content
        .decode_as::<cms::signed_data::SignedData>()
        .unwrap();
    let signer = data.signer_infos.0.get(0).unwrap();
    let token = signer
        .unsigned_attrs
        .as_ref()
        .unwrap()
        .iter()
        .find(|a| a.oid.to_string() == "1.2.840.113549.1.9.16.2.14")
        .unwrap()
        .values
        .get(0)
        .unwrap()
        .to_der()
        .unwrap();
    std::fs::write(tsa_dir.join("token.der"), token).unwrap();
    std::fs::write(tsa_dir.join("signature.bin"), signer.signature.as_bytes()).unwrap();
    let verify_with = |anchor: &str| {
        openssl(
            &tsa_dir,
            &[
                "ts",
                "-verify",
                "-token_in",
                "-in",
                "token.der",
                "-data",
                "signature.bin",
                "-CAfile",
                anchor,
                "-untrusted",
                "tsa.pem",
            ],
        )
    };
    let (ok, text) = verify_with("ca.pem");
    assert!(ok && text.contains("Verification: OK"), "{text}");
    // Tuaton's own TSA gave none: its root does not verify the token.
    let root = idm.root_certificate(now).await.unwrap();
    std::fs::write(tsa_dir.join("tuaton-root.pem"), tuaton_idm::pki::pem(&root)).unwrap();
    assert!(!verify_with("tuaton-root.pem").0);

    // A TSA that gives no time stamp: nothing is signed, and the person
    // hears to try again shortly, not that Tuaton failed.
    let config = std::fs::read(tsa_dir.join("tsa.cnf")).unwrap();
    std::fs::write(tsa_dir.join("tsa.cnf"), "not a configuration").unwrap();
    let asked = idm
        .start_signing(&session, &[document("lease.txt", lease)], now)
        .await
        .unwrap();
    let assertion = answer(&mut phone, &asked.options);
    let refused = idm
        .finish_signing(&session, &asked.request_id, &assertion, Vec::new(), now)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::TimeStampUnavailable, "{refused}");
    assert_eq!(audit_actions(&db, "signature.create").await, 1);
    let failed = tuaton_store::audit::list(&db.store, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "signature.create" && r.outcome == "failure")
        .filter(|r| r.details.contains("time_stamp_unavailable"))
        .count();
    assert_eq!(failed, 1, "the failure is audited");
    // The confirmation was not spent on nothing: once the TSA answers, the
    // same assertion signs, once.
    std::fs::write(tsa_dir.join("tsa.cnf"), config).unwrap();
    idm.finish_signing(&session, &asked.request_id, &assertion, Vec::new(), now)
        .await
        .unwrap();
    assert_eq!(audit_actions(&db, "signature.create").await, 2);
    let replayed = idm
        .finish_signing(&session, &asked.request_id, &assertion, Vec::new(), now)
        .await
        .unwrap_err();
    assert_eq!(
        replayed.code(),
        ErrorCode::UnknownSigningRequest,
        "{replayed}"
    );
    assert_eq!(audit_actions(&db, "signature.create").await, 2);
    chain_intact(&db).await;
}

/// Sets the identity level of `account` as an officer's decision would.
async fn set_ial(db: &TestDb, account: &tuaton_core::AccountId, level: &str) {
    sqlx::query("UPDATE accounts SET ial = $1 WHERE id = $2")
        .bind(level)
        .bind(account.as_str())
        .execute(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
}

async fn an_account_lowered_below_its_certificates_level_signs_nothing_under_it(db: TestDb) {
    let (_dir, idm, now) = with_hierarchy(&db, idm).await;
    let policy = idm.ca_plan().unwrap().settings.policy;
    let mut phone = SoftPasskey::new(true);
    let (evidence, _) = enrol_with_passkey(&idm, &mut phone, now).await;
    let session = logged_in(&idm, &mut phone, &evidence, now).await;
    let level = |der: &[u8]| tuaton_pki::certified_ial(der, &policy).unwrap();

    // Proofed at IAL2.2, the first certificate says so.
    set_ial(&db, &session.account_id, "2.2").await;
    let high = idm
        .start_signing(&session, &[document("lease.pdf", b"rent")], now)
        .await
        .unwrap();
    assert_eq!(level(&high.certificate), Some(tuaton_core::Ial::Ial2_2));

    // Lowered to IAL2.1 (a registry recheck, say): the request made under
    // the IAL2.2 certificate signs nothing, and writes nothing.
    set_ial(&db, &session.account_id, "2.1").await;
    let confirmed = answer(&mut phone, &high.options);
    let e = idm
        .finish_signing(&session, &high.request_id, &confirmed, Vec::new(), now)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::IalTooLow, "{e}");
    assert_eq!(audit_actions(&db, "signature.create").await, 0);

    // The next request gets a certificate at the level the account holds,
    // and signs.
    let low = idm
        .start_signing(&session, &[document("lease.pdf", b"rent")], now)
        .await
        .unwrap();
    assert_ne!(low.certificate, high.certificate);
    assert_eq!(level(&low.certificate), Some(tuaton_core::Ial::Ial2_1));
    let confirmed = answer(&mut phone, &low.options);
    idm.finish_signing(&session, &low.request_id, &confirmed, Vec::new(), now)
        .await
        .unwrap();
    assert_eq!(audit_actions(&db, "signature.create").await, 1);
    chain_intact(&db).await;
}

on_both_engines!(
    the_hierarchy_is_made_once_and_time_stamps_verify_with_openssl,
    a_rotated_issuing_ca_and_tsa_leave_earlier_time_stamps_valid,
    without_a_hierarchy_the_tsa_refuses_and_writes_nothing,
    a_citizen_signs_two_documents_with_one_confirmation_and_openssl_accepts_them,
    what_the_passkey_did_not_confirm_is_never_signed,
    with_keys_at_enrolment_the_signer_certificate_is_made_when_the_person_enrols,
    an_account_lowered_below_its_certificates_level_signs_nothing_under_it,
    with_an_external_tsa_the_signatures_carry_its_time_stamps,
    a_suspended_accounts_certificate_is_on_hold_until_it_is_reactivated,
);
