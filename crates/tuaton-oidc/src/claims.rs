//! What a client may learn about a person beyond `sub`, and the notice the
//! person agrees to before it is released (OpenID Connect Core 1.0 §5.1,
//! §5.4; the PDPA's consent, section 19).
//!
//! Scopes ask for groups of claims:
//! - `profile` — the person's name, in Thai (the name on the card, as
//!   `given_name`, `family_name`, `name`, and the same with `#th`) and in
//!   English when on file (`given_name#en`, `family_name#en`, `name#en`;
//!   §5.2's language tags), and `birthdate` (`YYYY-MM-DD`);
//! - `citizen_id` — the 13-digit citizen id (Tuaton's own claim), given only
//!   to clients an operator registered for it;
//! - `business` — the company the person acts for (Tuaton's own `company`
//!   claim: its juristic id and registered name), chosen at the login from
//!   the companies the registry lists them as a director of. The person
//!   stays the `sub`; the company is never merged into it.
//!
//! The claims are released at userinfo (§5.4: the code flow's scope claims
//! come from the UserInfo endpoint), read from the account when asked, so
//! a corrected name reaches the agency at its next call.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A group of claims a person agrees to share, as consent records name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    /// Names, Thai and English.
    Name,
    /// Date of birth.
    Birthdate,
    /// The citizen id.
    CitizenId,
    /// The company acted for.
    Company,
}

/// The company a person logged in to act for, as the `company` claim gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyClaim {
    /// The thirteen-digit juristic id.
    pub juristic_id: String,
    /// The registered name (Thai).
    pub name: String,
}

impl Claim {
    /// The name consent records and the audit log use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Birthdate => "birthdate",
            Self::CitizenId => "citizen_id",
            Self::Company => "company",
        }
    }

    /// The claim read back from a consent record; `None` for one this
    /// version does not know (a consent naming it does not cover anything).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "name" => Some(Self::Name),
            "birthdate" => Some(Self::Birthdate),
            "citizen_id" => Some(Self::CitizenId),
            "company" => Some(Self::Company),
            _ => None,
        }
    }

    /// What the consent page calls it, in Thai.
    pub fn label_th(self) -> &'static str {
        match self {
            Self::Name => "ชื่อและนามสกุล (ภาษาไทยและภาษาอังกฤษ)",
            Self::Birthdate => "วันเดือนปีเกิด",
            Self::CitizenId => "เลขประจำตัวประชาชน",
            Self::Company => "นิติบุคคลที่คุณทำการแทน (เลขทะเบียนและชื่อ)",
        }
    }

    /// What the consent page calls it, in English.
    pub fn label_en(self) -> &'static str {
        match self {
            Self::Name => "Your name (in Thai and English)",
            Self::Birthdate => "Your date of birth",
            Self::CitizenId => "Your citizen id number",
            Self::Company => "The company you act for (its juristic id and name)",
        }
    }
}

/// The claims `scopes` ask for, in a fixed order, each once.
pub fn requested(scopes: &[String]) -> Vec<Claim> {
    let mut claims = Vec::new();
    for s in scopes {
        match s.as_str() {
            "profile" => claims.extend([Claim::Name, Claim::Birthdate]),
            "citizen_id" => claims.push(Claim::CitizenId),
            "business" => claims.push(Claim::Company),
            _ => {}
        }
    }
    claims.sort();
    claims.dedup();
    claims
}

/// The claim names userinfo may answer with, for discovery's `claims_supported`.
pub const RELEASED: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "name#th",
    "given_name#th",
    "family_name#th",
    "name#en",
    "given_name#en",
    "family_name#en",
    "birthdate",
    "citizen_id",
    "company",
];

/// What the account holds about the person, for [`release`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Person<'a> {
    /// Given name in Thai.
    pub thai_given: Option<&'a str>,
    /// Family name in Thai.
    pub thai_family: Option<&'a str>,
    /// Given name in English.
    pub en_given: Option<&'a str>,
    /// Family name in English.
    pub en_family: Option<&'a str>,
    /// `YYYY-MM-DD`.
    pub birth_date: Option<&'a str>,
    /// The 13-digit citizen id.
    pub citizen_id: Option<&'a str>,
    /// The company chosen at the login.
    pub company: Option<&'a CompanyClaim>,
}

/// The claims `claims` release about `person`; what the account lacks is left out.
pub fn release(claims: &[Claim], person: &Person<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |name: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            out.insert(name.to_owned(), json!(v));
        }
    };
    let full = |given: Option<&str>, family: Option<&str>| match (given, family) {
        (Some(g), Some(f)) => Some(format!("{g} {f}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    };
    for c in claims {
        match c {
            Claim::Name => {
                let thai = full(person.thai_given, person.thai_family);
                let english = full(person.en_given, person.en_family);
                for suffix in ["", "#th"] {
                    put(&format!("given_name{suffix}"), person.thai_given);
                    put(&format!("family_name{suffix}"), person.thai_family);
                    put(&format!("name{suffix}"), thai.as_deref());
                }
                put("given_name#en", person.en_given);
                put("family_name#en", person.en_family);
                put("name#en", english.as_deref());
            }
            Claim::Birthdate => put("birthdate", person.birth_date),
            Claim::CitizenId => put("citizen_id", person.citizen_id),
            Claim::Company => {}
        }
    }
    if let Some(c) = person.company.filter(|_| claims.contains(&Claim::Company)) {
        out.insert("company".into(), json!(c));
    }
    out
}

/// The notice the consent page shows, as one text: the agency, the
/// purpose, and each claim, in Thai and English. Its SHA-256 is kept with
/// the consent record, so what the person agreed to can be shown later.
pub fn notice(client_name: &str, purpose: &str, claims: &[Claim]) -> String {
    let mut text = format!("{client_name} ขอข้อมูลของคุณเพื่อ · asks for your data for: {purpose}\n");
    for c in claims {
        text.push_str(&format!("- {} · {}\n", c.label_th(), c.label_en()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn scopes_ask_for_claim_groups_once_each() {
        assert!(requested(&scopes(&["openid"])).is_empty());
        assert_eq!(
            requested(&scopes(&["citizen_id", "openid", "profile", "profile"])),
            vec![Claim::Name, Claim::Birthdate, Claim::CitizenId]
        );
        for c in [Claim::Name, Claim::Birthdate, Claim::CitizenId] {
            assert_eq!(Claim::parse(c.as_str()), Some(c));
        }
        assert_eq!(Claim::parse("email"), None);
    }

    #[test]
    fn release_gives_only_what_was_agreed_and_what_the_account_holds() {
        let person = Person {
            thai_given: Some("สมชาย"),
            thai_family: Some("ใจดี"),
            en_given: Some("Somchai"),
            en_family: None,
            birth_date: Some("1980-01-31"),
            citizen_id: Some("1101700203451"),
            company: None,
        };
        let names = release(&[Claim::Name], &person);
        assert_eq!(names["name"], "สมชาย ใจดี");
        assert_eq!(names["family_name#th"], "ใจดี");
        assert_eq!(names["name#en"], "Somchai");
        assert!(!names.contains_key("family_name#en"), "not on file");
        assert!(!names.contains_key("birthdate") && !names.contains_key("citizen_id"));
        let all = release(&[Claim::Birthdate, Claim::CitizenId], &person);
        assert_eq!(all["birthdate"], "1980-01-31");
        assert_eq!(all["citizen_id"], "1101700203451");
        assert!(!all.contains_key("name"));
        for k in names.keys().chain(all.keys()) {
            assert!(RELEASED.contains(&k.as_str()), "{k} is listed in discovery");
        }
    }

    #[test]
    fn the_notice_names_the_agency_the_purpose_and_each_claim() {
        let n = notice(
            "กรมสรรพากร · Revenue Department",
            "ยื่นแบบภาษี · filing taxes",
            &[Claim::Name, Claim::CitizenId],
        );
        assert!(n.contains("Revenue Department") && n.contains("filing taxes"));
        assert!(n.contains(Claim::Name.label_en()) && n.contains(Claim::CitizenId.label_th()));
        assert!(!n.contains(Claim::Birthdate.label_en()));
    }
}
