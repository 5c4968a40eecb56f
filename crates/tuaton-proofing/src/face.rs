//! Face comparison with liveness: the interface only.
//!
//! Tuaton has NO face matcher. Comparing faces and detecting presentation
//! attacks needs a certified product (tested against ISO/IEC 30107-3 for
//! liveness); writing one here, or a "matcher" that always says yes, would
//! make every level that depends on it a lie. This trait exists so such a
//! product can be plugged in later and so the decision table can already say
//! what its result is worth. Until one is plugged in, no proofing path that
//! needs a face match can be taken.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A live capture of the applicant's face, with whatever the matcher needs to
/// judge liveness (a video, a challenge-response sequence). Biometric data:
/// `Debug` shows only sizes; never log or store it.
#[derive(Clone)]
pub struct LiveCapture {
    /// The image or video bytes.
    pub media: Vec<u8>,
    /// Its media type, e.g. `image/jpeg`.
    pub media_type: String,
    /// Matcher-specific liveness material.
    pub liveness_evidence: Vec<u8>,
}

impl fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LiveCapture([redacted {} + {} bytes, {}])",
            self.media.len(),
            self.liveness_evidence.len(),
            self.media_type
        )
    }
}

/// Where a reference face came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceSource {
    /// The photo stored on the ID card's chip.
    CardChip,
    /// A photo supplied by the issuing registry.
    Registry,
}

/// The trusted face to compare against. Biometric data: `Debug` shows only the size.
#[derive(Clone)]
pub struct FaceReference {
    /// Image bytes.
    pub image: Vec<u8>,
    /// Where it came from.
    pub source: ReferenceSource,
}

impl fmt::Debug for FaceReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FaceReference([redacted {} bytes], {:?})",
            self.image.len(),
            self.source
        )
    }
}

/// The matcher's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceDecision {
    /// Same person, above the matcher's threshold.
    Match,
    /// Different person.
    NoMatch,
    /// Could not decide (poor image, partial face).
    Inconclusive,
}

/// The result of one comparison; stored in the audit record (no image data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceMatchResult {
    /// The matcher's name and version.
    pub matcher: String,
    /// Similarity score in the matcher's own scale (documented by the matcher).
    pub score: f32,
    /// Whether the capture passed the liveness (presentation-attack) check.
    pub liveness_passed: bool,
    /// The verdict.
    pub decision: FaceDecision,
    /// Where the reference face came from.
    pub reference: ReferenceSource,
}

impl FaceMatchResult {
    /// A match on a live capture: the only result that binds the applicant to the evidence.
    pub fn accepted(&self) -> bool {
        self.decision == FaceDecision::Match && self.liveness_passed
    }
}

/// Why a comparison could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaceMatchError {
    /// The capture is unusable (caller's fault: retake it).
    #[error("the capture cannot be used; take it again")]
    UnusableCapture,
    /// The matcher is down (try later).
    #[error("face comparison is unavailable; try later")]
    Unavailable,
}

/// Compares a live capture against a reference face, with liveness detection.
/// No implementation ships with Tuaton; see the module documentation.
#[async_trait]
pub trait FaceMatcher: Send + Sync {
    /// The matcher's name and version, for the audit record.
    fn name(&self) -> &str;

    /// Compares `live` with `reference`.
    async fn compare(
        &self,
        live: &LiveCapture,
        reference: &FaceReference,
    ) -> Result<FaceMatchResult, FaceMatchError>;
}

/// Where the trusted face of a citizen comes from: the population registry's
/// photo (DOPA's, behind its face-verification service) or the card chip's,
/// read by a reader the operator trusts. No implementation ships with
/// Tuaton, for the reason the module documentation gives.
#[async_trait]
pub trait FaceReferences: Send + Sync {
    /// The reference face for `citizen`; `None` if the source has none.
    async fn reference(
        &self,
        citizen: &tuaton_core::CitizenId,
    ) -> Result<Option<FaceReference>, FaceMatchError>;
}
