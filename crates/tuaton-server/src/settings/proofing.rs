//! The registries identity proofing asks, and how often.

use url::Url;

use super::SettingsError;
use super::fields::{Fields, Whole, url};

pub(super) const AUTHORITY_RECHECK: Whole = Whole {
    name: "TUATON_AUTHORITY_RECHECK_SECS",
    default: 86_400,
    least: 0,
    most: 31_536_000,
    accepted: "whole seconds from 0 to 31536000",
};

/// `TUATON_CARD_REGISTRY_URL`, if set.
pub(super) fn card_registry_url(f: &Fields) -> Result<Option<Url>, SettingsError> {
    f.get(
        "TUATON_CARD_REGISTRY_URL",
        "an http:// or https:// URL of the card-status SOAP endpoint",
        |v| {
            let u = url(v)?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err("not http or https".to_owned());
            }
            Ok(u)
        },
    )
}
