//! Lets rcgen sign certificates, CSRs and CRLs with a backend key.

use std::sync::Arc;

use crate::algorithm::{KeySpec, SignatureAlgorithm, SignatureFormat};
use crate::backend::KeyBackend;
use crate::error::{KeyError, Result};
use crate::key_ref::KeyRef;
use crate::public_key::PublicKey;

/// A (backend, key, algorithm) triple implementing rcgen's [`rcgen::SigningKey`].
///
/// rcgen 0.14 has no RSA-PSS signature algorithm, so PS256 is refused at
/// construction; ES256, ES384, EdDSA and RS256 work. The public key is read
/// once, at construction.
pub struct BackendSigningKey {
    backend: Arc<dyn KeyBackend>,
    key: KeyRef,
    alg: SignatureAlgorithm,
    public: PublicKey,
    rcgen_alg: &'static rcgen::SignatureAlgorithm,
}

impl BackendSigningKey {
    /// Reads the public key of `key` and checks `alg` fits it and rcgen.
    pub fn new(backend: Arc<dyn KeyBackend>, key: KeyRef, alg: SignatureAlgorithm) -> Result<Self> {
        let public = backend.public_key(&key)?;
        crate::algorithm::check_key(alg, public.spec())?;
        let rcgen_alg = match alg {
            SignatureAlgorithm::Es256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            SignatureAlgorithm::Es384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            SignatureAlgorithm::EdDsa => &rcgen::PKCS_ED25519,
            SignatureAlgorithm::Rs256 => &rcgen::PKCS_RSA_SHA256,
            SignatureAlgorithm::Ps256 => {
                return Err(KeyError::AlgorithmNotSupportedHere {
                    alg,
                    what: "rcgen 0.14",
                });
            }
        };
        Ok(BackendSigningKey {
            backend,
            key,
            alg,
            public,
            rcgen_alg,
        })
    }

    /// The key reference.
    pub fn key_ref(&self) -> &KeyRef {
        &self.key
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key type.
    pub fn spec(&self) -> KeySpec {
        self.public.spec()
    }
}

impl rcgen::PublicKeyData for BackendSigningKey {
    fn der_bytes(&self) -> &[u8] {
        self.public.raw()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.rcgen_alg
    }
}

impl rcgen::SigningKey for BackendSigningKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // X.509 wants DER-encoded ECDSA signatures. rcgen's error type has no
        // room for a reason; callers that need it should sign through the
        // backend directly.
        self.backend
            .sign(&self.key, self.alg, SignatureFormat::Der, msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

impl std::fmt::Debug for BackendSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendSigningKey")
            .field("backend", &self.backend.name())
            .field("key", &self.key)
            .field("alg", &self.alg)
            .finish()
    }
}
