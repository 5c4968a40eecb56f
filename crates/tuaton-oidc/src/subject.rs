//! Subject identifiers (OpenID Connect Core 1.0 §8): pairwise by default.
//!
//! A pairwise `sub` is HMAC-SHA256 under a server secret over the sector and
//! the account id (length-prefixed), base64url: clients of one sector share
//! it; clients of different sectors get unrelated values, and someone with
//! the database of one client (or all of them) cannot link them without the
//! secret. The secret is Tuaton's (the service layer keeps it with its other
//! server secrets, in Tuaton's database; SECURITY.md says what a reader of
//! that database can therefore do).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use crate::client::{ClientConfig, SubjectType};

/// The server secret pairwise subjects are derived with.
pub struct PairwiseSalt(hmac::Key);

impl PairwiseSalt {
    /// From 32 secret bytes (kept by the service layer, shared by every instance).
    pub fn new(secret: &[u8; 32]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// The salt from an HMAC-SHA256 key held elsewhere (the server's secrets).
    pub fn with_key(key: hmac::Key) -> Self {
        Self(key)
    }

    /// The `sub` `client` sees for the account `local_id`.
    pub fn subject(&self, client: &ClientConfig, local_id: &str) -> String {
        match &client.subject {
            SubjectType::Public => local_id.to_owned(),
            SubjectType::Pairwise { sector } => {
                let mut ctx = hmac::Context::with_key(&self.0);
                for part in [sector.as_bytes(), local_id.as_bytes()] {
                    ctx.update(&(part.len() as u64).to_be_bytes());
                    ctx.update(part);
                }
                URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::client::tests::agency;

    #[test]
    fn one_sector_shares_a_subject_and_different_sectors_do_not() {
        let salt = PairwiseSalt::new(&[7; 32]);
        let a1 = agency(&["https://efiling.rd.go.th/cb"]).validate().unwrap();
        let a2 = agency(&["https://efiling.rd.go.th/other"])
            .validate()
            .unwrap();
        let b = agency(&["https://www.sso.go.th/cb"]).validate().unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(salt.subject(&a1, id), salt.subject(&a2, id));
        assert_ne!(salt.subject(&a1, id), salt.subject(&b, id));
        assert_ne!(salt.subject(&a1, id), id, "the account id does not show");
        assert_ne!(
            PairwiseSalt::new(&[8; 32]).subject(&a1, id),
            salt.subject(&a1, id),
            "without the secret the value cannot be computed"
        );
        let mut public = a1.clone();
        public.subject = SubjectType::Public;
        assert_eq!(salt.subject(&public, id), id);
    }
}
