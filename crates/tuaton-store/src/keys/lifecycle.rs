//! The lifecycle's rules: purposes, states and the moves between them, and
//! the decisions (a rotation's plan, the transitions due, whether a key may
//! be retired or destroyed) as pure functions of the keys and a time. The
//! parent module applies them to the table.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use tuaton_core::{AccountId, SignatureAlgorithm};

use super::{KeysError, NewKey};
use crate::StoreError;

/// How long a retiring key stays published after it stopped signing, even if
/// no expiry was recorded for it: covers a signature made by a process that
/// read the key just before the switch and has not yet recorded its expiry.
pub const RETIRING_GRACE: Duration = Duration::minutes(5);

/// Default pre-publication window: a day, longer than any sensible JWKS cache
/// lifetime, so every relying party has fetched the new key before it signs.
pub const DEFAULT_PREPUBLISH: Duration = Duration::days(1);

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyPurpose {
    /// Signs OpenID Connect id tokens (published in the JWKS).
    IdToken,
    /// The root of the CA hierarchy: certifies the issuing CAs only.
    RootCa,
    /// An issuing certificate authority: certifies signers and responders.
    DocumentCa,
    /// The service's own document-signing key.
    Signer,
    /// RFC 3161 time-stamping authority.
    Tsa,
    /// OCSP responder.
    Ocsp,
    /// Signs anchors of the audit chain.
    AuditAnchor,
    /// A citizen's or company's own signing key; one account each.
    UserSigning,
}

impl KeyPurpose {
    /// Every purpose, in a stable order.
    pub const ALL: [KeyPurpose; 8] = [
        KeyPurpose::IdToken,
        KeyPurpose::RootCa,
        KeyPurpose::DocumentCa,
        KeyPurpose::Signer,
        KeyPurpose::Tsa,
        KeyPurpose::Ocsp,
        KeyPurpose::AuditAnchor,
        KeyPurpose::UserSigning,
    ];

    /// The stored and command-line form.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::IdToken => "id-token",
            KeyPurpose::RootCa => "root-ca",
            KeyPurpose::DocumentCa => "document-ca",
            KeyPurpose::Signer => "signer",
            KeyPurpose::Tsa => "tsa",
            KeyPurpose::Ocsp => "ocsp",
            KeyPurpose::AuditAnchor => "audit-anchor",
            KeyPurpose::UserSigning => "user-signing",
        }
    }

    /// Whether keys of this purpose belong to one account (and are created by
    /// the signing service, not rotated by operators).
    pub fn is_per_account(self) -> bool {
        self == KeyPurpose::UserSigning
    }

    /// Whether the purpose keeps a line of keys per algorithm: ID tokens
    /// only, where each relying party names the algorithm it verifies
    /// (ES256 by default, RS256 or PS256 for software that needs them).
    /// Every other purpose has one line, and a rotation to another
    /// algorithm replaces its key.
    pub fn has_algorithm_lines(self) -> bool {
        self == KeyPurpose::IdToken
    }

    /// The algorithm line `algorithm` is kept in: itself for a purpose
    /// with lines, the one line (`""`) otherwise.
    pub fn line(self, algorithm: SignatureAlgorithm) -> &'static str {
        if self.has_algorithm_lines() {
            algorithm.jose_name()
        } else {
            ""
        }
    }

    pub(super) fn parse_stored(s: &str) -> Result<Self, StoreError> {
        s.parse()
            .map_err(|_| StoreError::Corrupt(format!("unknown key purpose `{s}`")))
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A purpose name that is not one of [`KeyPurpose::ALL`]. Caller's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key purpose {input:?}; accepted: {}", accepted_purposes())]
pub struct UnknownPurpose {
    /// The name as given (truncated).
    pub input: String,
}

fn accepted_purposes() -> String {
    KeyPurpose::ALL
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for KeyPurpose {
    type Err = UnknownPurpose;

    fn from_str(s: &str) -> Result<Self, UnknownPurpose> {
        KeyPurpose::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPurpose {
                input: s.chars().take(40).collect(),
            })
    }
}

/// Where a key is in its life. States only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published (pre-publication), signs nothing yet.
    Pending,
    /// Published and the one key of its purpose that signs.
    Active,
    /// Published, signs nothing; kept until what it signed has expired.
    Retiring,
    /// Not published, signs nothing; the material still exists.
    Retired,
    /// The material is gone (or being removed) from the backend.
    Destroyed,
}

impl KeyState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
            KeyState::Destroyed => "destroyed",
        }
    }

    /// Whether the public key belongs in the JWKS (and other verifier-facing lists).
    pub fn is_published(self) -> bool {
        matches!(
            self,
            KeyState::Pending | KeyState::Active | KeyState::Retiring
        )
    }

    /// Whether `self → to` is a move the lifecycle allows: `pending → active`,
    /// `active → retiring`, `retiring → retired`, and anything not yet
    /// destroyed `→ destroyed` (a compromised key must be destroyable at any
    /// point; the policy in [`check_destroy`] decides when it may be).
    pub fn check_transition(self, to: KeyState) -> Result<(), TransitionError> {
        use KeyState::*;
        match (self, to) {
            (Pending, Active) | (Active, Retiring) | (Retiring, Retired) => Ok(()),
            (from, Destroyed) if from != Destroyed => Ok(()),
            (from, to) if from == to => Err(TransitionError::Unchanged { state: from }),
            (from, to) if to < from => Err(TransitionError::Backwards { from, to }),
            (Pending, to) => Err(TransitionError::Skips {
                from: Pending,
                to,
                why: "it never signed anything; destroy it instead",
            }),
            (Active, to) => Err(TransitionError::Skips {
                from: Active,
                to,
                why: "it must stay published as retiring while what it signed is valid",
            }),
            (from, to) => Err(TransitionError::Skips {
                from,
                to,
                why: "not a lifecycle step",
            }),
        }
    }

    pub(super) fn parse_stored(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(KeyState::Pending),
            "active" => Ok(KeyState::Active),
            "retiring" => Ok(KeyState::Retiring),
            "retired" => Ok(KeyState::Retired),
            "destroyed" => Ok(KeyState::Destroyed),
            other => Err(StoreError::Corrupt(format!("unknown key state `{other}`"))),
        }
    }

    /// The column that records when this state was reached.
    pub(super) fn time_column(self) -> &'static str {
        match self {
            KeyState::Pending => "created_ms",
            KeyState::Active => "activated_ms",
            KeyState::Retiring => "retiring_ms",
            KeyState::Retired => "retired_ms",
            KeyState::Destroyed => "destroyed_ms",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A state change the lifecycle does not allow. Caller's (or operator's) request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The key is already in that state.
    #[error("the key is already {state}")]
    Unchanged {
        /// Its state.
        state: KeyState,
    },
    /// The move goes back in the lifecycle.
    #[error("a {from} key cannot become {to}: states only move forward")]
    Backwards {
        /// Current state.
        from: KeyState,
        /// Requested state.
        to: KeyState,
    },
    /// The move skips a step that protects verifiers.
    #[error("a {from} key cannot become {to} directly: {why}")]
    Skips {
        /// Current state.
        from: KeyState,
        /// Requested state.
        to: KeyState,
        /// Why the step matters.
        why: &'static str,
    },
}

/// A key as recorded in the lifecycle table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagedKey {
    /// Opaque id; also the JWK `kid`.
    pub id: String,
    /// What it is for.
    pub purpose: KeyPurpose,
    /// The owning account, for per-account keys only.
    pub account_id: Option<AccountId>,
    /// Where it is in its life.
    pub state: KeyState,
    /// The algorithm it signs with (stored and shown as its JOSE name).
    pub algorithm: SignatureAlgorithm,
    /// Backend name (`soft`, `pkcs11`).
    pub backend: String,
    /// The backend's reference for the key (`soft:…`, `pkcs11:…`).
    pub key_ref: String,
    /// When it was generated (and published).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// End of pre-publication: it signs only after this.
    #[serde(with = "time::serde::rfc3339")]
    pub activate_after: OffsetDateTime,
    /// When it became active.
    #[serde(with = "time::serde::rfc3339::option")]
    pub activated_at: Option<OffsetDateTime>,
    /// When it stopped signing.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retiring_at: Option<OffsetDateTime>,
    /// When it was unpublished.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
    /// When it was destroyed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub destroyed_at: Option<OffsetDateTime>,
    /// The last expiry of anything it signed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub verify_until: Option<OffsetDateTime>,
    /// Why it was destroyed or forced out early, if an operator said.
    pub destroy_reason: Option<String>,
}

impl ManagedKey {
    /// When a retiring key may be retired: after what it signed has expired
    /// and the grace after it stopped signing. `None` unless retiring.
    pub fn retire_due_at(&self) -> Option<OffsetDateTime> {
        if self.state != KeyState::Retiring {
            return None;
        }
        let grace_end = self.retiring_at.map(|t| t + RETIRING_GRACE);
        Some(match (self.verify_until, grace_end) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => self.created_at,
        })
    }
}

/// What a rotation will do, decided before anything is generated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationPlan {
    /// The purpose rotated.
    pub purpose: KeyPurpose,
    /// The new key's algorithm.
    pub algorithm: SignatureAlgorithm,
    /// When the new key starts signing.
    #[serde(with = "time::serde::rfc3339")]
    pub activate_after: OffsetDateTime,
    /// The active key it will replace, if any.
    pub replaces: Option<String>,
}

impl RotationPlan {
    /// Plans rotating `purpose`'s line of `algorithm` keys (its one line,
    /// for a purpose without lines per algorithm) given the current keys. The new key is pre-published for `prepublish`; with no active
    /// key in the line there is nothing to protect (and nothing signing), so
    /// it activates at once. Refused while another rotation of the line is
    /// pending, and for per-account keys. Lines of other algorithms are not
    /// touched.
    pub fn new(
        purpose: KeyPurpose,
        algorithm: SignatureAlgorithm,
        keys: &[ManagedKey],
        now: OffsetDateTime,
        prepublish: Duration,
    ) -> Result<Self, KeysError> {
        if purpose.is_per_account() {
            return Err(KeysError::AccountMismatch { purpose });
        }
        let mine = keys.iter().filter(|k| {
            k.purpose == purpose
                && k.account_id.is_none()
                && purpose.line(k.algorithm) == purpose.line(algorithm)
        });
        if let Some(p) = mine.clone().find(|k| k.state == KeyState::Pending) {
            return Err(KeysError::AlreadyPending {
                purpose,
                id: p.id.clone(),
                activate_after: p.activate_after,
            });
        }
        let replaces = mine
            .clone()
            .find(|k| k.state == KeyState::Active)
            .map(|k| k.id.clone());
        let activate_after = if replaces.is_some() {
            now + prepublish.max(Duration::ZERO)
        } else {
            now
        };
        Ok(RotationPlan {
            purpose,
            algorithm,
            activate_after,
            replaces,
        })
    }

    /// A label for the backend (shown by HSM tools): purpose and date.
    pub fn label(&self, now: OffsetDateTime) -> String {
        format!(
            "tuaton-{}-{:04}{:02}{:02}",
            self.purpose,
            now.year(),
            u8::from(now.month()),
            now.day()
        )
    }

    /// The record for the key generated under this plan.
    pub fn new_key(&self, backend: &str, key_ref: &str) -> NewKey {
        NewKey {
            purpose: self.purpose,
            account_id: None,
            algorithm: self.algorithm,
            backend: backend.to_owned(),
            key_ref: key_ref.to_owned(),
            activate_after: self.activate_after,
            replaces: self.replaces.clone(),
        }
    }
}

/// When a purpose's line of `algorithm` keys rotated every `every`, with
/// `prepublish` of pre-publication, must generate its next key so that the
/// key takes over `every` after the current one started signing. `None`
/// while a rotation is pending; `UNIX_EPOCH` (due at once) when the line has
/// no signing key at all, so an unattended service makes its first key itself.
pub fn next_scheduled_rotation(
    purpose: KeyPurpose,
    algorithm: SignatureAlgorithm,
    keys: &[ManagedKey],
    every: Duration,
    prepublish: Duration,
) -> Option<OffsetDateTime> {
    let mut mine = keys.iter().filter(|k| {
        k.purpose == purpose
            && k.account_id.is_none()
            && purpose.line(k.algorithm) == purpose.line(algorithm)
    });
    if mine.clone().any(|k| k.state == KeyState::Pending) {
        return None;
    }
    Some(match mine.find(|k| k.state == KeyState::Active) {
        None => OffsetDateTime::UNIX_EPOCH,
        Some(active) => {
            let since = active.activated_at.unwrap_or(active.activate_after);
            since + every - prepublish.min(every)
        }
    })
}

/// A transition [`tick`] applies when it is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DueTransition {
    /// Pre-publication is over: the pending key becomes active and the
    /// purpose's active key (if any) becomes retiring.
    Activate {
        /// The pending key.
        id: String,
    },
    /// Everything the retiring key signed has expired: it is unpublished.
    Retire {
        /// The retiring key.
        id: String,
    },
}

/// The transitions due at `now` among `keys`; pure, so tests and `tuaton
/// keys list` can show what the next tick will do.
pub fn due_transitions(keys: &[ManagedKey], now: OffsetDateTime) -> Vec<DueTransition> {
    keys.iter()
        .filter_map(|k| match k.state {
            KeyState::Pending if k.activate_after <= now => {
                Some(DueTransition::Activate { id: k.id.clone() })
            }
            KeyState::Retiring if k.retire_due_at().is_some_and(|due| due < now) => {
                Some(DueTransition::Retire { id: k.id.clone() })
            }
            _ => None,
        })
        .collect()
}

/// Checks an operator's override: `Some(reason)` forces, and must say why.
fn forced(force: Option<&str>) -> Result<bool, KeysError> {
    match force {
        None => Ok(false),
        Some(r) if r.trim().is_empty() => Err(KeysError::ReasonRequired),
        Some(_) => Ok(true),
    }
}

/// Decides what retiring `key` means now: an active key becomes retiring
/// (stops signing, stays published); a retiring key becomes retired
/// (unpublished) once what it signed has expired. Active service keys and
/// early retirement need `force` (a reason).
pub fn check_retire(
    key: &ManagedKey,
    now: OffsetDateTime,
    force: Option<&str>,
) -> Result<KeyState, KeysError> {
    let forced = forced(force)?;
    let to = match key.state {
        KeyState::Active => KeyState::Retiring,
        KeyState::Retiring => KeyState::Retired,
        other => {
            // Reuse the lifecycle's own explanation of why not.
            let to = if other == KeyState::Pending {
                KeyState::Retiring
            } else {
                KeyState::Retired
            };
            return Err(KeysError::Transition {
                id: key.id.clone(),
                source: other
                    .check_transition(to)
                    .err()
                    .unwrap_or(TransitionError::Unchanged { state: other }),
            });
        }
    };
    if !forced {
        if key.state == KeyState::Active && !key.purpose.is_per_account() {
            return Err(KeysError::StillActive {
                id: key.id.clone(),
                purpose: key.purpose,
            });
        }
        if let Some(due) = key.retire_due_at().filter(|due| *due >= now) {
            return Err(KeysError::StillVerifiable {
                id: key.id.clone(),
                until: due,
            });
        }
    }
    Ok(to)
}

/// Decides whether `key` may be destroyed now: never twice; an active key or
/// one that must stay verifiable (what it signed has not expired) only with
/// `force` (a reason).
pub fn check_destroy(
    key: &ManagedKey,
    now: OffsetDateTime,
    force: Option<&str>,
) -> Result<(), KeysError> {
    let forced = forced(force)?;
    key.state
        .check_transition(KeyState::Destroyed)
        .map_err(|source| KeysError::Transition {
            id: key.id.clone(),
            source,
        })?;
    if forced {
        return Ok(());
    }
    if key.state == KeyState::Active {
        return Err(KeysError::StillActive {
            id: key.id.clone(),
            purpose: key.purpose,
        });
    }
    let until = key.retire_due_at().or(key.verify_until);
    if let Some(until) = until.filter(|u| *u >= now) {
        return Err(KeysError::StillVerifiable {
            id: key.id.clone(),
            until,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_forward_moves_are_allowed() {
        use KeyState::*;
        let all = [Pending, Active, Retiring, Retired, Destroyed];
        let allowed = [
            (Pending, Active),
            (Active, Retiring),
            (Retiring, Retired),
            (Pending, Destroyed),
            (Active, Destroyed),
            (Retiring, Destroyed),
            (Retired, Destroyed),
        ];
        for from in all {
            for to in all {
                let ok = from.check_transition(to).is_ok();
                assert_eq!(ok, allowed.contains(&(from, to)), "{from} -> {to}");
                if to < from {
                    assert!(matches!(
                        from.check_transition(to),
                        Err(TransitionError::Backwards { .. })
                    ));
                }
            }
        }
        assert!(matches!(
            Active.check_transition(Retired),
            Err(TransitionError::Skips { .. })
        ));
    }

    #[test]
    fn purposes_round_trip_and_unknown_lists_accepted() {
        for p in KeyPurpose::ALL {
            assert_eq!(p.as_str().parse::<KeyPurpose>(), Ok(p));
        }
        let e = "id_token"
            .parse::<KeyPurpose>()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "unknown key purpose \"id_token\"; accepted: id-token, root-ca, document-ca, signer, tsa, ocsp, audit-anchor, user-signing"
            )
        );
    }
}
