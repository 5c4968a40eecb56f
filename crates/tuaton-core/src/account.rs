//! Tuaton's own account identifier.

use std::fmt;

/// An account's opaque id: 128 random bits as 32 lowercase hex digits,
/// issued by the store when the account is created. Not personal data: it is
/// safe in audit records and logs, and says nothing about the person.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

/// Text that is not an account id. The caller's input, or a corrupt row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an account id (32 lowercase hex digits)")]
pub struct AccountIdError;

impl AccountId {
    /// Parses the stored or transmitted form.
    pub fn parse(s: &str) -> Result<Self, AccountIdError> {
        let ok = s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(AccountIdError)
        }
    }

    /// The id as text, for storage and audit records.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first eight digits, for names shown to a person (a passkey's account name).
    pub fn short(&self) -> &str {
        &self.0[..8]
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.0)
    }
}

impl TryFrom<String> for AccountId {
    type Error = AccountIdError;

    fn try_from(s: String) -> Result<Self, AccountIdError> {
        Self::parse(&s)
    }
}

impl std::str::FromStr for AccountId {
    type Err = AccountIdError;

    fn from_str(s: &str) -> Result<Self, AccountIdError> {
        Self::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_32_lowercase_hex_digits_are_an_account_id() {
        let id = AccountId::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(id.short(), "01234567");
        for bad in [
            "",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdeg",
            "account:0123456789abcdef0123456789",
        ] {
            assert_eq!(AccountId::parse(bad), Err(AccountIdError), "{bad}");
        }
    }
}
