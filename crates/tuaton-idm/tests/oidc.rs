//! The OpenID Provider's code flow driven as its endpoints drive it: an
//! authorization request, a passkey login, the code, the token request,
//! userinfo — and every MUST the provider enforces answered with the
//! standard code while writing nothing. On SQLite, and on PostgreSQL when
//! the test run has one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tuaton_core::{AccountId, ErrorCode};
use tuaton_idm::{ActiveSession, Actor, Decision, Idm, OidcError};
use tuaton_oidc::assertion::ASSERTION_TYPE;
use tuaton_oidc::dpop::{DpopError, Presented, Scheme};
use tuaton_oidc::{AuthorizeError, ClientConfig, OAuthError, SubjectType, TokenAuth, TokenRequest};
use tuaton_store::on_both_engines;
use tuaton_store::testing::TestDb;
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use common::{code_after_login, enrol_with_passkey, idm, logged_in};

const ISSUER: &str = "http://localhost:8080";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn client(id: &str, redirect: &str, auth: TokenAuth, jwks: Option<Value>) -> ClientConfig {
    ClientConfig {
        name: format!("agency {id}"),
        redirect_uris: vec![Url::parse(redirect).unwrap()],
        token_auth: auth,
        jwks,
        require_par: false,
        dpop_bound_access_tokens: false,
        ..ClientConfig::new(id)
    }
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn request(client_id: &str, redirect: &str) -> Vec<(String, String)> {
    params(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("scope", "openid"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ])
}

/// The audit chain verifies from its first record to its head.
async fn chain_is_intact(db: &TestDb) {
    assert!(
        tuaton_store::audit::verify(&db.store)
            .await
            .unwrap()
            .is_intact(),
        "the audit chain is intact"
    );
}

/// Every row of the tables a refused step must leave alone.
async fn written(db: &TestDb) -> Vec<i64> {
    let mut conn = db.store.conn().await.unwrap();
    let mut counts = Vec::new();
    for table in [
        "ceremonies",
        "oidc_grants",
        "oidc_assertion_ids",
        "audit_log",
    ] {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(conn.conn())
            .await
            .unwrap();
        counts.push(n);
    }
    counts
}

struct World {
    idm: Idm,
    authn: SoftPasskey,
    evidence: tuaton_proofing::CitizenEvidence,
    account: AccountId,
    _dir: tempfile::TempDir,
}

async fn world(db: &TestDb, now: OffsetDateTime) -> World {
    let dir = tempfile::tempdir().unwrap();
    let idm = idm(db, dir.path());
    let mut authn = SoftPasskey::new(true);
    let (evidence, account) = enrol_with_passkey(&idm, &mut authn, now).await;
    common::id_token_key(&idm, now).await;
    World {
        idm,
        authn,
        evidence,
        account,
        _dir: dir,
    }
}

/// The world with the public client `rd-app` registered at `efiling.rd.go.th/cb`.
async fn with_public_client(db: &TestDb, now: OffsetDateTime) -> (World, Actor, &'static str) {
    let w = world(db, now).await;
    let op = Actor::Operator("test".into());
    let a = "https://efiling.rd.go.th/cb";
    w.idm
        .client_admin()
        .add(&op, client("rd-app", a, TokenAuth::None, None), now)
        .await
        .unwrap();
    (w, op, a)
}

/// A code for `client_id`, from a request begun at `now` and a login right after.
async fn code_for(w: &mut World, client_id: &str, redirect: &str, now: OffsetDateTime) -> String {
    let pending = w
        .idm
        .begin_authorization(ISSUER, &request(client_id, redirect), now)
        .await
        .unwrap();
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    let back = w
        .idm
        .complete_authorization(ISSUER, &pending.id, Some(&session), Decision::Allow, now)
        .await
        .unwrap();
    let q: Vec<(String, String)> = back.query_pairs().into_owned().collect();
    assert!(back.as_str().starts_with(redirect));
    assert!(q.contains(&("state".into(), "st-1".into())));
    assert!(q.contains(&("iss".into(), ISSUER.into())), "RFC 9207");
    q.into_iter().find(|(k, _)| k == "code").unwrap().1
}

fn redemption(
    code: &str,
    redirect: &str,
    verifier: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut p = params(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
    ]);
    p.extend(params(extra));
    p
}

async fn redeem(
    w: &World,
    form: &[(String, String)],
    basic: Option<&str>,
    now: OffsetDateTime,
) -> Result<tuaton_idm::TokenResponse, OidcError> {
    let req = TokenRequest::parse(form, basic).map_err(OidcError::Token)?;
    w.idm.redeem(ISSUER, req, None, now).await
}

fn token_error(r: Result<tuaton_idm::TokenResponse, OidcError>) -> OAuthError {
    match r {
        Err(OidcError::Token(e)) => e.error,
        other => panic!("expected a token error, got {other:?}"),
    }
}

/// The ID token's claims, verified with the published keys by an independent library.
async fn verified(idm: &Idm, token: &str, audience: &str) -> Value {
    let jwks = idm.id_token_jwks().await.unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value((*jwks).clone()).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[audience]);
    v.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap()
        .claims
}

async fn a_public_client_gets_tokens_once_per_code_and_a_second_redemption_revokes_them(
    db: TestDb,
) {
    let now = OffsetDateTime::now_utc();
    let mut w = world(&db, now).await;
    let admin = w.idm.client_admin();
    let op = Actor::Operator("test".into());
    let a = "https://efiling.rd.go.th/cb";
    admin
        .add(&op, client("rd-app", a, TokenAuth::None, None), now)
        .await
        .unwrap();
    admin
        .add(
            &op,
            client(
                "rd-other",
                "https://efiling.rd.go.th/other",
                TokenAuth::None,
                None,
            ),
            now,
        )
        .await
        .unwrap();
    admin
        .add(
            &op,
            client("sso-app", "https://www.sso.go.th/cb", TokenAuth::None, None),
            now,
        )
        .await
        .unwrap();
    let dup = admin
        .add(&op, client("rd-app", a, TokenAuth::None, None), now)
        .await
        .unwrap_err();
    assert_eq!(dup.code(), ErrorCode::ClientExists);

    let code = code_for(&mut w, "rd-app", a, now).await;
    let before = written(&db).await;
    // Each of these is refused with invalid_grant and spends nothing.
    for (form, why) in [
        (
            redemption(&code, a, VERIFIER, &[("client_id", "rd-other")]),
            "another client",
        ),
        (
            redemption(
                &code,
                &format!("{a}/x"),
                VERIFIER,
                &[("client_id", "rd-app")],
            ),
            "another redirect",
        ),
        (
            redemption(
                &code,
                a,
                "wrong-verifier-wrong-verifier-wrong-verifier",
                &[("client_id", "rd-app")],
            ),
            "wrong verifier",
        ),
        (
            redemption("not-a-code", a, VERIFIER, &[("client_id", "rd-app")]),
            "unknown code",
        ),
    ] {
        assert_eq!(
            token_error(redeem(&w, &form, None, now).await),
            OAuthError::InvalidGrant,
            "{why}"
        );
    }
    assert_eq!(
        written(&db).await,
        before,
        "a refused redemption writes nothing"
    );
    let late = redeem(
        &w,
        &redemption(&code, a, VERIFIER, &[("client_id", "rd-app")]),
        None,
        now + Duration::minutes(2),
    )
    .await;
    assert_eq!(
        token_error(late),
        OAuthError::InvalidGrant,
        "the code lives a minute"
    );

    let tokens = redeem(
        &w,
        &redemption(&code, a, VERIFIER, &[("client_id", "rd-app")]),
        None,
        now,
    )
    .await
    .unwrap();
    let claims = verified(&w.idm, &tokens.id_token, "rd-app").await;
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["acr"], "urn:tuaton:aal:2.2");
    assert_ne!(
        claims["sub"],
        w.account.as_str(),
        "pairwise: the account id does not show"
    );
    let info = w
        .idm
        .userinfo(ISSUER, &tokens.access_token, Scheme::Bearer, None, now)
        .await
        .unwrap();
    assert_eq!(info["sub"], claims["sub"]);
    let expired = w
        .idm
        .userinfo(
            ISSUER,
            &tokens.access_token,
            Scheme::Bearer,
            None,
            now + Duration::seconds(301),
        )
        .await;
    assert!(
        matches!(expired, Err(OidcError::Bearer(_))),
        "an expired token is refused"
    );
    let forged = format!("{}x", tokens.access_token);
    assert!(matches!(
        w.idm
            .userinfo(ISSUER, &forged, Scheme::Bearer, None, now)
            .await,
        Err(OidcError::Bearer(_))
    ));
    assert!(
        matches!(
            w.idm
                .userinfo(ISSUER, &tokens.id_token, Scheme::Bearer, None, now)
                .await,
            Err(OidcError::Bearer(_))
        ),
        "an ID token is not an access token"
    );

    // Another client presenting the spent code is refused and ends nothing.
    let foreign = redeem(
        &w,
        &redemption(&code, a, VERIFIER, &[("client_id", "rd-other")]),
        None,
        now,
    )
    .await;
    assert_eq!(token_error(foreign), OAuthError::InvalidGrant);
    assert!(
        w.idm
            .userinfo(ISSUER, &tokens.access_token, Scheme::Bearer, None, now)
            .await
            .is_ok()
    );

    // The same code again: refused, and the grant it gave is revoked.
    let again = redeem(
        &w,
        &redemption(&code, a, VERIFIER, &[("client_id", "rd-app")]),
        None,
        now,
    )
    .await;
    assert_eq!(token_error(again), OAuthError::InvalidGrant);
    assert!(matches!(
        w.idm
            .userinfo(ISSUER, &tokens.access_token, Scheme::Bearer, None, now)
            .await,
        Err(OidcError::Bearer(_))
    ));
    let log = tuaton_store::audit::list(&db.store, 0, 1000).await.unwrap();
    assert!(
        log.iter()
            .any(|r| r.action == "oidc.grant_revoked" && r.details.contains("code_reused"))
    );

    // Pairwise: one sector shares the sub, another never does.
    let other = code_for(&mut w, "rd-other", "https://efiling.rd.go.th/other", now).await;
    let t2 = redeem(
        &w,
        &redemption(
            &other,
            "https://efiling.rd.go.th/other",
            VERIFIER,
            &[("client_id", "rd-other")],
        ),
        None,
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        verified(&w.idm, &t2.id_token, "rd-other").await["sub"],
        claims["sub"]
    );
    let sso = code_for(&mut w, "sso-app", "https://www.sso.go.th/cb", now).await;
    let t3 = redeem(
        &w,
        &redemption(
            &sso,
            "https://www.sso.go.th/cb",
            VERIFIER,
            &[("client_id", "sso-app")],
        ),
        None,
        now,
    )
    .await
    .unwrap();
    assert_ne!(
        verified(&w.idm, &t3.id_token, "sso-app").await["sub"],
        claims["sub"]
    );

    // A redirect URI removed from the registration gets no more codes
    // redeemed for it, even one issued before the change.
    let in_flight = code_for(&mut w, "rd-other", "https://efiling.rd.go.th/other", now).await;
    let mut moved = admin.show("rd-other").await.unwrap().config;
    moved.redirect_uris = vec![Url::parse("https://efiling.rd.go.th/new").unwrap()];
    moved.subject = SubjectType::Pairwise {
        sector: "efiling.rd.go.th".into(),
    };
    admin.update(&op, moved, false, now).await.unwrap();
    let refused = redeem(
        &w,
        &redemption(
            &in_flight,
            "https://efiling.rd.go.th/other",
            VERIFIER,
            &[("client_id", "rd-other")],
        ),
        None,
        now,
    )
    .await;
    assert_eq!(token_error(refused), OAuthError::InvalidGrant);

    // Removing a client revokes what it holds.
    admin.remove(&op, "sso-app", now).await.unwrap();
    assert!(matches!(
        w.idm
            .userinfo(ISSUER, &t3.access_token, Scheme::Bearer, None, now)
            .await,
        Err(OidcError::Bearer(_))
    ));
    chain_is_intact(&db).await;
    db.cleanup().await;
}

async fn authorization_requests_that_break_a_rule_are_refused_and_write_nothing(db: TestDb) {
    let now = OffsetDateTime::now_utc();
    let (mut w, _op, a) = with_public_client(&db, now).await;
    let before = written(&db).await;
    let with = |name: &str, value: Option<&str>| {
        let mut p = request("rd-app", a);
        p.retain(|(k, _)| k != name);
        if let Some(v) = value {
            p.push((name.to_owned(), v.to_owned()));
        }
        p
    };
    for (p, direct, code) in [
        (
            with(
                "redirect_uri",
                Some("https://efiling.rd.go.th/cb.evil.example"),
            ),
            true,
            OAuthError::InvalidRequest,
        ),
        (
            with("redirect_uri", Some("https://efiling.rd.go.th/cb/extra")),
            true,
            OAuthError::InvalidRequest,
        ),
        (
            with("client_id", Some("nobody")),
            true,
            OAuthError::InvalidRequest,
        ),
        (
            with("code_challenge_method", None),
            false,
            OAuthError::InvalidRequest,
        ),
        (
            with("code_challenge_method", Some("plain")),
            false,
            OAuthError::InvalidRequest,
        ),
        (
            with("response_type", Some("token")),
            false,
            OAuthError::UnsupportedResponseType,
        ),
        (
            with("prompt", Some("none")),
            false,
            OAuthError::LoginRequired,
        ),
    ] {
        match w.idm.begin_authorization(ISSUER, &p, now).await {
            Err(OidcError::Authorize(e)) => {
                assert_eq!(e.error(), code, "{p:?}");
                assert_eq!(matches!(e, AuthorizeError::Direct { .. }), direct, "{p:?}");
                if !direct {
                    let url = e.redirect(ISSUER).unwrap();
                    assert!(url.as_str().starts_with(a));
                }
            }
            other => panic!("{p:?}: {other:?}"),
        }
    }
    assert_eq!(
        written(&db).await,
        before,
        "a refused request writes nothing"
    );
    // Every login asks for a passkey, whose choice is the account's: login
    // and select_account are met by the login page, alone or together.
    for prompt in ["login", "select_account", "login select_account consent"] {
        let mut p = request("rd-app", a);
        p.push(("prompt".into(), prompt.into()));
        let pending = w.idm.begin_authorization(ISSUER, &p, now).await;
        assert!(pending.is_ok(), "prompt={prompt}: {pending:?}");
    }

    // A session older than the request cannot answer it; declining needs none.
    let old: ActiveSession = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    let pending = w
        .idm
        .begin_authorization(ISSUER, &request("rd-app", a), now + Duration::seconds(1))
        .await
        .unwrap();
    let stale = w
        .idm
        .complete_authorization(
            ISSUER,
            &pending.id,
            Some(&old),
            Decision::Allow,
            now + Duration::seconds(1),
        )
        .await;
    assert!(
        matches!(stale, Err(OidcError::Idm(ref e)) if e.code() == ErrorCode::FreshLoginRequired),
        "{stale:?}"
    );
    let denied = w
        .idm
        .complete_authorization(ISSUER, &pending.id, None, Decision::Deny, now)
        .await
        .unwrap();
    assert!(
        denied
            .query_pairs()
            .any(|(k, v)| k == "error" && v == "access_denied")
    );
    let twice = w
        .idm
        .complete_authorization(ISSUER, &pending.id, None, Decision::Deny, now)
        .await;
    assert!(twice.is_err(), "a request is answered once");

    // acr_values: the least levels asked for, each of its kind.
    let asking = |acr: &str| {
        let mut p = request("rd-app", a);
        p.push(("acr_values".into(), acr.into()));
        p
    };
    let strong = w
        .idm
        .begin_authorization(ISSUER, &asking("urn:tuaton:aal:3"), now)
        .await
        .unwrap();
    let login = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    let weak = w
        .idm
        .complete_authorization(ISSUER, &strong.id, Some(&login), Decision::Allow, now)
        .await;
    assert!(
        matches!(weak, Err(OidcError::Idm(ref e)) if e.code() == ErrorCode::AalTooLow),
        "a passkey below AAL3 is told to step up: {weak:?}"
    );
    assert!(
        w.idm
            .complete_authorization(ISSUER, &strong.id, None, Decision::Deny, now)
            .await
            .is_ok(),
        "and the request still waits for it"
    );
    let proofed = w
        .idm
        .begin_authorization(ISSUER, &asking("urn:tuaton:ial:2.3"), now)
        .await
        .unwrap();
    match w
        .idm
        .complete_authorization(ISSUER, &proofed.id, Some(&login), Decision::Allow, now)
        .await
    {
        Err(OidcError::Authorize(e)) => {
            assert_eq!(e.error(), OAuthError::UnmetAuthenticationRequirements);
            assert!(e.redirect(ISSUER).is_some(), "the agency hears it");
        }
        other => panic!("{other:?}"),
    }
    let met = w
        .idm
        .begin_authorization(
            ISSUER,
            &asking("urn:tuaton:ial:2.1 urn:tuaton:aal:2.2"),
            now,
        )
        .await
        .unwrap();
    assert!(
        w.idm
            .complete_authorization(ISSUER, &met.id, Some(&login), Decision::Allow, now)
            .await
            .is_ok()
    );
    db.cleanup().await;
}

/// A P-256 key pair; the JWK Set of its public half.
fn agency_key() -> (EcdsaKeyPair, Vec<u8>, Value) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let p = pair.public_key().as_ref().to_vec();
    let jwks = json!({ "keys": [{ "kty": "EC", "crv": "P-256", "kid": "k1",
        "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65]) }] });
    (pair, pkcs8.as_ref().to_vec(), jwks)
}

fn assertion(
    pkcs8: &[u8],
    alg: jsonwebtoken::Algorithm,
    claims: &Value,
    secret: Option<&[u8]>,
) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = Some("k1".into());
    let key = match secret {
        Some(s) => jsonwebtoken::EncodingKey::from_secret(s),
        None => jsonwebtoken::EncodingKey::from_ec_der(pkcs8),
    };
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

async fn confidential_clients_authenticate_and_replays_are_refused(db: TestDb) {
    let now = OffsetDateTime::now_utc();
    let mut w = world(&db, now).await;
    let op = Actor::Operator("test".into());
    let admin = w.idm.client_admin();
    let a = "https://efiling.rd.go.th/cb";
    let (_pair, pkcs8, jwks) = agency_key();
    admin
        .add(
            &op,
            client("rd-jwt", a, TokenAuth::PrivateKeyJwt, Some(jwks.clone())),
            now,
        )
        .await
        .unwrap();
    let (_, secret) = admin
        .add(
            &op,
            client("rd-basic", a, TokenAuth::ClientSecretBasic, None),
            now,
        )
        .await
        .unwrap();
    let secret = secret.expect("a client_secret_basic client gets a secret");
    let claims = |aud: &str, jti: &str, exp: OffsetDateTime| {
        json!({
            "iss": "rd-jwt", "sub": "rd-jwt", "aud": aud, "jti": jti,
            "iat": now.unix_timestamp(), "exp": exp.unix_timestamp(),
        })
    };
    let soon = now + Duration::minutes(1);
    let jwt = |c: &Value| assertion(&pkcs8, jsonwebtoken::Algorithm::ES256, c, None);
    let form = |code: &str, jwt: &str| {
        redemption(
            code,
            a,
            VERIFIER,
            &[
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", jwt),
            ],
        )
    };

    let code = code_for(&mut w, "rd-jwt", a, now).await;
    let before = written(&db).await;
    let public_as_secret = jwks.to_string();
    for (bad, why) in [
        (
            jwt(&claims("https://elsewhere.example/token", "j-aud", soon)),
            "wrong audience",
        ),
        (
            jwt(&claims(ISSUER, "j-exp", now - Duration::minutes(5))),
            "expired",
        ),
        (
            jwt(&claims(ISSUER, "j-far", now + Duration::hours(2))),
            "lives too long",
        ),
        (
            assertion(
                &pkcs8,
                jsonwebtoken::Algorithm::HS256,
                &claims(ISSUER, "j-hs", soon),
                Some(public_as_secret.as_bytes()),
            ),
            "HS256 with the public key",
        ),
        (
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#),
                URL_SAFE_NO_PAD.encode(claims(ISSUER, "j-none", soon).to_string())
            ),
            "alg none",
        ),
    ] {
        assert_eq!(
            token_error(redeem(&w, &form(&code, &bad), None, now).await),
            OAuthError::InvalidClient,
            "{why}"
        );
    }
    let token_endpoint = jwt(&claims(&format!("{ISSUER}/token"), "j-te", soon));
    assert_eq!(
        token_error(redeem(&w, &form(&code, &token_endpoint), None, now).await),
        OAuthError::InvalidClient,
        "the audience is the issuer alone"
    );
    assert_eq!(
        written(&db).await,
        before,
        "a refused client writes nothing"
    );
    let good = jwt(&claims(ISSUER, "j-1", soon));
    // A good assertion beside a wrong verifier: refused, and nothing is
    // written, not even the assertion's jti (it is spent with the grant).
    let wrong_verifier = redemption(
        &code,
        a,
        "another-verifier-of-the-right-length-to-pass-the-form-1234",
        &[
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &good),
        ],
    );
    assert_eq!(
        token_error(redeem(&w, &wrong_verifier, None, now).await),
        OAuthError::InvalidGrant
    );
    assert_eq!(
        written(&db).await,
        before,
        "a refused redemption writes nothing"
    );
    let tokens = redeem(&w, &form(&code, &good), None, now).await.unwrap();
    assert_eq!(
        verified(&w.idm, &tokens.id_token, "rd-jwt").await["aud"],
        "rd-jwt"
    );
    let code2 = code_for(&mut w, "rd-jwt", a, now).await;
    let replay = redeem(&w, &form(&code2, &good), None, now).await;
    assert_eq!(
        token_error(replay),
        OAuthError::InvalidClient,
        "a jti is used once"
    );
    let wrong_method = redeem(
        &w,
        &redemption(&code2, a, VERIFIER, &[("client_id", "rd-jwt")]),
        None,
        now,
    )
    .await;
    assert_eq!(
        token_error(wrong_method),
        OAuthError::InvalidClient,
        "a confidential client cannot act as public"
    );

    let code3 = code_for(&mut w, "rd-basic", a, now).await;
    let basic = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("rd-basic:{s}"))
        )
    };
    let form3 = redemption(&code3, a, VERIFIER, &[]);
    assert_eq!(
        token_error(redeem(&w, &form3, Some(&basic("guess")), now).await),
        OAuthError::InvalidClient
    );
    assert!(
        redeem(&w, &form3, Some(&basic(secret.expose())), now)
            .await
            .is_ok()
    );
    db.cleanup().await;
}

fn query(token: &str, client_id: &str) -> tuaton_oidc::token::TokenQuery {
    tuaton_oidc::token::TokenQuery::parse(
        &params(&[("token", token), ("client_id", client_id)]),
        None,
    )
    .unwrap()
}

async fn refresh_tokens_rotate_a_reused_one_revokes_the_family_and_revocation_ends_it(db: TestDb) {
    let now = OffsetDateTime::now_utc();
    let (mut w, op, a) = with_public_client(&db, now).await;
    w.idm
        .client_admin()
        .add(
            &op,
            client("sso-app", "https://www.sso.go.th/cb", TokenAuth::None, None),
            now,
        )
        .await
        .unwrap();
    let refresh = |t: &str, id: &str| {
        params(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t),
            ("client_id", id),
        ])
    };

    let code = code_for(&mut w, "rd-app", a, now).await;
    let first = redeem(
        &w,
        &redemption(&code, a, VERIFIER, &[("client_id", "rd-app")]),
        None,
        now,
    )
    .await
    .unwrap();
    let before = written(&db).await;
    assert_eq!(
        token_error(redeem(&w, &refresh(&first.refresh_token, "sso-app"), None, now).await),
        OAuthError::InvalidGrant,
        "another client's refresh token"
    );
    assert_eq!(written(&db).await, before, "refused, nothing written");
    let later = now + Duration::minutes(10);
    let second = redeem(&w, &refresh(&first.refresh_token, "rd-app"), None, later)
        .await
        .unwrap();
    assert_ne!(second.refresh_token, first.refresh_token, "rotated");
    let sub = verified(&w.idm, &first.id_token, "rd-app").await["sub"].clone();
    assert_eq!(
        w.idm
            .userinfo(ISSUER, &second.access_token, Scheme::Bearer, None, later)
            .await
            .unwrap()["sub"],
        sub
    );
    let third = redeem(&w, &refresh(&second.refresh_token, "rd-app"), None, later)
        .await
        .unwrap();

    // The spent first token again: the whole family is revoked.
    let reused = redeem(&w, &refresh(&first.refresh_token, "rd-app"), None, later).await;
    assert_eq!(token_error(reused), OAuthError::InvalidGrant);
    assert_eq!(
        token_error(redeem(&w, &refresh(&third.refresh_token, "rd-app"), None, later).await),
        OAuthError::InvalidGrant
    );
    assert!(matches!(
        w.idm
            .userinfo(ISSUER, &third.access_token, Scheme::Bearer, None, later)
            .await,
        Err(OidcError::Bearer(_))
    ));
    let past_login = now + Duration::hours(13);
    let code = code_for(&mut w, "rd-app", a, now).await;
    let fresh = redeem(
        &w,
        &redemption(&code, a, VERIFIER, &[("client_id", "rd-app")]),
        None,
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        token_error(
            redeem(
                &w,
                &refresh(&fresh.refresh_token, "rd-app"),
                None,
                past_login
            )
            .await
        ),
        OAuthError::InvalidGrant,
        "a family lives no longer than a session of the same login"
    );

    // Revocation (RFC 7009): a public client may revoke its own tokens;
    // introspection (RFC 7662) needs a confidential client.
    assert!(matches!(
        w.idm.introspect(ISSUER, query(&fresh.access_token, "rd-app"), now).await,
        Err(OidcError::Token(ref e)) if e.error == OAuthError::InvalidClient
    ));
    w.idm
        .revoke(ISSUER, query(&fresh.access_token, "sso-app"), now)
        .await
        .unwrap();
    assert!(
        w.idm
            .userinfo(ISSUER, &fresh.access_token, Scheme::Bearer, None, now)
            .await
            .is_ok(),
        "another client cannot revoke it"
    );
    w.idm
        .revoke(ISSUER, query("not-a-token", "rd-app"), now)
        .await
        .unwrap();
    w.idm
        .revoke(ISSUER, query(&fresh.refresh_token, "rd-app"), now)
        .await
        .unwrap();
    assert!(matches!(
        w.idm
            .userinfo(ISSUER, &fresh.access_token, Scheme::Bearer, None, now)
            .await,
        Err(OidcError::Bearer(_))
    ));
    chain_is_intact(&db).await;
    db.cleanup().await;
}

async fn a_confidential_client_pushes_its_requests_and_each_works_once(db: TestDb) {
    let now = OffsetDateTime::now_utc();
    let mut w = world(&db, now).await;
    let op = Actor::Operator("test".into());
    let a = "https://efiling.rd.go.th/cb";
    let mut pushing = client("rd-basic", a, TokenAuth::ClientSecretBasic, None);
    pushing.require_par = true;
    let (_, secret) = w.idm.client_admin().add(&op, pushing, now).await.unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("rd-basic:{}", secret.unwrap().expose()))
    );
    // Through the browser: refused, back to the client.
    match w
        .idm
        .begin_authorization(ISSUER, &request("rd-basic", a), now)
        .await
    {
        Err(OidcError::Authorize(e)) => {
            assert_eq!(e.error(), OAuthError::InvalidRequest);
            assert!(e.redirect(ISSUER).is_some());
        }
        other => panic!("{other:?}"),
    }
    let mut form = request("rd-basic", a);
    form.retain(|(k, _)| k != "client_id");
    let pushed = tuaton_oidc::PushedRequest::parse(&form, Some(&basic)).unwrap();
    let (uri, expires_in) = w
        .idm
        .push_authorization(ISSUER, pushed, None, now)
        .await
        .unwrap();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(expires_in, 60);
    let wrong =
        tuaton_oidc::PushedRequest::parse(&form, Some("Basic cmQtYmFzaWM6Z3Vlc3M=")).unwrap();
    assert!(matches!(
        w.idm.push_authorization(ISSUER, wrong, None, now).await,
        Err(OidcError::Token(ref e)) if e.error == OAuthError::InvalidClient
    ));
    let mut nested = form.clone();
    nested.push(("request_uri".into(), uri.clone()));
    let nested = tuaton_oidc::PushedRequest::parse(&nested, Some(&basic)).unwrap();
    assert!(matches!(
        w.idm.push_authorization(ISSUER, nested, None, now).await,
        Err(OidcError::Token(ref e)) if e.error == OAuthError::InvalidRequest
    ));
    // The browser brings the reference; what else the query says is ignored.
    let by_ref = params(&[
        ("client_id", "rd-basic"),
        ("request_uri", &uri),
        ("redirect_uri", "https://evil.example/cb"),
    ]);
    let pending = w
        .idm
        .begin_authorization(ISSUER, &by_ref, now)
        .await
        .unwrap();
    assert_eq!(pending.redirect_uri.as_str(), a);
    assert!(
        matches!(
            w.idm.begin_authorization(ISSUER, &by_ref, now).await,
            Err(OidcError::Authorize(AuthorizeError::Direct { .. }))
        ),
        "a pushed request works once"
    );
    let other = params(&[("client_id", "someone-else"), ("request_uri", &uri)]);
    assert!(matches!(
        w.idm.begin_authorization(ISSUER, &other, now).await,
        Err(OidcError::Authorize(AuthorizeError::Direct { .. }))
    ));
    let code = code_after_login(&w.idm, &mut w.authn, &w.evidence, ISSUER, &pending.id, now).await;
    assert!(
        redeem(&w, &redemption(&code, a, VERIFIER, &[]), Some(&basic), now)
            .await
            .is_ok()
    );
    db.cleanup().await;
}

async fn rp_initiated_logout_revokes_the_session_with_the_client(db: TestDb) {
    let now = OffsetDateTime::now_utc();
    let mut w = world(&db, now).await;
    let op = Actor::Operator("test".into());
    let a = "https://efiling.rd.go.th/cb";
    let bye = "https://efiling.rd.go.th/bye";
    let mut registered = client("rd-app", a, TokenAuth::None, None);
    registered.post_logout_redirect_uris = vec![Url::parse(bye).unwrap()];
    w.idm
        .client_admin()
        .add(&op, registered, now)
        .await
        .unwrap();
    let code = code_for(&mut w, "rd-app", a, now).await;
    let tokens = redeem(
        &w,
        &redemption(&code, a, VERIFIER, &[("client_id", "rd-app")]),
        None,
        now,
    )
    .await
    .unwrap();
    let logout = |extra: &[(&str, &str)]| {
        let mut p = params(&[("id_token_hint", tokens.id_token.as_str())]);
        p.extend(params(extra));
        p
    };
    let before = written(&db).await;
    for (p, why) in [
        (
            logout(&[("post_logout_redirect_uri", "https://efiling.rd.go.th/bye/x")]),
            "unregistered",
        ),
        (logout(&[("client_id", "someone-else")]), "another client"),
        (
            params(&[("id_token_hint", &format!("{}x", tokens.id_token))]),
            "forged hint",
        ),
    ] {
        assert!(
            matches!(
                w.idm.plan_logout(ISSUER, &p).await,
                Err(OidcError::Logout(_))
            ),
            "{why}"
        );
        assert!(
            w.idm.end_session(ISSUER, &p, None, now).await.is_err(),
            "{why}"
        );
    }
    assert_eq!(
        written(&db).await,
        before,
        "a refused logout writes nothing"
    );
    let p = logout(&[("post_logout_redirect_uri", bye), ("state", "s-9")]);
    let plan = w.idm.plan_logout(ISSUER, &p).await.unwrap();
    assert_eq!(
        plan.destination.as_ref().unwrap().as_str(),
        "https://efiling.rd.go.th/bye?state=s-9"
    );
    assert!(
        w.idm
            .userinfo(ISSUER, &tokens.access_token, Scheme::Bearer, None, now)
            .await
            .is_ok(),
        "planning changes nothing"
    );
    let back = w
        .idm
        .end_session(ISSUER, &p, None, now + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        back, plan.destination,
        "an expired ID token is still a hint"
    );
    assert!(matches!(
        w.idm
            .userinfo(ISSUER, &tokens.access_token, Scheme::Bearer, None, now)
            .await,
        Err(OidcError::Bearer(_))
    ));
    let refresh = params(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &tokens.refresh_token),
        ("client_id", "rd-app"),
    ]);
    assert_eq!(
        token_error(redeem(&w, &refresh, None, now).await),
        OAuthError::InvalidGrant
    );
    db.cleanup().await;
}

async fn introspection_shows_a_client_its_own_tokens_and_account_events_end_every_grant(
    db: TestDb,
) {
    let now = OffsetDateTime::now_utc();
    let mut w = world(&db, now).await;
    let op = Actor::Operator("test".into());
    let a = "https://efiling.rd.go.th/cb";
    let admin = w.idm.client_admin();
    let (_, s1) = admin
        .add(
            &op,
            client("rd-basic", a, TokenAuth::ClientSecretBasic, None),
            now,
        )
        .await
        .unwrap();
    let (_, s2) = admin
        .add(
            &op,
            client(
                "sso-basic",
                "https://www.sso.go.th/cb",
                TokenAuth::ClientSecretBasic,
                None,
            ),
            now,
        )
        .await
        .unwrap();
    let basic = |id: &str, s: &tuaton_idm::ClientSecret| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{}", s.expose()))
        )
    };
    let (b1, b2) = (
        basic("rd-basic", s1.as_ref().unwrap()),
        basic("sso-basic", s2.as_ref().unwrap()),
    );
    let ask = |token: &str, auth: &str| {
        tuaton_oidc::TokenQuery::parse(&params(&[("token", token)]), Some(auth)).unwrap()
    };
    let code = code_for(&mut w, "rd-basic", a, now).await;
    let t = redeem(&w, &redemption(&code, a, VERIFIER, &[]), Some(&b1), now)
        .await
        .unwrap();
    let seen = w
        .idm
        .introspect(ISSUER, ask(&t.access_token, &b1), now)
        .await
        .unwrap();
    assert_eq!(
        (seen["active"].clone(), seen["client_id"].clone()),
        (json!(true), json!("rd-basic"))
    );
    assert_eq!(
        seen["ial"], "urn:tuaton:ial:2.1",
        "the identity level rides with the token"
    );
    assert_eq!(
        w.idm
            .introspect(ISSUER, ask(&t.refresh_token, &b1), now)
            .await
            .unwrap()["token_type"],
        "refresh_token"
    );
    assert_eq!(
        w.idm
            .introspect(ISSUER, ask(&t.access_token, &b2), now)
            .await
            .unwrap(),
        json!({ "active": false }),
        "another client learns nothing"
    );
    // A spent refresh token tried at introspection ends its family too.
    let refresh = params(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &t.refresh_token),
    ]);
    let next = redeem(&w, &refresh, Some(&b1), now).await.unwrap();
    assert_eq!(
        w.idm
            .introspect(ISSUER, ask(&t.refresh_token, &b1), now)
            .await
            .unwrap(),
        json!({ "active": false })
    );
    assert_eq!(
        w.idm
            .introspect(ISSUER, ask(&next.access_token, &b1), now)
            .await
            .unwrap(),
        json!({ "active": false })
    );

    // Logging out everywhere ends what the account's agencies hold.
    let code = code_for(&mut w, "rd-basic", a, now).await;
    let held = redeem(&w, &redemption(&code, a, VERIFIER, &[]), Some(&b1), now)
        .await
        .unwrap();
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    w.idm.logout_everywhere(&session, now).await.unwrap();
    assert!(matches!(
        w.idm
            .userinfo(ISSUER, &held.access_token, Scheme::Bearer, None, now)
            .await,
        Err(OidcError::Bearer(_))
    ));
    let refresh = params(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &held.refresh_token),
    ]);
    assert_eq!(
        token_error(redeem(&w, &refresh, Some(&b1), now).await),
        OAuthError::InvalidGrant
    );
    db.cleanup().await;
}

async fn an_agency_back_end_gets_tokens_for_itself_only_when_registered_for_it(db: TestDb) {
    let now = OffsetDateTime::now_utc();
    let w = world(&db, now).await;
    let op = Actor::Operator("test".into());
    let admin = w.idm.client_admin();
    let mut machine = client(
        "rd-batch",
        "https://efiling.rd.go.th/cb",
        TokenAuth::ClientSecretBasic,
        None,
    );
    machine.client_credentials = true;
    let (_, secret) = admin.add(&op, machine, now).await.unwrap();
    let (_, other) = admin
        .add(
            &op,
            client(
                "rd-web",
                "https://efiling.rd.go.th/cb",
                TokenAuth::ClientSecretBasic,
                None,
            ),
            now,
        )
        .await
        .unwrap();
    let mut public = client(
        "rd-app",
        "https://efiling.rd.go.th/cb",
        TokenAuth::None,
        None,
    );
    public.client_credentials = true;
    assert!(
        admin.add(&op, public, now).await.is_err(),
        "a public client cannot act for itself"
    );
    let basic = |id: &str, s: &tuaton_idm::ClientSecret| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{}", s.expose()))
        )
    };
    let (b, b_other) = (
        basic("rd-batch", secret.as_ref().unwrap()),
        basic("rd-web", other.as_ref().unwrap()),
    );
    let cc = params(&[("grant_type", "client_credentials")]);
    let t = redeem(&w, &cc, Some(&b), now).await.unwrap();
    assert!(
        t.id_token.is_empty() && t.refresh_token.is_empty(),
        "no person, no ID or refresh token"
    );
    assert_eq!(
        token_error(redeem(&w, &cc, Some(&b_other), now).await),
        OAuthError::UnauthorizedClient,
        "only a client registered for it"
    );
    let scoped = params(&[("grant_type", "client_credentials"), ("scope", "openid")]);
    assert_eq!(
        token_error(redeem(&w, &scoped, Some(&b), now).await),
        OAuthError::InvalidScope
    );
    assert!(
        matches!(
            w.idm
                .userinfo(ISSUER, &t.access_token, Scheme::Bearer, None, now)
                .await,
            Err(OidcError::Bearer(_))
        ),
        "a client's own token names no person"
    );
    let ask = |token: &str| {
        tuaton_oidc::TokenQuery::parse(&params(&[("token", token)]), Some(&b)).unwrap()
    };
    let seen = w
        .idm
        .introspect(ISSUER, ask(&t.access_token), now)
        .await
        .unwrap();
    assert_eq!(
        (seen["active"].clone(), seen["sub"].clone()),
        (json!(true), json!("rd-batch"))
    );
    w.idm
        .revoke(ISSUER, ask(&t.access_token), now)
        .await
        .unwrap();
    assert_eq!(
        w.idm
            .introspect(ISSUER, ask(&t.access_token), now)
            .await
            .unwrap(),
        json!({ "active": false })
    );
    let log = tuaton_store::audit::list(&db.store, 0, 1000).await.unwrap();
    assert!(
        log.iter()
            .any(|r| r.action == "oidc.client_credentials" && r.actor == "client:rd-batch")
    );
    db.cleanup().await;
}

/// A client's DPoP key: the signing half as PKCS#8, the public half as a JWK.
struct DpopKey {
    pkcs8: Vec<u8>,
    jwk: Value,
}

fn dpop_key() -> DpopKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    DpopKey {
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk: json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
    }
}

impl DpopKey {
    fn jkt(&self) -> String {
        tuaton_oidc::dpop::thumbprint(&self.jwk).unwrap()
    }

    /// A proof for `method` `path` made at `at`, with `nonce` and, at a
    /// resource, the hash of `token`; `tamper` changes the claims first.
    fn proof_with(
        &self,
        method: &'static str,
        path: &str,
        at: OffsetDateTime,
        nonce: &str,
        token: Option<&str>,
        tamper: impl FnOnce(&mut Value),
    ) -> Presented {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(serde_json::from_value(self.jwk.clone()).unwrap());
        let mut claims = json!({
            "jti": tuaton_store::new_id(), "htm": method, "htu": format!("{ISSUER}{path}"),
            "iat": at.unix_timestamp(), "nonce": nonce,
        });
        if let Some(t) = token {
            claims["ath"] = json!(tuaton_oidc::dpop::token_hash(t));
        }
        tamper(&mut claims);
        let proof = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8),
        )
        .unwrap();
        Presented {
            proof,
            method,
            uri: Url::parse(&format!("{ISSUER}{path}")).unwrap(),
        }
    }

    fn proof(
        &self,
        method: &'static str,
        path: &str,
        at: OffsetDateTime,
        nonce: &str,
        token: Option<&str>,
    ) -> Presented {
        self.proof_with(method, path, at, nonce, token, |_| {})
    }
}

async fn redeem_with(
    w: &World,
    form: &[(String, String)],
    dpop: Option<&Presented>,
    now: OffsetDateTime,
) -> Result<tuaton_idm::TokenResponse, OidcError> {
    let req = TokenRequest::parse(form, None).map_err(OidcError::Token)?;
    w.idm.redeem(ISSUER, req, dpop, now).await
}

fn dpop_error(r: Result<impl std::fmt::Debug, OidcError>) -> DpopError {
    match r {
        Err(OidcError::Dpop(e)) => e,
        other => panic!("expected a DPoP refusal, got {other:?}"),
    }
}

async fn dpop_binds_the_code_and_the_tokens_to_the_clients_key_and_refuses_every_other_proof(
    db: TestDb,
) {
    let now = OffsetDateTime::now_utc();
    let mut w = world(&db, now).await;
    let op = Actor::Operator("test".into());
    let a = "https://efiling.rd.go.th/cb";
    let mut registered = client("rd-app", a, TokenAuth::None, None);
    registered.dpop_bound_access_tokens = true;
    w.idm
        .client_admin()
        .add(&op, registered, now)
        .await
        .unwrap();
    let (key, other) = (dpop_key(), dpop_key());
    let nonce = w.idm.dpop_nonce(now).await.unwrap();

    // A proof beside the pushed request binds the code to its key (RFC 9449
    // §10.1); a dpop_jkt naming another key beside it is refused.
    let mut form = request("rd-app", a);
    form.push(("dpop_jkt".into(), other.jkt()));
    let pushed = tuaton_oidc::PushedRequest::parse(&form, None).unwrap();
    let before = written(&db).await;
    let e = dpop_error(
        w.idm
            .push_authorization(
                ISSUER,
                pushed,
                Some(&key.proof("POST", "/par", now, &nonce, None)),
                now,
            )
            .await,
    );
    assert!(e.to_string().contains("dpop_jkt"), "{e}");
    assert_eq!(written(&db).await, before, "refused, nothing written");
    let pushed = tuaton_oidc::PushedRequest::parse(&request("rd-app", a), None).unwrap();
    let (uri, _) = w
        .idm
        .push_authorization(
            ISSUER,
            pushed,
            Some(&key.proof("POST", "/par", now, &nonce, None)),
            now,
        )
        .await
        .unwrap();
    let by_ref = params(&[("client_id", "rd-app"), ("request_uri", &uri)]);
    let pending = w
        .idm
        .begin_authorization(ISSUER, &by_ref, now)
        .await
        .unwrap();
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    let back = w
        .idm
        .complete_authorization(ISSUER, &pending.id, Some(&session), Decision::Allow, now)
        .await
        .unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let form = redemption(&code, a, VERIFIER, &[("client_id", "rd-app")]);

    // Every wrong proof is refused with its RFC 9449 code, and the code is
    // not spent: nothing is written.
    let before = written(&db).await;
    assert_eq!(
        dpop_error(redeem_with(&w, &form, None, now).await),
        DpopError::Missing,
        "the client's tokens are DPoP-bound"
    );
    let no_nonce = key.proof_with("POST", "/token", now, "", None, |c| {
        c.as_object_mut().unwrap().remove("nonce");
    });
    assert_eq!(
        dpop_error(redeem_with(&w, &form, Some(&no_nonce), now).await),
        DpopError::NonceNeeded
    );
    for (proof, why) in [
        (other.proof("POST", "/token", now, &nonce, None), "dpop_jkt"),
        (
            key.proof_with("POST", "/token", now, &nonce, None, |c| {
                c["htm"] = json!("GET")
            }),
            "htm",
        ),
        (
            key.proof_with("POST", "/token", now, &nonce, None, |c| {
                c["htu"] = json!(format!("{ISSUER}/userinfo"));
            }),
            "htu",
        ),
        (
            key.proof("POST", "/token", now - Duration::minutes(3), &nonce, None),
            "iat",
        ),
    ] {
        let e = dpop_error(redeem_with(&w, &form, Some(&proof), now).await);
        assert_eq!(e.error(), OAuthError::InvalidDpopProof, "{why}");
        assert!(e.to_string().contains(why), "{why}: {e}");
    }
    assert_eq!(written(&db).await, before, "refused, nothing written");

    let proof = key.proof("POST", "/token", now, &nonce, None);
    let tokens = redeem_with(&w, &form, Some(&proof), now).await.unwrap();
    assert_eq!(tokens.token_type, "DPoP");
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(tokens.access_token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["cnf"]["jkt"], key.jkt(), "RFC 9449 §6.1");

    // The same proof again: a replay, refused before the refresh token is spent.
    let refresh = params(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &tokens.refresh_token),
        ("client_id", "rd-app"),
    ]);
    let before = written(&db).await;
    let e = dpop_error(redeem_with(&w, &refresh, Some(&proof), now).await);
    assert!(e.to_string().contains("used before"), "{e}");
    // A public client's refresh token is bound to its key: another key's
    // proof is refused and ends nothing, so a thief cannot end the session.
    let e = dpop_error(
        redeem_with(
            &w,
            &refresh,
            Some(&other.proof("POST", "/token", now, &nonce, None)),
            now,
        )
        .await,
    );
    assert!(e.to_string().contains("bound"), "{e}");
    assert_eq!(written(&db).await, before, "refused, nothing written");

    // At userinfo: only with the DPoP scheme and a proof of this key over
    // this request and this token.
    let at = &tokens.access_token;
    assert!(matches!(
        w.idm.userinfo(ISSUER, at, Scheme::Bearer, None, now).await,
        Err(OidcError::Bearer(_))
    ));
    for (proof, why) in [
        (
            other.proof("GET", "/userinfo", now, &nonce, Some(at)),
            "another key",
        ),
        (key.proof("GET", "/userinfo", now, &nonce, None), "ath"),
        (
            key.proof("GET", "/userinfo", now, &nonce, Some("another token")),
            "ath",
        ),
        (
            key.proof_with("GET", "/userinfo", now, &nonce, Some(at), |c| {
                c["htm"] = json!("POST");
            }),
            "htm",
        ),
        (
            key.proof_with("GET", "/userinfo", now, &nonce, Some(at), |c| {
                c["htu"] = json!(format!("{ISSUER}/token"));
            }),
            "htu",
        ),
    ] {
        let e = dpop_error(
            w.idm
                .userinfo(ISSUER, at, Scheme::Dpop, Some(&proof), now)
                .await,
        );
        assert!(e.to_string().contains(why), "{why}: {e}");
    }
    let good = key.proof("GET", "/userinfo", now, &nonce, Some(at));
    let info = w
        .idm
        .userinfo(ISSUER, at, Scheme::Dpop, Some(&good), now)
        .await
        .unwrap();
    assert_eq!(info["sub"], claims["sub"]);
    let e = dpop_error(
        w.idm
            .userinfo(ISSUER, at, Scheme::Dpop, Some(&good), now)
            .await,
    );
    assert!(e.to_string().contains("used before"), "{e}");

    // The key's own proof refreshes, and the new access token is bound to it.
    let later = now + Duration::minutes(10);
    let nonce_later = w.idm.dpop_nonce(later).await.unwrap();
    assert_eq!(
        dpop_error(
            redeem_with(
                &w,
                &refresh,
                Some(&key.proof("POST", "/token", later, &nonce, None)),
                later
            )
            .await
        ),
        DpopError::NonceNeeded,
        "a nonce of ten minutes ago is too old"
    );
    let captured = key.proof("POST", "/token", later, &nonce_later, None);
    let next = redeem_with(&w, &refresh, Some(&captured), later)
        .await
        .unwrap();
    assert_eq!(next.token_type, "DPoP");
    // The same request captured and sent again (its proof spent): a replay,
    // refused, and the family the owner holds stands. So does a used code
    // sent again without the key it is bound to.
    let e = dpop_error(redeem_with(&w, &refresh, Some(&captured), later).await);
    assert!(e.to_string().contains("used before"), "{e}");
    assert_eq!(
        token_error(
            redeem_with(
                &w,
                &form,
                Some(&other.proof("POST", "/token", later, &nonce_later, None)),
                later
            )
            .await
        ),
        OAuthError::InvalidGrant
    );
    let good = key.proof(
        "GET",
        "/userinfo",
        later,
        &nonce_later,
        Some(&next.access_token),
    );
    assert!(
        w.idm
            .userinfo(ISSUER, &next.access_token, Scheme::Dpop, Some(&good), later)
            .await
            .is_ok()
    );
    db.cleanup().await;
}

/// A code for the pending request `pending_id` answered with `decision` by `session`.
async fn answered(
    w: &World,
    pending_id: &str,
    session: &ActiveSession,
    decision: impl Into<tuaton_idm::Answer>,
    now: OffsetDateTime,
) -> Result<String, OidcError> {
    let back = w
        .idm
        .complete_authorization(ISSUER, pending_id, Some(session), decision, now)
        .await?;
    Ok(back
        .query_pairs()
        .find(|(k, _)| k == "code" || k == "error")
        .map(|(_, v)| v.into_owned())
        .unwrap())
}

async fn consent_is_asked_remembered_withdrawn_and_asked_again(db: TestDb) {
    let now = OffsetDateTime::now_utc();
    let mut w = world(&db, now).await;
    let op = Actor::Operator("test".into());
    let a = "https://efiling.rd.go.th/cb";
    let mut registered = client("rd-app", a, TokenAuth::None, None);
    registered.scopes = vec!["openid".into(), "profile".into()];
    let admin = w.idm.client_admin();
    assert!(
        admin.add(&op, registered.clone(), now).await.is_err(),
        "claims need a purpose to show"
    );
    registered.purpose = Some(tuaton_oidc::Purpose {
        id: "tax-filing".into(),
        text: "ยื่นแบบภาษีเงินได้ · Filing your income tax".into(),
    });
    admin.add(&op, registered.clone(), now).await.unwrap();
    let mut ask = request("rd-app", a);
    ask.retain(|(k, _)| k != "scope");
    ask.push(("scope".into(), "openid profile".into()));

    // The citizen id is only for clients registered for it.
    let mut more = request("rd-app", a);
    more.retain(|(k, _)| k != "scope");
    more.push(("scope".into(), "openid citizen_id".into()));
    match w.idm.begin_authorization(ISSUER, &more, now).await {
        Err(OidcError::Authorize(e)) => assert_eq!(e.error(), OAuthError::InvalidScope),
        other => panic!("{other:?}"),
    }

    // Asked: the page names the agency, the purpose and each claim; the
    // request waits and nothing is written until the person answers.
    let pending = w.idm.begin_authorization(ISSUER, &ask, now).await.unwrap();
    assert_eq!(
        pending.claims,
        vec![tuaton_oidc::Claim::Name, tuaton_oidc::Claim::Birthdate]
    );
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    // A consent recorded through the account API, with a notice of the
    // caller's choosing, is not one given on Tuaton's page: it covers nothing.
    let purpose = registered.purpose.clone().unwrap();
    w.idm
        .give_consent(
            &session,
            tuaton_idm::ConsentRequest {
                agency: "rd-app".into(),
                purpose: purpose.id.clone(),
                purpose_version: purpose.version(),
                claims: vec!["name".into(), "birthdate".into()],
                notice_text: "anything at all".into(),
                locale: "th".into(),
                lawful_basis: "consent".into(),
            },
            now,
        )
        .await
        .unwrap();
    let before = written(&db).await;
    match answered(&w, &pending.id, &session, Decision::Allow, now).await {
        Err(OidcError::ConsentNeeded(asked)) => {
            assert_eq!(asked.client_name, "agency rd-app");
            assert!(asked.purpose.contains("income tax"));
            assert_eq!(asked.claims, pending.claims);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(written(&db).await, before, "asked, nothing written");
    let code = answered(&w, &pending.id, &session, Decision::Share, now)
        .await
        .unwrap();
    let consents = w.idm.consents(&session).await.unwrap();
    let live: Vec<_> = consents
        .iter()
        .filter(|c| c.withdrawn_at.is_none())
        .collect();
    assert_eq!(live.len(), 1, "the page's consent supersedes the other");
    let given = live[0];
    assert_eq!(
        (given.agency.as_str(), given.purpose.as_str()),
        ("rd-app", "tax-filing")
    );
    assert_eq!(given.claims, vec!["name", "birthdate"]);
    assert_eq!(given.lawful_basis, "consent");
    assert_eq!(given.notice_digest.len(), 64);
    let tokens = redeem(
        &w,
        &redemption(&code, a, VERIFIER, &[("client_id", "rd-app")]),
        None,
        now,
    )
    .await
    .unwrap();
    let info = w
        .idm
        .userinfo(ISSUER, &tokens.access_token, Scheme::Bearer, None, now)
        .await
        .unwrap();
    assert_eq!(info["name"], "สมชาย ใจดี");
    assert_eq!(info["name#en"], "Somchai Jaidee");
    assert_eq!(info["birthdate"], "1964-02-22");
    assert!(
        info.get("citizen_id").is_none(),
        "not asked for, not released"
    );

    // Remembered: the next login is not asked again; prompt=consent is.
    let pending = w.idm.begin_authorization(ISSUER, &ask, now).await.unwrap();
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    assert!(
        answered(&w, &pending.id, &session, Decision::Allow, now)
            .await
            .is_ok()
    );
    let mut again = ask.clone();
    again.push(("prompt".into(), "consent".into()));
    let pending = w
        .idm
        .begin_authorization(ISSUER, &again, now)
        .await
        .unwrap();
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    assert!(matches!(
        answered(&w, &pending.id, &session, Decision::Allow, now).await,
        Err(OidcError::ConsentNeeded(_))
    ));
    // Declining on the consent page: access_denied, no consent recorded.
    assert_eq!(
        answered(&w, &pending.id, &session, Decision::Deny, now)
            .await
            .unwrap(),
        "access_denied"
    );
    assert_eq!(w.idm.consents(&session).await.unwrap().len(), 2);

    // Withdrawn: the agency's tokens stop, and the next login asks again.
    w.idm
        .withdraw_consent(&session, &given.id, now)
        .await
        .unwrap();
    assert!(matches!(
        w.idm
            .userinfo(ISSUER, &tokens.access_token, Scheme::Bearer, None, now)
            .await,
        Err(OidcError::Bearer(_))
    ));
    let pending = w.idm.begin_authorization(ISSUER, &ask, now).await.unwrap();
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    assert!(matches!(
        answered(&w, &pending.id, &session, Decision::Allow, now).await,
        Err(OidcError::ConsentNeeded(_))
    ));
    answered(&w, &pending.id, &session, Decision::Share, now)
        .await
        .unwrap();

    // A code outlives neither its login's session nor the consent.
    let pending = w.idm.begin_authorization(ISSUER, &ask, now).await.unwrap();
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    let code = answered(&w, &pending.id, &session, Decision::Allow, now)
        .await
        .unwrap();
    w.idm.logout(&session, now).await.unwrap();
    assert_eq!(
        token_error(
            redeem(
                &w,
                &redemption(&code, a, VERIFIER, &[("client_id", "rd-app")]),
                None,
                now
            )
            .await
        ),
        OAuthError::InvalidGrant,
        "logged out in the minute since"
    );

    // A changed purpose text is asked for again.
    registered.purpose = Some(tuaton_oidc::Purpose {
        id: "tax-filing".into(),
        text: "ยื่นแบบและขอคืนภาษี · Filing and refunds".into(),
    });
    admin.update(&op, registered, false, now).await.unwrap();
    let pending = w.idm.begin_authorization(ISSUER, &ask, now).await.unwrap();
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    assert!(matches!(
        answered(&w, &pending.id, &session, Decision::Allow, now).await,
        Err(OidcError::ConsentNeeded(_))
    ));
    assert!(
        tuaton_store::audit::verify(&db.store)
            .await
            .unwrap()
            .is_intact(),
        "the consent and the authorization each have their record in the chain"
    );
    db.cleanup().await;
}

/// A login, replacing the browser's session `previous` if given.
async fn login_replacing(
    w: &mut World,
    previous: Option<&tuaton_idm::SessionSecret>,
    now: OffsetDateTime,
) -> (tuaton_idm::SessionSecret, ActiveSession) {
    let (challenge, assertion) =
        common::login_started(&w.idm, &mut w.authn, &w.evidence, now).await;
    let done = w
        .idm
        .finish_login(&challenge.ceremony_id, &assertion, previous, now)
        .await
        .unwrap();
    let secret = tuaton_idm::SessionSecret::presented(done.session.secret.expose());
    let active = w.idm.session(&secret, now).await.unwrap();
    (secret, active)
}

/// A public client's code redeemed.
async fn redeem_public(
    w: &World,
    code: &str,
    redirect: &str,
    client_id: &str,
    now: OffsetDateTime,
) -> tuaton_idm::TokenResponse {
    let form = redemption(code, redirect, VERIFIER, &[("client_id", client_id)]);
    redeem(w, &form, None, now).await.unwrap()
}

async fn an_ended_session_owes_its_clients_logout_tokens_until_they_are_delivered(db: TestDb) {
    let now = OffsetDateTime::now_utc();
    let mut w = world(&db, now).await;
    let op = Actor::Operator("test".into());
    let a = "https://efiling.rd.go.th/cb";
    let mut with_uri = client("rd-app", a, TokenAuth::None, None);
    with_uri.backchannel_logout_uri = Some(Url::parse("https://efiling.rd.go.th/logout").unwrap());
    let admin = w.idm.client_admin();
    admin.add(&op, with_uri, now).await.unwrap();
    let b = "https://www.sso.go.th/cb";
    admin
        .add(&op, client("sso-app", b, TokenAuth::None, None), now)
        .await
        .unwrap();
    let code = code_for(&mut w, "rd-app", a, now).await;
    let rd = redeem_public(&w, &code, a, "rd-app", now).await;
    let code = code_for(&mut w, "sso-app", b, now).await;
    let sso = redeem_public(&w, &code, b, "sso-app", now).await;
    assert!(
        w.idm.logouts_due(ISSUER, now, 10).await.unwrap().is_empty(),
        "nothing owed while the sessions last"
    );
    // An ID token alone (no browser session with it) logs out only its own
    // client: whoever holds an old one cannot end the person's other sessions.
    w.idm
        .end_session(
            ISSUER,
            &params(&[("id_token_hint", &sso.id_token)]),
            None,
            now,
        )
        .await
        .unwrap();
    assert!(
        w.idm
            .userinfo(ISSUER, &sso.access_token, Scheme::Bearer, None, now)
            .await
            .is_err()
    );
    assert!(
        w.idm
            .userinfo(ISSUER, &rd.access_token, Scheme::Bearer, None, now)
            .await
            .is_ok()
    );
    assert!(w.idm.logouts_due(ISSUER, now, 10).await.unwrap().is_empty());

    // Logging out everywhere ends both grants; only the client with a
    // back-channel URI is sent a token, signed and shaped as §2.4 says.
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    w.idm.logout_everywhere(&session, now).await.unwrap();
    let due = w.idm.logouts_due(ISSUER, now, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let d = &due[0];
    assert_eq!(d.client_id, "rd-app");
    assert_eq!(d.uri.as_str(), "https://efiling.rd.go.th/logout");
    let header = jsonwebtoken::decode_header(&d.token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let id_claims = verified(&w.idm, &rd.id_token, "rd-app").await;
    let jwks = w.idm.id_token_jwks().await.unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value((*jwks).clone()).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["rd-app"]);
    v.set_issuer(&[ISSUER]);
    let logout: Value = jsonwebtoken::decode(&d.token, &key, &v).unwrap().claims;
    assert_eq!(logout["sid"], id_claims["sid"]);
    assert_eq!(logout["sub"], id_claims["sub"]);
    assert!(logout["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(logout.get("nonce").is_none());
    assert!(
        w.idm.logouts_due(ISSUER, now, 10).await.unwrap().is_empty(),
        "claimed: another process does not send it too"
    );

    // A failed post is tried again later, with a growing delay, and given up at last.
    let mut d = d.clone();
    let mut at = now;
    for attempt in 1..tuaton_idm::MAX_LOGOUT_ATTEMPTS {
        match w.idm.logout_attempted(&d, false, at).await.unwrap() {
            tuaton_idm::LogoutOutcome::RetryAt(next) => {
                assert!(next > at);
                assert!(
                    w.idm
                        .logouts_due(ISSUER, next - Duration::seconds(1), 10)
                        .await
                        .unwrap()
                        .is_empty()
                );
                at = next;
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
        let again = w.idm.logouts_due(ISSUER, at, 10).await.unwrap();
        assert_eq!(again.len(), 1, "due again after attempt {attempt}");
        d = again[0].clone();
        assert_eq!(d.attempts, attempt);
    }
    assert_eq!(
        w.idm.logout_attempted(&d, false, at).await.unwrap(),
        tuaton_idm::LogoutOutcome::GaveUp
    );
    assert!(
        w.idm
            .logouts_due(ISSUER, at + Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A new login in the same browser replaces the session and keeps the
    // agency sessions of the one it replaces; ending it owes the token, and
    // a delivery settles it.
    let (first_secret, first) = login_replacing(&mut w, None, now).await;
    let pending = w
        .idm
        .begin_authorization(ISSUER, &request("rd-app", a), now)
        .await
        .unwrap();
    let code = answered(&w, &pending.id, &first, Decision::Allow, now)
        .await
        .unwrap();
    let kept = redeem_public(&w, &code, a, "rd-app", now).await;
    let (_, second) = login_replacing(&mut w, Some(&first_secret), now).await;
    assert!(w.idm.session(&first_secret, now).await.is_err(), "replaced");
    assert!(w.idm.logouts_due(ISSUER, now, 10).await.unwrap().is_empty());
    assert!(
        w.idm
            .userinfo(ISSUER, &kept.access_token, Scheme::Bearer, None, now)
            .await
            .is_ok(),
        "the agency session carries over"
    );
    w.idm.logout(&second, now).await.unwrap();
    let due = w.idm.logouts_due(ISSUER, now, 10).await.unwrap();
    assert_eq!(due.len(), 1, "logging out of the new session ends it");
    assert_eq!(
        w.idm.logout_attempted(&due[0], true, now).await.unwrap(),
        tuaton_idm::LogoutOutcome::Delivered
    );
    assert!(
        w.idm
            .logouts_due(ISSUER, now + Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    chain_is_intact(&db).await;
    db.cleanup().await;
}

async fn a_director_logs_in_for_a_company_the_registry_confirms(db: TestDb) {
    let now = OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().unwrap();
    let registry = std::sync::Arc::new(common::Companies::default());
    let idm = common::idm_with_companies(&db, dir.path(), registry.clone());
    let mut authn = SoftPasskey::new(true);
    let (evidence, account) = enrol_with_passkey(&idm, &mut authn, now).await;
    common::id_token_key(&idm, now).await;
    let mut w = World {
        idm,
        authn,
        evidence,
        account,
        _dir: dir,
    };
    let op = Actor::Operator("test".into());
    let a = "https://biz.dbd.go.th/cb";
    let mut registered = client("dbd-app", a, TokenAuth::None, None);
    registered.scopes = vec!["openid".into(), "business".into()];
    registered.purpose = Some(tuaton_oidc::Purpose {
        id: "company-filing".into(),
        text: "ยื่นงบการเงิน · Filing the company's accounts".into(),
    });
    w.idm
        .client_admin()
        .add(&op, registered, now)
        .await
        .unwrap();
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    let jid = tuaton_core::JuristicId::parse("0105599000019").unwrap();
    w.idm.link_company(&session, &jid, now).await.unwrap();
    let mut ask = request("dbd-app", a);
    ask.retain(|(k, _)| k != "scope");
    ask.push(("scope".into(), "openid business".into()));
    let answer = |decision, company: Option<&str>| tuaton_idm::Answer {
        decision,
        company: company.map(str::to_owned),
        confirmation: None,
    };

    // Consent names the company claim; then the person chooses the company.
    let pending = w.idm.begin_authorization(ISSUER, &ask, now).await.unwrap();
    assert_eq!(pending.claims, vec![tuaton_oidc::Claim::Company]);
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, now).await;
    assert!(matches!(
        answered(&w, &pending.id, &session, Decision::Allow, now).await,
        Err(OidcError::ConsentNeeded(ref c)) if c.claims == vec![tuaton_oidc::Claim::Company]
    ));
    match answered(&w, &pending.id, &session, Decision::Share, now).await {
        Err(OidcError::CompanyNeeded(c)) => assert_eq!(
            c.companies,
            vec![("0105599000019".to_owned(), "บริษัท ตัวตนพัฒนา จำกัด".to_owned())]
        ),
        other => panic!("{other:?}"),
    }
    let before = written(&db).await;
    assert!(
        matches!(
            answered(
                &w,
                &pending.id,
                &session,
                answer(Decision::Share, Some("0105599000027")),
                now
            )
            .await,
            Err(OidcError::Idm(tuaton_idm::IdmError::NotADirector))
        ),
        "a company the account is not linked to"
    );
    assert!(matches!(
        answered(
            &w,
            &pending.id,
            &session,
            answer(Decision::Share, Some("not-an-id")),
            now
        )
        .await,
        Err(OidcError::Idm(tuaton_idm::IdmError::Invalid { .. }))
    ));
    assert_eq!(written(&db).await, before, "refused, nothing written");
    let code = answered(
        &w,
        &pending.id,
        &session,
        answer(Decision::Share, Some("0105599000019")),
        now,
    )
    .await
    .unwrap();
    let tokens = redeem_public(&w, &code, a, "dbd-app", now).await;
    let claims = verified(&w.idm, &tokens.id_token, "dbd-app").await;
    assert_eq!(
        claims["company"],
        json!({ "juristic_id": "0105599000019", "name": "บริษัท ตัวตนพัฒนา จำกัด" })
    );
    assert_ne!(claims["sub"], "0105599000019", "the person stays the sub");
    let info = w
        .idm
        .userinfo(ISSUER, &tokens.access_token, Scheme::Bearer, None, now)
        .await
        .unwrap();
    assert_eq!(info["company"], claims["company"]);
    assert_eq!(info["sub"], claims["sub"]);
    let refresh = params(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &tokens.refresh_token),
        ("client_id", "dbd-app"),
    ]);
    let next = redeem(&w, &refresh, None, now).await.unwrap();
    assert_eq!(
        verified(&w.idm, &next.id_token, "dbd-app").await["company"],
        claims["company"]
    );

    // Past the recheck interval the registry is asked again; it no longer
    // lists the person, so the link is removed and the login refused.
    let later = now + tuaton_idm::Policy::default().authority_recheck + Duration::minutes(1);
    registry.forget_all();
    let pending = w
        .idm
        .begin_authorization(ISSUER, &ask, later)
        .await
        .unwrap();
    let session = logged_in(&w.idm, &mut w.authn, &w.evidence, later).await;
    assert!(matches!(
        answered(
            &w,
            &pending.id,
            &session,
            answer(Decision::Allow, Some("0105599000019")),
            later
        )
        .await,
        Err(OidcError::Idm(tuaton_idm::IdmError::NotADirector))
    ));
    assert!(w.idm.companies(&session, later).await.unwrap().is_empty());
    db.cleanup().await;
}

async fn a_signed_request_object_is_the_request_and_the_query_beside_it_is_ignored(db: TestDb) {
    let now = OffsetDateTime::now_utc();
    let w = world(&db, now).await;
    let op = Actor::Operator("test".into());
    let a = "https://efiling.rd.go.th/cb";
    let (_pair, pkcs8, jwks) = agency_key();
    let mut jar = client("rd-jar", a, TokenAuth::PrivateKeyJwt, Some(jwks));
    jar.redirect_uris
        .push(Url::parse("https://efiling.rd.go.th/other").unwrap());
    w.idm.client_admin().add(&op, jar, now).await.unwrap();
    let object = |extra: Value| {
        let mut c = json!({
            "iss": "rd-jar", "aud": ISSUER, "exp": (now + Duration::minutes(5)).unix_timestamp(),
            "response_type": "code", "client_id": "rd-jar", "redirect_uri": a, "scope": "openid",
            "state": "signed-state", "code_challenge": CHALLENGE, "code_challenge_method": "S256",
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("k1".into());
        header.typ = Some("oauth-authz-req+jwt".into());
        jsonwebtoken::encode(&header, &c, &jsonwebtoken::EncodingKey::from_ec_der(&pkcs8)).unwrap()
    };
    // At the authorization endpoint: only the object counts.
    let query = params(&[
        ("client_id", "rd-jar"),
        ("request", &object(json!({}))),
        ("redirect_uri", "https://efiling.rd.go.th/other"),
        ("scope", "openid profile"),
    ]);
    let pending = w
        .idm
        .begin_authorization(ISSUER, &query, now)
        .await
        .unwrap();
    assert_eq!(pending.redirect_uri.as_str(), a);
    assert_eq!(pending.scopes, vec!["openid"]);
    // Refused on the page: another client's audience, an unsigned object.
    for bad in [
        object(json!({ "aud": "https://evil.example" })),
        object(json!({ "exp": (now - Duration::minutes(5)).unix_timestamp() })),
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"iss":"rd-jar"}"#)
        ),
    ] {
        let query = params(&[("client_id", "rd-jar"), ("request", &bad)]);
        match w.idm.begin_authorization(ISSUER, &query, now).await {
            Err(OidcError::Authorize(e)) => {
                assert_eq!(e.error(), OAuthError::InvalidRequestObject);
                assert!(
                    e.redirect(ISSUER).is_none(),
                    "an unverified object names no trusted URI"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // Inside a pushed request, authenticated with the client's assertion.
    let claims = json!({
        "iss": "rd-jar", "sub": "rd-jar", "aud": ISSUER, "jti": "par-1",
        "iat": now.unix_timestamp(), "exp": (now + Duration::minutes(1)).unix_timestamp(),
    });
    let form = params(&[
        ("client_assertion_type", ASSERTION_TYPE),
        (
            "client_assertion",
            &assertion(&pkcs8, jsonwebtoken::Algorithm::ES256, &claims, None),
        ),
        (
            "request",
            &object(json!({ "redirect_uri": "https://efiling.rd.go.th/other" })),
        ),
        ("redirect_uri", a),
    ]);
    let pushed = tuaton_oidc::PushedRequest::parse(&form, None).unwrap();
    let (uri, _) = w
        .idm
        .push_authorization(ISSUER, pushed, None, now)
        .await
        .unwrap();
    let by_ref = params(&[("client_id", "rd-jar"), ("request_uri", &uri)]);
    let pending = w
        .idm
        .begin_authorization(ISSUER, &by_ref, now)
        .await
        .unwrap();
    assert_eq!(
        pending.redirect_uri.as_str(),
        "https://efiling.rd.go.th/other"
    );
    db.cleanup().await;
}

on_both_engines!(
    a_signed_request_object_is_the_request_and_the_query_beside_it_is_ignored,
    a_director_logs_in_for_a_company_the_registry_confirms,
    an_ended_session_owes_its_clients_logout_tokens_until_they_are_delivered,
    consent_is_asked_remembered_withdrawn_and_asked_again,
    dpop_binds_the_code_and_the_tokens_to_the_clients_key_and_refuses_every_other_proof,
    an_agency_back_end_gets_tokens_for_itself_only_when_registered_for_it,
    introspection_shows_a_client_its_own_tokens_and_account_events_end_every_grant,
    rp_initiated_logout_revokes_the_session_with_the_client,
    a_confidential_client_pushes_its_requests_and_each_works_once,
    refresh_tokens_rotate_a_reused_one_revokes_the_family_and_revocation_ends_it,
    a_public_client_gets_tokens_once_per_code_and_a_second_redemption_revokes_them,
    authorization_requests_that_break_a_rule_are_refused_and_write_nothing,
    confidential_clients_authenticate_and_replays_are_refused
);
