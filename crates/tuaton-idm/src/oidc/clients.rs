//! Registering the agencies' applications as OpenID Connect clients.
//!
//! Operators register clients with the `tuaton clients` command; each
//! change is audited with the operator as actor. A `client_secret_basic`
//! client gets a secret made here, 256 random bits, shown once and kept only
//! as its SHA-256. Removing a client revokes every grant it holds, so its
//! tokens stop working at once.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use tuaton_core::ErrorCode;
use tuaton_oidc::{ClientConfig, TokenAuth};
use tuaton_store::audit as store_audit;
use tuaton_store::oidc::{self as store, StoredClient};
use tuaton_store::{Store, StoreError};
use zeroize::Zeroizing;

use tuaton_core::Aal;
use tuaton_store::companies::Role;

use crate::audit::{self, Actor, action};
use crate::{ActiveSession, FreshFor, Idm, IdmError};

/// A client's secret, as handed to the operator once.
pub struct ClientSecret(Zeroizing<String>);

impl ClientSecret {
    /// The secret, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn made() -> Result<(Self, String), IdmError> {
        let mut b = Zeroizing::new([0u8; 32]);
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), b.as_mut())
            .map_err(|_| IdmError::internal("the system random source failed"))?;
        let secret = Zeroizing::new(URL_SAFE_NO_PAD.encode(b.as_ref()));
        let d = secret_digest(&secret);
        Ok((Self(secret), d))
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// The stored form of a client secret: SHA-256, hex.
pub(crate) fn secret_digest(secret: &str) -> String {
    hex::encode(digest(&SHA256, secret.as_bytes()))
}

/// A client as an operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct RegisteredClient {
    /// The registration.
    #[serde(flatten)]
    pub config: ClientConfig,
    /// Whether it has a secret (`client_secret_basic`).
    pub has_secret: bool,
    /// When registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl RegisteredClient {
    /// The registration as JSON, with `secret` as `client_secret` when one
    /// was just made: what the command line and the admin API show, once.
    pub fn shown_with(&self, secret: Option<&ClientSecret>) -> Result<serde_json::Value, IdmError> {
        let mut v = serde_json::to_value(self).map_err(IdmError::internal)?;
        if let (Some(s), Some(o)) = (secret, v.as_object_mut()) {
            o.insert("client_secret".into(), serde_json::Value::from(s.expose()));
        }
        Ok(v)
    }
}

/// A registration read back from the store; one that does not read is corrupt.
pub(crate) fn read_client(stored: StoredClient) -> Result<RegisteredClient, IdmError> {
    let config: ClientConfig = serde_json::from_str(&stored.config).map_err(|_| {
        crate::error::corrupt(format!("client {}'s registration", stored.client_id))
    })?;
    Ok(RegisteredClient {
        config,
        has_secret: stored.secret_digest.is_some(),
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    })
}

/// Client registration; needs only the database, so the `tuaton` command
/// can run it without opening the key backend.
#[derive(Clone)]
pub struct ClientAdmin {
    store: Store,
}

impl Idm {
    /// Client registration over this service's database.
    pub fn client_admin(&self) -> ClientAdmin {
        ClientAdmin::new(self.store().clone())
    }

    /// Client registration for a signed-in person at the admin API: the
    /// account must hold the `client_admin` role and have logged in at
    /// AAL3 (a hardware-bound, allow-listed passkey, so a synced or copied
    /// passkey cannot administer clients); a change also needs a login
    /// within the fresh-login window, so a session left open or stolen
    /// changes nothing once that window has passed. The role is read at
    /// each call, so revoking it takes effect at once.
    pub async fn client_administrator(
        &self,
        session: &ActiveSession,
        change: bool,
        now: OffsetDateTime,
    ) -> Result<ClientAdministrator, IdmError> {
        let roles =
            tuaton_store::companies::roles(self.store().conn().await?.conn(), &session.account_id)
                .await?;
        if !roles.contains(&Role::ClientAdmin) {
            return Err(IdmError::ClientAdminRoleRequired);
        }
        if session.aal < Aal::Aal3 {
            return Err(IdmError::AalTooLow { needs: Aal::Aal3 });
        }
        if change {
            session.require_fresh(self.policy(), FreshFor::ChangeClient, now)?;
        }
        Ok(ClientAdministrator {
            admin: self.client_admin(),
            actor: Actor::ClientAdmin(session.account_id.clone()),
        })
    }
}

/// A signed-in client administrator, checked by
/// [`Idm::client_administrator`]: the registrations and the actor the
/// audit log names for each change.
pub struct ClientAdministrator {
    /// Client registration.
    pub admin: ClientAdmin,
    /// Who the audit log names.
    pub actor: Actor,
}

/// What the audit log keeps of a registration: everything that decides
/// where codes go and who may redeem them; the keys as their digest.
fn registration_summary(c: &ClientConfig) -> serde_json::Value {
    json!({
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "token_auth": c.token_auth,
        "subject": c.subject,
        "scopes": c.scopes,
        "id_token_alg": c.id_token_alg.jose_name(),
        "token_lifetime_secs": c.token_lifetime_secs,
        "require_par": c.require_par,
        "client_credentials": c.client_credentials,
        "dpop_bound_access_tokens": c.dpop_bound_access_tokens,
        "purpose": c.purpose,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "jwks_uri": c.jwks_uri,
        "jwks_sha256": c.jwks.as_ref().map(|k| secret_digest(&k.to_string())),
    })
}

fn invalid(e: tuaton_oidc::ClientError) -> IdmError {
    IdmError::invalid(ErrorCode::InvalidField, e.to_string())
}

/// `base` with `patch` merged over its JSON form (RFC 7396); a body that
/// is not an object, or that does not read as a registration, is refused
/// with serde's sentence, which names the field.
fn merged(base: &ClientConfig, patch: &serde_json::Value) -> Result<ClientConfig, IdmError> {
    let Some(fields) = patch.as_object() else {
        return Err(IdmError::invalid(
            ErrorCode::InvalidField,
            "the body must be a JSON object",
        ));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !tuaton_oidc::CLIENT_FIELDS.contains(&k.as_str()))
    {
        return Err(IdmError::invalid(
            ErrorCode::InvalidField,
            format!(
                "unknown field `{unknown}`; a registration has {}",
                tuaton_oidc::CLIENT_FIELDS.join(", ")
            ),
        ));
    }
    let mut doc = serde_json::to_value(base).map_err(IdmError::internal)?;
    json_patch::merge(&mut doc, patch);
    serde_json::from_value(doc)
        .map_err(|e| IdmError::invalid(ErrorCode::InvalidField, e.to_string()))
}

fn stored_json(config: &ClientConfig) -> Result<String, IdmError> {
    serde_json::to_string(config).map_err(IdmError::internal)
}

impl ClientAdmin {
    /// Administration over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Every client, by id.
    pub async fn list(&self) -> Result<Vec<RegisteredClient>, IdmError> {
        store::clients(&self.store)
            .await?
            .into_iter()
            .map(read_client)
            .collect()
    }

    /// The client `client_id`.
    pub async fn show(&self, client_id: &str) -> Result<RegisteredClient, IdmError> {
        let found = store::client(client_id)
            .run(self.store.conn().await?.conn())
            .await?;
        read_client(found.ok_or(IdmError::UnknownClient)?)
    }

    /// Whether an id-token key of `alg`'s line signs now: a client
    /// registered for an algorithm with no key gets no tokens until an
    /// operator rotates that line in (`tuaton keys rotate --purpose id-token --alg …`).
    pub async fn id_token_key_signs(
        &self,
        alg: tuaton_core::SignatureAlgorithm,
        now: OffsetDateTime,
    ) -> Result<bool, IdmError> {
        Ok(tuaton_store::keys::signing_key_for(
            self.store.conn().await?.conn(),
            tuaton_store::keys::KeyPurpose::IdToken,
            alg,
            now,
        )
        .await?
        .is_some())
    }

    /// Registers `config` once it validates; a `client_secret_basic` client's
    /// secret comes back, to be shown once.
    pub async fn add(
        &self,
        operator: &Actor,
        config: ClientConfig,
        now: OffsetDateTime,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), IdmError> {
        let config = config.validate().map_err(invalid)?;
        let secret = match config.token_auth {
            TokenAuth::ClientSecretBasic => Some(ClientSecret::made()?),
            _ => None,
        };
        let mut tx = self.store.begin().await?;
        let added = store::add_client(
            &mut tx,
            &config.client_id,
            &stored_json(&config)?,
            secret.as_ref().map(|(_, d)| d.as_str()),
            now,
        )
        .await;
        match added {
            Err(StoreError::Conflict { .. }) => return Err(IdmError::ClientExists),
            other => other?,
        }
        let ev = audit::success(operator, action::CLIENT_ADD, config.client_id.clone())
            .with_details(registration_summary(&config));
        store_audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        let shown = self.show(&config.client_id).await?;
        Ok((shown, secret.map(|(s, _)| s)))
    }

    /// Replaces a client's registration. A new secret is made when asked
    /// for, or when the client moves to `client_secret_basic` without one;
    /// a client that moves away from it loses its secret.
    pub async fn update(
        &self,
        operator: &Actor,
        config: ClientConfig,
        new_secret: bool,
        now: OffsetDateTime,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), IdmError> {
        let config = config.validate().map_err(invalid)?;
        let before = self.show(&config.client_id).await?;
        let basic = config.token_auth == TokenAuth::ClientSecretBasic;
        if new_secret && !basic {
            return Err(IdmError::invalid(
                ErrorCode::InvalidField,
                "only a client_secret_basic client has a secret",
            ));
        }
        let secret = if basic && (new_secret || !before.has_secret) {
            Some(ClientSecret::made()?)
        } else {
            None
        };
        let digest_change = match (&secret, basic) {
            (Some((_, d)), _) => Some(Some(d.as_str())),
            (None, false) => Some(None),
            (None, true) => None,
        };
        let mut tx = self.store.begin().await?;
        let found = store::update_client(
            &mut tx,
            &config.client_id,
            &stored_json(&config)?,
            digest_change,
            now,
        )
        .await?;
        if !found {
            return Err(IdmError::UnknownClient);
        }
        let ev = audit::success(operator, action::CLIENT_UPDATE, config.client_id.clone())
            .with_details(json!({
                "before": registration_summary(&before.config),
                "after": registration_summary(&config),
                "new_secret": secret.is_some(),
            }));
        store_audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        let shown = self.show(&config.client_id).await?;
        Ok((shown, secret.map(|(s, _)| s)))
    }

    /// Registers a client from an administrator's JSON: the fields given
    /// (named as [`ClientConfig`] serialises them) over the secure
    /// defaults of [`ClientConfig::new`]. A field Tuaton does not know is
    /// refused, not ignored.
    pub async fn register(
        &self,
        operator: &Actor,
        request: &serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), IdmError> {
        let client_id = request
            .get("client_id")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| IdmError::invalid(ErrorCode::InvalidField, "client_id is needed"))?;
        let config = merged(&ClientConfig::new(client_id), request)?;
        self.add(operator, config, now).await
    }

    /// Changes a registration by a JSON merge patch (RFC 7396) over its
    /// [`ClientConfig`] form: a field given replaces the old value, `null`
    /// removes an optional one, and the client id cannot change. A change of
    /// `subject` gives every person a new `sub` at the agency (its users
    /// would all look new), so it is made only when `confirm_subject_change`
    /// is true.
    pub async fn patch(
        &self,
        operator: &Actor,
        client_id: &str,
        patch: &serde_json::Value,
        confirm_subject_change: bool,
        now: OffsetDateTime,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), IdmError> {
        let before = self.show(client_id).await?;
        let config = merged(&before.config, patch)?;
        if config.client_id != before.config.client_id {
            return Err(IdmError::invalid(
                ErrorCode::InvalidField,
                "client_id cannot change; register a new client instead",
            ));
        }
        let config = config.validate().map_err(invalid)?;
        if config.subject != before.config.subject && !confirm_subject_change {
            return Err(IdmError::invalid(
                ErrorCode::InvalidField,
                "this changes subject, and with it every person's sub at the agency; \
                 send confirm_subject_change=true to make the change",
            ));
        }
        self.update(operator, config, false, now).await
    }

    /// Makes a `client_secret_basic` client a new secret; the old one stops
    /// working at once.
    pub async fn new_secret(
        &self,
        operator: &Actor,
        client_id: &str,
        now: OffsetDateTime,
    ) -> Result<(RegisteredClient, Option<ClientSecret>), IdmError> {
        let before = self.show(client_id).await?;
        self.update(operator, before.config, true, now).await
    }

    /// Removes a client and revokes its grants.
    pub async fn remove(
        &self,
        operator: &Actor,
        client_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), IdmError> {
        let mut tx = self.store.begin().await?;
        if !store::remove_client(&mut tx, client_id, now).await? {
            return Err(IdmError::UnknownClient);
        }
        let ev = audit::success(operator, action::CLIENT_REMOVE, client_id.to_owned());
        store_audit::append(&mut tx, now, &ev).await?;
        tx.commit().await?;
        Ok(())
    }
}
