//! A stranger probing who is enrolled learns nothing from login start or
//! from enrolment: the answers for an enrolled and an unknown citizen id
//! have the same shape, and enrolment says "already enrolled" only to
//! someone whose card details the registry confirmed.

use http::StatusCode;
use serde_json::{Value, json};
use tuaton_store::testing::TestDb;

use crate::common::*;
use crate::on_both_engines;

/// The shape of a JSON value: its keys, recursively, and array lengths; no values.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        _ => Value::Null,
    }
}

async fn start(c: &mut Client, citizen: &str) -> (StatusCode, Value) {
    c.call(
        "POST",
        "/api/v1/login/start",
        Some(json!({ "citizen_id": citizen })),
        false,
    )
    .await
}

fn offered(v: &Value) -> Vec<String> {
    v["public_key"]["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn login_start_answers_an_unknown_citizen_id_like_an_enrolled_one(db: TestDb) {
    let mut c = client(&db).await;
    enrolled_and_logged_in(&mut c, somchai()).await;
    let mut stranger = client(&db).await;
    let (s, known) = start(&mut stranger, "1999000000017").await;
    assert_eq!(s, StatusCode::OK, "{known}");
    // Valid ids of people who never enrolled.
    let (s, unknown) = start(&mut stranger, "1999000000025").await;
    assert_eq!(s, StatusCode::OK, "{unknown}");
    assert_eq!(shape(&known), shape(&unknown), "{known}\n{unknown}");
    assert!(unknown.get("mediation").is_none());
    let stand_in = offered(&unknown);
    assert_eq!(stand_in.len(), 1);
    assert_ne!(stand_in, offered(&known));
    // The same stand-in every time, so asking twice reveals nothing either;
    // another unknown id gets another.
    let (_, again) = start(&mut stranger, "1-9990-00000-02-5").await;
    assert_eq!(offered(&again), stand_in);
    let (_, other) = start(&mut stranger, "1999000000033").await;
    assert_ne!(offered(&other), stand_in);
    db.cleanup().await;
}

async fn the_per_account_limit_answers_alike_for_unknown_ids(db: TestDb) {
    let app = app_with(
        &db,
        std::sync::Arc::new(tuaton_core::SystemClock),
        &[("TUATON_RATE_LIMIT_PER_ACCOUNT", "6")],
    );
    let mut c = Client {
        app,
        cookie: None,
        csrf: None,
    };
    enrolled_and_logged_in(&mut c, somchai()).await;
    let mut statuses = Vec::new();
    for citizen in ["1999000000017", "1999000000025"] {
        let mut seen = Vec::new();
        for _ in 0..7 {
            seen.push(start(&mut c, citizen).await.0);
        }
        statuses.push(seen);
    }
    // Both run into the limit: the enrolled account (which spent four of
    // its six attempts on registering and logging in) and the unknown id.
    assert_eq!(
        statuses[0].last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(
        statuses[1].last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    db.cleanup().await;
}

async fn enrolment_says_already_enrolled_only_after_the_card_checks_out(db: TestDb) {
    let mut c = client(&db).await;
    let (s, _) = c
        .call("POST", "/api/v1/enrolments", Some(somchai()), false)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // A stranger with the citizen id but not the card: the same answer as
    // for an id nobody enrolled.
    let mut wrong_card = somchai();
    wrong_card["laser_code"] = json!("JT0-0000000-00");
    let (s, enrolled) = c
        .call(
            "POST",
            "/api/v1/enrolments",
            Some(wrong_card.clone()),
            false,
        )
        .await;
    let mut nobody = wrong_card;
    nobody["citizen_id"] = json!("1999000000025");
    let (s2, unknown) = c
        .call("POST", "/api/v1/enrolments", Some(nobody), false)
        .await;
    assert_eq!(
        (s, enrolled["code"].clone()),
        (s2, unknown["code"].clone()),
        "{enrolled} {unknown}"
    );
    assert_ne!(enrolled["code"], "already_enrolled");
    // With the card's details confirmed, the answer may say so.
    let (s, v) = c
        .call("POST", "/api/v1/enrolments", Some(somchai()), false)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_enrolled"))
    );
    assert_eq!(count(&db, "accounts").await, 1, "nothing was written");
    db.cleanup().await;
}

on_both_engines!(
    login_start_answers_an_unknown_citizen_id_like_an_enrolled_one,
    the_per_account_limit_answers_alike_for_unknown_ids,
    enrolment_says_already_enrolled_only_after_the_card_checks_out
);
