//! A director signing a document an agency posted for their company: the
//! signature carries a representative certificate naming the company, the
//! registry's authority rule is asked at signing, and when the registry
//! stops listing the company the representative certificate is revoked
//! while the person's own keeps signing. On SQLite, and on PostgreSQL when
//! the run has one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use time::OffsetDateTime;
use tuaton_core::{ErrorCode, JuristicId};
use tuaton_idm::documents::Upload;
use tuaton_idm::{DocumentDigest, Idm};
use tuaton_store::agency_documents::{DocumentState, Files};
use tuaton_store::certificates;
use tuaton_store::on_both_engines;
use tuaton_store::testing::TestDb;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

mod common;
use common::{
    Companies, answer, audit_intact, enrol_person, enrol_with_passkey, idm_with_companies, kamala,
    logged_in, pranee, public_client,
};

const FORM: &[u8] = include_bytes!("../../../tests/fixtures/agency-form.pdf");
/// บริษัท ตัวตนพัฒนา จำกัด: any one director, Somchai among them.
const COMPANY: &str = "0105599000019";
/// บริษัท สองกรรมการสาธิต จำกัด: Kamala and Pranee, jointly.
const JOINTLY: &str = "0105599000043";
const BACK: &str = "https://agency.example/back";

/// A service layer asking `companies`, its hierarchy certified, with an
/// agency allowed to ask for signatures and Somchai logged in.
struct World {
    _dir: tempfile::TempDir,
    idm: Idm,
    client: tuaton_oidc::ClientConfig,
    phone: SoftPasskey,
    account: tuaton_core::AccountId,
    session: tuaton_idm::ActiveSession,
    now: OffsetDateTime,
}

async fn world(db: &TestDb, companies: Arc<Companies>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let idm = idm_with_companies(db, &dir.path().join("keys"), companies);
    let now = OffsetDateTime::now_utc();
    idm.certify_hierarchy(now, "operator:test", true)
        .await
        .unwrap();
    let scopes = [tuaton_idm::documents::SIGNING_SCOPE];
    let client = public_client(&idm, "business-office", BACK, &scopes, now).await;
    let mut phone = SoftPasskey::new(true);
    let (evidence, account) = enrol_with_passkey(&idm, &mut phone, now).await;
    let session = logged_in(&idm, &mut phone, &evidence, now).await;
    World {
        _dir: dir,
        idm,
        client,
        phone,
        account,
        session,
        now,
    }
}

fn upload(company: Option<&str>) -> Upload {
    Upload {
        name: "board-resolution.pdf".into(),
        bytes: FORM.to_vec(),
        subject: None,
        redirect_uri: BACK.into(),
        state: None,
        company: company.map(|c| JuristicId::parse(c).unwrap()),
    }
}

/// The certificate Somchai's own signature of a note would carry.
async fn own_signing(
    idm: &Idm,
    session: &tuaton_idm::ActiveSession,
    now: OffsetDateTime,
) -> Vec<u8> {
    let note = DocumentDigest::digest_only("note.txt".into(), 5, [9; 32]);
    idm.start_signing(session, &[note], now)
        .await
        .unwrap()
        .certificate
}

async fn audit_count(db: &TestDb, action: &str, success: bool) -> usize {
    tuaton_store::audit::list(&db.store, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == action && (r.outcome == "success") == success)
        .count()
}

async fn a_director_signs_for_the_company_with_a_certificate_that_names_it(db: TestDb) {
    let companies = Arc::new(Companies::default());
    let World {
        idm,
        client,
        mut phone,
        account,
        session,
        now,
        _dir: _keys,
        ..
    } = world(&db, companies.clone()).await;

    // A company's document names no person besides.
    let mut both = upload(Some(COMPANY));
    both.subject = Some("someone".into());
    let refused = idm.post_document(&client, both, now).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InvalidDocuments);
    // A company the registry does not know is refused at posting.
    let unknown = idm
        .post_document(&client, upload(Some("0105599000051")), now)
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::CompanyNotFound);

    let posted = idm
        .post_document(&client, upload(Some(COMPANY)), now)
        .await
        .unwrap();
    let shown = idm.shown_document(&posted.id, now).await.unwrap();
    assert_eq!(shown.company.as_ref().map(|c| c.0.as_str()), Some(COMPANY));
    assert_eq!(shown.signatures, 0);
    let asked = idm
        .start_document_signing(&session, &posted.id, now)
        .await
        .unwrap();
    // The certificate the passkey confirms names the person and the company.
    let ids = tuaton_pki::subject_ids(&asked.certificate).unwrap();
    assert_eq!(ids.person.as_deref(), Some("PNOTH-1999000000017"));
    assert_eq!(ids.organization.as_deref(), Some("NTRTH-0105599000019"));
    let confirmed = answer(&mut phone, &asked.options);
    let back = idm
        .finish_document_signing(&session, &posted.id, &confirmed, now)
        .await
        .unwrap();
    assert!(back.as_str().starts_with(BACK));
    // Any one director may act: one signature completes it.
    let view = idm
        .agency_document(&client, &posted.id, Files::Read, now)
        .await
        .unwrap();
    assert_eq!(view.state, DocumentState::Signed);
    assert_eq!(view.signatures.len(), 1);
    assert_eq!(view.company.as_deref(), Some(COMPANY));
    let pdf = view.signed.unwrap();
    assert!(pdf.starts_with(FORM), "an incremental update");
    assert!(
        pdf.windows(b"/Reason".len()).any(|w| w == b"/Reason"),
        "the signature says for whom"
    );
    // The record names the document and the company.
    let signed = tuaton_store::audit::list(&db.store, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.action == "signature.create" && r.outcome == "success")
        .unwrap();
    let details: serde_json::Value = serde_json::from_str(&signed.details).unwrap();
    assert_eq!(details["company"], COMPANY);
    assert_eq!(details["document"], posted.id.as_str());
    assert_eq!(details["client_id"], "business-office");

    // The person's own signature carries their own certificate, not the company's.
    let own = own_signing(&idm, &session, now).await;
    let own_ids = tuaton_pki::subject_ids(&own).unwrap();
    assert_eq!(own_ids.organization, None);
    assert_ne!(own, asked.certificate);

    // The registry stops listing the company: the next signing for it is
    // refused, audited, and the representative certificate revoked; the
    // person's own certificate stays and signs.
    let later = idm
        .post_document(&client, upload(Some(COMPANY)), now)
        .await
        .unwrap();
    let refusals_before = audit_count(&db, "company.authority", false).await;
    companies.forget_all();
    let gone = idm
        .start_document_signing(&session, &later.id, now)
        .await
        .unwrap_err();
    assert_eq!(gone.code(), ErrorCode::CompanyNotFound);
    assert_eq!(
        audit_count(&db, "company.authority", false).await,
        refusals_before + 1
    );
    let held = certificates::signers_not_ended(db.store.conn().await.unwrap().conn(), &account)
        .await
        .unwrap();
    assert_eq!(
        held.len(),
        1,
        "only the person's own certificate is in force"
    );
    assert_eq!(held[0].der, own);
    let still = own_signing(&idm, &session, now).await;
    assert_eq!(still, own);
    let pending = idm
        .agency_document(&client, &later.id, Files::Skip, now)
        .await
        .unwrap();
    assert_eq!(pending.state, DocumentState::Pending);
    assert!(pending.signatures.is_empty());

    // Listed again, the director signs for the company under a new
    // representative certificate.
    companies.remember_all();
    let again = idm
        .start_document_signing(&session, &later.id, now)
        .await
        .unwrap();
    assert_ne!(again.certificate, asked.certificate);
    let ids = tuaton_pki::subject_ids(&again.certificate).unwrap();
    assert_eq!(ids.organization.as_deref(), Some("NTRTH-0105599000019"));

    // A company's document is declined only by a director, logged in.
    let refused = idm
        .decline_document(None, &later.id, now)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::LoginRequired);
    idm.decline_document(Some(&session), &later.id, now)
        .await
        .unwrap();
    let declined = tuaton_store::audit::list(&db.store, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .rfind(|r| r.action == "document.decline")
        .unwrap();
    assert_eq!(declined.actor, format!("account:{account}"));

    // An operator's revocation of the person's own certificate (for any
    // reason) stops the key for the company too.
    let serial = certificates::signers_not_ended(db.store.conn().await.unwrap().conn(), &account)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.der == own)
        .unwrap()
        .serial_hex;
    tuaton_idm::pki::revoke_certificate(
        &db.store,
        &serial,
        "affiliationChanged",
        "operator:test",
        now,
    )
    .await
    .unwrap();
    let third = idm
        .post_document(&client, upload(Some(COMPANY)), now)
        .await
        .unwrap();
    let stopped = idm
        .start_document_signing(&session, &third.id, now)
        .await
        .unwrap_err();
    assert_eq!(stopped.code(), ErrorCode::CertificateRevoked);
    audit_intact(&db).await;
}

async fn a_person_who_directs_no_company_signs_none_of_its_documents(db: TestDb) {
    let World {
        idm,
        client,
        session,
        now,
        _dir: _keys,
        ..
    } = world(&db, Arc::new(Companies::default())).await;
    // Somchai directs บริษัท ตัวตนพัฒนา, not บริษัท ร่วมใจทดสอบ.
    let posted = idm
        .post_document(&client, upload(Some("0105599000027")), now)
        .await
        .unwrap();
    let refused = idm
        .start_document_signing(&session, &posted.id, now)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NotADirector);
    // A dissolved company's document is not even taken.
    let dissolved = idm
        .post_document(&client, upload(Some("0105599000035")), now)
        .await
        .unwrap_err();
    assert_eq!(dissolved.code(), ErrorCode::CompanyDissolved);
    // A company's PDF leaves room for the signatures its rule asks for.
    let mut big = upload(Some("0105599000027"));
    big.bytes = vec![b'%'; tuaton_idm::signing::MAX_SENT_BYTES - 1024];
    let too_big = idm.post_document(&client, big, now).await.unwrap_err();
    assert_eq!(too_big.code(), ErrorCode::InvalidDocuments);
    let view = idm
        .agency_document(&client, &posted.id, Files::Skip, now)
        .await
        .unwrap();
    assert_eq!(view.state, DocumentState::Pending);
    assert_eq!(audit_count(&db, "signature.create", true).await, 0);
    audit_intact(&db).await;
}

/// A director enrolled and logged in, with their phone.
struct Director {
    phone: SoftPasskey,
    account: tuaton_core::AccountId,
    session: tuaton_idm::ActiveSession,
}

async fn director(
    idm: &Idm,
    who: &tuaton_idm::CitizenEvidenceInput,
    now: OffsetDateTime,
) -> Director {
    let mut phone = SoftPasskey::new(true);
    let (evidence, account) = enrol_person(idm, &mut phone, who, now).await;
    let session = logged_in(idm, &mut phone, &evidence, now).await;
    Director {
        phone,
        account,
        session,
    }
}

/// The person logged in (`session`, `phone`) signs document `id` through
/// the page's two steps; the certificate they signed under.
async fn signs_with(
    idm: &Idm,
    phone: &mut SoftPasskey,
    session: &tuaton_idm::ActiveSession,
    id: &str,
    now: OffsetDateTime,
) -> Vec<u8> {
    let asked = idm.start_document_signing(session, id, now).await.unwrap();
    let confirmed = answer(phone, &asked.options);
    idm.finish_document_signing(session, id, &confirmed, now)
        .await
        .unwrap();
    asked.certificate
}

/// `who` signs document `id`.
async fn signs(idm: &Idm, who: &mut Director, id: &str, now: OffsetDateTime) {
    signs_with(idm, &mut who.phone, &who.session, id, now).await;
}

/// The list of signatures a database writer makes document `id` carry.
async fn rewrite_signatures(db: &TestDb, id: &str, signatures: &str) {
    sqlx::query("UPDATE agency_documents SET signatures = $1 WHERE id = $2")
        .bind(signatures)
        .bind(id)
        .execute(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
}

/// The list as stored, text.
async fn signatures_of(db: &TestDb, id: &str) -> String {
    use sqlx::Row as _;
    let row = sqlx::query("SELECT signatures FROM agency_documents WHERE id = $1")
        .bind(id)
        .fetch_one(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    row.get::<String, _>(0)
}

async fn two_directors_sign_in_turn_and_nothing_else_completes_the_document(db: TestDb) {
    let World {
        idm,
        client,
        session: somchai,
        now,
        _dir: _keys,
        ..
    } = world(&db, Arc::new(Companies::default())).await;
    let mut first = director(&idm, &kamala(), now).await;
    let mut second = director(&idm, &pranee(), now).await;
    let posted = idm
        .post_document(&client, upload(Some(JOINTLY)), now)
        .await
        .unwrap();

    // A database writer who lists Kamala's signature before she signed
    // gets nothing from Pranee's: the file carries no signature of Kamala's.
    let forged = serde_json::json!([{
        "account_id": first.account.to_string(),
        "subject": "forged",
        "at_ms": tuaton_store::to_ms(now),
    }]);
    let untouched = signatures_of(&db, &posted.id).await;
    rewrite_signatures(&db, &posted.id, &forged.to_string()).await;
    let refused = idm
        .start_document_signing(&second.session, &posted.id, now)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InternalError, "{refused}");
    rewrite_signatures(&db, &posted.id, &untouched).await;

    // One director confirms at a time: Pranee cannot take over the
    // signing Kamala began, while Kamala's request waits.
    let asked = idm
        .start_document_signing(&first.session, &posted.id, now)
        .await
        .unwrap();
    let busy = idm
        .start_document_signing(&second.session, &posted.id, now)
        .await
        .unwrap_err();
    assert_eq!(busy.code(), ErrorCode::SigningInProgress);
    let confirmed = answer(&mut first.phone, &asked.options);
    idm.finish_document_signing(&first.session, &posted.id, &confirmed, now)
        .await
        .unwrap();
    let view = idm
        .agency_document(&client, &posted.id, Files::Skip, now)
        .await
        .unwrap();
    assert_eq!(view.state, DocumentState::Pending, "the rule asks for two");
    assert_eq!(view.signatures.len(), 1);
    let again = idm
        .start_document_signing(&first.session, &posted.id, now)
        .await
        .unwrap_err();
    assert_eq!(again.code(), ErrorCode::AlreadySigned);

    // A writer who lists Kamala twice, or names Somchai (no director) as
    // the signer of her signature, gets nothing either.
    let real = signatures_of(&db, &posted.id).await;
    let entry = serde_json::from_str::<serde_json::Value>(&real).unwrap()[0].clone();
    let mut somchais = entry.clone();
    somchais["account_id"] = serde_json::json!(somchai.account_id.to_string());
    for (list, code) in [
        (
            serde_json::json!([entry.clone(), entry.clone()]),
            ErrorCode::InternalError,
        ),
        (serde_json::json!([somchais]), ErrorCode::AuthorityChanged),
    ] {
        rewrite_signatures(&db, &posted.id, &list.to_string()).await;
        let refused = idm
            .start_document_signing(&second.session, &posted.id, now)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), code, "{refused}");
    }
    rewrite_signatures(&db, &posted.id, &real).await;

    // The second director completes it: one file, both signatures, in order.
    signs(&idm, &mut second, &posted.id, now).await;
    let view = idm
        .agency_document(&client, &posted.id, Files::Read, now)
        .await
        .unwrap();
    assert_eq!(view.state, DocumentState::Signed);
    let pdf = view.signed.unwrap();
    let found = tuaton_sign::pades::signatures(&pdf).unwrap();
    let people: Vec<Option<String>> = found
        .iter()
        .map(|s| tuaton_pki::subject_ids(&s.certificate).unwrap().person)
        .collect();
    assert_eq!(
        people,
        [
            Some("PNOTH-1999000000068".to_owned()),
            Some("PNOTH-1999000000084".to_owned())
        ]
    );

    // A director who signed and is suspended since leaves a document that
    // cannot be completed: their signature in it would not validate.
    let next = idm
        .post_document(&client, upload(Some(JOINTLY)), now)
        .await
        .unwrap();
    signs(&idm, &mut first, &next.id, now).await;
    idm.admin()
        .suspend_account(
            &tuaton_idm::Actor::Operator("test".into()),
            first.account.as_str(),
            "a test of a director suspended",
            now,
        )
        .await
        .unwrap();
    let stopped = idm
        .start_document_signing(&second.session, &next.id, now)
        .await
        .unwrap_err();
    assert_eq!(stopped.code(), ErrorCode::AuthorityChanged);
    let view = idm
        .agency_document(&client, &next.id, Files::Skip, now)
        .await
        .unwrap();
    assert_eq!(view.state, DocumentState::Pending);
    assert_eq!(view.signatures.len(), 1);
    audit_intact(&db).await;
}

async fn a_document_posted_for_one_person_is_declined_only_by_them(db: TestDb) {
    let World {
        idm,
        client,
        mut phone,
        session,
        now,
        _dir: _keys,
        ..
    } = world(&db, Arc::new(Companies::default())).await;
    let other = director(&idm, &kamala(), now).await;
    // The agency learns Somchai's sub from a first signing.
    let first = idm.post_document(&client, upload(None), now).await.unwrap();
    signs_with(&idm, &mut phone, &session, &first.id, now).await;
    let sub = idm
        .agency_document(&client, &first.id, Files::Skip, now)
        .await
        .unwrap()
        .signer
        .unwrap();
    let mut named = upload(None);
    named.subject = Some(sub);
    let named = idm.post_document(&client, named, now).await.unwrap();
    assert!(idm.shown_document(&named.id, now).await.unwrap().named);

    let anonymous = idm
        .decline_document(None, &named.id, now)
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), ErrorCode::LoginRequired);
    let stranger = idm
        .decline_document(Some(&other.session), &named.id, now)
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), ErrorCode::NotTheSigner);
    let view = idm
        .agency_document(&client, &named.id, Files::Skip, now)
        .await
        .unwrap();
    assert_eq!(view.state, DocumentState::Pending);
    idm.decline_document(Some(&session), &named.id, now)
        .await
        .unwrap();
    let view = idm
        .agency_document(&client, &named.id, Files::Skip, now)
        .await
        .unwrap();
    assert_eq!(view.state, DocumentState::Declined);
    // One posted for anyone is still declined by whoever holds the page.
    let open = idm.post_document(&client, upload(None), now).await.unwrap();
    assert!(!idm.shown_document(&open.id, now).await.unwrap().named);
    idm.decline_document(None, &open.id, now).await.unwrap();
    audit_intact(&db).await;
}

async fn upkeep_ends_a_former_directors_representation_without_their_acting(db: TestDb) {
    let companies = Arc::new(Companies::default());
    let World {
        idm,
        client,
        mut phone,
        account,
        session,
        now,
        _dir: _keys,
        ..
    } = world(&db, companies.clone()).await;
    let own = own_signing(&idm, &session, now).await;
    let posted = idm
        .post_document(&client, upload(Some(COMPANY)), now)
        .await
        .unwrap();
    let representative = signs_with(&idm, &mut phone, &session, &posted.id, now).await;
    let in_force = || async {
        certificates::signers_not_ended(db.store.conn().await.unwrap().conn(), &account)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.revoked.is_none())
            .map(|c| c.der)
            .collect::<Vec<_>>()
    };
    assert_eq!(in_force().await.len(), 2, "own and representative");

    // Certificates stored before the company was recorded are read once.
    sqlx::query("UPDATE certificates SET represents = NULL WHERE role = 'signer'")
        .execute(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    let first = idm.sweep_representations(now).await.unwrap();
    assert_eq!(first.classified, 2);
    assert_eq!((first.confirmed, first.ended), (0, 0), "confirmed at issue");

    // A day on, the registry is asked again: still a director, kept.
    let day = time::Duration::DAY + time::Duration::seconds(1);
    let kept = idm.sweep_representations(now + day).await.unwrap();
    assert_eq!((kept.classified, kept.confirmed, kept.ended), (0, 1, 0));
    assert_eq!(
        idm.sweep_representations(now + day)
            .await
            .unwrap()
            .confirmed,
        0
    );

    // A registry that does not answer ends nothing.
    companies.set_down(true);
    let later = now + day + day;
    let deferred = idm.sweep_representations(later).await.unwrap();
    assert_eq!((deferred.deferred, deferred.ended), (1, 0));
    assert_eq!(in_force().await.len(), 2);
    companies.set_down(false);

    // The registry no longer lists him: the representative certificate is
    // revoked, audited, and his own stays in force.
    let refusals = audit_count(&db, "company.authority", false).await;
    companies.forget_all();
    let ended = idm.sweep_representations(later).await.unwrap();
    assert_eq!(ended.ended, 1);
    assert_eq!(in_force().await, [own]);
    assert_eq!(
        audit_count(&db, "company.authority", false).await,
        refusals + 1
    );
    let revoked = certificates::by_serial(
        db.store.conn().await.unwrap().conn(),
        &tuaton_pki::Facts::of(&representative).unwrap().serial_hex,
    )
    .await
    .unwrap();
    assert_eq!(
        revoked[0].revoked.as_ref().map(|r| r.reason.as_str()),
        Some("affiliationChanged")
    );
    let again = idm.sweep_representations(later + day).await.unwrap();
    assert_eq!(again, tuaton_idm::RepresentationSweep::default());
    audit_intact(&db).await;
}

on_both_engines!(
    upkeep_ends_a_former_directors_representation_without_their_acting,
    a_director_signs_for_the_company_with_a_certificate_that_names_it,
    a_person_who_directs_no_company_signs_none_of_its_documents,
    two_directors_sign_in_turn_and_nothing_else_completes_the_document,
    a_document_posted_for_one_person_is_declined_only_by_them,
);
