//! A signature authorised in the authorization request: the Cloud
//! Signature Consortium API v2.0's credential authorization, asked for
//! either as an RFC 9396 `authorization_details` entry of type
//! `credential` or with the CSC parameters of the `credential` scope
//! (`credentialID`, `numSignatures`, `hashes`, `hashAlgorithmOID`,
//! `description`).
//!
//! Tuaton signs at sole-control level 2 (SCAL2): an authorization names
//! exactly the hashes the person confirms, each with the label they are
//! shown, and the access token issued for it signs those hashes and no
//! others. Only SHA-256 hashes (the person's key is P-256).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// The `authorization_details` type and the scope of a signature
/// authorization.
pub const CREDENTIAL: &str = "credential";
/// The scope of the CSC service methods (`credentials/list`, `…/info`).
pub const SERVICE: &str = "service";
/// SHA-256's object identifier (RFC 5754), the one hash signed.
pub const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";
/// The most hashes one authorization signs.
pub const MAX_HASHES: usize = 100;
/// The longest label shown for a hash, in characters.
pub const MAX_LABEL_CHARS: usize = 255;
/// The longest `credentialID` read.
const MAX_ID: usize = 128;

/// One hash to sign, with what the person is told it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelledHash {
    /// The SHA-256 value.
    pub hash: [u8; 32],
    /// The label the agency gave it, shown to the person; none given.
    pub label: Option<String>,
}

/// The signatures an authorization request asks the person to allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialAuthorization {
    /// The credential (signing key and certificate) that signs.
    pub credential_id: String,
    /// The hashes, in the order given: each signed at most once.
    pub hashes: Vec<LabelledHash>,
}

/// Why a credential authorization was refused: the sentence for
/// `error_description`, and whether it is `invalid_authorization_details`
/// (RFC 9396 §5) rather than `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The sentence.
    pub description: String,
    /// Whether the `authorization_details` parameter was at fault.
    pub in_details: bool,
}

fn refused(description: impl Into<String>, in_details: bool) -> Refused {
    Refused {
        description: description.into(),
        in_details,
    }
}

/// A hash as the CSC API sends it: base64, standard or URL-safe, padded
/// or not.
pub fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let trimmed = text.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
        .or_else(|| STANDARD_NO_PAD.decode(trimmed).ok())?;
    bytes.try_into().ok()
}

/// Unicode's bidirectional controls (UAX #9): a label or file name holding
/// one could be shown in another order than it is stored and audited, so
/// anything Tuaton shows a person as the name of what they sign refuses
/// them.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn check_label(label: &str, i: usize, in_details: bool) -> Result<(), Refused> {
    let chars = label.chars().count();
    if chars == 0
        || chars > MAX_LABEL_CHARS
        || label.chars().any(|c| c.is_control() || is_bidi_control(c))
    {
        return Err(refused(
            format!(
                "hash {i}: a label of 1 to {MAX_LABEL_CHARS} characters, without control or bidirectional control characters"
            ),
            in_details,
        ));
    }
    Ok(())
}

fn check_id(id: &str, in_details: bool) -> Result<String, Refused> {
    if id.is_empty() || id.len() > MAX_ID || id.chars().any(char::is_control) {
        return Err(refused("credentialID is missing or malformed.", in_details));
    }
    Ok(id.to_owned())
}

fn check_algorithm(oid: Option<&str>, in_details: bool) -> Result<(), Refused> {
    match oid {
        Some(SHA256_OID) => Ok(()),
        Some(_) => Err(refused(
            format!(
                "hashAlgorithmOID is not supported; Tuaton signs SHA-256 ({SHA256_OID}) hashes."
            ),
            in_details,
        )),
        None => Err(refused(
            format!("hashAlgorithmOID is required ({SHA256_OID})."),
            in_details,
        )),
    }
}

/// Refuses a hash named twice: the person would confirm two items that
/// are one signature.
fn check_distinct(hashes: &[LabelledHash], in_details: bool) -> Result<(), Refused> {
    let mut seen = std::collections::HashSet::new();
    match hashes.iter().position(|h| !seen.insert(h.hash)) {
        Some(i) => Err(refused(
            format!("hash {i} is named twice; each hash is signed once."),
            in_details,
        )),
        None => Ok(()),
    }
}

fn check_count(n: usize, in_details: bool) -> Result<(), Refused> {
    if n == 0 || n > MAX_HASHES {
        return Err(refused(
            format!(
                "a signature authorization names 1 to {MAX_HASHES} hashes (SCAL2: each hash is confirmed by the person)."
            ),
            in_details,
        ));
    }
    Ok(())
}

impl CredentialAuthorization {
    /// The credential authorization an authorization request asks for, if
    /// any: its `authorization_details` (RFC 9396 §2; only the type
    /// `credential`, at most one entry), or else, with the `credential`
    /// scope, the CSC parameters. `one` gives a parameter's value.
    pub fn from_request<'a>(
        one: impl Fn(&str) -> Option<&'a str>,
        scopes: &[String],
    ) -> Result<Option<Self>, Refused> {
        if let Some(details) = one("authorization_details") {
            return Self::from_details(details).map(Some);
        }
        if !scopes.iter().any(|s| s == CREDENTIAL) {
            return Ok(None);
        }
        let id = check_id(one("credentialID").unwrap_or_default(), false)?;
        let Some(hashes) = one("hashes") else {
            return Err(refused(
                "the credential scope needs hashes: Tuaton signs only hashes the person confirmed (SCAL2).",
                false,
            ));
        };
        check_algorithm(one("hashAlgorithmOID"), false)?;
        let label = one("description").map(str::to_owned);
        if let Some(l) = &label {
            check_label(l, 0, false)?;
        }
        let hashes: Vec<LabelledHash> = hashes
            .split(',')
            .enumerate()
            .map(|(i, h)| {
                decode_hash(h)
                    .map(|hash| LabelledHash {
                        hash,
                        label: label.clone(),
                    })
                    .ok_or_else(|| {
                        refused(format!("hash {i} is not a base64 SHA-256 value."), false)
                    })
            })
            .collect::<Result<_, _>>()?;
        check_count(hashes.len(), false)?;
        check_distinct(&hashes, false)?;
        match one("numSignatures").map(str::parse::<usize>) {
            Some(Ok(n)) if n == hashes.len() => {}
            _ => {
                return Err(refused(
                    "numSignatures must be the number of hashes given.",
                    false,
                ));
            }
        }
        Ok(Some(Self {
            credential_id: id,
            hashes,
        }))
    }

    fn from_details(details: &str) -> Result<Self, Refused> {
        let bad = |d: &str| refused(d, true);
        let parsed: serde_json::Value = serde_json::from_str(details)
            .map_err(|_| bad("authorization_details must be a JSON array (RFC 9396 §2)."))?;
        let entries = parsed
            .as_array()
            .ok_or_else(|| bad("authorization_details must be a JSON array (RFC 9396 §2)."))?;
        let mut found = None;
        for entry in entries {
            let kind = entry
                .get("type")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| bad("every authorization_details entry has a type."))?;
            if kind != CREDENTIAL {
                return Err(bad(
                    "an authorization_details type is not supported; Tuaton supports credential.",
                ));
            }
            if found.is_some() {
                return Err(bad("one credential entry per authorization request."));
            }
            found = Some(entry);
        }
        let entry = found.ok_or_else(|| bad("authorization_details is empty."))?;
        let text = |name: &str| entry.get(name).and_then(serde_json::Value::as_str);
        let id = check_id(text("credentialID").unwrap_or_default(), true)?;
        check_algorithm(text("hashAlgorithmOID"), true)?;
        let digests = entry
            .get("documentDigests")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| bad("documentDigests must be an array of {hash, label}."))?;
        check_count(digests.len(), true)?;
        let hashes = digests
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let hash = d
                    .get("hash")
                    .and_then(serde_json::Value::as_str)
                    .and_then(decode_hash)
                    .ok_or_else(|| {
                        bad(&format!(
                            "documentDigests[{i}].hash is not a base64 SHA-256 value."
                        ))
                    })?;
                let label = match d.get("label") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(l)) => {
                        check_label(l, i, true)?;
                        Some(l.clone())
                    }
                    Some(_) => {
                        return Err(bad(&format!(
                            "documentDigests[{i}].label must be a string."
                        )));
                    }
                };
                Ok(LabelledHash { hash, label })
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_distinct(&hashes, true)?;
        Ok(Self {
            credential_id: id,
            hashes,
        })
    }

    /// The `authorization_details` entry granted, as the token response
    /// and the access token carry it (RFC 9396 §7, §9.1).
    pub fn to_details(&self) -> serde_json::Value {
        let digests: Vec<serde_json::Value> = self
            .hashes
            .iter()
            .map(|h| {
                let mut d = serde_json::json!({ "hash": STANDARD.encode(h.hash) });
                if let Some(l) = &h.label {
                    d["label"] = serde_json::json!(l);
                }
                d
            })
            .collect();
        serde_json::json!([{
            "type": CREDENTIAL,
            "credentialID": self.credential_id,
            "hashAlgorithmOID": SHA256_OID,
            "documentDigests": digests,
        }])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const H: &str = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";

    fn with<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn details_of_type_credential_name_the_hashes_and_labels() {
        let details = format!(
            r#"[{{"type":"credential","credentialID":"k1","hashAlgorithmOID":"{SHA256_OID}","documentDigests":[{{"hash":"{H}","label":"สัญญาเช่า.pdf"}},{{"hash":"{}"}}]}}]"#,
            URL_SAFE_NO_PAD.encode([7u8; 32])
        );
        let got = CredentialAuthorization::from_request(
            with(&[("authorization_details", &details)]),
            &scopes(&["openid"]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(got.credential_id, "k1");
        assert_eq!(got.hashes.len(), 2);
        assert_eq!(got.hashes[0].label.as_deref(), Some("สัญญาเช่า.pdf"));
        assert_eq!(got.hashes[1].hash, [7u8; 32]);
        assert_eq!(got.hashes[1].label, None);
        let back = got.to_details();
        assert_eq!(back[0]["documentDigests"][0]["hash"], H);
        assert_eq!(back[0]["type"], "credential");
    }

    #[test]
    fn a_hash_named_twice_or_a_label_with_a_bidi_control_is_refused() {
        let twice = format!(
            r#"[{{"type":"credential","credentialID":"k1","hashAlgorithmOID":"{SHA256_OID}","documentDigests":[{{"hash":"{H}","label":"a"}},{{"hash":"{H}","label":"b"}}]}}]"#
        );
        let got = CredentialAuthorization::from_request(
            with(&[("authorization_details", &twice)]),
            &scopes(&["openid"]),
        )
        .unwrap_err();
        assert!(
            got.in_details && got.description.contains("twice"),
            "{got:?}"
        );
        let reordered = format!(
            r#"[{{"type":"credential","credentialID":"k1","hashAlgorithmOID":"{SHA256_OID}","documentDigests":[{{"hash":"{H}","label":"fdp.\u202egnp"}}]}}]"#
        );
        let got = CredentialAuthorization::from_request(
            with(&[("authorization_details", &reordered)]),
            &scopes(&["openid"]),
        )
        .unwrap_err();
        assert!(
            got.in_details && got.description.contains("bidirectional"),
            "{got:?}"
        );
    }

    #[test]
    fn the_csc_parameters_of_the_credential_scope_are_read_too() {
        let h2 = URL_SAFE_NO_PAD.encode([9u8; 32]);
        let hashes = format!("{},{h2}", H.trim_end_matches('='));
        let got = CredentialAuthorization::from_request(
            with(&[
                ("credentialID", "k1"),
                ("numSignatures", "2"),
                ("hashes", &hashes),
                ("hashAlgorithmOID", SHA256_OID),
                ("description", "ใบกำกับภาษี"),
            ]),
            &scopes(&["openid", "credential"]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(got.hashes.len(), 2);
        assert_eq!(got.hashes[1].hash, [9u8; 32]);
        assert_eq!(got.hashes[0].label.as_deref(), Some("ใบกำกับภาษี"));
        assert_eq!(
            CredentialAuthorization::from_request(with(&[]), &scopes(&["openid"])).unwrap(),
            None
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_parameter_named() {
        let refusal = |pairs: &[(&str, &str)], s: &[&str]| {
            CredentialAuthorization::from_request(with(pairs), &scopes(s)).unwrap_err()
        };
        let detail = |body: &str| refusal(&[("authorization_details", body)], &["openid"]);
        for bad in [
            "{}",
            "[]",
            "not json",
            r#"[{"type":"payment_initiation"}]"#,
            r#"[{"credentialID":"k1"}]"#,
            &format!(
                r#"[{{"type":"credential","credentialID":"k1","hashAlgorithmOID":"2.16.840.1.101.3.4.2.3","documentDigests":[{{"hash":"{H}"}}]}}]"#
            ),
            &format!(
                r#"[{{"type":"credential","credentialID":"k1","documentDigests":[{{"hash":"{H}"}}]}}]"#
            ),
            &format!(
                r#"[{{"type":"credential","credentialID":"k1","hashAlgorithmOID":"{SHA256_OID}","documentDigests":[]}}]"#
            ),
            &format!(
                r#"[{{"type":"credential","credentialID":"k1","hashAlgorithmOID":"{SHA256_OID}","documentDigests":[{{"hash":"AAAA"}}]}}]"#
            ),
            &format!(
                r#"[{{"type":"credential","credentialID":"k1","hashAlgorithmOID":"{SHA256_OID}","documentDigests":[{{"hash":"{H}","label":"a\nb"}}]}}]"#
            ),
            &format!(
                r#"[{{"type":"credential","hashAlgorithmOID":"{SHA256_OID}","documentDigests":[{{"hash":"{H}"}}]}}]"#
            ),
            &format!(
                r#"[{{"type":"credential","credentialID":"k1","hashAlgorithmOID":"{SHA256_OID}","documentDigests":[{{"hash":"{H}"}}]}},{{"type":"credential","credentialID":"k2","hashAlgorithmOID":"{SHA256_OID}","documentDigests":[{{"hash":"{H}"}}]}}]"#
            ),
        ] {
            let r = detail(bad);
            assert!(r.in_details, "{bad}: {r:?}");
        }
        let too_many = vec![H; MAX_HASHES + 1].join(",");
        let n = (MAX_HASHES + 1).to_string();
        for (pairs, why) in [
            (
                vec![
                    ("numSignatures", "1"),
                    ("hashes", H),
                    ("hashAlgorithmOID", SHA256_OID),
                ],
                "no credentialID",
            ),
            (
                vec![
                    ("credentialID", "k1"),
                    ("numSignatures", "1"),
                    ("hashAlgorithmOID", SHA256_OID),
                ],
                "no hashes",
            ),
            (
                vec![
                    ("credentialID", "k1"),
                    ("numSignatures", "2"),
                    ("hashes", H),
                    ("hashAlgorithmOID", SHA256_OID),
                ],
                "a count that differs",
            ),
            (
                vec![
                    ("credentialID", "k1"),
                    ("hashes", H),
                    ("hashAlgorithmOID", SHA256_OID),
                ],
                "no count",
            ),
            (
                vec![
                    ("credentialID", "k1"),
                    ("numSignatures", "1"),
                    ("hashes", H),
                ],
                "no algorithm",
            ),
            (
                vec![
                    ("credentialID", "k1"),
                    ("numSignatures", n.as_str()),
                    ("hashes", too_many.as_str()),
                    ("hashAlgorithmOID", SHA256_OID),
                ],
                "too many",
            ),
        ] {
            let r = refusal(&pairs, &["openid", "credential"]);
            assert!(!r.in_details, "{why}: {r:?}");
        }
    }
}
