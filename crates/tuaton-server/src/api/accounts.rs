//! The signed-in person's own account: profile, PDPA consents and data rights, companies.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ring::digest::{SHA256, digest};
use serde::Deserialize;
use serde_json::json;
use tuaton_core::{CitizenId, JuristicId};
use tuaton_proofing::{AuthorityDecision, AuthorityRule, RegistryError, authorised};
use tuaton_store::audit::{self, AuditEvent};
use tuaton_store::consents::{self, NewConsent};
use tuaton_store::{accounts, companies, passkeys, proofing};
use utoipa::ToSchema;

use super::account_actor;
use super::passkeys::FRESH_LOGIN;
use crate::error::ApiJson;
use crate::session::{self, SessionAuth};
use crate::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/me/export", get(export))
        .route("/me/erase", post(erase))
        .route("/me/consents", get(list_consents).post(give_consent))
        .route("/me/consents/{id}/withdraw", post(withdraw_consent))
        .route("/me/companies", get(list_companies).post(link_company))
        .route(
            "/me/companies/{juristic_id}/authority",
            post(check_authority),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        me,
        export,
        erase,
        list_consents,
        give_consent,
        withdraw_consent,
        list_companies,
        link_company,
        check_authority
    ),
    components(schemas(ConsentRequest, LinkCompanyRequest, AuthorityRequest))
)]
pub(crate) struct ApiDocAccounts;

async fn account_of(
    state: &AppState,
    session: &SessionAuth,
) -> Result<accounts::Account, ApiError> {
    accounts::by_id(state.store().conn().await?.conn(), &session.account_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("login_required", "Log in first."))
}

/// The account, its level, passkeys and companies.
#[utoipa::path(get, path = "/api/v1/me", tag = "account", responses((status = 200, body = Object), (status = 401, body = crate::error::Problem)))]
async fn me(
    State(state): State<AppState>,
    session: SessionAuth,
) -> Result<Json<serde_json::Value>, ApiError> {
    let account = account_of(&state, &session).await?;
    let mut conn = state.store().conn().await?;
    Ok(Json(json!({
        "account": account,
        "session": { "aal": session.aal, "amr": session.amr },
        "passkeys": passkeys::for_account(conn.conn(), &account.id).await?,
        "companies": companies::for_account(conn.conn(), &account.id).await?,
        "roles": companies::roles(conn.conn(), &account.id).await?,
    })))
}

/// Everything Tuaton holds about the signed-in person, as JSON (PDPA access and portability).
#[utoipa::path(get, path = "/api/v1/me/export", tag = "account", responses((status = 200, body = Object)))]
async fn export(State(state): State<AppState>, session: SessionAuth) -> Result<Response, ApiError> {
    let account = account_of(&state, &session).await?;
    let now = state.now();
    let audit_trail = audit::about(
        state.store(),
        &account_actor(&account.id),
        &account.id,
        10_000,
    )
    .await?;
    // Held for the reads below only: the audit append after them needs it again.
    let mut conn = state.store().conn().await?;
    let body = json!({
        "format": "tuaton-export-v1",
        "exported_at": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "account": account,
        "proofing_decisions": proofing::for_account(conn.conn(), &account.id).await?.iter().map(|d| json!({
            "id": d.id, "method": d.method, "connector": d.connector,
            "registry_answer": serde_json::from_str::<serde_json::Value>(&d.registry_answer).unwrap_or_default(),
            "evidence_digest": d.evidence_digest, "ial": d.ial, "officer_id": d.officer_id,
            "decided_at": d.decided_at().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "passkeys": passkeys::for_account(conn.conn(), &account.id).await?,
        "consents": consents::for_account(conn.conn(), &account.id).await?,
        "companies": companies::for_account(conn.conn(), &account.id).await?,
        "roles": companies::roles(conn.conn(), &account.id).await?,
        "audit_records": audit_trail,
    });
    drop(conn);
    let ev = AuditEvent::success(
        account_actor(&account.id),
        "pdpa.export",
        account.id.clone(),
    );
    audit::append_alone(state.store(), now, &ev).await?;
    Ok((
        [
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tuaton-export.json\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Json(body),
    )
        .into_response())
}

/// Erases the signed-in person (PDPA): needs a login within the last five minutes.
#[utoipa::path(post, path = "/api/v1/me/erase", tag = "account", responses((status = 200, body = Object), (status = 403, body = crate::error::Problem)))]
async fn erase(State(state): State<AppState>, session: SessionAuth) -> Result<Response, ApiError> {
    let now = state.now();
    if now - session.authenticated_at > FRESH_LOGIN {
        return Err(ApiError::forbidden(
            "fresh_login_required",
            "Log in again to erase your account.",
        ));
    }
    let mut tx = state.store().begin().await?;
    accounts::erase(&mut tx, &session.account_id, now).await?;
    let ev = AuditEvent::success(
        account_actor(&session.account_id),
        "pdpa.erase",
        session.account_id.clone(),
    );
    audit::append(&mut tx, now, &ev).await?;
    tx.commit().await?;
    Ok((
        [(
            header::SET_COOKIE,
            session::session_cookie(&state, "", None),
        )],
        Json(json!({ "erased": true, "account_id": session.account_id })),
    )
        .into_response())
}

/// A consent to release claims to an agency for a purpose.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentRequest {
    /// The agency's client id.
    agency: String,
    /// What the data is for, e.g. `tax-filing`.
    purpose: String,
    /// Version of the purpose text shown.
    purpose_version: String,
    /// Claims released, e.g. `["name", "birthdate"]`.
    claims: Vec<String>,
    /// The notice text exactly as shown; only its SHA-256 is kept.
    notice_text: String,
    /// `th` or `en`.
    locale: String,
    /// PDPA lawful basis: `consent`, `contract`, `legal_obligation`, `vital_interest`, `public_task`, `legitimate_interest`.
    lawful_basis: String,
}

const LAWFUL_BASES: &[&str] = &[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interest",
    "public_task",
    "legitimate_interest",
];

fn token_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
}

impl ConsentRequest {
    fn validate(self) -> Result<NewConsent, ApiError> {
        let field = |name: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(ApiError::bad_request(
                    "invalid_field",
                    format!("{name} is missing or not a short identifier."),
                ))
            }
        };
        field("agency", token_ok(&self.agency, 128))?;
        field("purpose", token_ok(&self.purpose, 128))?;
        field("purpose_version", token_ok(&self.purpose_version, 32))?;
        field(
            "claims",
            !self.claims.is_empty()
                && self.claims.len() <= 64
                && self.claims.iter().all(|c| token_ok(c, 64)),
        )?;
        field(
            "notice_text",
            !self.notice_text.trim().is_empty() && self.notice_text.len() <= 65_536,
        )?;
        field("locale", matches!(self.locale.as_str(), "th" | "en"))?;
        if !LAWFUL_BASES.contains(&self.lawful_basis.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("lawful_basis must be one of: {}.", LAWFUL_BASES.join(", ")),
            ));
        }
        Ok(NewConsent {
            agency: self.agency,
            purpose: self.purpose,
            purpose_version: self.purpose_version,
            claims: self.claims,
            notice_digest: hex::encode(digest(&SHA256, self.notice_text.as_bytes())),
            locale: self.locale,
            lawful_basis: self.lawful_basis,
        })
    }
}

#[utoipa::path(get, path = "/api/v1/me/consents", tag = "consent", responses((status = 200, body = Object)))]
async fn list_consents(
    State(state): State<AppState>,
    session: SessionAuth,
) -> Result<Json<Vec<consents::ConsentRecord>>, ApiError> {
    Ok(Json(
        consents::for_account(state.store().conn().await?.conn(), &session.account_id).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/me/consents", tag = "consent", request_body = ConsentRequest, responses((status = 201, body = Object)))]
async fn give_consent(
    State(state): State<AppState>,
    session: SessionAuth,
    ApiJson(req): ApiJson<ConsentRequest>,
) -> Result<(StatusCode, Json<consents::ConsentRecord>), ApiError> {
    let new = req.validate()?;
    let now = state.now();
    let mut tx = state.store().begin().await?;
    let rec = consents::give(&mut tx, &session.account_id, &new, now).await?;
    let ev = AuditEvent::success(
        account_actor(&session.account_id),
        "consent.give",
        rec.id.clone(),
    )
    .with_details(json!({
        "agency": rec.agency, "purpose": rec.purpose, "purpose_version": rec.purpose_version,
        "claims": rec.claims, "notice_digest": rec.notice_digest, "lawful_basis": rec.lawful_basis,
    }));
    audit::append(&mut tx, now, &ev).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

#[utoipa::path(post, path = "/api/v1/me/consents/{id}/withdraw", tag = "consent", responses((status = 200, body = Object), (status = 404, body = crate::error::Problem)))]
async fn withdraw_consent(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(id): Path<String>,
) -> Result<Json<consents::ConsentRecord>, ApiError> {
    let now = state.now();
    let mut tx = state.store().begin().await?;
    if !consents::withdraw(&mut tx, &session.account_id, &id, now).await? {
        return Err(ApiError::not_found(
            "unknown_consent",
            "No live consent with this id.",
        ));
    }
    let ev = AuditEvent::success(
        account_actor(&session.account_id),
        "consent.withdraw",
        id.clone(),
    );
    audit::append(&mut tx, now, &ev).await?;
    let rec = consents::by_id(tx.conn(), &session.account_id, &id)
        .await?
        .ok_or_else(|| ApiError::internal("consent vanished"))?;
    tx.commit().await?;
    Ok(Json(rec))
}

/// Link a company the signed-in person directs.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkCompanyRequest {
    /// Thirteen-digit juristic id.
    juristic_id: String,
}

fn registry_refusal(e: RegistryError) -> ApiError {
    match e {
        RegistryError::NotFound => ApiError::not_found(
            "company_not_found",
            "No company is registered under this id.",
        ),
        RegistryError::Unavailable { reason } => {
            tracing::warn!(%reason, "juristic registry unavailable");
            ApiError::unavailable(
                "registry_unavailable",
                "The company registry cannot be reached right now. Please try again later.",
                60,
            )
        }
    }
}

/// The registry's current record of a company, or the refusal to send.
async fn lookup_company(
    state: &AppState,
    jid: &JuristicId,
) -> Result<tuaton_proofing::Company, ApiError> {
    let registry = state.services().juristic_registry.clone().ok_or_else(|| {
        ApiError::unavailable(
            "registry_not_configured",
            "Company linking and checks are not available on this server yet.",
            3600,
        )
    })?;
    registry.lookup(jid).await.map_err(registry_refusal)
}

async fn my_citizen_id(
    state: &AppState,
    session: &SessionAuth,
) -> Result<(accounts::Account, CitizenId), ApiError> {
    let account = account_of(state, session).await?;
    let id = account
        .citizen_id
        .as_deref()
        .and_then(|c| CitizenId::parse(c).ok())
        .ok_or_else(|| {
            ApiError::forbidden("not_proofed", "This account has no verified citizen id.")
        })?;
    Ok((account, id))
}

#[utoipa::path(get, path = "/api/v1/me/companies", tag = "companies", responses((status = 200, body = Object)))]
/// The linked companies. A link whose confirmation is older than
/// `authority_recheck_secs` is checked with the registry again first: kept
/// and re-dated when the person is still a director of an active company,
/// removed (and audited) when not, and shown as unconfirmed when the registry
/// cannot answer.
async fn list_companies(
    State(state): State<AppState>,
    session: SessionAuth,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let (account, me) = my_citizen_id(&state, &session).await?;
    let now = state.now();
    let recheck =
        time::Duration::try_from(state.settings().authority_recheck).unwrap_or(time::Duration::DAY);
    let registry = state.services().juristic_registry.clone();
    let mut out = Vec::new();
    // Read first: the loop writes, and on SQLite the reading connection is the only one.
    let links = companies::for_account(state.store().conn().await?.conn(), &account.id).await?;
    for link in links {
        let stale = now - link.checked_at > recheck;
        // Some(true): still a director of an active company; Some(false): no longer; None: not asked or no answer.
        let holds = match (stale, &registry, JuristicId::parse(&link.juristic_id)) {
            (true, Some(r), Ok(jid)) => match r.lookup(&jid).await {
                Ok(company) => Some(
                    company.directors.contains(&me)
                        && !matches!(
                            authorised(&company, &[me]),
                            AuthorityDecision::CompanyDissolved
                        ),
                ),
                Err(RegistryError::NotFound) => Some(false),
                Err(RegistryError::Unavailable { .. }) => None,
            },
            _ => None,
        };
        if let Some(still) = holds {
            let mut tx = state.store().begin().await?;
            if still {
                companies::link(
                    &mut tx,
                    &account.id,
                    &link.juristic_id,
                    &link.company_name,
                    now,
                )
                .await?;
            } else {
                companies::unlink(&mut tx, &account.id, &link.juristic_id).await?;
                let ev = AuditEvent::failure(
                    account_actor(&account.id),
                    "company.authority_lost",
                    link.juristic_id.clone(),
                );
                audit::append(&mut tx, now, &ev).await?;
            }
            tx.commit().await?;
            if !still {
                continue;
            }
        }
        let fresh = match holds {
            Some(_) => Some(now),
            None if stale => None,
            None => Some(link.checked_at),
        };
        out.push(json!({
            "juristic_id": link.juristic_id,
            "company_name": link.company_name,
            "linked_at": link.linked_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "confirmed_at": fresh.unwrap_or(link.checked_at).format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "confirmed": fresh.is_some(),
        }));
    }
    Ok(Json(out))
}

#[utoipa::path(post, path = "/api/v1/me/companies", tag = "companies", request_body = LinkCompanyRequest, responses(
    (status = 201, body = Object), (status = 403, body = crate::error::Problem)))]
async fn link_company(
    State(state): State<AppState>,
    session: SessionAuth,
    ApiJson(req): ApiJson<LinkCompanyRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let jid = JuristicId::parse(&req.juristic_id)
        .map_err(|e| ApiError::bad_request("invalid_juristic_id", e.to_string()))?;
    let (account, me) = my_citizen_id(&state, &session).await?;
    let ial: tuaton_core::Ial = account.ial.parse().unwrap_or(tuaton_core::Ial::Ial1_1);
    if ial < tuaton_core::Ial::Ial2_1 {
        return Err(ApiError::forbidden(
            "ial_too_low",
            "Acting for a company needs identity verified at IAL2.1 or higher.",
        ));
    }
    let company = lookup_company(&state, &jid).await?;
    let now = state.now();
    let alone = authorised(&company, &[me]);
    let is_director = company.directors.contains(&me);
    if !is_director || matches!(alone, AuthorityDecision::CompanyDissolved) {
        let reason = if is_director {
            "company_dissolved"
        } else {
            "not_a_director"
        };
        let ev = AuditEvent::failure(account_actor(&account.id), "company.link", jid.compact())
            .with_details(json!({ "reason": reason }));
        audit::append_alone(state.store(), now, &ev).await?;
        return Err(if is_director {
            ApiError::forbidden(
                "company_dissolved",
                "The registry lists this company as dissolved.",
            )
        } else {
            ApiError::forbidden(
                "not_a_director",
                "The registry does not list you as a director of this company.",
            )
        });
    }
    let mut tx = state.store().begin().await?;
    companies::link(&mut tx, &account.id, &jid.compact(), &company.name_th, now).await?;
    let ev = AuditEvent::success(account_actor(&account.id), "company.link", jid.compact())
        .with_details(json!({ "authority": company.authority, "acts_alone": matches!(alone, AuthorityDecision::Authorised { .. }) }));
    audit::append(&mut tx, now, &ev).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "juristic_id": jid.compact(),
            "name_th": company.name_th,
            "name_en": company.name_en,
            "authority": company.authority,
            "acts_alone": matches!(alone, AuthorityDecision::Authorised { .. }),
            "required_directors": match company.authority { AuthorityRule::AnyOne => 1, AuthorityRule::Jointly { directors } => directors },
        })),
    ))
}

/// Who acts for the company in this transaction, beside the signed-in director.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthorityRequest {
    /// Citizen ids of the other directors acting jointly (they confirm separately when signing).
    #[serde(default)]
    acting_with: Vec<String>,
}

/// Checks authority to act for a company now, always asking the registry
/// (as every signing will); refreshes or removes the link accordingly.
#[utoipa::path(post, path = "/api/v1/me/companies/{juristic_id}/authority", tag = "companies", request_body = AuthorityRequest, responses((status = 200, body = Object)))]
async fn check_authority(
    State(state): State<AppState>,
    session: SessionAuth,
    Path(juristic_id): Path<String>,
    ApiJson(req): ApiJson<AuthorityRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let jid = JuristicId::parse(&juristic_id)
        .map_err(|e| ApiError::bad_request("invalid_juristic_id", e.to_string()))?;
    let (account, me) = my_citizen_id(&state, &session).await?;
    let mut acting = vec![me];
    for c in &req.acting_with {
        acting.push(
            CitizenId::parse(c)
                .map_err(|e| ApiError::bad_request("invalid_citizen_id", e.to_string()))?,
        );
    }
    let company = lookup_company(&state, &jid).await?;
    let decision = authorised(&company, &acting);
    let now = state.now();
    let mut tx = state.store().begin().await?;
    if company.directors.contains(&me) && !matches!(decision, AuthorityDecision::CompanyDissolved) {
        companies::link(&mut tx, &account.id, &jid.compact(), &company.name_th, now).await?;
    } else {
        companies::unlink(&mut tx, &account.id, &jid.compact()).await?;
    }
    let ok = matches!(decision, AuthorityDecision::Authorised { .. });
    let ev = if ok {
        AuditEvent::success(
            account_actor(&account.id),
            "company.authority",
            jid.compact(),
        )
    } else {
        AuditEvent::failure(
            account_actor(&account.id),
            "company.authority",
            jid.compact(),
        )
    };
    audit::append(
        &mut tx,
        now,
        &ev.with_details(json!({ "acting": acting.len(), "decision": decision_label(&decision) })),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({ "authorised": ok, "decision": decision })))
}

fn decision_label(d: &AuthorityDecision) -> &'static str {
    match d {
        AuthorityDecision::Authorised { .. } => "authorised",
        AuthorityDecision::NeedsMoreDirectors { .. } => "needs_more_directors",
        AuthorityDecision::NotADirector { .. } => "not_a_director",
        AuthorityDecision::CompanyDissolved => "company_dissolved",
        AuthorityDecision::NobodyActing => "nobody_acting",
    }
}
