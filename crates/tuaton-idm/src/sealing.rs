//! Passkey rows sealed with a key the database never holds.
//!
//! Whoever can write the database (a stolen backup restored elsewhere, a
//! compromised replica, an operator's mistaken script) could otherwise add
//! a passkey row with their own authenticator's public key to a victim's
//! account, or move one of their own there, and log in — and sign — as the
//! victim, or lift a cloned authenticator's suspension, or lower a counter
//! so a clone passes. Each row is sealed: HMAC-SHA256 over the account, the
//! row's state and the stored credential (its id, public key, counter and
//! flags), resealed with every use, under a key derived from an Ed25519 key in the
//! key backend (its signature over a fixed label, which RFC 8032 makes the
//! same every time, through HKDF-SHA256). The key backend's key is named by
//! a reference kept outside the database (a file in the data directory,
//! see [`pinned_key`]), so a database writer can neither read the sealing
//! key nor point Tuaton at another. A row whose seal does not verify is
//! refused at every login and confirmation, and audited.

use std::path::Path;
use std::sync::Arc;

use ring::hmac;
use tuaton_core::AccountId;
use tuaton_keys::{KeyBackend, KeyRef, KeySpec, SignatureAlgorithm, SignatureFormat};
use tuaton_store::passkeys::{self as creds, PasskeyState};

use crate::{Idm, IdmError};

/// What the backend's key signs to give the sealing key.
const LABEL: &[u8] = b"tuaton passkey row seal v1";

/// The sealing key, in memory only.
pub struct PasskeySeal {
    key: hmac::Key,
}

impl std::fmt::Debug for PasskeySeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasskeySeal(..)")
    }
}

impl PasskeySeal {
    /// Derives the sealing key from the Ed25519 key `key` in `backend`.
    pub fn derive(backend: &dyn KeyBackend, key: &KeyRef) -> Result<Self, tuaton_keys::KeyError> {
        let signature = zeroize::Zeroizing::new(backend.sign(
            key,
            SignatureAlgorithm::EdDsa,
            SignatureFormat::Raw,
            LABEL,
        )?);
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, LABEL);
        let prk = salt.extract(&signature);
        let okm = prk
            .expand(&[b"hmac-sha256"], hmac::HMAC_SHA256)
            .map_err(|_| tuaton_keys::KeyError::Crypto {
                what: "deriving the passkey sealing key",
            })?;
        Ok(Self {
            key: hmac::Key::from(okm),
        })
    }

    /// The seal of a row of `account` in `state` holding `credential`
    /// (the stored text, as stored), hex.
    pub fn seal(&self, account: &AccountId, state: PasskeyState, credential: &str) -> String {
        hex::encode(hmac::sign(&self.key, &message(account, state, credential)).as_ref())
    }

    /// Whether `seal` is the seal of a row of `account` in `state` holding
    /// `credential`.
    pub fn holds(
        &self,
        account: &AccountId,
        state: PasskeyState,
        credential: &str,
        seal: Option<&str>,
    ) -> bool {
        let Some(tag) = seal.and_then(|s| hex::decode(s).ok()) else {
            return false;
        };
        hmac::verify(&self.key, &message(account, state, credential), &tag).is_ok()
    }
}

/// What a row's seal is over: each part length-prefixed.
fn message(account: &AccountId, state: PasskeyState, credential: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(credential.len() + 64);
    for part in [account.as_str(), state.as_str(), credential] {
        message.extend_from_slice(&(part.len() as u32).to_be_bytes());
        message.extend_from_slice(part.as_bytes());
    }
    message
}

impl PasskeySeal {
    /// The sealing key whose backend key's reference is kept in `file`
    /// (outside the database), and whether that key was made now: when
    /// `file` does not exist yet, an Ed25519 key is made in `backend` and
    /// `file` written, and the caller seals every row as it stands
    /// ([`Idm::seal_every_passkey`]).
    pub fn open(backend: &Arc<dyn KeyBackend>, file: &Path) -> Result<(Self, bool), String> {
        let (key, made) = match std::fs::read_to_string(file) {
            Ok(text) => (
                text.trim().parse::<KeyRef>().map_err(|e| {
                    format!("{} does not hold a key reference: {e}", file.display())
                })?,
                false,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match pin_new(backend, file)? {
                Some(key) => (key, true),
                // Another process starting beside this one pinned its key first.
                None => return Self::open(backend, file),
            },
            Err(e) => return Err(format!("{} could not be read: {e}", file.display())),
        };
        let seal = Self::derive(backend.as_ref(), &key)
            .map_err(|e| format!("the passkey sealing key could not be used: {e}"))?;
        Ok((seal, made))
    }
}

/// Makes an Ed25519 key in `backend` and pins it in `file`, unless another
/// process pinned one first (`None`; this one's key is destroyed). The
/// reference is written whole to a file of its own, then linked to `file`,
/// which fails if `file` exists: two processes starting at once on one data
/// directory never both take their own key.
fn pin_new(backend: &Arc<dyn KeyBackend>, file: &Path) -> Result<Option<KeyRef>, String> {
    let key = backend
        .generate(KeySpec::Ed25519, "tuaton passkey seal")
        .map_err(|e| format!("the passkey sealing key could not be made: {e}"))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{} could not be made: {e}", dir.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let draft = dir.join(format!(".{name}.{}", std::process::id()));
    let written = std::fs::write(&draft, format!("{key}\n"))
        .map_err(|e| format!("{} could not be written: {e}", draft.display()))
        .and_then(|()| match std::fs::hard_link(&draft, file) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(format!("{} could not be written: {e}", file.display())),
        });
    let _ = std::fs::remove_file(&draft);
    match written {
        Ok(true) => Ok(Some(key)),
        Ok(false) => {
            let _ = backend.destroy(&key);
            Ok(None)
        }
        Err(e) => {
            let _ = backend.destroy(&key);
            Err(e)
        }
    }
}

impl Idm {
    /// Seals every passkey row as it stands, in one transaction: what a
    /// first start with a new sealing key does ([`PasskeySeal::open`]), so
    /// rows stored before sealing began keep logging in. Returns how many.
    pub async fn seal_every_passkey(&self) -> Result<usize, IdmError> {
        let mut tx = self.store().begin().await?;
        let rows = creds::all_credentials(&mut tx).await?;
        for (cred_id, account, state, credential) in &rows {
            let seal = self.passkey_seal().seal(account, *state, credential);
            creds::set_seal(&mut tx, cred_id, &seal).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn tag(seal: &PasskeySeal) -> Vec<u8> {
        hmac::sign(&seal.key, b"row").as_ref().to_vec()
    }

    #[test]
    fn the_pinned_key_gives_the_same_sealing_key_at_every_start() {
        let dir = tempfile::tempdir().unwrap();
        let backend: Arc<dyn KeyBackend> = Arc::new(
            tuaton_keys::SoftwareBackend::open(
                dir.path().join("keys"),
                tuaton_keys::MasterKey::from_bytes([3; 32]),
            )
            .unwrap(),
        );
        let file = dir.path().join("data").join("passkey-seal.key-ref");
        let (first, made) = PasskeySeal::open(&backend, &file).unwrap();
        assert!(made, "no file yet: a key is made and pinned");
        let (again, made) = PasskeySeal::open(&backend, &file).unwrap();
        assert!(!made);
        assert_eq!(tag(&first), tag(&again));
        // Another key (another file) seals differently.
        let (other, _) = PasskeySeal::open(&backend, &dir.path().join("other")).unwrap();
        assert_ne!(tag(&first), tag(&other));
        // A file that names no key is an error, not a new key.
        std::fs::write(&file, "not a key reference").unwrap();
        assert!(PasskeySeal::open(&backend, &file).is_err());
    }
}
