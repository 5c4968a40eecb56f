//! Assurance levels from ETDA's digital-identity guideline.
//!
//! Identity assurance (IAL) follows ขมธอ. 19-2561 (enrolment and identity
//! proofing); authenticator assurance (AAL) follows ขมธอ. 20-2561
//! (authentication). NDID exchanges the same levels as numbers (IAL 2.1,
//! AAL 2.2, …); Tuaton keeps that numbering, adds a stable `acr` URI for each
//! level for OpenID Connect, and orders the levels so "at least" comparisons
//! are plain `>=`. What each level demands is written in docs/assurance.md.

use std::fmt;
use std::str::FromStr;

/// A string or number that names no level. The fault is the caller's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a known {kind} level; accepted: {accepted}")]
pub struct LevelError {
    input: String,
    kind: &'static str,
    accepted: &'static str,
}

macro_rules! level_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal, $prefix:literal, accepted = $accepted:literal,
        [ $( $(#[$vmeta:meta])* $variant:ident = $num:literal ),+ $(,)? ]
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every level, lowest first.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// The NDID number as text, e.g. `"2.1"`.
            pub fn number(self) -> &'static str {
                match self { $( $name::$variant => $num, )+ }
            }

            /// The `acr` value for OpenID Connect; stable across releases.
            pub fn acr(self) -> &'static str {
                match self { $( $name::$variant => concat!("urn:tuaton:", $prefix, ":", $num), )+ }
            }

            /// Parses an `acr` URI produced by [`Self::acr`].
            pub fn from_acr(uri: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|l| l.acr() == uri)
            }

            /// Serialises as the NDID number in text (`"2.1"`), the form stored
            /// rows and the account documents carry; use with `serialize_with`.
            pub fn serialize_as_text<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.number())
            }

            /// Reads a stored level; anything else is an error, never a default.
            pub fn from_stored(s: &str) -> Result<Self, LevelError> {
                Self::ALL.iter().copied().find(|l| l.number() == s).ok_or_else(|| Self::error(s))
            }

            fn error(input: &str) -> LevelError {
                LevelError { input: input.chars().take(40).collect(), kind: $kind, accepted: $accepted }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($kind, "{}"), self.number())
            }
        }

        /// Accepts `"2.1"`, `"IAL2.1"`/`"AAL2.1"` (any case) or the `acr` URI.
        impl FromStr for $name {
            type Err = LevelError;
            fn from_str(s: &str) -> Result<Self, LevelError> {
                let t = s.trim();
                if let Some(l) = Self::from_acr(t) {
                    return Ok(l);
                }
                let num = if t.len() >= 3 && t[..3].eq_ignore_ascii_case($kind) { &t[3..] } else { t };
                Self::ALL.iter().copied().find(|l| l.number() == num).ok_or_else(|| Self::error(s))
            }
        }

        /// The stored form: the NDID number in text, exactly.
        impl TryFrom<String> for $name {
            type Error = LevelError;
            fn try_from(s: String) -> Result<Self, LevelError> {
                Self::from_stored(&s)
            }
        }

        /// JSON form: the NDID number, e.g. `2.1` (as NDID sends it).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // Every NDID number is a short decimal that f64 prints back exactly.
                let n: f64 = self.number().parse().map_err(serde::ser::Error::custom)?;
                s.serialize_f64(n)
            }
        }

        /// Accepts the number (`2.1`) or any string form [`FromStr`] takes.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("an ", $kind, " level such as ", $accepted))
                    }
                    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<$name, E> {
                        $name::ALL
                            .iter()
                            .copied()
                            .find(|l| l.number().parse::<f64>().is_ok_and(|n| (n - v).abs() < 1e-9))
                            .ok_or_else(|| E::custom($name::error(&v.to_string())))
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        self.visit_f64(v as f64)
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        self.visit_f64(v as f64)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

level_enum!(
    /// Identity assurance level (ขมธอ. 19-2561), lowest first.
    Ial, "IAL", "ial", accepted = "1.1, 1.2, 1.3, 2.1, 2.2, 2.3, 3",
    [
        /// Self-asserted identity, no evidence checked.
        Ial1_1 = "1.1",
        /// Identity evidence presented remotely but not verified with the issuer.
        Ial1_2 = "1.2",
        /// Evidence copy checked for plausibility, not verified with the issuer.
        Ial1_3 = "1.3",
        /// Evidence verified remotely against the issuing registry.
        Ial2_1 = "2.1",
        /// Evidence verified against the registry plus in-person or biometric binding.
        Ial2_2 = "2.2",
        /// Strong evidence verified in person with biometric comparison.
        Ial2_3 = "2.3",
        /// Supervised in-person proofing with several documents and mandatory biometrics.
        Ial3 = "3",
    ]
);

level_enum!(
    /// Authenticator assurance level (ขมธอ. 20-2561), lowest first.
    Aal, "AAL", "aal", accepted = "1, 2.1, 2.2, 3",
    [
        /// One authentication factor.
        Aal1 = "1",
        /// Two factors.
        Aal2_1 = "2.1",
        /// Two factors, one a device-bound cryptographic authenticator.
        Aal2_2 = "2.2",
        /// A hardware cryptographic authenticator, verifier-impersonation resistant.
        Aal3 = "3",
    ]
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn levels_are_totally_ordered_lowest_first() {
        for w in Ial::ALL.windows(2) {
            assert!(w[0] < w[1]);
        }
        for w in Aal::ALL.windows(2) {
            assert!(w[0] < w[1]);
        }
        assert!(Ial::Ial2_1 >= Ial::Ial1_3);
        assert!(Aal::Aal3 > Aal::Aal2_2);
    }

    #[test]
    fn acr_uris_are_stable_and_round_trip() {
        assert_eq!(Ial::Ial2_1.acr(), "urn:tuaton:ial:2.1");
        assert_eq!(Aal::Aal2_2.acr(), "urn:tuaton:aal:2.2");
        assert_eq!(Ial::Ial3.acr(), "urn:tuaton:ial:3");
        for l in Ial::ALL {
            assert_eq!(Ial::from_acr(l.acr()), Some(*l));
            assert_eq!(l.acr().parse::<Ial>().unwrap(), *l);
        }
        for l in Aal::ALL {
            assert_eq!(Aal::from_acr(l.acr()), Some(*l));
        }
        assert_eq!(Ial::from_acr("urn:tuaton:aal:2.2"), None);
    }

    #[test]
    fn json_form_is_the_ndid_number() {
        assert_eq!(serde_json::to_string(&Ial::Ial2_3).unwrap(), "2.3");
        assert_eq!(serde_json::to_string(&Ial::Ial3).unwrap(), "3.0");
        assert_eq!(serde_json::from_str::<Ial>("2.3").unwrap(), Ial::Ial2_3);
        assert_eq!(serde_json::from_str::<Ial>("3").unwrap(), Ial::Ial3);
        assert_eq!(
            serde_json::from_str::<Aal>("\"AAL2.2\"").unwrap(),
            Aal::Aal2_2
        );
        assert_eq!(serde_json::from_str::<Aal>("1").unwrap(), Aal::Aal1);
        for l in Ial::ALL {
            let j = serde_json::to_string(l).unwrap();
            assert_eq!(serde_json::from_str::<Ial>(&j).unwrap(), *l);
        }
    }

    #[test]
    fn unknown_levels_are_refused_with_the_accepted_list() {
        let e = "2.4".parse::<Ial>().unwrap_err();
        assert!(e.to_string().contains("1.1, 1.2"));
        assert!(serde_json::from_str::<Aal>("2.3").is_err());
        assert!(serde_json::from_str::<Ial>("\"IAL9\"").is_err());
    }
}
