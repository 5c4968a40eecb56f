//! Enrolment against the registry, each answer, officers, and companies.

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;
use tuaton_core::SystemClock;
use tuaton_store::testing::TestDb;

use crate::common::*;
use crate::on_both_engines;

fn somying() -> serde_json::Value {
    person(
        "1999000000025",
        "สมหญิง",
        "รักไทย",
        "1985-07-15",
        "ME1-0234567-01",
    )
}
fn thanaphon() -> serde_json::Value {
    person(
        "1999000000050",
        "ธนพล",
        "มั่นคง",
        "1978-05-09",
        "ME4-2222222-34",
    )
}
fn kamala() -> serde_json::Value {
    person(
        "1999000000068",
        "กมลา",
        "สุวรรณรัตน์",
        "1969-09-12",
        "JT5-3333333-45",
    )
}
fn wichai() -> serde_json::Value {
    person(
        "1999000000033",
        "วิชัย",
        "ศรีสุข",
        "1972-11-03",
        "AA2-7654321-12",
    )
}

async fn each_registry_answer_is_handled_and_refusals_write_no_account(db: TestDb) {
    let mut c = client(&db).await;
    // Mismatch: right card, wrong family name.
    let mut wrong = somchai();
    wrong["thai_family_name"] = json!("ใจร้าย");
    let (s, v) = c
        .call("POST", "/api/v1/enrolments", Some(wrong), false)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("details_mismatch")),
        "{v}"
    );
    // Not found: a revoked card, and an id the registry does not know.
    let revoked = person(
        "1999000000092",
        "ณัฐวุฒิ",
        "พรหมมา",
        "2001-12-01",
        "ME8-6666666-78",
    );
    let (s, v) = c
        .call("POST", "/api/v1/enrolments", Some(revoked), false)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("card_not_found")),
        "{v}"
    );
    // Incomplete or malformed input never reaches the registry: a 400 naming the field.
    let mut empty = somchai();
    empty["thai_given_name"] = json!("");
    let (s, v) = c
        .call("POST", "/api/v1/enrolments", Some(empty), false)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_evidence")),
        "{v}"
    );
    let mut bad_id = somchai();
    bad_id["citizen_id"] = json!("1999000000018");
    let (s, _) = c
        .call("POST", "/api/v1/enrolments", Some(bad_id), false)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = c
        .call(
            "POST",
            "/api/v1/enrolments",
            Some(json!({ "citizen_id": 5 })),
            false,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field")),
        "{v}"
    );
    assert_eq!(count(&db, "accounts").await, 0, "refusals write no account");
    assert_eq!(count(&db, "proofing_decisions").await, 0);
    // Refusals are audited (by evidence digest, never by personal data).
    let recs = tuaton_store::audit::list(&db.store, 0, 100).await.unwrap();
    assert_eq!(
        recs.iter()
            .filter(|r| r.action == "proofing.refused")
            .count(),
        2
    );
    assert!(
        recs.iter()
            .all(|r| !r.details.contains("1999000000025") && !r.target.contains("1999000000025"))
    );
    // Valid: IAL2.1, and the decision keeps connector, answer and digest.
    let (s, v) = c
        .call("POST", "/api/v1/enrolments", Some(somchai()), false)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let decisions = tuaton_store::proofing::for_account(
        db.store.conn().await.unwrap().conn(),
        &tuaton_core::AccountId::parse(v["account_id"].as_str().unwrap()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(
        (
            decisions[0].method.as_str(),
            decisions[0].connector.as_str(),
            decisions[0].ial.number()
        ),
        ("remote_registry", "dev-registry", "2.1")
    );
    assert_eq!(decisions[0].evidence_digest.len(), 64);
    assert!(decisions[0].registry_answer.contains("valid"));
    db.cleanup().await;
}

async fn an_unreachable_registry_means_try_later_and_nothing_saved(db: TestDb) {
    // A closed loopback port stands for a registry that is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/CheckCardByLaser");
    let app = app_with(
        &db,
        Arc::new(SystemClock),
        &[("TUATON_CARD_REGISTRY_URL", &url)],
    );
    let mut c = Client {
        app,
        cookie: None,
        csrf: None,
    };
    let (s, v) = c
        .call("POST", "/api/v1/enrolments", Some(somchai()), false)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("registry_unavailable")
        ),
        "{v}"
    );
    assert_eq!(count(&db, "accounts").await, 0);
    db.cleanup().await;
}

async fn officers_proof_in_person_and_others_are_refused(db: TestDb) {
    let mut officer = client(&db).await;
    enrolled_and_logged_in(&mut officer, thanaphon()).await;
    let attestation = json!({ "method": "chip_read", "documents_seen": ["thai_id_card", "passport"], "biometric_checked": true });
    let body = json!({ "evidence": kamala(), "attestation": attestation });
    // Not an officer yet.
    let (s, v) = officer
        .call(
            "POST",
            "/api/v1/officer/proofings",
            Some(body.clone()),
            true,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("officer_role_required")),
        "{v}"
    );
    // An operator grants the role.
    let (officer_id,): (String,) =
        sqlx::query_as("SELECT id FROM accounts WHERE citizen_id = '1999000000050'")
            .fetch_one(db.store.conn().await.unwrap().conn())
            .await
            .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    tuaton_store::companies::grant_role(
        &mut tx,
        &tuaton_core::AccountId::parse(&officer_id).unwrap(),
        tuaton_store::companies::Role::Officer,
        "operator:test",
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Without the CSRF token: refused.
    let (s, _) = officer
        .call(
            "POST",
            "/api/v1/officer/proofings",
            Some(body.clone()),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = officer
        .call("POST", "/api/v1/officer/proofings", Some(body), true)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["ial"],
        json!(3.0),
        "chip read + biometric + two documents"
    );
    // Visual inspection only, no biometric: IAL2.2; it raises an existing account's level.
    let body = json!({ "evidence": somchai(), "attestation": { "method": "visual_inspection", "documents_seen": ["thai_id_card"], "biometric_checked": false } });
    let (s, v) = officer
        .call("POST", "/api/v1/officer/proofings", Some(body), true)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["ial"], json!(2.2));
    // The attestation is in the audit log with the officer as actor.
    let recs = tuaton_store::audit::list(&db.store, 0, 1000).await.unwrap();
    let rec = recs
        .iter()
        .find(|r| r.action == "proofing.officer_in_person")
        .unwrap();
    assert_eq!(rec.actor, format!("officer:{officer_id}"));
    assert!(rec.details.contains("chip_read"));
    db.cleanup().await;
}

async fn directors_act_for_their_companies_under_the_authority_rule(db: TestDb) {
    // Any one director.
    let mut somchai_c = client(&db).await;
    enrolled_and_logged_in(&mut somchai_c, somchai()).await;
    let (s, v) = somchai_c
        .call(
            "POST",
            "/api/v1/me/companies",
            Some(json!({ "juristic_id": "0-1055-99000-01-9" })),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["acts_alone"], true);
    // A non-director is refused, and nothing is linked.
    let mut somying_c = client(&db).await;
    enrolled_and_logged_in(&mut somying_c, somying()).await;
    let (s, v) = somying_c
        .call(
            "POST",
            "/api/v1/me/companies",
            Some(json!({ "juristic_id": "0105599000019" })),
            true,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_a_director")),
        "{v}"
    );
    // Two directors jointly: one alone may link but not act.
    let mut kamala_c = client(&db).await;
    enrolled_and_logged_in(&mut kamala_c, kamala()).await;
    let (s, v) = kamala_c
        .call(
            "POST",
            "/api/v1/me/companies",
            Some(json!({ "juristic_id": "0105599000027" })),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["acts_alone"].as_bool(), v["required_directors"].as_i64()),
        (Some(false), Some(2))
    );
    let (s, v) = kamala_c
        .call(
            "POST",
            "/api/v1/me/companies/0105599000027/authority",
            Some(json!({})),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v["authorised"].as_bool(),
            v["decision"]["decision"].as_str()
        ),
        (Some(false), Some("needs_more_directors")),
        "{v}"
    );
    let (_, v) = kamala_c
        .call(
            "POST",
            "/api/v1/me/companies/0105599000027/authority",
            Some(json!({ "acting_with": ["1999000000050"] })),
            true,
        )
        .await;
    assert_eq!(v["authorised"], true, "{v}");
    let (_, v) = kamala_c
        .call(
            "POST",
            "/api/v1/me/companies/0105599000027/authority",
            Some(json!({ "acting_with": ["1999000000025"] })),
            true,
        )
        .await;
    assert_eq!(
        v["decision"]["decision"], "not_a_director",
        "a non-director cannot make up the number"
    );
    // A dissolved company.
    let mut wichai_c = client(&db).await;
    enrolled_and_logged_in(&mut wichai_c, wichai()).await;
    let (s, v) = wichai_c
        .call(
            "POST",
            "/api/v1/me/companies",
            Some(json!({ "juristic_id": "0105599000035" })),
            true,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("company_dissolved")),
        "{v}"
    );
    // A malformed juristic id.
    let (s, v) = wichai_c
        .call(
            "POST",
            "/api/v1/me/companies",
            Some(json!({ "juristic_id": "0105599000036" })),
            true,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_juristic_id"))
    );
    assert_eq!(count(&db, "company_links").await, 2);
    db.cleanup().await;
}

async fn company_authority_is_confirmed_again_after_the_recheck_interval(db: TestDb) {
    let clock = fixed_clock();
    let app = app_with(
        &db,
        clock.clone(),
        &[
            ("TUATON_AUTHORITY_RECHECK_SECS", "3600"),
            ("TUATON_SESSION_IDLE_SECS", "86400"),
        ],
    );
    let mut c = Client {
        app,
        cookie: None,
        csrf: None,
    };
    enrolled_and_logged_in(&mut c, somchai()).await;
    let (s, _) = c
        .call(
            "POST",
            "/api/v1/me/companies",
            Some(json!({ "juristic_id": "0105599000019" })),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, first) = c.call("GET", "/api/v1/me/companies", None, false).await;
    assert_eq!(first[0]["confirmed"], true);
    clock.advance(time::Duration::minutes(30));
    let (_, same) = c.call("GET", "/api/v1/me/companies", None, false).await;
    assert_eq!(
        same[0]["confirmed_at"], first[0]["confirmed_at"],
        "not asked again within the interval"
    );
    clock.advance(time::Duration::minutes(31));
    let (_, again) = c.call("GET", "/api/v1/me/companies", None, false).await;
    assert_eq!(again[0]["confirmed"], true, "{again}");
    assert_ne!(
        again[0]["confirmed_at"], first[0]["confirmed_at"],
        "confirmed with the registry again"
    );
    db.cleanup().await;
}

on_both_engines!(
    company_authority_is_confirmed_again_after_the_recheck_interval,
    each_registry_answer_is_handled_and_refusals_write_no_account,
    an_unreachable_registry_means_try_later_and_nothing_saved,
    officers_proof_in_person_and_others_are_refused,
    directors_act_for_their_companies_under_the_authority_rule,
);
