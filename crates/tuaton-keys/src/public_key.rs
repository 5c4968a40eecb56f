//! Public halves of backend keys: verification with ring and JWK export.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::{Value, json};

use crate::algorithm::{KeySpec, SignatureAlgorithm, SignatureFormat};
use crate::der;
use crate::error::{KeyError, Result};

/// The public key of a backend key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spec: KeySpec,
    /// The BIT STRING content of the SPKI: uncompressed point, Ed25519 bytes,
    /// or `RSAPublicKey` DER. This is also what ring's verifier takes.
    raw: Vec<u8>,
    spki: Vec<u8>,
}

impl PublicKey {
    /// Builds a public key from the raw form ring uses (see [`Self::raw`]),
    /// checking the length or structure fits `spec`.
    pub fn from_raw(spec: KeySpec, raw: Vec<u8>) -> Result<Self> {
        let ok = match spec {
            KeySpec::EcP256 => raw.len() == 65 && raw.first() == Some(&4),
            KeySpec::EcP384 => raw.len() == 97 && raw.first() == Some(&4),
            KeySpec::Ed25519 => raw.len() == 32,
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                match der::parse_rsa_public_key(&raw) {
                    Some((n, _)) => Some(n.len() * 8) == spec.rsa_bits(),
                    None => false,
                }
            }
        };
        if !ok {
            return Err(KeyError::MalformedPublicKey {
                reason: "public key does not match its key type",
            });
        }
        let spki = der::spki(spec, &raw);
        Ok(PublicKey { spec, raw, spki })
    }

    /// The key type.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// DER SubjectPublicKeyInfo (RFC 5280), for certificates and JWK `x5c`.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The subjectPublicKey bits: uncompressed EC point, 32 Ed25519 bytes, or
    /// `RSAPublicKey` DER.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Verifies `sig` over `msg` with ring. `format` matters for ECDSA only.
    pub fn verify(
        &self,
        alg: SignatureAlgorithm,
        format: SignatureFormat,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<()> {
        crate::algorithm::check_key(alg, self.spec)?;
        let verifier: &'static dyn VerificationAlgorithm = match (alg, format) {
            (SignatureAlgorithm::Es256, SignatureFormat::Raw) => {
                &signature::ECDSA_P256_SHA256_FIXED
            }
            (SignatureAlgorithm::Es256, SignatureFormat::Der) => &signature::ECDSA_P256_SHA256_ASN1,
            (SignatureAlgorithm::Es384, SignatureFormat::Raw) => {
                &signature::ECDSA_P384_SHA384_FIXED
            }
            (SignatureAlgorithm::Es384, SignatureFormat::Der) => &signature::ECDSA_P384_SHA384_ASN1,
            (SignatureAlgorithm::EdDsa, _) => &signature::ED25519,
            (SignatureAlgorithm::Rs256, _) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (SignatureAlgorithm::Ps256, _) => &signature::RSA_PSS_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(verifier, &self.raw)
            .verify(msg, sig)
            .map_err(|_| KeyError::BadSignature)
    }

    /// The key as a JWK (RFC 7517) with `kid` and `"use": "sig"`, for a JWKS.
    /// `alg` is included where the key type implies one algorithm (EC,
    /// Ed25519); RSA keys can serve RS256 and PS256, so it is left out.
    pub fn to_jwk(&self, kid: &str) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match self.spec {
            KeySpec::EcP256 | KeySpec::EcP384 => {
                let (crv, alg) = if self.spec == KeySpec::EcP256 {
                    ("P-256", "ES256")
                } else {
                    ("P-384", "ES384")
                };
                let coords = self.raw.get(1..).unwrap_or_default();
                let (x, y) = coords.split_at(coords.len() / 2);
                json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y),
                       "use": "sig", "alg": alg, "kid": kid})
            }
            KeySpec::Ed25519 => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&self.raw),
                                        "use": "sig", "alg": "EdDSA", "kid": kid}),
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                // from_raw checked the structure, so this parse succeeds.
                let (n, e) = der::parse_rsa_public_key(&self.raw).unwrap_or_default();
                json!({"kty": "RSA", "n": b64(n), "e": b64(e), "use": "sig", "kid": kid})
            }
        }
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("spec", &self.spec)
            .field("spki", &hex::encode(&self.spki))
            .finish()
    }
}
