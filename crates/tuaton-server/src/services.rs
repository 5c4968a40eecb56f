//! The connectors and protocol engines the routes call, built once from settings.

use std::sync::Arc;

use tuaton_core::Clock;
use tuaton_passkeys::{Aal3Policy, PasskeyConfig, Passkeys};
use tuaton_proofing::{
    CardStatusRegistry, DevJuristicRegistry, DevRegistry, JuristicRegistry, SoapCardStatusRegistry,
    SoapRegistryConfig,
};

use crate::Settings;

/// Everything beyond the store that handlers need.
#[derive(Clone)]
pub struct Services {
    /// The card-status registry; `None` when none is configured (proofing then answers 503).
    pub card_registry: Option<Arc<dyn CardStatusRegistry>>,
    /// The juristic-person registry; `None` when none is configured.
    pub juristic_registry: Option<Arc<dyn JuristicRegistry>>,
    /// WebAuthn ceremonies.
    pub passkeys: Arc<Passkeys>,
}

/// Why services could not be built. The operator's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    /// A development fixture is unreadable.
    #[error("development registry fixture: {0}")]
    Fixture(#[from] tuaton_proofing::FixtureError),
    /// The card-status connector configuration is unusable.
    #[error("TUATON_CARD_REGISTRY_URL: {0}")]
    Connector(#[from] tuaton_proofing::ConnectorConfigError),
    /// The WebAuthn configuration is unusable.
    #[error("TUATON_PUBLIC_URL cannot serve as the WebAuthn origin: {0}")]
    Passkeys(#[from] tuaton_passkeys::PasskeyError),
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
                    clock,
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
            rp_name: settings.rp_name.clone(),
            ceremony_ttl: std::time::Duration::from_secs(300),
            aal3: Aal3Policy::empty(),
        })?;
        Ok(Self {
            card_registry,
            juristic_registry,
            passkeys: Arc::new(passkeys),
        })
    }
}
