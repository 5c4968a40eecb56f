//! PDPA: consent, export, and erasure that leaves no personal data behind.

use http::StatusCode;
use serde_json::json;
use tuaton_store::testing::TestDb;

use crate::common::*;
use crate::on_both_engines;

fn consent() -> serde_json::Value {
    json!({
        "agency": "revenue-department", "purpose": "tax-filing", "purpose_version": "2026-1",
        "claims": ["name", "birthdate"], "notice_text": "กรมสรรพากรขอใช้ชื่อและวันเกิดของท่านเพื่อการยื่นภาษี",
        "locale": "th", "lawful_basis": "consent"
    })
}

async fn consent_is_given_and_withdrawn_as_easily(db: TestDb) {
    let mut c = client(&db).await;
    enrolled_and_logged_in(&mut c, somchai()).await;
    let (s, given) = c
        .call("POST", "/api/v1/me/consents", Some(consent()), true)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{given}");
    assert_eq!(given["notice_digest"].as_str().unwrap().len(), 64);
    assert!(given["withdrawn_at"].is_null());
    let mut bad = consent();
    bad["lawful_basis"] = json!("because");
    let (s, v) = c.call("POST", "/api/v1/me/consents", Some(bad), true).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let id = given["id"].as_str().unwrap();
    let (s, w) = c
        .call(
            "POST",
            &format!("/api/v1/me/consents/{id}/withdraw"),
            None,
            true,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert!(w["withdrawn_at"].is_string());
    let (s, _) = c
        .call(
            "POST",
            &format!("/api/v1/me/consents/{id}/withdraw"),
            None,
            true,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "withdrawn once");
    let (_, list) = c.call("GET", "/api/v1/me/consents", None, false).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "the record of consent stays, withdrawn"
    );
    let recs = tuaton_store::audit::list(&db.store, 0, 100).await.unwrap();
    assert!(
        recs.iter().any(|r| r.action == "consent.give")
            && recs.iter().any(|r| r.action == "consent.withdraw")
    );
    db.cleanup().await;
}

/// Every text column of every table, read from the schema itself, so a
/// table or column added later is searched too.
async fn text_columns(db: &TestDb) -> Vec<(String, String)> {
    let mut conn = db.store.conn().await.unwrap();
    let sql = if db.url().starts_with("sqlite:") {
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%' \
         AND upper(p.type) = 'TEXT' ORDER BY m.name, p.cid"
    } else {
        "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) FROM information_schema.columns \
         WHERE table_schema = current_schema() AND data_type = 'text' \
         AND table_name NOT LIKE '_sqlx%' ORDER BY table_name, ordinal_position"
    };
    sqlx::query_as(sql).fetch_all(conn.conn()).await.unwrap()
}

/// Every text value in every table, for a search for personal data.
async fn all_text(db: &TestDb) -> String {
    let columns = text_columns(db).await;
    for (table, column) in [
        ("accounts", "citizen_id"),
        ("notifications", "address"),
        ("recoveries", "token_digest"),
    ] {
        assert!(
            columns.iter().any(|(t, c)| t == table && c == column),
            "the schema read found no {table}.{column}: {columns:?}"
        );
    }
    let mut out = String::new();
    for (table, column) in columns {
        let rows: Vec<(Option<String>,)> = sqlx::query_as(&format!("SELECT {column} FROM {table}"))
            .fetch_all(db.store.conn().await.unwrap().conn())
            .await
            .unwrap();
        for t in rows.into_iter().filter_map(|(t,)| t) {
            out.push_str(&t);
            out.push('\n');
        }
    }
    out
}

async fn export_holds_everything_and_erase_leaves_no_personal_data(db: TestDb) {
    let clock = fixed_clock();
    let data = tempfile::tempdir().unwrap();
    let state = state_with(
        &db,
        clock.clone(),
        &[("TUATON_DATA_DIR", data.path().to_str().unwrap())],
    );
    let mut c = Client {
        app: tuaton_server::build_router(state.clone()),
        cookie: None,
        csrf: None,
    };
    let mut authn = enrolled_and_logged_in(&mut c, somchai()).await;
    c.call("POST", "/api/v1/me/consents", Some(consent()), true)
        .await;
    c.call(
        "POST",
        "/api/v1/me/companies",
        Some(json!({ "juristic_id": "0105599000019" })),
        true,
    )
    .await;

    let (s, export) = c.call("POST", "/api/v1/me/export", None, true).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(export["account"]["citizen_id"], "1999000000017");
    assert_eq!(export["account"]["thai_given"], "สมชาย");
    assert_eq!(export["proofing_decisions"].as_array().unwrap().len(), 1);
    assert_eq!(export["consents"].as_array().unwrap().len(), 1);
    assert_eq!(export["passkeys"].as_array().unwrap().len(), 1);
    assert_eq!(export["companies"].as_array().unwrap().len(), 1);
    assert!(export["audit_records"].as_array().unwrap().len() >= 4);
    assert!(
        export["passkeys"][0].get("credential").is_none(),
        "no credential internals in the export"
    );

    // Erasure needs a fresh login.
    clock.advance(time::Duration::minutes(6));
    let (s, v) = c.call("POST", "/api/v1/me/erase", None, true).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("fresh_login_required"))
    );
    crate::common::login(&mut c, &mut authn, Some("1999000000017")).await;
    // At erasure a recovery is pending (its notice not sent yet) and a
    // login ceremony is open.
    let (s, v) = c
        .call("POST", "/api/v1/recovery", Some(somchai()), false)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (s, _) = c
        .call(
            "POST",
            "/api/v1/login/start",
            Some(json!({ "citizen_id": "1999000000017" })),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // The evidence is kept only as digests keyed under the account's key:
    // the bare SHA-256 of Somchai's card details, which anyone holding a
    // photocopy could compute, is stored nowhere.
    let input = tuaton_idm::CitizenEvidenceInput {
        citizen_id: "1-9990-00000-01-7".into(),
        thai_given_name: "สมชาย".into(),
        thai_family_name: "ใจดี".into(),
        english_given_name: "Somchai".into(),
        english_family_name: "Jaidee".into(),
        birth_date: "1964-02-22".into(),
        laser_code: "JT0-1234567-89".into(),
    };
    let bare = tuaton_idm::parse_evidence(&input, tuaton_core::Clock::now(&*clock))
        .unwrap()
        .evidence_digest()
        .to_string();
    let before = all_text(&db).await;
    assert!(!before.contains(&bare), "a bare evidence digest is stored");
    let kept: Vec<(String,)> = sqlx::query_as("SELECT evidence_digest FROM proofing_decisions")
        .fetch_all(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    assert!(
        kept.iter()
            .all(|(d,)| d.len() == 64 && before.contains(d.as_str()))
    );

    let (s, v) = c.call("POST", "/api/v1/me/erase", None, true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(count(&db, "recoveries").await, 0);
    let (keys,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM accounts WHERE evidence_key IS NOT NULL")
            .fetch_one(db.store.conn().await.unwrap().conn())
            .await
            .unwrap();
    assert_eq!(
        keys, 0,
        "the key that links the kept digests to the card is gone"
    );

    // The recovery's notice is still delivered (the outbox stands for the
    // relay), and then forgotten.
    assert_eq!(count(&db, "notifications").await, 1);
    tuaton_server::maintenance::run_once(&state).await;
    let sent: Vec<_> = std::fs::read_dir(data.path().join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains("To: somchai@example.test"), "{}", sent[0]);
    assert_eq!(count(&db, "notifications").await, 0);

    // No personal field remains anywhere; the chain still verifies; the person can no longer log in.
    let text = all_text(&db).await;
    for needle in [
        "1999000000017",
        "1-9990",
        "สมชาย",
        "ใจดี",
        "Somchai",
        "Jaidee",
        "1964-02-22",
        "somchai@example.test",
        "JT0",
    ] {
        assert!(!text.contains(needle), "`{needle}` remains after erasure");
    }
    // Nor in the bytes on disk: SQLite's file and its WAL.
    if let Some(path) = db
        .url()
        .strip_prefix("sqlite://")
        .and_then(|p| p.split('?').next())
    {
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        for needle in [
            "1999000000017",
            "สมชาย",
            "ใจดี",
            "Jaidee",
            "somchai@example.test",
        ] {
            let n = needle.as_bytes();
            assert!(
                !bytes.windows(n.len()).any(|w| w == n),
                "`{needle}` remains on disk after erasure"
            );
        }
    }
    assert!(
        tuaton_store::audit::verify(&db.store)
            .await
            .unwrap()
            .is_intact()
    );
    assert_eq!(
        c.call("GET", "/api/v1/me", None, false).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, start) = c
        .call(
            "POST",
            "/api/v1/login/start",
            Some(json!({ "citizen_id": "1999000000017" })),
            false,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "an erased person looks like anyone unknown: {start}"
    );
    // The same person may enrol again, as a new account.
    let (s, _) = c
        .call("POST", "/api/v1/enrolments", Some(somchai()), false)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    db.cleanup().await;
}

async fn withdrawn_consents_are_purged_after_the_retention_period(db: TestDb) {
    let clock = fixed_clock();
    let state = state_with(
        &db,
        clock.clone(),
        &[("TUATON_WITHDRAWN_CONSENT_RETENTION_DAYS", "30")],
    );
    let mut c = Client {
        app: tuaton_server::build_router(state.clone()),
        cookie: None,
        csrf: None,
    };
    enrolled_and_logged_in(&mut c, somchai()).await;
    let (_, kept) = c
        .call("POST", "/api/v1/me/consents", Some(consent()), true)
        .await;
    let mut other = consent();
    other["purpose"] = json!("pension");
    let (_, gone) = c
        .call("POST", "/api/v1/me/consents", Some(other), true)
        .await;
    c.call(
        "POST",
        &format!(
            "/api/v1/me/consents/{}/withdraw",
            gone["id"].as_str().unwrap()
        ),
        None,
        true,
    )
    .await;
    clock.advance(time::Duration::days(29));
    tuaton_server::maintenance::run_once(&state).await;
    assert_eq!(count(&db, "consents").await, 2, "within retention");
    clock.advance(time::Duration::days(2));
    tuaton_server::maintenance::run_once(&state).await;
    let left: Vec<(String,)> = sqlx::query_as("SELECT id FROM consents")
        .fetch_all(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    assert_eq!(
        left,
        vec![(kept["id"].as_str().unwrap().to_owned(),)],
        "only the live consent stays"
    );
    db.cleanup().await;
}

on_both_engines!(
    consent_is_given_and_withdrawn_as_easily,
    withdrawn_consents_are_purged_after_the_retention_period,
    export_holds_everything_and_erase_leaves_no_personal_data
);
