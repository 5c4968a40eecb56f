//! The thin journey end to end through the JSON API, on SQLite and PostgreSQL:
//! enrol a fictional citizen, pass the registry check, add a passkey with a
//! software authenticator that makes real signatures, log in, use the session.

use http::StatusCode;
use serde_json::json;
use tuaton_store::testing::TestDb;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::common::*;

async fn journey(db: TestDb) {
    let mut client = Client {
        app: app(&db).await,
        cookie: None,
        csrf: None,
    };

    // Enrol: the development registry confirms the card; IAL2.1.
    let (s, enrolled) = client
        .call("POST", "/api/v1/enrolments", Some(somchai()), false)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{enrolled}");
    assert_eq!(enrolled["ial"], json!(2.1));
    let grant = enrolled["enrolment_token"].as_str().unwrap().to_owned();

    // The same citizen cannot enrol twice.
    let (s, again) = client
        .call("POST", "/api/v1/enrolments", Some(somchai()), false)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(again["code"], "already_enrolled");

    // First passkey, with the enrolment grant; the grant is then spent.
    let mut phone = SoftPasskey::new(true);
    let first = register(&mut client, &mut phone, Some(&grant), "phone").await;
    assert_eq!(first["aal"], "2.2");
    let (s, spent) = client
        .call(
            "POST",
            "/api/v1/passkeys/registration/start",
            Some(json!({ "enrolment_token": grant })),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{spent}");

    // Log in by citizen id; the session carries AAL2.2.
    let (s, session) = login(&mut client, &mut phone, Some("1999000000017")).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["aal"], "2.2");
    assert_eq!(session["acr"], "urn:tuaton:aal:2.2");
    assert!(
        client
            .cookie
            .as_deref()
            .unwrap()
            .starts_with("tuaton-session=")
    );

    // A second passkey while logged in, then login with it. (Username-less login
    // needs a resident key, which the soft authenticator lacks; the browser suite
    // covers it with Chromium's virtual authenticator.)
    let mut laptop = SoftPasskey::new(true);
    register(&mut client, &mut laptop, None, "laptop").await;
    let (s, me) = client.call("GET", "/api/v1/me", None, false).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["passkeys"].as_array().unwrap().len(), 2);
    assert_eq!(me["account"]["ial"], "2.1");
    let old_cookie = client.cookie.clone();
    let (s, v) = login(&mut client, &mut laptop, Some("1999000000017")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_ne!(
        client.cookie, old_cookie,
        "the session id changes at every login"
    );

    // State-changing calls need the CSRF token.
    let consent = json!({
        "agency": "revenue-department", "purpose": "tax-filing", "purpose_version": "1",
        "claims": ["name", "birthdate"], "notice_text": "กรมสรรพากรขอใช้ชื่อและวันเกิดของท่านเพื่อยื่นภาษี",
        "locale": "th", "lawful_basis": "consent"
    });
    let (s, refused) = client
        .call("POST", "/api/v1/me/consents", Some(consent.clone()), false)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(refused["code"], "csrf_token_missing");
    let (s, given) = client
        .call("POST", "/api/v1/me/consents", Some(consent), true)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{given}");

    // The audit chain holds every step and still verifies.
    let report = tuaton_store::audit::verify(&db.store).await.unwrap();
    assert!(report.is_intact());
    assert!(report.records_checked >= 6, "{report:?}");
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citizen_enrols_adds_passkeys_and_logs_in_on_sqlite() {
    journey(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citizen_enrols_adds_passkeys_and_logs_in_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        journey(db).await;
    }
}
