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

pub mod audit;
mod db;
mod error;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use db::{Engine, Store, StoreOptions, Tx};
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
