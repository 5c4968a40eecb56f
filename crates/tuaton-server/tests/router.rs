//! Router tests in-process, no socket: the shared layers every route gets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tuaton_core::SystemClock;
use tuaton_server::{AppState, Settings, build_router};
use tuaton_store::testing::TestDb;

fn settings(env: &[(&str, &str)]) -> Settings {
    let mut env: std::collections::HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Production mode with software keys under a master key of the test's
    // own (the published development key is refused outside --dev).
    static FIXTURE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let fixture = FIXTURE.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("router-master.key");
        if !path.exists() {
            tuaton_keys::MasterKey::create_file(&path).unwrap();
        }
        path
    });
    env.entry("TUATON_MASTER_KEY_FILE".into())
        .or_insert(fixture.display().to_string());
    env.entry("TUATON_DATA_DIR".into())
        .or_insert(concat!(env!("CARGO_TARGET_TMPDIR"), "/router-fixture-data").into());
    Settings::load_with(None, false, |k| env.get(k).cloned()).unwrap()
}

async fn app_with(env: &[(&str, &str)]) -> (axum::Router, TestDb) {
    let db = TestDb::sqlite().await;
    let state =
        AppState::from_settings(settings(env), db.store.clone(), Arc::new(SystemClock)).unwrap();
    (build_router(state), db)
}

async fn get(app: &axum::Router, path: &str) -> http::Response<Body> {
    app.clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn body_text(resp: http::Response<Body>) -> String {
    String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn healthz_and_readyz_answer_when_the_database_is_up() {
    let (app, _db) = app_with(&[]).await;
    assert_eq!(get(&app, "/healthz").await.status(), StatusCode::OK);
    assert_eq!(get(&app, "/readyz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let (app, db) = app_with(&[]).await;
    db.store.close().await;
    assert_eq!(
        get(&app, "/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&app, "/healthz").await.status(),
        StatusCode::OK,
        "liveness does not depend on the database"
    );
}

#[tokio::test]
async fn every_response_has_a_request_id_and_security_headers() {
    let (app, _db) = app_with(&[]).await;
    for path in ["/healthz", "/no/such/thing"] {
        let r = get(&app, path).await;
        let id = r
            .headers()
            .get("x-request-id")
            .expect("request id")
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 32);
        let h = r.headers();
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS on an http public URL"
        );
    }
    let a = get(&app, "/healthz").await.headers()["x-request-id"].clone();
    let b = get(&app, "/healthz").await.headers()["x-request-id"].clone();
    assert_ne!(a, b);
}

#[tokio::test]
async fn hsts_is_sent_when_the_public_url_is_https() {
    let (app, _db) = app_with(&[("TUATON_PUBLIC_URL", "https://id.example.go.th")]).await;
    let r = get(&app, "/healthz").await;
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
}

#[tokio::test]
async fn unknown_paths_get_a_problem_document() {
    let (app, _db) = app_with(&[]).await;
    let r = get(&app, "/api/v1/nothing").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: serde_json::Value = serde_json::from_str(&body_text(r).await).unwrap();
    assert_eq!(v["code"], "no_such_endpoint");
    assert_eq!(v["status"], 404);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let (app, _db) = app_with(&[]).await;
    get(&app, "/healthz").await;
    get(&app, "/healthz").await;
    let text = body_text(get(&app, "/metrics").await).await;
    assert!(
        text.contains(
            "tuaton_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("tuaton_http_request_duration_seconds_bucket{route=\"/healthz\""),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_lists_the_operations_endpoints() {
    let (app, _db) = app_with(&[]).await;
    let v: serde_json::Value =
        serde_json::from_str(&body_text(get(&app, "/openapi.json").await).await).unwrap();
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    for p in ["/healthz", "/readyz", "/metrics"] {
        assert!(v["paths"][p].is_object(), "{p} missing");
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_read() {
    let (app, _db) = app_with(&[("TUATON_MAX_BODY_BYTES", "2048")]).await;
    let big = format!("{{\"citizen_id\": \"{}\"}}", "1".repeat(4096));
    let req = Request::post("/api/v1/enrolments")
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let v: serde_json::Value = serde_json::from_str(&body_text(resp).await).unwrap();
    assert_eq!(v["code"], "body_too_large");
}

#[tokio::test]
async fn only_the_signing_apis_json_posts_get_the_larger_document_bound() {
    let (app, _db) = app_with(&[
        ("TUATON_MAX_BODY_BYTES", "2048"),
        ("TUATON_MAX_DOCUMENT_BYTES", "65536"),
    ])
    .await;
    let send = |path: &'static str, content_type: &'static str, len: usize| {
        let app = app.clone();
        async move {
            let req = Request::post(path)
                .header("content-type", content_type)
                .header("content-length", len.to_string())
                .body(Body::from(" ".repeat(len)))
                .unwrap();
            app.oneshot(req).await.unwrap().status()
        }
    };
    // Within the document bound, a signing request reaches its route (and
    // without a session goes no further); beyond it, it is refused unread.
    for path in ["/api/v1/signatures", "/api/v1/signatures/abc/finish"] {
        assert_eq!(
            send(path, "application/json", 8192).await,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        assert_eq!(
            send(path, "application/json", 70_000).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}"
        );
    }
    // A form, another route, or a path that only begins like one of them
    // keeps the ordinary bound.
    for (path, content_type) in [
        ("/api/v1/signatures", "application/x-www-form-urlencoded"),
        ("/api/v1/signaturesX", "application/json"),
        ("/api/v1/signatures/a/b/finish", "application/json"),
        ("/api/v1/enrolments", "application/json"),
    ] {
        assert_eq!(
            send(path, content_type, 8192).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path} {content_type}"
        );
    }
}

#[tokio::test]
async fn malformed_json_and_wrong_content_type_get_problem_documents() {
    let (app, _db) = app_with(&[]).await;
    let req = Request::post("/api/v1/enrolments")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&body_text(app.clone().oneshot(req).await.unwrap()).await).unwrap();
    assert_eq!(v["code"], "malformed_json");
    let req = Request::post("/api/v1/enrolments")
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn a_browser_gets_a_refusal_as_a_page_and_a_program_as_problem_json() {
    let (app, _db) = app_with(&[]).await;
    let ask = |accept: &'static str| {
        let app = app.clone();
        async move {
            app.oneshot(
                Request::get("/no/such/thing")
                    .header("accept", accept)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
        }
    };
    let page = ask("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8").await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = body_text(page).await;
    assert!(html.contains("<title>Not Found · Tuaton</title>"), "{html}");
    assert!(html.contains("There is no endpoint at this address."));
    assert!(html.contains("<code>no_such_endpoint</code>"));

    for accept in ["*/*", "application/json"] {
        let problem = ask(accept).await;
        assert_eq!(
            problem.headers()["content-type"],
            "application/problem+json"
        );
        let v: serde_json::Value = serde_json::from_str(&body_text(problem).await).unwrap();
        assert_eq!(v["code"], "no_such_endpoint");
    }
}

#[tokio::test]
async fn refusals_made_below_the_routes_are_problem_documents_too() {
    let (app, _db) = app_with(&[("TUATON_MAX_BODY_BYTES", "2048")]).await;
    // A body announced as too large is refused by the limit layer before any
    // route reads it.
    let req = Request::post("/api/v1/enrolments")
        .header("content-type", "application/json")
        .header("content-length", "4096")
        .body(Body::from("{".repeat(4096)))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert!(resp.headers().contains_key("x-request-id"));
    let v: serde_json::Value = serde_json::from_str(&body_text(resp).await).unwrap();
    assert_eq!(v["code"], "body_too_large");

    // The data export is a POST: a link (GET) cannot start it.
    let resp = get(&app, "/api/v1/me/export").await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert_eq!(resp.headers()["allow"], "POST");
    let v: serde_json::Value = serde_json::from_str(&body_text(resp).await).unwrap();
    assert_eq!(v["code"], "method_not_allowed");
}

#[tokio::test]
async fn the_openid_provider_answers_in_the_forms_its_standards_give() {
    let (app, _db) = app_with(&[]).await;
    let send = |req: Request<Body>| {
        let app = app.clone();
        async move { app.oneshot(req).await.unwrap() }
    };
    let form = |path: &str, body: &str, auth: Option<&str>| {
        let mut r = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.body(Body::from(body.to_owned())).unwrap()
    };

    let meta = get(&app, "/.well-known/openid-configuration").await;
    assert_eq!(meta.status(), StatusCode::OK);
    let meta: serde_json::Value = serde_json::from_str(&body_text(meta).await).unwrap();
    assert_eq!(
        meta["token_endpoint"],
        format!("{}/token", meta["issuer"].as_str().unwrap())
    );
    assert_eq!(
        meta["response_types_supported"],
        serde_json::json!(["code"])
    );

    // RFC 6749 §5.2: JSON errors, never cached; a Basic client that fails
    // gets 401 with the challenge.
    let json = send(
        Request::post("/token")
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json.headers()["cache-control"], "no-store");
    let v: serde_json::Value = serde_json::from_str(&body_text(json).await).unwrap();
    assert_eq!(v["error"], "invalid_request");
    let basic = send(form(
        "/token",
        "grant_type=client_credentials",
        Some("Basic bm9ib2R5Omd1ZXNz"),
    ))
    .await;
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        basic.headers()["www-authenticate"],
        "Basic realm=\"tuaton\""
    );
    let v: serde_json::Value = serde_json::from_str(&body_text(basic).await).unwrap();
    assert_eq!(v["error"], "invalid_client");

    // RFC 6750 §3: no token, a challenge without an error; a bad one, invalid_token.
    let none = get(&app, "/userinfo").await;
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.headers()["www-authenticate"],
        "Bearer realm=\"tuaton\""
    );
    let bad = send(
        Request::get("/userinfo")
            .header("authorization", "Bearer not.a.token")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(
        bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );

    // An unknown client's request stays on Tuaton's page: no redirect.
    let direct = send(
        Request::get("/authorize?client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code")
            .header("accept", "text/html")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(direct.status(), StatusCode::BAD_REQUEST);
    assert!(direct.headers().get("location").is_none());
    assert!(
        body_text(direct)
            .await
            .contains("invalid_authorization_request")
    );

    // Logout asks first, with a confirmation cookie; a post without it is refused.
    let ask = get(&app, "/logout").await;
    assert_eq!(ask.status(), StatusCode::OK);
    assert!(
        ask.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("SameSite=Strict")
    );
    let forged = send(form(
        "/logout",
        "confirm=0123456789abcdef0123456789abcdef",
        None,
    ))
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
}

const CA: [(&str, &str); 2] = [
    ("TUATON_CA_ORGANIZATION", "Tuaton router tests"),
    ("TUATON_CA_POLICY", "1.3.6.1.4.1.32473.3861.99"),
];

async fn bytes(resp: http::Response<Body>) -> Vec<u8> {
    resp.into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (scripts/install-test-deps)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn time_stamp_request(body: Vec<u8>, media: &str) -> Request<Body> {
    Request::post("/tsa")
        .header("content-type", media)
        .body(Body::from(body))
        .unwrap()
}

/// A server with a CA configured (its hierarchy not made yet).
async fn with_ca() -> (TestDb, tempfile::TempDir, AppState, axum::Router) {
    let db = TestDb::sqlite().await;
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().display().to_string();
    let mut env = CA.to_vec();
    env.push(("TUATON_DATA_DIR", &data));
    let state =
        AppState::from_settings(settings(&env), db.store.clone(), Arc::new(SystemClock)).unwrap();
    let app = build_router(state.clone());
    (db, data_dir, state, app)
}

#[tokio::test]
async fn the_ocsp_responder_answers_rfc_6960_over_post_and_get() {
    use base64::Engine as _;
    let (_db, _data, state, app) = with_ca().await;
    let made = state
        .idm()
        .certify_hierarchy(state.now(), "operator:test", true)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = |role: &str, file: &str| {
        let c = made.iter().find(|c| c.role.as_str() == role).unwrap();
        std::fs::write(dir.path().join(file), tuaton_idm::pki::pem(&c.der)).unwrap();
    };
    pem("root", "root.pem");
    pem("issuing-ca", "issuing.pem");
    pem("tsa", "tsa.pem");
    let (ok, text) = openssl(
        dir.path(),
        &[
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-cert",
            "tsa.pem",
            "-reqout",
            "req.der",
        ],
    );
    assert!(ok, "{text}");
    let request = std::fs::read(dir.path().join("req.der")).unwrap();
    let ask = |req: Request<Body>| {
        let app = app.clone();
        async move { app.oneshot(req).await.unwrap() }
    };
    // POST: the media type is the RFC's or the request is refused.
    let post = |media: &'static str| {
        Request::post("/ocsp")
            .header("content-type", media)
            .body(Body::from(request.clone()))
            .unwrap()
    };
    assert_eq!(
        ask(post("application/octet-stream")).await.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(&request);
    let get_path = format!(
        "/ocsp/{}",
        url::form_urlencoded::byte_serialize(encoded.as_bytes()).collect::<String>()
    );
    for req in [
        post("application/ocsp-request"),
        Request::get(get_path.as_str()).body(Body::empty()).unwrap(),
    ] {
        let resp = ask(req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/ocsp-response");
        std::fs::write(dir.path().join("resp.der"), bytes(resp).await).unwrap();
        let (ok, text) = openssl(
            dir.path(),
            &[
                "ocsp",
                "-reqin",
                "req.der",
                "-respin",
                "resp.der",
                "-issuer",
                "issuing.pem",
                "-CAfile",
                "root.pem",
            ],
        );
        assert!(ok && text.contains("Response verify OK"), "{text}");
    }
    // Not a request: still 200, an OCSP malformedRequest.
    let resp = ask(Request::get("/ocsp/AAAA").body(Body::empty()).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    std::fs::write(dir.path().join("bad.der"), bytes(resp).await).unwrap();
    let (_, text) = openssl(
        dir.path(),
        &["ocsp", "-respin", "bad.der", "-resp_text", "-noverify"],
    );
    assert!(text.contains("malformedrequest"), "{text}");
}

#[tokio::test]
async fn the_time_stamping_authority_answers_rfc_3161_over_http_once_the_hierarchy_is_made() {
    let (_db, _data_dir, state, app) = with_ca().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.txt"), "a contract").unwrap();
    let (ok, text) = openssl(
        dir.path(),
        &[
            "ts", "-query", "-data", "data.txt", "-sha256", "-cert", "-out", "q.tsq",
        ],
    );
    assert!(ok, "{text}");
    let query = std::fs::read(dir.path().join("q.tsq")).unwrap();

    // Before `tuaton pki init`: the TSA and the root say they are not set up.
    let resp = app
        .clone()
        .oneshot(time_stamp_request(
            query.clone(),
            "application/timestamp-query",
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(body_text(resp).await.contains("keys_unavailable"));
    assert_eq!(
        get(&app, "/pki/root.crt").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    let made = state
        .idm()
        .certify_hierarchy(state.now(), "operator:test", true)
        .await
        .unwrap();
    assert_eq!(made.len(), 4);

    // Another media type is refused; the right one gets a token.
    let resp = app
        .clone()
        .oneshot(time_stamp_request(
            query.clone(),
            "application/octet-stream",
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = app
        .clone()
        .oneshot(time_stamp_request(query, "application/timestamp-query"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "application/timestamp-reply"
    );
    assert_eq!(resp.headers()["cache-control"], "no-store");
    std::fs::write(dir.path().join("r.tsr"), bytes(resp).await).unwrap();

    // The root as published verifies it.
    let resp = get(&app, "/pki/root.crt").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/pkix-cert");
    std::fs::write(dir.path().join("root.der"), bytes(resp).await).unwrap();
    let (ok, text) = openssl(
        dir.path(),
        &[
            "x509", "-inform", "DER", "-in", "root.der", "-out", "root.pem",
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = openssl(
        dir.path(),
        &[
            "ts",
            "-verify",
            "-in",
            "r.tsr",
            "-queryfile",
            "q.tsq",
            "-CAfile",
            "root.pem",
        ],
    );
    assert!(ok, "{text}");
    let (_, text) = openssl(dir.path(), &["ts", "-reply", "-in", "r.tsr", "-text"]);
    assert!(text.contains("1.3.6.1.4.1.32473.3861.99"), "{text}");

    // A request that is not one is a 200 carrying a rejection (RFC 3161 §2.4.2).
    let resp = app
        .clone()
        .oneshot(time_stamp_request(
            b"nonsense".to_vec(),
            "application/timestamp-query",
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    std::fs::write(dir.path().join("bad.tsr"), bytes(resp).await).unwrap();
    let (_, text) = openssl(dir.path(), &["ts", "-reply", "-in", "bad.tsr", "-text"]);
    assert!(text.contains("Rejected"), "{text}");

    // The issuing CA is published under its key's id; nothing else is.
    let issuing = &made[1];
    let resp = get(&app, &format!("/pki/ca/{}.crt", issuing.key_id)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(bytes(resp).await, issuing.der);
    for path in [
        format!("/pki/ca/{}.crt", made[2].key_id),
        format!("/pki/ca/{}.pem", issuing.key_id),
        "/pki/ca/..%2Fkeys.crt".to_owned(),
        "/pki/ca/.crt".to_owned(),
    ] {
        let resp = get(&app, &path).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn a_ca_setting_without_its_partner_or_with_a_bad_policy_stops_start_up() {
    for (env, names) in [
        (vec![CA[0]], "TUATON_CA_POLICY"),
        (vec![CA[1]], "TUATON_CA_ORGANIZATION"),
        (
            vec![CA[0], ("TUATON_CA_POLICY", "not.an.oid")],
            "TUATON_CA_POLICY",
        ),
    ] {
        let env: std::collections::HashMap<&str, &str> = env.into_iter().collect();
        let e = Settings::load_with(None, false, |k| env.get(k).map(|v| v.to_string()))
            .err()
            .unwrap();
        assert!(e.to_string().contains(names), "{e}");
    }
    // Without either, a production server has no CA, and the TSA says so.
    let (app, _db) = app_with(&[]).await;
    let resp = app
        .clone()
        .oneshot(time_stamp_request(
            vec![0x30, 0x00],
            "application/timestamp-query",
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
}
