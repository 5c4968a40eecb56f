//! Settings from a TOML file and the environment; the environment wins.
//!
//! Every setting has one name in the file and one `TUATON_*` variable. A bad
//! value stops start-up with a message naming the setting, the value's problem
//! and what is accepted. Each area's settings are read in their own module,
//! all through one reader in `fields`.

mod ca;
mod fields;
mod keys;
mod lifetimes;
mod mail;
mod network;
mod passkeys;
mod proofing;
mod storage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tuaton_passkeys::ExtraOrigin;
use url::Url;

use self::fields::Fields;
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

impl LogFormat {
    fn parse(v: &str) -> Result<Self, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("unknown format".to_owned()),
        }
    }
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
    /// `TUATON_AUDIT_ANCHOR_FILE`: where signed heads of the audit chain are appended,
    /// outside the database. Default `audit-anchors.jsonl` in the data dir; in
    /// production a file on append-only or write-once storage (docs/operators/audit.md).
    pub audit_anchor_file: PathBuf,
    /// `TUATON_PASSKEY_SEAL_FILE`: the reference of the key-backend key
    /// passkey rows are sealed under, kept outside the database. Made at the
    /// first start, which seals every row as it stands; every instance
    /// sharing a database needs the same file. Default
    /// `passkey-seal.key-ref` in the data dir.
    pub passkey_seal_file: PathBuf,
    /// `TUATON_UPKEEP_INTERVAL_SECS`: how often upkeep runs (key transitions,
    /// notices, purges, the audit anchor when it is due). Default 30.
    pub upkeep_interval: Duration,
    /// `TUATON_AUDIT_ANCHOR_INTERVAL_SECS`: how often upkeep signs the chain's head
    /// when it has moved (and once more at shutdown). Default 300.
    pub audit_anchor_interval: Duration,
    /// `TUATON_LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `TUATON_MAX_BODY_BYTES`: largest request body accepted. Default 1 MiB.
    pub max_body_bytes: usize,
    /// `TUATON_MAX_DOCUMENT_BYTES`: largest request body accepted by the
    /// signing API (`/api/v1/signatures`), which carries PDFs in base64.
    /// Default 32 MiB.
    pub max_document_bytes: usize,
    /// `TUATON_REQUEST_TIMEOUT_SECS`: a request running longer is cut off with 503. Default 30.
    pub request_timeout: Duration,
    /// `TUATON_METRICS_LISTEN`: an address of its own for `/metrics` (e.g. a
    /// management network's `10.0.0.5:9464`); then the main listener does not
    /// serve it. Unset: `/metrics` is on the main listener.
    pub metrics_listen: Option<SocketAddr>,
    /// `TUATON_MAX_CONNECTIONS`: connections served at once; more wait in the listen
    /// backlog. Default 4096, well under a default file-descriptor limit's reach of
    /// the process after the database's and the key backend's.
    pub max_connections: usize,
    /// `TUATON_HEADER_READ_TIMEOUT_SECS`: a connection that has not sent a whole
    /// request head this long after it opened, or after its last answer, is closed.
    /// Default 10: a slow client cannot hold connections open with half a request.
    pub header_read_timeout: Duration,
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
    /// `TUATON_RECOVERY_COOLING_OFF_HOURS`: how long a recovery asked for remotely
    /// (with the ID card's details) waits before it gives a grant, while the owner is
    /// told and can cancel it with a passkey. Default 72: a weekend and a working
    /// day to read the notice. An officer's in-person proofing skips it.
    pub recovery_cooling_off: Duration,
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
    /// `TUATON_CA_ORGANIZATION` and `TUATON_CA_POLICY`: the certificate
    /// authority's name and the deployment's certificate policy (both, or
    /// neither: then no CA, time-stamping or signing). A development
    /// server defaults to "Tuaton (development)" and a policy under RFC
    /// 5612's example arc.
    pub ca: Option<tuaton_idm::pki::CaPlan>,
    /// Development mode (`serve --dev`): software keys and fixtures from keys-dev.
    pub dev: bool,
}

impl Settings {
    /// The connection cap and header-read timeout `serve` applies.
    pub fn connection_limits(&self) -> crate::app::ConnectionLimits {
        crate::app::ConnectionLimits {
            max_connections: self.max_connections,
            header_read_timeout: self.header_read_timeout,
        }
    }

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
        let f = Fields::read(file, &env)?;
        // The first bad setting stops start-up; reading in a fixed order makes
        // the same mistake always the one reported.
        let listen = network::listen(&f, dev)?;
        let public_url = network::public_url(&f)?;
        let data_dir = storage::data_dir(&f)?;
        let database_url = storage::database_url(&f, &data_dir)?;
        let audit_anchor_file = storage::audit_anchor_file(&f, &data_dir)?;
        let passkey_seal_file = storage::passkey_seal_file(&f, &data_dir)?;
        let audit_anchor_interval = f.seconds(&lifetimes::AUDIT_ANCHOR_INTERVAL)?;
        let upkeep_interval = f.seconds(&lifetimes::UPKEEP_INTERVAL)?;
        let log_format = f.get("TUATON_LOG_FORMAT", "text or json", LogFormat::parse)?;
        let max_body_bytes = f.whole(&network::MAX_BODY_BYTES)?;
        let max_document_bytes = f.whole(&network::MAX_DOCUMENT_BYTES)?;
        let request_timeout = f.seconds(&network::REQUEST_TIMEOUT)?;
        let metrics_listen = network::metrics_listen(&f, dev)?;
        let max_connections =
            usize::try_from(f.whole(&network::MAX_CONNECTIONS)?).unwrap_or(usize::MAX);
        let header_read_timeout = f.seconds(&network::HEADER_READ_TIMEOUT)?;
        let shutdown_grace = f.seconds(&network::SHUTDOWN_GRACE)?;
        let session_idle = f.seconds(&lifetimes::SESSION_IDLE)?;
        let session_absolute = f.seconds(&lifetimes::SESSION_ABSOLUTE)?;
        let authority_recheck = f.seconds(&proofing::AUTHORITY_RECHECK)?;
        let card_registry_url = proofing::card_registry_url(&f)?;
        let passkeys = passkeys::Passkeys::read(&f)?;
        let per_minute = |w| f.whole(w).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let rate_limit_per_address = per_minute(&network::RATE_LIMIT_PER_ADDRESS)?;
        let rate_limit_per_account = per_minute(&network::RATE_LIMIT_PER_ACCOUNT)?;
        let trusted_proxies = network::trusted_proxies(&f)?;
        let withdrawn_consent_retention = f.days(&lifetimes::WITHDRAWN_CONSENT_RETENTION)?;
        let notification_retention = f.days(&lifetimes::NOTIFICATION_RETENTION)?;
        let recovery_cooling_off = f.hours(&lifetimes::RECOVERY_COOLING_OFF)?;
        let mail = mail::Mail::read(&f)?;
        let key_backend = keys::key_backend(&f, dev)?;
        let rotation = keys::rotation(&f)?;
        let ca = ca::ca(&f, dev, &public_url)?;
        Ok(Settings {
            listen,
            public_url,
            data_dir,
            audit_anchor_file,
            passkey_seal_file,
            audit_anchor_interval,
            upkeep_interval,
            database_url,
            log_format: log_format.unwrap_or(LogFormat::Text),
            max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
            max_document_bytes: usize::try_from(max_document_bytes).unwrap_or(usize::MAX),
            request_timeout,
            metrics_listen,
            max_connections,
            header_read_timeout,
            shutdown_grace,
            session_idle,
            session_absolute,
            card_registry_url,
            authority_recheck,
            rp_name: passkeys.rp_name,
            aal3_allow_list: passkeys.aal3_allow_list,
            fido_mds_blob: passkeys.fido_mds_blob,
            fido_mds_root: passkeys.fido_mds_root,
            danger_unverified_mds_blob: passkeys.danger_unverified_mds_blob,
            webauthn_extra_origins: passkeys.webauthn_extra_origins,
            rate_limit_per_address,
            rate_limit_per_account,
            trusted_proxies,
            withdrawn_consent_retention,
            notification_retention,
            recovery_cooling_off,
            smtp_url: mail.smtp_url,
            smtp_username: mail.smtp_username,
            smtp_password_file: mail.smtp_password_file,
            mail_from: mail.mail_from,
            key_backend,
            rotation,
            ca,
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

    /// Settings from `env` and, if given, a file holding `file`.
    pub(super) fn load(
        env: &[(&str, &str)],
        file: Option<&str>,
    ) -> Result<Settings, SettingsError> {
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

    /// The message of the error that `load` must end in, checked to
    /// mention each of `mentions`.
    pub(super) fn refused(env: &[(&str, &str)], file: Option<&str>, mentions: &[&str]) -> String {
        let e = load(env, file).unwrap_err().to_string();
        for m in mentions {
            assert!(e.contains(m), "{e}");
        }
        e
    }

    #[test]
    fn signing_keys_are_made_at_first_signing_or_at_enrolment() {
        let ca = [
            ("TUATON_CA_ORGANIZATION", "Tuaton settings tests"),
            ("TUATON_CA_POLICY", "1.3.6.1.4.1.32473.3861.7"),
        ];
        let plan = |extra: &[(&str, &str)]| {
            let env: Vec<(&str, &str)> = ca.iter().chain(extra).copied().collect();
            load(&env, None).unwrap().ca.unwrap()
        };
        assert!(!plan(&[]).keys_at_enrolment);
        assert!(!plan(&[("TUATON_SIGNING_KEYS", "first-signing")]).keys_at_enrolment);
        assert!(plan(&[("TUATON_SIGNING_KEYS", "enrolment")]).keys_at_enrolment);
        let file = "ca_organization = \"Tuaton settings tests\"\nca_policy = \"1.3.6.1.4.1.32473.3861.7\"\nsigning_keys = \"enrolment\"\n";
        assert!(load(&[], Some(file)).unwrap().ca.unwrap().keys_at_enrolment);
        let env: Vec<(&str, &str)> = ca
            .iter()
            .chain(&[("TUATON_SIGNING_KEYS", "at-once")])
            .copied()
            .collect();
        refused(&env, None, &["TUATON_SIGNING_KEYS", "enrolment"]);
        // Time stamps from Tuaton's own TSA unless an external one is named,
        // with the certificate its tokens are signed under.
        assert_eq!(plan(&[]).time_stamp_url, None);
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["tsa.example.go.th".into()]).unwrap();
        let cert = dir.path().join("tsa.pem");
        std::fs::write(&cert, made.cert.pem()).unwrap();
        let cert = cert.to_str().unwrap();
        let url = ("TUATON_TSA_URL", "https://tsa.example.go.th/rfc3161");
        let env = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
            ca.iter().chain(extra).copied().collect()
        };
        refused(&env(&[url]), None, &["TUATON_TSA_CERT", "missing"]);
        let pinned: Vec<(&str, &str)> = env(&[url])
            .into_iter()
            .chain([("TUATON_TSA_CERT", cert)])
            .collect();
        assert_eq!(
            load(&pinned, None)
                .unwrap()
                .ca
                .unwrap()
                .time_stamp_certificate
                .as_deref(),
            Some(made.cert.der().as_ref())
        );
        let alone: Vec<(&str, &str)> = env(&[])
            .into_iter()
            .chain([("TUATON_TSA_CERT", cert)])
            .collect();
        refused(&alone, None, &["TUATON_TSA_CERT", "without TUATON_TSA_URL"]);
        let not_a_cert: Vec<(&str, &str)> = env(&[url])
            .into_iter()
            .chain([("TUATON_TSA_CERT", "/etc/hostname")])
            .collect();
        refused(&not_a_cert, None, &["TUATON_TSA_CERT", "not a certificate"]);
        let external = load(&pinned, None).unwrap().ca.unwrap();
        assert_eq!(
            external.time_stamp_url.map(|u| u.to_string()).as_deref(),
            Some("https://tsa.example.go.th/rfc3161")
        );
        for bad in [
            "tsa.example.go.th",
            "ftp://tsa.example.go.th/",
            "https://",
            "http://tsa.example.go.th/",
        ] {
            let env: Vec<(&str, &str)> = ca
                .iter()
                .chain(&[("TUATON_TSA_URL", bad), ("TUATON_TSA_CERT", cert)])
                .copied()
                .collect();
            refused(&env, None, &["TUATON_TSA_URL", "RFC 3161"]);
        }
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
        refused(
            &[("TUATON_LISTEN", "localhost")],
            None,
            &["TUATON_LISTEN", "127.0.0.1:8080"],
        );
        refused(
            &[("TUATON_PUBLIC_URL", "ftp://x")],
            None,
            &["TUATON_PUBLIC_URL", "http"],
        );
        refused(
            &[("TUATON_PUBLIC_URL", "https://x.example/path")],
            None,
            &["path"],
        );
        let e = refused(
            &[("TUATON_DATABASE_URL", "mysql://u:secret@h/db")],
            None,
            &["TUATON_DATABASE_URL"],
        );
        assert!(!e.contains("secret"), "{e}");
        refused(
            &[],
            Some("listen = \"nope\""),
            &["listen (configuration file)"],
        );
        refused(&[], Some("lisen = \"127.0.0.1:1\""), &["unknown field"]);
        refused(
            &[("TUATON_MAX_BODY_BYTES", "12")],
            None,
            &["TUATON_MAX_BODY_BYTES", "1024"],
        );
        refused(&[("TUATON_LOG_FORMAT", "xml")], None, &["text or json"]);
    }
}
