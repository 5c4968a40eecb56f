//! Stable, printable names for keys.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::KeyError;

/// Characters left unescaped in RFC 7512 path values: `unreserved` of
/// RFC 3986 plus a few `pk11-path-res-avail` ones that are harmless.
const PK11_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where a key lives and how to find it again. Printed and parsed as a
/// string; that string is what the database and configuration store.
///
/// - `soft:<id>` for the software backend (`id` is 32 lowercase hex digits);
/// - `pkcs11:token=<label>;id=<%xx..>;object=<label>;type=private` (RFC 7512)
///   for PKCS#11. The URI never carries a PIN.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum KeyRef {
    /// A key sealed in the software backend's directory.
    Soft {
        /// Random identifier, also the file name.
        id: String,
    },
    /// A private key object on a PKCS#11 token.
    Pkcs11 {
        /// CKA_LABEL of the token.
        token: String,
        /// CKA_ID of the key pair.
        id: Vec<u8>,
        /// CKA_LABEL of the key, for humans; lookup uses `id`.
        object: Option<String>,
    },
}

impl KeyRef {
    /// The software backend's id, if this is a `soft:` reference.
    pub fn soft_id(&self) -> Option<&str> {
        match self {
            KeyRef::Soft { id } => Some(id),
            KeyRef::Pkcs11 { .. } => None,
        }
    }

    /// The token label and CKA_ID, if this is a `pkcs11:` reference.
    pub fn pkcs11_id(&self) -> Option<(&str, &[u8])> {
        match self {
            KeyRef::Pkcs11 { token, id, .. } => Some((token, id)),
            KeyRef::Soft { .. } => None,
        }
    }

    pub(crate) fn is_valid_soft_id(id: &str) -> bool {
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRef::Soft { id } => write!(f, "soft:{id}"),
            KeyRef::Pkcs11 { token, id, object } => {
                write!(f, "pkcs11:token={}", utf8_percent_encode(token, PK11_VALUE))?;
                f.write_str(";id=")?;
                for b in id {
                    // RFC 7512 §2.3: CKA_ID is always written percent-encoded.
                    write!(f, "%{b:02x}")?;
                }
                if let Some(object) = object {
                    write!(f, ";object={}", utf8_percent_encode(object, PK11_VALUE))?;
                }
                f.write_str(";type=private")
            }
        }
    }
}

impl fmt::Debug for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRef({self})")
    }
}

fn invalid(reason: impl Into<String>) -> KeyError {
    KeyError::InvalidKeyRef {
        reason: reason.into(),
    }
}

fn decode(value: &str) -> Result<String, KeyError> {
    percent_decode_str(value)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| invalid("attribute value is not UTF-8"))
}

fn parse_pkcs11(rest: &str) -> Result<KeyRef, KeyError> {
    // Query attributes (pin-value, module-path, ...) are refused: a PIN
    // must never travel inside a key reference.
    if rest.contains('?') {
        return Err(invalid(
            "pkcs11: query attributes are not accepted in key references",
        ));
    }
    let mut token = None;
    let mut id = None;
    let mut object = None;
    for attr in rest.split(';').filter(|a| !a.is_empty()) {
        let (name, value) = attr
            .split_once('=')
            .ok_or_else(|| invalid("pkcs11: attribute without '='"))?;
        match name {
            "token" => token = Some(decode(value)?),
            "id" => id = Some(percent_decode_str(value).collect::<Vec<u8>>()),
            "object" => object = Some(decode(value)?),
            "type" if value == "private" => {}
            "type" => return Err(invalid("pkcs11: only type=private names a signing key")),
            // RFC 7512 allows further attributes (manufacturer, serial, ...);
            // they narrow the search but we look keys up by token and id.
            _ => {}
        }
    }
    let token = token.ok_or_else(|| invalid("pkcs11: missing token="))?;
    let id = id
        .filter(|i| !i.is_empty())
        .ok_or_else(|| invalid("pkcs11: missing id="))?;
    Ok(KeyRef::Pkcs11 { token, id, object })
}

impl FromStr for KeyRef {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        if let Some(id) = s.strip_prefix("soft:") {
            if KeyRef::is_valid_soft_id(id) {
                return Ok(KeyRef::Soft { id: id.to_owned() });
            }
            return Err(invalid("soft: id must be 32 lowercase hex digits"));
        }
        if let Some(rest) = s.strip_prefix("pkcs11:") {
            return parse_pkcs11(rest);
        }
        Err(invalid("expected a soft: or pkcs11: reference"))
    }
}

impl Serialize for KeyRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs11_uri_round_trips_with_escaping() {
        let r = KeyRef::Pkcs11 {
            token: "Tuaton prod;1".into(),
            id: vec![0x00, 0xab, 0x7f],
            object: Some("id-token 2026/01".into()),
        };
        let s = r.to_string();
        assert_eq!(
            s,
            "pkcs11:token=Tuaton%20prod%3B1;id=%00%ab%7f;object=id-token%202026%2F01;type=private"
        );
        assert_eq!(s.parse::<KeyRef>().ok(), Some(r));
    }

    #[test]
    fn soft_ref_round_trips_and_rejects_paths() {
        let id = "0123456789abcdef0123456789abcdef";
        let r: KeyRef = format!("soft:{id}")
            .parse()
            .unwrap_or(KeyRef::Soft { id: "x".into() });
        assert_eq!(r.soft_id(), Some(id));
        assert!("soft:../../etc/passwd".parse::<KeyRef>().is_err());
        assert!(
            "soft:0123456789ABCDEF0123456789ABCDEF"
                .parse::<KeyRef>()
                .is_err()
        );
    }

    #[test]
    fn pin_in_uri_is_refused() {
        assert!(
            "pkcs11:token=a;id=%01?pin-value=1234"
                .parse::<KeyRef>()
                .is_err()
        );
        assert!("pkcs11:token=a".parse::<KeyRef>().is_err());
        assert!("file:/x".parse::<KeyRef>().is_err());
    }
}
