//! Key types and signature algorithms, as every crate names them.
//!
//! They live here, beside the other domain values, so that storage and
//! configuration can name an algorithm without depending on the key
//! backends that compute with it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A name that is not an algorithm or key type Tuaton knows. The caller's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlgorithmError {
    /// The algorithm name is not one Tuaton signs with.
    #[error("unsupported signature algorithm {name:?}")]
    UnsupportedAlgorithm {
        /// The name as given (truncated).
        name: String,
    },
    /// The key type name is not known.
    #[error("unknown key type {input:?}")]
    UnknownKeySpec {
        /// The name as given (truncated).
        input: String,
    },
}

/// The type and size of a key pair a backend generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeySpec {
    /// ECDSA on NIST P-256 (secp256r1).
    #[serde(rename = "ec-p256")]
    EcP256,
    /// ECDSA on NIST P-384 (secp384r1).
    #[serde(rename = "ec-p384")]
    EcP384,
    /// Ed25519 (RFC 8032).
    #[serde(rename = "ed25519")]
    Ed25519,
    /// RSA with a 2048-bit modulus.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl KeySpec {
    /// Every key spec, in a stable order.
    pub const ALL: [KeySpec; 6] = [
        KeySpec::EcP256,
        KeySpec::EcP384,
        KeySpec::Ed25519,
        KeySpec::Rsa2048,
        KeySpec::Rsa3072,
        KeySpec::Rsa4096,
    ];

    /// The stable name used in configuration, the database and key files.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySpec::EcP256 => "ec-p256",
            KeySpec::EcP384 => "ec-p384",
            KeySpec::Ed25519 => "ed25519",
            KeySpec::Rsa2048 => "rsa-2048",
            KeySpec::Rsa3072 => "rsa-3072",
            KeySpec::Rsa4096 => "rsa-4096",
        }
    }

    /// RSA modulus size in bits, or `None` for elliptic-curve keys.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeySpec::Rsa2048 => Some(2048),
            KeySpec::Rsa3072 => Some(3072),
            KeySpec::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The algorithm to use when a caller names only the key type.
    pub fn default_algorithm(self) -> SignatureAlgorithm {
        match self {
            KeySpec::EcP256 => SignatureAlgorithm::Es256,
            KeySpec::EcP384 => SignatureAlgorithm::Es384,
            KeySpec::Ed25519 => SignatureAlgorithm::EdDsa,
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => SignatureAlgorithm::Rs256,
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeySpec {
    type Err = AlgorithmError;

    fn from_str(s: &str) -> Result<Self, AlgorithmError> {
        KeySpec::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| AlgorithmError::UnknownKeySpec {
                input: s.chars().take(32).collect(),
            })
    }
}

/// A signature algorithm, named as in JOSE (RFC 7518, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignatureAlgorithm {
    /// ECDSA P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// ECDSA P-384 with SHA-384.
    #[serde(rename = "ES384")]
    Es384,
    /// Ed25519 (pure EdDSA).
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    #[serde(rename = "PS256")]
    Ps256,
}

impl SignatureAlgorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [SignatureAlgorithm; 5] = [
        SignatureAlgorithm::Es256,
        SignatureAlgorithm::Es384,
        SignatureAlgorithm::EdDsa,
        SignatureAlgorithm::Rs256,
        SignatureAlgorithm::Ps256,
    ];

    /// The JOSE `alg` name.
    pub fn jose_name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Es256 => "ES256",
            SignatureAlgorithm::Es384 => "ES384",
            SignatureAlgorithm::EdDsa => "EdDSA",
            SignatureAlgorithm::Rs256 => "RS256",
            SignatureAlgorithm::Ps256 => "PS256",
        }
    }

    /// Whether a key of type `spec` can make signatures of this algorithm.
    pub fn accepts(self, spec: KeySpec) -> bool {
        self.key_specs().contains(&spec)
    }

    /// The key types this algorithm works with.
    pub fn key_specs(self) -> &'static [KeySpec] {
        match self {
            SignatureAlgorithm::Es256 => &[KeySpec::EcP256],
            SignatureAlgorithm::Es384 => &[KeySpec::EcP384],
            SignatureAlgorithm::EdDsa => &[KeySpec::Ed25519],
            SignatureAlgorithm::Rs256 | SignatureAlgorithm::Ps256 => {
                &[KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096]
            }
        }
    }

    /// Whether the algorithm is ECDSA, whose signatures have two encodings
    /// (fixed-length for JWS, DER for X.509 and CMS).
    pub fn is_ecdsa(self) -> bool {
        matches!(self, SignatureAlgorithm::Es256 | SignatureAlgorithm::Es384)
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jose_name())
    }
}

impl FromStr for SignatureAlgorithm {
    type Err = AlgorithmError;

    /// Parses the JOSE name exactly (JOSE names are case-sensitive).
    fn from_str(s: &str) -> Result<Self, AlgorithmError> {
        SignatureAlgorithm::ALL
            .into_iter()
            .find(|a| a.jose_name() == s)
            .ok_or_else(|| AlgorithmError::UnsupportedAlgorithm {
                name: s.chars().take(32).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jose_names_round_trip_and_are_case_sensitive() {
        for alg in SignatureAlgorithm::ALL {
            assert_eq!(
                alg.to_string().parse::<SignatureAlgorithm>().ok(),
                Some(alg)
            );
        }
        assert!("es256".parse::<SignatureAlgorithm>().is_err());
        assert!("none".parse::<SignatureAlgorithm>().is_err());
    }

    #[test]
    fn each_algorithm_accepts_only_its_key_types() {
        assert!(SignatureAlgorithm::Es256.accepts(KeySpec::EcP256));
        assert!(!SignatureAlgorithm::Es256.accepts(KeySpec::EcP384));
        assert!(SignatureAlgorithm::Ps256.accepts(KeySpec::Rsa4096));
        assert!(!SignatureAlgorithm::EdDsa.accepts(KeySpec::Rsa2048));
    }

    #[test]
    fn key_specs_round_trip() {
        for spec in KeySpec::ALL {
            assert_eq!(spec.as_str().parse::<KeySpec>().ok(), Some(spec));
        }
    }
}
