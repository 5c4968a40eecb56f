//! The trait every key backend implements.

use crate::algorithm::{KeySpec, SignatureAlgorithm, SignatureFormat};
use crate::error::Result;
use crate::key_ref::KeyRef;
use crate::public_key::PublicKey;

/// A place where private keys are generated, used and destroyed without
/// ever leaving it.
///
/// Synchronous on purpose: PKCS#11 calls block in C anyway, and the
/// consumers (rcgen's `SigningKey`, RustCrypto's `Signer`) are synchronous.
/// Async code calls a backend through `spawn_blocking` or a signing pool.
/// Implementations are safe to call from many threads at once.
pub trait KeyBackend: Send + Sync {
    /// Generates a new key pair inside the backend and returns its reference.
    /// `label` is for humans (shown in HSM tools); it need not be unique.
    fn generate(&self, spec: KeySpec, label: &str) -> Result<KeyRef>;

    /// Returns the public key of `key`.
    fn public_key(&self, key: &KeyRef) -> Result<PublicKey>;

    /// Signs `data` (the message, not a digest: hashing is part of `alg`).
    /// `format` selects the ECDSA encoding and is ignored otherwise.
    fn sign(
        &self,
        key: &KeyRef,
        alg: SignatureAlgorithm,
        format: SignatureFormat,
        data: &[u8],
    ) -> Result<Vec<u8>>;

    /// Signs `digest`, a hash computed elsewhere (a remote-signing client
    /// such as a CSC `signatures/signHash` caller hashes what it signs):
    /// ECDSA only, ES256 over a SHA-256 digest and ES384 over SHA-384. A
    /// digest of another length is refused ([`KeyError::DigestLength`]);
    /// other algorithms give [`KeyError::AlgorithmNotSupportedHere`].
    fn sign_digest(
        &self,
        key: &KeyRef,
        alg: SignatureAlgorithm,
        format: SignatureFormat,
        digest: &[u8],
    ) -> Result<Vec<u8>>;

    /// Whether signing with `key` under `alg` is quick work on the calling
    /// thread: no I/O, and microseconds of CPU. Async callers then sign in
    /// place instead of handing the work to a blocking thread, which costs
    /// more than such a signature. `false` unless the backend knows.
    fn signs_in_place(&self, key: &KeyRef, alg: SignatureAlgorithm) -> bool {
        let _ = (key, alg);
        false
    }

    /// Destroys the key pair; afterwards every use gives `KeyNotFound`.
    fn destroy(&self, key: &KeyRef) -> Result<()>;

    /// Short backend name for logs and metrics (`"soft"`, `"pkcs11"`).
    fn name(&self) -> &'static str;

    /// Checks that the backend can serve now (for readiness probes), so a
    /// lost HSM or an unreadable key directory shows before a signature is
    /// needed. Errors are those an operation would give.
    fn check_health(&self) -> Result<()>;
}

/// Checks a label before it reaches a file header or CKA_LABEL.
pub(crate) fn check_label(label: &str) -> Result<()> {
    use crate::error::KeyError;
    if label.is_empty() {
        return Err(KeyError::InvalidLabel { reason: "empty" });
    }
    if label.len() > 128 {
        return Err(KeyError::InvalidLabel {
            reason: "longer than 128 bytes",
        });
    }
    if label.chars().any(char::is_control) {
        return Err(KeyError::InvalidLabel {
            reason: "contains control characters",
        });
    }
    Ok(())
}

/// Checks that `digest` fits `alg` for [`KeyBackend::sign_digest`].
pub(crate) fn check_digest(
    alg: SignatureAlgorithm,
    digest: &[u8],
    what: &'static str,
) -> Result<()> {
    use crate::error::KeyError;
    let expected = match alg {
        SignatureAlgorithm::Es256 => 32,
        SignatureAlgorithm::Es384 => 48,
        _ => return Err(KeyError::AlgorithmNotSupportedHere { alg, what }),
    };
    if digest.len() == expected {
        Ok(())
    } else {
        Err(KeyError::DigestLength {
            alg,
            expected,
            got: digest.len(),
        })
    }
}
