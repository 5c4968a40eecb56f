//! Companies a signed-in director acts for, under the registry's authority rule.
//!
//! A link is made only when the registry lists the person as a director of
//! an active company, and is checked with the registry again once it is
//! older than the policy's recheck interval; every authority check asks the
//! registry, as every signing for a company does. When the registry no
//! longer lists the person as a director of an active company, the link
//! goes and so do the person's representative certificates for it
//! (revoked, `affiliationChanged`).

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::{CitizenId, Ial, JuristicId};
use tuaton_proofing::{AuthorityDecision, AuthorityRule, Company, RegistryError, authorised};
use tuaton_store::accounts::Account;
use tuaton_store::companies;

use crate::audit::{self, action};
use crate::sessions::ActiveSession;
use crate::signing::end_representation;
use crate::{Idm, IdmError, Registry};

/// A linked company as its director sees it.
#[derive(Debug, Serialize)]
pub struct LinkedCompany {
    /// Thirteen-digit juristic id.
    pub juristic_id: String,
    /// The registered Thai name.
    pub company_name: String,
    /// When the link was made.
    #[serde(with = "time::serde::rfc3339")]
    pub linked_at: OffsetDateTime,
    /// When the registry last confirmed it.
    #[serde(with = "time::serde::rfc3339")]
    pub confirmed_at: OffsetDateTime,
    /// Whether that confirmation is within the recheck interval.
    pub confirmed: bool,
}

/// A company just linked.
#[derive(Debug, Serialize)]
pub struct CompanyLinked {
    /// Thirteen-digit juristic id.
    pub juristic_id: String,
    /// The registered Thai name.
    pub name_th: String,
    /// The registered English name.
    pub name_en: Option<String>,
    /// The registry's authority rule.
    pub authority: AuthorityRule,
    /// Whether the director may act alone.
    pub acts_alone: bool,
    /// How many directors must act together.
    pub required_directors: u8,
}

/// The answer to an authority check.
#[derive(Debug, Serialize)]
pub struct AuthorityCheck {
    /// Whether the acting directors may act for the company now.
    pub authorised: bool,
    /// The registry rule's verdict.
    pub decision: AuthorityDecision,
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

/// Whether `me` still holds a director's place in an active `company`.
fn directs(company: &Company, me: CitizenId) -> bool {
    company.directors.contains(&me)
        && !matches!(
            authorised(company, &[me]),
            AuthorityDecision::CompanyDissolved
        )
}

impl Idm {
    pub(crate) async fn lookup_company(&self, jid: &JuristicId) -> Result<Company, IdmError> {
        let registry = self
            .parts()
            .juristic_registry
            .clone()
            .ok_or(IdmError::RegistryNotConfigured(Registry::Juristic))?;
        let company = registry.lookup(jid).await.map_err(|e| {
            if let RegistryError::Unavailable { reason } = &e {
                tracing::warn!(%reason, "juristic registry unavailable");
            }
            IdmError::from(e)
        })?;
        // The names go into certificates and onto pages: an answer for
        // another company, or names that would show in another order than
        // they are, is no answer.
        let shown = |n: &str| !n.is_empty() && crate::signing::shown_name(n);
        if company.id != *jid
            || !shown(&company.name_th)
            || company.name_en.as_deref().is_some_and(|n| !shown(n))
        {
            tracing::warn!(company = %jid.compact(), "the juristic registry's answer does not fit the question");
            return Err(RegistryError::Unavailable {
                reason: "an answer for another company, or unshowable names".into(),
            }
            .into());
        }
        Ok(company)
    }

    /// The signed-in account with its verified citizen id.
    async fn proofed(&self, session: &ActiveSession) -> Result<(Account, CitizenId), IdmError> {
        let account = self.account_of(session).await?;
        let id = account
            .citizen_id
            .as_deref()
            .and_then(|c| CitizenId::parse(c).ok())
            .ok_or(IdmError::NotProofed)?;
        Ok((account, id))
    }

    /// The linked companies. A link older than the recheck interval is
    /// checked with the registry first: kept and re-dated when the person
    /// still directs an active company, removed (and audited) when not, and
    /// shown unconfirmed when the registry cannot answer.
    pub async fn companies(
        &self,
        session: &ActiveSession,
        now: OffsetDateTime,
    ) -> Result<Vec<LinkedCompany>, IdmError> {
        let (account, me) = self.proofed(session).await?;
        let recheck = self.policy().authority_recheck;
        let registry = self.parts().juristic_registry.clone();
        // Read first: the loop writes, and on SQLite the reading connection is the only one.
        let links = companies::for_account(self.store().conn().await?.conn(), &account.id).await?;
        let mut out = Vec::new();
        for link in links {
            let stale = now - link.checked_at > recheck;
            // Some(true): still directs an active company; Some(false): no longer; None: not asked or no answer.
            let holds = match (stale, &registry, JuristicId::parse(&link.juristic_id)) {
                (true, Some(r), Ok(jid)) => match r.lookup(&jid).await {
                    Ok(company) => Some(directs(&company, me)),
                    Err(RegistryError::NotFound) => Some(false),
                    Err(RegistryError::Unavailable { .. }) => None,
                },
                _ => None,
            };
            if let Some(still) = holds {
                let mut tx = self.store().begin().await?;
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
                    if let Ok(jid) = JuristicId::parse(&link.juristic_id) {
                        end_representation(&mut tx, &account.id, &jid, now).await?;
                    }
                    let ev = audit::failure(
                        &session.actor(),
                        action::COMPANY_AUTHORITY_LOST,
                        link.juristic_id.clone(),
                    );
                    tuaton_store::audit::append(&mut tx, now, &ev).await?;
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
            out.push(LinkedCompany {
                confirmed_at: fresh.unwrap_or(link.checked_at),
                confirmed: fresh.is_some(),
                juristic_id: link.juristic_id,
                company_name: link.company_name,
                linked_at: link.linked_at,
            });
        }
        Ok(out)
    }

    /// Links a company the registry lists the signed-in person as a director
    /// of; needs IAL2.1 or higher.
    pub async fn link_company(
        &self,
        session: &ActiveSession,
        jid: &JuristicId,
        now: OffsetDateTime,
    ) -> Result<CompanyLinked, IdmError> {
        let (account, me) = self.proofed(session).await?;
        if account.ial < Ial::Ial2_1 {
            return Err(IdmError::IalTooLow { needs: Ial::Ial2_1 });
        }
        let company = self.lookup_company(jid).await?;
        let alone = authorised(&company, &[me]);
        if !directs(&company, me) {
            let err = if company.directors.contains(&me) {
                IdmError::CompanyDissolved
            } else {
                IdmError::NotADirector
            };
            let actor = session.actor();
            audit::refused_alone(
                self.store(),
                now,
                &actor,
                action::COMPANY_LINK,
                jid.compact(),
                err.code(),
            )
            .await?;
            return Err(err);
        }
        let acts_alone = matches!(alone, AuthorityDecision::Authorised { .. });
        let mut tx = self.store().begin().await?;
        companies::link(&mut tx, &account.id, &jid.compact(), &company.name_th, now).await?;
        let ev = audit::success(&session.actor(), action::COMPANY_LINK, jid.compact())
            .with_details(json!({ "authority": company.authority, "acts_alone": acts_alone }));
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(CompanyLinked {
            juristic_id: jid.compact(),
            required_directors: match company.authority {
                AuthorityRule::AnyOne => 1,
                AuthorityRule::Jointly { directors } => directors,
            },
            name_th: company.name_th,
            name_en: company.name_en,
            authority: company.authority,
            acts_alone,
        })
    }

    /// Checks, with the registry, whether the signed-in director acting
    /// with `acting_with` may act for the company now; refreshes or removes
    /// the link accordingly, and audits the check.
    pub async fn check_authority(
        &self,
        session: &ActiveSession,
        jid: &JuristicId,
        acting_with: &[CitizenId],
        now: OffsetDateTime,
    ) -> Result<AuthorityCheck, IdmError> {
        let (account, me) = self.proofed(session).await?;
        let mut acting = vec![me];
        acting.extend_from_slice(acting_with);
        let company = self.lookup_company(jid).await?;
        let decision = authorised(&company, &acting);
        let mut tx = self.store().begin().await?;
        if directs(&company, me) {
            companies::link(&mut tx, &account.id, &jid.compact(), &company.name_th, now).await?;
        } else {
            companies::unlink(&mut tx, &account.id, &jid.compact()).await?;
            end_representation(&mut tx, &account.id, jid, now).await?;
        }
        let ok = matches!(decision, AuthorityDecision::Authorised { .. });
        let actor = session.actor();
        let ev = if ok {
            audit::success(&actor, action::COMPANY_AUTHORITY, jid.compact())
        } else {
            audit::failure(&actor, action::COMPANY_AUTHORITY, jid.compact())
        };
        let ev = ev
            .with_details(json!({ "acting": acting.len(), "decision": decision_label(&decision) }));
        tuaton_store::audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(AuthorityCheck {
            authorised: ok,
            decision,
        })
    }
}
