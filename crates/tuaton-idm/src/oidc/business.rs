//! Business login: a person who directs companies logs in to an agency to
//! act for one of them (the `business` scope). After the login (and the
//! consent, which names the company claim), the person chooses the company
//! from those linked to the account; the choice is confirmed with the
//! registry under the recheck rule every link follows (`companies.rs`: a
//! link older than the recheck interval is asked again, and removed if the
//! registry no longer lists the person), and the code carries it. The ID
//! token and userinfo then name the company (`company`: juristic id and
//! name) beside the person's own `sub`, never merged into it.

use tuaton_core::{ErrorCode, JuristicId};
use tuaton_oidc::claims::CompanyClaim;
use tuaton_oidc::{AuthorizationRequest, ClientConfig};

use super::OidcError;
use crate::sessions::ActiveSession;
use crate::{Idm, IdmError};

/// The scope that asks for the company acted for.
const BUSINESS: &str = "business";

/// What the company page shows: the companies the person may choose from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyAsk {
    /// The agency and application, as registered.
    pub client_name: String,
    /// Each linked company the registry confirms (juristic id, name).
    pub companies: Vec<(String, String)>,
    /// Where the answer goes (the page's `form-action` allows it).
    pub redirect_uri: url::Url,
}

impl Idm {
    /// The company a login answering `request` acts for: `None` when the
    /// request does not ask for one; [`OidcError::CompanyNeeded`] until the
    /// person has chosen; the chosen one once the registry confirms it.
    pub(super) async fn company_for(
        &self,
        client: &ClientConfig,
        request: &AuthorizationRequest,
        session: &ActiveSession,
        chosen: Option<&str>,
        now: time::OffsetDateTime,
    ) -> Result<Option<CompanyClaim>, OidcError> {
        if !request.scopes.iter().any(|s| s == BUSINESS) {
            return Ok(None);
        }
        // Rechecks the links past the interval with the registry first.
        let linked = self.companies(session, now).await?;
        let Some(chosen) = chosen else {
            return Err(OidcError::CompanyNeeded(Box::new(CompanyAsk {
                client_name: client.name.clone(),
                companies: linked
                    .iter()
                    .filter(|c| c.confirmed)
                    .map(|c| (c.juristic_id.clone(), c.company_name.clone()))
                    .collect(),
                redirect_uri: request.redirect_uri.clone(),
            })));
        };
        let jid = JuristicId::parse(chosen).map_err(|_| {
            IdmError::invalid(
                ErrorCode::InvalidField,
                "company must be a thirteen-digit juristic id",
            )
        })?;
        let link = linked
            .into_iter()
            .find(|c| c.juristic_id == jid.compact())
            .ok_or(IdmError::NotADirector)?;
        if !link.confirmed {
            return Err(
                IdmError::CompanyRegistry(tuaton_proofing::RegistryError::Unavailable {
                    reason: "the registry could not confirm the link now".into(),
                })
                .into(),
            );
        }
        Ok(Some(CompanyClaim {
            juristic_id: link.juristic_id,
            name: link.company_name,
        }))
    }
}
