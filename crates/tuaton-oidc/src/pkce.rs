//! Proof Key for Code Exchange (RFC 7636), `S256` only: `plain` gives an
//! attacker who sees the authorization request the verifier too (RFC 9700
//! §2.1.1 requires S256 where the client can do it; every client can).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};

/// A `code_challenge` sent with `code_challenge_method=S256`: 43 characters
/// of base64url (the SHA-256 of the verifier).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CodeChallenge(String);

/// A `code_verifier`: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" /
/// "." / "_" / "~"` (RFC 7636 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

fn unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

impl CodeChallenge {
    /// Parses a challenge; `None` if it is not what `S256` produces.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 43
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && URL_SAFE_NO_PAD.decode(s).is_ok_and(|b| b.len() == 32);
        ok.then(|| Self(s.to_owned()))
    }

    /// Whether `verifier` is the one this challenge was made from,
    /// compared in constant time.
    pub fn is_met_by(&self, verifier: &CodeVerifier) -> bool {
        let made = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.0.as_bytes()));
        made.len() == self.0.len()
            && made
                .bytes()
                .zip(self.0.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl CodeVerifier {
    /// Parses a verifier; `None` if its length or characters are wrong.
    pub fn parse(s: &str) -> Option<Self> {
        ((43..=128).contains(&s.len()) && s.chars().all(unreserved)).then(|| Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn the_rfc_example_verifies() {
        let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        let challenge =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
        assert!(challenge.is_met_by(&verifier));
        let other = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl").unwrap();
        assert!(!challenge.is_met_by(&other));
    }

    #[test]
    fn malformed_values_are_refused() {
        assert!(CodeVerifier::parse("short").is_none());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_none());
        assert!(CodeVerifier::parse(&format!("{}+", "a".repeat(42))).is_none());
        assert!(CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c").is_none());
        assert!(CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM").is_none());
    }
}
