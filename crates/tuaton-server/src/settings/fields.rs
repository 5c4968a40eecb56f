//! The one reader every setting goes through: the environment first, then the
//! file. A value that does not parse becomes one error naming the setting as
//! the operator wrote it, the problem and what is accepted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::SettingsError;

/// The settings file, every field optional. Each key is its variable's name
/// without `TUATON_`, in lower case; the types here are checked when the file
/// is read, so a wrong type is refused with its line.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    log_format: Option<String>,
    max_body_bytes: Option<u64>,
    max_document_bytes: Option<u64>,
    request_timeout_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    session_idle_secs: Option<u64>,
    session_absolute_secs: Option<u64>,
    card_registry_url: Option<String>,
    authority_recheck_secs: Option<u64>,
    rp_name: Option<String>,
    aal3_allow_list: Option<PathBuf>,
    fido_mds_blob: Option<PathBuf>,
    fido_mds_root: Option<PathBuf>,
    danger_unverified_mds_blob: Option<bool>,
    webauthn_extra_origins: Option<String>,
    trusted_proxies: Option<String>,
    rate_limit_per_address: Option<u64>,
    rate_limit_per_account: Option<u64>,
    withdrawn_consent_retention_days: Option<u64>,
    notification_retention_days: Option<u64>,
    recovery_cooling_off_hours: Option<u64>,
    max_connections: Option<u64>,
    metrics_listen: Option<String>,
    header_read_timeout_secs: Option<u64>,
    audit_anchor_file: Option<PathBuf>,
    passkey_seal_file: Option<PathBuf>,
    audit_anchor_interval_secs: Option<u64>,
    upkeep_interval_secs: Option<u64>,
    smtp_url: Option<String>,
    smtp_username: Option<String>,
    smtp_password_file: Option<PathBuf>,
    mail_from: Option<String>,
    master_key_file: Option<PathBuf>,
    pkcs11_module: Option<PathBuf>,
    pkcs11_token: Option<String>,
    pkcs11_pin_file: Option<PathBuf>,
    dev_keys_dir: Option<PathBuf>,
    rotation: Option<String>,
    ca_organization: Option<String>,
    ca_policy: Option<String>,
    signing_keys: Option<String>,
}

/// A whole-number setting: its variable, its default, the range accepted and
/// how an error words that range.
pub(super) struct Whole {
    pub(super) name: &'static str,
    pub(super) default: u64,
    pub(super) least: u64,
    pub(super) most: u64,
    pub(super) accepted: &'static str,
}

/// A value as given, with the setting named the way the operator wrote it.
pub(super) struct Given {
    /// The text given.
    pub(super) value: String,
    /// Whether it came from the environment (else from the file).
    pub(super) from_env: bool,
    /// `TUATON_X`, or `x (configuration file)`.
    setting: String,
}

impl Given {
    /// The error for this value: `problem`, and what is `expected` instead.
    pub(super) fn invalid(
        self,
        problem: impl Into<String>,
        expected: &'static str,
    ) -> SettingsError {
        SettingsError::Invalid {
            setting: self.setting,
            value: self.value,
            problem: problem.into(),
            expected,
        }
    }
}

/// The settings file and the environment, read together.
pub(super) struct Fields<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: toml::Table,
}

impl<'a> Fields<'a> {
    /// Reads `file` (if given); `env` stands for the environment.
    pub(super) fn read(
        file: Option<&Path>,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let Some(path) = file else {
            return Ok(Self {
                env,
                file: toml::Table::new(),
            });
        };
        let syntax = |message: String| SettingsError::Syntax {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::File {
            path: path.to_owned(),
            source,
        })?;
        let checked: FileSettings = toml::from_str(&text).map_err(|e| syntax(e.to_string()))?;
        let file = toml::Table::try_from(checked).map_err(|e| syntax(e.to_string()))?;
        Ok(Self { env, file })
    }

    /// The value given for `name` (a `TUATON_*` variable): the environment's
    /// when the variable is set, even to nothing; else the file's.
    pub(super) fn given(&self, name: &'static str) -> Option<Given> {
        match (self.env)(name) {
            Some(value) => Some(Given {
                value,
                from_env: true,
                setting: name.to_owned(),
            }),
            None => self.in_file(name),
        }
    }

    /// The file's value for `name`, under the key `name` has there.
    fn in_file(&self, name: &'static str) -> Option<Given> {
        let key = name
            .strip_prefix("TUATON_")
            .unwrap_or(name)
            .to_ascii_lowercase();
        let value = match self.file.get(&key)? {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Some(Given {
            value,
            from_env: false,
            setting: format!("{key} (configuration file)"),
        })
    }

    /// The setting `name` parsed by `parse`, or `None` when it is not given.
    /// `parse` answers what is wrong; the error adds what is `expected`.
    pub(super) fn get<T>(
        &self,
        name: &'static str,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, SettingsError> {
        self.get_shown(name, expected, str::to_owned, parse)
    }

    /// As [`Fields::get`], with the value shown in an error as `show` makes
    /// it: a URL may carry a password that must not come back in the message.
    pub(super) fn get_shown<T>(
        &self,
        name: &'static str,
        expected: &'static str,
        show: fn(&str) -> String,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, SettingsError> {
        let Some(mut given) = self.given(name) else {
            return Ok(None);
        };
        match parse(&given.value) {
            Ok(v) => Ok(Some(v)),
            Err(problem) => {
                given.value = show(&given.value);
                Err(given.invalid(problem, expected))
            }
        }
    }

    /// A whole number in `w`'s range, or `w`'s default.
    pub(super) fn whole(&self, w: &Whole) -> Result<u64, SettingsError> {
        let n = self.get(w.name, w.accepted, |v| match v.trim().parse::<u64>() {
            Ok(n) if (w.least..=w.most).contains(&n) => Ok(n),
            Ok(_) => Err("out of range".to_owned()),
            Err(e) => Err(e.to_string()),
        })?;
        Ok(n.unwrap_or(w.default))
    }

    /// A [`Whole`] counted in seconds.
    pub(super) fn seconds(&self, w: &Whole) -> Result<Duration, SettingsError> {
        self.whole(w).map(Duration::from_secs)
    }

    /// A [`Whole`] counted in hours.
    pub(super) fn hours(&self, w: &Whole) -> Result<Duration, SettingsError> {
        self.whole(w)
            .map(|hours| Duration::from_secs(hours * 3_600))
    }

    /// A [`Whole`] counted in days.
    pub(super) fn days(&self, w: &Whole) -> Result<Duration, SettingsError> {
        self.whole(w).map(|days| Duration::from_secs(days * 86_400))
    }

    /// `true` or `false` in any case, or `default`.
    pub(super) fn flag(&self, name: &'static str, default: bool) -> Result<bool, SettingsError> {
        let flag = self.get(name, "true or false", |v| {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err("not a boolean".to_owned()),
            }
        })?;
        Ok(flag.unwrap_or(default))
    }

    /// Text taken as written: the variable's unless it is blank, else the file's.
    pub(super) fn text(&self, name: &'static str) -> Option<String> {
        match (self.env)(name) {
            Some(v) if !v.trim().is_empty() => Some(v),
            _ => self.in_file(name).map(|given| given.value),
        }
    }

    /// A path: the variable's unless it is blank, else the file's.
    pub(super) fn path(&self, name: &'static str) -> Option<PathBuf> {
        self.text(name).map(PathBuf::from)
    }

    /// Whether secret variable `name` is given: set, or handed over on
    /// standard input at start (`tuaton_keys::secret_env`).
    pub(super) fn secret_is_given(&self, name: &str) -> bool {
        tuaton_keys::secret_env::is_given(name, self.env)
    }
}

/// An absolute URL; what else it must be is for the caller to check.
pub(super) fn url(v: &str) -> Result<Url, String> {
    Url::parse(v.trim()).map_err(|e| e.to_string())
}
