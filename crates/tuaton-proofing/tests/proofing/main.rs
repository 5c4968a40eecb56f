//! Integration tests for tuaton-proofing, in one binary to save link time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod businesses;
mod decisions;
mod soap_connector;

use tuaton_core::CitizenId;
use tuaton_proofing::{CitizenEvidence, DevRegistry};

/// Evidence of a fictional person from keys-dev/registry/people.json.
pub fn evidence_of(pid: &str) -> CitizenEvidence {
    let registry = DevRegistry::embedded().unwrap();
    registry
        .person(&CitizenId::parse(pid).unwrap())
        .unwrap()
        .evidence()
}

/// Somchai Jaidee: valid card, born 1964-02-22, laser JT0-1234567-89.
pub const SOMCHAI: &str = "1999000000017";
/// Somying Rakthai: valid card.
pub const SOMYING: &str = "1999000000025";
/// Nattawut Phromma: card revoked.
pub const NATTAWUT_REVOKED: &str = "1999000000092";
