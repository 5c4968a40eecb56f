//! A client's public keys published at its `jwks_uri`: fetched by the
//! server's [`JwksFetcher`] (which guards where it connects), checked as
//! an inline set would be, and cached for [`KEYS_TTL`]. A signature that
//! does not verify with the cached set (the client rotated its key) fetches
//! the set again, at most every [`MIN_REFETCH`], so a stranger sending
//! assertions with made-up `kid`s cannot make Tuaton fetch in a loop.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tuaton_oidc::ClientConfig;

use crate::{Idm, IdmError};

/// How long a fetched key set is used before it is fetched again.
pub const KEYS_TTL: Duration = Duration::from_secs(300);

/// The least time between two fetches of one client's key set.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);

/// Fetches a client's JWK Set from its `jwks_uri`; the server's, which
/// decides where a connection may go.
#[async_trait::async_trait]
pub trait JwksFetcher: Send + Sync {
    /// The JSON document at `uri`, or why it could not be had (a sentence
    /// for the log, without secrets).
    async fn fetch(&self, uri: &url::Url) -> Result<serde_json::Value, String>;
}

/// Fetched key sets, by client and URI.
#[derive(Default)]
pub(crate) struct ClientKeyCache(Mutex<HashMap<String, (Instant, serde_json::Value)>>);

impl Idm {
    /// `client` with its JWK Set in hand: inline, or from its `jwks_uri`
    /// (cached; `again` fetches anew unless the last fetch is younger than
    /// [`MIN_REFETCH`]).
    pub(super) async fn with_keys(
        &self,
        client: &ClientConfig,
        again: bool,
    ) -> Result<ClientConfig, IdmError> {
        let Some(uri) = &client.jwks_uri else {
            return Ok(client.clone());
        };
        let name = format!("{} {uri}", client.client_id);
        let cache = &self.0.client_keys;
        let cached = cache
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&name)
            .cloned();
        let usable = cached.filter(|(at, _)| {
            let age = at.elapsed();
            age < KEYS_TTL && (!again || age < MIN_REFETCH)
        });
        let set = match usable {
            Some((_, set)) => set,
            None => {
                let fetcher = self.parts().jwks_fetcher.clone().ok_or_else(|| {
                    IdmError::internal("no fetcher for client key sets is configured")
                })?;
                let set = fetcher.fetch(uri).await.map_err(|why| {
                    tracing::warn!(client = %client.client_id, %why, "a client's jwks_uri could not be fetched");
                    IdmError::internal("the client's keys could not be fetched from its jwks_uri")
                })?;
                tuaton_oidc::assertion::check_key_set(&set).map_err(|e| {
                    tracing::warn!(client = %client.client_id, error = %e, "a client's jwks_uri holds no usable key set");
                    IdmError::internal("the client's jwks_uri holds no usable key set")
                })?;
                cache
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name, (Instant::now(), set.clone()));
                set
            }
        };
        let mut keyed = client.clone();
        keyed.jwks = Some(set);
        Ok(keyed)
    }
}
