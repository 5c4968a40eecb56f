//! The card-status check: is this ID card valid, and do these details match it?
//!
//! Shaped after DOPA's `CheckCardByLaser`: five inputs (PID, Thai first and last
//! name, Buddhist-era birth date, laser code) and an answer that carries no
//! personal data. DOPA answers with a numeric `Code`: 0 the card is valid and
//! every field matches, 4 the laser code is not found for this PID *or* some
//! field does not match, 5 the input is incomplete; `IsError`/`ErrorMessage`
//! report a failure of the service itself.
//!
//! Code 4 conflates "no such card" with "details differ". Both refuse the
//! proofing attempt and neither is the citizen's fault to debug through us, so
//! the distinction only shapes the message and the audit record: a connector
//! reports [`CardStatus::NotFound`] when the registry's description says the
//! card was not found (Thai "ไม่พบ" or English "not found") and
//! [`CardStatus::Mismatch`] otherwise. The raw code and description are kept in
//! [`RegistryRawAnswer`] either way, so the audit record never depends on that
//! guess.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tuaton_core::Clock;

use crate::evidence::{CitizenEvidence, EvidenceDigest};

/// The five inputs of a card-status check, as the registry receives them.
///
/// A wire-level value: fields are plain strings so a connector can pass on
/// whatever it was given and let the registry judge completeness (DOPA's code
/// 5). Build it from checked evidence with [`Self::from_evidence`]. `Debug`
/// redacts everything; the query is personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct CardStatusQuery {
    /// `PID`: thirteen digits, no separators.
    pub pid: String,
    /// `FirstName`: Thai given name.
    pub first_name: String,
    /// `LastName`: Thai family name.
    pub last_name: String,
    /// `BirthDay`: Buddhist-era `YYYYMMDD`, `00` for unknown parts.
    pub birth_day: String,
    /// `Laser`: twelve characters, no dashes.
    pub laser: String,
}

impl CardStatusQuery {
    /// The query for checked evidence.
    pub fn from_evidence(e: &CitizenEvidence) -> Self {
        Self {
            pid: e.citizen_id.compact(),
            first_name: e.thai_name.given().to_owned(),
            last_name: e.thai_name.family().to_owned(),
            birth_day: e.birth_date.buddhist_era(),
            laser: e.laser_code.compact(),
        }
    }

    /// Whether any field is empty after trimming (what DOPA answers with code 5).
    pub fn is_incomplete(&self) -> bool {
        [
            &self.pid,
            &self.first_name,
            &self.last_name,
            &self.birth_day,
            &self.laser,
        ]
        .iter()
        .any(|f| f.trim().is_empty())
    }
}

impl fmt::Debug for CardStatusQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardStatusQuery([redacted])")
    }
}

/// Why the registry could not give an answer. Never the citizen's fault; the
/// right response is "try again later".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UnavailableReason {
    /// No answer within the request timeout.
    Timeout,
    /// Could not connect, or the connection broke.
    Transport,
    /// The registry answered with an HTTP 5xx status.
    ServerError {
        /// The HTTP status code.
        status: u16,
    },
    /// The registry answered with an HTTP status we do not expect (not 2xx or 5xx).
    UnexpectedStatus {
        /// The HTTP status code.
        status: u16,
    },
    /// The body was not the SOAP response we expect (or was too large).
    MalformedResponse,
    /// The registry reported its own error (`IsError` true, or a SOAP fault).
    RegistryError,
    /// A `Code` this connector does not know; never read as valid.
    UnknownCode {
        /// The code received.
        code: i64,
    },
    /// The circuit breaker is open after repeated failures; no request was sent.
    CircuitOpen,
}

impl fmt::Display for UnavailableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("the registry did not answer in time"),
            Self::Transport => f.write_str("the registry could not be reached"),
            Self::ServerError { status } => write!(f, "the registry failed (HTTP {status})"),
            Self::UnexpectedStatus { status } => write!(f, "the registry answered HTTP {status}"),
            Self::MalformedResponse => f.write_str("the registry's answer could not be read"),
            Self::RegistryError => f.write_str("the registry reported an internal error"),
            Self::UnknownCode { code } => {
                write!(f, "the registry answered with unknown code {code}")
            }
            Self::CircuitOpen => {
                f.write_str("the registry is failing; checks are paused for a while")
            }
        }
    }
}

/// The meaning of a card-status answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CardStatus {
    /// The card is valid and every field matches (DOPA code 0).
    Valid,
    /// No valid card with this laser code for this PID (DOPA code 4, "not found").
    NotFound,
    /// The card exists but a field does not match (DOPA code 4, otherwise).
    Mismatch,
    /// A required field was empty (DOPA code 5).
    Incomplete,
    /// No answer could be had; try later. Never treated as a pass.
    Unavailable {
        /// Why.
        reason: UnavailableReason,
    },
}

impl CardStatus {
    /// Whether this is a definite answer from the registry (anything but `Unavailable`).
    pub fn is_definite(&self) -> bool {
        !matches!(self, Self::Unavailable { .. })
    }

    /// A short stable name for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::NotFound => "not_found",
            Self::Mismatch => "mismatch",
            Self::Incomplete => "incomplete",
            Self::Unavailable { .. } => "unavailable",
        }
    }
}

/// What the registry literally said, kept for the audit record. Contains no
/// personal data: DOPA's answer never echoes the query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRawAnswer {
    /// `IsError`, when the answer had one.
    pub is_error: Option<bool>,
    /// `ErrorMessage`, when non-empty.
    pub error_message: Option<String>,
    /// `Code`, when present and numeric.
    pub code: Option<i64>,
    /// `Desc`, when non-empty.
    pub desc: Option<String>,
    /// HTTP status, for HTTP connectors.
    pub http_status: Option<u16>,
}

/// A card-status answer: its meaning and the raw fields behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardStatusAnswer {
    /// What the answer means.
    pub status: CardStatus,
    /// What the registry literally said (empty when nothing was received).
    pub raw: RegistryRawAnswer,
}

impl CardStatusAnswer {
    /// An `Unavailable` answer with nothing received.
    pub fn unavailable(reason: UnavailableReason) -> Self {
        Self {
            status: CardStatus::Unavailable { reason },
            raw: RegistryRawAnswer::default(),
        }
    }
}

/// DOPA's numeric codes.
pub mod dopa_code {
    /// Card valid, all fields match.
    pub const VALID: i64 = 0;
    /// Laser code not found for this PID, or data mismatch.
    pub const NOT_FOUND_OR_MISMATCH: i64 = 4;
    /// Incomplete input.
    pub const INCOMPLETE: i64 = 5;
}

/// Interprets DOPA's `IsError`/`Code`/`Desc`. Anything unexpected is
/// `Unavailable`, never `Valid`.
pub fn interpret_dopa(raw: &RegistryRawAnswer) -> CardStatus {
    if raw.is_error != Some(false) {
        // A missing IsError is as suspect as a true one.
        return CardStatus::Unavailable {
            reason: if raw.is_error == Some(true) {
                UnavailableReason::RegistryError
            } else {
                UnavailableReason::MalformedResponse
            },
        };
    }
    match raw.code {
        Some(dopa_code::VALID) => CardStatus::Valid,
        Some(dopa_code::NOT_FOUND_OR_MISMATCH) => {
            if raw.desc.as_deref().is_some_and(desc_says_not_found) {
                CardStatus::NotFound
            } else {
                CardStatus::Mismatch
            }
        }
        Some(dopa_code::INCOMPLETE) => CardStatus::Incomplete,
        Some(code) => CardStatus::Unavailable {
            reason: UnavailableReason::UnknownCode { code },
        },
        None => CardStatus::Unavailable {
            reason: UnavailableReason::MalformedResponse,
        },
    }
}

fn desc_says_not_found(desc: &str) -> bool {
    desc.contains("ไม่พบ") || desc.to_ascii_lowercase().contains("not found")
}

/// A registry that answers card-status checks.
#[async_trait]
pub trait CardStatusRegistry: Send + Sync {
    /// A stable name for logs and the audit record (e.g. `dev-registry`, `dopa-soap`).
    fn name(&self) -> &str;

    /// Checks a card. Never fails: a registry that cannot answer says
    /// [`CardStatus::Unavailable`].
    async fn check(&self, q: &CardStatusQuery) -> CardStatusAnswer;
}

/// A completed card-status check, tied to the evidence it was about.
///
/// Made only by [`check_card`] (or restored from storage with serde), so a
/// decision can confirm the check concerned the same evidence it decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryCheck {
    connector: String,
    answer: CardStatusAnswer,
    evidence_digest: EvidenceDigest,
    #[serde(with = "time::serde::rfc3339")]
    checked_at: OffsetDateTime,
}

impl RegistryCheck {
    /// The connector's name.
    pub fn connector(&self) -> &str {
        &self.connector
    }
    /// The answer.
    pub fn answer(&self) -> &CardStatusAnswer {
        &self.answer
    }
    /// Digest of the evidence that was checked.
    pub fn evidence_digest(&self) -> &EvidenceDigest {
        &self.evidence_digest
    }
    /// When the check finished.
    pub fn checked_at(&self) -> OffsetDateTime {
        self.checked_at
    }
}

/// Runs a card-status check for `evidence` and records who answered what, when.
pub async fn check_card(
    registry: &dyn CardStatusRegistry,
    evidence: &CitizenEvidence,
    clock: &dyn Clock,
) -> RegistryCheck {
    let answer = registry
        .check(&CardStatusQuery::from_evidence(evidence))
        .await;
    RegistryCheck {
        connector: registry.name().to_owned(),
        answer,
        evidence_digest: evidence.evidence_digest(),
        checked_at: clock.now(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(is_error: Option<bool>, code: Option<i64>, desc: &str) -> RegistryRawAnswer {
        RegistryRawAnswer {
            is_error,
            code,
            desc: (!desc.is_empty()).then(|| desc.to_owned()),
            ..Default::default()
        }
    }

    #[test]
    fn dopa_codes_map_to_answers() {
        assert_eq!(
            interpret_dopa(&raw(Some(false), Some(0), "สถานะปกติ")),
            CardStatus::Valid
        );
        assert_eq!(
            interpret_dopa(&raw(Some(false), Some(5), "")),
            CardStatus::Incomplete
        );
        assert_eq!(
            interpret_dopa(&raw(Some(false), Some(4), "ไม่พบข้อมูลบัตรตามเลขหลังบัตร")),
            CardStatus::NotFound
        );
        assert_eq!(
            interpret_dopa(&raw(Some(false), Some(4), "Card NOT FOUND")),
            CardStatus::NotFound
        );
        assert_eq!(
            interpret_dopa(&raw(Some(false), Some(4), "ข้อมูลไม่ตรง")),
            CardStatus::Mismatch
        );
        assert_eq!(
            interpret_dopa(&raw(Some(false), Some(4), "")),
            CardStatus::Mismatch
        );
    }

    #[test]
    fn nothing_unexpected_is_ever_valid() {
        let unavailable =
            |r: &RegistryRawAnswer| matches!(interpret_dopa(r), CardStatus::Unavailable { .. });
        assert!(unavailable(&raw(Some(true), Some(0), "")));
        assert!(unavailable(&raw(None, Some(0), "")));
        assert!(unavailable(&raw(Some(false), None, "")));
        assert!(unavailable(&raw(Some(false), Some(1), "")));
        assert!(unavailable(&raw(Some(false), Some(-1), "")));
    }

    #[test]
    fn answers_serialise_for_the_audit_record() {
        let a = CardStatusAnswer::unavailable(UnavailableReason::ServerError { status: 503 });
        let j = serde_json::to_value(&a).unwrap();
        assert_eq!(j["status"]["status"], "unavailable");
        assert_eq!(j["status"]["reason"]["kind"], "server_error");
        assert_eq!(j["status"]["reason"]["status"], 503);
        assert_eq!(serde_json::from_value::<CardStatusAnswer>(j).unwrap(), a);
        let q = CardStatusQuery {
            pid: "1999000000017".into(),
            first_name: "สมชาย".into(),
            last_name: "ใจดี".into(),
            birth_day: "25070222".into(),
            laser: "JT0123456789".into(),
        };
        assert_eq!(format!("{q:?}"), "CardStatusQuery([redacted])");
    }
}
