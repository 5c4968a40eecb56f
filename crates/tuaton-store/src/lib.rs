//! Tuaton's storage.
//!
//! Scope: one [`Store`] over SQLite (the embedded default: a single WAL file
//! under the data directory) or PostgreSQL (for several `tuaton serve`
//! processes sharing state), chosen by URL; migrations for both engines run at
//! start; one module per table or aggregate; the append-only, hash-chained
//! [`audit`] log written in the same transaction as the change it records.
//!
//! Non-goals: keys (they live in a key backend, never here), protocol logic,
//! and caching. Every query is written once in SQL both engines accept; where
//! they differ (DDL), each engine has its own migration directory.

pub mod accounts;
pub mod agency_documents;
pub mod audit;
pub mod batch;
pub mod ceremonies;
pub mod certificates;
pub mod companies;
pub mod consents;
mod db;
mod error;
pub mod keys;
pub mod notifications;
pub mod oidc;
pub mod passkeys;
pub mod proofing;
pub mod recoveries;
pub mod secrets;
pub mod sessions;
pub mod signing;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use db::{Conn, Engine, Store, StoreOptions, Tx};
pub use error::StoreError;

/// Milliseconds since the Unix epoch, the form every timestamp takes in the database.
pub fn to_ms(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The inverse of [`to_ms`]; out-of-range values (which only a tampered row could hold) clamp to the epoch.
pub fn from_ms(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A time as audit details and messages show it (RFC 3339).
pub(crate) fn rfc3339(t: &time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// An account id read back from a row; anything else is corrupt.
pub(crate) fn stored_account_id(s: &str) -> Result<tuaton_core::AccountId, StoreError> {
    tuaton_core::AccountId::parse(s)
        .map_err(|_| StoreError::Corrupt("a stored account id is malformed".into()))
}

/// A new opaque id: 128 random bits, hex. Reveals nothing and cannot be guessed.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    // The system RNG failing is unrecoverable and vanishingly rare; an all-zero
    // id would then collide at once on the primary key rather than pass silently.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    hex::encode(b)
}
