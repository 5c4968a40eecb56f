//! Keyed digests: values Tuaton keeps or hands out that must not be
//! matchable by someone who guesses what they were made from.
//!
//! - Server keys (`server_secrets`, made once and shared by every instance)
//!   derive the stand-in answers of login start and key the digests of
//!   evidence refused before any account is known.
//! - Each account has an evidence key (`accounts.evidence_key`): the digest
//!   of the evidence its proofing decisions and audit records keep is
//!   HMAC-SHA256 under it, never a bare SHA-256 that a citizen id and names
//!   read off a photocopy could be hashed and compared with. Erasure deletes
//!   the key, so what the append-only audit log still holds can no longer be
//!   linked to anyone.

use ring::hmac;
use time::OffsetDateTime;
use tokio::sync::OnceCell;
use tuaton_core::AccountId;
use tuaton_proofing::EvidenceDigest;
use tuaton_store::Tx;

use crate::{Idm, IdmError};

/// 32 random bytes, hex.
fn random_key_hex() -> Result<zeroize::Zeroizing<String>, IdmError> {
    let mut offered = zeroize::Zeroizing::new([0u8; 32]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), offered.as_mut())
        .map_err(|_| IdmError::internal("the system random source failed"))?;
    Ok(zeroize::Zeroizing::new(hex::encode(offered.as_ref())))
}

/// An HMAC-SHA256 key from its stored hex form.
fn key_from_hex(stored: &str, what: &str) -> Result<hmac::Key, IdmError> {
    let bytes =
        zeroize::Zeroizing::new(hex::decode(stored).map_err(|_| crate::error::corrupt(what))?);
    if bytes.len() != 32 {
        return Err(crate::error::corrupt(what));
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

/// `digest` keyed under `key`, hex.
fn keyed(key: &hmac::Key, digest: &EvidenceDigest) -> String {
    hex::encode(hmac::sign(key, digest.as_str().as_bytes()).as_ref())
}

impl Idm {
    /// The server key `name`, made and shared through the store on first
    /// use, and kept in `cell` for the life of the process.
    pub(crate) async fn server_key<'a>(
        &self,
        cell: &'a OnceCell<hmac::Key>,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<&'a hmac::Key, IdmError> {
        cell.get_or_try_init(|| async {
            let offered = random_key_hex()?;
            let stored =
                tuaton_store::secrets::get_or_create(self.store(), name, &offered, now).await?;
            key_from_hex(&stored, "a server secret")
        })
        .await
    }

    /// The digest an account's evidence is kept by, in `tx`: keyed under the
    /// account's evidence key (made on first use).
    pub(crate) async fn account_digest(
        &self,
        tx: &mut Tx,
        account: &AccountId,
        digest: &EvidenceDigest,
    ) -> Result<String, IdmError> {
        let offered = random_key_hex()?;
        let stored = tuaton_store::accounts::evidence_key(tx, account, &offered)
            .await?
            .ok_or_else(|| IdmError::internal("an erased account has no evidence key"))?;
        let key = key_from_hex(&stored, "an account's evidence key")?;
        Ok(keyed(&key, digest))
    }

    /// The digest a refusal made before any account is known is audited by:
    /// keyed under a server secret.
    pub(crate) async fn refusal_digest(
        &self,
        digest: &EvidenceDigest,
        now: OffsetDateTime,
    ) -> Result<String, IdmError> {
        let key = self
            .server_key(&self.0.evidence_refusals, "evidence-refusals", now)
            .await?;
        Ok(keyed(key, digest))
    }
}
