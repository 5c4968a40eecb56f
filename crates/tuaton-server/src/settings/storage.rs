//! Where Tuaton keeps its data: the data directory and the database.

use std::path::{Path, PathBuf};

use super::fields::Fields;
use super::{SettingsError, redact_url};

/// `TUATON_DATA_DIR`, or `./data`.
pub(super) fn data_dir(f: &Fields) -> Result<PathBuf, SettingsError> {
    match f.given("TUATON_DATA_DIR") {
        // A variable set to nothing is a slip, not a wish for the working directory.
        Some(given) if given.from_env && given.value.trim().is_empty() => {
            Err(given.invalid("empty", "a directory path"))
        }
        Some(given) => Ok(PathBuf::from(given.value)),
        None => Ok(PathBuf::from("./data")),
    }
}

/// `TUATON_DATABASE_URL`, or a SQLite file in `data_dir`.
pub(super) fn database_url(f: &Fields, data_dir: &Path) -> Result<String, SettingsError> {
    let url = f.get_shown(
        "TUATON_DATABASE_URL",
        "postgres://USER@HOST:PORT/DB or sqlite://PATH",
        redact_url,
        |v| {
            let scheme = v.split(':').next().unwrap_or_default().to_ascii_lowercase();
            if !matches!(scheme.as_str(), "sqlite" | "postgres" | "postgresql") {
                return Err(format!("unsupported scheme `{scheme}`"));
            }
            Ok(v.to_owned())
        },
    )?;
    Ok(
        url.unwrap_or_else(|| {
            format!("sqlite://{}?mode=rwc", data_dir.join("tuaton.db").display())
        }),
    )
}

/// `TUATON_PASSKEY_SEAL_FILE`, or `passkey-seal.key-ref` in `data_dir`.
pub(super) fn passkey_seal_file(f: &Fields, data_dir: &Path) -> Result<PathBuf, SettingsError> {
    match f.given("TUATON_PASSKEY_SEAL_FILE") {
        Some(given) if given.value.trim().is_empty() => Err(given.invalid("empty", "a file path")),
        Some(given) => Ok(PathBuf::from(given.value)),
        None => Ok(data_dir.join("passkey-seal.key-ref")),
    }
}

/// `TUATON_AUDIT_ANCHOR_FILE`, or `audit-anchors.jsonl` in `data_dir`.
pub(super) fn audit_anchor_file(f: &Fields, data_dir: &Path) -> Result<PathBuf, SettingsError> {
    match f.given("TUATON_AUDIT_ANCHOR_FILE") {
        Some(given) if given.value.trim().is_empty() => Err(given.invalid("empty", "a file path")),
        Some(given) => Ok(PathBuf::from(given.value)),
        None => Ok(data_dir.join("audit-anchors.jsonl")),
    }
}
