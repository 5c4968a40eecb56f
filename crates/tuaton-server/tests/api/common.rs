//! Shared helpers for the API suite: an in-process app on a test database and
//! a client that keeps the session cookie and CSRF token like a browser or app.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tuaton_core::{Clock, FixedClock, SystemClock};
use tuaton_server::{AppState, Settings, build_router};
use tuaton_store::testing::TestDb;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::{self, SoftToken};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

pub const ORIGIN: &str = "http://localhost:8080";

/// Somchai Jaidee, a fictional person in keys-dev/registry/people.json.
pub fn somchai() -> Value {
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
    pub app: axum::Router,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

impl Client {
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> (StatusCode, Value) {
        self.call_as("application/json", method, path, body, csrf)
            .await
    }

    /// [`Client::call`] with the body sent as `content_type`.
    pub async fn call_as(
        &mut self,
        content_type: &str,
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
                .header("content-type", content_type)
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
    app_with_clock(db, Arc::new(SystemClock))
}

/// The app with a clock the test controls.
pub fn app_with_clock(db: &TestDb, clock: Arc<dyn Clock>) -> axum::Router {
    app_with(db, clock, &[])
}

/// The app in development mode with extra settings (as environment variables) and a clock.
pub fn app_with(db: &TestDb, clock: Arc<dyn Clock>, env: &[(&str, &str)]) -> axum::Router {
    build_router(state_with(db, clock, env))
}

/// The application state behind [`app_with`], for tests that also run upkeep.
pub fn state_with(db: &TestDb, clock: Arc<dyn Clock>, env: &[(&str, &str)]) -> AppState {
    let mut env: std::collections::HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in dev_key_env() {
        env.entry(k.into()).or_insert(v);
    }
    let settings = Settings::load_with(None, true, |k| env.get(k).cloned()).unwrap();
    AppState::from_settings(settings, db.store.clone(), clock).unwrap()
}

/// Development keys for the test kit: the repository's development master
/// key, and software keys in a directory under the build's temporary dir.
pub fn dev_key_env() -> [(&'static str, String); 2] {
    [
        (
            "TUATON_DEV_KEYS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../keys-dev").to_owned(),
        ),
        (
            "TUATON_DATA_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/api-data").to_owned(),
        ),
    ]
}

/// Counts rows in a table.
pub async fn count(db: &TestDb, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(db.store.conn().await.unwrap().conn())
        .await
        .unwrap();
    n
}

/// A client with no session.
pub async fn client(db: &TestDb) -> Client {
    Client {
        app: app(db).await,
        cookie: None,
        csrf: None,
    }
}

/// A fixed clock at the current time.
pub fn fixed_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()))
}

/// A person from keys-dev/registry/people.json as an enrolment body.
pub fn person(citizen_id: &str, given: &str, family: &str, birth: &str, laser: &str) -> Value {
    json!({
        "citizen_id": citizen_id, "thai_given_name": given, "thai_family_name": family,
        "birth_date": birth, "laser_code": laser
    })
}

/// Enrols `body`, registers a soft passkey and logs in; returns the authenticator.
pub async fn enrolled_and_logged_in(client: &mut Client, body: Value) -> SoftPasskey {
    let citizen = body["citizen_id"].as_str().unwrap().to_owned();
    let (s, enrolled) = client
        .call("POST", "/api/v1/enrolments", Some(body), false)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{enrolled}");
    let mut authn = SoftPasskey::new(true);
    register(
        client,
        &mut authn,
        Some(enrolled["enrolment_token"].as_str().unwrap()),
        "phone",
    )
    .await;
    let (s, v) = login(client, &mut authn, Some(&citizen)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    authn
}

pub async fn register(
    client: &mut Client,
    authn: &mut impl WebauthnAuthenticator,
    grant: Option<&str>,
    name: &str,
) -> Value {
    let body = match grant {
        Some(g) => json!({ "enrolment_token": g }),
        None => json!({}),
    };
    register_with(client, authn, body, name).await
}

/// A passkey registration that starts with `body` (`want_aal3`, an enrolment token).
pub async fn register_with(
    client: &mut Client,
    authn: &mut impl WebauthnAuthenticator,
    body: Value,
    name: &str,
) -> Value {
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
    authn: &mut impl WebauthnAuthenticator,
    citizen_id: Option<&str>,
) -> (StatusCode, Value) {
    let body = citizen_id.map_or(json!({}), |c| json!({ "citizen_id": c }));
    let (s, v) = assertion(client, authn, "/api/v1/login", Some(body)).await;
    if s == StatusCode::OK {
        client.csrf = v["csrf_token"].as_str().map(str::to_owned);
    }
    (s, v)
}

/// A WebAuthn assertion ceremony at `{base}/start` and `{base}/finish`
/// (a login, or the cancelling of a recovery) made with `authn`.
pub async fn assertion(
    client: &mut Client,
    authn: &mut impl WebauthnAuthenticator,
    base: &str,
    start_body: Option<Value>,
) -> (StatusCode, Value) {
    let (s, start) = client
        .call("POST", &format!("{base}/start"), start_body, false)
        .await;
    assert_eq!(s, StatusCode::OK, "{start}");
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": start["public_key"] })).unwrap();
    let cred = authn
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .unwrap();
    client
        .call(
            "POST",
            &format!("{base}/finish"),
            Some(json!({ "ceremony_id": start["ceremony_id"], "credential": cred })),
            false,
        )
        .await
}

/// Writes an AAL3 allow list naming `token`'s AAGUID and attestation root
/// to `path` (for `TUATON_AAL3_ALLOW_LIST`).
pub fn aal3_allow_list(token: &SoftToken, path: &std::path::Path) {
    use base64::Engine as _;
    let cbor = token.to_cbor().unwrap();
    let map: std::collections::BTreeMap<String, serde_cbor_2::Value> =
        serde_cbor_2::from_slice(&cbor).unwrap();
    let Some(serde_cbor_2::Value::Text(b64)) = map.get("ca_cert") else {
        panic!("no ca_cert")
    };
    let der = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    );
    let list = json!([{ "aaguid": softtoken::AAGUID.to_string(), "description": "test token", "roots_pem": [pem] }]);
    std::fs::write(path, list.to_string()).unwrap();
}
