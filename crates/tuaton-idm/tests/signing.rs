//! The certificate authority in service, driven as a front door drives it:
//! the hierarchy made through the key backend and stored, made again
//! without doubles, rotated while what the old keys certified keeps
//! validating, and the time-stamping authority answering from it, judged by
//! `openssl ts -verify`. On SQLite, and on PostgreSQL when the run has one.
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
use common::idm;

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
        .filter(|r| r.action == action)
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

on_both_engines!(
    the_hierarchy_is_made_once_and_time_stamps_verify_with_openssl,
    a_rotated_issuing_ca_and_tsa_leave_earlier_time_stamps_valid,
    without_a_hierarchy_the_tsa_refuses_and_writes_nothing,
);
