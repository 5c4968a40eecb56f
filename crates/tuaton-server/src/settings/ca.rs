//! The certificate authority: the operator's name in the CA's
//! certificates and the deployment's certificate policy (a development
//! server has both by default; a production deployment names its own), and
//! when a person's signing key is made (`TUATON_SIGNING_KEYS`), and an
//! external time-stamping authority for signatures (`TUATON_TSA_URL`) with
//! the certificate its tokens must be signed under (`TUATON_TSA_CERT`,
//! required outside development).

use tuaton_idm::pki::{CaPlan, CaSettings, ObjectIdentifier};
use url::Url;

use super::SettingsError;
use super::fields::Fields;

const POLICY_EXPECTED: &str = "a dotted object identifier under the operator's own registered arc, such as 1.3.6.1.4.1.<enterprise number>.1";

/// `TUATON_CA_ORGANIZATION` and `TUATON_CA_POLICY`: both or neither; with
/// neither, no CA is configured outside development mode.
pub(super) fn ca(f: &Fields, dev: bool, public_url: &Url) -> Result<Option<CaPlan>, SettingsError> {
    let organization = f.get(
        "TUATON_CA_ORGANIZATION",
        "the operating organisation's name, 1 to 64 characters",
        |v| {
            let name = v.trim();
            if name.is_empty() || name.chars().count() > 64 {
                return Err("empty or longer than 64 characters".to_owned());
            }
            Ok(name.to_owned())
        },
    )?;
    let policy = f.get("TUATON_CA_POLICY", POLICY_EXPECTED, |v| {
        let oid =
            ObjectIdentifier::new(v.trim()).map_err(|_| "not an object identifier".to_owned())?;
        // Signer policies add two arcs below it (the identity level).
        if oid.len() > 30 {
            return Err("more than 30 arcs".to_owned());
        }
        Ok(oid)
    })?;
    let at = |path: &str| {
        public_url.join(path).map_err(|e| SettingsError::Invalid {
            setting: "TUATON_PUBLIC_URL".into(),
            value: public_url.to_string(),
            problem: format!("cannot hold {path}: {e}"),
            expected: "an http:// or https:// URL",
        })
    };
    let settings = match (organization, policy) {
        (None, None) if !dev => return Ok(None),
        (None, None) => {
            CaSettings::development(public_url).map_err(|e| SettingsError::Invalid {
                setting: "TUATON_PUBLIC_URL".into(),
                value: public_url.to_string(),
                problem: e.to_string(),
                expected: "an http:// or https:// URL",
            })?
        }
        (Some(organization), Some(policy)) => CaSettings {
            country: "TH".into(),
            organization,
            ocsp_url: at("/ocsp")?,
            publication_base: at("/pki/")?,
            policy,
            signer_validity: time::Duration::days(730),
        },
        (Some(_), None) => {
            return Err(SettingsError::Invalid {
                setting: "TUATON_CA_POLICY".into(),
                value: String::new(),
                problem: "not set, but TUATON_CA_ORGANIZATION is".into(),
                expected: POLICY_EXPECTED,
            });
        }
        (None, Some(policy)) => {
            return Err(SettingsError::Invalid {
                setting: "TUATON_CA_ORGANIZATION".into(),
                value: String::new(),
                problem: format!("not set, but TUATON_CA_POLICY is ({policy})"),
                expected: "the operating organisation's name, 1 to 64 characters",
            });
        }
    };
    let keys_at_enrolment = f
        .get(
            "TUATON_SIGNING_KEYS",
            "first-signing (the default) or enrolment",
            |v| match v.trim() {
                "first-signing" => Ok(false),
                "enrolment" => Ok(true),
                _ => Err("neither first-signing nor enrolment".to_owned()),
            },
        )?
        .unwrap_or(false);
    let time_stamp_url = f.get(
        "TUATON_TSA_URL",
        "an http:// or https:// URL of an RFC 3161 time-stamping authority",
        |v| match Url::parse(v.trim()) {
            // Outside development only https: over http a network attacker
            // could swap the token.
            Ok(u) if u.scheme() == "http" && !dev => {
                Err("http:// outside development; an https:// URL".to_owned())
            }
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
            _ => Err("not an http:// or https:// URL".to_owned()),
        },
    )?;
    let time_stamp_certificate = f.get(
        "TUATON_TSA_CERT",
        "the path of the external TSA's certificate, PEM or DER",
        |v| {
            let bytes = std::fs::read(v.trim()).map_err(|e| format!("cannot be read: {e}"))?;
            tuaton_sign::tsp::certificate_der(&bytes).map_err(|e| e.to_string())
        },
    )?;
    match (&time_stamp_url, &time_stamp_certificate) {
        // A token from a TSA nobody pinned could carry any signer: outside
        // development the operator names the TSA's certificate.
        (Some(url), None) if !dev => {
            return Err(SettingsError::Invalid {
                setting: "TUATON_TSA_CERT".into(),
                value: String::new(),
                problem: format!("missing, while TUATON_TSA_URL names {url}"),
                expected: "the path of the external TSA's certificate, PEM or DER",
            });
        }
        (None, Some(_)) => {
            return Err(SettingsError::Invalid {
                setting: "TUATON_TSA_CERT".into(),
                value: String::new(),
                problem: "set without TUATON_TSA_URL".into(),
                expected: "TUATON_TSA_URL beside it",
            });
        }
        _ => {}
    }
    Ok(Some(CaPlan {
        keys_at_enrolment,
        time_stamp_url,
        time_stamp_certificate,
        ..CaPlan::named(settings, dev)
    }))
}
