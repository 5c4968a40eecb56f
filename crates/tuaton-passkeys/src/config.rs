//! Site-wide passkey configuration.

use std::time::Duration;

use url::Url;

use crate::origin::ExtraOrigin;
use crate::policy::Aal3Policy;

/// How long a started ceremony may wait for its finish, unless configured.
///
/// Five minutes is WebAuthn's recommended authenticator timeout: long enough
/// for someone who has to find and plug in a security key, short enough that a
/// stolen state is worth little.
pub const DEFAULT_CEREMONY_TTL: Duration = Duration::from_secs(300);

/// Everything [`crate::Passkeys`] needs, read once at start-up.
#[derive(Debug, Clone)]
pub struct PasskeyConfig {
    /// The public URL of the service. Its origin is always accepted and its
    /// host is the relying-party id: changing the host later orphans every
    /// registered passkey.
    pub public_url: Url,
    /// Origins accepted besides the public URL's (other web origins, Android
    /// apps). They do not change the relying-party id.
    pub extra_origins: Vec<ExtraOrigin>,
    /// Name shown by the browser or authenticator during registration.
    pub rp_name: String,
    /// How long a started ceremony stays valid (also sent as the WebAuthn
    /// timeout hint).
    pub ceremony_ttl: Duration,
    /// Which authenticators may reach AAL3.
    pub aal3: Aal3Policy,
}

impl PasskeyConfig {
    /// A configuration with the default ceremony lifetime and no AAL3
    /// authenticators.
    pub fn new(public_url: Url, rp_name: impl Into<String>) -> Self {
        Self {
            public_url,
            extra_origins: Vec::new(),
            rp_name: rp_name.into(),
            ceremony_ttl: DEFAULT_CEREMONY_TTL,
            aal3: Aal3Policy::empty(),
        }
    }
}
