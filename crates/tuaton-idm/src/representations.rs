//! Representative certificates of former directors, ended without waiting
//! for them to act. A director's representative certificate is checked
//! with the registry whenever they sign or read a company's document; one
//! who never comes back would keep a certificate in force that names them
//! the company's representative. Upkeep asks the registry again about each
//! representation it last confirmed longer ago than the recheck interval
//! ([`crate::Policy::authority_recheck`]), a bounded batch a round, and
//! revokes (`affiliationChanged`) the certificates of a person it no
//! longer lists, or of a company it no longer lists or lists as dissolved.
//! A registry that does not answer ends nothing: the representation is
//! asked about again next round.

use std::collections::BTreeMap;

use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::JuristicId;
use tuaton_proofing::{CompanyStatus, RegistryError};
use tuaton_store::audit::AuditEvent;
use tuaton_store::certificates::{self, Representation};
use tuaton_store::keys::SYSTEM_ACTOR;

use crate::audit::action;
use crate::signing::end_representation;
use crate::{Idm, IdmError};

/// Signer certificates read a round for the company they name, when they
/// were stored before that was recorded.
const CLASSIFY_BATCH: i64 = 200;
/// Representations asked about a round.
const SWEEP_BATCH: i64 = 50;

/// What one round of [`Idm::sweep_representations`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepresentationSweep {
    /// Signer certificates whose company was read from their subject.
    pub classified: usize,
    /// Representations the registry confirmed.
    pub confirmed: usize,
    /// Representations ended: their certificates revoked.
    pub ended: usize,
    /// Representations left for the next round: the registry did not answer.
    pub deferred: usize,
}

impl Idm {
    /// One round of the sweep the module describes, at `now`.
    pub async fn sweep_representations(
        &self,
        now: OffsetDateTime,
    ) -> Result<RepresentationSweep, IdmError> {
        let mut report = RepresentationSweep::default();
        let unclassified =
            certificates::signers_unclassified(self.store().conn().await?.conn(), CLASSIFY_BATCH)
                .await?;
        for (id, der) in unclassified {
            let company = tuaton_pki::subject_ids(&der)
                .ok()
                .and_then(|named| named.organization)
                .and_then(|o| o.strip_prefix("NTRTH-").map(str::to_owned))
                .unwrap_or_default();
            certificates::set_represents(self.store().conn().await?.conn(), &id, &company).await?;
            report.classified += 1;
        }
        if self.parts().juristic_registry.is_none() {
            return Ok(report);
        }
        let due = certificates::representations_due(
            self.store().conn().await?.conn(),
            now - self.policy().authority_recheck,
            SWEEP_BATCH,
        )
        .await?;
        let mut by_company: BTreeMap<String, Vec<Representation>> = BTreeMap::new();
        for r in due {
            by_company.entry(r.company.clone()).or_default().push(r);
        }
        for (jid, representations) in by_company {
            let Ok(parsed) = JuristicId::parse(&jid) else {
                tracing::warn!(company = %jid, "a representative certificate names no juristic id");
                continue;
            };
            let company = match self.lookup_company(&parsed).await {
                Ok(c) => Some(c),
                Err(IdmError::CompanyRegistry(RegistryError::NotFound)) => None,
                Err(e) => {
                    tracing::warn!(error = %e, company = %jid, "the registry did not answer for a representation; asked again next round");
                    report.deferred += representations.len();
                    continue;
                }
            };
            for r in representations {
                let account =
                    tuaton_store::accounts::by_id(self.store().conn().await?.conn(), &r.account_id)
                        .await?;
                let citizen = account
                    .and_then(|a| a.citizen_id)
                    .and_then(|c| tuaton_core::CitizenId::parse(&c).ok());
                let reason = match (&company, citizen) {
                    (None, _) => "company_not_found",
                    (Some(c), _) if c.status != CompanyStatus::Active => "company_dissolved",
                    (Some(c), Some(me)) if c.directors.contains(&me) => {
                        certificates::representation_confirmed(
                            self.store().conn().await?.conn(),
                            &r.certificate_id,
                            now,
                        )
                        .await?;
                        report.confirmed += 1;
                        continue;
                    }
                    (Some(_), _) => "not_a_director",
                };
                let mut tx = self.store().begin().await?;
                end_representation(&mut tx, &r.account_id, &parsed, now).await?;
                let ev = AuditEvent::failure(SYSTEM_ACTOR, action::COMPANY_AUTHORITY, &jid)
                    .with_details(json!({
                        "reason": reason,
                        "account_id": r.account_id,
                        "certificate": r.certificate_id,
                        "sweep": true,
                    }));
                tuaton_store::audit::append(&mut tx, now, &ev).await?;
                tx.commit().await?;
                report.ended += 1;
            }
        }
        Ok(report)
    }
}
