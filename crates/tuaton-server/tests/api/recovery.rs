//! Recovery after losing every passkey: re-proofing at the account's level first.

use http::StatusCode;
use serde_json::{Value, json};
use tuaton_store::testing::TestDb;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::common::*;
use crate::on_both_engines;

const SOMCHAI: &str = "1999000000017";

fn somying() -> Value {
    person(
        "1999000000025",
        "สมหญิง",
        "รักไทย",
        "1985-07-15",
        "ME1-0234567-01",
    )
}

fn thanaphon() -> Value {
    person(
        "1999000000050",
        "ธนพล",
        "มั่นคง",
        "1978-05-09",
        "ME4-2222222-34",
    )
}

async fn account_id(db: &TestDb, citizen: &str) -> tuaton_core::AccountId {
    let (id,): (String,) = sqlx::query_as("SELECT id FROM accounts WHERE citizen_id = $1")
        .bind(citizen)
        .fetch_one(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    tuaton_core::AccountId::parse(&id).unwrap()
}

/// Thanaphon, enrolled, logged in and granted the officer role by an operator.
async fn officer(db: &TestDb) -> Client {
    let mut c = client(db).await;
    enrolled_and_logged_in(&mut c, thanaphon()).await;
    let id = account_id(db, "1999000000050").await;
    let mut tx = db.store.begin().await.unwrap();
    tuaton_store::companies::grant_role(
        &mut tx,
        &id,
        tuaton_store::companies::Role::Officer,
        "operator:test",
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    c
}

fn at_the_counter(evidence: Value) -> Value {
    json!({ "evidence": evidence, "attestation": {
        "method": "visual_inspection", "documents_seen": ["thai_id_card"], "biometric_checked": false } })
}

async fn recover(c: &mut Client, body: Value) -> (StatusCode, Value) {
    c.call("POST", "/api/v1/recovery", Some(body), false).await
}

async fn a_lost_passkey_is_replaced_after_the_registry_check_again(db: TestDb) {
    let mut old_device = client(&db).await;
    enrolled_and_logged_in(&mut old_device, somchai()).await;
    let id = account_id(&db, SOMCHAI).await;
    let (s, _) = old_device
        .call("GET", "/api/v1/passkeys", None, false)
        .await;
    assert_eq!(s, StatusCode::OK);

    // On a new phone, with no passkey: the card details again.
    let mut new_device = client(&db).await;
    let (s, v) = recover(&mut new_device, somchai()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["account_id"], json!(id));
    assert_eq!(v["ial"], json!(2.1));
    assert_eq!(v["sessions_ended"], json!(1));
    let grant = v["enrolment_token"].as_str().unwrap().to_owned();

    // Every session ended: whoever holds the old device is logged out.
    let (s, _) = old_device
        .call("GET", "/api/v1/passkeys", None, false)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(count(&db, "sessions").await, 0);

    // The grant registers a new passkey, which logs in; the grant is then spent.
    let mut authn = SoftPasskey::new(true);
    register(&mut new_device, &mut authn, Some(&grant), "new phone").await;
    let (s, v) = login(&mut new_device, &mut authn, Some(SOMCHAI)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["account_id"], json!(id));
    let (s, v) = client(&db)
        .await
        .call(
            "POST",
            "/api/v1/passkeys/registration/start",
            Some(json!({ "enrolment_token": grant })),
            false,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unknown_ceremony")),
        "{v}"
    );
    let (_, list) = new_device
        .call("GET", "/api/v1/passkeys", None, false)
        .await;
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "the old passkey is left as it was"
    );

    // A second proofing decision, by the registry.
    let decisions = tuaton_store::proofing::for_account(db.store.conn().await.unwrap().conn(), &id)
        .await
        .unwrap();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[1].method, "remote_registry");

    // Audited, with the decision, and without personal data.
    let recs = tuaton_store::audit::list(&db.store, 0, 1000).await.unwrap();
    let rec = recs
        .iter()
        .find(|r| r.action == "account.recovery")
        .unwrap();
    assert_eq!(
        (rec.outcome.as_str(), rec.target.as_str()),
        ("success", id.as_str())
    );
    assert!(rec.details.contains(&decisions[1].id), "{}", rec.details);
    assert!(rec.details.contains(&decisions[1].evidence_digest));
    assert!(rec.details.contains("dev-registry"));
    for personal in [
        SOMCHAI,
        "1-9990-00000-01-7",
        "สมชาย",
        "ใจดี",
        "Somchai",
        "1964-02-22",
        "JT0",
        "somchai@example.test",
    ] {
        assert!(
            !rec.details.contains(personal) && !rec.target.contains(personal),
            "{personal} in {}",
            rec.details
        );
    }

    // A notice to the contact address is queued; upkeep sends it (notify.rs).
    let notices =
        tuaton_store::notifications::for_account(db.store.conn().await.unwrap().conn(), &id)
            .await
            .unwrap();
    assert_eq!(notices.len(), 1);
    let n = &notices[0];
    assert_eq!(
        (n.kind.as_str(), n.channel.as_str(), n.address.as_str()),
        ("recovery_started", "email", "somchai@example.test")
    );
    assert!(n.sent_at.is_none());
    db.cleanup().await;
}

async fn wrong_details_or_a_suspended_account_get_no_grant(db: TestDb) {
    let mut c = client(&db).await;
    enrolled_and_logged_in(&mut c, somchai()).await;
    let id = account_id(&db, SOMCHAI).await;
    let ceremonies_before = count(&db, "ceremonies").await;

    let mut attacker = client(&db).await;
    let mut wrong = somchai();
    wrong["thai_family_name"] = json!("ใจร้าย");
    let (s, v) = recover(&mut attacker, wrong).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("details_mismatch")),
        "{v}"
    );
    assert!(v.get("enrolment_token").is_none());
    let mut bad = somchai();
    bad["laser_code"] = json!("JT0-1234567-88");
    let (s, _) = recover(&mut attacker, bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = recover(&mut attacker, json!({ "citizen_id": SOMCHAI })).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    assert_eq!(count(&db, "ceremonies").await, ceremonies_before);
    assert_eq!(count(&db, "sessions").await, 1, "the owner stays logged in");
    assert_eq!(count(&db, "notifications").await, 0);
    assert_eq!(count(&db, "proofing_decisions").await, 1);

    // An operator suspended the account: recovery does not lift that.
    let mut tx = db.store.begin().await.unwrap();
    tuaton_store::accounts::set_state(
        &mut tx,
        &id,
        tuaton_store::accounts::AccountState::Suspended,
        Some("fraud review"),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (s, v) = recover(&mut attacker, somchai()).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("account_suspended")),
        "{v}"
    );
    assert_eq!(count(&db, "ceremonies").await, ceremonies_before);
    assert_eq!(count(&db, "notifications").await, 0);
    db.cleanup().await;
}

async fn an_unknown_citizen_gets_a_generic_answer_and_nothing_is_created(db: TestDb) {
    let mut c = client(&db).await;
    let (s, v) = recover(&mut c, somying()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert!(v.get("enrolment_token").is_none(), "{v}");
    assert!(v["detail"].is_string());
    for table in [
        "accounts",
        "proofing_decisions",
        "ceremonies",
        "sessions",
        "notifications",
    ] {
        assert_eq!(count(&db, table).await, 0, "{table}");
    }
    // The attempt is audited by evidence digest, not by citizen id.
    let recs = tuaton_store::audit::list(&db.store, 0, 100).await.unwrap();
    let rec = recs
        .iter()
        .find(|r| r.action == "account.recovery")
        .unwrap();
    assert_eq!(rec.outcome, "failure");
    assert_eq!(rec.target.len(), 64);
    assert!(!rec.target.contains("1999000000025") && !rec.details.contains("1999000000025"));
    db.cleanup().await;
}

async fn an_account_proofed_in_person_needs_an_officer_to_recover(db: TestDb) {
    let mut officer = officer(&db).await;
    let (s, v) = officer
        .call(
            "POST",
            "/api/v1/officer/proofings",
            Some(at_the_counter(somchai())),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["ial"], json!(2.2));
    let decisions = count(&db, "proofing_decisions").await;

    let mut c = client(&db).await;
    let (s, v) = recover(&mut c, somchai()).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("officer_recovery_required")),
        "{v}"
    );
    assert!(v.get("enrolment_token").is_none());
    assert_eq!(count(&db, "proofing_decisions").await, decisions);
    assert_eq!(count(&db, "notifications").await, 0);
    db.cleanup().await;
}

async fn an_officer_re_proofing_an_account_with_only_suspended_passkeys_grants_a_new_one(
    db: TestDb,
) {
    let mut owner = client(&db).await;
    enrolled_and_logged_in(&mut owner, somchai()).await;
    let mut officer = officer(&db).await;

    // With a working passkey, re-proofing raises the level but hands out no grant.
    let (s, v) = officer
        .call(
            "POST",
            "/api/v1/officer/proofings",
            Some(at_the_counter(somchai())),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["enrolment_token"].is_null(), "{v}");

    // Its only passkey is suspended (a cloned-authenticator signal).
    let id = account_id(&db, SOMCHAI).await;
    let creds = tuaton_store::passkeys::for_account(db.store.conn().await.unwrap().conn(), &id)
        .await
        .unwrap();
    assert_eq!(creds.len(), 1);
    let mut tx = db.store.begin().await.unwrap();
    tuaton_store::passkeys::suspend(&creds[0].cred_id)
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let (s, v) = officer
        .call(
            "POST",
            "/api/v1/officer/proofings",
            Some(at_the_counter(somchai())),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let grant = v["enrolment_token"].as_str().unwrap().to_owned();
    let mut fresh = client(&db).await;
    let mut authn = SoftPasskey::new(true);
    register(&mut fresh, &mut authn, Some(&grant), "new key").await;
    let (s, v) = login(&mut fresh, &mut authn, Some(SOMCHAI)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    db.cleanup().await;
}

on_both_engines!(
    a_lost_passkey_is_replaced_after_the_registry_check_again,
    wrong_details_or_a_suspended_account_get_no_grant,
    an_unknown_citizen_gets_a_generic_answer_and_nothing_is_created,
    an_account_proofed_in_person_needs_an_officer_to_recover,
    an_officer_re_proofing_an_account_with_only_suspended_passkeys_grants_a_new_one,
);
