//! `tuaton clients …`: registering the agencies' applications with the
//! OpenID Provider, each change audited by the service layer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use tuaton_core::SignatureAlgorithm;
use tuaton_idm::{ClientAdmin, ClientSecret, IdmError, RegisteredClient};
use tuaton_oidc::{ClientConfig, Purpose, SubjectType, TokenAuth};
use url::Url;

#[derive(Subcommand)]
pub(crate) enum ClientsCommand {
    /// Register a client. A client_secret_basic client's secret is printed once.
    Add {
        /// The client_id: 1 to 64 letters, digits, '.', '_' or '-'.
        #[arg(long = "id")]
        client_id: String,
        #[command(flatten)]
        fields: Fields,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the registered clients.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        /// The client_id.
        client_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a client: only the options given change.
    Update {
        /// The client_id.
        client_id: String,
        #[command(flatten)]
        fields: Fields,
        /// Make a new secret (client_secret_basic); the old one stops working.
        #[arg(long)]
        new_secret: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a client; every grant it holds is revoked.
    Remove {
        /// The client_id.
        client_id: String,
    },
}

/// How a client authenticates at the token endpoint.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum AuthArg {
    /// A JWT signed with the client's key (the default; give --jwks).
    #[value(name = "private_key_jwt")]
    PrivateKeyJwt,
    /// HTTP Basic with a secret Tuaton makes (compatibility).
    #[value(name = "client_secret_basic")]
    ClientSecretBasic,
    /// A public client (native or browser app): PKCE alone.
    None,
}

/// The registration's fields; on `update`, each one given replaces the old.
#[derive(Args)]
pub(crate) struct Fields {
    /// The agency and application, as the login page names it.
    #[arg(long)]
    name: Option<String>,
    /// A redirect URI (repeat for several); matched exactly.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<Url>,
    /// Where the browser may go after logging out (repeat for several);
    /// matched exactly.
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<Url>,
    /// How it authenticates at the token endpoint.
    #[arg(long, value_enum)]
    auth: Option<AuthArg>,
    /// Its public keys, a JWK Set file (for private_key_jwt).
    #[arg(long, conflicts_with = "jwks_uri")]
    jwks: Option<PathBuf>,
    /// Where it publishes its public keys instead (for private_key_jwt), so
    /// it rotates them on its own; https to a public address.
    #[arg(long)]
    jwks_uri: Option<Url>,
    /// The sector its pairwise subjects are formed in (a host name; the
    /// redirect URIs' host by default).
    #[arg(long, conflicts_with = "public_subject")]
    sector: Option<String>,
    /// Give it the account id as `sub` instead of a pairwise one.
    #[arg(long)]
    public_subject: bool,
    /// Its ID token algorithm: ES256 (default), PS256 or RS256.
    #[arg(long)]
    alg: Option<String>,
    /// Its access and ID tokens' lifetime in seconds (300 by default, at most 3600).
    #[arg(long)]
    token_lifetime: Option<u32>,
    /// Require its authorization requests to be pushed (RFC 9126); the
    /// default for confidential clients.
    #[arg(long, conflicts_with = "no_par")]
    par: bool,
    /// Accept its authorization requests through the browser (for agency
    /// software that cannot push them).
    #[arg(long)]
    no_par: bool,
    /// Let it ask for tokens for itself (client_credentials), for an
    /// agency's back end calling Tuaton for no person.
    #[arg(long)]
    client_credentials: bool,
    /// Require DPoP-bound tokens (RFC 9449): the default.
    #[arg(long, conflicts_with = "no_dpop")]
    dpop: bool,
    /// Issue bearer tokens when the client sends no DPoP proof (for agency
    /// software that cannot make one).
    #[arg(long)]
    no_dpop: bool,
    /// A scope it may ask for beyond openid (repeat): profile (names and
    /// birth date), citizen_id (only for agencies a law or contract allows
    /// it). Given on update, the list replaces the old one.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// What the agency uses the data for: a short id consent records name
    /// (`tax-filing`); needed with --scope.
    #[arg(long)]
    purpose: Option<String>,
    /// The purpose as the consent page says it, in Thai and English.
    #[arg(long)]
    purpose_text: Option<String>,
    /// Where Tuaton posts a logout token when the person's session with it
    /// ends (OpenID Connect Back-Channel Logout 1.0).
    #[arg(long)]
    backchannel_logout_uri: Option<Url>,
}

fn bad(message: impl Into<String>) -> IdmError {
    IdmError::invalid(tuaton_core::ErrorCode::InvalidField, message)
}

impl Fields {
    /// `base` with these fields applied.
    fn apply(self, mut base: ClientConfig) -> Result<ClientConfig, IdmError> {
        if let Some(n) = self.name {
            base.name = n;
        }
        if !self.post_logout_redirect_uris.is_empty() {
            base.post_logout_redirect_uris = self.post_logout_redirect_uris;
        }
        let new_redirects = !self.redirect_uris.is_empty();
        if new_redirects {
            base.redirect_uris = self.redirect_uris;
        }
        if let Some(a) = self.auth {
            base.token_auth = match a {
                AuthArg::PrivateKeyJwt => TokenAuth::PrivateKeyJwt,
                AuthArg::ClientSecretBasic => TokenAuth::ClientSecretBasic,
                AuthArg::None => TokenAuth::None,
            };
            // A change of method brings the method's default.
            base.require_par = base.token_auth != TokenAuth::None;
            if base.token_auth != TokenAuth::PrivateKeyJwt {
                base.jwks = None;
                base.jwks_uri = None;
            }
        }
        if let Some(uri) = self.jwks_uri {
            base.jwks_uri = Some(uri);
            base.jwks = None;
        }
        if let Some(path) = self.jwks {
            base.jwks_uri = None;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad(format!("cannot read --jwks {}: {e}", path.display())))?;
            base.jwks = Some(
                serde_json::from_str(&text)
                    .map_err(|e| bad(format!("--jwks {} is not JSON: {e}", path.display())))?,
            );
        }
        if self.public_subject {
            base.subject = SubjectType::Public;
        } else if let Some(sector) = self.sector {
            base.subject = SubjectType::Pairwise { sector };
        } else if let SubjectType::Pairwise { sector } = &mut base.subject
            && new_redirects
        {
            // A new set of redirect URIs: the sector follows their host
            // unless one is named.
            sector.clear();
        }
        if let Some(a) = self.alg {
            base.id_token_alg = match a.to_ascii_uppercase().as_str() {
                "ES256" => SignatureAlgorithm::Es256,
                "PS256" => SignatureAlgorithm::Ps256,
                "RS256" => SignatureAlgorithm::Rs256,
                _ => return Err(bad("--alg must be ES256, PS256 or RS256")),
            };
        }
        if let Some(t) = self.token_lifetime {
            base.token_lifetime_secs = t;
        }
        if self.par {
            base.require_par = true;
        }
        if self.no_par {
            base.require_par = false;
        }
        if self.client_credentials {
            base.client_credentials = true;
        }
        if !self.scopes.is_empty() {
            base.scopes = std::iter::once("openid".to_owned())
                .chain(self.scopes)
                .collect();
        }
        match (self.purpose, self.purpose_text, base.purpose.take()) {
            (Some(id), Some(text), _) => base.purpose = Some(Purpose { id, text }),
            (Some(id), None, Some(old)) => base.purpose = Some(Purpose { id, ..old }),
            (None, Some(text), Some(old)) => base.purpose = Some(Purpose { text, ..old }),
            (None, None, old) => base.purpose = old,
            _ => return Err(bad("give --purpose and --purpose-text together")),
        }
        if let Some(u) = self.backchannel_logout_uri {
            base.backchannel_logout_uri = Some(u);
        }
        if self.dpop {
            base.dpop_bound_access_tokens = true;
        }
        if self.no_dpop {
            base.dpop_bound_access_tokens = false;
        }
        Ok(base)
    }
}

pub(crate) async fn run(config: Option<&Path>, cmd: ClientsCommand) -> ExitCode {
    let (_, store) = match crate::open(config, false).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let admin = ClientAdmin::new(store.clone());
    let result = execute(&admin, cmd).await;
    store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(IdmError::Store(s)) => crate::fail(format!("database: {s}")),
        Err(e @ (IdmError::UnknownClient | IdmError::ClientExists)) => {
            eprintln!("refused: {e}");
            ExitCode::from(crate::EXIT_FAILED)
        }
        Err(e) => crate::fail(e),
    }
}

fn print(
    client: &RegisteredClient,
    secret: Option<&ClientSecret>,
    as_json: bool,
) -> Result<(), IdmError> {
    if as_json {
        println!("{}", client.shown_with(secret)?);
        return Ok(());
    }
    let c = &client.config;
    println!("client        {}", c.client_id);
    println!("name          {}", c.name);
    for u in &c.redirect_uris {
        println!("redirect uri  {u}");
    }
    for u in &c.post_logout_redirect_uris {
        println!("after logout  {u}");
    }
    if let Some(u) = &c.backchannel_logout_uri {
        println!("logout tokens {u}");
    }
    let auth = serde_json::to_value(c.token_auth)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    println!("auth          {auth}");
    if let Some(u) = &c.jwks_uri {
        println!("keys at       {u}");
    }
    match &c.subject {
        SubjectType::Pairwise { sector } => println!("subject       pairwise, sector {sector}"),
        SubjectType::Public => println!("subject       public"),
    }
    println!("alg           {}", c.id_token_alg.jose_name());
    println!("scopes        {}", c.scopes.join(" "));
    if let Some(p) = &c.purpose {
        println!("purpose       {} ({})", p.text, p.id);
    }
    println!("lifetime      {} s", c.token_lifetime_secs);
    println!(
        "pushed (PAR)  {}",
        if c.require_par {
            "required"
        } else {
            "optional"
        }
    );
    println!(
        "DPoP          {}",
        if c.dpop_bound_access_tokens {
            "required"
        } else {
            "optional (bearer tokens without a proof)"
        }
    );
    if let Some(s) = secret {
        println!(
            "client secret {} (shown once; keep it in the agency's secret store)",
            s.expose()
        );
    }
    Ok(())
}

/// Tells the operator, on stderr, when no id-token key signs with the
/// client's algorithm yet.
async fn warn_without_key(
    admin: &ClientAdmin,
    client: &RegisteredClient,
    now: time::OffsetDateTime,
) -> Result<(), IdmError> {
    let alg = client.config.id_token_alg;
    if !admin.id_token_key_signs(alg, now).await? {
        eprintln!(
            "note: no id-token key signs with {0} yet; the client gets no tokens until one does: \
             tuaton keys rotate --purpose id-token --alg {0}",
            alg.jose_name()
        );
    }
    Ok(())
}

async fn execute(admin: &ClientAdmin, cmd: ClientsCommand) -> Result<(), IdmError> {
    let now = time::OffsetDateTime::now_utc();
    let operator = crate::operator();
    match cmd {
        ClientsCommand::Add {
            client_id,
            fields,
            json,
        } => {
            let base = ClientConfig::new(client_id);
            let (client, secret) = admin.add(&operator, fields.apply(base)?, now).await?;
            print(&client, secret.as_ref(), json)?;
            warn_without_key(admin, &client, now).await?;
        }
        ClientsCommand::List { json } => {
            let all = admin.list().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_value(&all).map_err(|e| IdmError::Internal(e.to_string()))?
                );
            } else if all.is_empty() {
                println!("no clients registered");
            } else {
                for c in &all {
                    println!("{}\t{}", c.config.client_id, c.config.name);
                }
            }
        }
        ClientsCommand::Show { client_id, json } => {
            print(&admin.show(&client_id).await?, None, json)?;
        }
        ClientsCommand::Update {
            client_id,
            fields,
            new_secret,
            json,
        } => {
            let before = admin.show(&client_id).await?;
            let (client, secret) = admin
                .update(&operator, fields.apply(before.config)?, new_secret, now)
                .await?;
            print(&client, secret.as_ref(), json)?;
            warn_without_key(admin, &client, now).await?;
        }
        ClientsCommand::Remove { client_id } => {
            admin.remove(&operator, &client_id, now).await?;
            println!("removed {client_id}; its grants are revoked");
        }
    }
    Ok(())
}
