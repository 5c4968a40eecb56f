//! The OpenID Provider's endpoints: discovery, authorization (with the
//! passkey login page), token and userinfo. Each extracts, calls the
//! service layer (`tuaton_idm::oidc`), and answers in the form the
//! standard gives: redirects and pages at the authorization endpoint,
//! RFC 6749 §5.2 JSON at the token endpoint, RFC 6750 challenges at
//! userinfo.
//!
//! The authorization page is served with the strict CSP, except that its
//! `form-action` also names the client's redirect URI: Chromium applies
//! `form-action` to the redirect that follows a form post, so the hand-back
//! to the agency would otherwise be blocked.

use axum::Router;
use axum::extract::{Query, RawForm, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cookie::{Cookie, SameSite};
use tuaton_core::ErrorCode;
use tuaton_idm::{Decision, OidcError, PendingAuthorization};
use tuaton_oidc::dpop::{DpopError, Presented, Scheme};
use tuaton_oidc::token::{PushedRequest, TokenQuery};
use tuaton_oidc::{OAuthError, TokenRequest};

use crate::error::page::{escape, fill};
use crate::session::SessionAuth;
use crate::{ApiError, AppState};

const PAGE: &str = include_str!("web/assets/authorize.html");
const SCRIPT: &str = include_str!("web/assets/authorize.js");
const LOGOUT_PAGE: &str = include_str!("web/assets/logout.html");
const CONSENT_PAGE: &str = include_str!("web/assets/consent.html");
const COMPANY_PAGE: &str = include_str!("web/assets/company.html");
const SIGN_PAGE: &str = include_str!("web/assets/sign.html");

/// How long a pending request's cookie lives: the request's own lifetime.
const PENDING_SECS: i64 = 600;

pub(crate) fn routes(state: AppState) -> Router<AppState> {
    // The pages a browser reaches carry the per-address limit of the other
    // ceremonies. The back-channel endpoints have a budget of their own, many
    // times larger: an agency's back end sends all its users' requests from
    // a few addresses.
    let browser = Router::new()
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/authorize/continue", post(authorize_continue))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::per_address,
        ));
    let back_channel = Router::new()
        .route("/par", post(par))
        .route("/token", post(token))
        .route("/revoke", post(revoke))
        .route("/introspect", post(introspect))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/logout", get(logout_get).post(logout_post))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::ratelimit::back_channel,
        ));
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/assets/authorize.js", get(script))
        .merge(browser)
        .merge(back_channel)
}

/// The issuer: the public URL without a trailing slash.
pub(crate) fn issuer(state: &AppState) -> String {
    state
        .settings()
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

async fn discovery(State(state): State<AppState>) -> Result<Response, ApiError> {
    let jwks = state.idm().id_token_jwks().await?;
    let mut algs: Vec<&str> = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["alg"].as_str())
        .collect();
    algs.sort_unstable();
    algs.dedup();
    let doc = tuaton_oidc::discovery::metadata(&issuer(&state), &algs);
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        doc.to_string(),
    )
        .into_response())
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

fn pending_cookie_name(state: &AppState) -> &'static str {
    if state.settings().is_https() {
        "__Host-tuaton-authorize"
    } else {
        "tuaton-authorize"
    }
}

/// A short-lived cookie that ties a page's answer to this browser (a
/// pending request, a logout's confirmation). `Path=/` (the `__Host-`
/// prefix needs it), `SameSite=Strict`: only Tuaton's own page posts it back.
fn short_cookie(state: &AppState, name: &'static str, value: &str, max_age: i64) -> String {
    Cookie::build((name, value.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings().is_https())
        .max_age(time::Duration::seconds(max_age))
        .build()
        .to_string()
}

fn pending_cookie(state: &AppState, value: &str, max_age: i64) -> String {
    short_cookie(state, pending_cookie_name(state), value, max_age)
}

fn pending_id(state: &AppState, headers: &HeaderMap) -> Option<String> {
    named_cookie(headers, pending_cookie_name(state))
}

/// The value of the cookie `name` a request carries.
fn named_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| Cookie::parse(c.trim().to_owned()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A failure on Tuaton's side, said without detail.
fn internal() -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InternalError,
        "Something went wrong on Tuaton's side. Please try again.",
    )
    .into_response()
}

/// A redirect to `url` (303, so a form post becomes a GET).
fn see_other(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "The redirect could not be formed.",
        )
        .into_response(),
    }
}

/// An OIDC refusal at the authorization endpoint: to the client when its
/// redirect URI can be trusted, on the page otherwise.
fn authorize_refusal(state: &AppState, e: OidcError) -> Response {
    match e {
        OidcError::Authorize(a) => match a.redirect(&issuer(state)) {
            Some(url) => see_other(url.as_str()),
            None => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidAuthorizationRequest,
                a.to_string(),
            )
            .into_response(),
        },
        OidcError::Idm(e) => ApiError::from(e).into_response(),
        OidcError::Token(_)
        | OidcError::Bearer(_)
        | OidcError::Dpop(_)
        | OidcError::Logout(_)
        | OidcError::ConsentNeeded(_)
        | OidcError::CompanyNeeded(_)
        | OidcError::SignatureNeeded(_) => internal(),
    }
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

async fn authorize_get(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    begin(&state, &params).await
}

/// OpenID Connect Core 1.0 §3.1.2.1: the endpoint answers POST too, with
/// the parameters form-encoded.
async fn authorize_post(State(state): State<AppState>, RawForm(form): RawForm) -> Response {
    begin(&state, &pairs(&form)).await
}

async fn begin(state: &AppState, params: &[(String, String)]) -> Response {
    match state
        .idm()
        .begin_authorization(&issuer(state), params, state.now())
        .await
    {
        Ok(p) => page(state, &p),
        Err(e) => authorize_refusal(state, e),
    }
}

/// The login page for a pending request.
fn page(state: &AppState, p: &PendingAuthorization) -> Response {
    let levels = match p.required_aal {
        Some(aal) => format!(
            "<p class=\"notice\">หน่วยงานนี้ต้องการพาสคีย์ระดับ AAL{0} · This agency asks for a passkey at AAL{0}.</p>\n",
            escape(aal.number())
        ),
        None => String::new(),
    };
    let body = fill(
        PAGE,
        &[
            ("client", &escape(&p.client_name)),
            ("receives", &receives(&p.claims)),
            ("request", &escape(&p.id)),
            ("levels", &levels),
        ],
    );
    page_with_cookie(
        body,
        Some(&p.redirect_uri),
        &pending_cookie(state, &p.id, PENDING_SECS),
    )
}

/// The login page's line saying what the agency receives.
fn receives(claims: &[tuaton_oidc::Claim]) -> String {
    if claims.is_empty() {
        return "ตัวระบุของคุณสำหรับหน่วยงานนี้เท่านั้น · an identifier for you at this agency only.".into();
    }
    let named: Vec<String> = claims
        .iter()
        .map(|c| format!("{} · {}", c.label_th(), c.label_en()))
        .collect();
    format!(
        "{}; คุณจะถูกถามความยินยอมหลังเข้าสู่ระบบ · you are asked to agree after you log in.",
        escape(&named.join("; "))
    )
}

/// The consent page: the agency, its purpose and each claim, with the
/// session's CSRF token (the one the login page posted) for its form.
fn consent_page(
    state: &AppState,
    ask: &tuaton_idm::ConsentAsk,
    request: &str,
    csrf: &str,
) -> Response {
    let claims: String = ask
        .claims
        .iter()
        .map(|c| {
            format!(
                "<li data-claim=\"{}\">{} · <span lang=\"en\">{}</span></li>\n",
                c.as_str(),
                escape(c.label_th()),
                escape(c.label_en())
            )
        })
        .collect();
    let body = fill(
        CONSENT_PAGE,
        &[
            ("client", &escape(&ask.client_name)),
            ("purpose", &escape(&ask.purpose)),
            ("claims", &claims),
            ("request", &escape(request)),
            ("csrf", &escape(csrf)),
        ],
    );
    page_with_cookie(
        body,
        Some(&ask.redirect_uri),
        &pending_cookie(state, request, PENDING_SECS),
    )
}

/// The company page: the companies the person may act for, each a button
/// that answers with it, carrying the decision made so far (a consent
/// given on the page before is recorded with the code).
fn company_page(
    state: &AppState,
    ask: &tuaton_idm::CompanyAsk,
    request: &str,
    decision: Decision,
    csrf: &str,
) -> Response {
    let companies: String = ask
        .companies
        .iter()
        .map(|(jid, name)| {
            format!(
                "<li><button type=\"submit\" name=\"company\" value=\"{0}\">{1} · {0}</button></li>\n",
                escape(jid),
                escape(name)
            )
        })
        .collect();
    let none = if ask.companies.is_empty() {
        "<p id=\"no-company\" class=\"notice\">ยังไม่มีนิติบุคคลที่ยืนยันกับทะเบียนแล้วในบัญชีของคุณ เพิ่มได้ในหน้าบัญชี · No company confirmed with the registry is linked to your account yet; link one from your account page.</p>\n"
    } else {
        ""
    };
    let body = fill(
        COMPANY_PAGE,
        &[
            ("client", &escape(&ask.client_name)),
            ("companies", &companies),
            ("none", none),
            ("request", &escape(request)),
            ("decision", carried(decision)),
            ("csrf", &escape(csrf)),
        ],
    );
    page_with_cookie(
        body,
        Some(&ask.redirect_uri),
        &pending_cookie(state, request, PENDING_SECS),
    )
}

/// The decision a later page of the same authorization carries on: a
/// consent given (`share`) stays given.
fn carried(decision: Decision) -> &'static str {
    if decision == Decision::Share {
        "share"
    } else {
        "allow"
    }
}

/// The signing page: the agency, each hash with the label the agency gave
/// it, and the passkey challenge that confirms exactly these, carrying the
/// decision and company chosen so far.
fn sign_page(
    state: &AppState,
    ask: &tuaton_idm::SignatureAsk,
    request: &str,
    decision: Decision,
    company: &str,
    csrf: &str,
) -> Response {
    let hashes: String = tuaton_idm::csc::shown_hashes(&ask.challenge)
        .iter()
        .map(|(label, hex)| {
            let label = if label.is_empty() {
                "(ไม่มีชื่อ · no name given)".to_owned()
            } else {
                escape(label)
            };
            format!(
                "<li data-hash=\"{0}\">{label}<br><code>SHA-256 {0}</code></li>\n",
                escape(hex)
            )
        })
        .collect();
    let options = serde_json::to_value(&ask.challenge.options)
        .map(|v| v.get("publicKey").cloned().unwrap_or(v).to_string())
        .unwrap_or_default();
    let body = fill(
        SIGN_PAGE,
        &[
            ("client", &escape(&ask.client_name)),
            ("count", &ask.challenge.documents.len().to_string()),
            ("hashes", &hashes),
            ("signing", &escape(&ask.challenge.request_id)),
            ("request", &escape(request)),
            ("decision", carried(decision)),
            ("company", &escape(company)),
            ("options", &escape(&options)),
            ("csrf", &escape(csrf)),
        ],
    );
    page_with_cookie(
        body,
        Some(&ask.redirect_uri),
        &pending_cookie(state, request, PENDING_SECS),
    )
}

/// A page that posts a form to Tuaton (never cached), under the strict CSP
/// whose `form-action` also allows `destination`, setting `cookie` (the one
/// the form's answer must come back with).
fn page_with_cookie(body: String, destination: Option<&url::Url>, cookie: &str) -> Response {
    let Some(csp) = page_policy(destination) else {
        return internal();
    };
    let mut resp = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
        body,
    )
        .into_response();
    if let Ok(c) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// The page's answer: `decision=allow` (after the passkey login, with the
/// session's CSRF token) or `decision=deny`, which needs no session.
async fn authorize_continue(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Result<SessionAuth, ApiError>,
    RawForm(form): RawForm,
) -> Response {
    let fields = pairs(&form);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // The company buttons send `decision` twice (the hidden one, and
    // `deny` only from its own button): the last one given wins.
    let decision = match fields
        .iter()
        .rev()
        .find(|(k, _)| k == "decision")
        .map(|(_, v)| v.as_str())
    {
        Some("allow") => Decision::Allow,
        Some("share") => Decision::Share,
        Some("deny") => Decision::Deny,
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidField,
                "decision must be allow, share or deny.",
            )
            .into_response();
        }
    };
    // The page names the request it showed; the browser's cookie must name
    // the same one. A request begun since (another agency's, in another
    // tab or a pop-up) has replaced the cookie and is not answered with a
    // login made on this page.
    let pending = match (pending_id(&state, &headers), field("request")) {
        (Some(cookie), Some(shown)) if cookie == shown => cookie,
        (Some(_), Some(_)) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NoPendingAuthorization,
                "Another agency's login was started in this browser since this page opened. Go back to the agency's site and start again.",
            )
            .into_response();
        }
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::NoPendingAuthorization,
                "No agency is waiting for a login in this browser. Go back to the agency's site and start again.",
            )
            .into_response();
        }
    };
    let session = match (decision, session) {
        (Decision::Deny, _) => None,
        (Decision::Allow | Decision::Share, Ok(s)) => Some(s),
        (Decision::Allow | Decision::Share, Err(e)) => return e.into_response(),
    };
    // The signing page's answer: the assertion over its challenge.
    let confirmation = match (field("signing_request"), field("credential")) {
        (Some(request), Some(credential)) if !credential.is_empty() => {
            match serde_json::from_str::<tuaton_idm::PublicKeyCredential>(credential) {
                Ok(response) => Some(tuaton_idm::SignatureConfirmation {
                    request: request.to_owned(),
                    response: Box::new(response),
                }),
                Err(_) => {
                    return ApiError::new(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::InvalidField,
                        "credential is not a WebAuthn assertion.",
                    )
                    .into_response();
                }
            }
        }
        _ => None,
    };
    let done = state
        .idm()
        .complete_authorization(
            &issuer(&state),
            &pending,
            session.as_ref().map(|s| &s.0),
            tuaton_idm::Answer {
                decision,
                company: field("company")
                    .map(str::to_owned)
                    .filter(|c| !c.is_empty()),
                confirmation,
            },
            state.now(),
        )
        .await;
    match done {
        Ok(url) => {
            let mut resp = see_other(url.as_str());
            if let Ok(c) = HeaderValue::from_str(&pending_cookie(&state, "", 0)) {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(OidcError::ConsentNeeded(ask)) => {
            consent_page(&state, &ask, &pending, field("csrf_token").unwrap_or_default())
        }
        Err(OidcError::CompanyNeeded(ask)) => company_page(
            &state,
            &ask,
            &pending,
            decision,
            field("csrf_token").unwrap_or_default(),
        ),
        Err(OidcError::SignatureNeeded(ask)) => sign_page(
            &state,
            &ask,
            &pending,
            decision,
            field("company").unwrap_or_default(),
            field("csrf_token").unwrap_or_default(),
        ),
        Err(OidcError::Idm(tuaton_idm::IdmError::Ceremony(_))) => ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::NoPendingAuthorization,
            "The agency's request has expired or was answered already. Go back to the agency's site and start again.",
        )
        .into_response(),
        Err(e) => authorize_refusal(&state, e),
    }
}

/// An RFC 6749 §5.2 error response; `invalid_client` for a client that
/// tried HTTP Basic carries the challenge (§5.2: MUST).
fn token_refusal(e: &tuaton_oidc::TokenError, basic: bool) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        e.body().to_string(),
    )
        .into_response();
    if e.error == OAuthError::InvalidClient && basic {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tuaton\""),
        );
    }
    resp
}

/// A back-channel request's form pairs and its `Authorization` header.
type Form<'h> = (Vec<(String, String)>, Option<&'h str>);

/// How a back-channel request is read from its form and `Authorization` header.
type Parser<T> = fn(&[(String, String)], Option<&str>) -> Result<T, tuaton_oidc::TokenError>;

/// A back-channel request's form and `Authorization` header, or the
/// refusal of one that is not a form.
fn back_channel<'h>(headers: &'h HeaderMap, form: &[u8]) -> Result<Form<'h>, Box<Response>> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !is_form {
        return Err(Box::new(token_refusal(
            &tuaton_oidc::TokenError::request(
                "The request must be application/x-www-form-urlencoded.",
            ),
            authorization.is_some(),
        )));
    }
    Ok((pairs(form), authorization))
}

/// A back-channel request read with `parse`, and whether it used HTTP
/// Basic; or the refusal to answer with.
fn read<T>(headers: &HeaderMap, form: &[u8], parse: Parser<T>) -> Result<(T, bool), Box<Response>> {
    let (params, authorization) = back_channel(headers, form)?;
    let basic = authorization.is_some();
    parse(&params, authorization)
        .map(|t| (t, basic))
        .map_err(|e| Box::new(token_refusal(&e, basic)))
}

/// An OIDC error at a back-channel endpoint, in the form RFC 6749 §5.2 gives.
fn back_channel_refusal(e: OidcError, basic: bool) -> Response {
    match e {
        OidcError::Token(e) => {
            tracing::info!(error = e.error.as_str(), "back-channel request refused");
            token_refusal(&e, basic)
        }
        OidcError::Dpop(e) => {
            tracing::info!(error = e.error().as_str(), "DPoP proof refused");
            token_refusal(
                &tuaton_oidc::TokenError::new(e.error(), e.to_string()),
                basic,
            )
        }
        OidcError::Idm(e) => ApiError::from(e).into_response(),
        OidcError::Authorize(_)
        | OidcError::Bearer(_)
        | OidcError::Logout(_)
        | OidcError::ConsentNeeded(_)
        | OidcError::CompanyNeeded(_)
        | OidcError::SignatureNeeded(_) => internal(),
    }
}

/// The DPoP proof a request carries (RFC 9449 §4.1), with the request it
/// must name: the endpoint at Tuaton's public URL. More than one `DPoP`
/// header is refused (§4.3).
pub(crate) fn dpop_proof(
    state: &AppState,
    headers: &HeaderMap,
    method: &'static str,
    path: &str,
) -> Result<Option<Presented>, DpopError> {
    let mut all = headers.get_all("dpop").iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(DpopError::invalid("a request carries one DPoP header"));
    }
    let proof = first
        .to_str()
        .map_err(|_| DpopError::invalid("it is not a JWT"))?;
    let uri = url::Url::parse(&format!("{}{path}", issuer(state)))
        .map_err(|_| DpopError::invalid("the endpoint's URI cannot be formed"))?;
    Ok(Some(Presented {
        proof: proof.to_owned(),
        method,
        uri,
    }))
}

/// `resp` with the DPoP nonce to use next (RFC 9449 §8.2), for a request
/// that carried a proof or was refused for want of a nonce.
pub(crate) async fn with_nonce(
    state: &AppState,
    mut resp: Response,
    carried_proof: bool,
) -> Response {
    if !carried_proof {
        return resp;
    }
    match state.idm().dpop_nonce(state.now()).await {
        Ok(n) => {
            if let Ok(v) = HeaderValue::from_str(&n) {
                resp.headers_mut().insert("dpop-nonce", v);
            }
            resp
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn no_store_json(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: axum::body::Bytes,
) -> Response {
    let (request, basic) = match read(&headers, &form, TokenRequest::parse) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let dpop = match dpop_proof(&state, &headers, "POST", "/token") {
        Ok(d) => d,
        Err(e) => return back_channel_refusal(e.into(), basic),
    };
    let resp = match state
        .idm()
        .redeem(&issuer(&state), request, dpop.as_ref(), state.now())
        .await
    {
        Ok(t) => no_store_json(serde_json::to_string(&t).unwrap_or_default()),
        Err(e) => back_channel_refusal(e, basic),
    };
    with_nonce(&state, resp, dpop.is_some()).await
}

/// A pushed authorization request (RFC 9126 §2): 201 with the `request_uri`.
async fn par(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: axum::body::Bytes,
) -> Response {
    let (pushed, basic) = match read(&headers, &form, PushedRequest::parse) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let dpop = match dpop_proof(&state, &headers, "POST", "/par") {
        Ok(d) => d,
        Err(e) => return back_channel_refusal(e.into(), basic),
    };
    let resp = match state
        .idm()
        .push_authorization(&issuer(&state), pushed, dpop.as_ref(), state.now())
        .await
    {
        Ok((request_uri, expires_in)) => {
            let mut resp = no_store_json(
                serde_json::json!({ "request_uri": request_uri, "expires_in": expires_in })
                    .to_string(),
            );
            *resp.status_mut() = StatusCode::CREATED;
            resp
        }
        Err(e) => back_channel_refusal(e, basic),
    };
    with_nonce(&state, resp, dpop.is_some()).await
}

/// Which question a token query asks.
#[derive(Clone, Copy)]
enum Ask {
    /// Revocation (RFC 7009 §2): 200 with no body for any token, known or not.
    Revoke,
    /// Introspection (RFC 7662 §2).
    Introspect,
}

async fn revoke(state: State<AppState>, headers: HeaderMap, form: axum::body::Bytes) -> Response {
    token_query(state, headers, form, Ask::Revoke).await
}

async fn introspect(
    state: State<AppState>,
    headers: HeaderMap,
    form: axum::body::Bytes,
) -> Response {
    token_query(state, headers, form, Ask::Introspect).await
}

async fn token_query(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: axum::body::Bytes,
    ask: Ask,
) -> Response {
    let (query, basic) = match read(&headers, &form, TokenQuery::parse) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (idm, iss, now) = (state.idm(), issuer(&state), state.now());
    let answered = match ask {
        Ask::Revoke => idm.revoke(&iss, query, now).await.map(|()| String::new()),
        Ask::Introspect => idm
            .introspect(&iss, query, now)
            .await
            .map(|v| v.to_string()),
    };
    match answered {
        Ok(body) => no_store_json(body),
        Err(e) => back_channel_refusal(e, basic),
    }
}

/// The DPoP challenge's list of proof algorithms (RFC 9449 §7.1).
fn dpop_algs() -> String {
    format!("algs=\"{}\"", tuaton_oidc::dpop::ALGORITHMS.join(" "))
}

/// A 401 with the `WWW-Authenticate` challenge of RFC 6750 §3 (`Bearer`)
/// or RFC 9449 §7.1 (`DPoP`), in the scheme the token came with.
pub(crate) fn resource_refusal(scheme: Scheme, error: OAuthError, description: &str) -> Response {
    let challenge = match scheme {
        Scheme::Bearer => format!(
            "Bearer error=\"{}\", error_description=\"{description}\"",
            error.as_str()
        ),
        Scheme::Dpop => format!(
            "DPoP error=\"{}\", error_description=\"{description}\", {}",
            error.as_str(),
            dpop_algs()
        ),
    };
    let value = HeaderValue::from_str(&challenge)
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""));
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, value)],
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
    )
        .into_response()
}

/// The access token a resource request presents, its scheme, and its DPoP
/// proof over `method` and `path`; refused as RFC 6750 and RFC 9449 say.
// The refusal is the response sent, once per request: not worth a box.
#[allow(clippy::result_large_err)]
pub(crate) fn presented_resource<'h>(
    state: &AppState,
    headers: &'h HeaderMap,
    method: &'static str,
    path: &str,
) -> Result<(Scheme, &'h str, Option<Presented>), Response> {
    let Some((scheme, token)) = presented_token(headers) else {
        return Err(no_token());
    };
    let dpop = dpop_proof(state, headers, method, path)
        .map_err(|e| resource_refusal(Scheme::Dpop, e.error(), &e.to_string()))?;
    Ok((scheme, token, dpop))
}

/// A resource's refusal of the token presented with `scheme`: RFC 6750's
/// and RFC 9449's answers (a DPoP refusal with a fresh nonce), the service
/// layer's refusals as `idm` words them.
pub(crate) async fn resource_token_refusal(
    state: &AppState,
    scheme: Scheme,
    e: OidcError,
    idm: impl FnOnce(tuaton_idm::IdmError) -> Response,
) -> Response {
    match e {
        OidcError::Bearer(e) => resource_refusal(scheme, e.error(), e.0),
        OidcError::Dpop(e) => {
            with_nonce(
                state,
                resource_refusal(Scheme::Dpop, e.error(), &e.to_string()),
                true,
            )
            .await
        }
        OidcError::Idm(e) => idm(e),
        _ => internal(),
    }
}

/// The access token a resource request carries, with its scheme.
pub(crate) fn presented_token(headers: &HeaderMap) -> Option<(Scheme, &str)> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .and_then(|(scheme, t)| {
            let scheme = if scheme.eq_ignore_ascii_case("bearer") {
                Scheme::Bearer
            } else if scheme.eq_ignore_ascii_case("dpop") {
                Scheme::Dpop
            } else {
                return None;
            };
            Some((scheme, t.trim()))
        })
}

/// A resource request without a token: RFC 6750 §3.1 (no credentials, no
/// error code), with the DPoP scheme offered beside it (RFC 9449 §7.1).
pub(crate) fn no_token() -> Response {
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"tuaton\"")],
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("DPoP {}", dpop_algs())) {
        resp.headers_mut().append(header::WWW_AUTHENTICATE, v);
    }
    resp
}

async fn userinfo(
    State(state): State<AppState>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    let Some((scheme, token)) = presented_token(&headers) else {
        return no_token();
    };
    let verb = if method == axum::http::Method::POST {
        "POST"
    } else {
        "GET"
    };
    let dpop = match dpop_proof(&state, &headers, verb, "/userinfo") {
        Ok(d) => d,
        Err(e) => return resource_refusal(Scheme::Dpop, e.error(), &e.to_string()),
    };
    let resp = match state
        .idm()
        .userinfo(&issuer(&state), token, scheme, dpop.as_ref(), state.now())
        .await
    {
        Ok(claims) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            claims.to_string(),
        )
            .into_response(),
        Err(OidcError::Bearer(e)) => resource_refusal(scheme, e.error(), e.0),
        Err(OidcError::Dpop(e)) => resource_refusal(Scheme::Dpop, e.error(), &e.to_string()),
        Err(OidcError::Idm(e)) => ApiError::from(e).into_response(),
        Err(
            OidcError::Authorize(_)
            | OidcError::Token(_)
            | OidcError::Logout(_)
            | OidcError::ConsentNeeded(_)
            | OidcError::CompanyNeeded(_)
            | OidcError::SignatureNeeded(_),
        ) => internal(),
    };
    with_nonce(&state, resp, dpop.is_some()).await
}

/// A logout request refused: said on the page, never redirected.
fn logout_refusal(e: OidcError) -> Response {
    match e {
        OidcError::Logout(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidAuthorizationRequest,
            e.0,
        )
        .into_response(),
        OidcError::Idm(e) => ApiError::from(e).into_response(),
        OidcError::Authorize(_)
        | OidcError::Token(_)
        | OidcError::Bearer(_)
        | OidcError::Dpop(_)
        | OidcError::ConsentNeeded(_)
        | OidcError::CompanyNeeded(_)
        | OidcError::SignatureNeeded(_) => internal(),
    }
}

/// The strict CSP with `form-action` also naming `destination`'s origin:
/// Chromium applies `form-action` to the redirect after a form post.
fn page_policy(destination: Option<&url::Url>) -> Option<HeaderValue> {
    let target = match destination {
        None => String::new(),
        Some(u) if matches!(u.scheme(), "http" | "https") => {
            format!(" {}", u.origin().ascii_serialization())
        }
        Some(u) => format!(" {}:", u.scheme()),
    };
    HeaderValue::from_str(&format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; base-uri 'none'; form-action 'self'{target}; frame-ancestors 'none'"
    ))
    .ok()
}

/// RP-initiated logout, GET: checks the request and asks the person to
/// confirm (a link from anywhere must not log anyone out by itself).
async fn logout_get(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    confirm_logout(&state, &params).await
}

/// RP-initiated logout, POST: a client's form post asks for confirmation as
/// GET does; the confirmation page's own post logs out. That post names the
/// confirmation (a random value) that the page also set in a
/// `SameSite=Strict` cookie: a form on another site cannot send the cookie,
/// so it cannot skip the question (RP-Initiated Logout 1.0 §2).
async fn logout_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Response {
    let mut params = pairs(&form);
    let sent = params
        .iter()
        .find(|(k, _)| k == "confirm")
        .map(|(_, v)| v.clone());
    params.retain(|(k, _)| k != "confirm" && k != crate::session::CSRF_FIELD);
    let Some(sent) = sent else {
        return confirm_logout(&state, &params).await;
    };
    let expected = named_cookie(&headers, confirm_cookie_name(&state));
    let confirmed = expected.is_some_and(|c| {
        !c.is_empty()
            && c.len() == sent.len()
            && c.bytes()
                .zip(sent.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if !confirmed {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::CsrfTokenInvalid,
            "This logout was not confirmed on Tuaton's page. Go back to the agency and log out again.",
        )
        .into_response();
    }
    // The session cookie is `SameSite=Strict`: only a post from Tuaton's
    // own page carries it, so no other site can end the session.
    let session = match crate::session::presented_secret(&state, &headers) {
        Some(secret) => state.idm().session(&secret, state.now()).await.ok(),
        None => None,
    };
    let ended = state
        .idm()
        .end_session(&issuer(&state), &params, session.as_ref(), state.now())
        .await;
    let mut resp = match ended {
        Ok(Some(url)) => see_other(url.as_str()),
        Ok(None) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            LOGGED_OUT_PAGE,
        )
            .into_response(),
        Err(e) => return logout_refusal(e),
    };
    for c in [
        crate::session::cleared_cookie(&state),
        short_cookie(&state, confirm_cookie_name(&state), "", 0),
    ] {
        if let Ok(c) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    resp
}

fn confirm_cookie_name(state: &AppState) -> &'static str {
    if state.settings().is_https() {
        "__Host-tuaton-logout"
    } else {
        "tuaton-logout"
    }
}

/// Shown after a logout that names no place to go back to.
const LOGGED_OUT_PAGE: &str = "<!doctype html>\n<html lang=\"th\">\n<head>\n<meta charset=\"utf-8\">\n\
<title>ออกจากระบบแล้ว · Logged out · Tuaton</title>\n<link rel=\"stylesheet\" href=\"/assets/tuaton.css\">\n\
</head>\n<body>\n<main>\n<h1>ออกจากระบบแล้ว <span lang=\"en\">You are logged out</span></h1>\n</main>\n</body>\n</html>\n";

/// The confirmation page: the request's parameters as hidden fields, the
/// client named, `form-action` allowing the way back.
async fn confirm_logout(state: &AppState, params: &[(String, String)]) -> Response {
    let plan = match state.idm().plan_logout(&issuer(state), params).await {
        Ok(p) => p,
        Err(e) => return logout_refusal(e),
    };
    let fields: String = params
        .iter()
        .filter(|(k, v)| {
            !v.is_empty()
                && matches!(
                    k.as_str(),
                    "id_token_hint" | "client_id" | "post_logout_redirect_uri" | "state"
                )
        })
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let (th, en) = match &plan.client_name {
        Some(n) => (format!("{} ", escape(n)), escape(n)),
        None => (String::new(), "A site".to_owned()),
    };
    let mut confirm = [0u8; 16];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut confirm).is_err() {
        return internal();
    }
    let confirm = hex::encode(confirm);
    let body = fill(
        LOGOUT_PAGE,
        &[
            ("client_th", &th),
            ("client_en", &en),
            ("fields", &fields),
            ("confirm", &confirm),
        ],
    );
    let cookie = short_cookie(state, confirm_cookie_name(state), &confirm, PENDING_SECS);
    page_with_cookie(body, plan.destination.as_ref(), &cookie)
}
