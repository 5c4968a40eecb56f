//! WebAuthn: the name authenticators show, the origins accepted, and which
//! authenticators count as AAL3 hardware.

use std::path::PathBuf;

use tuaton_passkeys::{ExtraOrigin, PasskeyError};

use super::SettingsError;
use super::fields::Fields;

/// The relying party's name and origins, and the AAL3 allow-list's sources.
pub(super) struct Passkeys {
    pub(super) rp_name: String,
    pub(super) aal3_allow_list: Option<PathBuf>,
    pub(super) fido_mds_blob: Option<PathBuf>,
    pub(super) fido_mds_root: Option<PathBuf>,
    pub(super) danger_unverified_mds_blob: bool,
    pub(super) webauthn_extra_origins: Vec<ExtraOrigin>,
}

impl Passkeys {
    pub(super) fn read(f: &Fields) -> Result<Self, SettingsError> {
        let rp_name = f.get("TUATON_RP_NAME", "a short service name", |v| {
            let name = v.trim();
            if name.is_empty() || name.chars().count() > 64 {
                return Err("empty or longer than 64 characters".to_owned());
            }
            Ok(name.to_owned())
        })?;
        let aal3_allow_list = f.path("TUATON_AAL3_ALLOW_LIST");
        let fido_mds_blob = f.path("TUATON_FIDO_MDS_BLOB");
        let fido_mds_root = f.path("TUATON_FIDO_MDS_ROOT");
        let danger_unverified_mds_blob = f.flag("TUATON_DANGER_UNVERIFIED_MDS_BLOB", false)?;
        if let (Some(blob), None, false) =
            (&fido_mds_blob, &fido_mds_root, danger_unverified_mds_blob)
        {
            // An unverified BLOB decides who reaches AAL3; refuse to start
            // rather than import one silently.
            return Err(SettingsError::Invalid {
                setting: "TUATON_FIDO_MDS_BLOB".into(),
                value: blob.display().to_string(),
                problem: "set without TUATON_FIDO_MDS_ROOT, so its signature cannot be verified"
                    .into(),
                expected: "TUATON_FIDO_MDS_ROOT naming a PEM file with the FIDO Alliance's MDS root certificate (or, accepting the risk, TUATON_DANGER_UNVERIFIED_MDS_BLOB=true)",
            });
        }
        let webauthn_extra_origins = f.get(
            "TUATON_WEBAUTHN_EXTRA_ORIGINS",
            "comma-separated origins, each https://HOST[:PORT] or android:apk-key-hash:<43 base64url characters>",
            parse_extra_origins,
        )?;
        Ok(Self {
            rp_name: rp_name.unwrap_or_else(|| "Tuaton".to_owned()),
            aal3_allow_list,
            fido_mds_blob,
            fido_mds_root,
            danger_unverified_mds_blob,
            webauthn_extra_origins: webauthn_extra_origins.unwrap_or_default(),
        })
    }
}

fn parse_extra_origins(v: &str) -> Result<Vec<ExtraOrigin>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            o.parse::<ExtraOrigin>().map_err(|e| match e {
                PasskeyError::Config(m) => m,
                other => other.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::path::PathBuf;

    use crate::settings::tests::{load, refused};

    #[test]
    fn mds_blob_needs_a_root_unless_the_danger_setting_is_on() {
        refused(
            &[("TUATON_FIDO_MDS_BLOB", "/etc/tuaton/blob.jwt")],
            None,
            &["TUATON_FIDO_MDS_BLOB", "TUATON_FIDO_MDS_ROOT"],
        );
        let s = load(
            &[
                ("TUATON_FIDO_MDS_BLOB", "/etc/tuaton/blob.jwt"),
                ("TUATON_FIDO_MDS_ROOT", "/etc/tuaton/fido-root.pem"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            s.fido_mds_root,
            Some(PathBuf::from("/etc/tuaton/fido-root.pem"))
        );
        assert!(!s.danger_unverified_mds_blob);
        let s = load(
            &[],
            Some("fido_mds_blob = \"blob.jwt\"\ndanger_unverified_mds_blob = true\n"),
        )
        .unwrap();
        assert!(s.danger_unverified_mds_blob && s.fido_mds_root.is_none());
        refused(
            &[("TUATON_DANGER_UNVERIFIED_MDS_BLOB", "yes")],
            None,
            &["TUATON_DANGER_UNVERIFIED_MDS_BLOB", "true or false"],
        );
    }

    #[test]
    fn extra_webauthn_origins_are_checked_at_start() {
        assert!(load(&[], None).unwrap().webauthn_extra_origins.is_empty());
        let hash = "Ab3_-9zZ0123456789abcdefghijklmnopqrstuvwxA";
        let list = format!("https://app.example.go.th, android:apk-key-hash:{hash},");
        let s = load(&[("TUATON_WEBAUTHN_EXTRA_ORIGINS", &list)], None).unwrap();
        let origins: Vec<String> = s
            .webauthn_extra_origins
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            origins,
            [
                "https://app.example.go.th".to_owned(),
                format!("android:apk-key-hash:{hash}")
            ]
        );
        for bad in [
            "http://app.example.go.th",
            "https://app.example.go.th/login",
            "android:apk-key-hash:tooshort",
            "ios:bundle-id:th.go.example",
        ] {
            refused(
                &[("TUATON_WEBAUTHN_EXTRA_ORIGINS", bad)],
                None,
                &["TUATON_WEBAUTHN_EXTRA_ORIGINS", "android:apk-key-hash"],
            );
        }
    }
}
