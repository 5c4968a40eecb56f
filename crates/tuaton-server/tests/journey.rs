//! The thin journey end to end through the JSON API, on SQLite and PostgreSQL:
//! enrol a fictional citizen, pass the registry check, add a passkey with a
//! software authenticator that makes real signatures, log in, use the session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tuaton_core::SystemClock;
use tuaton_server::{AppState, Settings, build_router};
use tuaton_store::testing::TestDb;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

const ORIGIN: &str = "http://localhost:8080";

/// Somchai Jaidee, a fictional person in keys-dev/registry/people.json.
fn somchai() -> Value {
    json!({
        "citizen_id": "1-9990-00000-01-7",
        "thai_given_name": "สมชาย",
        "thai_family_name": "ใจดี",
        "english_given_name": "Somchai",
        "english_family_name": "Jaidee",
        "birth_date": "1964-02-22",
        "laser_code": "JT0-1234567-89",
        "contact_email": "somchai@example.test"
    })
}

pub struct Client {
    app: axum::Router,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Client {
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(t) = self.csrf.as_ref().filter(|_| csrf) {
            req = req.header("x-csrf-token", t);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        if let Some(sc) = resp.headers().get("set-cookie") {
            let sc = sc.to_str().unwrap();
            let pair = sc.split(';').next().unwrap().to_owned();
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, v)
    }
}

pub async fn app(db: &TestDb) -> axum::Router {
    let settings = Settings::load_with(None, true, |_| None).unwrap();
    let state = AppState::from_settings(settings, db.store.clone(), Arc::new(SystemClock)).unwrap();
    build_router(state)
}

pub async fn register(
    client: &mut Client,
    authn: &mut SoftPasskey,
    grant: Option<&str>,
    name: &str,
) -> Value {
    let body = match grant {
        Some(g) => json!({ "enrolment_token": g }),
        None => json!({}),
    };
    let (s, start) = client
        .call(
            "POST",
            "/api/v1/passkeys/registration/start",
            Some(body),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{start}");
    let ccr: CreationChallengeResponse =
        serde_json::from_value(json!({ "publicKey": start["public_key"] })).unwrap();
    let cred = authn
        .do_registration(Url::parse(ORIGIN).unwrap(), ccr)
        .unwrap();
    let (s, done) = client
        .call(
            "POST",
            "/api/v1/passkeys/registration/finish",
            Some(json!({ "ceremony_id": start["ceremony_id"], "name": name, "credential": cred })),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{done}");
    done
}

pub async fn login(
    client: &mut Client,
    authn: &mut SoftPasskey,
    citizen_id: Option<&str>,
) -> (StatusCode, Value) {
    let body = citizen_id.map_or(json!({}), |c| json!({ "citizen_id": c }));
    let (s, start) = client
        .call("POST", "/api/v1/login/start", Some(body), false)
        .await;
    assert_eq!(s, StatusCode::OK, "{start}");
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": start["public_key"] })).unwrap();
    let cred = authn
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .unwrap();
    let (s, v) = client
        .call(
            "POST",
            "/api/v1/login/finish",
            Some(json!({ "ceremony_id": start["ceremony_id"], "credential": cred })),
            false,
        )
        .await;
    if s == StatusCode::OK {
        client.csrf = v["csrf_token"].as_str().map(str::to_owned);
    }
    (s, v)
}

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
