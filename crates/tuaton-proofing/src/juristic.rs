//! Juristic persons (companies): who their directors are and who may act for them.
//!
//! A company's registration lists its directors and its authority rule
//! (อำนาจกรรมการ): any one director may bind the company alone, or N directors
//! must act jointly. [`authorised`] applies that rule to the proofed citizens
//! who want to act; the server re-checks it against the registry at an
//! interval and on every signing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tuaton_core::{CitizenId, JuristicId};

use crate::dev_registry::FixtureError;

/// The fixture shipped in keys-dev, embedded at build time.
pub const EMBEDDED_COMPANIES_JSON: &str = include_str!("../../../keys-dev/registry/companies.json");

/// Whether the company exists as a going concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanyStatus {
    /// Registered and operating; directors may act.
    Active,
    /// Dissolved (เลิกกิจการ) or struck off; nobody may act for it.
    Dissolved,
}

/// How many directors must act together to bind the company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum AuthorityRule {
    /// Any one director alone.
    AnyOne,
    /// This many directors together (at least 1).
    Jointly {
        /// The number of directors required.
        directors: u8,
    },
}

impl AuthorityRule {
    /// Directors needed under this rule.
    pub fn required(&self) -> usize {
        match self {
            Self::AnyOne => 1,
            Self::Jointly { directors } => usize::from(*directors).max(1),
        }
    }
}

/// A company as the juristic-person registry describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Company {
    /// Thirteen-digit juristic id.
    pub id: JuristicId,
    /// Registered Thai name.
    pub name_th: String,
    /// Registered English name, if any.
    pub name_en: Option<String>,
    /// Active or dissolved.
    pub status: CompanyStatus,
    /// Directors with signing authority, by citizen id.
    pub directors: Vec<CitizenId>,
    /// The authority rule.
    pub authority: AuthorityRule,
}

/// Whether a set of citizens may act for a company, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum AuthorityDecision {
    /// They may act; these are the directors acting (deduplicated, sorted).
    Authorised {
        /// The acting directors.
        directors: Vec<CitizenId>,
    },
    /// All are directors but too few for the rule; more must join.
    NeedsMoreDirectors {
        /// How many the rule requires.
        required: usize,
        /// How many distinct directors are acting.
        present: usize,
    },
    /// Someone acting is not a director of the company.
    NotADirector {
        /// Those who are not directors.
        citizens: Vec<CitizenId>,
    },
    /// Nobody was named as acting.
    NobodyActing,
    /// The company is dissolved; nobody may act for it.
    CompanyDissolved,
}

impl AuthorityDecision {
    /// Whether the action may go ahead.
    pub fn is_authorised(&self) -> bool {
        matches!(self, Self::Authorised { .. })
    }
}

/// Decides whether `acting` (proofed citizens, possibly with repeats) may act
/// for `company`. Refusals, in order: dissolved company, nobody acting, any
/// non-director in the group (a non-director is never carried by others),
/// too few directors for the rule.
pub fn authorised(company: &Company, acting: &[CitizenId]) -> AuthorityDecision {
    if company.status == CompanyStatus::Dissolved {
        return AuthorityDecision::CompanyDissolved;
    }
    let acting: BTreeSet<CitizenId> = acting.iter().copied().collect();
    if acting.is_empty() {
        return AuthorityDecision::NobodyActing;
    }
    let directors: BTreeSet<CitizenId> = company.directors.iter().copied().collect();
    let outsiders: Vec<CitizenId> = acting.difference(&directors).copied().collect();
    if !outsiders.is_empty() {
        return AuthorityDecision::NotADirector {
            citizens: outsiders,
        };
    }
    let required = company.authority.required();
    if acting.len() < required {
        return AuthorityDecision::NeedsMoreDirectors {
            required,
            present: acting.len(),
        };
    }
    AuthorityDecision::Authorised {
        directors: acting.into_iter().collect(),
    }
}

/// Why a juristic registry lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No company with this id (the caller's input).
    #[error("no company is registered under this id")]
    NotFound,
    /// The registry could not answer; try later.
    #[error("the company registry is unavailable; try again later")]
    Unavailable {
        /// Why, for logs.
        reason: String,
    },
}

impl RegistryError {
    /// The stable code a client is answered with.
    pub fn code(&self) -> tuaton_core::ErrorCode {
        match self {
            Self::NotFound => tuaton_core::ErrorCode::CompanyNotFound,
            Self::Unavailable { .. } => tuaton_core::ErrorCode::RegistryUnavailable,
        }
    }
}

/// A juristic-person registry (in Thailand, the Department of Business
/// Development's). Implementations answer with the registry's current record.
#[async_trait]
pub trait JuristicRegistry: Send + Sync {
    /// A stable name for logs and the audit record.
    fn name(&self) -> &str;

    /// The company registered under `id`.
    async fn lookup(&self, id: &JuristicId) -> Result<Company, RegistryError>;
}

#[derive(Deserialize)]
struct CompaniesFixture {
    companies: Vec<Company>,
}

/// A development juristic registry of FICTIONAL companies from a JSON fixture
/// (keys-dev/registry/companies.json). Not the DBD; used only in development.
#[derive(Debug, Clone)]
pub struct DevJuristicRegistry {
    companies: BTreeMap<JuristicId, Company>,
}

impl DevJuristicRegistry {
    /// The fixture embedded at build time.
    pub fn embedded() -> Result<Self, FixtureError> {
        Self::from_json(EMBEDDED_COMPANIES_JSON)
    }

    /// Loads a fixture file.
    pub fn from_path(path: &Path) -> Result<Self, FixtureError> {
        Self::from_json(&std::fs::read_to_string(path)?)
    }

    /// Parses fixture JSON: `{"companies": [ ... ]}`. Refuses duplicate ids,
    /// companies without directors and rules needing more directors than listed.
    pub fn from_json(json: &str) -> Result<Self, FixtureError> {
        let fixture: CompaniesFixture = serde_json::from_str(json)?;
        let mut companies = BTreeMap::new();
        for c in fixture.companies {
            let distinct: BTreeSet<_> = c.directors.iter().collect();
            if distinct.is_empty() || distinct.len() != c.directors.len() {
                return Err(FixtureError::Inconsistent(format!(
                    "company {} needs distinct directors",
                    c.id.compact()
                )));
            }
            if matches!(c.authority, AuthorityRule::Jointly { directors: 0 })
                || c.authority.required() > distinct.len()
            {
                return Err(FixtureError::Inconsistent(format!(
                    "company {} has an authority rule its directors cannot meet",
                    c.id.compact()
                )));
            }
            if companies.contains_key(&c.id) {
                return Err(FixtureError::Duplicate(c.id.compact()));
            }
            companies.insert(c.id, c);
        }
        Ok(Self { companies })
    }

    /// Every company, ordered by id.
    pub fn companies(&self) -> impl Iterator<Item = &Company> {
        self.companies.values()
    }
}

#[async_trait]
impl JuristicRegistry for DevJuristicRegistry {
    fn name(&self) -> &str {
        "dev-juristic-registry"
    }

    async fn lookup(&self, id: &JuristicId) -> Result<Company, RegistryError> {
        self.companies
            .get(id)
            .cloned()
            .ok_or(RegistryError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn authority_rule_json_is_tagged() {
        assert_eq!(
            serde_json::to_string(&AuthorityRule::AnyOne).unwrap(),
            r#"{"rule":"any_one"}"#
        );
        assert_eq!(
            serde_json::to_string(&AuthorityRule::Jointly { directors: 2 }).unwrap(),
            r#"{"rule":"jointly","directors":2}"#
        );
    }

    #[test]
    fn inconsistent_fixtures_are_refused() {
        let too_few = r#"{"companies":[{"id":"0105599000019","name_th":"บริษัท ก จำกัด","name_en":null,"status":"active",
            "directors":["1999000000017"],"authority":{"rule":"jointly","directors":2}}]}"#;
        assert!(matches!(
            DevJuristicRegistry::from_json(too_few),
            Err(FixtureError::Inconsistent(_))
        ));
        let citizen_as_company = r#"{"companies":[{"id":"1999000000017","name_th":"x","name_en":null,"status":"active",
            "directors":["1999000000017"],"authority":{"rule":"any_one"}}]}"#;
        assert!(matches!(
            DevJuristicRegistry::from_json(citizen_as_company),
            Err(FixtureError::Json(_))
        ));
    }
}
