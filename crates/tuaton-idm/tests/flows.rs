//! The flows driven directly, as any front door would drive them — no HTTP:
//! enrol, register a passkey with a software authenticator that makes real
//! signatures, log in, use and end the session; and the refusals a front
//! door relies on. On SQLite, and on PostgreSQL when the test run has one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use time::OffsetDateTime;
use tuaton_core::{Aal, ErrorCode, Ial};
use tuaton_idm::{
    FaceCheck, Idm, IdmError, LiveCapture, PasskeyName, Registrant, SessionSecret, parse_evidence,
};
use tuaton_proofing::{
    FaceDecision, FaceMatchError, FaceMatchResult, FaceMatcher, FaceReference, FaceReferences,
    ReferenceSource,
};
use tuaton_store::on_both_engines;
use tuaton_store::testing::TestDb;
use url::Url;

mod common;
use common::{ORIGIN, idm, idm_with, login_started, options, somchai};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// Stands in for a certified face matcher in these tests (none ships with
/// Tuaton): answers the verdict the test scripted, for any capture.
struct ScriptedMatcher {
    decision: FaceDecision,
    liveness_passed: bool,
}

#[async_trait::async_trait]
impl FaceMatcher for ScriptedMatcher {
    fn name(&self) -> &str {
        "scripted-test-matcher"
    }

    async fn compare(
        &self,
        _live: &LiveCapture,
        reference: &FaceReference,
    ) -> Result<FaceMatchResult, FaceMatchError> {
        Ok(FaceMatchResult {
            matcher: self.name().into(),
            score: 0.97,
            liveness_passed: self.liveness_passed,
            decision: self.decision,
            reference: reference.source,
        })
    }
}

/// Stands in for the registry's photos: one photo, for Somchai only.
struct OnePhoto;

#[async_trait::async_trait]
impl FaceReferences for OnePhoto {
    async fn reference(
        &self,
        citizen: &tuaton_core::CitizenId,
    ) -> Result<Option<FaceReference>, FaceMatchError> {
        Ok(
            (citizen.compact() == "1999000000017").then(|| FaceReference {
                image: vec![0xff, 0xd8, 0xff],
                source: ReferenceSource::Registry,
            }),
        )
    }
}

fn idm_with_face(
    db: &TestDb,
    keys_dir: &std::path::Path,
    decision: FaceDecision,
    live: bool,
) -> Idm {
    idm_with(
        db,
        keys_dir,
        Some(FaceCheck {
            matcher: Arc::new(ScriptedMatcher {
                decision,
                liveness_passed: live,
            }),
            references: Arc::new(OnePhoto),
        }),
    )
}

fn capture() -> LiveCapture {
    LiveCapture {
        media: vec![1, 2, 3],
        media_type: "image/jpeg".into(),
        liveness_evidence: vec![4],
    }
}

async fn a_citizen_enrols_registers_a_passkey_logs_in_and_logs_out(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let idm = idm(&db, dir.path());
    let now = OffsetDateTime::now_utc();
    let evidence = parse_evidence(&somchai(), now).unwrap();

    let enrolled = idm
        .enrol(&evidence, Some("somchai@example.test"), now)
        .await
        .unwrap();
    assert_eq!(enrolled.ial, Ial::Ial2_1);
    let grant = enrolled
        .grant
        .expect("a new account gets a registration grant");
    let again = idm.enrol(&evidence, None, now).await.unwrap_err();
    assert_eq!(again.code(), ErrorCode::AlreadyEnrolled);

    let mut authn = SoftPasskey::new(true);
    let reg = idm
        .start_registration(Registrant::Grant(&grant.id), false, now)
        .await
        .unwrap();
    let made = authn
        .do_registration(Url::parse(ORIGIN).unwrap(), options(&reg.options))
        .unwrap();
    let name = PasskeyName::parse("  phone ").unwrap();
    let record = idm
        .finish_registration(&reg.ceremony_id, &name, &made, now)
        .await
        .unwrap();
    assert_eq!((record.name.as_str(), record.aal), ("phone", Aal::Aal2_2));
    let spent = idm
        .start_registration(Registrant::Grant(&grant.id), false, now)
        .await
        .unwrap_err();
    assert_eq!(
        spent.code(),
        ErrorCode::UnknownCeremony,
        "the grant is spent"
    );

    let (challenge, assertion) = login_started(&idm, &mut authn, &evidence, now).await;
    let done = idm
        .finish_login(&challenge.ceremony_id, &assertion, None, now)
        .await
        .unwrap();
    assert_eq!(done.account_id, enrolled.account_id);
    assert_eq!(done.aal, Aal::Aal2_2);
    let replay = idm
        .finish_login(&challenge.ceremony_id, &assertion, None, now)
        .await
        .unwrap_err();
    assert_eq!(
        replay.code(),
        ErrorCode::UnknownCeremony,
        "a ceremony is used once"
    );

    let secret = SessionSecret::presented(done.session.secret.expose());
    let session = idm.session(&secret, now).await.unwrap();
    assert_eq!(session.account_id, enrolled.account_id);
    assert!(matches!(
        session.check_csrf(None),
        Err(IdmError::CsrfTokenMissing)
    ));
    assert!(matches!(
        session.check_csrf(Some("forged")),
        Err(IdmError::CsrfTokenInvalid)
    ));
    session.check_csrf(Some(&done.session.csrf_token)).unwrap();
    assert_eq!(idm.logout_everywhere(&session, now).await.unwrap(), 1);
    let ended = idm.session(&secret, now).await.unwrap_err();
    assert_eq!(ended.code(), ErrorCode::SessionExpired);

    // Somchai has a signing key of his own (as signing makes one); erasing
    // the account destroys it, in the store and in the backend.
    let backend = idm.keys().clone();
    let key_ref = backend
        .generate(tuaton_core::KeySpec::EcP256, "user-signing somchai")
        .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    let own = tuaton_store::keys::insert_pending(
        &mut tx,
        &tuaton_store::keys::NewKey {
            purpose: tuaton_store::keys::KeyPurpose::UserSigning,
            account_id: Some(enrolled.account_id.clone()),
            algorithm: tuaton_core::SignatureAlgorithm::Es256,
            backend: backend.name().into(),
            key_ref: key_ref.to_string(),
            activate_after: now,
            replaces: None,
        },
        now,
        "system",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (challenge, assertion) = login_started(&idm, &mut authn, &evidence, now).await;
    let fresh = idm
        .finish_login(&challenge.ceremony_id, &assertion, None, now)
        .await
        .unwrap();
    let session = idm
        .session(
            &SessionSecret::presented(fresh.session.secret.expose()),
            now,
        )
        .await
        .unwrap();
    idm.erase(&session, now).await.unwrap();
    let after = tuaton_store::keys::by_id(db.store.conn().await.unwrap().conn(), &own.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.state, tuaton_store::keys::KeyState::Destroyed);
    assert!(
        matches!(
            backend.public_key(&key_ref),
            Err(tuaton_keys::KeyError::KeyNotFound { .. })
        ),
        "the key material is gone"
    );

    let report = tuaton_store::audit::verify(&db.store).await.unwrap();
    assert!(report.is_intact());
    db.cleanup().await;
}

async fn a_corrupt_level_in_a_row_is_refused_never_read_as_a_low_one(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let idm = idm(&db, dir.path());
    let now = OffsetDateTime::now_utc();
    let evidence = parse_evidence(&somchai(), now).unwrap();
    idm.enrol(&evidence, None, now).await.unwrap();
    sqlx::query("UPDATE accounts SET ial = 'IAL9'")
        .execute(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    // Recovery compares the account's level with the one the registry
    // reaches again: an unreadable level must stop it, not lower the bar.
    let e = idm
        .request_recovery(&evidence, None, now)
        .await
        .unwrap_err();
    assert!(
        matches!(e, IdmError::Store(tuaton_store::StoreError::Corrupt(_))),
        "{e:?}"
    );
    assert_eq!(e.code(), ErrorCode::InternalError);
    let admin = idm
        .admin()
        .account_summary("1999000000017")
        .await
        .unwrap_err();
    assert!(matches!(
        admin,
        IdmError::Store(tuaton_store::StoreError::Corrupt(_))
    ));
    db.cleanup().await;
}

async fn a_contact_address_the_mail_transport_would_refuse_is_refused_at_enrolment(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let idm = idm(&db, dir.path());
    let now = OffsetDateTime::now_utc();
    let evidence = parse_evidence(&somchai(), now).unwrap();
    for bad in [
        "somchai<script>@example.test",
        "somchai@exa mple.test",
        "somchai@localhost",
        "@example.test",
        "somchai@",
    ] {
        let e = idm.enrol(&evidence, Some(bad), now).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidContactEmail, "{bad}");
    }
    let (accounts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts")
        .fetch_one(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    assert_eq!(accounts, 0, "a refused enrolment writes nothing");
    idm.enrol(&evidence, Some(" somchai.jaidee+tuaton@example.test "), now)
        .await
        .unwrap();
    db.cleanup().await;
}

async fn a_live_face_match_makes_a_recovery_ready_at_once_and_reaches_ial2_2(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let evidence = parse_evidence(&somchai(), now).unwrap();
    let plain = idm(&db, dir.path());
    let enrolled = plain.enrol(&evidence, None, now).await.unwrap();
    // Proofed in person since: above what the card's details alone reach.
    let mut tx = db.store.begin().await.unwrap();
    tuaton_store::accounts::set_ial(&mut tx, &enrolled.account_id, Ial::Ial2_2, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let e = plain
        .request_recovery(&evidence, None, now)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::OfficerRecoveryRequired);
    let e = plain
        .request_recovery(&evidence, Some(&capture()), now)
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::FaceMatchUnavailable,
        "no matcher configured"
    );

    // A match on a capture that fails liveness (a photo held up) is refused.
    let spoofed = idm_with_face(&db, dir.path(), FaceDecision::Match, false);
    let e = spoofed
        .request_recovery(&evidence, Some(&capture()), now)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::DetailsMismatch, "{e:?}");
    let no_match = idm_with_face(&db, dir.path(), FaceDecision::NoMatch, true);
    let e = no_match
        .request_recovery(&evidence, Some(&capture()), now)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::DetailsMismatch, "{e:?}");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM recoveries")
        .fetch_one(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    assert_eq!(n, 0);

    // A live match: IAL2.2 reached again, and no cooling-off period.
    let live = idm_with_face(&db, dir.path(), FaceDecision::Match, true);
    let taken = live
        .request_recovery(&evidence, Some(&capture()), now)
        .await
        .unwrap();
    assert_eq!(taken.ready_at, now);
    let grant = live
        .claim_recovery(&taken.recovery_id, &taken.token, false, now)
        .await
        .unwrap();
    assert_eq!(grant.ial, Ial::Ial2_2);
    let open = live
        .open_recoveries(&enrolled.account_id, now)
        .await
        .unwrap();
    assert_eq!(open[0].path, tuaton_idm::RecoveryPath::FaceMatch);
    let recs = tuaton_store::audit::list(&db.store, 0, 100).await.unwrap();
    let req = recs
        .iter()
        .find(|r| r.action == "account.recovery.request" && r.outcome == "success")
        .unwrap();
    assert!(
        req.details.contains("scripted-test-matcher"),
        "{}",
        req.details
    );
    db.cleanup().await;
}

/// What a login with `phone` as the person `evidence` names comes to.
async fn try_login(
    idm: &tuaton_idm::Idm,
    phone: &mut SoftPasskey,
    evidence: &tuaton_proofing::CitizenEvidence,
    now: OffsetDateTime,
) -> Result<tuaton_idm::LoggedIn, tuaton_idm::IdmError> {
    let (challenge, assertion) = login_started(idm, phone, evidence, now).await;
    idm.finish_login(&challenge.ceremony_id, &assertion, None, now)
        .await
}

async fn refusals(db: &TestDb, reason: &str) -> usize {
    tuaton_store::audit::list(&db.store, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.outcome == "failure" && r.details.contains(reason))
        .count()
}

/// What a database writer does: `sql` with the two values bound.
async fn write_directly(db: &TestDb, sql: &str, first: &str, second: &str) {
    sqlx::query(sql)
        .bind(first)
        .bind(second)
        .execute(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
}

/// A login with `phone` as `evidence`'s person is refused as an unknown
/// credential, the `seen`th row refused for its seal.
async fn refused_unsealed(
    db: &TestDb,
    idm: &tuaton_idm::Idm,
    phone: &mut SoftPasskey,
    evidence: &tuaton_proofing::CitizenEvidence,
    seen: usize,
    now: OffsetDateTime,
) {
    let refused = try_login(idm, phone, evidence, now).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::UnknownCredential, "{refused}");
    assert_eq!(refusals(db, "credential_not_sealed").await, seen);
}

async fn a_passkey_row_written_only_in_the_database_does_not_log_in(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let idm = idm(&db, &dir.path().join("keys"));
    let now = OffsetDateTime::now_utc();
    let mut phone = SoftPasskey::new(true);
    let (somchai, somchai_id) = common::enrol_with_passkey(&idm, &mut phone, now).await;
    try_login(&idm, &mut phone, &somchai, now).await.unwrap();
    let mut theirs = SoftPasskey::new(true);
    let (_, kamala_id) = common::enrol_person(&idm, &mut theirs, &common::kamala(), now).await;
    let (kamalas,): (String,) =
        sqlx::query_as("SELECT cred_id FROM passkeys WHERE account_id = $1")
            .bind(kamala_id.as_str())
            .fetch_one(db.store.conn().await.unwrap().conn())
            .await
            .unwrap();

    // A database writer moves their own passkey's row to Somchai's
    // account: its seal names another account, and it logs in as nobody.
    write_directly(
        &db,
        "UPDATE passkeys SET account_id = $1 WHERE account_id = $2",
        somchai_id.as_str(),
        kamala_id.as_str(),
    )
    .await;
    refused_unsealed(&db, &idm, &mut theirs, &somchai, 1, now).await;

    // So is Somchai's own row once its stored credential changes (a
    // counter lowered so a clone passes, a flag): the seal covers it all.
    write_directly(
        &db,
        "UPDATE passkeys SET credential = credential || ' ' WHERE account_id = $1 AND cred_id <> $2",
        somchai_id.as_str(),
        &kamalas,
    )
    .await;
    refused_unsealed(&db, &idm, &mut phone, &somchai, 2, now).await;

    // A row without a seal (inserted, or its seal cleared) is refused too.
    write_directly(
        &db,
        "UPDATE passkeys SET seal = NULL WHERE account_id = $1 AND cred_id <> $2",
        somchai_id.as_str(),
        &kamalas,
    )
    .await;
    refused_unsealed(&db, &idm, &mut phone, &somchai, 3, now).await;

    // A first start with a new sealing key seals every row as it stands
    // (here after the writer's row went back): Somchai's own passkey logs
    // in again.
    write_directly(
        &db,
        "UPDATE passkeys SET account_id = $1 WHERE cred_id = $2",
        kamala_id.as_str(),
        &kamalas,
    )
    .await;
    assert_eq!(idm.seal_every_passkey().await.unwrap(), 2);
    try_login(&idm, &mut phone, &somchai, now).await.unwrap();
    db.cleanup().await;
}

on_both_engines!(
    a_passkey_row_written_only_in_the_database_does_not_log_in,
    a_live_face_match_makes_a_recovery_ready_at_once_and_reaches_ial2_2,
    a_contact_address_the_mail_transport_would_refuse_is_refused_at_enrolment,
    a_citizen_enrols_registers_a_passkey_logs_in_and_logs_out,
    a_corrupt_level_in_a_row_is_refused_never_read_as_a_low_one
);
