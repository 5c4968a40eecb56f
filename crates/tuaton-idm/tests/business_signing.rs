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
    Companies, answer, audit_intact, enrol_with_passkey, idm_with_companies, logged_in,
    public_client,
};

const FORM: &[u8] = include_bytes!("../../../tests/fixtures/agency-form.pdf");
/// บริษัท ตัวตนพัฒนา จำกัด: any one director, Somchai among them.
const COMPANY: &str = "0105599000019";
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

on_both_engines!(
    a_director_signs_for_the_company_with_a_certificate_that_names_it,
    a_person_who_directs_no_company_signs_none_of_its_documents,
);
