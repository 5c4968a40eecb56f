//! Recovery after losing every passkey. The attacker throughout holds a
//! photocopy of Somchai's ID card (front and back, laser code included):
//! the details check out with the registry, so only the cooling-off period,
//! the owner's notice and the owner's passkey stand between them and the
//! account.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};
use time::Duration;
use tuaton_core::FixedClock;
use tuaton_store::testing::TestDb;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
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

/// A client of an app whose clock the test moves.
fn clocked(db: &TestDb, clock: &Arc<FixedClock>) -> Client {
    Client {
        app: app_with_clock(db, clock.clone()),
        cookie: None,
        csrf: None,
    }
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

async fn request(c: &mut Client, body: Value) -> (StatusCode, Value) {
    c.call("POST", "/api/v1/recovery", Some(body), false).await
}

async fn claim(c: &mut Client, taken: &Value, keep: bool) -> (StatusCode, Value) {
    let path = format!(
        "/api/v1/recovery/{}/grant",
        taken["recovery_id"].as_str().unwrap()
    );
    let body = json!({ "recovery_token": taken["recovery_token"], "keep_passkeys": keep });
    c.call("POST", &path, Some(body), false).await
}

async fn cancel_with(
    c: &mut Client,
    authn: &mut SoftPasskey,
    taken: &Value,
) -> (StatusCode, Value) {
    let base = format!(
        "/api/v1/recovery/{}/cancel",
        taken["recovery_id"].as_str().unwrap()
    );
    assertion(c, authn, &base, None).await
}

async fn audit_actions(db: &TestDb) -> Vec<tuaton_store::audit::AuditRecord> {
    tuaton_store::audit::list(&db.store, 0, 1000).await.unwrap()
}

async fn notices(db: &TestDb, id: &tuaton_core::AccountId) -> Vec<(String, Option<String>)> {
    tuaton_store::notifications::for_account(db.store.conn().await.unwrap().conn(), id)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.kind, n.reference))
        .collect()
}

async fn a_recovery_waits_out_the_cooling_off_period_then_replaces_the_lost_passkey(db: TestDb) {
    let clock = fixed_clock();
    let mut old_device = clocked(&db, &clock);
    let mut old_key = enrolled_and_logged_in(&mut old_device, somchai()).await;
    let id = account_id(&db, SOMCHAI).await;

    // A minute later, on a new phone, with no passkey: the card details again.
    clock.advance(Duration::minutes(1));
    let mut new_device = clocked(&db, &clock);
    let (s, taken) = request(&mut new_device, somchai()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{taken}");
    let recovery_id = taken["recovery_id"].as_str().unwrap().to_owned();
    let ready: time::OffsetDateTime = time::OffsetDateTime::parse(
        taken["ready_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        ready,
        tuaton_core::Clock::now(&*clock) + Duration::hours(72)
    );
    assert!(
        taken.get("enrolment_token").is_none(),
        "no grant yet: {taken}"
    );

    // The owner is told at once, with the recovery the link cancels, and
    // keeps every session and passkey meanwhile; the account page lists it.
    assert_eq!(
        notices(&db, &id).await,
        [("recovery_requested".to_owned(), Some(recovery_id.clone()))]
    );
    let (s, me) = old_device.call("GET", "/api/v1/me", None, false).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["open_recoveries"][0]["id"], json!(recovery_id));
    assert_eq!(me["open_recoveries"][0]["path"], json!("remote"));

    // The grant waits for the cooling-off period; a wrong token never gets it.
    let (s, v) = claim(&mut new_device, &taken, false).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("recovery_cooling_off")),
        "{v}"
    );
    clock.advance(Duration::hours(71));
    let (s, _) = claim(&mut new_device, &taken, false).await;
    assert_eq!(s, StatusCode::CONFLICT);
    clock.advance(Duration::hours(1));
    let mut forged = taken.clone();
    forged["recovery_token"] = json!("AAAAAAAAAAAAAAAAAAAAAA");
    let (s, v) = claim(&mut new_device, &forged, false).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_recovery")),
        "{v}"
    );
    let (s, grant) = claim(&mut new_device, &taken, false).await;
    assert_eq!(s, StatusCode::CREATED, "{grant}");
    assert_eq!(grant["account_id"], json!(id));
    assert_eq!(grant["ial"], json!(2.1));
    assert_eq!(grant["keep_passkeys"], json!(false));

    // The old device logs in again (its session idled out) before the new
    // passkey is registered: until then nothing has changed.
    let (s, v) = login(&mut old_device, &mut old_key, Some(SOMCHAI)).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Registering the new passkey completes the recovery: the old passkey is
    // removed and every session ended, in the same transaction.
    let mut new_key = SoftPasskey::new(true);
    register(
        &mut new_device,
        &mut new_key,
        grant["enrolment_token"].as_str(),
        "new phone",
    )
    .await;
    let (s, _) = old_device.call("GET", "/api/v1/me", None, false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(count(&db, "sessions").await, 0);
    let left = tuaton_store::passkeys::for_account(db.store.conn().await.unwrap().conn(), &id)
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "the old passkey is removed");
    assert_eq!(left[0].name, "new phone");
    let (s, v) = login(&mut new_device, &mut new_key, Some(SOMCHAI)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, list) = new_device
        .call("GET", "/api/v1/passkeys", None, false)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        notices(&db, &id).await,
        [
            ("recovery_requested".to_owned(), Some(recovery_id.clone())),
            ("recovery_completed".to_owned(), Some(recovery_id.clone())),
        ]
    );

    // Done once: the token gives nothing more.
    let (s, _) = claim(&mut new_device, &taken, false).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A second proofing decision, by the registry.
    let decisions = tuaton_store::proofing::for_account(db.store.conn().await.unwrap().conn(), &id)
        .await
        .unwrap();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[1].method, "remote_registry");

    // Every step audited, with the decision, without personal data.
    let recs = audit_actions(&db).await;
    let of = |action: &str| {
        recs.iter()
            .find(|r| r.action == action && r.outcome == "success")
            .unwrap_or_else(|| panic!("{action} not audited"))
    };
    let requested = of("account.recovery.request");
    assert_eq!(requested.target, id.as_str());
    assert!(
        requested.details.contains(&decisions[1].id),
        "{}",
        requested.details
    );
    assert!(requested.details.contains(&decisions[1].evidence_digest));
    assert!(of("account.recovery.claim").details.contains(&recovery_id));
    let completed = of("account.recovery.complete");
    assert!(
        completed.details.contains("passkeys_removed"),
        "{}",
        completed.details
    );
    assert!(
        recs.iter()
            .any(|r| r.action == "account.recovery.claim" && r.outcome == "failure"),
        "the early and forged claims are audited"
    );
    for rec in recs
        .iter()
        .filter(|r| r.action.starts_with("account.recovery"))
    {
        for personal in [
            SOMCHAI,
            "1-9990-00000-01-7",
            "สมชาย",
            "ใจดี",
            "Somchai",
            "1964-02-22",
            "JT0",
            "somchai@example.test",
            taken["recovery_token"].as_str().unwrap(),
        ] {
            assert!(
                !rec.details.contains(personal) && !rec.target.contains(personal),
                "{personal} in {}",
                rec.details
            );
        }
    }
    db.cleanup().await;
}

async fn the_owner_cancels_with_a_passkey_and_the_photocopy_wins_nothing(db: TestDb) {
    let clock = fixed_clock();
    let mut owner = clocked(&db, &clock);
    let mut key = enrolled_and_logged_in(&mut owner, somchai()).await;
    let id = account_id(&db, SOMCHAI).await;

    let mut attacker = clocked(&db, &clock);
    let (s, taken) = request(&mut attacker, somchai()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{taken}");

    // The owner opens the notice's link on a device without a session and
    // confirms with the passkey: no session is made, the recovery ends.
    let mut from_mail = clocked(&db, &clock);
    let (s, v) = cancel_with(&mut from_mail, &mut key, &taken).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert!(from_mail.cookie.is_none(), "cancelling logs nobody in");
    let again = format!(
        "/api/v1/recovery/{}/cancel/start",
        taken["recovery_id"].as_str().unwrap()
    );
    let (s, v) = from_mail.call("POST", &again, None, false).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_recovery")),
        "cancelled once: {v}"
    );

    clock.advance(Duration::hours(73));
    let (s, v) = claim(&mut attacker, &taken, false).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_recovery")),
        "{v}"
    );
    assert_eq!(count(&db, "passkeys").await, 1);
    let recs = audit_actions(&db).await;
    let cancel = recs
        .iter()
        .find(|r| r.action == "account.recovery.cancel")
        .unwrap();
    assert_eq!(
        (cancel.actor.as_str(), cancel.outcome.as_str()),
        (format!("account:{id}").as_str(), "success")
    );
    db.cleanup().await;
}

async fn a_cancel_after_the_grant_stops_the_registration_and_a_session_can_cancel_too(db: TestDb) {
    let clock = fixed_clock();
    let mut owner = clocked(&db, &clock);
    let mut owner_key = enrolled_and_logged_in(&mut owner, somchai()).await;
    let mut attacker = clocked(&db, &clock);

    // A second request, cancelled from the account page.
    let (_, first) = request(&mut attacker, somchai()).await;
    let (_, second) = request(&mut attacker, somchai()).await;
    let path = format!(
        "/api/v1/me/recoveries/{}/cancel",
        second["recovery_id"].as_str().unwrap()
    );
    let (s, v) = owner.call("POST", &path, None, false).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the CSRF token is needed: {v}");
    let (s, v) = owner.call("POST", &path, None, true).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (_, me) = owner.call("GET", "/api/v1/me", None, false).await;
    assert_eq!(me["open_recoveries"].as_array().unwrap().len(), 1, "{me}");

    // The first is claimed after the wait and only then cancelled (the owner
    // was away for three days): its grant no longer registers anything.
    clock.advance(Duration::hours(72));
    let (s, grant) = claim(&mut attacker, &first, false).await;
    assert_eq!(s, StatusCode::CREATED, "{grant}");
    let (s, start) = attacker
        .call(
            "POST",
            "/api/v1/passkeys/registration/start",
            Some(json!({ "enrolment_token": grant["enrolment_token"] })),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{start}");
    let mut from_mail = clocked(&db, &clock);
    let (s, v) = cancel_with(&mut from_mail, &mut owner_key, &first).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let ccr: webauthn_rs::prelude::CreationChallengeResponse =
        serde_json::from_value(json!({ "publicKey": start["public_key"] })).unwrap();
    let mut attacker_key = SoftPasskey::new(true);
    let cred = attacker_key
        .do_registration(url::Url::parse(ORIGIN).unwrap(), ccr)
        .unwrap();
    let (s, v) = attacker
        .call(
            "POST",
            "/api/v1/passkeys/registration/finish",
            Some(json!({ "ceremony_id": start["ceremony_id"], "name": "mine now", "credential": cred })),
            false,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_recovery")),
        "{v}"
    );
    assert_eq!(count(&db, "passkeys").await, 1, "nothing was registered");
    let (s, v) = login(&mut from_mail, &mut owner_key, Some(SOMCHAI)).await;
    assert_eq!(s, StatusCode::OK, "the owner's passkey still works: {v}");
    db.cleanup().await;
}

async fn kept_passkeys_stay_when_the_requester_says_so(db: TestDb) {
    let clock = fixed_clock();
    let mut owner = clocked(&db, &clock);
    let mut security_key = enrolled_and_logged_in(&mut owner, somchai()).await;
    let (_, taken) = request(&mut owner, somchai()).await;
    clock.advance(Duration::hours(72));
    let (s, grant) = claim(&mut owner, &taken, true).await;
    assert_eq!(
        (s, &grant["keep_passkeys"]),
        (StatusCode::CREATED, &json!(true)),
        "{grant}"
    );
    let mut phone = SoftPasskey::new(true);
    register(
        &mut owner,
        &mut phone,
        grant["enrolment_token"].as_str(),
        "new phone",
    )
    .await;
    assert_eq!(count(&db, "passkeys").await, 2);
    assert_eq!(count(&db, "sessions").await, 0, "sessions end either way");
    let mut c = clocked(&db, &clock);
    let (s, v) = login(&mut c, &mut security_key, Some(SOMCHAI)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    db.cleanup().await;
}

async fn wrong_details_or_a_suspended_account_start_nothing(db: TestDb) {
    let mut c = client(&db).await;
    enrolled_and_logged_in(&mut c, somchai()).await;
    let id = account_id(&db, SOMCHAI).await;

    let mut attacker = client(&db).await;
    let mut wrong = somchai();
    wrong["thai_family_name"] = json!("ใจร้าย");
    let (s, v) = request(&mut attacker, wrong).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("details_mismatch")),
        "{v}"
    );
    assert!(v.get("recovery_id").is_none());
    let mut bad = somchai();
    bad["laser_code"] = json!("JT0-1234567-88");
    let (s, _) = request(&mut attacker, bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = request(&mut attacker, json!({ "citizen_id": SOMCHAI })).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let mut extra = somchai();
    extra["keep_passkeys"] = json!(true);
    let (s, v) = request(&mut attacker, extra).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused: {v}"
    );

    assert_eq!(count(&db, "recoveries").await, 0);
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
    let (s, v) = request(&mut attacker, somchai()).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("account_suspended")),
        "{v}"
    );
    assert_eq!(count(&db, "recoveries").await, 0);
    assert_eq!(count(&db, "notifications").await, 0);
    db.cleanup().await;
}

/// The keys of an answer, with the type of each value.
fn shape(v: &Value) -> Vec<(String, &'static str)> {
    let mut keys: Vec<_> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let t = match v {
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "other",
            };
            (k.clone(), t)
        })
        .collect();
    keys.sort();
    keys
}

async fn unknown_details_and_a_flood_get_the_same_answer_and_create_nothing(db: TestDb) {
    let clock = fixed_clock();
    let mut c = clocked(&db, &clock);
    enrolled_and_logged_in(&mut c, somchai()).await;
    let id = account_id(&db, SOMCHAI).await;
    let (s, real) = request(&mut c, somchai()).await;
    assert_eq!(s, StatusCode::ACCEPTED);

    // Somying has no account: the same status, fields and times.
    let mut stranger = clocked(&db, &clock);
    let (s, none) = request(&mut stranger, somying()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{none}");
    assert_eq!(shape(&none), shape(&real));
    assert_eq!(none["ready_at"], real["ready_at"]);
    assert_eq!(none["detail"], real["detail"]);
    assert_eq!(count(&db, "accounts").await, 1);
    assert_eq!(count(&db, "recoveries").await, 1);
    clock.advance(Duration::hours(72));
    let (s, v) = claim(&mut stranger, &none, false).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_recovery"))
    );
    // Audited by evidence digest, not by citizen id.
    let recs = audit_actions(&db).await;
    let rec = recs
        .iter()
        .find(|r| r.action == "account.recovery.request" && r.outcome == "failure")
        .unwrap();
    assert_eq!(rec.target.len(), 64);
    assert!(!rec.target.contains("1999000000025") && !rec.details.contains("1999000000025"));

    // A flood of requests for Somchai: three open at most, one notice each;
    // the rest answered alike and dropped.
    for _ in 0..5 {
        let (s, v) = request(&mut stranger, somchai()).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(shape(&v), shape(&real));
    }
    let open = tuaton_store::recoveries::open_for_account(
        db.store.conn().await.unwrap().conn(),
        &id,
        tuaton_core::Clock::now(&*clock),
    )
    .await
    .unwrap();
    assert_eq!(open.len(), tuaton_idm::MAX_OPEN_RECOVERIES);
    assert_eq!(
        notices(&db, &id).await.len(),
        tuaton_idm::MAX_OPEN_RECOVERIES
    );
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
    let (s, v) = request(&mut c, somchai()).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("officer_recovery_required")),
        "{v}"
    );
    assert!(v.get("recovery_id").is_none());
    assert_eq!(count(&db, "proofing_decisions").await, decisions);
    assert_eq!(count(&db, "recoveries").await, 0);
    db.cleanup().await;
}

async fn an_officer_recovers_an_account_at_once_and_the_stolen_phone_stops_working(db: TestDb) {
    let mut owner = client(&db).await;
    let stolen_phone = enrolled_and_logged_in(&mut owner, somchai()).await;
    let mut officer = officer(&db).await;

    // Re-proofed only to raise the level: no grant while a passkey works.
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

    // The phone was stolen: at the counter, no waiting, the grant comes with the proofing.
    let mut stolen = at_the_counter(somchai());
    stolen["recover"] = json!(true);
    let (s, v) = officer
        .call("POST", "/api/v1/officer/proofings", Some(stolen), true)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let grant = v["enrolment_token"].as_str().unwrap().to_owned();
    let mut fresh = client(&db).await;
    let mut new_key = SoftPasskey::new(true);
    register(&mut fresh, &mut new_key, Some(&grant), "new key").await;
    let (s, v) = login(&mut fresh, &mut new_key, Some(SOMCHAI)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = account_id(&db, SOMCHAI).await;
    let left = tuaton_store::passkeys::for_account(db.store.conn().await.unwrap().conn(), &id)
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["new key"],
        "the stolen phone's passkey was removed"
    );
    drop(stolen_phone);
    let recs = audit_actions(&db).await;
    let claim = recs
        .iter()
        .find(|r| r.action == "account.recovery.claim")
        .unwrap();
    assert!(claim.actor.starts_with("officer:"), "{}", claim.actor);
    assert!(claim.details.contains("\"officer\""), "{}", claim.details);
    db.cleanup().await;
}

async fn a_face_match_needs_a_configured_matcher(db: TestDb) {
    let mut c = client(&db).await;
    enrolled_and_logged_in(&mut c, somchai()).await;
    let mut body = somchai();
    body["face_capture"] = json!({ "media": "AAAA", "media_type": "image/jpeg" });
    let (s, v) = request(&mut c, body.clone()).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("face_match_unavailable")
        ),
        "{v}"
    );
    body["face_capture"]["media"] = json!("not base64!");
    let (s, v) = request(&mut c, body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(!v["detail"].as_str().unwrap().contains("not base64!"));
    assert_eq!(count(&db, "recoveries").await, 0);
    db.cleanup().await;
}

async fn completing_one_recovery_cancels_the_others_and_a_raised_level_stops_them(db: TestDb) {
    let clock = fixed_clock();
    let mut owner = clocked(&db, &clock);
    enrolled_and_logged_in(&mut owner, somchai()).await;
    let mut attacker = clocked(&db, &clock);
    let (_, first) = request(&mut attacker, somchai()).await;
    let (_, second) = request(&mut attacker, somchai()).await;
    clock.advance(Duration::hours(72));

    // The first completes (the owner's own, say); the second, an attacker's
    // filed beside it, must not take the account back later.
    let (s, grant) = claim(&mut owner, &first, false).await;
    assert_eq!(s, StatusCode::CREATED, "{grant}");
    let mut key = SoftPasskey::new(true);
    register(
        &mut owner,
        &mut key,
        grant["enrolment_token"].as_str(),
        "new phone",
    )
    .await;
    let (s, v) = claim(&mut attacker, &second, false).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_recovery")),
        "{v}"
    );
    let recs = audit_actions(&db).await;
    let done = recs
        .iter()
        .find(|r| r.action == "account.recovery.complete")
        .unwrap();
    assert!(
        done.details
            .contains(second["recovery_id"].as_str().unwrap()),
        "the cancelled one is named: {}",
        done.details
    );

    // A new remote request; before it is claimed, an officer raises the
    // account's level: the request's registry check no longer reaches it.
    let (_, third) = request(&mut attacker, somchai()).await;
    let mut officer = officer(&db).await;
    let (s, v) = officer
        .call(
            "POST",
            "/api/v1/officer/proofings",
            Some(at_the_counter(somchai())),
            true,
        )
        .await;
    assert_eq!((s, &v["ial"]), (StatusCode::CREATED, &json!(2.2)), "{v}");
    clock.advance(Duration::hours(72));
    let (s, v) = claim(&mut attacker, &third, false).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("officer_recovery_required")),
        "{v}"
    );
    db.cleanup().await;
}

async fn cancelling_is_offered_alike_whether_or_not_the_owner_has_a_passkey_left(db: TestDb) {
    let mut owner = client(&db).await;
    enrolled_and_logged_in(&mut owner, somchai()).await;
    let mut attacker = client(&db).await;
    let (_, with_key) = request(&mut attacker, somchai()).await;
    let start = |taken: &Value| {
        format!(
            "/api/v1/recovery/{}/cancel/start",
            taken["recovery_id"].as_str().unwrap()
        )
    };
    let (s, a) = attacker.call("POST", &start(&with_key), None, false).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    // The only passkey is suspended (a cloned-authenticator signal).
    let id = account_id(&db, SOMCHAI).await;
    let creds = tuaton_store::passkeys::for_account(db.store.conn().await.unwrap().conn(), &id)
        .await
        .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    // (Written here without Tuaton's seal: the row is only offered, never
    // used, below.)
    tuaton_store::passkeys::suspend(&creds[0].cred_id, "")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (s, b) = attacker.call("POST", &start(&with_key), None, false).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let keys = |v: &Value| {
        let mut k: Vec<String> = v["public_key"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(
        a["public_key"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        b["public_key"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len()
    );
    assert_ne!(
        a["public_key"]["allowCredentials"], b["public_key"]["allowCredentials"],
        "the stand-in is not the suspended credential"
    );
    db.cleanup().await;
}

on_both_engines!(
    completing_one_recovery_cancels_the_others_and_a_raised_level_stops_them,
    cancelling_is_offered_alike_whether_or_not_the_owner_has_a_passkey_left,
    a_recovery_waits_out_the_cooling_off_period_then_replaces_the_lost_passkey,
    the_owner_cancels_with_a_passkey_and_the_photocopy_wins_nothing,
    a_cancel_after_the_grant_stops_the_registration_and_a_session_can_cancel_too,
    kept_passkeys_stay_when_the_requester_says_so,
    wrong_details_or_a_suspended_account_start_nothing,
    unknown_details_and_a_flood_get_the_same_answer_and_create_nothing,
    an_account_proofed_in_person_needs_an_officer_to_recover,
    an_officer_recovers_an_account_at_once_and_the_stolen_phone_stops_working,
    a_face_match_needs_a_configured_matcher,
);
