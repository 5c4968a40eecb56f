//! The connectors and engines the service layer is built from, made once from settings.

use std::sync::Arc;

use tuaton_core::Clock;
use tuaton_passkeys::{Aal3Policy, MdsTrustAnchors, PasskeyConfig, Passkeys};
use tuaton_proofing::{
    CardStatusRegistry, DevJuristicRegistry, DevRegistry, JuristicRegistry, SoapCardStatusRegistry,
    SoapRegistryConfig,
};

use crate::Settings;

/// Everything beyond the store that the service layer and upkeep need.
#[derive(Clone)]
pub struct Services {
    /// The card-status registry; `None` when none is configured (proofing then answers 503).
    pub card_registry: Option<Arc<dyn CardStatusRegistry>>,
    /// The juristic-person registry; `None` when none is configured.
    pub juristic_registry: Option<Arc<dyn JuristicRegistry>>,
    /// WebAuthn ceremonies.
    pub passkeys: Arc<Passkeys>,
    /// The key backend every service key lives in.
    pub keys: Arc<dyn tuaton_keys::KeyBackend>,
    /// Where notices are handed over: the SMTP relay, or the development outbox;
    /// `None` when neither is configured (notices then wait in the queue).
    pub mailer: Option<Arc<dyn crate::notify::Mailer>>,
    /// The key passkey rows are sealed with, and whether its backend key
    /// was made at this start (every row is then sealed as it stands).
    pub passkey_seal: (Arc<tuaton_idm::PasskeySeal>, bool),
}

/// Why services could not be built. The operator's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    /// The passkey sealing key cannot be read or made
    /// (`TUATON_PASSKEY_SEAL_FILE`, the key backend).
    #[error("TUATON_PASSKEY_SEAL_FILE: {0}")]
    PasskeySeal(String),
    /// A development fixture is unreadable.
    #[error("development registry fixture: {0}")]
    Fixture(#[from] tuaton_proofing::FixtureError),
    /// The card-status connector configuration is unusable.
    #[error("TUATON_CARD_REGISTRY_URL: {0}")]
    Connector(#[from] tuaton_proofing::ConnectorConfigError),
    /// The AAL3 allow-list or MDS BLOB cannot be read or parsed.
    #[error("{setting} ({path}): {message}")]
    Aal3Policy {
        /// The setting naming the file.
        setting: &'static str,
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The key backend cannot be opened.
    #[error(transparent)]
    Keys(#[from] crate::custody::CustodyError),
    /// The WebAuthn configuration is unusable.
    #[error("TUATON_PUBLIC_URL cannot serve as the WebAuthn origin: {0}")]
    Passkeys(#[from] tuaton_passkeys::PasskeyError),
    /// Mail delivery cannot be set up (password file, TLS towards the relay).
    #[error(transparent)]
    Mail(#[from] crate::notify::MailConfigError),
}

impl Services {
    /// Builds the services the settings describe: a configured SOAP registry
    /// wins; development mode falls back to the fictional registries in keys-dev.
    pub fn from_settings(
        settings: &Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ServicesError> {
        let card_registry: Option<Arc<dyn CardStatusRegistry>> =
            match (&settings.card_registry_url, settings.dev) {
                (Some(url), _) => Some(Arc::new(SoapCardStatusRegistry::new(
                    SoapRegistryConfig::new(url.clone()),
                    clock.clone(),
                )?)),
                (None, true) => Some(Arc::new(DevRegistry::embedded()?)),
                (None, false) => None,
            };
        let juristic_registry: Option<Arc<dyn JuristicRegistry>> = if settings.dev {
            Some(Arc::new(DevJuristicRegistry::embedded()?))
        } else {
            None
        };
        let passkeys = Passkeys::new(PasskeyConfig {
            public_url: settings.public_url.clone(),
            extra_origins: settings.webauthn_extra_origins.clone(),
            rp_name: settings.rp_name.clone(),
            ceremony_ttl: passkey_ceremony_ttl(),
            aal3: aal3_policy(settings, clock.now())?,
        })?;
        let keys = crate::custody::open_backend(&settings.key_backend, &settings.data_dir)?;
        let passkey_seal = tuaton_idm::PasskeySeal::open(&keys, &settings.passkey_seal_file)
            .map_err(ServicesError::PasskeySeal)?;
        Ok(Self {
            card_registry,
            juristic_registry,
            passkeys: Arc::new(passkeys),
            keys,
            mailer: crate::notify::mailer_from_settings(settings)?,
            passkey_seal: (Arc::new(passkey_seal.0), passkey_seal.1),
        })
    }
}

/// The browser is given as long as the ceremony lives in the store.
fn passkey_ceremony_ttl() -> std::time::Duration {
    let lifetime = tuaton_idm::CeremonyKind::PasskeyLogin.lifetime();
    std::time::Duration::from_secs(lifetime.whole_seconds().unsigned_abs())
}

/// One allow-listed authenticator model in the `TUATON_AAL3_ALLOW_LIST` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowedAuthenticator {
    aaguid: tuaton_passkeys::Uuid,
    #[serde(default)]
    description: String,
    roots_pem: Vec<String>,
}

fn aal3_policy(
    settings: &Settings,
    now: time::OffsetDateTime,
) -> Result<Aal3Policy, ServicesError> {
    let mut policy = Aal3Policy::empty();
    if let Some(path) = &settings.aal3_allow_list {
        let err = |message: String| ServicesError::Aal3Policy {
            setting: "TUATON_AAL3_ALLOW_LIST",
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let list: Vec<AllowedAuthenticator> =
            serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        for a in list {
            let roots = a.roots_pem.into_iter().map(String::into_bytes).collect();
            policy = policy
                .allow_described(a.aaguid, &a.description, roots)
                .map_err(|e| err(e.to_string()))?;
        }
    }
    if let Some(path) = &settings.fido_mds_blob {
        let err = |message: String| ServicesError::Aal3Policy {
            setting: "TUATON_FIDO_MDS_BLOB",
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let imported = match &settings.fido_mds_root {
            Some(root_path) => {
                let root_err = |message: String| ServicesError::Aal3Policy {
                    setting: "TUATON_FIDO_MDS_ROOT",
                    path: root_path.display().to_string(),
                    message,
                };
                let bytes = std::fs::read(root_path).map_err(|e| root_err(e.to_string()))?;
                let roots = MdsTrustAnchors::parse(&bytes).map_err(|e| root_err(e.to_string()))?;
                Aal3Policy::from_fido_mds_blob(&text, &roots, now)
            }
            None if settings.danger_unverified_mds_blob => {
                tracing::warn!(
                    blob = %path.display(),
                    "TUATON_DANGER_UNVERIFIED_MDS_BLOB: importing the FIDO MDS BLOB without checking its signature; whoever can change the file decides which authenticators reach AAL3"
                );
                Aal3Policy::danger_from_unverified_fido_mds_blob(&text, now)
            }
            // Settings refuse this combination; kept so a Settings built
            // another way cannot import an unverified BLOB by accident.
            None => {
                return Err(err(
                    "TUATON_FIDO_MDS_ROOT is not set, so the signature cannot be verified".into(),
                ));
            }
        }
        .map_err(|e| err(e.to_string()))?;
        tracing::info!(
            models = imported.len(),
            verified = settings.fido_mds_root.is_some(),
            "FIDO MDS BLOB imported into the AAL3 allow-list"
        );
        policy = policy.union(&imported);
    }
    Ok(policy)
}
