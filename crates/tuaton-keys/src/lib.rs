//! Key custody for Tuaton: where private keys live and how they sign.
//!
//! Scope:
//! - the [`KeyBackend`] trait every signer goes through (id tokens, the CA,
//!   per-user signing keys, TSA, OCSP, the audit anchor);
//! - the algorithms Tuaton signs with ([`SignatureAlgorithm`]: ES256, ES384,
//!   EdDSA, RS256, PS256) and the key types behind them ([`KeySpec`]);
//! - [`SoftwareBackend`]: keys sealed at rest with AES-256-GCM under a
//!   [`MasterKey`], signing with ring (development and small deployments);
//! - [`Pkcs11Backend`]: keys generated inside a PKCS#11 token (an HSM, or
//!   SoftHSM2 in tests) as sensitive and non-extractable, a session pool for
//!   concurrent signing, and transparent recovery when sessions die;
//! - [`KeyRef`], the stable printable name of a key (`soft:<id>` or an
//!   RFC 7512 `pkcs11:` URI), and [`PublicKey`] with verification and JWK
//!   export;
//! - an adapter so rcgen signs certificates and CRLs with a backend key
//!   ([`BackendSigningKey`]).
//!
//! Non-goals:
//! - key lifecycle state (pending → active → retiring → retired → destroyed),
//!   purposes and rotation windows: they live in tuaton-store and the
//!   `tuaton keys` commands; this crate only generates, signs and destroys;
//! - asynchronous APIs: PKCS#11 blocks in C anyway and the consumers (rcgen,
//!   the `cms` builder) are synchronous; async callers use `spawn_blocking`;
//! - importing or exporting private keys: no function here returns private
//!   key bytes, and none accepts them from outside.
//!
//! Secrets (master key, PIN, plaintext PKCS#8) are held in `Zeroizing`
//! buffers, print `[redacted]` under `Debug`, and never appear in a
//! [`KeyError`].

mod algorithm;
mod backend;
mod der;
mod error;
mod key_ref;
pub mod pkcs11;
mod public_key;
mod rcgen_adapter;
pub mod secret_env;
pub mod soft;
#[cfg(feature = "testing")]
pub mod testing;

pub use algorithm::{KeySpec, SignatureAlgorithm, SignatureFormat};
pub use backend::KeyBackend;
pub use error::{KeyError, Result};
pub use key_ref::KeyRef;
pub use pkcs11::{Pin, Pkcs11Backend, Pkcs11Config};
pub use public_key::PublicKey;
pub use rcgen_adapter::BackendSigningKey;
pub use soft::{MasterKey, SoftwareBackend};
