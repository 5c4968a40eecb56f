//! The consent step of a login to an agency: what the person agrees to
//! share with a client, for its registered purpose, before any claim
//! beyond `sub` is released (the PDPA's consent, section 19).
//!
//! A consent is recorded per account, client and purpose in the consent
//! records the account page lists, with the claims it covers, the version
//! of the purpose text and the SHA-256 of the notice shown. A later login
//! asking for no more than a live consent covers is not asked again;
//! `prompt=consent`, a claim not covered, a changed purpose text or a
//! withdrawn consent ask again. Withdrawing a consent revokes the client's
//! grants for the account (`account.rs`), so userinfo stops answering too.

use ring::digest::{SHA256, digest};
use tuaton_oidc::claims::{self, Claim};
use tuaton_oidc::{AuthorizationRequest, ClientConfig, Prompt, Purpose};
use tuaton_store::consents::{self, ConsentRecord, NewConsent};

use super::{Decision, OidcError};
use crate::sessions::ActiveSession;
use crate::{Idm, IdmError};

/// The purpose lawful basis of a login's release: the person's consent.
const LAWFUL_BASIS: &str = "consent";

/// What the consent page asks the person to share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentAsk {
    /// The agency and application, as registered.
    pub client_name: String,
    /// What the agency uses the data for, as registered.
    pub purpose: String,
    /// Each claim asked for.
    pub claims: Vec<Claim>,
    /// Where the answer goes (the page's `form-action` allows it).
    pub redirect_uri: url::Url,
}

/// The SHA-256 (hex) of the notice the consent page shows for `claims`.
fn notice_digest(client: &ClientConfig, purpose: &Purpose, claims: &[Claim]) -> String {
    let notice = claims::notice(&client.name, &purpose.text, claims);
    hex::encode(digest(&SHA256, notice.as_bytes()))
}

/// Whether `rec` is a live consent given on Tuaton's consent page to
/// `client`'s current `purpose` and notice, covering every one of `claims`.
/// A record made another way (the account API takes any notice) does not
/// count: what the person agreed to must be what this page says.
fn covers(rec: &ConsentRecord, client: &ClientConfig, purpose: &Purpose, claims: &[Claim]) -> bool {
    let given: Vec<Claim> = rec.claims.iter().filter_map(|c| Claim::parse(c)).collect();
    rec.withdrawn_at.is_none()
        && rec.agency == client.client_id
        && rec.purpose == purpose.id
        && rec.purpose_version == purpose.version()
        && rec.lawful_basis == LAWFUL_BASIS
        && given.len() == rec.claims.len()
        && rec.notice_digest == notice_digest(client, purpose, &given)
        && claims.iter().all(|c| given.contains(c))
}

/// The consent to record when the person shares `claims` with `client`.
fn record(client: &ClientConfig, purpose: &Purpose, claims: &[Claim]) -> NewConsent {
    NewConsent {
        agency: client.client_id.clone(),
        purpose: purpose.id.clone(),
        purpose_version: purpose.version(),
        claims: claims.iter().map(|c| c.as_str().to_owned()).collect(),
        notice_digest: notice_digest(client, purpose, claims),
        locale: "th".into(),
        lawful_basis: LAWFUL_BASIS.into(),
    }
}

impl Idm {
    /// The claims of `scopes` that `client` may still be given about
    /// `account`: those its registration still offers, and that a live
    /// consent for its current purpose covers. Checked at redemption and
    /// at every userinfo call, so a consent withdrawn or a scope taken
    /// away stops the release at once.
    pub(super) async fn releasable(
        &self,
        client: &ClientConfig,
        account: &tuaton_core::AccountId,
        scopes: &[String],
    ) -> Result<Vec<Claim>, IdmError> {
        let offered: Vec<String> = scopes
            .iter()
            .filter(|s| client.scopes.contains(s))
            .cloned()
            .collect();
        let claims = claims::requested(&offered);
        let Some(purpose) = client.purpose.as_ref().filter(|_| !claims.is_empty()) else {
            return Ok(Vec::new());
        };
        let live = consents::for_account(self.store().conn().await?.conn(), account).await?;
        Ok(claims
            .into_iter()
            .filter(|c| {
                live.iter()
                    .any(|r| covers(r, client, purpose, std::slice::from_ref(c)))
            })
            .collect())
    }

    /// The consent a login answering `request` with `decision` records, if
    /// any; [`OidcError::ConsentNeeded`] when the person must be asked.
    pub(super) async fn consent_for(
        &self,
        client: &ClientConfig,
        request: &AuthorizationRequest,
        session: &ActiveSession,
        decision: Decision,
    ) -> Result<Option<NewConsent>, OidcError> {
        let claims = claims::requested(&request.scopes);
        if claims.is_empty() {
            return Ok(None);
        }
        let purpose = client
            .purpose
            .as_ref()
            .ok_or_else(|| crate::error::corrupt("a client releasing claims without a purpose"))?;
        match decision {
            Decision::Deny => Ok(None),
            Decision::Share => Ok(Some(record(client, purpose, &claims))),
            Decision::Allow => {
                let asked_again = request.prompt.contains(&Prompt::Consent);
                let live =
                    consents::for_account(self.store().conn().await?.conn(), &session.account_id)
                        .await
                        .map_err(IdmError::from)?;
                if !asked_again && live.iter().any(|r| covers(r, client, purpose, &claims)) {
                    Ok(None)
                } else {
                    Err(OidcError::ConsentNeeded(Box::new(ConsentAsk {
                        client_name: client.name.clone(),
                        purpose: purpose.text.clone(),
                        claims,
                        redirect_uri: request.redirect_uri.clone(),
                    })))
                }
            }
        }
    }
}
