//! Settings from a TOML file and the environment; the environment wins.
//!
//! Every setting has one name in the file and one `TUATON_*` variable. A bad
//! value stops start-up with a message naming the setting, the value's problem
//! and what is accepted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tuaton_passkeys::ExtraOrigin;
use url::Url;

use crate::client_address::TrustedProxies;

/// A setting that cannot be used. The fault is the operator's configuration.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value does not parse or is out of range.
    #[error("invalid setting {setting} = {value:?}: {problem}; expected {expected}")]
    Invalid {
        /// The environment variable or file key.
        setting: String,
        /// The value given (never a secret: secrets are read from files, not values).
        value: String,
        /// What is wrong.
        problem: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The configuration file cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key-backend settings contradict each other or are incomplete.
    #[error("key backend settings: {0}")]
    KeyBackend(String),
    /// The configuration file is not valid TOML for Tuaton's settings.
    #[error("configuration file {path} is not valid: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line.
        message: String,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The settings file, every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    log_format: Option<String>,
    max_body_bytes: Option<u64>,
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
}

/// Everything `tuaton serve` needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `TUATON_LISTEN`: the socket address to bind. Default `127.0.0.1:8080`:
    /// loopback, so a fresh install is not exposed until an operator says so.
    pub listen: SocketAddr,
    /// `TUATON_PUBLIC_URL`: the issuer and WebAuthn origin. Default
    /// `http://localhost:8080`, because browsers refuse WebAuthn on a bare IP.
    pub public_url: Url,
    /// `TUATON_DATA_DIR`: where the SQLite file and software keys live. Default `./data`.
    pub data_dir: PathBuf,
    /// `TUATON_DATABASE_URL`: `postgres://…` or `sqlite://…`. Default: `tuaton.db` in the data dir.
    pub database_url: String,
    /// `TUATON_LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `TUATON_MAX_BODY_BYTES`: largest request body accepted. Default 1 MiB.
    pub max_body_bytes: usize,
    /// `TUATON_REQUEST_TIMEOUT_SECS`: a request running longer is cut off with 503. Default 30.
    pub request_timeout: Duration,
    /// `TUATON_SHUTDOWN_GRACE_SECS`: how long in-flight requests may run after SIGTERM. Default 30.
    pub shutdown_grace: Duration,
    /// `TUATON_SESSION_IDLE_SECS`: a session unused this long ends. Default 900
    /// (15 minutes), the inactivity bound ETDA and NIST SP 800-63B set for AAL2 and above.
    pub session_idle: Duration,
    /// `TUATON_SESSION_ABSOLUTE_SECS`: a session ends this long after login whatever
    /// happens. Default 43200 (12 hours), the AAL2 re-authentication bound.
    pub session_absolute: Duration,
    /// `TUATON_CARD_REGISTRY_URL`: the SOAP endpoint of the card-status service.
    /// Unset outside development mode means proofing answers 503 until configured.
    pub card_registry_url: Option<Url>,
    /// `TUATON_AUTHORITY_RECHECK_SECS`: how old a company authority confirmation may be
    /// before the juristic registry is asked again. Default 86400 (a day).
    pub authority_recheck: Duration,
    /// `TUATON_RP_NAME`: the service name shown by authenticators. Default `Tuaton`.
    pub rp_name: String,
    /// `TUATON_AAL3_ALLOW_LIST`: a JSON file of hardware authenticators allowed for
    /// AAL3 (`[{"aaguid", "description", "roots_pem": [...]}]`). Unset: nobody reaches AAL3.
    pub aal3_allow_list: Option<PathBuf>,
    /// `TUATON_FIDO_MDS_BLOB`: a FIDO Metadata Service BLOB downloaded by the operator;
    /// its certified hardware authenticators join the AAL3 allow-list once its signature
    /// verifies against `TUATON_FIDO_MDS_ROOT`. Unset: no import.
    pub fido_mds_blob: Option<PathBuf>,
    /// `TUATON_FIDO_MDS_ROOT`: a PEM file of the root certificate(s) the BLOB's signing
    /// chain must lead to: the FIDO Alliance's, downloaded once by the operator (Tuaton
    /// ships and fetches none). Required with `TUATON_FIDO_MDS_BLOB`.
    pub fido_mds_root: Option<PathBuf>,
    /// `TUATON_DANGER_UNVERIFIED_MDS_BLOB`: `true` imports `TUATON_FIDO_MDS_BLOB` without
    /// a root, its signature unchecked. Default `false`: whoever can change an unverified
    /// file can make any authenticator model count as AAL3 hardware.
    pub danger_unverified_mds_blob: bool,
    /// `TUATON_WEBAUTHN_EXTRA_ORIGINS`: comma-separated origins accepted besides the
    /// public URL's, each `https://host[:port]` or `android:apk-key-hash:<base64url
    /// SHA-256 of the app's signing certificate>`. Default none. The relying-party id
    /// stays the public URL's host.
    pub webauthn_extra_origins: Vec<ExtraOrigin>,
    /// `TUATON_RATE_LIMIT_PER_ADDRESS`: ceremony requests (enrolment, passkey
    /// registration, login, recovery) one client address may make a minute. Default 60:
    /// a person needs a handful; a script guessing needs thousands.
    pub rate_limit_per_address: u32,
    /// `TUATON_RATE_LIMIT_PER_ACCOUNT`: ceremony requests for one account a minute. Default 20.
    pub rate_limit_per_account: u32,
    /// `TUATON_TRUSTED_PROXIES`: comma-separated IP addresses or CIDR ranges of reverse
    /// proxies whose `X-Forwarded-For` names the client for per-address limits. Default
    /// none: the TCP peer is the client, because anyone else's header could be forged.
    pub trusted_proxies: TrustedProxies,
    /// `TUATON_WITHDRAWN_CONSENT_RETENTION_DAYS`: how long a withdrawn consent record is
    /// kept as proof of what was lawfully done while it was live. Default 3650 (ten
    /// years, the general limitation period of the Thai Civil and Commercial Code).
    pub withdrawn_consent_retention: Duration,
    /// `TUATON_NOTIFICATION_RETENTION_DAYS`: how long a queued or sent notice (which
    /// holds a contact address) is kept. Default 90.
    pub notification_retention: Duration,
    /// `TUATON_SMTP_URL`: the mail relay notices go through: `smtp://HOST[:PORT]`
    /// (STARTTLS required, port 587 by default; plain only to a loopback address) or
    /// `smtps://HOST[:PORT]` (implicit TLS, 465). No credentials in the URL. Unset:
    /// notices wait in the queue (in development mode they are written to `DATA_DIR/outbox`).
    pub smtp_url: Option<crate::notify::SmtpRelay>,
    /// `TUATON_SMTP_USERNAME`: the user name for logging in to the relay. Unset: no login.
    pub smtp_username: Option<String>,
    /// `TUATON_SMTP_PASSWORD_FILE`: a file holding the relay password, read at start and
    /// never kept here. Required with `TUATON_SMTP_USERNAME`.
    pub smtp_password_file: Option<PathBuf>,
    /// `TUATON_MAIL_FROM`: the address notices come from (shown with `TUATON_RP_NAME`).
    /// Required with `TUATON_SMTP_URL`; unset in development mode, `no-reply@` the public host.
    pub mail_from: Option<lettre::Address>,
    /// The key backend: `TUATON_MASTER_KEY_FILE` (or `TUATON_MASTER_KEY`) for
    /// software keys in `DATA_DIR/keys`; `TUATON_PKCS11_MODULE`,
    /// `TUATON_PKCS11_TOKEN` and `TUATON_PKCS11_PIN_FILE` (or
    /// `TUATON_PKCS11_PIN`) for an HSM; in development mode the master key in
    /// `TUATON_DEV_KEYS_DIR` (default `keys-dev`). Secrets are read when the
    /// backend opens, never kept here.
    pub key_backend: crate::custody::KeyBackendSettings,
    /// `TUATON_ROTATION`: purposes rotated unattended, as
    /// `PURPOSE:ALG:EVERY:PREPUBLISH` items separated by commas (such as
    /// `id-token:ES256:90d:2d`). Default: none; operators rotate with `tuaton keys rotate`.
    pub rotation: Vec<crate::custody::RotationSchedule>,
    /// Development mode (`serve --dev`): software keys and fixtures from keys-dev.
    pub dev: bool,
}

/// Where a value came from, for error messages.
struct Source<'a> {
    env: &'static str,
    file_key: &'static str,
    from_env: bool,
    value: &'a str,
}

impl Source<'_> {
    fn invalid(&self, problem: impl Into<String>, expected: &'static str) -> SettingsError {
        let setting = if self.from_env {
            self.env.to_owned()
        } else {
            format!("{} (configuration file)", self.file_key)
        };
        SettingsError::Invalid {
            setting,
            value: self.value.to_owned(),
            problem: problem.into(),
            expected,
        }
    }
}

impl Settings {
    /// Loads settings from `file` (if given) and the process environment.
    pub fn load(file: Option<&Path>, dev: bool) -> Result<Self, SettingsError> {
        Self::load_with(file, dev, |k| std::env::var(k).ok())
    }

    /// Loads settings with `env` standing in for the environment; for tests.
    pub fn load_with(
        file: Option<&Path>,
        dev: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let fs: FileSettings = match file {
            None => FileSettings::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SettingsError::File {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| SettingsError::Syntax {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            }
        };

        // The environment wins over the file.
        let pick =
            |env_name: &'static str, file_key: &'static str, file_val: Option<String>| match env(
                env_name,
            ) {
                Some(v) => Some((v, env_name, file_key, true)),
                None => file_val.map(|v| (v, env_name, file_key, false)),
            };
        let num = |n: Option<u64>| n.map(|n| n.to_string());

        let listen = match pick("TUATON_LISTEN", "listen", fs.listen) {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some((v, env, file_key, from_env)) => {
                let src = Source {
                    env,
                    file_key,
                    from_env,
                    value: &v,
                };
                v.trim().parse().map_err(|e: std::net::AddrParseError| {
                    src.invalid(
                        e.to_string(),
                        "an IP address and port, such as 127.0.0.1:8080 or [::1]:8080",
                    )
                })?
            }
        };

        let public_url = match pick("TUATON_PUBLIC_URL", "public_url", fs.public_url) {
            None => Url::parse("http://localhost:8080").map_err(|e| SettingsError::Invalid {
                setting: "TUATON_PUBLIC_URL".into(),
                value: String::new(),
                problem: e.to_string(),
                expected: "a URL",
            })?,
            Some((v, env, file_key, from_env)) => {
                let src = Source {
                    env,
                    file_key,
                    from_env,
                    value: &v,
                };
                parse_public_url(&v).map_err(|p| {
                    src.invalid(p, "an http:// or https:// URL with a host name and no path, query or fragment, such as https://id.example.go.th")
                })?
            }
        };

        let data_dir = match env("TUATON_DATA_DIR") {
            Some(v) if v.trim().is_empty() => {
                return Err(SettingsError::Invalid {
                    setting: "TUATON_DATA_DIR".into(),
                    value: v,
                    problem: "empty".into(),
                    expected: "a directory path",
                });
            }
            Some(v) => PathBuf::from(v),
            None => fs.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
        };

        let database_url = match pick("TUATON_DATABASE_URL", "database_url", fs.database_url) {
            None => format!("sqlite://{}?mode=rwc", data_dir.join("tuaton.db").display()),
            Some((v, env, file_key, from_env)) => {
                let src = Source {
                    env,
                    file_key,
                    from_env,
                    value: &redact_url(&v),
                };
                let scheme = v.split(':').next().unwrap_or_default().to_ascii_lowercase();
                if !matches!(scheme.as_str(), "sqlite" | "postgres" | "postgresql") {
                    return Err(src.invalid(
                        format!("unsupported scheme `{scheme}`"),
                        "postgres://USER@HOST:PORT/DB or sqlite://PATH",
                    ));
                }
                v
            }
        };

        let log_format = match pick("TUATON_LOG_FORMAT", "log_format", fs.log_format) {
            None => LogFormat::Text,
            Some((v, env, file_key, from_env)) => match v.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    let src = Source {
                        env,
                        file_key,
                        from_env,
                        value: &v,
                    };
                    return Err(src.invalid("unknown format", "text or json"));
                }
            },
        };

        let number = |env_name,
                      file_key,
                      file_val: Option<u64>,
                      default: u64,
                      min: u64,
                      max: u64,
                      expected| {
            match pick(env_name, file_key, num(file_val)) {
                None => Ok(default),
                Some((v, env, file_key, from_env)) => {
                    let src = Source {
                        env,
                        file_key,
                        from_env,
                        value: &v,
                    };
                    match v.trim().parse::<u64>() {
                        Ok(n) if (min..=max).contains(&n) => Ok(n),
                        Ok(_) => Err(src.invalid("out of range", expected)),
                        Err(e) => Err(src.invalid(e.to_string(), expected)),
                    }
                }
            }
        };
        let max_body_bytes = number(
            "TUATON_MAX_BODY_BYTES",
            "max_body_bytes",
            fs.max_body_bytes,
            1 << 20,
            1024,
            1 << 30,
            "a byte count from 1024 to 1073741824",
        )?;
        let request_timeout = number(
            "TUATON_REQUEST_TIMEOUT_SECS",
            "request_timeout_secs",
            fs.request_timeout_secs,
            30,
            1,
            3600,
            "whole seconds from 1 to 3600",
        )?;
        let shutdown_grace = number(
            "TUATON_SHUTDOWN_GRACE_SECS",
            "shutdown_grace_secs",
            fs.shutdown_grace_secs,
            30,
            0,
            3600,
            "whole seconds from 0 to 3600",
        )?;

        let session_idle = number(
            "TUATON_SESSION_IDLE_SECS",
            "session_idle_secs",
            fs.session_idle_secs,
            900,
            60,
            86_400,
            "whole seconds from 60 to 86400",
        )?;
        let session_absolute = number(
            "TUATON_SESSION_ABSOLUTE_SECS",
            "session_absolute_secs",
            fs.session_absolute_secs,
            43_200,
            300,
            2_592_000,
            "whole seconds from 300 to 2592000",
        )?;
        let authority_recheck = number(
            "TUATON_AUTHORITY_RECHECK_SECS",
            "authority_recheck_secs",
            fs.authority_recheck_secs,
            86_400,
            0,
            31_536_000,
            "whole seconds from 0 to 31536000",
        )?;
        let card_registry_url = match pick(
            "TUATON_CARD_REGISTRY_URL",
            "card_registry_url",
            fs.card_registry_url,
        ) {
            None => None,
            Some((v, env, file_key, from_env)) => {
                let src = Source {
                    env,
                    file_key,
                    from_env,
                    value: &v,
                };
                let u = Url::parse(v.trim()).map_err(|e| {
                    src.invalid(
                        e.to_string(),
                        "an http:// or https:// URL of the card-status SOAP endpoint",
                    )
                })?;
                if !matches!(u.scheme(), "http" | "https") {
                    return Err(src.invalid(
                        "not http or https",
                        "an http:// or https:// URL of the card-status SOAP endpoint",
                    ));
                }
                Some(u)
            }
        };
        let rp_name = match pick("TUATON_RP_NAME", "rp_name", fs.rp_name) {
            None => "Tuaton".to_owned(),
            Some((v, env, file_key, from_env)) => {
                let t = v.trim().to_owned();
                if t.is_empty() || t.chars().count() > 64 {
                    let src = Source {
                        env,
                        file_key,
                        from_env,
                        value: &v,
                    };
                    return Err(
                        src.invalid("empty or longer than 64 characters", "a short service name")
                    );
                }
                t
            }
        };

        let path = |env_name: &'static str, file_val: Option<PathBuf>| match env(env_name) {
            Some(v) if !v.trim().is_empty() => Some(PathBuf::from(v)),
            _ => file_val,
        };
        let aal3_allow_list = path("TUATON_AAL3_ALLOW_LIST", fs.aal3_allow_list);
        let fido_mds_blob = path("TUATON_FIDO_MDS_BLOB", fs.fido_mds_blob);
        let fido_mds_root = path("TUATON_FIDO_MDS_ROOT", fs.fido_mds_root);
        let danger_unverified_mds_blob = match pick(
            "TUATON_DANGER_UNVERIFIED_MDS_BLOB",
            "danger_unverified_mds_blob",
            fs.danger_unverified_mds_blob.map(|b| b.to_string()),
        ) {
            None => false,
            Some((v, env, file_key, from_env)) => match v.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    let src = Source {
                        env,
                        file_key,
                        from_env,
                        value: &v,
                    };
                    return Err(src.invalid("not a boolean", "true or false"));
                }
            },
        };
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
        let webauthn_extra_origins = match pick(
            "TUATON_WEBAUTHN_EXTRA_ORIGINS",
            "webauthn_extra_origins",
            fs.webauthn_extra_origins,
        ) {
            None => Vec::new(),
            Some((v, env, file_key, from_env)) => {
                let src = Source {
                    env,
                    file_key,
                    from_env,
                    value: &v,
                };
                v.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(|o| {
                        o.parse::<ExtraOrigin>().map_err(|e| {
                            let problem = match e {
                                tuaton_passkeys::PasskeyError::Config(m) => m,
                                other => other.to_string(),
                            };
                            src.invalid(
                                problem,
                                "comma-separated origins, each https://HOST[:PORT] or android:apk-key-hash:<43 base64url characters>",
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };

        let rate_limit_per_address = number(
            "TUATON_RATE_LIMIT_PER_ADDRESS",
            "rate_limit_per_address",
            fs.rate_limit_per_address,
            60,
            1,
            1_000_000,
            "a whole number of requests a minute from 1 to 1000000",
        )?;
        let rate_limit_per_account = number(
            "TUATON_RATE_LIMIT_PER_ACCOUNT",
            "rate_limit_per_account",
            fs.rate_limit_per_account,
            20,
            1,
            1_000_000,
            "a whole number of requests a minute from 1 to 1000000",
        )?;
        let trusted_proxies = match pick(
            "TUATON_TRUSTED_PROXIES",
            "trusted_proxies",
            fs.trusted_proxies,
        ) {
            None => TrustedProxies::none(),
            Some((v, env, file_key, from_env)) => {
                let src = Source {
                    env,
                    file_key,
                    from_env,
                    value: &v,
                };
                TrustedProxies::parse(&v).map_err(|p| {
                    src.invalid(
                        p,
                        "comma-separated IP addresses or CIDR ranges of reverse proxies, such as 10.0.0.5, 10.1.0.0/16",
                    )
                })?
            }
        };

        let withdrawn_consent_retention_days = number(
            "TUATON_WITHDRAWN_CONSENT_RETENTION_DAYS",
            "withdrawn_consent_retention_days",
            fs.withdrawn_consent_retention_days,
            3650,
            1,
            36_500,
            "whole days from 1 to 36500",
        )?;
        let notification_retention_days = number(
            "TUATON_NOTIFICATION_RETENTION_DAYS",
            "notification_retention_days",
            fs.notification_retention_days,
            90,
            1,
            3650,
            "whole days from 1 to 3650",
        )?;

        let smtp_url = match pick("TUATON_SMTP_URL", "smtp_url", fs.smtp_url) {
            None => None,
            Some((v, env, file_key, from_env)) => {
                // A password typed into the URL must not come back in the error.
                let shown = redact_url(&v);
                let src = Source {
                    env,
                    file_key,
                    from_env,
                    value: &shown,
                };
                Some(crate::notify::SmtpRelay::parse(&v).map_err(|p| {
                    src.invalid(
                        p,
                        "smtp://HOST[:PORT] (STARTTLS; plain only to loopback) or smtps://HOST[:PORT] (implicit TLS), without credentials",
                    )
                })?)
            }
        };
        let smtp_username = match pick("TUATON_SMTP_USERNAME", "smtp_username", fs.smtp_username) {
            Some((v, ..)) if !v.trim().is_empty() => Some(v.trim().to_owned()),
            _ => None,
        };
        let smtp_password_file = path("TUATON_SMTP_PASSWORD_FILE", fs.smtp_password_file);
        let mail_from = match pick("TUATON_MAIL_FROM", "mail_from", fs.mail_from) {
            None => None,
            Some((v, env, file_key, from_env)) => {
                let src = Source {
                    env,
                    file_key,
                    from_env,
                    value: &v,
                };
                Some(v.trim().parse::<lettre::Address>().map_err(|e| {
                    src.invalid(
                        e.to_string(),
                        "an e-mail address, such as no-reply@id.example.go.th",
                    )
                })?)
            }
        };
        let mail_setting_missing = |setting: &str, value: String, problem: &str| {
            SettingsError::Invalid {
                setting: setting.to_owned(),
                value,
                problem: problem.to_owned(),
                expected: "TUATON_SMTP_URL and TUATON_MAIL_FROM together, and TUATON_SMTP_USERNAME with TUATON_SMTP_PASSWORD_FILE",
            }
        };
        match (&smtp_url, &mail_from, &smtp_username, &smtp_password_file) {
            (Some(relay), None, ..) => {
                return Err(mail_setting_missing(
                    "TUATON_SMTP_URL",
                    relay.to_string(),
                    "set without TUATON_MAIL_FROM",
                ));
            }
            (_, _, Some(user), None) => {
                return Err(mail_setting_missing(
                    "TUATON_SMTP_USERNAME",
                    user.clone(),
                    "set without TUATON_SMTP_PASSWORD_FILE",
                ));
            }
            (_, _, None, Some(file)) => {
                return Err(mail_setting_missing(
                    "TUATON_SMTP_PASSWORD_FILE",
                    file.display().to_string(),
                    "set without TUATON_SMTP_USERNAME",
                ));
            }
            (None, _, Some(user), Some(_)) => {
                return Err(mail_setting_missing(
                    "TUATON_SMTP_USERNAME",
                    user.clone(),
                    "set without TUATON_SMTP_URL",
                ));
            }
            _ => {}
        }

        let present = |name: &str| env(name).is_some_and(|v| !v.trim().is_empty());
        let dev_keys_dir = path("TUATON_DEV_KEYS_DIR", fs.dev_keys_dir)
            .unwrap_or_else(|| PathBuf::from("keys-dev"));
        let key_backend = crate::custody::KeyBackendInputs {
            master_key_file: path("TUATON_MASTER_KEY_FILE", fs.master_key_file),
            master_key_in_env: present(crate::custody::ENV_MASTER_KEY),
            pkcs11_module: path("TUATON_PKCS11_MODULE", fs.pkcs11_module),
            pkcs11_token: env("TUATON_PKCS11_TOKEN")
                .filter(|v| !v.trim().is_empty())
                .or(fs.pkcs11_token),
            pkcs11_pin_file: path("TUATON_PKCS11_PIN_FILE", fs.pkcs11_pin_file),
            pkcs11_pin_in_env: present(crate::custody::ENV_PKCS11_PIN),
        }
        .choose(dev, &dev_keys_dir)
        .map_err(SettingsError::KeyBackend)?;
        let rotation = match pick("TUATON_ROTATION", "rotation", fs.rotation) {
            None => Vec::new(),
            Some((v, env, file_key, from_env)) => {
                let src = Source {
                    env,
                    file_key,
                    from_env,
                    value: &v,
                };
                crate::custody::parse_schedules(&v).map_err(|p| {
                    src.invalid(
                        p,
                        "PURPOSE:ALG:EVERY:PREPUBLISH items separated by commas, such as id-token:ES256:90d:2d",
                    )
                })?
            }
        };

        Ok(Settings {
            key_backend,
            rotation,
            withdrawn_consent_retention: Duration::from_secs(
                withdrawn_consent_retention_days * 86_400,
            ),
            notification_retention: Duration::from_secs(notification_retention_days * 86_400),
            smtp_url,
            smtp_username,
            smtp_password_file,
            mail_from,
            rate_limit_per_address: u32::try_from(rate_limit_per_address).unwrap_or(u32::MAX),
            rate_limit_per_account: u32::try_from(rate_limit_per_account).unwrap_or(u32::MAX),
            aal3_allow_list,
            fido_mds_blob,
            fido_mds_root,
            danger_unverified_mds_blob,
            webauthn_extra_origins,
            trusted_proxies,
            session_idle: Duration::from_secs(session_idle),
            session_absolute: Duration::from_secs(session_absolute),
            card_registry_url,
            authority_recheck: Duration::from_secs(authority_recheck),
            rp_name,
            listen,
            public_url,
            data_dir,
            database_url,
            log_format,
            max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
            request_timeout: Duration::from_secs(request_timeout),
            shutdown_grace: Duration::from_secs(shutdown_grace),
            dev,
        })
    }

    /// Whether the public URL is https (turns on HSTS and `Secure` cookies).
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The public URL without a trailing slash: the OpenID issuer and WebAuthn origin.
    pub fn issuer(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }
}

fn parse_public_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme `{}` is not http or https", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("has a path, query or fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("has credentials".into());
    }
    Ok(url)
}

/// A database URL with any password replaced, safe to print.
pub fn redact_url(v: &str) -> String {
    match Url::parse(v) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => v.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<Settings, SettingsError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tuaton.toml");
        if let Some(f) = file {
            std::fs::write(&path, f).unwrap();
        }
        Settings::load_with(file.map(|_| path.as_path()), false, |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_are_loopback_localhost_and_sqlite_in_data() {
        let s = load(&[], None).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.issuer(), "http://localhost:8080");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert!(s.database_url.starts_with("sqlite://./data/tuaton.db"));
        assert!(!s.is_https());
    }

    #[test]
    fn environment_wins_over_the_file() {
        let file = "listen = \"127.0.0.1:9000\"\npublic_url = \"https://id.example.go.th\"\n";
        let s = load(&[("TUATON_LISTEN", "[::1]:7000")], Some(file)).unwrap();
        assert_eq!(s.listen.to_string(), "[::1]:7000");
        assert_eq!(s.issuer(), "https://id.example.go.th");
        assert!(s.is_https());
    }

    #[test]
    fn a_bad_setting_names_itself_and_what_is_accepted() {
        let e = load(&[("TUATON_LISTEN", "localhost")], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TUATON_LISTEN") && e.contains("127.0.0.1:8080"),
            "{e}"
        );
        let e = load(&[("TUATON_PUBLIC_URL", "ftp://x")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("TUATON_PUBLIC_URL") && e.contains("http"), "{e}");
        let e = load(&[("TUATON_PUBLIC_URL", "https://x.example/path")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("path"), "{e}");
        let e = load(&[("TUATON_DATABASE_URL", "mysql://u:secret@h/db")], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TUATON_DATABASE_URL") && !e.contains("secret"),
            "{e}"
        );
        let e = load(&[], Some("listen = \"nope\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen (configuration file)"), "{e}");
        let e = load(&[], Some("lisen = \"127.0.0.1:1\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
        let e = load(&[("TUATON_MAX_BODY_BYTES", "12")], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TUATON_MAX_BODY_BYTES") && e.contains("1024"),
            "{e}"
        );
        let e = load(&[("TUATON_LOG_FORMAT", "xml")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("text or json"), "{e}");
    }

    #[test]
    fn mds_blob_needs_a_root_unless_the_danger_setting_is_on() {
        let e = load(&[("TUATON_FIDO_MDS_BLOB", "/etc/tuaton/blob.jwt")], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TUATON_FIDO_MDS_BLOB") && e.contains("TUATON_FIDO_MDS_ROOT"),
            "{e}"
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
        let e = load(&[("TUATON_DANGER_UNVERIFIED_MDS_BLOB", "yes")], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TUATON_DANGER_UNVERIFIED_MDS_BLOB") && e.contains("true or false"),
            "{e}"
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
            let e = load(&[("TUATON_WEBAUTHN_EXTRA_ORIGINS", bad)], None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("TUATON_WEBAUTHN_EXTRA_ORIGINS") && e.contains("android:apk-key-hash"),
                "{e}"
            );
        }
    }

    #[test]
    fn trusted_proxies_default_to_none_and_bad_ones_name_the_setting() {
        assert!(load(&[], None).unwrap().trusted_proxies.is_empty());
        let s = load(&[("TUATON_TRUSTED_PROXIES", "10.0.0.5, 10.1.0.0/16")], None).unwrap();
        assert!(s.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        assert!(!s.trusted_proxies.contains("10.2.0.1".parse().unwrap()));
        let s = load(&[], Some("trusted_proxies = \"::1\"\n")).unwrap();
        assert!(s.trusted_proxies.contains("::1".parse().unwrap()));
        for bad in ["proxy.internal", "0.0.0.0/0", "10.0.0.5,,10.0.0.6"] {
            let e = load(&[("TUATON_TRUSTED_PROXIES", bad)], None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("TUATON_TRUSTED_PROXIES") && e.contains("CIDR"),
                "{e}"
            );
        }
    }

    #[test]
    fn mail_settings_need_a_sender_and_keep_credentials_out_of_the_url() {
        let s = load(&[], None).unwrap();
        assert!(s.smtp_url.is_none() && s.mail_from.is_none() && s.smtp_username.is_none());
        let s = load(
            &[
                ("TUATON_SMTP_URL", "smtp://mail.example.go.th"),
                ("TUATON_MAIL_FROM", "no-reply@id.example.go.th"),
                ("TUATON_SMTP_USERNAME", "tuaton"),
                ("TUATON_SMTP_PASSWORD_FILE", "/run/secrets/smtp"),
            ],
            None,
        )
        .unwrap();
        let relay = s.smtp_url.unwrap();
        assert_eq!(
            (relay.host(), relay.port(), relay.security()),
            (
                "mail.example.go.th",
                587,
                crate::notify::SmtpSecurity::StartTls
            )
        );
        assert_eq!(
            s.mail_from.map(|a| a.to_string()).as_deref(),
            Some("no-reply@id.example.go.th")
        );
        assert_eq!(
            s.smtp_password_file,
            Some(PathBuf::from("/run/secrets/smtp"))
        );
        let s = load(
            &[],
            Some("smtp_url = \"smtps://mail.example.go.th\"\nmail_from = \"a@b.example\"\n"),
        )
        .unwrap();
        assert_eq!(s.smtp_url.unwrap().port(), 465);

        let e = load(
            &[("TUATON_SMTP_URL", "smtp://u:hunter2@mail.example.go.th")],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("TUATON_SMTP_URL")
                && e.contains("TUATON_SMTP_PASSWORD_FILE")
                && !e.contains("hunter2"),
            "{e}"
        );
        let e = load(&[("TUATON_SMTP_URL", "http://mail.example.go.th")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("smtp or smtps"), "{e}");
        let e = load(&[("TUATON_SMTP_URL", "smtp://mail.example.go.th")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("without TUATON_MAIL_FROM"), "{e}");
        let e = load(&[("TUATON_MAIL_FROM", "not an address")], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TUATON_MAIL_FROM") && e.contains("e-mail address"),
            "{e}"
        );
        let with_relay = [
            ("TUATON_SMTP_URL", "smtp://mail.example.go.th"),
            ("TUATON_MAIL_FROM", "no-reply@id.example.go.th"),
        ];
        let e = load(
            &[
                with_relay[0],
                with_relay[1],
                ("TUATON_SMTP_USERNAME", "tuaton"),
            ],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("without TUATON_SMTP_PASSWORD_FILE"), "{e}");
        let e = load(
            &[
                with_relay[0],
                with_relay[1],
                ("TUATON_SMTP_PASSWORD_FILE", "/run/secrets/smtp"),
            ],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("without TUATON_SMTP_USERNAME"), "{e}");
    }
}
