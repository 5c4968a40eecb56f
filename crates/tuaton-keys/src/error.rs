//! The one error type of this crate.
//!
//! Variants are named for the fault; each doc comment says whose fault it is.
//! No variant carries secret material: not the PIN, not the master key, not
//! key bytes. Reasons coming from a PKCS#11 module are its return-code names.

use std::path::PathBuf;

use crate::algorithm::{KeySpec, SignatureAlgorithm};

/// Result with [`KeyError`].
pub type Result<T, E = KeyError> = std::result::Result<T, E>;

/// What went wrong while generating, using or destroying a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The algorithm or key type name is not one Tuaton knows (caller's fault).
    #[error(transparent)]
    UnknownName(#[from] tuaton_core::AlgorithmError),
    /// The algorithm does not fit the key, e.g. ES256 with an RSA key
    /// (caller's fault).
    #[error("algorithm {alg} cannot be used with a {spec} key")]
    AlgorithmMismatch {
        /// Requested algorithm.
        alg: SignatureAlgorithm,
        /// The key's type.
        spec: KeySpec,
    },
    /// The adapter or backend cannot do this algorithm at all, e.g. rcgen has
    /// no RSA-PSS (caller's fault).
    #[error("{alg} is not supported by {what}")]
    AlgorithmNotSupportedHere {
        /// Requested algorithm.
        alg: SignatureAlgorithm,
        /// What refused it.
        what: &'static str,
    },
    /// A digest to sign does not have the length of the algorithm's hash
    /// (caller's fault).
    #[error("{alg} signs a digest of {expected} bytes, not {got}")]
    DigestLength {
        /// Requested algorithm.
        alg: SignatureAlgorithm,
        /// The hash's length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The token lacks a mechanism the algorithm needs (operator's choice of
    /// HSM or firmware).
    #[error("the PKCS#11 token does not offer mechanism {mechanism} needed for {spec}")]
    MechanismUnavailable {
        /// Mechanism name.
        mechanism: String,
        /// The key type that needs it.
        spec: KeySpec,
    },
    /// A key reference could not be parsed (caller's or configuration fault).
    #[error("invalid key reference: {reason}")]
    InvalidKeyRef {
        /// What is wrong with it.
        reason: String,
    },
    /// The key reference names another backend or token than this one
    /// (caller's or configuration fault).
    #[error("key {key_ref} belongs to another backend or token than {backend}")]
    ForeignKeyRef {
        /// The reference.
        key_ref: String,
        /// The backend that refused it.
        backend: &'static str,
    },
    /// No key with this reference exists (any more) in the backend: unknown,
    /// destroyed, or on another token (caller's or operator's fault).
    #[error("key not found: {key_ref}")]
    KeyNotFound {
        /// The reference.
        key_ref: String,
    },
    /// The label is empty, too long or has control characters (caller's
    /// fault).
    #[error("invalid key label: {reason}")]
    InvalidLabel {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The master key could not be read from its file or environment
    /// variable (operator's configuration).
    #[error("master key unavailable from {source_name}: {reason}")]
    MasterKeyUnavailable {
        /// File path or environment variable name (never the value).
        source_name: String,
        /// Why.
        reason: String,
    },
    /// The master key is not 32 bytes of hex, base64 or raw bytes
    /// (operator's configuration).
    #[error("master key from {source_name} is malformed: {reason}")]
    MalformedMasterKey {
        /// File path or environment variable name (never the value).
        source_name: String,
        /// Why (never includes the value).
        reason: &'static str,
    },
    /// The key was sealed under a different master key than the one
    /// configured (operator's configuration).
    #[error("key {key_ref} was sealed under a different master key")]
    WrongMasterKey {
        /// The reference.
        key_ref: String,
    },
    /// The sealed key file does not decrypt or parse although the master key
    /// matches: it was modified, truncated, or swapped with another key's
    /// file (attacker, or storage corruption).
    #[error("sealed key {key_ref} is corrupt or was tampered with")]
    SealedKeyCorrupt {
        /// The reference.
        key_ref: String,
    },
    /// Reading or writing the key directory failed (operator: permissions,
    /// disk).
    #[error("key store I/O error at {path}: {reason}")]
    KeyStoreIo {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },

    /// The PKCS#11 module (shared library) could not be loaded (operator's
    /// configuration or installation).
    #[error("PKCS#11 module not found or not loadable at {path}: {reason}")]
    ModuleNotFound {
        /// The configured module path.
        path: PathBuf,
        /// The loader's reason.
        reason: String,
    },
    /// No initialised token with this label is present when the backend
    /// starts (operator's configuration).
    #[error("no PKCS#11 token labelled {label:?}")]
    TokenNotFound {
        /// The configured token label.
        label: String,
    },
    /// The token refused the user PIN (operator's configuration). Not
    /// retried, so that a wrong PIN does not lock the token.
    #[error("the PKCS#11 token rejected the PIN")]
    WrongPin,
    /// The token's user PIN is locked after too many failures (operator must
    /// unlock it with the SO PIN).
    #[error("the PKCS#11 token's user PIN is locked")]
    PinLocked,
    /// The PIN could not be read from its file or environment variable
    /// (operator's configuration).
    #[error("PIN unavailable from {source_name}: {reason}")]
    PinUnavailable {
        /// File path or environment variable name (never the value).
        source_name: String,
        /// Why.
        reason: String,
    },
    /// The key backend cannot be reached right now: the HSM, its network
    /// proxy or the token went away and one reconnect did not help
    /// (infrastructure). Retrying later may succeed; see
    /// [`KeyError::is_retryable`].
    #[error("key backend unavailable: {reason}")]
    Unavailable {
        /// What failed (a PKCS#11 return-code name, or a description).
        reason: String,
    },
    /// The token failed an operation for a reason that reconnecting does not
    /// fix (HSM misbehaviour, or a bug in how we call it).
    #[error("PKCS#11 {function} failed: {code}")]
    Device {
        /// The PKCS#11 function.
        function: String,
        /// The return-code name.
        code: String,
    },

    /// A signature did not verify (peer's or attacker's input, or a bug).
    #[error("signature verification failed")]
    BadSignature,
    /// Public key bytes could not be parsed (peer's input or a bug).
    #[error("malformed public key: {reason}")]
    MalformedPublicKey {
        /// What is wrong.
        reason: &'static str,
    },
    /// A cryptographic primitive failed unexpectedly (bug, or a failing
    /// random number generator).
    #[error("cryptographic operation failed: {what}")]
    Crypto {
        /// Which operation.
        what: &'static str,
    },
}

impl KeyError {
    /// Whether the same call may succeed later without any change of
    /// configuration: true only when the backend is temporarily unreachable.
    pub fn is_retryable(&self) -> bool {
        matches!(self, KeyError::Unavailable { .. })
    }

    /// The stable code a front door answers with.
    pub fn code(&self) -> tuaton_core::ErrorCode {
        use tuaton_core::ErrorCode as C;
        match self {
            _ if self.is_retryable() => C::KeyBackendUnavailable,
            KeyError::UnknownName(_)
            | KeyError::InvalidKeyRef { .. }
            | KeyError::ForeignKeyRef { .. }
            | KeyError::InvalidLabel { .. }
            | KeyError::DigestLength { .. } => C::InvalidField,
            KeyError::AlgorithmMismatch { .. }
            | KeyError::AlgorithmNotSupportedHere { .. }
            | KeyError::MechanismUnavailable { .. } => C::KeyRefused,
            KeyError::KeyNotFound { .. } => C::NotFound,
            _ => C::InternalError,
        }
    }
}
