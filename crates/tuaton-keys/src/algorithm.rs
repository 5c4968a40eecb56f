//! Key types and signature algorithms: the names are tuaton-core's; what
//! this crate adds is the encoding of a signature, a key type's byte in a
//! sealed key file, and the check that an algorithm fits a key.

use serde::{Deserialize, Serialize};
pub use tuaton_core::{KeySpec, SignatureAlgorithm};

use crate::error::KeyError;

/// How an ECDSA signature is encoded. Ignored for EdDSA and RSA, whose
/// signatures have one encoding only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignatureFormat {
    /// Fixed-length `r || s`, as JWS requires (RFC 7518 §3.4).
    Raw,
    /// DER `SEQUENCE { r INTEGER, s INTEGER }`, as X.509, CMS and OCSP require.
    Der,
}

/// The key type's byte in a sealed software key file.
pub(crate) fn spec_byte(spec: KeySpec) -> u8 {
    match spec {
        KeySpec::EcP256 => 1,
        KeySpec::EcP384 => 2,
        KeySpec::Ed25519 => 3,
        KeySpec::Rsa2048 => 4,
        KeySpec::Rsa3072 => 5,
        KeySpec::Rsa4096 => 6,
    }
}

/// The key type a sealed file's byte names.
pub(crate) fn spec_from_byte(b: u8) -> Option<KeySpec> {
    KeySpec::ALL.into_iter().find(|s| spec_byte(*s) == b)
}

/// Fails with [`KeyError::AlgorithmMismatch`] unless a key of type `spec` can sign with `alg`.
pub(crate) fn check_key(alg: SignatureAlgorithm, spec: KeySpec) -> Result<(), KeyError> {
    if alg.accepts(spec) {
        Ok(())
    } else {
        Err(KeyError::AlgorithmMismatch { alg, spec })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_spec_bytes_round_trip() {
        for spec in KeySpec::ALL {
            assert_eq!(spec_from_byte(spec_byte(spec)), Some(spec));
        }
        assert_eq!(spec_from_byte(0), None);
    }
}
