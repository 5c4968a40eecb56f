//! Citizen identity evidence: what a person shows or types when they enrol.
//!
//! Raw input arrives as [`CitizenEvidenceInput`] (plain strings, as a form or a
//! JSON body carries them) and becomes a [`CitizenEvidence`] through
//! [`CitizenEvidence::parse`], which checks every field and reports *all* the
//! faulty ones at once so a form can highlight them together.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, Month};
use tuaton_core::CitizenId;

/// Longest given or family name accepted, in characters. DOPA's name fields are
/// shorter than this; the bound exists so hostile input cannot grow records.
pub const MAX_NAME_CHARS: usize = 100;

/// Which evidence field a problem concerns; stable names for API error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceField {
    /// The thirteen-digit citizen id.
    CitizenId,
    /// Given name in Thai script.
    ThaiGivenName,
    /// Family name in Thai script.
    ThaiFamilyName,
    /// Given name in Latin script.
    EnglishGivenName,
    /// Family name in Latin script.
    EnglishFamilyName,
    /// Date of birth.
    BirthDate,
    /// The laser code from the back of the card.
    LaserCode,
}

impl EvidenceField {
    /// The field's name as used in API error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CitizenId => "citizen_id",
            Self::ThaiGivenName => "thai_given_name",
            Self::ThaiFamilyName => "thai_family_name",
            Self::EnglishGivenName => "english_given_name",
            Self::EnglishFamilyName => "english_family_name",
            Self::BirthDate => "birth_date",
            Self::LaserCode => "laser_code",
        }
    }
}

/// What is wrong with one field. The fault is always the caller's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    /// Nothing was given.
    #[error("is required")]
    Missing,
    /// Longer than allowed.
    #[error("is longer than {max} characters")]
    TooLong {
        /// The limit in characters.
        max: usize,
    },
    /// A character outside what the field allows (Thai letters for Thai names, and so on).
    #[error("contains characters this field does not allow")]
    WrongScript,
    /// The citizen id did not parse.
    #[error("{0}")]
    BadCitizenId(tuaton_core::IdError),
    /// The laser code did not parse.
    #[error("{0}")]
    BadLaserCode(LaserCodeError),
    /// The birth date did not parse or is out of range.
    #[error("{0}")]
    BadBirthDate(BirthDateError),
}

/// One field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", field.as_str())]
pub struct FieldError {
    /// Which field.
    pub field: EvidenceField,
    /// What is wrong with it.
    pub problem: FieldProblem,
}

/// Evidence that failed validation: every faulty field, in form order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid evidence: {}", list(.0))]
pub struct InvalidEvidence(pub Vec<FieldError>);

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl InvalidEvidence {
    /// The fields that were refused.
    pub fn fields(&self) -> impl Iterator<Item = EvidenceField> + '_ {
        self.0.iter().map(|e| e.field)
    }
}

// ---------------------------------------------------------------------------
// Laser code

/// Why a string is not a laser code. The fault is the caller's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LaserCodeError {
    /// Not two letters followed by ten digits once spaces and dashes are removed.
    #[error("expected two letters and ten digits, as in JT0-1234567-89")]
    WrongShape,
    /// A character other than a Latin letter, digit, dash or space.
    #[error("only Latin letters, digits, dashes and spaces are allowed")]
    InvalidCharacter,
}

/// The laser-engraved code on the back of a Thai ID card: two letters and ten
/// digits. It is printed only on the card, so knowing it suggests the holder has
/// the card in hand; treat it as semi-secret.
///
/// Parsed case-insensitively with or without dashes and spaces; `Display` gives
/// the printed form `JT0-1234567-89`, [`Self::compact`] the twelve characters
/// registries exchange (also the JSON form). `Debug` hides the middle digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaserCode([u8; 12]);

impl LaserCode {
    /// Parses a laser code, accepting dashes, spaces and lower-case letters.
    pub fn parse(input: &str) -> Result<Self, LaserCodeError> {
        let mut out = [0u8; 12];
        let mut n = 0usize;
        for c in input.trim().chars() {
            if c == '-' || c == ' ' {
                continue;
            }
            if !c.is_ascii_alphanumeric() {
                return Err(LaserCodeError::InvalidCharacter);
            }
            if n >= 12 {
                return Err(LaserCodeError::WrongShape);
            }
            // is_ascii_alphanumeric guarantees one byte.
            out[n] = c.to_ascii_uppercase() as u8;
            n += 1;
        }
        let shape_ok = n == 12
            && out[..2].iter().all(u8::is_ascii_uppercase)
            && out[2..].iter().all(u8::is_ascii_digit);
        if !shape_ok {
            return Err(LaserCodeError::WrongShape);
        }
        Ok(Self(out))
    }

    /// The twelve characters without separators, e.g. `JT0123456789`.
    pub fn compact(&self) -> String {
        self.0.iter().map(|b| char::from(*b)).collect()
    }
}

impl FromStr for LaserCode {
    type Err = LaserCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for LaserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.compact();
        write!(f, "{}-{}-{}", &s[..3], &s[3..10], &s[10..])
    }
}

impl fmt::Debug for LaserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.compact();
        write!(f, "LaserCode({}x-xxxxxxx-{})", &s[..2], &s[10..])
    }
}

impl Serialize for LaserCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.compact())
    }
}

impl<'de> Deserialize<'de> for LaserCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Names

/// Collapses runs of spaces and trims; DOPA compares names without extra spaces.
fn normalise_spaces(s: &str) -> String {
    s.split(' ')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Letters, vowels and tone marks of the Thai block (U+0E01–U+0E3A,
/// U+0E40–U+0E4E). Digits, the baht sign and the block's punctuation marks do
/// not belong in a name, and the block's unassigned code points are refused.
fn is_thai_name_char(c: char) -> bool {
    matches!(c, '\u{0E01}'..='\u{0E3A}' | '\u{0E40}'..='\u{0E4E}')
}

/// Thai consonants (U+0E01–U+0E2E); a name must contain at least one.
fn is_thai_consonant(c: char) -> bool {
    matches!(c, '\u{0E01}'..='\u{0E2E}')
}

fn is_latin_name_char(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, ' ' | '-' | '\'' | '.')
}

fn name_part(
    raw: &str,
    allowed: fn(char) -> bool,
    required: fn(char) -> bool,
) -> Result<String, FieldProblem> {
    let s = normalise_spaces(raw);
    if s.is_empty() {
        return Err(FieldProblem::Missing);
    }
    if s.chars().count() > MAX_NAME_CHARS {
        return Err(FieldProblem::TooLong {
            max: MAX_NAME_CHARS,
        });
    }
    if !s.chars().all(|c| c == ' ' || allowed(c)) || !s.chars().any(required) {
        return Err(FieldProblem::WrongScript);
    }
    Ok(s)
}

/// A person's name in Thai script as printed on the ID card, without the title
/// (นาย, นาง, นางสาว): given and family name, each Thai letters, vowels, tone
/// marks and single spaces only (family names such as "ณ ระนอง" have a space).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "NameParts", into = "NameParts")]
pub struct ThaiName {
    given: String,
    family: String,
}

/// A person's name in Latin script as printed on the ID card, without the title.
/// Letters, spaces, hyphens, apostrophes and dots.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "NameParts", into = "NameParts")]
pub struct EnglishName {
    given: String,
    family: String,
}

/// The JSON shape of a name: `{"given": "...", "family": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NameParts {
    /// Given name (ชื่อ).
    pub given: String,
    /// Family name (นามสกุล).
    pub family: String,
}

macro_rules! name_type {
    ($name:ident, $allowed:expr, $required:expr, $given_field:ident, $family_field:ident) => {
        impl $name {
            /// Validates and normalises a given and a family name.
            pub fn new(given: &str, family: &str) -> Result<Self, Vec<FieldError>> {
                let g = name_part(given, $allowed, $required);
                let f = name_part(family, $allowed, $required);
                match (g, f) {
                    (Ok(given), Ok(family)) => Ok(Self { given, family }),
                    (g, f) => {
                        let mut errors = Vec::new();
                        if let Err(problem) = g {
                            errors.push(FieldError {
                                field: EvidenceField::$given_field,
                                problem,
                            });
                        }
                        if let Err(problem) = f {
                            errors.push(FieldError {
                                field: EvidenceField::$family_field,
                                problem,
                            });
                        }
                        Err(errors)
                    }
                }
            }

            /// The given name.
            pub fn given(&self) -> &str {
                &self.given
            }

            /// The family name.
            pub fn family(&self) -> &str {
                &self.family
            }
        }

        impl TryFrom<NameParts> for $name {
            type Error = InvalidEvidence;
            fn try_from(p: NameParts) -> Result<Self, Self::Error> {
                Self::new(&p.given, &p.family).map_err(InvalidEvidence)
            }
        }

        impl From<$name> for NameParts {
            fn from(n: $name) -> Self {
                NameParts {
                    given: n.given,
                    family: n.family,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.given, self.family)
            }
        }

        /// Personal data: `Debug` shows only the lengths.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    concat!(stringify!($name), "([redacted {}+{} chars])"),
                    self.given.chars().count(),
                    self.family.chars().count()
                )
            }
        }
    };
}

name_type!(
    ThaiName,
    is_thai_name_char,
    is_thai_consonant,
    ThaiGivenName,
    ThaiFamilyName
);
name_type!(
    EnglishName,
    is_latin_name_char,
    |c: char| c.is_ascii_alphabetic(),
    EnglishGivenName,
    EnglishFamilyName
);

// ---------------------------------------------------------------------------
// Birth date

/// Earliest birth year accepted (Gregorian). Nobody alive was born earlier.
pub const MIN_BIRTH_YEAR: i32 = 1880;
/// Latest birth year representable (Gregorian); the future check needs today's date.
pub const MAX_BIRTH_YEAR: i32 = 2200;
/// Difference between the Buddhist era (พ.ศ.) and the Gregorian year.
pub const BUDDHIST_ERA_OFFSET: i32 = 543;

/// Why a birth date was refused. The fault is the caller's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BirthDateError {
    /// Not `YYYY-MM-DD`, `YYYY-MM`, `YYYY` or a Buddhist-era `YYYYMMDD`.
    #[error("expected YYYY-MM-DD (Gregorian), YYYY-MM or YYYY when day or month is unknown")]
    Format,
    /// The year is outside the accepted range.
    #[error("the year is out of range")]
    YearOutOfRange,
    /// The month or day does not exist (e.g. 31 April).
    #[error("no such calendar date")]
    NoSuchDate,
    /// The date lies after today.
    #[error("lies in the future")]
    InFuture,
}

/// A date of birth as the civil registry holds it.
///
/// Most people have a full date. Older records, and some people registered
/// late, know only the year (or year and month); the ID card then shows dashes
/// and DOPA's interfaces write the unknown parts as `00` (so a person born in
/// 2485 BE with no known day or month is `24850000`). Tuaton keeps that
/// distinction rather than inventing a 1 January, which would fail the registry
/// check.
///
/// JSON and `Display` use the Gregorian ISO form with the unknown parts left
/// out: `1964-02-22`, `1942-05`, `1942`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BirthDate {
    /// Day, month and year known.
    Full(Date),
    /// Year and month known, day unknown.
    YearMonth {
        /// Gregorian year.
        year: i32,
        /// Month.
        month: Month,
    },
    /// Only the year known.
    Year {
        /// Gregorian year.
        year: i32,
    },
}

impl BirthDate {
    /// A full Gregorian date.
    pub fn from_date(date: Date) -> Result<Self, BirthDateError> {
        check_year(date.year())?;
        Ok(Self::Full(date))
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM` or `YYYY` (Gregorian).
    pub fn parse(input: &str) -> Result<Self, BirthDateError> {
        let parts: Vec<&str> = input.trim().split('-').collect();
        let num = |s: &str, len: usize| -> Result<u32, BirthDateError> {
            if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BirthDateError::Format);
            }
            s.parse().map_err(|_| BirthDateError::Format)
        };
        match parts.as_slice() {
            [y] => Self::from_parts(num(y, 4)? as i32, 0, 0),
            [y, m] => Self::from_parts(num(y, 4)? as i32, num(m, 2)? as u8, 0),
            [y, m, d] => Self::from_parts(num(y, 4)? as i32, num(m, 2)? as u8, num(d, 2)? as u8),
            _ => Err(BirthDateError::Format),
        }
    }

    /// Parses DOPA's Buddhist-era `YYYYMMDD`, with `00` for an unknown day or month.
    pub fn from_buddhist_era(input: &str) -> Result<Self, BirthDateError> {
        let s = input.trim();
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BirthDateError::Format);
        }
        let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().map_err(|_| BirthDateError::Format);
        let year_be = n(0..4)? as i32;
        Self::from_parts(
            year_be - BUDDHIST_ERA_OFFSET,
            n(4..6)? as u8,
            n(6..8)? as u8,
        )
    }

    /// From numeric parts, with 0 meaning unknown (an unknown month forces an unknown day).
    fn from_parts(year: i32, month: u8, day: u8) -> Result<Self, BirthDateError> {
        check_year(year)?;
        if month == 0 {
            return if day == 0 {
                Ok(Self::Year { year })
            } else {
                Err(BirthDateError::NoSuchDate)
            };
        }
        let month = Month::try_from(month).map_err(|_| BirthDateError::NoSuchDate)?;
        if day == 0 {
            return Ok(Self::YearMonth { year, month });
        }
        Date::from_calendar_date(year, month, day)
            .map(Self::Full)
            .map_err(|_| BirthDateError::NoSuchDate)
    }

    /// The Gregorian year.
    pub fn year(&self) -> i32 {
        match self {
            Self::Full(d) => d.year(),
            Self::YearMonth { year, .. } | Self::Year { year } => *year,
        }
    }

    /// DOPA's `BirthDay` form: Buddhist-era `YYYYMMDD`, `00` for unknown parts
    /// (1964-02-22 → `25070222`).
    pub fn buddhist_era(&self) -> String {
        let (y, m, d) = match self {
            Self::Full(d) => (d.year(), u8::from(d.month()), d.day()),
            Self::YearMonth { year, month } => (*year, u8::from(*month), 0),
            Self::Year { year } => (*year, 0, 0),
        };
        format!("{:04}{:02}{:02}", y + BUDDHIST_ERA_OFFSET, m, d)
    }

    /// Whether the earliest day this date could denote is after `today`.
    pub fn is_after(&self, today: Date) -> bool {
        match self {
            Self::Full(d) => *d > today,
            Self::YearMonth { year, month } => {
                (*year, u8::from(*month)) > (today.year(), u8::from(today.month()))
            }
            Self::Year { year } => *year > today.year(),
        }
    }
}

fn check_year(year: i32) -> Result<(), BirthDateError> {
    if (MIN_BIRTH_YEAR..=MAX_BIRTH_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(BirthDateError::YearOutOfRange)
    }
}

impl FromStr for BirthDate {
    type Err = BirthDateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(d) => write!(
                f,
                "{:04}-{:02}-{:02}",
                d.year(),
                u8::from(d.month()),
                d.day()
            ),
            Self::YearMonth { year, month } => write!(f, "{:04}-{:02}", year, u8::from(*month)),
            Self::Year { year } => write!(f, "{year:04}"),
        }
    }
}

/// Personal data: `Debug` shows only which parts are known.
impl fmt::Debug for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known = match self {
            Self::Full(_) => "full",
            Self::YearMonth { .. } => "year-month",
            Self::Year { .. } => "year",
        };
        write!(f, "BirthDate([redacted, {known}])")
    }
}

impl Serialize for BirthDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BirthDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// The evidence as a whole

/// Evidence as typed in a form or sent in a JSON body, before validation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CitizenEvidenceInput {
    /// Citizen id, with or without dashes.
    pub citizen_id: String,
    /// Thai given name.
    pub thai_given_name: String,
    /// Thai family name.
    pub thai_family_name: String,
    /// English given name; leave both English fields empty when there is none.
    #[serde(default)]
    pub english_given_name: String,
    /// English family name.
    #[serde(default)]
    pub english_family_name: String,
    /// Gregorian `YYYY-MM-DD`, or `YYYY-MM` / `YYYY` when the card shows dashes.
    pub birth_date: String,
    /// Laser code, e.g. `JT0-1234567-89`.
    pub laser_code: String,
}

/// Checked citizen evidence: the front and back of a Thai ID card.
///
/// Serialises for storage as `{citizen_id, thai_name, english_name,
/// birth_date, laser_code}`; deserialising re-validates every field. `Debug`
/// masks every personal field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitizenEvidence {
    /// The thirteen-digit id.
    pub citizen_id: CitizenId,
    /// Name in Thai script, as the registry holds it.
    pub thai_name: ThaiName,
    /// Name in Latin script, when the card has one.
    pub english_name: Option<EnglishName>,
    /// Date of birth.
    pub birth_date: BirthDate,
    /// Laser code from the back of the card.
    pub laser_code: LaserCode,
}

/// Version tag that starts the canonical encoding hashed by [`CitizenEvidence::evidence_digest`].
/// Change it (and keep the old encoder) if the encoding ever changes.
pub const EVIDENCE_DIGEST_VERSION: &str = "tuaton-citizen-evidence-v1";

impl CitizenEvidence {
    /// Validates raw input. `today` (from the [`tuaton_core::Clock`]) bounds the birth date.
    pub fn parse(input: &CitizenEvidenceInput, today: Date) -> Result<Self, InvalidEvidence> {
        let mut errors = Vec::new();
        let citizen_id = keep(
            &mut errors,
            EvidenceField::CitizenId,
            if input.citizen_id.trim().is_empty() {
                Err(FieldProblem::Missing)
            } else {
                CitizenId::parse(&input.citizen_id).map_err(FieldProblem::BadCitizenId)
            },
        );
        let thai_name = match ThaiName::new(&input.thai_given_name, &input.thai_family_name) {
            Ok(n) => Some(n),
            Err(es) => {
                errors.extend(es);
                None
            }
        };
        let no_english = input.english_given_name.trim().is_empty()
            && input.english_family_name.trim().is_empty();
        let english_name = if no_english {
            Some(None)
        } else {
            match EnglishName::new(&input.english_given_name, &input.english_family_name) {
                Ok(n) => Some(Some(n)),
                Err(es) => {
                    errors.extend(es);
                    None
                }
            }
        };
        let birth_date = keep(
            &mut errors,
            EvidenceField::BirthDate,
            if input.birth_date.trim().is_empty() {
                Err(FieldProblem::Missing)
            } else {
                BirthDate::parse(&input.birth_date)
                    .and_then(|d| {
                        if d.is_after(today) {
                            Err(BirthDateError::InFuture)
                        } else {
                            Ok(d)
                        }
                    })
                    .map_err(FieldProblem::BadBirthDate)
            },
        );
        let laser_code = keep(
            &mut errors,
            EvidenceField::LaserCode,
            if input.laser_code.trim().is_empty() {
                Err(FieldProblem::Missing)
            } else {
                LaserCode::parse(&input.laser_code).map_err(FieldProblem::BadLaserCode)
            },
        );

        match (citizen_id, thai_name, english_name, birth_date, laser_code) {
            (
                Some(citizen_id),
                Some(thai_name),
                Some(english_name),
                Some(birth_date),
                Some(laser_code),
            ) if errors.is_empty() => Ok(Self {
                citizen_id,
                thai_name,
                english_name,
                birth_date,
                laser_code,
            }),
            _ => Err(InvalidEvidence(errors)),
        }
    }

    /// SHA-256, hex, over a canonical encoding of every field, so an audit record
    /// can show which evidence a decision was about without holding it.
    ///
    /// Encoding: the version tag [`EVIDENCE_DIGEST_VERSION`], then each field in a
    /// fixed order as a 4-byte big-endian length and its UTF-8 bytes: citizen id
    /// (13 digits), Thai given, Thai family, English presence (`"1"`/`"0"`),
    /// English given, English family (empty when absent), birth date (Buddhist-era
    /// `YYYYMMDD`), laser code (12 characters). Length prefixes make the encoding
    /// unambiguous; names are already normalised, so equal evidence gives equal
    /// digests.
    ///
    /// This is a commitment, not anonymisation: whoever holds the evidence can
    /// recompute it. The laser code's unpredictability is what makes guessing
    /// the input from the digest impractical.
    pub fn evidence_digest(&self) -> EvidenceDigest {
        let (en_present, en_given, en_family) = match &self.english_name {
            Some(n) => ("1", n.given(), n.family()),
            None => ("0", "", ""),
        };
        let fields = [
            self.citizen_id.compact(),
            self.thai_name.given().to_owned(),
            self.thai_name.family().to_owned(),
            en_present.to_owned(),
            en_given.to_owned(),
            en_family.to_owned(),
            self.birth_date.buddhist_era(),
            self.laser_code.compact(),
        ];
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for f in std::iter::once(EVIDENCE_DIGEST_VERSION).chain(fields.iter().map(String::as_str)) {
            // Every field is bounded far below 4 GiB (names ≤ 100 chars).
            let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
            ctx.update(&len.to_be_bytes());
            ctx.update(f.as_bytes());
        }
        EvidenceDigest(hex::encode(ctx.finish().as_ref()))
    }
}

/// Keeps a field's value, or records its problem.
fn keep<T>(
    errors: &mut Vec<FieldError>,
    field: EvidenceField,
    r: Result<T, FieldProblem>,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(problem) => {
            errors.push(FieldError { field, problem });
            None
        }
    }
}

/// The hex SHA-256 of a [`CitizenEvidence`]; see [`CitizenEvidence::evidence_digest`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EvidenceDigest(String);

impl EvidenceDigest {
    /// The 64 lower-case hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EvidenceDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use time::macros::date;

    fn input() -> CitizenEvidenceInput {
        CitizenEvidenceInput {
            citizen_id: "1-9990-00000-01-7".into(),
            thai_given_name: "สมชาย".into(),
            thai_family_name: "ใจดี".into(),
            english_given_name: "Somchai".into(),
            english_family_name: "Jaidee".into(),
            birth_date: "1964-02-22".into(),
            laser_code: "jt0-1234567-89".into(),
        }
    }

    const TODAY: Date = date!(2026 - 06 - 01);

    #[test]
    fn laser_code_accepts_every_common_layout() {
        for s in [
            "JT0-1234567-89",
            "JT0123456789",
            "jt0 1234567 89",
            " Jt0-123 4567-89 ",
        ] {
            let l = LaserCode::parse(s).unwrap();
            assert_eq!(l.to_string(), "JT0-1234567-89");
            assert_eq!(l.compact(), "JT0123456789");
        }
        assert_eq!(
            format!("{:?}", LaserCode::parse("JT0123456789").unwrap()),
            "LaserCode(JTx-xxxxxxx-89)"
        );
        assert_eq!(
            serde_json::to_string(&LaserCode::parse("JT0-1234567-89").unwrap()).unwrap(),
            "\"JT0123456789\""
        );
    }

    #[test]
    fn laser_code_refuses_wrong_shapes() {
        assert_eq!(
            LaserCode::parse("JT012345678"),
            Err(LaserCodeError::WrongShape)
        );
        assert_eq!(
            LaserCode::parse("JT01234567890"),
            Err(LaserCodeError::WrongShape)
        );
        assert_eq!(
            LaserCode::parse("J10123456789"),
            Err(LaserCodeError::WrongShape)
        );
        assert_eq!(
            LaserCode::parse("JTA123456789"),
            Err(LaserCodeError::WrongShape)
        );
        assert_eq!(
            LaserCode::parse("JT0_123456789"),
            Err(LaserCodeError::InvalidCharacter)
        );
        assert_eq!(
            LaserCode::parse("ก0123456789A"),
            Err(LaserCodeError::InvalidCharacter)
        );
    }

    #[test]
    fn thai_names_must_be_thai_script_and_are_normalised() {
        let n = ThaiName::new("  สมชาย ", "ณ   ระนอง").unwrap();
        assert_eq!(n.given(), "สมชาย");
        assert_eq!(n.family(), "ณ ระนอง");
        let e = ThaiName::new("Somchai", "").unwrap_err();
        assert_eq!(
            e[0],
            FieldError {
                field: EvidenceField::ThaiGivenName,
                problem: FieldProblem::WrongScript
            }
        );
        assert_eq!(
            e[1],
            FieldError {
                field: EvidenceField::ThaiFamilyName,
                problem: FieldProblem::Missing
            }
        );
        // Thai digits and a lone tone mark are not names.
        assert!(ThaiName::new("สมชาย๑", "ใจดี").is_err());
        assert!(ThaiName::new("\u{0E48}", "ใจดี").is_err());
        let long: String = "ก".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(
            ThaiName::new(&long, "ใจดี").unwrap_err()[0].problem,
            FieldProblem::TooLong {
                max: MAX_NAME_CHARS
            }
        );
        assert_eq!(format!("{n:?}"), "ThaiName([redacted 5+7 chars])");
    }

    #[test]
    fn birth_dates_convert_to_buddhist_era() {
        assert_eq!(
            BirthDate::parse("1964-02-22").unwrap().buddhist_era(),
            "25070222"
        );
        assert_eq!(BirthDate::parse("1942").unwrap().buddhist_era(), "24850000");
        assert_eq!(
            BirthDate::parse("1942-05").unwrap().buddhist_era(),
            "24850500"
        );
        assert_eq!(
            BirthDate::from_buddhist_era("25070222").unwrap(),
            BirthDate::parse("1964-02-22").unwrap()
        );
        assert_eq!(
            BirthDate::from_buddhist_era("24850000").unwrap(),
            BirthDate::Year { year: 1942 }
        );
        assert_eq!(
            BirthDate::parse("1964-02-30"),
            Err(BirthDateError::NoSuchDate)
        );
        assert_eq!(
            BirthDate::from_buddhist_era("24850010"),
            Err(BirthDateError::NoSuchDate)
        );
        assert_eq!(BirthDate::parse("22/02/1964"), Err(BirthDateError::Format));
        assert_eq!(
            BirthDate::parse("1700-01-01"),
            Err(BirthDateError::YearOutOfRange)
        );
        for s in ["1964-02-22", "1942-05", "1942"] {
            let d = BirthDate::parse(s).unwrap();
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{s}\""));
        }
    }

    #[test]
    fn valid_input_parses() {
        let e = CitizenEvidence::parse(&input(), TODAY).unwrap();
        assert_eq!(e.citizen_id.compact(), "1999000000017");
        assert_eq!(e.laser_code.compact(), "JT0123456789");
        assert_eq!(e.birth_date.buddhist_era(), "25070222");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<CitizenEvidence>(&json).unwrap(), e);
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = CitizenEvidenceInput {
            citizen_id: "1999000000018".into(),
            thai_given_name: "Somchai".into(),
            thai_family_name: String::new(),
            english_given_name: "สมชาย".into(),
            english_family_name: "Jaidee".into(),
            birth_date: "2030-01-01".into(),
            laser_code: "JT0-12".into(),
        };
        let err = CitizenEvidence::parse(&bad, TODAY).unwrap_err();
        let fields: Vec<_> = err.fields().collect();
        assert_eq!(
            fields,
            vec![
                EvidenceField::CitizenId,
                EvidenceField::ThaiGivenName,
                EvidenceField::ThaiFamilyName,
                EvidenceField::EnglishGivenName,
                EvidenceField::BirthDate,
                EvidenceField::LaserCode,
            ]
        );
        assert!(err.to_string().contains("birth_date: lies in the future"));
    }

    #[test]
    fn english_name_is_optional_but_not_half_given() {
        let mut i = input();
        i.english_given_name.clear();
        i.english_family_name.clear();
        assert!(
            CitizenEvidence::parse(&i, TODAY)
                .unwrap()
                .english_name
                .is_none()
        );
        i.english_given_name = "Somchai".into();
        let err = CitizenEvidence::parse(&i, TODAY).unwrap_err();
        assert_eq!(
            err.fields().collect::<Vec<_>>(),
            vec![EvidenceField::EnglishFamilyName]
        );
    }

    #[test]
    fn digest_is_stable_and_sensitive_to_every_field() {
        let base = CitizenEvidence::parse(&input(), TODAY).unwrap();
        let d = base.evidence_digest();
        assert_eq!(d.as_str().len(), 64);
        // Same evidence typed differently gives the same digest.
        let mut relaid = input();
        relaid.citizen_id = "1999000000017".into();
        relaid.laser_code = "JT0123456789".into();
        relaid.thai_given_name = " สมชาย  ".into();
        assert_eq!(
            CitizenEvidence::parse(&relaid, TODAY)
                .unwrap()
                .evidence_digest(),
            d
        );

        let variants: Vec<fn(&mut CitizenEvidenceInput)> = vec![
            |i| i.citizen_id = "1999000000025".into(),
            |i| i.thai_given_name = "สมชัย".into(),
            |i| i.thai_family_name = "ใจดีมาก".into(),
            |i| i.english_given_name = "Somchay".into(),
            |i| {
                i.english_given_name.clear();
                i.english_family_name.clear();
            },
            |i| i.birth_date = "1964-02".into(),
            |i| i.laser_code = "JT0-1234567-88".into(),
        ];
        for change in variants {
            let mut i = input();
            change(&mut i);
            assert_ne!(
                CitizenEvidence::parse(&i, TODAY).unwrap().evidence_digest(),
                d
            );
        }
        // Moving text between given and family name changes the digest (length prefixes).
        let a = ThaiName::new("กข", "ค").unwrap();
        let b = ThaiName::new("ก", "ขค").unwrap();
        let mut ea = base.clone();
        ea.thai_name = a;
        let mut eb = base;
        eb.thai_name = b;
        assert_ne!(ea.evidence_digest(), eb.evidence_digest());
    }

    #[test]
    fn debug_never_shows_personal_fields() {
        let e = CitizenEvidence::parse(&input(), TODAY).unwrap();
        let dbg = format!("{e:?}");
        for secret in ["สมชาย", "Somchai", "1964", "1234567", "9990000"] {
            assert!(!dbg.contains(secret), "{secret} leaked in {dbg}");
        }
    }
}
